// γ from MagicDec's cost model (PAPERS.md §2). With acceptance rate α and draft length γ, a
// verification step emits Ω(γ, α) = (1 − α^{γ+1}) / (1 − α) tokens on average, so
//
//   T_SD / T_AR = (γ·T_D + T_V(γ)) / (Ω(γ, α) · T_T)
//
// T_T: a plain decode step, T_D: one draft step, T_V(γ): a target step verifying γ + 1 tokens per
// sequence — all for the batch and context at hand, measured on this machine, since on a CPU T_V(γ)
// may grow with γ much faster than the paper's memory-bound GPU assumes. γ = 0 is plain decoding
// (ratio 1); the chosen γ minimises the ratio, so speculation is only used where it is predicted
// to pay.
//
// Calibration (`GammaTuner.calibrate`) times real steps on the running sequences' own caches: the
// target fed γ + 1 tokens per row and rolled back, the drafter asked for one token. Results are kept
// per batch size and context bucket (nearest power of two), for the model and per drafter. α is tracked
// per sequence (`AcceptanceEstimate`); a sequence that chose γ = 0 probes with γ = 1 every
// PROBE_EVERY steps, so a draft that starts to fit (copying text) is noticed, at a bounded cost.
//
// The prediction can be wrong: at 32K tokens × 16 sequences the measured speed-ups fell 0.14–0.23
// below it, and auto ran at 0.75–0.78× plain decoding (BENCHMARKS §8). So the scheduler also reports
// what its speculating steps achieved (`observe`): the tokens a row emitted per step over the time of
// the step, against T_T — the realised speed-up. Where its moving average stays below 1 after
// REALISED_MIN_STEPS such steps, the drafter decodes plainly in that bucket (no probes either) until
// the bucket changes (a longer context, a larger batch) and is measured afresh. T_T is the fastest of
// its calibration runs, so the check leans towards plain decoding.

import type { LanguageModel, ModelCache } from '../models/types.js';
import type { DraftRequest, Drafter } from './drafter.js';

/** Measured step times (seconds) for one batch size and context bucket. */
export interface StepTimes {
  /** T_T: one plain decode step of the batch. */
  target: number;
  /** T_D: one draft step of the batch. */
  draft: number;
  /** T_V(γ) for γ in `gammas`: a target step with γ + 1 tokens per sequence. */
  verify: Map<number, number>;
}

/** Ω(γ, α): expected tokens per verification step (accepted drafts + the correction or bonus). */
export function expectedTokens(gamma: number, alpha: number): number {
  if (alpha >= 1) return gamma + 1;
  return (1 - alpha ** (gamma + 1)) / (1 - alpha);
}

/** T_SD / T_AR for draft length γ (γ = 0: 1, plain decoding). */
export function costRatio(gamma: number, alpha: number, t: StepTimes): number {
  if (gamma === 0) return 1;
  const tv = t.verify.get(gamma);
  if (tv === undefined) throw new RangeError(`costRatio: T_V(${gamma}) was not measured`);
  return (gamma * t.draft + tv) / (expectedTokens(gamma, alpha) * t.target);
}

/** The γ (0 or a measured one) with the lowest predicted T_SD / T_AR, and that ratio. */
export function bestGamma(alpha: number, t: StepTimes, maxGamma = Infinity): { gamma: number; ratio: number } {
  let best = { gamma: 0, ratio: 1 };
  for (const g of t.verify.keys()) {
    if (g > maxGamma) continue;
    const ratio = costRatio(g, alpha, t);
    if (ratio < best.ratio) best = { gamma: g, ratio };
  }
  return best;
}

/** α of one sequence: accepted drafts over tested draft positions (a position after the first
 *  rejection is not tested), recent steps weighted more, starting from a prior of 1/2. */
export class AcceptanceEstimate {
  private hits = 1;
  private trials = 2;
  /** A verification: `accepted` of `drafted` draft tokens kept. */
  record(drafted: number, accepted: number): void {
    const decay = 0.9;
    this.hits = this.hits * decay + accepted;
    this.trials = this.trials * decay + accepted + (accepted < drafted ? 1 : 0);
  }
  get alpha(): number { return this.hits / this.trials; }
}

