// Token sampling: logits (vocab) → one token id.
//
// The pipeline, in Hugging Face's order (generation/logits_process.py):
//   1. penalties on raw logits over the last `repetitionWindow` tokens of the history:
//      repetition (CTRL paper, Keskar et al. 2019: positive logits divided, negative multiplied — as HF
//      and llama.cpp do), then frequency/presence (OpenAI: logit −= count·freq + [count>0]·presence);
//   2. temperature 0 → greedy argmax (lowest id wins ties); otherwise logits / temperature;
//   3. top-k (ties at the k-th value keep the lower ids), softmax, top-p (smallest set of the most
//      likely tokens whose mass reaches p), min-p (keep p ≥ minP · pmax), renormalise;
//   4. one draw from a seeded xoshiro128** generator.
// `processDistribution` returns that final (sparse) distribution: speculative decoding needs the p and
// q actually sampled from, not the raw softmax.
//
// Shape legend: V = vocabulary size, m = number of candidates kept.
// Nothing here sorts the vocabulary: top-k takes a size-k heap, O(V log k); top-p is a quickselect on
// rank, O(V) expected; min-p is a threshold. Ranks break ties by the lower id, so sets are exact.

export interface SamplingOptions {
  /** 0 = greedy (argmax). Default 1. Must be finite and ≥ 0. */
  temperature?: number;
  /** Keep the k most likely tokens; 0 = off (default). Integer ≥ 0. */
  topK?: number;
  /** Nucleus sampling mass in (0, 1]; 1 = off (default). */
  topP?: number;
  /** Drop tokens with p < minP · pmax; in [0, 1], 0 = off (default). */
  minP?: number;
  /** > 0; 1 = off (default). */
  repetitionPenalty?: number;
  /** OpenAI-style additive penalties in [−2, 2]; 0 = off (default). */
  frequencyPenalty?: number;
  presencePenalty?: number;
  /** How many of the most recent history tokens the penalties look at (default 64, like llama.cpp's
   *  repeat_last_n); Infinity = the whole history. */
  repetitionWindow?: number;
  /** Seed of the generator (any integer). Default: a random one (see `Sampler.seed`). */
  seed?: number;
}

/** The processed distribution a token is drawn from: `probs[i]` is the probability of `ids[i]`
 *  (sums to 1). The order of the ids is unspecified (but deterministic). */
export interface Distribution {
  ids: Int32Array;    // (m)
  probs: Float64Array; // (m)
}

export interface Sampler {
  /** The seed actually used (reproduce a run by passing it back). */
  readonly seed: number;
  readonly options: Readonly<Required<Omit<SamplingOptions, 'seed'>>>;
  /** Draws a token from `logits` (V). `history` = every token so far (prompt + generated), for penalties.
   *  Does not modify `logits`. */
  sample(logits: Float32Array, history?: ArrayLike<number>): number;
  /** The processed distribution `sample` draws from, as a dense (V) array. */
  probabilities(logits: Float32Array, history?: ArrayLike<number>): Float64Array;
  /** The next draw in [0, 1) of the sampler's seeded generator (speculative decoding's acceptance
   *  tests draw from the same stream, so a seeded run is reproducible). */
  uniform(): number;
}

const DEFAULTS: Required<Omit<SamplingOptions, 'seed'>> = {
  temperature: 1, topK: 0, topP: 1, minP: 0,
  repetitionPenalty: 1, frequencyPenalty: 0, presencePenalty: 0, repetitionWindow: 64,
};

function check(name: string, value: number, ok: boolean, range: string): void {
  if (typeof value !== 'number' || Number.isNaN(value) || !ok) {
    throw new RangeError(`sampling option ${name} = ${String(value)} is invalid: expected ${range}`);
  }
}

