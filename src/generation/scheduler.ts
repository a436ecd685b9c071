// Continuous batching: every generation of one model instance goes through its Scheduler, which
// decodes the running sequences together, one batched forward step at a time, and lets requests
// join and leave between steps. Each request is a SequenceState (sequence.ts: sampling, stop / eos /
// max tokens, streamed text, timings) plus its cache; the scheduler only feeds the model.
//
//   submit() ─▶ waiting ─(a cache is free)─▶ prefill chunks ─▶ decode, one token per step ─▶ done
//                                   each step: [decode tokens of all | prefill chunks within the budget]
//
// A step: drop cancelled requests (their caches released at once), admit waiting ones, build one
// batch under `stepTokens` (decode tokens first, then prompt chunks in arrival order, so a long
// prompt never stalls everyone's decoding), run model.forwardBatch, hand each sequence its token,
// yield to the event loop. A consumer that stops reading pauses its own sequence only (backpressure);
// one that breaks off, aborts, or drops its iterator unfinished cancels it.
// The logits a step returns are views the next step overwrites: they are sampled before any await.

import type { BatchItem, LanguageModel, ModelCache } from '../models/types.js';
import { OutOfKVMemoryError } from '../attention/kv-pages.js';
import type { FinishReason, GenerationChunk, GenerationResult, SequenceState } from './sequence.js';
import { SpeculativeMeter, verifyDraft } from './speculative.js';
import { PROMPT_LOOKUP, type DraftRequest, type Drafter } from './drafter.js';
import { selfDrafter } from './self-draft.js';
import { AutoSpeculation, GammaTuner, type StepTimes, type TunedRow } from './speculation-cost.js';

/** Speculative decoding for one request: a draft of up to `gamma` tokens per step, verified by the
 *  model in the same batched step as everyone else's tokens. */
export interface SpeculateOptions {
  /** How drafts are made: 'prompt-lookup' (n-gram match in the prompt and the output so far),
   *  'self' (the model itself through its draft attention: a model loaded with `draftAttention`), or
   *  a Drafter (drafter.ts), e.g. a small draft model sharing the tokenizer. */
  draft: 'prompt-lookup' | 'self' | Drafter;
  /** Most draft tokens per step (default 4), or 'auto': chosen each step, per sequence, by the cost
   *  model (speculation-cost.ts) from step times measured on this machine and the sequence's
   *  acceptance so far — 0 (plain decoding) where speculation is not predicted to pay. */
  gamma?: number | 'auto';
}

export interface SchedulerOptions {
  /** Most tokens per step over all sequences (decode tokens + prompt chunks). Default 256. */
  stepTokens?: number;
  /** Most requests waiting for a sequence slot; past it submit() throws QueueFullError. Default 256. */
  maxQueued?: number;
  /** Chunks a consumer may leave unread before its sequence pauses. Default 8. */
  maxUnread?: number;
  /** Step times for γ 'auto' (default: a GammaTuner measuring this model on first use). */
  tuner?: GammaTuner;
}

export interface SubmitOptions {
  /** Continue in this cache (the prompt goes after the positions it holds); it is not released at
   *  the end and then holds every fed token. Default: a cache of the request's own, released at the end. */
  cache?: ModelCache;
  signal?: AbortSignal;
  /** Most prompt tokens this request feeds per step (default: as many as the step budget allows). */
  prefillChunk?: number;
  /** Called after each prompt chunk with (tokens done, prompt tokens). */
  onPrefillProgress?: (done: number, total: number) => void;
  /** Start from the first `length` positions of another cache, by reference (cache.fork at
   *  admission; the prompt goes after them). Ignored with `cache`. `release` is called once the
   *  request no longer needs `cache` to stay alive: after its fork (used = true), or when, to free the
   *  sequence slots that pinned prefixes hold, the request gave the prefix up and prefills those
   *  positions itself (used = false; see admit). `adopt`, when given, hands `cache` itself over to the
   *  request (which then owns it) if nothing else needs it: a request with no free sequence slot starts
   *  in the prefix's own slot (cut to `length`) instead of waiting for another. */
  prefix?: { cache: ModelCache; length: number; release?: (used: boolean) => void; adopt?: () => ModelCache | undefined };
  /** Receives the request's own cache when it finished (not aborted, not failed) instead of it
   *  being released — the caller's prompt cache for the next request; the receiver releases it. */
  keepCache?: (cache: ModelCache) => void;
  /** Draft and verify several tokens per step (lossless: the output is what plain decoding gives). */
  speculate?: SpeculateOptions;
}

