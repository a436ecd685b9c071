// Acceptance of speculative drafts on the trained long-context model (PAPERS.md §2): MagicDec's
// self-speculation (the model drafts for itself through a sparse draft attention — StreamingLLM,
// SnapKV, MagicPIG — over its own cache and verifies with full attention), prompt lookup, and a
// separate draft model with a cache of its own. A draft is named as `--speculate draft=…` names it
// (parseSpeculateSpec): `streaming:sinks=16,window=240`, `prompt-lookup`,
// `model:PATH,attention=streaming:sinks=4,window=128`. For each context length and draft, held-out task
// prompts (needle retrieval and most-frequent-name lists, the long-context test bed's tasks, filled to
// the context less the generated tokens) are continued for `--tokens` tokens past eos with greedy
// decoding, or sampling at `--temperature`, and the field's metrics are reported over all of them:
// acceptance rate (accepted / drafted), mean accepted length (tokens per verification step) and the
// per-position acceptance. Every speculative run is checked token for token against plain decoding
// (greedy), so the table cannot come from a broken draft. The draft's cost is the keys its draft
// steps read (src/eval/keys-meter.ts), as a fraction of the context, over every layer: the target's
// keys for self-speculation, the draft model's own cache for a draft model, none for prompt lookup;
// and the time of a draft step's attention (every layer, the median call of each): drafts compared
// at equal keys read, or at equal time on this machine.
//
//   node dist/src/experiments/long-context/acceptance.js [--model models/long-context] [--contexts 512,1024,2048]
//        [--drafts "streaming:sinks=16,window=48;snapkv:budget=64"] [--n 6] [--tokens 64] [--gamma 4]
//        [--tasks needle-single,most-frequent-name] [--temperature 0] [--json FILE]

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadModel } from '../../models/load.js';
import { attentionBackend } from '../../attention/create.js';
import { parseAttentionSpec } from '../../attention/spec.js';
import { KeysMeter } from '../../eval/keys-meter.js';
import { generateText } from '../../generation/generate.js';
import { parseSpeculateSpec, type SpeculativeStats } from '../../generation/speculative.js';
import type { SpeculateOptions } from '../../generation/scheduler.js';
import { DraftModel } from '../../generation/draft-model.js';
import { bpeFromTokenizerJson } from '../../data/bpe-encoder.js';
import { LongContextTasks, readTaskOptions, TASK_KINDS, type TaskKind } from './tasks.js';
import { evalSeed } from './eval.js';
import type { FlagSpecs } from '../../cli/args.js';
import { isMainModule, runScript, scriptFlags } from '../../cli/script.js';

export interface AcceptanceOptions {
  model: string;
  contexts: number[];
  drafts: string[];
  tasks: TaskKind[];
  n: number;
  tokens: number;
  gamma: number;
  temperature: number;
  seed: number;
  threads?: number;
  onRun?: (draft: string, context: number, done: number, total: number) => void;
}

export interface AcceptanceRow {
  draft: string;
  context: number;
  prompts: number;
  steps: number;
  drafted: number;
  accepted: number;
  acceptanceRate: number;
  meanAcceptedLength: number;
  /** Acceptance rate of the i-th draft token: the mean over prompts of each prompt's rate. */
  perPosition: number[];
  /** Keys a draft step reads, as a fraction of the context: mean over draft steps and every layer
   *  (of the draft model, for a draft model); NaN for prompt lookup (it reads no keys). */
  keysFraction: number;
  /** Whose keys keysFraction counts. */
  keysOf: 'target' | 'draft model' | 'none';
  /** Microseconds of a draft step's attention, every layer of the model whose keys keysFraction
   *  counts (KeysMeter's attendMicros: the sum of each layer's median); NaN for prompt lookup. */
  attendMicros: number;
  /** Greedy only: speculative runs whose tokens equal plain decoding's (must be all). */
  identical?: number;
}

