// Training checkpoints: one folder holding
//   model.safetensors        parameters (f32, Hugging Face names)  — what loadModel() reads
//   config.json              the model config (Hugging Face fields)
//   optimizer.safetensors    AdamW moments "<param>.exp_avg" / "<param>.exp_avg_sq"
//   trainer_state.json       step, optimizer step, RNG states, data cursor, loss history
// Every file is written atomically (temp + fsync + rename, src/formats/safetensors-writer.ts) into a
// fresh temporary folder; the folder is then swapped in by renames: old → <dir>.old-<id>,
// temp → <dir>, delete old. A crash between the two renames leaves <dir>.old-<id> complete, and
// loadCheckpoint() falls back to it; a crash earlier leaves <dir> untouched (docs/RELIABILITY.md).

import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { parseJsonStrict } from '../formats/json-strict.js';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { openSafetensors } from '../formats/safetensors.js';
import { writeFileAtomic, writeSafetensors, type TensorToWrite } from '../formats/safetensors-writer.js';
import type { Params } from './params.js';
import type { AdamW } from './optim.js';
import type { Tensor } from './autograd/tensor.js';

export interface CheckpointContents {
  params: Params;
  /** config.json (e.g. hfConfigJson(config) for the Llama model). */
  config: Record<string, unknown>;
  optimizer?: AdamW;
  /** trainer_state.json (JSON-serialisable). */
  state?: Record<string, unknown>;
}

function f32Tensor(t: Tensor, name = t.name): TensorToWrite {
  return { name, dtype: 'F32', shape: [...t.shape], data: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength).slice() };
}

function fsyncDir(dir: string): void {
  try { const fd = openSync(dir, 'r'); try { fsyncSync(fd); } finally { closeSync(fd); } } catch { /* best effort */ }
}