/** Fills in defaults and throws a RangeError naming the option and its allowed range. */
export function validateSamplingOptions(opts: SamplingOptions = {}): Required<Omit<SamplingOptions, 'seed'>> & { seed?: number } {
  const o = { ...DEFAULTS };
  for (const key of Object.keys(DEFAULTS) as (keyof typeof DEFAULTS)[]) {
    if (opts[key] !== undefined) o[key] = opts[key] as number;
  }
  check('temperature', o.temperature, Number.isFinite(o.temperature) && o.temperature >= 0, 'a finite number ≥ 0 (0 = greedy)');
  check('topK', o.topK, Number.isInteger(o.topK) && o.topK >= 0, 'an integer ≥ 0 (0 = off)');
  check('topP', o.topP, o.topP > 0 && o.topP <= 1, 'a number in (0, 1] (1 = off)');
  check('minP', o.minP, o.minP >= 0 && o.minP <= 1, 'a number in [0, 1] (0 = off)');
  check('repetitionPenalty', o.repetitionPenalty, Number.isFinite(o.repetitionPenalty) && o.repetitionPenalty > 0, 'a finite number > 0 (1 = off)');
  check('frequencyPenalty', o.frequencyPenalty, o.frequencyPenalty >= -2 && o.frequencyPenalty <= 2, 'a number in [-2, 2] (0 = off)');
  check('presencePenalty', o.presencePenalty, o.presencePenalty >= -2 && o.presencePenalty <= 2, 'a number in [-2, 2] (0 = off)');
  check('repetitionWindow', o.repetitionWindow, (Number.isInteger(o.repetitionWindow) && o.repetitionWindow >= 0) || o.repetitionWindow === Infinity, 'an integer ≥ 0 or Infinity (whole history)');
  if (opts.seed !== undefined) check('seed', opts.seed, Number.isSafeInteger(opts.seed), 'a safe integer');
  return opts.seed === undefined ? o : { ...o, seed: opts.seed };
}

// ---------------------------------------------------------------------------------------------- PRNG

/** xoshiro128** (Blackman & Vigna), seeded through splitmix32; `next()` returns a double in [0, 1). */
export class Rng {
  private s = new Uint32Array(4);
  constructor(seed: number) {
    let x = (seed >>> 0) ^ Math.floor(seed / 2 ** 32) * 0x9e3779b9;
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) | 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      this.s[i] = (z ^ (z >>> 16)) >>> 0;
    }
    if ((this.s[0] | this.s[1] | this.s[2] | this.s[3]) === 0) this.s[0] = 1;
  }
  nextU32(): number {
    const s = this.s;
    const r = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
    s[2] ^= t; s[3] = rotl(s[3], 11);
    return r;
  }
  /** 53 random bits → [0, 1). */
  next(): number {
    return ((this.nextU32() >>> 5) * 67108864 + (this.nextU32() >>> 6)) / 9007199254740992;
  }
}
function rotl(x: number, k: number): number { return (x << k) | (x >>> (32 - k)); }

// ----------------------------------------------------------------------------------------- pipeline

type Opts = Required<Omit<SamplingOptions, 'seed'>>;

/** Copies logits into `out` (V) and applies the penalties over the history window. */
function penalise(logits: Float32Array, history: ArrayLike<number> | undefined, o: Opts, out: Float32Array): Float32Array {
  out.set(logits);
  const active = o.repetitionPenalty !== 1 || o.frequencyPenalty !== 0 || o.presencePenalty !== 0;
  if (!active || !history || history.length === 0 || o.repetitionWindow === 0) return out;
  const start = Math.max(0, history.length - o.repetitionWindow);
  const counts = new Map<number, number>();
  for (let i = start; i < history.length; i++) {
    const t = history[i];
    if (t >= 0 && t < out.length) counts.set(t, (counts.get(t) ?? 0) + 1);
  }
  for (const [t, c] of counts) {
    let l = out[t];
    if (o.repetitionPenalty !== 1) l = l > 0 ? l / o.repetitionPenalty : l * o.repetitionPenalty;
    l -= c * o.frequencyPenalty + o.presencePenalty;
    // a tiny penalty divides a logit past float32's range: name the option, not the symptom
    if (!Number.isFinite(Math.fround(l)) && Number.isFinite(out[t])) {
      throw new RangeError(`sampling option repetitionPenalty = ${o.repetitionPenalty} turns the logit ${out[t]} of token ${t} into ${Math.fround(l)}: `
        + 'use a penalty near 1 (1 = off, 1.1 is typical)');
    }
    out[t] = l;
  }
  return out;
}