/** Acceptance per (draft, context), over n prompts of every task. */
export async function measureAcceptance(o: AcceptanceOptions): Promise<AcceptanceRow[]> {
  const tokJson = JSON.parse(readFileSync(join(o.model, 'tokenizer.json'), 'utf8')) as object;
  const trained = readTaskOptions(o.model);
  const tasks = new LongContextTasks(bpeFromTokenizerJson(tokJson), trained.counting, trained.needle);
  const contextLength = Math.max(...o.contexts);
  const rows: AcceptanceRow[] = [];
  for (const draft of o.drafts) {
    const { speculate, meter, model, tokenizer, dispose } = await loadDraft(o, draft, contextLength);
    try {
      for (const context of o.contexts) {
        const runs: SpeculativeStats[] = [];
        meter?.reset();
        let identical = 0, prompts = 0;
        const total = o.tasks.length * o.n;
        for (const kind of o.tasks) {
          for (let i = 0; i < o.n; i++) {
            // the prompt fills the context less the generated tokens (and the answer's few)
            const task = tasks.textTask(kind, context, evalSeed(o.seed, context, i), o.tokens);
            const opts = { temperature: o.temperature, seed: evalSeed(o.seed, context, i), maxTokens: o.tokens, ignoreEos: true };
            const spec = await generateText(model, tokenizer, task.input, { ...opts, speculate });
            runs.push(spec.speculative!);
            if (o.temperature === 0) {
              const plain = await generateText(model, tokenizer, task.input, opts);
              if (plain.tokens.join() === spec.tokens.join()) identical++;
            }
            prompts++;
            o.onRun?.(draft, context, prompts, total);
          }
        }
        const keysOf = meter === undefined ? 'none' : typeof speculate.draft === 'object' ? 'draft model' : 'target';
        const keys = meter?.stats();
        rows.push({ draft, context, prompts, ...pooled(runs, o.gamma), keysFraction: keys?.allLayersFraction ?? NaN, keysOf,
          attendMicros: keys?.attendMicros ?? NaN, ...(o.temperature === 0 ? { identical } : {}) });
      }
    } finally { dispose(); }
  }
  return rows;
}

/** The target loaded for one draft (a `--speculate draft=…` value; γ is the run's, not the spec's),
 *  the speculate option that drafts with it, and the keys meter of the draft's attention (none for
 *  prompt lookup). A draft model gets the target's context, threads and sequence slots. */
async function loadDraft(o: AcceptanceOptions, draft: string, contextLength: number) {
  if (/(^|,)\s*gamma=/.test(draft)) throw new RangeError(`acceptance: the draft "${draft}" sets gamma; γ is --gamma, the same for every draft`);
  const parsed = parseSpeculateSpec(`draft=${draft}`);
  const common = { contextLength, threads: o.threads ?? 2, parallel: 2, cacheDType: 'f32' } as const;   // as BENCHMARKS §9 was measured
  if (parsed.draft === 'self') {
    if (parsed.attention!.length !== 1) throw new RangeError(`acceptance: the draft "${draft}" lists ${parsed.attention!.length} budgets; measure one per draft`);
    const attention = parsed.attention![0]!, meter = new KeysMeter(attention);
    const { model, tokenizer } = await loadModel(o.model, { ...common, draftAttention: meter.wrap(attentionBackend(attention)) });
    return { speculate: { draft: 'self', gamma: o.gamma } as SpeculateOptions, meter, model, tokenizer, dispose: () => model.dispose() };
  }
  const { model, tokenizer } = await loadModel(o.model, common);
  if (parsed.draft === 'prompt-lookup') return { speculate: { draft: 'prompt-lookup', gamma: o.gamma } as SpeculateOptions, meter: undefined, model, tokenizer, dispose: () => model.dispose() };
  try {
    const attention = parseAttentionSpec(parsed.draft.attention ?? 'dense'), meter = new KeysMeter(attention);
    const d = await loadModel(parsed.draft.model, { ...common, attention: meter.wrap(attentionBackend(attention)) });
    const drafter = new DraftModel(d.model, { name: `draft model ${parsed.draft.model}` });
    return {
      speculate: { draft: drafter, gamma: o.gamma } as SpeculateOptions, meter, model, tokenizer,
      dispose: () => { drafter.dispose(); d.model.dispose(); model.dispose(); },
    };
  } catch (e) { model.dispose(); throw e; }
}

/** The metrics over several requests: rates over all their drafted tokens and steps; the
 *  per-position rate is the mean over the requests that drafted, a position none of a request's
 *  drafts got accepted at counting 0 for it (its stats list positions up to the last accepted). */
export function pooled(runs: readonly SpeculativeStats[], gamma: number) {
  const sum = (f: (s: SpeculativeStats) => number) => runs.reduce((t, s) => t + f(s), 0);
  const steps = sum((s) => s.steps), drafted = sum((s) => s.drafted), accepted = sum((s) => s.accepted);
  const drafting = runs.filter((s) => s.steps > 0);
  const perPosition = drafting.length === 0 ? [] : Array.from({ length: gamma }, (_, i) => drafting.reduce((t, s) => t + (s.perPosition[i] ?? 0), 0) / drafting.length);
  return {
    steps, drafted, accepted, acceptanceRate: drafted > 0 ? accepted / drafted : 0,
    meanAcceptedLength: steps > 0 ? sum((s) => s.meanAcceptedLength * s.steps) / steps : 0, perPosition,
  };
}