/** Too many requests are already waiting. */
export class QueueFullError extends Error {
  constructor(readonly queued: number) {
    super(`the generation queue is full (${queued} requests waiting for a sequence slot); retry later, or load the model with a larger parallel`);
    this.name = 'QueueFullError';
  }
}

export interface SchedulerStats {
  /** Forward steps run. */
  steps: number;
  /** Steps that held more than one sequence. */
  batchedSteps: number;
  /** Most sequences in one step. */
  maxBatch: number;
  /** Requests decoding or prefilling now, and waiting for a slot. */
  running: number;
  queued: number;
}

type Out = { chunk: GenerationChunk } | { result: GenerationResult } | { error: unknown };

interface Request {
  readonly order: number;
  readonly seq: SequenceState;
  opts: SubmitOptions;
  /** Prefix positions this request feeds itself after giving its prefix up (progress counts past them). */
  refed: number;
  readonly ownCache: boolean;
  cache: ModelCache | undefined;
  prompt: readonly number[];
  fed: number;
  /** The sampled token to feed next (decoding). */
  next: number;
  phase: 'waiting' | 'prefill' | 'decode' | 'done';
  /** Where its drafts come from (speculation). */
  readonly drafter: Drafter | undefined;
  /** The draft fed after `next` in the current step, and the distributions it was drawn from. */
  draft: number[];
  q: Float64Array[] | undefined;
  /** γ 'auto': the sequence's acceptance per draft budget and its choice; this step's budget (0 but
   *  with γ 'auto') and γ. */
  auto: AutoSpeculation | undefined;
  budgetNow: number;
  gammaNow: number;
  meter: SpeculativeMeter | undefined;
  cancelled: boolean;
  readonly out: Out[];
  wake: (() => void) | undefined;
}

const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));
const schedulers = new WeakMap<LanguageModel, Scheduler>();

export class Scheduler {
  private readonly stepTokens: number;
  private readonly maxQueued: number;
  private readonly maxUnread: number;
  private readonly waiting: Request[] = [];
  private readonly active: Request[] = [];
  private order = 0;
  private looping = false;
  private idle: (() => void) | undefined;
  private readonly s = { steps: 0, batchedSteps: 0, maxBatch: 0 };
  /** Holders of idle caches (prompt caches) that free one when asked: called when a request waits
   *  for a sequence slot or KV pages; each returns whether it released something. */
  readonly reclaimers = new Set<() => boolean>();
  /** Step times for γ 'auto', measured on first use per batch size and context bucket. */
  private tuner: GammaTuner | undefined;
  /** The model drafting for itself (speculate draft 'self'). */
  private self: Drafter | undefined;
  /** Cancels the request of an iterator that was dropped unfinished. */
  private readonly dropped = new FinalizationRegistry<Request>((r) => { if (r.phase !== 'done') { r.cancelled = true; this.kick(); } });

  constructor(readonly model: LanguageModel, opts: SchedulerOptions = {}) {
    const int = (name: string, v: number | undefined, fallback: number) => {
      const x = v ?? fallback;
      if (!Number.isInteger(x) || x < 1) throw new RangeError(`Scheduler: ${name} must be a positive integer, got ${v}`);
      return x;
    };
    this.stepTokens = int('stepTokens', opts.stepTokens, 256);
    this.maxQueued = int('maxQueued', opts.maxQueued, 256);
    this.maxUnread = int('maxUnread', opts.maxUnread, 8);
    this.tuner = opts.tuner;
  }

