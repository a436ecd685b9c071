// The clients of the server load test and soak (serve-load.ts), in a child process of their own so
// that their CPU time does not delay the server's event loop and their memory is not counted as the
// server's. The parent sends one job at a time over IPC and gets its result back:
//   {job: 'load', …}  clients × requests streamed completions: TTFT, per-token gaps, tokens, seconds
//   {job: 'soak', …}  a mix for some seconds: completed, cancelled mid-stream, overlong (400), busy, failed
// Prompts are token ids: a head that differs per request ("Request <id>: …", tokenized by the
// server's /tokenize) repeated to the asked length.

import { sseData } from '../testing/sse-events.js';

export interface LoadJob { job: 'load'; url: string; promptTokens: number; clients: number; requests: number; maxTokens: number; idBase: number }
export interface LoadResult { ttfts: number[]; tpots: number[]; gaps: number[]; tokens: number; seconds: number }
export interface SoakJob { job: 'soak'; url: string; seconds: number; clients: number; maxTokens: number; overlong: number; idBase: number }
export interface SoakResult { done: number; cancelled: number; refused: number; busy: number; failed: number; failures: string[]; nextId: number }
export type ClientJob = LoadJob | SoakJob;

/** One streamed completion: TTFT, TPOT (time per output token after the first: first to last token
 *  event over tokens − 1, as vLLM's benchmark defines it; NaN below 2 tokens) and the gaps between
 *  token events per token, in ms; tokens received (counted from the chunks' logprobs, so ask for
 *  `logprobs: 0`). Cancelled once `cancelAfter` tokens arrived. TPOT is what a reader of the stream
 *  waits per token on average; the gaps show stalls, but events that arrive in one read of the
 *  socket are parsed back to back, so the second of them shows a gap of ~0. */
async function streamOnce(url: string, body: Record<string, unknown>, cancelAfter?: number): Promise<{ ttft: number; tpot: number; gaps: number[]; tokens: number; status: number }> {
  const t0 = performance.now();
  const r = await fetch(`${url}/v1/completions`, { method: 'POST', body: JSON.stringify({ ...body, stream: true }) });
  if (r.status !== 200) { await r.text(); return { ttft: NaN, tpot: NaN, gaps: [], tokens: 0, status: r.status }; }
  let ttft = NaN, first = NaN, last = NaN, firstTokens = 0, tokens = 0;
  const gaps: number[] = [];
  for await (const data of sseData(r.body!)) {
    if (!data.startsWith('{')) continue;
    const c = JSON.parse(data) as { choices?: { logprobs: { tokens: string[] } | null }[]; error?: { message: string } };
    if (c.error) throw new Error(`the stream ended with an error: ${c.error.message}`);
    const n = c.choices?.[0]?.logprobs?.tokens.length ?? 0;
    if (n === 0) continue;
    const now = performance.now();
    if (Number.isNaN(ttft)) { ttft = now - t0; first = now; firstTokens = n; } else gaps.push((now - last) / n);
    last = now;
    tokens += n;
    if (cancelAfter !== undefined && tokens >= cancelAfter) break;         // closes the connection
  }
  const tpot = tokens > firstTokens ? (last - first) / (tokens - firstTokens) : NaN;
  return { ttft, tpot, gaps, tokens, status: 200 };
}

/** A prompt of `tokens` ids that differs from every other request's (`id`) from its first words. */
async function promptOf(url: string, id: number, tokens: number): Promise<number[]> {
  const r = await fetch(`${url}/tokenize`, { method: 'POST', body: JSON.stringify({ prompt: `Request ${id}: the Congress of the United States and the people of the several states` }) });
  if (r.status !== 200) throw new Error(`/tokenize answered ${r.status}: ${await r.text()}`);
  const words = (await r.json() as { tokens: number[] }).tokens;
  const out: number[] = [];
  while (out.length < tokens) out.push(...words);
  return out.slice(0, tokens);
}

async function load(j: LoadJob): Promise<LoadResult> {
  const ttfts: number[] = [], tpots: number[] = [], gaps: number[] = [];
  let tokens = 0;
  const prompts = await Promise.all(Array.from({ length: j.clients * j.requests }, (_, i) => promptOf(j.url, j.idBase + i, j.promptTokens)));
  const t0 = performance.now();
  await Promise.all(Array.from({ length: j.clients }, async (_, c) => {
    for (let k = 0; k < j.requests; k++) {
      const r = await streamOnce(j.url, { prompt: prompts[c * j.requests + k], max_tokens: j.maxTokens, temperature: 0, ignore_eos: true, logprobs: 0 });
      if (r.status !== 200) throw new Error(`a load request failed with status ${r.status}`);
      ttfts.push(r.ttft);
      if (!Number.isNaN(r.tpot)) tpots.push(r.tpot);
      gaps.push(...r.gaps);
      tokens += r.tokens;
    }
  }));
  return { ttfts, tpots, gaps, tokens, seconds: (performance.now() - t0) / 1000 };
}

/** Each client loops over three kinds of request: one streamed to the end, one cancelled after 3
 *  tokens, one whose prompt does not fit the context (400). */
async function soak(j: SoakJob): Promise<SoakResult> {
  const out: SoakResult = { done: 0, cancelled: 0, refused: 0, busy: 0, failed: 0, failures: [], nextId: j.idBase };
  const end = performance.now() + j.seconds * 1000;
  await Promise.all(Array.from({ length: j.clients }, async () => {
    while (performance.now() < end) {
      const id = out.nextId++, kind = id % 3;
      try {
        const prompt = await promptOf(j.url, id, kind === 2 ? j.overlong : 100 + (id % 7) * 150);
        const r = await streamOnce(j.url, { prompt, max_tokens: j.maxTokens, temperature: 0.8, ignore_eos: true, logprobs: 0 }, kind === 1 ? 3 : undefined);
        if (r.status === 400) out.refused++;
        else if (r.status === 503) out.busy++;
        else if (r.status !== 200) { out.failed++; out.failures.push(`status ${r.status}`); }
        else if (kind === 1) out.cancelled++;
        else out.done++;
      } catch (e) {
        out.failed++;                                          // counted and reported, the soak goes on
        out.failures.push(`${(e as Error).message} ${String((e as { cause?: unknown }).cause ?? '')}`.slice(0, 300));
      }
    }
  }));
  out.failures = out.failures.slice(0, 10);
  return out;
}

if (process.send !== undefined) {
  process.on('message', (j: ClientJob) => {
    void (j.job === 'load' ? load(j) : soak(j)).then(
      (result) => process.send!({ ok: true, result }),
      (e: unknown) => process.send!({ ok: false, error: (e as Error).stack ?? String(e) }));
  });
  process.on('disconnect', () => process.exit(0));             // the parent ended
}
