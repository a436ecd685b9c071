// Shared by the llama.cpp comparisons (llamacpp.test.ts, llamacpp-kquants.test.ts): the fixture
// format written by tools/reference/make-fixtures.mjs and how Tessera's log-probabilities and greedy
// tokens are compared with it.

import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PresetName } from '../../src/testing/checkpoints.js';
import { loadModel, type LoadOptions, type LoadedModel } from '../../src/models/load.js';
import { logSoftmax } from './textbook-llama.js';

export interface Fixture {
  preset: PresetName;
  seed: number;
  /** f32, f16, q8_0, or a `tessera quantize` recipe (q4_k_m, q5_k_m, q6_k). */
  dtype: string;
  llamaCppVersion: string;
  files: Record<string, string>;
  promptIds: number[];
  logits: { position: number; values: (number | null)[] }[];
  greedy: number[];
  greedyMargins: number[];
  tokenization: { text: string; special: boolean; ids: number[] }[];
}

/** Every fixture in test/fixtures/<dir>/ (sorted by file name). */
export function readFixtures(dir: string): Fixture[] {
  const candidates = [
    fileURLToPath(new URL(`../../../test/fixtures/${dir}/`, import.meta.url)), // dist/test/reference → repo
    join(process.cwd(), 'test/fixtures', dir),
  ];
  const found = candidates.find((d) => existsSync(d));
  if (!found) throw new Error(`llama.cpp fixtures not found in ${candidates.join(' or ')}`);
  return readdirSync(found)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => JSON.parse(readFileSync(join(found, f), 'utf8')) as Fixture);
}

/** Whether the dtype quantises activations before each matmul (to q8_0 or q8_K), which puts
 *  rounding cliffs in the comparison (see the tolerances in llamacpp.test.ts). */
export const quantisedActivations = (dtype: string): boolean => dtype !== 'f32' && dtype !== 'f16';

// At a rounding cliff one activation quantum flips and moves a whole row of log-probs: quantised
// dtypes need >= Q8_TIGHT_POSITIONS positions within the tight tolerance and all within the loose one.
export const Q8_CLIFF_TOLERANCE = 1.0;
export const Q8_TIGHT_POSITIONS = 3;

/** max |a − b| over entries where the fixture has a value (null = llama.cpp's probability underflowed). */
export function maxAbsDiff(ours: ArrayLike<number>, ref: readonly (number | null)[]): number {
  assert.equal(ours.length, ref.length, 'vocabulary sizes differ');
  let m = 0;
  for (let i = 0; i < ref.length; i++) if (ref[i] !== null) m = Math.max(m, Math.abs(ours[i]! - ref[i]!));
  return m;
}

export function argmax(row: ArrayLike<number>): number {
  let a = 0;
  for (let i = 1; i < row.length; i++) if (row[i]! > row[a]!) a = i;
  return a;
}

/** The full token sequence llama.cpp saw: prompt, then its greedy tokens fed back (teacher forcing). */
export const sequenceOf = (f: Fixture): number[] => [...f.promptIds, ...f.greedy.slice(0, -1)];

export interface Run { errors: Map<number, number>; tokens: number[] }

/** How strict a comparison is beyond its tolerance: quantised activations need `tightPositions`
 *  recorded positions within it (the rest may sit past a rounding cliff); greedy tokens may differ
 *  only at steps where llama.cpp's own top-1/top-2 margin is below `flipMargin` (0: never). */
export interface ReportRules { tightPositions: number; flipMargin: number }

export function report(label: string, f: Fixture, run: Run, tol: number,
                       rules: ReportRules = { tightPositions: Q8_TIGHT_POSITIONS, flipMargin: 0 }): void {
  const worst = Math.max(...run.errors.values());
  const all = run.tokens.flatMap((t, k) => (t === f.greedy[k] ? [] : [k]));
  const flips = all.filter((k) => !(f.greedyMargins[k]! < rules.flipMargin))
    .map((k) => `step ${k}: ${run.tokens[k]} ≠ ${f.greedy[k]} (llama.cpp margin ${f.greedyMargins[k]})`);
  console.log(`# ${label}: max |Δ log p| ${worst.toExponential(2)} (tolerance ${tol}${quantisedActivations(f.dtype) ? `, ≥ ${rules.tightPositions} positions; ${Q8_CLIFF_TOLERANCE} at rounding cliffs` : ''}), greedy ${run.tokens.length - all.length}/${run.tokens.length} identical${all.length > flips.length ? ` (${all.length - flips.length} differ where llama.cpp's margin < ${rules.flipMargin})` : ''}`);
  if (quantisedActivations(f.dtype)) {
    const tight = [...run.errors.values()].filter((e) => e <= tol).length;
    assert.ok(tight >= rules.tightPositions, `${label}: only ${tight} of ${run.errors.size} positions within ${tol} (${[...run.errors].map(([p, e]) => `${p}: ${e.toExponential(2)}`).join(', ')})`);
    for (const [p, e] of run.errors) assert.ok(e <= Q8_CLIFF_TOLERANCE, `${label}: position ${p}: max |Δ log p| = ${e} > ${Q8_CLIFF_TOLERANCE}`);
  } else {
    for (const [p, e] of run.errors) assert.ok(e <= tol, `${label}: position ${p}: max |Δ log p| = ${e} > ${tol}`);
  }
  assert.deepEqual(flips, [], `${label}: greedy tokens differ from llama.cpp`);
}

/** Tessera, one forward per token as generation does, teacher-forced on llama.cpp's tokens so every
 *  recorded position is compared even after a mismatch; `tokens` are Tessera's own argmax choices. */
export function runTessera(loaded: LoadedModel, f: Fixture): Run {
  const { model } = loaded;
  const cache = model.createCache(128);
  const wanted = new Map(f.logits.map((l) => [l.position, l.values]));
  const errors = new Map<number, number>();
  const tokens: number[] = [];
  const V = model.vocabSize;
  const n = f.promptIds.length;
  const all = model.forward(f.promptIds, cache, { logits: 'all' }); // (n, V)
  for (let p = 0; p < n; p++) {
    const ref = wanted.get(p);
    if (ref) errors.set(p, maxAbsDiff(logSoftmax(all.subarray(p * V, (p + 1) * V)), ref));
  }
  tokens.push(argmax(all.subarray((n - 1) * V, n * V)));
  for (let k = 1; k < f.greedy.length; k++) {
    const row = model.forward([f.greedy[k - 1]!], cache, { logits: 'last' }); // (V)
    const ref = wanted.get(n - 1 + k);
    if (ref) errors.set(n - 1 + k, maxAbsDiff(logSoftmax(row), ref));
    tokens.push(argmax(row));
  }
  return { errors, tokens };
}

/** loadModel, or a skip (with the reason) while the loader is not implemented yet. */
export async function load(t: { skip(msg: string): void }, path: string, opts: LoadOptions): Promise<LoadedModel | null> {
  try {
    // f32 K/V rows: the fixtures were made with llama.cpp's F32 cache (tools/reference/llama.mjs)
    return await loadModel(path, { kernels: 'wasm', threads: 1, contextLength: 128, cacheDType: 'f32', ...opts });
  } catch (e) {
    if (e instanceof Error && /not implemented/.test(e.message)) {
      t.skip(`loadModel: ${e.message}`);
      return null;
    }
    throw e;
  }
}