  /** The scheduler every generation on `model` shares (made on first use). */
  static of(model: LanguageModel): Scheduler {
    let s = schedulers.get(model);
    if (s === undefined) { s = new Scheduler(model); schedulers.set(model, s); }
    return s;
  }

  get stats(): SchedulerStats {
    return { ...this.s, running: this.active.length, queued: this.waiting.length };
  }

  /** Queues a sequence (its SequenceState not yet placed: the scheduler fits it to its cache) and
   *  streams its chunks; the generator returns the GenerationResult. Breaking out cancels it. */
  submit(seq: SequenceState, opts: SubmitOptions = {}): AsyncGenerator<GenerationChunk, GenerationResult, void> {
    if (opts.cache?.released) throw new Error('submit: the cache has been released');
    // context errors surface now, not from inside the loop (a cache of our own starts empty)
    const cached = opts.cache?.length ?? opts.prefix?.length ?? 0;
    const prompt = seq.fitContext(cached, Math.min(this.model.contextLength, opts.cache?.capacity ?? Infinity));
    if (opts.prefillChunk !== undefined && (!Number.isInteger(opts.prefillChunk) || opts.prefillChunk < 1)) {
      throw new RangeError(`prefillChunk = ${String(opts.prefillChunk)} is invalid: expected an integer ≥ 1`);
    }
    const gamma = opts.speculate?.gamma ?? 4;
    const auto = gamma === 'auto';
    let drafter: Drafter | undefined;
    if (opts.speculate !== undefined) {
      const d = opts.speculate.draft;
      if (d === 'prompt-lookup') drafter = PROMPT_LOOKUP;
      else if (d === 'self') {
        if ((this.model.draftAttentions ?? []).length === 0) {
          throw new RangeError("speculate: draft 'self' needs a model loaded with a draft attention (load option draftAttention, e.g. 'streaming:window=256'; --speculate draft=streaming:window=256)");
        }
        drafter = this.self ??= selfDrafter(this.model);
      } else if (typeof d === 'object' && d !== null && typeof d.propose === 'function' && typeof d.forget === 'function') drafter = d;
      else throw new RangeError(`speculate: unknown draft ${JSON.stringify(d)}; use 'prompt-lookup', 'self' or a Drafter (e.g. a DraftModel)`);
      if (drafter.vocabSize !== undefined && drafter.vocabSize !== this.model.vocabSize) {
        throw new RangeError(`speculate: the draft ${drafter.name} has a vocabulary of ${drafter.vocabSize} tokens but the model has ${this.model.vocabSize}; a draft must share the model's tokenizer`);
      }
      if (!auto && (!Number.isInteger(gamma) || gamma < 1 || gamma > 64)) throw new RangeError(`speculate: gamma must be an integer in [1, 64] or 'auto', got ${String(opts.speculate.gamma)}`);
      const budgets = drafter.budgets?.length ?? 1;
      if (!auto && budgets > 1) {
        throw new RangeError(`speculate: the draft ${drafter.name} has ${budgets} draft budgets (${drafter.budgets!.join('; ')}); the cost model chooses among them, which needs gamma 'auto'`);
      }
    }
    if (this.waiting.length >= this.maxQueued) throw new QueueFullError(this.waiting.length);
    const r: Request = {
      order: this.order++, seq, opts, refed: 0, ownCache: opts.cache === undefined, cache: opts.cache, prompt, fed: 0, next: -1,
      phase: 'waiting', drafter, draft: [], q: undefined, meter: drafter ? new SpeculativeMeter() : undefined,
      auto: drafter && auto ? new AutoSpeculation(drafter.budgets?.length ?? 1) : undefined, budgetNow: 0, gammaNow: 0, cancelled: false, out: [], wake: undefined,
    };
    this.waiting.push(r);
    const it = this.stream(r);
    this.dropped.register(it, r, r);
    this.kick();
    return it;
  }