/** The draft budget (index into `times`, one StepTimes per budget: T_T and T_V are the target's and
 *  the same in all, T_D the budget's own) and γ of lowest predicted ratio, with α per budget; ties go
 *  to the earlier budget. γ = 0 (ratio 1) where no budget is predicted to pay. */
export function bestDraft(alphas: readonly number[], times: readonly StepTimes[], maxGamma = Infinity): { budget: number; gamma: number; ratio: number } {
  let best = { budget: 0, gamma: 0, ratio: 1 };
  times.forEach((t, b) => {
    const g = bestGamma(alphas[b]!, t, maxGamma);
    if (g.ratio < best.ratio) best = { budget: b, ...g };
  });
  return best;
}

/** γ candidates calibrated (T_V measured) and chosen from. */
export const GAMMA_CANDIDATES = [1, 2, 3, 4, 6, 8] as const;
/** A sequence at γ = 0 probes once every this many steps (and at its first): with the γ that would
 *  be best at α = PROBE_ALPHA, or not at all where even that would not pay. */
export const PROBE_EVERY = 32;
export const PROBE_ALPHA = 0.9;

/** γ 'auto' for one sequence: its α per draft budget (AcceptanceEstimate) and each step's choice of
 *  budget and γ (bestDraft). Where nothing is predicted to pay it decodes plainly and probes, at its
 *  first plain step and every PROBE_EVERY, with the γ that would pay at α = PROBE_ALPHA, in the budget
 *  verified least recently among those where that pays (so every budget's α gets measured). While it
 *  speculates with a drafter of several budgets, it drafts once with each budget not yet verified
 *  (right after the chosen one's first verification), then every PROBE_EVERY-th step with the budget
 *  verified least recently, at the same γ: a budget's α is only known by trying it, and a larger
 *  budget may accept enough more to pay for its cost. */
export class AutoSpeculation {
  readonly alphas: AcceptanceEstimate[];
  private readonly lastTried: number[];
  private plainSteps = 0;
  private steps = 0;
  constructor(budgets = 1) {
    this.alphas = Array.from({ length: budgets }, () => new AcceptanceEstimate());
    this.lastTried = new Array<number>(budgets).fill(-Infinity);
  }

  /** This step's budget and γ (0: plain decoding). `times`: one per budget; undefined: decode
   *  plainly without probing (no times measured, or the realised speed-up check stopped it). */
  choose(times: readonly StepTimes[] | undefined): { budget: number; gamma: number } {
    this.steps++;
    if (times === undefined) { this.plainSteps++; return { budget: 0, gamma: 0 }; }
    const best = bestDraft(this.alphas.map((a) => a.alpha), times);
    if (best.gamma === 0) {
      if (this.plainSteps++ % PROBE_EVERY !== 0) return { budget: 0, gamma: 0 };
      // probe: budgets where a well-fitting draft would pay, the least recently verified first, then the cheapest
      const paying = times.map((t, b) => ({ b, ...bestGamma(PROBE_ALPHA, t) })).filter((p) => p.gamma > 0);
      paying.sort((x, y) => this.lastTried[x.b]! - this.lastTried[y.b]! || x.ratio - y.ratio);
      return paying.length === 0 ? { budget: 0, gamma: 0 } : { budget: paying[0]!.b, gamma: paying[0]!.gamma };
    }
    // explore: a budget never verified as soon as the best one has been (each once, in order), then
    // every PROBE_EVERY-th step the one verified least recently
    const fresh = this.lastTried[best.budget]! > -Infinity && this.lastTried.some((t) => t === -Infinity);
    if (times.length > 1 && (fresh || this.steps % PROBE_EVERY === 0)) {
      let other = -1;
      for (let b = 0; b < times.length; b++) if (b !== best.budget && (other < 0 || this.lastTried[b]! < this.lastTried[other]!)) other = b;
      if (times[other]!.verify.has(best.gamma)) return { budget: other, gamma: best.gamma };
    }
    return { budget: best.budget, gamma: best.gamma };
  }

  /** A verification of a draft made with `budget`: `accepted` of `drafted` tokens kept. */
  record(budget: number, drafted: number, accepted: number): void {
    this.alphas[budget]!.record(drafted, accepted);
    this.lastTried[budget] = this.steps;
  }
}