/** Index of the largest value; the lowest index wins ties; NaN never wins. */
export function argmax(x: ArrayLike<number>): number {
  let best = 0, bv = -Infinity;
  for (let i = 0; i < x.length; i++) if (x[i] > bv) { bv = x[i]; best = i; }
  return best;
}

/** "a ranks before b": larger value first, then smaller id. */
function before(x: Float32Array, a: number, b: number): boolean {
  return x[a] > x[b] || (x[a] === x[b] && a < b);
}

/** The k best ids of x (V), in rank order, via a min-heap of size k: O(V log k). NaN is skipped. */
export function topKIndices(x: Float32Array, k: number): Int32Array {
  k = Math.min(k, x.length);
  const heap = new Int32Array(k); // heap[0] is the worst kept id
  let n = 0;
  const worse = (a: number, b: number) => before(x, b, a);
  const down = (i: number) => {
    for (;;) {
      const l = 2 * i + 1, r = l + 1;
      let w = i;
      if (l < n && worse(heap[l], heap[w])) w = l;
      if (r < n && worse(heap[r], heap[w])) w = r;
      if (w === i) return;
      const t = heap[i]; heap[i] = heap[w]; heap[w] = t; i = w;
    }
  };
  for (let id = 0; id < x.length; id++) {
    if (Number.isNaN(x[id])) continue;
    if (n < k) {
      let i = n++;
      heap[i] = id;
      while (i > 0) {
        const p = (i - 1) >> 1;
        if (!worse(heap[i], heap[p])) break;
        const t = heap[i]; heap[i] = heap[p]; heap[p] = t; i = p;
      }
    } else if (k > 0) {
      const v = x[id], w = x[heap[0]]; // inline test first: most ids lose to the worst kept one
      if (v > w || (v === w && id < heap[0])) { heap[0] = id; down(0); }
    }
  }
  const out = Array.from(heap.subarray(0, n));
  out.sort((a, b) => (before(x, a, b) ? -1 : 1));
  return Int32Array.from(out);
}

/** Reorders ids/probs[0..m) so that the first `returned` entries are the nucleus: the smallest set of
 *  best-ranked tokens whose mass reaches p. Quickselect on rank, so O(m) expected and no full sort. */
function nucleus(ids: Int32Array, probs: Float64Array, m: number, x: Float32Array, p: number): number {
  const swap = (i: number, j: number) => {
    const t = ids[i]; ids[i] = ids[j]; ids[j] = t;
    const q = probs[i]; probs[i] = probs[j]; probs[j] = q;
  };
  let lo = 0, hi = m, acc = 0; // ids[0..lo) are kept (mass acc); the cutoff lies in [lo, hi)
  while (hi - lo > 32) {
    swap(lo, (lo + hi) >> 1); // pivot to the front
    const pivot = ids[lo];
    let k = lo + 1, mass = 0;
    for (let i = lo + 1; i < hi; i++) if (before(x, ids[i], pivot)) { swap(i, k); mass += probs[k]; k++; }
    swap(lo, k - 1); // [lo, k−1) ranks above the pivot, the pivot is at k−1, the rest below
    if (acc + mass >= p) hi = k - 1;
    else if (acc + mass + probs[k - 1] >= p) return k;
    else { acc += mass + probs[k - 1]; lo = k; }
  }
  const seg = Array.from(ids.subarray(lo, hi), (id, j) => ({ id, p: probs[lo + j] }));
  seg.sort((a, b) => (before(x, a.id, b.id) ? -1 : 1));
  for (let j = 0; j < seg.length; j++) {
    ids[lo + j] = seg[j].id; probs[lo + j] = seg[j].p;
    acc += seg[j].p;
    if (acc >= p) return lo + j + 1;
  }
  return hi; // rounding left the mass a hair under p: keep the segment
}