  private async *stream(r: Request): AsyncGenerator<GenerationChunk, GenerationResult, void> {
    try {
      for (;;) {
        while (r.out.length === 0) await new Promise<void>((resolve) => { r.wake = resolve; });
        const o = r.out.shift()!;
        if (r.out.length < this.maxUnread) this.kick();                   // room again: a paused sequence may go on
        if ('error' in o) throw o.error;
        if ('result' in o) return o.result;
        yield o.chunk;
      }
    } finally {
      this.dropped.unregister(r);
      if (r.phase !== 'done') { r.cancelled = true; this.kick(); }
    }
  }

  /** Starts the loop if it is not running, or wakes it from waiting for work. */
  private kick(): void {
    if (this.idle) { const wake = this.idle; this.idle = undefined; wake(); }
    if (!this.looping) { this.looping = true; void this.loop(); }
  }

  private async loop(): Promise<void> {
    try {
      while (this.waiting.length > 0 || this.active.length > 0) {
        const ran = this.step();
        // nothing could run (every consumer is behind, or slots are taken outside the scheduler):
        // sleep until a consumer reads, a request arrives, or a moment passes
        if (ran) await yieldToEventLoop();
        else await new Promise<void>((resolve) => { this.idle = resolve; setTimeout(() => { if (this.idle === resolve) this.kick(); }, 20).unref(); });
      }
    } finally { this.looping = false; }
  }

  /** One step; false when nothing could run. */
  private step(): boolean {
    for (const r of [...this.active, ...this.waiting]) {
      if (r.cancelled || r.seq.aborted) this.end(r, 'abort');
    }
    this.admit();
    const batch: BatchItem[] = [], who: Request[] = [];
    let budget = this.stepTokens;
    const decodingNow = this.active.filter((r) => r.phase === 'decode' && r.out.length < this.maxUnread);
    const watch = this.chooseGammas(decodingNow.filter((r) => r.auto !== undefined));
    const t0 = watch === undefined ? 0 : this.tuner!.clock();
    const before = watch === undefined ? undefined : decodingNow.map((r) => r.seq.tokens.length);
    this.draftAll(decodingNow);
    for (const r of decodingNow) {
      if (r.phase !== 'decode') continue;                                   // its drafter failed
      batch.push({ cache: r.cache!, tokens: [r.next, ...r.draft], logits: r.draft.length > 0 ? 'all' : 'last', phase: 'decode' });
      who.push(r);
      budget -= 1 + r.draft.length;
    }
    const decoding = batch.length;
    for (const r of this.active) {
      if (r.phase !== 'prefill' || r.out.length >= this.maxUnread) continue;
      if (budget <= 0 && batch.length > 0) break;
      const n = Math.max(1, Math.min(r.prompt.length - r.fed, budget, r.opts.prefillChunk ?? Infinity));
      batch.push({ cache: r.cache!, tokens: r.prompt.slice(r.fed, r.fed + n), logits: r.fed + n === r.prompt.length ? 'last' : 'none', phase: 'prefill' });
      who.push(r);
      budget -= n;
    }
    if (batch.length === 0) return false;
    let logits: Float32Array[];
    try {
      logits = this.model.forwardBatch(batch);
    } catch (e) {
      if (!(e instanceof OutOfKVMemoryError)) { for (const r of who) this.fail(r, e); return true; }
      if (this.reclaim()) return true;                                      // an idle cache gave its pages back: retry
      if (batch.length > decoding) {                                        // prompts wait for pages
        batch.length = decoding; who.length = decoding;
        if (decoding === 0) { this.fail(this.newest(), e); return true; }
        try { logits = this.model.forwardBatch(batch); } catch (e2) { this.fail(this.newest(), e2); return true; }
      } else { this.fail(this.newest(), e); return true; }
    }
    this.s.steps++;
    if (batch.length > 1) this.s.batchedSteps++;
    this.s.maxBatch = Math.max(this.s.maxBatch, batch.length);
    who.forEach((r, i) => {
      if (r.phase === 'prefill') {
        r.fed += batch[i]!.tokens.length;
        if (r.fed > r.refed) r.opts.onPrefillProgress?.(r.fed - r.refed, r.prompt.length - r.refed);
        if (r.fed < r.prompt.length) return;
        r.seq.endPrefill();
        r.phase = 'decode';
      }
      try {
        if (r.draft.length > 0) { this.verify(r, logits[i]!); return; }
        const { chunk, done } = r.seq.accept(r.seq.sample(logits[i]!));
        if (chunk.tokens.length > 0) this.push(r, { chunk });
        if (done !== undefined) this.end(r, done);
        else r.next = chunk.tokens[0]!;
      } catch (e) { this.fail(r, e); }
    });
    // a step of one auto drafter's rows alone (no prompt chunks, no other rows): what it realised
    if (watch !== undefined && before !== undefined && batch.length === decodingNow.length && decodingNow.length === watch.rows && who.some((r) => r.draft.length > 0)) {
      const emitted = decodingNow.reduce((n, r, i) => n + r.seq.tokens.length - before[i]!, 0);
      this.tuner!.observe(watch.key, watch.rows, this.tuner!.clock() - t0, emitted, watch.target);
    }
    return true;
  }

