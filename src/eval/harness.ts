// The accuracy evaluation: every (length, task, sample) prompt is generated once with the model's
// tokenizer, then each attention backend loads the model and answers every prompt by greedy
// decoding; outputs are scored exactly (RULER string match). Each backend's decode steps are
// metered for the fraction of keys they touch (./keys-meter.ts).

import { attentionBackend } from '../attention/create.js';
import { formatAttentionSpec, parseAttentionSpec, type AttentionSpec } from '../attention/spec.js';
import type { TextTask } from '../data/synthetic-task.js';
import { loadModel } from '../models/load.js';
import { greedyAnswer } from './greedy.js';
import { KeysMeter } from './keys-meter.js';
import { makeTask, TASK_KIND, withProfile, type TaskSpec } from './tasks.js';

export interface AccuracyEvalOptions {
  model: string;
  tasks: readonly TaskSpec[];
  /** Prompt lengths in tokens (input only: BOS and the answer come on top). */
  lengths: readonly number[];
  /** Prompts per (task, length). */
  samples: number;
  /** Backend specs, e.g. ["dense", "magicpig:K=10,L=150"]. */
  attention: readonly string[];
  /** Option profile of the tasks (./tasks.ts PROFILES; default 'ruler'). */
  profile?: string;
  seed?: number;
  threads?: number;
  kernels?: 'wasm' | 'reference';
  /** KV-cache type (default f32, not the loader's f16: docs/EVALUATION.md's tables were measured with f32 rows). */
  cacheDType?: 'f32' | 'f16';
  /** Tokens generated beyond the expected answer's length (default 8). */
  extraTokens?: number;
  /** Generation stops at these strings (default ["\n"]: every answer is one line). */
  stop?: readonly string[];
  /** Last prompt tokens fed one at a time through the (sparse) decode path (./greedy.ts; default 0). */
  decodeLast?: number;
  /** Called after each scored sample (progress). */
  onSample?: (s: SampleResult, done: number, total: number) => void;
}

export interface SampleResult {
  task: string;
  length: number;
  backend: string;
  index: number;
  score: number;
  answers: string[];
  output: string;
  promptTokens: number;
}

export interface AccuracyCell {
  task: string;
  kind: string;
  length: number;
  backend: string;
  /** Mean score × 100. */
  accuracy: number;
  samples: number;
  /** Mean fraction of keys touched per decode step on the sparse layers (NaN: dense or no decode). */
  keysFraction: number;
  /** The same over every layer, a dense layer reading all its keys (NaN: no decode step). */
  keysFractionAllLayers: number;
  denseLayers: number;
  /** Decode tokens per second over this cell's samples. */
  tokensPerSecond: number;
}

export interface AccuracyResults {
  model: string;
  profile: string;
  seed: number;
  decodeLast: number;
  samples: number;
  lengths: number[];
  tasks: string[];
  backends: string[];
  cells: AccuracyCell[];
  details: SampleResult[];
  seconds: number;
}

export async function runAccuracyEval(o: AccuracyEvalOptions): Promise<AccuracyResults> {
  const t0 = performance.now();
  const seed = o.seed ?? 1, profile = o.profile ?? 'ruler', extra = o.extraTokens ?? 8, stop = [...(o.stop ?? ['\n'])];
  if (o.attention.length === 0) throw new RangeError('eval: give at least one attention backend');
  if (!(Number.isInteger(o.samples) && o.samples >= 1)) throw new RangeError(`eval: samples must be an integer ≥ 1, got ${o.samples}`);
  const specs: AttentionSpec[] = o.attention.map((a) => parseAttentionSpec(a));
  specs.forEach((s) => attentionBackend(s)); // reject bad backend parameters before any work
  const tasks = o.tasks.map((t) => withProfile(t, profile));
  const maxLength = Math.max(...o.lengths);
  const prompts = new Map<string, { task: TextTask; ids: number[]; answerTokens: number }>();
  const details: SampleResult[] = [];
  const cells: AccuracyCell[] = [];
  const total = specs.length * tasks.length * o.lengths.length * o.samples;

  for (const spec of specs) {
    const name = formatAttentionSpec(spec);
    const meter = new KeysMeter(spec);
    const { model, tokenizer } = await loadModel(o.model, {
      attention: meter.wrap(attentionBackend(spec)), contextLength: maxLength + 256, prefillChunk: 64, threads: o.threads, kernels: o.kernels, cacheDType: o.cacheDType ?? 'f32',
    });
    try {
      const count = (s: string) => tokenizer.encode(s, { addSpecialTokens: false }).length;
      for (const length of o.lengths) {
        for (const t of tasks) {
          meter.reset();
          let sum = 0, decodeMs = 0, decoded = 0;
          for (let i = 0; i < o.samples; i++) {
            const key = `${t.label}|${length}|${i}`;
            let p = prompts.get(key);
            if (!p) {
              const task = makeTask(t, length, count, seed, i);
              p = { task, ids: tokenizer.encode(task.input), answerTokens: count(task.target) };
              prompts.set(key, p);
            }
            const maxTokens = Math.min(p.answerTokens + extra, model.contextLength - p.ids.length);
            const r = greedyAnswer(model, tokenizer, p.ids, { maxTokens, stop, decodeLast: o.decodeLast ?? 0 });
            const score = p.task.score(r.text);
            sum += score; decodeMs += r.decodeMs; decoded += r.decodeSteps;
            await new Promise((res) => setImmediate(res));      // let progress output and signals through
            const s: SampleResult = { task: t.label, length, backend: name, index: i, score, answers: p.task.answers, output: r.text, promptTokens: p.ids.length };
            details.push(s);
            o.onSample?.(s, details.length, total);
          }
          const st = meter.stats();
          cells.push({
            task: t.label, kind: TASK_KIND[t.name], length, backend: name, accuracy: (100 * sum) / o.samples, samples: o.samples,
            keysFraction: st.fraction, keysFractionAllLayers: st.allLayersFraction, denseLayers: st.denseLayers, tokensPerSecond: decodeMs > 0 ? decoded / (decodeMs / 1000) : NaN,
          });
        }
      }
    } finally { model.dispose(); }
  }
  return {
    model: o.model, profile, seed, decodeLast: o.decodeLast ?? 0, samples: o.samples, lengths: [...o.lengths], tasks: tasks.map((t) => t.label),
    backends: specs.map(formatAttentionSpec), cells, details, seconds: (performance.now() - t0) / 1000,
  };
}
