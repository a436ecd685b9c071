// Files are more than bytes: every file Tessera reads (model files, tokenizer and config JSON, prompt
// files, chat templates, training configs) goes through here, so only regular files are read.
//   - A FIFO blocks forever at open(2) until a writer appears: files are opened with O_NONBLOCK, which
//     returns at once, and fstat then refuses anything that is not a regular file.
//   - A symlink to /dev/zero reports size 0 to stat and reads forever; /proc files report size 0 and
//     do have contents: the size limit is enforced while reading, not only from stat.
// Refusals are FormatErrors that name the path and say what the path is instead.

import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import { FormatError } from './errors.js';

/** What a non-regular file is, for the error message. */
function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/** Opens `path` for reading without blocking and returns the descriptor of a regular file (the caller
 *  closes it); anything else is a FormatError naming the path. `what` names the file's role. */
export function openRegularFile(path: string, what = 'file'): number {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? String(e);
    throw new FormatError(path, `cannot open ${what} (${code})`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new FormatError(path, `${what} is ${kindOf(st)}, not a regular file; give the path of a regular file`);
    return fd;
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

const CHUNK = 1 << 20;

/** The whole content of a regular file of at most maxBytes bytes. The limit holds even when stat
 *  reports a wrong size (procfs, a file growing while read): reading stops one byte past it. */
export function readRegularFile(path: string, maxBytes: number, what = 'file'): Buffer {
  const fd = openRegularFile(path, what);
  try {
    const tooBig = (n: string): never => {
      throw new FormatError(path, `${what} is ${n} bytes, more than the limit of ${maxBytes} bytes`);
    };
    const size = fstatSync(fd).size;
    if (size > maxBytes) tooBig(String(size));
    const chunks: Buffer[] = [];
    let total = 0;
    // First the size stat reports, then whatever follows it, in chunks, up to one byte past the limit.
    let want = Math.max(size, 1);
    for (;;) {
      const len = Math.min(want, maxBytes + 1 - total);
      const buf = Buffer.allocUnsafe(len);
      let got = 0;
      while (got < len) {
        const n = readSync(fd, buf, got, len - got, null);
        if (n === 0) break;
        got += n;
      }
      total += got;
      if (total > maxBytes) tooBig(`more than ${maxBytes}`);
      chunks.push(got === len ? buf : buf.subarray(0, got));
      if (got < len) break;
      want = CHUNK;
    }
    return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total);
  } finally {
    closeSync(fd);
  }
}

/** readRegularFile decoded as UTF-8; invalid UTF-8 is a FormatError. */
export function readTextFile(path: string, maxBytes: number, what = 'file'): string {
  const bytes = readRegularFile(path, maxBytes, what);
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new FormatError(path, `${what} is not valid UTF-8 text`);
  }
}
