// The continuous-batching scheduler: concurrent generations share forward steps and give the tokens
// they give alone; a long prompt is prefilled in chunks under the step budget while others keep
// decoding; cancelled, aborted, broken-off and abandoned generations free their caches; a reader
// that stops reading pauses only itself; the waiting queue is bounded.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generate, generateText } from '../../src/generation/generate.js';
import { QueueFullError, Scheduler } from '../../src/generation/scheduler.js';
import { SequenceState } from '../../src/generation/sequence.js';
import { Tessera, load } from '../../src/api/index.js';
import { writeTestCheckpoint } from '../../src/testing/checkpoints.js';
import type { LlamaModel } from '../../src/models/llama.js';
import { BOS, ByteTokenizer, EOS, FakeModel } from './fake-model.js';

const tok = new ByteTokenizer();

/** Resolves `p`, or fails the test if it has not settled within `ms` (a hang). */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms); });
  try { return await Promise.race([p, timeout]); } finally { clearTimeout(timer); }
}

test('concurrent generations share steps and give the tokens they give alone (greedy and seeded sampling)', async () => {
  const prompts = ['first prompt', 'a second, longer prompt here', 'x', 'the fourth one'];
  const opts = [{ temperature: 0, maxTokens: 9 }, { temperature: 0.9, seed: 5, maxTokens: 6 }, { temperature: 0, maxTokens: 12 }, { temperature: 1.3, seed: 9, topK: 20, maxTokens: 4 }];
  const alone: { tokens: number[] }[] = [];
  for (let i = 0; i < prompts.length; i++) alone.push(await generateText(new FakeModel({ suppress: [EOS] }), tok, prompts[i]!, opts[i]));
  const model = new FakeModel({ suppress: [EOS] });
  const together = await Promise.all(prompts.map((p, i) => generateText(model, tok, p, opts[i])));
  together.forEach((r, i) => assert.deepEqual(r.tokens, alone[i]!.tokens, `request ${i}`));
  const stats = Scheduler.of(model).stats;
  assert.ok(stats.maxBatch === 4, `all four in one step at least once (max batch ${stats.maxBatch})`);
  assert.ok(stats.steps < 9 + 6 + 12 + 4, `steps shared: ${stats.steps}`);
  assert.equal(model.live.size, 0, 'every cache released');
});

test('a long prompt is prefilled in chunks under the step budget while another sequence keeps decoding', async () => {
  const model = new FakeModel({ suppress: [EOS], contextLength: 2048 });
  const sched = new Scheduler(model, { stepTokens: 64 });
  const seq = (p: string | number[], o = {}) => new SequenceState(tok, p, { temperature: 0, ...o }, model.vocabSize);
  const a = sched.submit(seq('short', { maxTokens: 40 }));
  await a.next();                                          // a is decoding now
  const long = Array.from({ length: 1000 }, (_, i) => 32 + (i % 90));
  const b = sched.submit(seq([BOS, ...long], { maxTokens: 2 }));
  const drain = async (it: AsyncGenerator<unknown, unknown>) => { for (;;) if ((await it.next()).done) return; };
  await Promise.all([drain(a), drain(b)]);
  // every step while b prefilled also carried a's token, and no step exceeded the budget
  const mixed = model.steps.filter((s) => s.length === 2);
  assert.ok(mixed.length >= Math.floor(1001 / 64), `a decoded during b's prefill (${mixed.length} shared steps)`);
  for (const s of model.steps) assert.ok(s.reduce((x, y) => x + y, 0) <= 64, `step of ${s} tokens exceeds the budget`);
});

test('cancellation: break, abort and return free the sequence within one step; others go on', async () => {
  const model = new FakeModel({ suppress: [EOS] });
  const other = generateText(model, tok, 'keep going', { temperature: 0, maxTokens: 30 });
  let n = 0;
  for await (const _ of generate(model, tok, 'break me', { temperature: 0, maxTokens: 100 })) if (++n === 3) break;
  const ac = new AbortController();
  const aborted = generate(model, tok, 'abort me', { temperature: 0, maxTokens: 100, signal: ac.signal });
  await aborted.next();
  ac.abort();
  const r = await aborted.next();
  assert.equal(r.done ? (r.value as { finishReason: string }).finishReason : 'streaming', 'abort');
  assert.equal((await other).tokens.length, 30);
  assert.equal(model.live.size, 0, 'every cache released');
});

