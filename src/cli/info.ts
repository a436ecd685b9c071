// `tessera info`: what a checkpoint is and how much memory it needs, from its headers alone.

import { existsSync } from 'node:fs';
import { CliError, formatHelp, parseFlags, type FlagSpecs } from './args.js';
import { MODEL_HINT, warnBeyondTraining } from './model-flags.js';
import { DEFAULT_CACHE_DTYPE, describeModel, type ModelInfo } from '../models/load.js';
import type { CacheDType } from '../kernels/types.js';
import { derive, type LlamaConfig } from '../models/config.js';
import type { MosaicConfig } from '../mosaic/config.js';

const FLAGS: FlagSpecs = {
  model: { type: 'string', required: true, placeholder: 'PATH', description: 'Hugging Face model folder or .gguf file', short: 'm' },
  ctx: { type: 'integer', min: 1, placeholder: 'N', description: 'context length for the memory estimate (default: min(model max, 4096))' },
  quantize: { type: 'string', choices: ['q8_0'], placeholder: 'q8_0', description: 'describe the model as it would be loaded with --quantize' },
  'kv-type': { type: 'string', choices: ['f32', 'f16'], placeholder: 'f32|f16', description: 'KV-cache storage type to plan for (default f16, as a load)' },
  'kv-budget': { type: 'string', placeholder: 'N|SIZE', description: 'KV budget to plan for: tokens or a size (default: what a load would get)' },
  parallel: { type: 'integer', min: 1, max: 4096, placeholder: 'N', description: 'sequences at once to plan for (default: what a load would get)' },
  json: { type: 'boolean', description: 'print one JSON object' },
  help: { type: 'boolean', description: 'show this help', short: 'h' },
};

export const INFO_HELP = formatHelp('info', 'Describes a checkpoint (reads headers only): architecture, sizes, dtypes and memory needed.', FLAGS);

function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i === 0 ? 0 : 2)} ${units[i]}`;
}

/** 658048 → "658 K", 1235814400 → "1.24 B": the size people quote a model by. */
export function shortCount(n: number): string {
  const [div, unit] = n >= 1e9 ? [1e9, 'B'] : n >= 1e6 ? [1e6, 'M'] : n >= 1e3 ? [1e3, 'K'] : [1, ''];
  const x = n / div;
  return `${unit === '' ? n : x.toFixed(x >= 100 ? 0 : x >= 10 ? 1 : 2)}${unit ? ` ${unit}` : ''}`;
}

/** The facts `info` prints, as a flat object (also the --json output). */
export function infoRecord(info: ModelInfo, ctx: number): Record<string, unknown> {
  const c = info.config;
  if (c.model_type === 'memory_mosaic') {
    const m = c as MosaicConfig;
    return {
      path: info.path, format: info.format, architecture: m.model_type,
      layers: m.n_layer, heads: m.n_head, kv_heads: m.n_head, head_dim: m.n_embd / m.n_head,
      hidden_size: m.n_embd, intermediate_size: `persistent memory ${m.pmem_size} slots/head`, vocab_size: m.vocab_size,
      max_position_embeddings: m.block_size, parameters: info.parameters, dtypes: info.dtypes, weight_bytes: info.weightBytes,
      kv_bytes_per_token: info.kvBytesPerToken, ctx, memory_needed_bytes: info.memoryNeeded(ctx),
    };
  }
  const l = c as LlamaConfig, d = derive(l);
  return {
    path: info.path, format: info.format, architecture: c.model_type,
    layers: l.num_hidden_layers, heads: l.num_attention_heads, kv_heads: l.num_key_value_heads, head_dim: d.headDim,
    hidden_size: l.hidden_size, intermediate_size: l.intermediate_size, vocab_size: l.vocab_size,
    max_position_embeddings: l.max_position_embeddings, rope_theta: l.rope_theta, tie_word_embeddings: l.tie_word_embeddings,
    parameters: info.parameters, dtypes: info.dtypes, weight_bytes: info.weightBytes,
    kv_bytes_per_token: info.kvBytesPerToken, ctx, memory_needed_bytes: info.memoryNeeded(ctx),
  };
}

export async function runInfo(argv: string[]): Promise<number> {
  const v = parseFlags(argv, FLAGS, 'info');
  if (v.help) { process.stdout.write(INFO_HELP); return 0; }
  const path = v.model as string;
  if (!existsSync(path)) throw new CliError(`model path ${path} does not exist`, MODEL_HINT);
  const info = describeModel(path, { ...(v.quantize ? { quantize: v.quantize as 'q8_0' } : {}), cacheDType: v['kv-type'] as CacheDType | undefined });
  // a Memory Mosaic keeps f32 state whatever the flag says
  const kvType: CacheDType = info.config.model_type === 'memory_mosaic' ? 'f32' : (v['kv-type'] as CacheDType | undefined) ?? DEFAULT_CACHE_DTYPE;
  const r0 = infoRecord(info, 0);
  const ctx = (v.ctx as number | undefined) ?? Math.min(r0.max_position_embeddings as number, 4096);
  warnBeyondTraining(v.ctx as number | undefined, r0.max_position_embeddings as number | undefined);
  const budget = v['kv-budget'] === undefined ? undefined : /^\d+$/.test(v['kv-budget'] as string) ? Number(v['kv-budget']) : v['kv-budget'] as string;
  let rt: ReturnType<ModelInfo['runtime']>;
  try { rt = info.runtime(ctx, { kvBudget: budget, parallel: v.parallel as number | undefined }); } catch (e) { throw new CliError((e as Error).message, 'see --help'); }
  const r: Record<string, unknown> = { ...infoRecord(info, ctx), parallel: rt.parallel, kv_budget_tokens: rt.kvBudgetTokens, kv_budget_bytes: rt.kvBudgetTokens * info.kvBytesPerToken, memory_planned_bytes: rt.memoryBytes, kv_type: kvType };
  if (v.json) { process.stdout.write(JSON.stringify(r) + '\n'); return 0; }
  const rows: [string, string][] = [
    ['path', String(r.path)],
    ['format', String(r.format)],
    ['architecture', String(r.architecture)],
    ['layers', String(r.layers)],
    ['heads (q / kv)', `${r.heads} / ${r.kv_heads}, head dim ${r.head_dim}`],
    ['hidden / ffn', `${r.hidden_size} / ${r.intermediate_size}`],
    ['vocabulary', String(r.vocab_size)],
    ['max context', String(r.max_position_embeddings)],
    ['parameters', `${info.parameters.toLocaleString('en-US')} (${shortCount(info.parameters)})`],
    ['dtypes (tensors)', Object.entries(info.dtypes).map(([k, n]) => `${k}: ${n}`).join(', ')],
    ['weights', bytes(info.weightBytes) + (v.quantize ? ` (with --quantize ${String(v.quantize)})` : '')],
    ['KV cache', `${bytes(info.kvBytesPerToken)} per token (${kvType}; --kv-type)`],
    [`memory at ctx ${ctx}`, bytes(info.memoryNeeded(ctx)) + ' (one sequence)'],
    ['KV budget', `${rt.kvBudgetTokens.toLocaleString('en-US')} tokens (${bytes(rt.kvBudgetTokens * info.kvBytesPerToken)}) shared by up to ${rt.parallel} sequences; --kv-budget, --parallel`],
    ['memory planned', `${bytes(rt.memoryBytes)} (pages are committed as sequences write them)`],
  ];
  const w = Math.max(...rows.map(([k]) => k.length)) + 2;
  process.stdout.write(rows.map(([k, val]) => `${k.padEnd(w)}${val}`).join('\n') + '\n');
  return 0;
}