/** Speculating steps observed in a bucket before their realised speed-up can stop speculation. */
export const REALISED_MIN_STEPS = 3;

/** A calibration costs about as much as 30–45 plain steps (T_T and T_V at every γ candidate, `reps`
 *  times each: measured with the default model, where five of them made a 128-token `generate
 *  --speculate auto` 1.6–2.4× slower than plain decoding). So a bucket is calibrated only when some
 *  row may still emit at least this many tokens, enough for the calibration to cost ≤ ~10% of the
 *  rest; times measured earlier (another request, the same bucket) are used whatever is left. */
export const CALIBRATE_MIN_REMAINING = 512;

/** Contexts below this share one bucket: at short contexts attention is a small part of a step, and
 *  a bucket per power of two recalibrated a short prompt's generation every time it doubled. */
export const MIN_CONTEXT_BUCKET = 1024;

/** One speculating row of the current step, for calibration. */
export interface TunedRow {
  readonly cache: ModelCache;
  /** The token the target is fed next. */
  readonly next: number;
  readonly ask: DraftRequest;
  /** Tokens the row may still emit (its max tokens less those emitted); undefined: unknown. */
  readonly remaining?: number;
}

export class GammaTuner {
  private readonly targetTimes = new Map<string, { target: number; verify: Map<number, number> }>();
  private readonly draftTimes = new Map<string, number>();
  /** Per drafter and bucket: the moving average of speculating steps' realised speed-up, and how many. */
  private readonly realised = new Map<string, { speedup: number; steps: number }>();
  /** Calibrations run (for tests and the benchmark's notes). */
  calibrations = 0;
  /** Buckets where the realised speed-up stopped speculation (for tests and the benchmark's notes). */
  stopped = 0;

  /** `clock` in milliseconds: wall time by default; a benchmark on a shared machine may pass the
   *  process's CPU time, which other jobs disturb less. */
  constructor(private readonly model: LanguageModel, private readonly reps = 3, readonly clock: () => number = () => performance.now(),
              private readonly minRemaining = CALIBRATE_MIN_REMAINING) {}

  /** The measured times for this batch (T_D of the drafter's `budget`), calibrating first when no bucket serves it — only where a
   *  row may still emit minRemaining tokens (CALIBRATE_MIN_REMAINING), else undefined: plain
   *  decoding. `rows`: every decoding row of the step (their caches are used and left as they were). */
  times(drafter: Drafter, rows: readonly TunedRow[], budget = 0): StepTimes | undefined {
    if (rows.length === 0) return undefined;
    const bucket = this.bucket(rows);
    let tt = this.targetTimes.get(bucket);
    if (tt === undefined) {
      if (!rows.some((r) => (r.remaining ?? Infinity) >= this.minRemaining)) return undefined;
      tt = this.measureTarget(rows);
      if (tt === undefined) return undefined;
      this.targetTimes.set(bucket, tt);
      this.calibrations++;
    }
    const dk = `${drafter.name}#${budget}|${bucket}`;
    let td = this.draftTimes.get(dk);
    if (td === undefined) {
      td = this.measureDraft(drafter, rows, budget);
      this.draftTimes.set(dk, td);
    }
    return { target: tt.target, draft: td, verify: tt.verify };
  }

  /** The key under which `observe` and `losing` keep what `drafter`'s steps over `rows` realised
   *  (taken before the step: its rows' caches grow in it). */
  realisedKey(drafter: Drafter, rows: readonly TunedRow[]): string { return `${drafter.name}|${this.bucket(rows)}`; }

  /** Whether speculating steps under `key` (realisedKey) realised less than plain decoding's speed
   *  (see the file's comment): then the scheduler decodes those rows plainly. */
  losing(key: string): boolean {
    const r = this.realised.get(key);
    return r !== undefined && r.steps >= REALISED_MIN_STEPS && r.speedup < 1;
  }