  /** Drafts for the speculating requests among `decoding`: one propose() per drafter over all its
   *  requests, each at most gamma tokens (γ 'auto': chooseGammas' this step) and never past its
   *  token limit or its cache. */
  private draftAll(decoding: readonly Request[]): void {
    const groups = new Map<Drafter, { reqs: Request[]; asks: DraftRequest[] }>();
    for (const r of decoding) {
      r.draft = [];
      r.q = undefined;
      if (r.drafter === undefined || r.phase !== 'decode') continue;
      const gamma = r.auto !== undefined ? r.gammaNow : r.opts.speculate!.gamma as number | undefined ?? 4;
      const room = Math.min(gamma, r.seq.tokenLimit - r.seq.tokens.length - 1, r.cache!.capacity - r.cache!.length - 1);
      if (room <= 0) continue;
      let g = groups.get(r.drafter);
      if (g === undefined) { g = { reqs: [], asks: [] }; groups.set(r.drafter, g); }
      g.reqs.push(r);
      g.asks.push({ seq: r.seq, cache: r.cache!, gamma: room, budget: r.budgetNow });   // the context ends with r.next
    }
    for (const [drafter, { reqs, asks }] of groups) {
      try {
        const drafts = drafter.propose(asks);
        reqs.forEach((r, i) => {
          const d = drafts[i], n = Math.min(d?.tokens.length ?? 0, asks[i]!.gamma);
          r.draft = d === undefined ? [] : d.tokens.slice(0, n);
          r.q = d?.q?.slice(0, n);
          const bad = r.draft.findIndex((t) => !Number.isInteger(t) || t < 0 || t >= this.model.vocabSize);
          if (bad >= 0) throw new RangeError(`speculate: the draft ${drafter.name} proposed token ${String(r.draft[bad])}, not an id of the model's ${this.model.vocabSize}-token vocabulary`);
          if (r.q !== undefined && (r.q.length !== n || r.q.some((q) => q.length !== this.model.vocabSize))) {
            throw new RangeError(`speculate: the draft ${drafter.name} gave ${r.q.length} distributions for ${n} tokens (each must have the model's ${this.model.vocabSize} entries)`);
          }
        });
      } catch (e) { for (const r of reqs) this.fail(r, e); }
    }
  }

