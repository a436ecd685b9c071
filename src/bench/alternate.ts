// Tessera and llama.cpp decoding the same file in alternating blocks (`tessera bench --rounds R`).
// Timing one engine after the other, one block each, lets whatever slows the machine for a minute
// (clock speed, a neighbour's memory traffic) fall on one engine only: on this shared machine the same
// decode measured 15.7 tok/s in one run and 19 in another an hour later. Here llama.cpp runs as a
// child process (tools/reference/bench-llamacpp.mjs --rounds) holding its prefilled context while
// Tessera holds its own; each round decodes a block of N tokens on each engine, the order flipping
// round by round, and the table gives each engine's median block (and the slowest and fastest).
// With prefillRounds P > 1, each engine prefills the same prompt P times (a fresh cache each time,
// alternating) before the blocks, and the table gives the median prefill: one prefill of a few
// seconds is at the mercy of the machine, and llama.cpp's 1B q4_0 prefill at 512 tokens read 138 and
// 186 tok/s in two runs an hour apart.
// Only one engine computes at a time: the other waits on a pipe (Tessera's workers sleep after
// their 200 µs spin). Both contexts grow by N tokens a round.

import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { prefillTessera, type Row } from './run.js';

/** The JSON lines of a child process, one at a time; rejects with its stderr when it exits first. */
class ChildLines {
  private readonly lines: string[] = [];
  private readonly waiting: { resolve: (o: Record<string, unknown>) => void; reject: (e: Error) => void }[] = [];
  private stderr = '';
  private ended?: Error;

  constructor(private readonly child: ReturnType<typeof spawn>, what: string) {
    createInterface({ input: child.stdout! }).on('line', (l) => {
      if (!l.startsWith('{')) return;
      const w = this.waiting.shift();
      if (w) w.resolve(JSON.parse(l) as Record<string, unknown>); else this.lines.push(l);
    });
    child.stdin!.on('error', () => { /* a child that died is reported by 'close' */ });
    child.stderr!.on('data', (d: Buffer) => { this.stderr = (this.stderr + d.toString()).slice(-2000); });
    child.on('close', (code, signal) => {
      this.ended = new Error(`${what} exited with ${code ?? signal}${this.stderr ? `: ${this.stderr.trim().slice(-500)}` : ''}`);
      for (const w of this.waiting.splice(0)) w.reject(this.ended);
    });
    child.on('error', (e) => {
      this.ended = new Error(`${what} could not start: ${e.message}`);
      for (const w of this.waiting.splice(0)) w.reject(this.ended);
    });
  }

  next(): Promise<Record<string, unknown>> {
    const l = this.lines.shift();
    if (l !== undefined) return Promise.resolve(JSON.parse(l) as Record<string, unknown>);
    if (this.ended) return Promise.reject(this.ended);
    return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
  }

  send(line: string): void { this.child.stdin!.write(`${line}\n`); }
}

export interface AlternatingOptions {
  threads: number; decodeTokens: number; rounds: number; cacheDType: 'f32' | 'f16';
  /** bench-llamacpp.mjs, or a script speaking its --rounds protocol. */
  script: string;
  /** Prefills per engine (default 1): the first right after loading, then prefills of the same prompt
   *  into a fresh cache (llama.cpp: its sequence cleared), alternating, before the decode blocks. */
  prefillRounds?: number;
  /** Called as each block (and each prefill after the first, as 'prefill tessera' / 'prefill
   *  llama.cpp') starts (the order is what the tests check). */
  onBlock?: (engine: 'tessera' | 'llama.cpp' | 'prefill tessera' | 'prefill llama.cpp', round: number) => void;
}

/** Sends `command` to the llama.cpp child and returns the seconds its reply gives in `field`. */
async function childSeconds(lines: ChildLines, command: 'prefill' | 'decode', field: string): Promise<number> {
  lines.send(command);
  const r = await lines.next();
  const s = Number(r[field]);
  if (!(s > 0)) throw new Error(`llama.cpp bench: a ${command} reply without its seconds: ${JSON.stringify(r).slice(0, 200)}`);
  return s;
}

/** Median of a non-empty list. */
function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b), m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Tessera's and llama.cpp's rows for one file and context, their decode blocks alternating: each
 *  row's decodeTps is of its median block, decodeRange its slowest and fastest. llama.cpp loads and
 *  prefills first, then Tessera (neither while the other computes). */
export async function benchAlternating(file: string, label: string, dtype: string, ctx: number, o: AlternatingOptions): Promise<[Row, Row]> {
  const { threads, decodeTokens, rounds } = o;
  const child = spawn(process.execPath, [o.script, '--model', file, '--threads', String(threads), '--ctx', String(ctx), '--decode', String(decodeTokens),
    '--kv', o.cacheDType, '--rounds', String(rounds), '--json'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const lines = new ChildLines(child, 'llama.cpp bench');
  try {
    const ready = await lines.next();
    if (ready.ready !== true) throw new Error(`llama.cpp bench: expected its "ready" line, got ${JSON.stringify(ready).slice(0, 200)}`);
    const warm = 2; // untimed decode steps before the first block, as llama.cpp's two
    const t = await prefillTessera(file, ctx, warm + rounds * decodeTokens, threads, o.cacheDType);
    try {
      // prefill rounds: llama.cpp's first prefill (before "ready") and Tessera's (just now) came one
      // after the other; then round r prefills both again, the order flipping round by round
      const ourPrefills = [t.prefillSeconds], theirPrefills = [ctx / Number(ready.prefillTokensPerSecond)];
      for (let r = 1; r < (o.prefillRounds ?? 1); r++) {
        const llamaPrefill = async () => {
          o.onBlock?.('prefill llama.cpp', r);
          theirPrefills.push(await childSeconds(lines, 'prefill', 'prefillSeconds'));
        };
        const ourPrefill = () => { o.onBlock?.('prefill tessera', r); ourPrefills.push(t.prefillAgain()); };
        if (r % 2 === 1) { await llamaPrefill(); ourPrefill(); } else { ourPrefill(); await llamaPrefill(); }
      }
      t.decode(warm);
      const ours: number[] = [], theirs: number[] = [];
      const tessera = (round: number) => {
        o.onBlock?.('tessera', round);
        ours.push(t.decode(decodeTokens));
      };
      const llama = async (round: number) => {
        o.onBlock?.('llama.cpp', round);
        theirs.push(await childSeconds(lines, 'decode', 'decodeSeconds'));
      };
      for (let r = 0; r < rounds; r++) {
        if (r % 2 === 0) { tessera(r); await llama(r); } else { await llama(r); tessera(r); }
      }
      const bytes = t.bytesPerToken(warm + rounds * decodeTokens);
      const row = (engine: string, prefills: number[], blocks: number[]): Row => ({
        model: label, dtype, ctx, engine, threads, prefillTps: ctx / median(prefills), decodeTps: decodeTokens / median(blocks), decodeBytesPerToken: bytes,
        decodeRange: [decodeTokens / Math.max(...blocks), decodeTokens / Math.min(...blocks)],
        ...(prefills.length > 1 ? { prefillRange: [ctx / Math.max(...prefills), ctx / Math.min(...prefills)] as [number, number] } : {}),
      });
      return [row('tessera', ourPrefills, ours), row('llama.cpp', theirPrefills, theirs)];
    } finally { t.dispose(); }
  } finally {
    child.stdin.end();
    if (child.exitCode === null) child.kill();
  }
}