/** Writes the checkpoint folder `dir` atomically (replacing an earlier one). */
export function saveCheckpoint(dir: string, c: CheckpointContents): void {
  const parent = dirname(dir);
  mkdirSync(parent, { recursive: true });
  const id = `${process.pid}-${randomBytes(4).toString('hex')}`;
  const tmp = join(parent, `.${basename(dir)}.tmp-${id}`);
  mkdirSync(tmp);
  try {
    writeSafetensors(join(tmp, 'model.safetensors'), c.params.list().map((t) => f32Tensor(t)), { format: 'pt' });
    writeFileAtomic(join(tmp, 'config.json'), [new TextEncoder().encode(JSON.stringify(c.config, null, 2) + '\n')]);
    if (c.optimizer) {
      const o = c.optimizer;
      const ts = o.params.list().flatMap((p, i) => [f32Tensor(o.m[i], `${p.name}.exp_avg`), f32Tensor(o.v[i], `${p.name}.exp_avg_sq`)]);
      writeSafetensors(join(tmp, 'optimizer.safetensors'), ts, { step: String(o.t) });
    }
    if (c.state) writeFileAtomic(join(tmp, 'trainer_state.json'), [new TextEncoder().encode(JSON.stringify(c.state) + '\n')]);
    fsyncDir(tmp);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  const old = join(parent, `${basename(dir)}.old-${id}`);
  const hadOld = existsSync(dir);
  if (hadOld) renameSync(dir, old);
  renameSync(tmp, dir);
  fsyncDir(parent);
  if (hadOld) rmSync(old, { recursive: true, force: true });
}

/** The folder to read: `dir`, or the newest `<dir>.old-*` left by a crash mid-swap; null if none. */
export function findCheckpoint(dir: string): string | null {
  if (existsSync(join(dir, 'model.safetensors'))) return dir;
  const parent = dirname(dir), prefix = `${basename(dir)}.old-`;
  if (!existsSync(parent)) return null;
  const olds = readdirSync(parent).filter((n) => n.startsWith(prefix)).map((n) => join(parent, n));
  return olds.find((p) => existsSync(join(p, 'model.safetensors'))) ?? null;
}

/** Every F32 tensor of a safetensors file. */
export function readSafetensorsF32(path: string): Map<string, Float32Array> {
  const f = openSafetensors(path);
  try {
    const out = new Map<string, Float32Array>();
    for (const [name, e] of f.tensors) {
      if (e.dtype !== 'f32') throw new Error(`readSafetensorsF32(${path}): tensor ${name} is ${e.dtype}, expected f32`);
      const a = new Float32Array(e.byteLength / 4);
      f.read(e, new Uint8Array(a.buffer));
      out.set(name, a);
    }
    return out;
  } finally {
    f.close();
  }
}

export interface LoadedCheckpoint {
  dir: string;
  config: Record<string, unknown>;
  /** trainer_state.json as parsed (validated by the trainer, which knows its fields), null if absent. */
  state: unknown;
  statePath: string;
}

/** Restores parameters (and AdamW moments/step when `optimizer` is given) from a checkpoint folder. */
export function loadCheckpoint(dir: string, into: { params: Params; optimizer?: AdamW }): LoadedCheckpoint {
  const found = findCheckpoint(dir);
  if (!found) throw new Error(`loadCheckpoint: no checkpoint in ${dir} (model.safetensors missing)`);
  into.params.load(readSafetensorsF32(join(found, 'model.safetensors')));
  if (into.optimizer) {
    const o = into.optimizer;
    const path = join(found, 'optimizer.safetensors');
    if (!existsSync(path)) throw new Error(`loadCheckpoint: ${found} has no optimizer.safetensors; cannot resume the optimizer`);
    const m = readSafetensorsF32(path);
    o.params.list().forEach((p, i) => {
      for (const [suffix, t] of [['exp_avg', o.m[i]], ['exp_avg_sq', o.v[i]]] as const) {
        const v = m.get(`${p.name}.${suffix}`);
        if (!v || v.length !== t.size) throw new Error(`loadCheckpoint: ${path} lacks ${p.name}.${suffix} of ${t.size} values`);
        t.data.set(v);
      }
    });
    const f = openSafetensors(path);
    try {
      const t = Number(f.metadata.step ?? 0);
      if (!Number.isSafeInteger(t) || t < 0) throw new Error(`loadCheckpoint: ${path}: metadata step = ${JSON.stringify(f.metadata.step)} must be a non-negative integer`);
      o.t = t;
    } finally { f.close(); }
  }
  const config = readJson(join(found, 'config.json')) as Record<string, unknown>;
  const sp = join(found, 'trainer_state.json');
  const state = existsSync(sp) ? readJson(sp) : null;
  return { dir: found, config, state, statePath: sp };
}

/** A JSON file parsed strictly; errors name the file. */
function readJson(path: string): unknown {
  return parseJsonStrict(readFileSync(path, 'utf8'), path);
}

/** `.NAME.tmp-PID-HEX` (saveCheckpoint's folders, writeFileAtomic's files) and `NAME.old-PID-HEX`
 *  (a swapped-out checkpoint): the names our atomic writes use, so nothing else is ever matched. */
const TEMP_NAME = /^(?:\.(.+)\.tmp|(.+)\.old)-(\d+)-[0-9a-f]{8,12}$/;

function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try { process.kill(pid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM'; }
}

/** Removes what killed writes left in `dir`: temp folders/files of atomic writes whose process is gone,
 *  and `<name>.old-*` checkpoints once `<name>` itself is complete (before that they are the recovery
 *  copy findCheckpoint() reads). A writer that is still running is never touched. Returns the names. */
export function removeStaleTemps(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const removed: string[] = [];
  for (const name of readdirSync(dir)) {
    const m = TEMP_NAME.exec(name);
    if (!m || processAlive(Number(m[3]))) continue;
    const old = m[2];
    if (old !== undefined && findCheckpoint(join(dir, old)) !== join(dir, old)) continue;
    rmSync(join(dir, name), { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}