test('a reader that stops reading pauses only itself; an iterator left unfinished blocks nobody', async () => {
  const model = new FakeModel({ suppress: [EOS] });
  const t = new Tessera({ model, tokenizer: tok });
  const stalled = t.generate('I will be left unfinished', { temperature: 0, maxTokens: 400 });
  await stalled.next();
  const r = await within(t.complete('hello', { temperature: 0, maxTokens: 20 }), 10_000, 'complete() after an unfinished generate()');
  assert.equal(r.tokens.length, 20);
  await within(t.logits(tok.encode('hi')), 10_000, 'logits() after an unfinished generate()');
  // the stalled sequence paused after a few unread chunks instead of generating all 400 tokens
  const made = model.calls.filter((c) => c.tokens.length === 1).length;
  assert.ok(made < 100, `${made} decode calls: the unread sequence kept running`);
  await stalled.return(undefined as never);
});

test('a streamed chat completion broken off after 3 chunks leaves the instance usable and its memory free', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-sched-'));
  try {
    const path = writeTestCheckpoint(join(dir, 'm'), 'llama3-tiny', { formats: ['hf'] }).hfDir!;
    const t = await load(path, { threads: 1, contextLength: 128, chatTemplate: "{% for m in messages %}{{ m.content }}\n{% endfor %}" });
    const m = t.model as LlamaModel;
    try {
      const stream = await t.chat.completions.create({ messages: [{ role: 'user', content: 'Hello' }], max_tokens: 50, temperature: 0, stream: true });
      let n = 0;
      for await (const _ of stream) if (++n === 3) break;
      await new Promise((r) => setImmediate(r));                   // one scheduler step
      assert.equal(Scheduler.of(t.model).stats.running, 0, 'the broken-off request is gone within one step');
      assert.equal(m.activeSequences, 0, 'and its cache released');
      const r = await within(t.chat.completions.create({ messages: [{ role: 'user', content: 'Hello' }], max_tokens: 5, temperature: 0 }), 20_000, 'the next chat call');
      assert.equal(r.choices[0]!.finish_reason, 'length');
      // only the kept prompt cache holds pages now
      assert.equal(m.activeSequences, 1);
      const pages = m.kvPages.used;
      assert.ok(pages <= 1, `${pages} pages held`);
      // two concurrent completions are decoded in the same steps
      const before = Scheduler.of(t.model).stats.batchedSteps;
      const [a, b] = await Promise.all([t.complete('one two', { temperature: 0, maxTokens: 10 }), t.complete('three', { temperature: 0, maxTokens: 10 })]);
      assert.equal(a.tokens.length + b.tokens.length, 20);
      assert.ok(Scheduler.of(t.model).stats.batchedSteps - before >= 5, 'the two calls were interleaved, not run one after the other');
      // the next turn of a conversation prefills only its new part
      const first = await t.complete('The same long opening words, then', { temperature: 0, maxTokens: 4 });
      const second = await t.complete(t.tokenize('The same long opening words, then').concat(first.tokens, t.tokenize(' more', { addSpecialTokens: false })), { temperature: 0, maxTokens: 4 });
      assert.ok(second.cachedTokens >= t.tokenize('The same long opening words, then').length, `cached ${second.cachedTokens}`);
    } finally { t.dispose(); }
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('an iterator dropped unfinished is cancelled once collected, and its cache released', async () => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const model = new FakeModel({ suppress: [EOS] });
  await (async () => {
    const it = generate(model, tok, 'dropped', { temperature: 0, maxTokens: 500 });
    await it.next();
  })();
  assert.equal(model.live.size, 1);
  for (let i = 0; i < 50 && model.live.size > 0; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal(model.live.size, 0, 'the dropped generation still holds its cache');
});

test('the waiting queue is bounded: past maxQueued submit throws QueueFullError', async () => {
  const model = new FakeModel({ suppress: [EOS], parallel: 1 });
  const sched = new Scheduler(model, { maxQueued: 2 });
  const seq = () => new SequenceState(tok, 'q', { temperature: 0, maxTokens: 3 }, model.vocabSize);
  // the first is admitted at once (the only slot); the next two wait; a fourth finds the queue full
  const its = [sched.submit(seq()), sched.submit(seq()), sched.submit(seq())];
  assert.equal(sched.stats.queued, 2);
  assert.throws(() => sched.submit(seq()), (e: Error) => e instanceof QueueFullError && /queue is full \(2 requests waiting/.test(e.message));
  for (const it of its) for (;;) if ((await it.next()).done) break;
  assert.equal(model.live.size, 0);
});

test('kept prompts never hold every sequence slot against the requests pinned to them: pins end at the fork, a sole pinner starts in the kept prompt\'s own slot, and otherwise waiting requests give their prefixes up', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-sched-'));
  try {
    const path = writeTestCheckpoint(join(dir, 'm'), 'llama3-tiny', { formats: ['hf'] }).hfDir!;
    const opts = { temperature: 0, maxTokens: 6, ignoreEos: true } as const;
    const prompts = ['alpha beta gamma delta one', 'alpha beta gamma delta two', 'zeta eta theta iota one', 'zeta eta theta iota two', 'omega', 'psi'];
    const fresh = await load(path, { threads: 1, contextLength: 128, parallel: 2, promptCache: 0 });
    const want = new Map<string, number[]>();
    for (const p of prompts) want.set(p, (await fresh.complete(p, opts)).tokens);
    fresh.dispose();
    const t = await load(path, { threads: 1, contextLength: 128, parallel: 2, promptCache: 4 });
    const m = t.model as LlamaModel, stats = () => Scheduler.of(t.model).stats;
    /** Keeps two prompts, which then hold both sequence slots. */
    const keepTwo = async () => {
      await t.complete('alpha beta gamma delta', opts);
      await t.complete('zeta eta theta iota', opts);
      assert.equal(m.activeSequences, 2);
    };
    const run = (list: string[], what: string) => within(Promise.all(list.map((p) => t.complete(p, opts))), 20_000, what);
    try {
      // each request the only one pinned to a kept prompt, no slot free: before, each waited for the
      // other's slot forever; now each starts in its kept prompt's slot, cut to the shared prefix
      await keepTwo();
      let batched = stats().batchedSteps;
      const [a, b] = await run([prompts[0]!, prompts[2]!], 'two requests, each the only one pinned to a kept prompt');
      assert.deepEqual([a.tokens, b.tokens], [want.get(prompts[0]!), want.get(prompts[2]!)], 'the tokens of a fresh prefill');
      assert.ok(a.cachedTokens > 1 && b.cachedTokens > 1, `prefixes used: ${a.cachedTokens}, ${b.cachedTokens}`);
      assert.ok(stats().batchedSteps - batched >= 4, 'the two ran together');
      // two requests pinned to each kept prompt: no one can adopt one and nothing runs, so the two
      // pinned to the first request's kept prompt give their prefixes up and prefill them (their
      // results say nothing was cached); that frees a slot, and the other two keep their prefix
      await keepTwo();
      const four = await run(prompts.slice(0, 4), 'four requests, two pinned to each kept prompt');
      four.forEach((r, i) => assert.deepEqual(r.tokens, want.get(prompts[i]!), prompts[i]));
      assert.deepEqual(four.map((r) => r.cachedTokens > 0), [false, false, true, true], `cached: ${four.map((r) => r.cachedTokens).join(', ')}`);
      // prompts that share only the BOS with a kept prompt: the first forks it and lets go of it at
      // once, the second starts in its slot; they run together, not one after the other
      await keepTwo();
      batched = stats().batchedSteps;
      const [c, d] = await run([prompts[4]!, prompts[5]!], 'two prompts sharing only the BOS with the kept ones');
      assert.deepEqual([c.tokens, d.tokens], [want.get(prompts[4]!), want.get(prompts[5]!)]);
      assert.deepEqual([c.cachedTokens, d.cachedTokens], [1, 1], 'each started from the BOS of a kept prompt');
      assert.ok(stats().batchedSteps - batched >= 4, `they ran together (${stats().batchedSteps - batched} shared steps)`);
      assert.equal(stats().running + stats().queued, 0);
      // logits() of a fresh sequence, with kept prompts holding both slots: they give one back
      await keepTwo();
      const logits = await within(t.logits(t.tokenize('alpha')), 10_000, 'logits() with every slot held by kept prompts');
      assert.equal(logits.length, t.tokenize('alpha').length * t.model.vocabSize);
    } finally { t.dispose(); }
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('a request that starts in a kept prompt\'s own slot gets the per-sequence attention state a fork would (sparse backends, the whole kept history shared), and a cancelled waiting request gives its pin back at once', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-sched-'));
  try {
    const path = writeTestCheckpoint(join(dir, 'm'), 'llama3-tiny', { formats: ['hf'] }).hfDir!;
    const opts = { temperature: 0, maxTokens: 16, ignoreEos: true } as const;
    const P1 = Array.from({ length: 120 }, (_, i) => 3 + ((i * 37) % 200)), Q1 = Array.from({ length: 120 }, (_, i) => 201 + ((i * 13) % 40));
    for (const attention of ['quest:dense=none', 'oracle-sampling:dense=none']) {
      const base = { threads: 1, contextLength: 256, attention, promptCache: 4 };
      /** P1 and Q1 kept, then a chat's next turn of each: its whole kept history and 3 new tokens. */
      const turns = async (t: Tessera) => {
        const [a, b] = [await t.complete(P1, opts), await t.complete(Q1, opts)];
        const next = (p: number[], r: { tokens: number[] }, extra: number[]) => [...p, ...r.tokens].slice(0, p.length + opts.maxTokens - 1).concat(extra);
        return [next(P1, a, [9, 10, 11]), next(Q1, b, [12, 13, 14])] as const;
      };
      // parallel 3: each next turn forks its kept prompt; parallel 2: no slot is free, so each starts in its kept prompt's own slot
      const forked = await load(path, { ...base, parallel: 3 });
      const [p2, q2] = await turns(forked);
      const viaFork = await Promise.all([forked.complete(p2, opts), forked.complete(q2, opts)]);
      forked.dispose();
      const adopting = await load(path, { ...base, parallel: 2 });
      await turns(adopting);
      const viaAdopt = await within(Promise.all([adopting.complete(p2, opts), adopting.complete(q2, opts)]), 20_000, `${attention}: two next turns`);
      adopting.dispose();
      for (let i = 0; i < 2; i++) {
        assert.ok(viaAdopt[i]!.cachedTokens === p2.length - 3, `${attention}: the whole kept history reused (${viaAdopt[i]!.cachedTokens})`);
        assert.deepEqual(viaAdopt[i]!.tokens, viaFork[i]!.tokens, `${attention}: turn ${i} as from a fork`);
      }
    }
    // a waiting request cancelled before it starts gives its pin back in that step: the other request
    // pinned to the same kept prompt is then its only pinner and starts in its slot, keeping the prefix
    const t = await load(path, { threads: 1, contextLength: 256, parallel: 2, promptCache: 4 });
    try {
      await t.complete(P1, opts); await t.complete(Q1, opts);
      const stop = new AbortController();
      const gone = t.complete([...P1, 7], { ...opts, signal: stop.signal });
      const [a, b] = [t.complete([...P1, 8], opts), t.complete([...Q1, 8], opts)];
      stop.abort();
      const [ra, rb, rg] = await within(Promise.all([a, b, gone]), 20_000, 'after a cancelled waiting request');
      assert.equal(rg.finishReason, 'abort');
      assert.equal(rg.cachedTokens, 0, 'the cancelled request used no prefix');
      assert.ok(ra.cachedTokens >= P1.length && rb.cachedTokens >= Q1.length, `prefixes kept: ${ra.cachedTokens}, ${rb.cachedTokens}`);
    } finally { t.dispose(); }
  } finally { rmSync(dir, { recursive: true, force: true }); }
});