  /** γ 'auto': each request's draft budget and γ for this step, minimising the cost model's T_SD/T_AR
   *  with its α per budget and the step times of this batch (measured now if its bucket has none and a
   *  row has enough tokens left, GammaTuner.times; AutoSpeculation.choose); 0 where this drafter's
   *  speculating steps realised less than plain decoding in the bucket (GammaTuner.losing). Returns
   *  the drafter's rows and T_T when they are one drafter's, for the step to report what it realised. */
  private chooseGammas(auto: readonly Request[]): { key: string; rows: number; target: number } | undefined {
    const byDrafter = new Map<Drafter, Request[]>();
    for (const r of auto) byDrafter.set(r.drafter!, [...(byDrafter.get(r.drafter!) ?? []), r]);
    let watch: { key: string; rows: number; target: number } | undefined;
    for (const [drafter, reqs] of byDrafter) {
      let times: StepTimes[] | undefined, losing = false, key = '';
      const rows = reqs.map((r): TunedRow => ({ cache: r.cache!, next: r.next, ask: { seq: r.seq, cache: r.cache!, gamma: 1 }, remaining: r.seq.remaining }));
      try {
        this.tuner ??= new GammaTuner(this.model);
        // T_T and T_V are the target's, measured once (undefined: not calibrated here, plain
        // decoding); T_D per budget, each at its first use here
        const first = this.tuner.times(drafter, rows), tuner = this.tuner;
        times = first && (drafter.budgets ?? ['']).map((_, b) => (b === 0 ? first : tuner.times(drafter, rows, b)!));
        key = this.tuner.realisedKey(drafter, rows);
        losing = times !== undefined && this.tuner.losing(key);
      } catch (e) { for (const r of reqs) this.fail(r, e); continue; }
      if (times !== undefined && !losing && byDrafter.size === 1) watch = { key, rows: reqs.length, target: times[0]!.target };
      for (const r of reqs) {
        const c = r.auto!.choose(losing ? undefined : times);
        r.budgetNow = c.budget;
        r.gammaNow = c.gamma;
      }
    }
    return watch;
  }

  /** Verifies a request's draft against its logits rows, emits the accepted run and rolls its cache
   *  back to the tokens kept: the fed token and the accepted drafts (the last token is fed next step). */
  private verify(r: Request, rows: Float32Array): void {
    const fedAt = r.cache!.length - 1 - r.draft.length;                  // position of r.next
    const { tokens, accepted } = verifyDraft(r.seq, rows, this.model.vocabSize, r.draft, r.q);
    const budgets = r.drafter!.budgets ?? [];
    r.meter!.record(r.draft.length, accepted, budgets.length > 1 ? budgets[r.budgetNow] : undefined);
    r.auto?.record(r.budgetNow, r.draft.length, accepted);
    const { chunk, done, consumed } = r.seq.acceptMany(tokens);
    r.cache!.truncate(fedAt + 1 + Math.min(accepted, consumed - 1));
    if (chunk.tokens.length > 0) this.push(r, { chunk });
    if (done !== undefined) this.end(r, done);
    else r.next = tokens.at(-1)!;
  }