/** The processed distribution for already-penalised logits `x` (V). */
function distributionOf(x: Float32Array, o: Opts): Distribution {
  if (o.temperature === 0) return { ids: Int32Array.of(argmax(x)), probs: Float64Array.of(1) };
  const V = x.length;
  const maxLogit = x[argmax(x)];
  if (!Number.isFinite(maxLogit)) throw new RangeError('sampler: logits have no finite maximum (all NaN or ±Infinity)');
  const invT = 1 / o.temperature;

  // Candidates (m) and their softmax weights: the top-k (HF: softmax over the top-k logits) or all.
  let ids: Int32Array, m = 0;
  if (o.topK > 0) {
    ids = topKIndices(x, o.topK);
    m = ids.length;
  } else {
    // min-p without top-p needs no full normaliser: p ≥ minP·pmax ⇔ x ≥ max + T·ln(minP), so only the
    // survivors are exponentiated. Otherwise every id is a candidate (NaN never competes).
    const cut = o.topP === 1 && o.minP > 0 ? maxLogit + o.temperature * Math.log(o.minP) : -Infinity;
    ids = new Int32Array(V);
    for (let i = 0; i < V; i++) if (x[i] >= cut) ids[m++] = i;
  }
  const probs = new Float64Array(m); // (m)
  let Z = 0;
  for (let j = 0; j < m; j++) { const w = Math.exp((x[ids[j]] - maxLogit) * invT); probs[j] = w; Z += w; }
  for (let j = 0; j < m; j++) probs[j] /= Z;

  if (o.topP < 1) m = nucleus(ids, probs, m, x, o.topP);
  if (o.minP > 0) { // keep p ≥ minP · pmax (order-preserving compaction)
    let pmax = 0;
    for (let j = 0; j < m; j++) if (probs[j] > pmax) pmax = probs[j];
    const cut = o.minP * pmax;
    let k = 0;
    for (let j = 0; j < m; j++) if (probs[j] >= cut) { ids[k] = ids[j]; probs[k] = probs[j]; k++; }
    m = k;
  }
  let s = 0;
  for (let j = 0; j < m; j++) s += probs[j];
  for (let j = 0; j < m; j++) probs[j] /= s;
  return { ids: ids.subarray(0, m), probs: probs.subarray(0, m) };
}

/** The distribution a sampler with `opts` draws from, given `logits` (V) and the token history. */
export function processDistribution(logits: Float32Array, history: ArrayLike<number> | undefined, opts: SamplingOptions = {}): Distribution {
  const o = validateSamplingOptions(opts);
  return distributionOf(penalise(logits, history, o, new Float32Array(logits.length)), o);
}

/** Draws an index from a distribution with a uniform u in [0, 1). */
export function drawFrom(d: Distribution, u: number): number {
  let cum = 0;
  for (let i = 0; i < d.ids.length; i++) { cum += d.probs[i]; if (u < cum) return d.ids[i]; }
  return d.ids[d.ids.length - 1]; // rounding: cum ended a hair under 1
}

/** A stateful sampler: options validated once, a seeded generator, one scratch buffer reused. */
export function createSampler(opts: SamplingOptions = {}): Sampler {
  const o = validateSamplingOptions(opts);
  const seed = o.seed ?? Math.floor(Math.random() * 2 ** 32);
  const rng = new Rng(seed);
  const { seed: _unused, ...options } = o as Opts & { seed?: number };
  void _unused;
  let scratch = new Float32Array(0);
  const penalised = (logits: Float32Array, history?: ArrayLike<number>) => {
    if (scratch.length !== logits.length) scratch = new Float32Array(logits.length);
    return penalise(logits, history, options, scratch);
  };
  return {
    seed,
    options,
    sample(logits, history) {
      const x = penalised(logits, history);
      if (options.temperature === 0) return argmax(x);
      return drawFrom(distributionOf(x, options), rng.next());
    },
    probabilities(logits, history) {
      const d = distributionOf(penalised(logits, history), options);
      const dense = new Float64Array(logits.length);
      for (let i = 0; i < d.ids.length; i++) dense[d.ids[i]] = d.probs[i];
      return dense;
    },
    uniform: () => rng.next(),
  };
}
