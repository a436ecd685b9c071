// llama.cpp's decode speed next to Tessera's: runs a script of tools/reference/ (node-llama-cpp,
// opt-in install) as a child process on the same GGUF file Tessera loads, always with an explicit
// thread count, and parses its one-JSON-object-per-line output: bench-llamacpp.mjs (dense decode, the
// long-context table) and bench-llamacpp-speculative.mjs (its own speculative decoding).

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface LlamaCppRow { ctx: number; decodeTokensPerSecond: number; prefillSeconds: number; reference: string }

/** The script to run for `--llamacpp auto|off|PATH` (auto: tools/reference/`name`), or why there is
 *  none (a note for the table). */
export function llamaCppScript(option: string, name = 'bench-llamacpp.mjs'): { script?: string; note?: string } {
  if (option === 'off') return { note: 'llama.cpp column skipped (--llamacpp off)' };
  if (option !== 'auto') {
    const script = resolve(option);
    return existsSync(script) ? { script } : { note: `llama.cpp column skipped: ${script} does not exist` };
  }
  // dist/src/bench/ → repository root
  const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
  const ref = join(root, 'tools', 'reference');
  if (!existsSync(join(ref, 'node_modules'))) return { note: 'llama.cpp column skipped: tools/reference/node_modules is missing (run tools/reference/install.sh)' };
  return { script: join(ref, name) };
}

/** The script's JSON lines; throws with the child's stderr when it fails. */
function runScript(args: string[]): Record<string, unknown>[] {
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 16 << 20, stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.status !== 0) throw new Error(`llama.cpp bench exited with ${r.status ?? r.signal}: ${(r.stderr || r.stdout || '').trim().slice(-500)}`);
  return r.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Decode tokens/s per context (prefill of `ctx` random tokens, then `decode` timed steps), with an
 *  f16 KV cache as Tessera's. Throws with the child's stderr when it fails. */
export function runLlamaCpp(script: string, model: string, contexts: number[], threads: number, decode: number): LlamaCppRow[] {
  const args = [script, '--model', model, '--threads', String(threads), '--ctx', contexts.join(','), '--decode', String(decode), '--kv', 'f16', '--json'];
  return runScript(args).map((o) => ({ ctx: Number(o.ctx), decodeTokensPerSecond: Number(o.decodeTokensPerSecond), prefillSeconds: Number(o.prefillSeconds), reference: String(o.reference) }));
}

/** One run of bench-llamacpp-speculative.mjs: a predictor on B sequences of one context, or (`costs`)
 *  llama.cpp's own T_T and T_V(γ) on them, measured as Tessera's GammaTuner measures its own. */
export interface LlamaCppSpeculativeRow {
  ctx: number; parallel: number; predictor: 'plain' | 'lookup' | 'draft' | 'costs'; gamma: number;
  decodeTokensPerSecond: number; decodeTokensPerCpuSecond: number; validated: number; refuted: number;
  acceptanceRate?: number; sameAsPlain?: number; reference: string;
  /** costs only: T_T in ms (fastest wall time), T_V(γ)/T_T for each of `gammas` (a token sampled at
   *  every position), and the forward pass alone over T_T (the last position's token only). */
  targetMs?: number; gammas?: number[]; verifyOverTarget?: number[]; forwardOverTarget?: number[];
}

/** llama.cpp's plain decoding and its own speculative decoding (prompt lookup, `draft` model) of the
 *  same sequences, per context and batch. */
export function runLlamaCppSpeculative(script: string, model: string, draft: string | undefined, contexts: number[], batches: number[],
                                       gamma: number, threads: number, decode: number, predictors: string[], kv: 'f16' | 'f32', sharedPrompt = false): LlamaCppSpeculativeRow[] {
  const args = [script, '--model', model, '--threads', String(threads), '--ctx', contexts.join(','), '--parallel', batches.join(','),
    '--gamma', String(gamma), '--decode', String(decode), '--predictors', predictors.join(','), '--kv', kv, '--json', ...(draft ? ['--draft', draft] : []), ...(sharedPrompt ? ['--shared-prompt'] : [])];
  return runScript(args).map((o) => ({
    ctx: Number(o.ctx), parallel: Number(o.parallel), predictor: o.predictor as LlamaCppSpeculativeRow['predictor'], gamma: Number(o.gamma),
    decodeTokensPerSecond: Number(o.decodeTokensPerSecond), decodeTokensPerCpuSecond: Number(o.decodeTokensPerCpuSecond),
    validated: Number(o.validated), refuted: Number(o.refuted), acceptanceRate: o.acceptanceRate === undefined ? undefined : Number(o.acceptanceRate),
    sameAsPlain: o.sameAsPlain === undefined ? undefined : Number(o.sameAsPlain), reference: String(o.reference),
    ...(o.predictor === 'costs' ? { targetMs: Number(o.targetMs), gammas: (o.gammas as number[]).map(Number), verifyOverTarget: (o.verifyOverTarget as number[]).map(Number),
      forwardOverTarget: (o.forwardOverTarget as number[]).map(Number) } : {}),
  }));
}
