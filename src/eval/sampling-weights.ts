// Why an LSH-sampling estimate is noisy on a head: for each query head of one layer, at the last
// prompt position of several task prompts, how spread the dense attention is (its effective number
// of keys, ESS = 1/Σw²), how many keys MagicPIG samples and the ESS of its importance weights
// e^{s_i}/u_i, the spread of u over the sampled keys, and the attention-output error of MagicPIG,
// of oracle sampling and of TopK given the same number of keys (float64 estimators, ./estimators.ts).
// When a head attends almost uniformly and its query is nearly orthogonal to the centered keys,
// u_i is tiny and steep in the cosine: a few keys carry most of the weight and the estimate is
// noisy even though many keys were read. The last columns show what TopK does instead: its keys
// can be mostly one token, whatever that token's share of the context.
//   node dist/src/eval/sampling-weights.js --model models/long-context --profile long-context \
//        --task most_frequent:names=1,marginFraction=2 --length 2000 --prompts 10 --K 11 --L 130 [--layer 0] [--draws 3]

import { deriveSeed, Rng } from '../data/rng.js';
import { capturePrompt, headView } from './operator.js';
import { buildSimHash, denseEstimate, magicpigEstimate, oracleSamplingEstimate, relativeError, scores, topkEstimate } from './estimators.js';
import type { FlagSpecs } from '../cli/args.js';
import { isMainModule, runScript, scriptFlags } from '../cli/script.js';

export interface SamplingWeightsOptions {
  model: string; task: string; profile?: string; length: number; prompts: number;
  K: number; L: number; layer?: number; sinks?: number; window?: number; draws?: number; seed?: number;
}

export interface HeadWeights {
  head: number;
  /** Medians over prompts (× draws for the MagicPIG columns); errors are means. */
  denseEss: number; sampled: number; sampledEss: number; uMedian: number; uSpread: number;
  errMagicpig: number; errOracle: number; errTopk: number;
  /** TopK's keys (as many as MagicPIG read): the share of its most common token among them, and
   *  that token's share of the whole context (a selection that follows frequency keeps them equal). */
  topkModeShare: number; topkModeContextShare: number;
}

const ess = (w: ArrayLike<number>) => { let s = 0, q = 0; for (let i = 0; i < w.length; i++) { s += w[i]; q += w[i] * w[i]; } return q > 0 ? (s * s) / q : 0; };
const median = (a: number[]) => { const b = [...a].sort((x, y) => x - y); return b.length ? b[Math.floor(b.length / 2)] : NaN; };
const pct = (x: number) => `${(100 * x).toFixed(0)}%`;
const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;

export async function samplingWeights(o: SamplingWeightsOptions): Promise<HeadWeights[]> {
  const layer = o.layer ?? 0, sinks = o.sinks ?? 4, window = o.window ?? 16, draws = o.draws ?? 3, seed = o.seed ?? 1;
  const acc = new Map<number, Record<keyof Omit<HeadWeights, 'head'>, number[]>>();
  const rng = new Rng(deriveSeed(seed, 0x5a));
  for (let p = 0; p < o.prompts; p++) {
    const { layers, ids, N } = await capturePrompt({ ...o, seed, layers: [layer], threads: 1 }, 1, p);
    const c = layers[0];
    if (!c) throw new RangeError(`sampling-weights: the model has no layer ${layer}`);
    for (let h = 0; h < c.heads; h++) {
      const hv = headView(c, h, N - 1);
      const s = scores(hv, N), ref = denseEstimate(hv, s).out;
      let a = acc.get(h);
      if (!a) { a = { denseEss: [], sampled: [], sampledEss: [], uMedian: [], uSpread: [], errMagicpig: [], errOracle: [], errTopk: [], topkModeShare: [], topkModeContextShare: [] }; acc.set(h, a); }
      const mx = Math.max(...s);
      a.denseEss.push(ess(Array.from(s, (x) => Math.exp(x - mx))));
      for (let r = 0; r < draws; r++) {
        const tables = buildSimHash(hv.key, hv.D, sinks, N - 1 - window, o.K, o.L, deriveSeed(seed, p, h, r));
        const est = magicpigEstimate(hv, s, tables);
        // importance weights e^{s_i}/u_i of the sampled keys (the floor only matters below u = 1e-4)
        const w = Array.from(est.sampledIds, (i, j) => Math.exp(s[i] - mx) / est.u[j]);
        a.sampled.push(est.sampled); a.sampledEss.push(ess(w));
        if (est.sampled) { a.uSpread.push(Math.max(...est.u) / Math.min(...est.u)); a.uMedian.push(median([...est.u])); }
        a.errMagicpig.push(relativeError(est.out, ref));
        a.errOracle.push(relativeError(oracleSamplingEstimate(hv, s, est.keys, rng).out, ref));
        a.errTopk.push(relativeError(topkEstimate(hv, s, est.keys).out, ref));
        if (r === 0) {
          const top = Array.from(s, (x, i) => [x, i] as const).sort((x, y) => y[0] - x[0] || x[1] - y[1]).slice(0, est.keys);
          const tally = new Map<number, number>();
          for (const [, i] of top) tally.set(ids[i]!, (tally.get(ids[i]!) ?? 0) + 1);
          const [mode, m] = [...tally.entries()].reduce((x, y) => (y[1] > x[1] ? y : x));
          a.topkModeShare.push(m / top.length);
          a.topkModeContextShare.push(ids.filter((t) => t === mode).length / N);
        }
      }
    }
  }
  return [...acc.entries()].map(([head, a]) => ({
    head, denseEss: median(a.denseEss), sampled: median(a.sampled), sampledEss: median(a.sampledEss), uMedian: median(a.uMedian), uSpread: median(a.uSpread.filter(Number.isFinite)),
    errMagicpig: mean(a.errMagicpig), errOracle: mean(a.errOracle), errTopk: mean(a.errTopk),
    topkModeShare: median(a.topkModeShare), topkModeContextShare: median(a.topkModeContextShare),
  }));
}