/** The rows as a Markdown table: one row per draft, acceptance rate / mean accepted length per context. */
export function acceptanceTable(rows: readonly AcceptanceRow[], contexts: readonly number[]): string {
  const drafts = [...new Set(rows.map((r) => r.draft))];
  const timed = rows.some((r) => Number.isFinite(r.attendMicros));
  const out = [`| draft | ${contexts.map((c) => `${c} tokens: rate / mean length (keys read${timed ? ', attention µs' : ''})`).join(' | ')} | per-position rate at ${contexts.at(-1)} |`,
    `|---|${contexts.map(() => '---:').join('|')}|---|`];
  for (const d of drafts) {
    const cells = contexts.map((c) => {
      const r = rows.find((x) => x.draft === d && x.context === c);
      return r ? `${r.acceptanceRate.toFixed(2)} / ${r.meanAcceptedLength.toFixed(2)} (${keysCell(r)})` : '–';
    });
    const last = rows.find((x) => x.draft === d && x.context === contexts.at(-1));
    out.push(`| \`${d}\` | ${cells.join(' | ')} | ${last ? last.perPosition.map((p) => p.toFixed(2)).join(' / ') : ''} |`);
  }
  return out.join('\n');
}

/** The keys cell: the target's keys read, the draft model's own (its cache), or none (prompt lookup),
 *  and the draft step's attention time. */
function keysCell(r: AcceptanceRow): string {
  if (r.keysOf === 'none') return '–';
  // rows kept from before the timing have no attendMicros
  const pct = `${(100 * r.keysFraction).toFixed(1)}%`, us = Number.isFinite(r.attendMicros) ? `, ${r.attendMicros.toFixed(0)} µs` : '';
  return r.keysOf === 'draft model' ? `${pct} of its own cache${us}` : `${pct}${us}`;
}

const FLAGS: FlagSpecs = {
  model: { type: 'string', placeholder: 'PATH', default: 'models/long-context', description: 'the target model' },
  contexts: { type: 'integer', list: true, min: 16, default: '512,1024,2048', description: 'prompt lengths (comma-separated)' },
  drafts: { type: 'string', placeholder: 'SPEC;SPEC…', description: 'drafts as --speculate draft= names them, separated by ";" (a spec holds commas): a self-speculation attention (streaming:sinks=16,window=240), prompt-lookup, or model:PATH[,attention=SPEC]',
    default: 'streaming:sinks=16,window=48;streaming:sinks=16,window=112;streaming:sinks=16,window=240;' +
      'snapkv:budget=64;snapkv:budget=128;snapkv:budget=256;magicpig:dense=none;magicpig:dense=0' },
  tasks: { type: 'string', list: true, choices: TASK_KINDS, default: 'needle-single,most-frequent-name', description: `tasks (${TASK_KINDS.join(', ')})` },
  n: { type: 'integer', min: 1, default: 6, description: 'prompts per task and context' },
  tokens: { type: 'integer', min: 1, default: 64, description: 'tokens generated per prompt (eos ignored)' },
  gamma: { type: 'integer', min: 1, max: 64, default: 4, description: 'draft length' },
  temperature: { type: 'number', min: 0, default: 0, description: 'sampling temperature (0: greedy, checked token-identical to plain)' },
  seed: { type: 'integer', min: 0, default: 1, description: 'prompt and sampling seed' },
  json: { type: 'string', placeholder: 'FILE', description: 'also write the rows as JSON' },
};

async function main(): Promise<number> {
  const v = scriptFlags(import.meta.url, FLAGS, 'Acceptance of speculative drafts (self-speculation, prompt lookup, a draft model) vs context length.');
  if (!v) return 0;
  const o: AcceptanceOptions = {
    model: v.model as string, contexts: v.contexts as number[], drafts: (v.drafts as string).split(';'),
    tasks: v.tasks as TaskKind[], n: v.n as number, tokens: v.tokens as number, gamma: v.gamma as number,
    temperature: v.temperature as number, seed: v.seed as number,
    onRun: (d, c, done, total) => process.stderr.write(`${d} @${c}: ${done}/${total}   \r`),
  };
  const t0 = performance.now();
  const rows = await measureAcceptance(o);
  process.stderr.write('\n');
  process.stdout.write(`Speculative-draft acceptance on ${o.model}: tasks ${o.tasks.join(', ')}, ${o.n} prompts each per context, ` +
    `${o.tokens} tokens each past eos, γ = ${o.gamma}, temperature ${o.temperature}; ${((performance.now() - t0) / 1000).toFixed(0)} s\n\n` +
    `${acceptanceTable(rows, o.contexts)}\n`);
  const bad = rows.filter((r) => r.identical !== undefined && r.identical !== r.prompts);
  if (bad.length) process.stdout.write(`\nNOT token-identical to plain greedy: ${bad.map((r) => `${r.draft} @${r.context} (${r.identical}/${r.prompts})`).join(', ')}\n`);
  const json = v.json as string | undefined;
  if (json) writeFileSync(json, JSON.stringify({ options: { ...o, onRun: undefined }, rows }, null, 2) + '\n');
  return bad.length ? 1 : 0;
}

if (isMainModule(import.meta.url)) runScript(import.meta.url, main);