  /** Moves waiting requests to the running set while caches can be had. A prefix is forked at
   *  admission and its pin released right after (the fork holds its pages by reference), so a kept
   *  prompt pins a sequence slot only while requests wait to start from it. */
  private admit(): void {
    while (this.waiting.length > 0) {
      const r = this.waiting[0]!;
      if (r.cache === undefined) {
        if (this.model.parallel - this.ownCaches() <= 0) return;
        const p = r.opts.prefix;
        try {
          if (p !== undefined && p.cache.released && !this.dropPrefix(r)) throw new Error('submit: the prefix cache was released before the request started, and its tokens are not in the sequence\'s context');
          const q = r.opts.prefix;
          r.cache = q !== undefined ? q.cache.fork(q.length) : this.model.createCache();
          q?.release?.(true);
        } catch (e) {
          if (!(e instanceof RangeError && /sequence slots/.test(e.message))) { this.waiting.shift(); this.fail(r, e); continue; }
          // no free sequence slot (taken outside the scheduler, or by kept prompts)
          if (this.reclaim()) continue;                                             // an idle cache gave its slot back
          // start in the prefix's own slot (a cache that can restart: its per-sequence state as a fork's)
          const own = r.opts.prefix?.cache.restart !== undefined ? r.opts.prefix.adopt?.() : undefined;
          if (own === undefined) {
            // Nothing idle, and no running request will free a slot: the slots are held by kept
            // prompts that waiting requests are pinned to. The requests pinned to one of them (the
            // head's, else the first pinned one's) give their prefixes up and prefill them instead,
            // so that kept prompt can go (else every request would wait forever).
            if (this.ownCaches() === 0) {
              const pinned = r.opts.prefix?.cache ?? this.waiting.find((w) => w.cache === undefined && w.opts.prefix !== undefined)?.opts.prefix?.cache;
              let dropped = false;
              if (pinned !== undefined) {
                for (const w of this.waiting) if (w.cache === undefined && w.opts.prefix?.cache === pinned) dropped = this.dropPrefix(w) || dropped;
              }
              if (dropped && this.reclaim()) continue;
            }
            return;                                                                   // wait
          }
          own.restart!(r.opts.prefix!.length);
          r.cache = own;
          r.opts.prefix!.release?.(true);
        }
      }
      this.waiting.shift();
      r.phase = 'prefill';
      r.seq.startPrefill();
      this.active.push(r);
    }
  }

  /** A waiting request gives its prefix up: it will feed those positions itself, into a cache of its
   *  own. Only when the sequence knows them (its context: the prefix's tokens, then the prompt). */
  private dropPrefix(r: Request): boolean {
    const p = r.opts.prefix!, known = r.seq.context;
    if (known.length !== p.length + r.prompt.length) return false;
    r.prompt = [...known.slice(0, p.length), ...r.prompt];
    r.refed = p.length;
    r.opts = { ...r.opts, prefix: undefined };
    p.release?.(false);
    return true;
  }

  /** Asks the reclaimers, in turn, to free one idle cache; whether one did. */
  private reclaim(): boolean {
    for (const f of this.reclaimers) if (f()) return true;
    return false;
  }

  private ownCaches(): number { return this.active.filter((r) => r.ownCache).length; }

  private newest(): Request {
    return this.active.reduce((a, b) => (b.order > a.order ? b : a));
  }

  private push(r: Request, o: Out): void {
    r.out.push(o);
    const wake = r.wake;
    r.wake = undefined;
    wake?.();
  }

  /** Ends a request: its last chunk and result go to the stream, its own cache is released (or
   *  handed to keepCache after a normal finish). */
  private end(r: Request, reason: FinishReason): void {
    if (r.phase === 'done') return;
    if (r.phase === 'waiting') r.seq.startPrefill();                        // timings of a request that never ran
    const { chunk, result } = r.seq.finish(reason);
    if (r.meter) result.speculative = r.meter.stats;
    if (r.ownCache && r.cache !== undefined && reason !== 'abort' && r.opts.keepCache !== undefined) {
      const cache = r.cache;
      r.cache = undefined;
      r.opts.keepCache(cache);
    }
    if (chunk) this.push(r, { chunk });
    this.push(r, { result });
    this.close(r);
  }

  private fail(r: Request, error: unknown): void {
    if (r.phase === 'done') return;
    this.push(r, { error });
    this.close(r);
  }

  private close(r: Request): void {
    // a request that ends before it started gives its prefix's pin back now, not when its caller
    // notices: a pin left over would keep a kept prompt from being adopted or evicted in this step
    if (r.phase === 'waiting') r.opts.prefix?.release?.(false);
    r.phase = 'done';
    r.drafter?.forget(r.seq);
    if (r.ownCache) r.cache?.release();
    for (const list of [this.active, this.waiting]) {
      const i = list.indexOf(r);
      if (i >= 0) list.splice(i, 1);
    }
  }
}