export function samplingWeightsMarkdown(o: SamplingWeightsOptions, rows: HeadWeights[]): string {
  const head = `${o.task} at ${o.length} tokens, layer ${o.layer ?? 0}, last prompt position, ${o.prompts} prompts × ${o.draws ?? 3} hash draws, ` +
    `MagicPIG K=${o.K}, L=${o.L} (+${o.sinks ?? 4} sinks, ${o.window ?? 16}-token window); medians, errors are means\n\n`;
  const line = (c: string[]) => `| ${c.join(' | ')} |`;
  return head + [
    line(['query head', 'dense attention ESS (keys)', 'MagicPIG keys sampled', 'ESS of its weights', 'u (median)', 'u max/min', 'error MagicPIG', 'error oracle sampling (same keys)', 'error TopK (same keys)', 'TopK keys: most common token', '… its share of the context']),
    line(['---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:', '---:']),
    ...rows.map((r) => line([String(r.head), r.denseEss.toFixed(0), r.sampled.toFixed(0), r.sampledEss.toFixed(1), r.uMedian.toPrecision(2), r.uSpread.toFixed(0),
      r.errMagicpig.toFixed(3), r.errOracle.toFixed(3), r.errTopk.toFixed(3), pct(r.topkModeShare), pct(r.topkModeContextShare)])),
  ].join('\n') + '\n';
}

const FLAGS: FlagSpecs = {
  model: { type: 'string', default: 'models/long-context', placeholder: 'PATH', description: 'the model' },
  task: { type: 'string', default: 'cwe', placeholder: 'SPEC', description: 'the task of the prompts (e.g. most_frequent:names=1,marginFraction=2)' },
  profile: { type: 'string', placeholder: 'NAME', description: 'task profile (e.g. long-context)' },
  length: { type: 'integer', min: 1, default: 2000, description: 'prompt length in tokens' },
  prompts: { type: 'integer', min: 1, default: 10, description: 'prompts' },
  K: { type: 'integer', min: 1, default: 10, description: 'MagicPIG bits per hash table' },
  L: { type: 'integer', min: 1, default: 150, description: 'MagicPIG hash tables' },
  layer: { type: 'integer', min: 0, default: 0, description: 'the layer whose heads are measured' },
  sinks: { type: 'integer', min: 0, default: 4, description: 'sink keys always attended' },
  window: { type: 'integer', min: 0, default: 16, description: 'recent keys always attended' },
  draws: { type: 'integer', min: 1, default: 3, description: 'hash draws per prompt' },
  seed: { type: 'integer', min: 0, default: 1, description: 'prompt and hash seed' },
};

async function main(): Promise<number> {
  const v = scriptFlags(import.meta.url, FLAGS, "Why an LSH-sampling estimate is noisy on a head: dense attention's spread, MagicPIG's importance weights and errors per query head.");
  if (!v) return 0;
  const o: SamplingWeightsOptions = {
    model: v.model as string, task: v.task as string, profile: v.profile as string | undefined,
    length: v.length as number, prompts: v.prompts as number, K: v.K as number, L: v.L as number, layer: v.layer as number,
    sinks: v.sinks as number, window: v.window as number, draws: v.draws as number, seed: v.seed as number,
  };
  process.stdout.write(samplingWeightsMarkdown(o, await samplingWeights(o)));
  return 0;
}

if (isMainModule(import.meta.url)) runScript(import.meta.url, main);
