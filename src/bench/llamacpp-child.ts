// llama.cpp's dense decode speed for the long-context table: runs tools/reference/bench-llamacpp.mjs
// (node-llama-cpp, opt-in install) as a child process on the same GGUF file Tessera loads, always
// with an explicit thread count, and parses its one-JSON-object-per-context output.

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface LlamaCppRow { ctx: number; decodeTokensPerSecond: number; prefillSeconds: number; reference: string }

/** The script to run for `--llamacpp auto|off|PATH`, or why there is none (a note for the table). */
export function llamaCppScript(option: string): { script?: string; note?: string } {
  if (option === 'off') return { note: 'llama.cpp column skipped (--llamacpp off)' };
  if (option !== 'auto') {
    const script = resolve(option);
    return existsSync(script) ? { script } : { note: `llama.cpp column skipped: ${script} does not exist` };
  }
  // dist/src/bench/ → repository root
  const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
  const ref = join(root, 'tools', 'reference');
  if (!existsSync(join(ref, 'node_modules'))) return { note: 'llama.cpp column skipped: tools/reference/node_modules is missing (run tools/reference/install.sh)' };
  return { script: join(ref, 'bench-llamacpp.mjs') };
}

/** Decode tokens/s per context (prefill of `ctx` random tokens, then `decode` timed steps), with an
 *  f16 KV cache as Tessera's. Throws with the child's stderr when it fails. */
export function runLlamaCpp(script: string, model: string, contexts: number[], threads: number, decode: number): LlamaCppRow[] {
  const args = [script, '--model', model, '--threads', String(threads), '--ctx', contexts.join(','), '--decode', String(decode), '--kv', 'f16', '--json'];
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 16 << 20, stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.status !== 0) throw new Error(`llama.cpp bench exited with ${r.status ?? r.signal}: ${(r.stderr || r.stdout || '').trim().slice(-500)}`);
  return r.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => {
    const o = JSON.parse(l) as Record<string, unknown>;
    return { ctx: Number(o.ctx), decodeTokensPerSecond: Number(o.decodeTokensPerSecond), prefillSeconds: Number(o.prefillSeconds), reference: String(o.reference) };
  });
}
