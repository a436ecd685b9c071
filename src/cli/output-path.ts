// Output paths (train --out, eval --out, eval-ppl --svg) are checked and created before the work
// that fills them, so results are never lost after an hour of training or evaluation to a path that
// cannot be written. /proc, /sys and /dev are refused: they hold no result files, and Node's
// recursive mkdir loops forever under /proc (mkdir there fails with ENOENT, which it retries).
// Missing folders are created one level at a time, so no mkdir can loop.

import { lstatSync, mkdirSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { CliError } from './args.js';

const SYSTEM_ROOTS = ['/proc', '/sys', '/dev'];

/** The path with its longest existing prefix resolved through symlinks, and the missing rest. */
function splitExisting(path: string): { existing: string; missing: string[] } {
  let existing = resolve(path);
  const missing: string[] = [];
  for (;;) {
    try { lstatSync(existing); break; } catch { /* not there yet */ }
    const parent = dirname(existing);
    if (parent === existing) break;
    missing.unshift(basename(existing));
    existing = parent;
  }
  try { existing = realpathSync(existing); } catch { /* a dangling symlink: checked by the caller's stat */ }
  return { existing, missing };
}

function refuseSystemPath(flag: string, path: string, real: string): void {
  const root = SYSTEM_ROOTS.find((r) => real === r || real.startsWith(r + '/'));
  if (root !== undefined) {
    throw new CliError(`${flag} ${path} is under ${root}, which holds no result files`, `give ${flag} a folder on a real file system, e.g. results/run1`);
  }
}

/** Checks that `path` can be an output folder and creates it (with its missing parents). */
export function prepareOutputDir(flag: string, path: string): void {
  const { existing, missing } = splitExisting(path);
  refuseSystemPath(flag, path, join(existing, ...missing));
  let isDir = false;
  try { isDir = statSync(existing).isDirectory(); } catch { /* reported below */ }
  if (!isDir) {
    const what = missing.length === 0 ? `${flag} ${path}` : `${existing} (in ${flag} ${path})`;
    throw new CliError(`${what} exists and is not a folder`, `give ${flag} a folder path (it is created if missing)`);
  }
  let dir = existing;
  for (const name of missing) {
    dir = join(dir, name);
    try { mkdirSync(dir); } catch (e) {
      throw new CliError(`cannot create ${dir} for ${flag} ${path} (${(e as NodeJS.ErrnoException).code ?? String(e)})`, `give ${flag} a folder you can write to`);
    }
  }
}

/** Checks that `path` can be an output file (a new or regular file) and creates its folder. */
export function prepareOutputFile(flag: string, path: string): void {
  const { existing, missing } = splitExisting(path);
  refuseSystemPath(flag, path, join(existing, ...missing));
  if (missing.length === 0) {
    let regular = false;
    try { regular = statSync(existing).isFile(); } catch { /* reported below */ }
    if (!regular) throw new CliError(`${flag} ${path} exists and is not a regular file`, `give ${flag} the path of a new or regular file`);
    return;
  }
  prepareOutputDir(flag, dirname(resolve(path)));
}