  /** A speculating step under `key` (realisedKey) of `rows` rows: it took `ms` on this tuner's
   *  clock, drafts and verification included, and its rows emitted `emitted` tokens in all.
   *  `target`: T_T of the bucket (seconds). */
  observe(key: string, rows: number, ms: number, emitted: number, target: number): void {
    if (rows === 0 || !(ms > 0)) return;
    const speedup = (emitted / rows) * target / (ms / 1000);
    const r = this.realised.get(key);
    const was = this.losing(key);
    this.realised.set(key, r === undefined ? { speedup, steps: 1 } : { speedup: 0.7 * r.speedup + 0.3 * speedup, steps: r.steps + 1 });
    if (!was && this.losing(key)) this.stopped++;
  }

  /** The key of the times that serve `rows`: batch size (see measuredBatch) and context bucket. */
  private bucket(rows: readonly TunedRow[]): string {
    const ctx = contextBucket(rows);
    return `${this.measuredBatch(rows.length, ctx) ?? rows.length}:${ctx}`;
  }

  /** The batch size whose times serve `batch` rows at context bucket `ctx`: its own if measured, else
   *  the smallest larger one measured. A batch shrinks one row at a time as its sequences finish, and
   *  a calibration costs tens of plain steps (T_V at every γ candidate, several times each): measured
   *  per size, a batch of 4 finishing at different steps paid three more calibrations, and
   *  `--speculate auto` ran at 0.22× plain decoding (BENCHMARKS §8). A larger batch's times lean
   *  towards plain decoding here: verification's cost relative to a plain step grows with the batch
   *  (T_V(4)/T_T 2.7–4.1 at batch 1, 5.2–5.3 at batch 4 on this CPU at 4K). A batch larger than any
   *  measured is calibrated. */
  private measuredBatch(batch: number, ctx: number): number | undefined {
    let best: number | undefined;
    for (const key of this.targetTimes.keys()) {
      const [b, c] = key.split(':').map(Number) as [number, number];
      if (c === ctx && b >= batch && (best === undefined || b < best)) best = b;
    }
    return best;
  }

  /** T_T and T_V(γ): the rows fed 1 and γ + 1 tokens (logits as verification asks), then truncated
   *  back; the fastest of `reps` runs. Undefined when the KV memory has no room for it. */
  private measureTarget(rows: readonly TunedRow[]): { target: number; verify: Map<number, number> } | undefined {
    const room = Math.min(...rows.map((r) => r.cache.capacity - r.cache.length));
    const time = (gamma: number): number => {
      let best = Infinity;
      for (let i = 0; i < this.reps; i++) {
        const t0 = this.clock();
        this.model.forwardBatch(rows.map((r) => ({ cache: r.cache, tokens: new Array<number>(gamma + 1).fill(r.next), logits: gamma > 0 ? 'all' : 'last', phase: 'decode' })));
        best = Math.min(best, this.clock() - t0);
        for (const r of rows) r.cache.truncate(r.cache.length - gamma - 1);
      }
      return best / 1000;
    };
    try {
      time(0);                                                             // warm-up: scratch, pages, thread wake-up
      const target = time(0), verify = new Map<number, number>();
      for (const g of GAMMA_CANDIDATES) if (g + 1 <= room) verify.set(g, time(g));
      return { target, verify };
    } catch (e) {
      if (e instanceof Error && e.name === 'OutOfKVMemoryError') return undefined;
      throw e;
    }
  }

  /** T_D: the drafter asked for one token per row with `budget`, after a first call that brings its
   *  state up to date (a draft model's prefill of the prompt); the fastest of `reps` timed calls. */
  private measureDraft(drafter: Drafter, rows: readonly TunedRow[], budget: number): number {
    const asks = rows.map((r) => ({ ...r.ask, gamma: 1, budget }));
    drafter.propose(asks);
    let best = Infinity;
    for (let i = 0; i < this.reps; i++) {
      const t0 = this.clock();
      drafter.propose(asks);
      best = Math.min(best, this.clock() - t0);
    }
    return best / 1000;
  }
}

/** Context bucket: the power of two nearest the mean cache length (on a log scale), so a sequence
 *  that starts at a power of two does not recalibrate a few tokens later; MIN_CONTEXT_BUCKET at least. */
function contextBucket(rows: readonly TunedRow[]): number {
  const mean = rows.reduce((s, r) => s + r.cache.length, 0) / rows.length;
  return Math.max(MIN_CONTEXT_BUCKET, 2 ** Math.round(Math.log2(Math.max(mean, 1))));
}
