// Files are more than bytes (docs/RELIABILITY.md): every reader is given a FIFO, a symlink to
// /dev/zero or a folder where a file belongs, and every command an output path it cannot use. One row
// per hostile input: the reader, the message it must print, and the bounds it must hold. Each row
// runs in a child process (hostile-child.ts) under an address-space limit, so a reader that blocks at
// open or reads without end fails its row by timeout or by running out of memory instead of hanging
// the test run.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readRegularFile, readTextFile } from '../../src/formats/regular-file.js';
import { openGguf } from '../../src/formats/gguf.js';
import { openSafetensors } from '../../src/formats/safetensors.js';
import { FormatError } from '../../src/formats/errors.js';
import { MAX_TENSORS_PER_FILE } from '../../src/formats/tensor-source.js';
import { Raw, VT, kvString, rawGguf } from './gguf-bytes.js';
import { PEAK_MARK } from './hostile-child.js';

const CHILD = fileURLToPath(new URL('./hostile-child.js', import.meta.url));
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'tessera-hostile-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

/** Bounds every row holds: it ends within SECONDS and peaks below PEAK_MIB of resident memory. The
 *  address-space limit makes a reader that reads without end fail fast rather than eat the machine. */
const SECONDS = 20;
const PEAK_MIB = 400;
const ADDRESS_SPACE_KIB = 3 * 1024 * 1024;

let n = 0;
const fifo = (name: string): string => { const p = join(dir, `${n++}-${name}`); execFileSync('mkfifo', [p]); return p; };
const zero = (name: string): string => { const p = join(dir, `${n++}-${name}`); symlinkSync('/dev/zero', p); return p; };
const folder = (name: string): string => { const p = join(dir, `${n++}-${name}`); mkdirSync(p); return p; };
const file = (name: string, text: string): string => { const p = join(dir, `${n++}-${name}`); writeFileSync(p, text); return p; };

/** Runs hostile-child.js under the address-space limit, unless `limit` is false (a command that loads a
 *  model: each WebAssembly memory reserves ~10 GiB of address space). */
function runChild(args: string[], limit = true): { code: number | null; out: string; err: string; peakMiB: number; timedOut: boolean } {
  const r = spawnSync('sh', ['-c', `${limit ? `ulimit -v ${ADDRESS_SPACE_KIB}; ` : ''}exec "$@"`, 'sh', process.execPath, CHILD, ...args], {
    encoding: 'utf8', timeout: SECONDS * 1000, cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'],
  });
  const peak = new RegExp(`${PEAK_MARK} (\\d+)`).exec(r.stderr ?? '');
  return { code: r.status, out: r.stdout ?? '', err: r.stderr ?? '', peakMiB: peak ? Number(peak[1]) : NaN, timedOut: r.signal === 'SIGTERM' };
}

type Row = [what: string, reader: string, path: () => string, message: RegExp];

const FIFO = /is a FIFO \(named pipe\), not a regular file; give the path of a regular file/;
const DEVICE = /is a character device, not a regular file/;
const DIRECTORY = /is a directory, not a regular file/;

const READER_ROWS: Row[] = [
  ['FIFO as model.gguf', 'gguf', () => fifo('model.gguf'), FIFO],
  ['FIFO as model.safetensors', 'safetensors', () => fifo('model.safetensors'), FIFO],
  ['FIFO as tokenizer.json', 'tokenizer.json', () => fifo('tokenizer.json'), FIFO],
  ['FIFO as config.json', 'config.json', () => fifo('config.json'), FIFO],
  ['FIFO given as the model path', 'checkpoint', () => fifo('model.gguf'), FIFO],
  ['symlink to /dev/zero as tokenizer.json', 'tokenizer.json', () => zero('tokenizer.json'), DEVICE],
  ['symlink to /dev/zero as config.json', 'config.json', () => zero('config.json'), DEVICE],
  ['symlink to /dev/zero as model.gguf', 'gguf', () => zero('model.gguf'), DEVICE],
  ['symlink to /dev/zero as model.safetensors', 'safetensors', () => zero('model.safetensors'), DEVICE],
  ['symlink to /dev/zero as the model path', 'checkpoint', () => zero('model.gguf'), DEVICE],
  ['folder as tokenizer.json', 'tokenizer.json', () => folder('tokenizer.json'), DIRECTORY],
  ['folder as model.gguf', 'gguf', () => folder('model.gguf'), DIRECTORY],
];

test('readers refuse files that are not regular files, naming the path and what it is', () => {
  // One child for all rows (a row that blocks leaves the rows after it without a line).
  const paths = READER_ROWS.map(([, , path]) => path());
  const r = runChild(READER_ROWS.flatMap(([, reader], i) => [reader, paths[i]!]));
  const lines = r.out.split('\n');
  READER_ROWS.forEach(([what, , , message], i) => {
    assert.ok(lines[i] !== undefined && lines[i] !== '', `${what}: no answer${r.timedOut ? ` (still running after ${SECONDS} s)` : ''}: ${r.err}`);
    assert.match(lines[i]!, message, what);
    assert.ok(lines[i]!.startsWith(paths[i]!), `${what}: the message must start with the path: ${lines[i]}`);
  });
  assert.ok(!r.timedOut, `still running after ${SECONDS} s`);
  assert.ok(r.peakMiB < PEAK_MIB, `peak ${r.peakMiB} MiB`);
});

const MIN_CONFIG = JSON.stringify({ family: 'llama', model: { d: 16, layers: 1, heads: 2 }, data: { task: 'recall', vocabSize: 16 }, steps: 1, batch: 1, context: 8, out: join(dir, 'unused') });

// Command-line inputs: [what, argv, message, loads a model]; each must exit 1 with the message, before
// any work (or, for a prompt, before tokenizing it).
const CLI_ROWS: [string, () => string[], RegExp, boolean?][] = [
  ['--prompt-file FIFO', () => ['generate', '--model', 'models/default', '--prompt-file', fifo('prompt.txt')], /cannot read --prompt-file: .*--prompt-file is a FIFO/],
  ['--prompt-file /dev/zero', () => ['generate', '--model', 'models/default', '--prompt-file', '/dev/zero'], /--prompt-file is a character device/],
  ['a 30 MB --prompt-file', () => ['generate', '--model', 'models/default', '--prompt-file', file('big.txt', 'word '.repeat(6_000_000))],
    /the prompt of 30000000 characters is at least \d+ tokens .*more than the context length of \d+ tokens/, true],
  ['--chat-template FIFO', () => ['chat', '--model', 'models/default', '--chat-template', fifo('t.jinja')], /cannot read --chat-template: .*is a FIFO/],
  ['train --config /dev/zero', () => ['train', '--config', '/dev/zero'], /cannot read --config: \/dev\/zero: --config is a character device/],
  ['train --config FIFO', () => ['train', '--config', fifo('train.json')], /--config is a FIFO/],
  ['train --out under /proc', () => ['train', '--config', file('train.json', MIN_CONFIG), '--out', '/proc/tessera/run'], /--out \/proc\/tessera\/run is under \/proc/],
  ['train --out through a symlink to /proc', () => {
    const link = join(dir, `${n++}-link`);
    symlinkSync('/proc/self', link);
    return ['train', '--config', file('train.json', MIN_CONFIG), '--out', join(link, 'run')];
  }, /is under \/proc/],
  ['train "out" of the config under /sys', () => ['train', '--config', file('train.json', MIN_CONFIG.replace(/"out":"[^"]*"/, '"out":"/sys/tessera"'))], /"out" of .* \/sys\/tessera is under \/sys/],
  ['train --out is a file', () => ['train', '--config', file('train.json', MIN_CONFIG), '--out', file('not-a-folder', 'x')], /exists and is not a folder/],
  ['eval --out under /proc', () => ['eval', '--model', 'models/default', '--out', '/proc/tessera-eval'], /--out \/proc\/tessera-eval is under \/proc/],
  ['eval --out below a file', () => ['eval', '--model', 'models/default', '--out', join(file('plain', 'x'), 'sub')], /exists and is not a folder/],
  ['eval-ppl --svg under /dev', () => ['eval-ppl', '--model', 'models/default', '--corpus', 'sotu', '--svg', '/dev/shm/../full/x.svg'], /is under \/dev/],
  ['eval-ppl --svg is a folder', () => ['eval-ppl', '--model', 'models/default', '--corpus', 'sotu', '--svg', folder('x.svg')], /--svg .* exists and is not a regular file/],
];

test('commands refuse hostile input and output paths before doing any work (exit 1, the flag named)', () => {
  for (const [what, argv, message, loadsModel] of CLI_ROWS) {
    const r = runChild(['cli', ...argv()], !loadsModel);
    assert.ok(!r.timedOut, `${what}: still running after ${SECONDS} s`);
    assert.equal(r.code, 1, `${what}: ${r.err}`);
    assert.match(r.err, message, what);
    assert.match(r.err, /hint: /, what);
    assert.ok(r.peakMiB < PEAK_MIB, `${what}: peak ${r.peakMiB} MiB`);
  }
});

test('the size limit holds while reading, not only from stat: a /proc file stat calls empty', () => {
  // /proc/self/status is a regular file whose stat size is 0 although it has contents.
  const text = readTextFile('/proc/self/status', 1 << 20);
  assert.match(text, /^Name:/);
  assert.throws(() => readRegularFile('/proc/self/status', 16, 'status file'), /status file is more than 16 bytes, more than the limit of 16 bytes/);
  const p = file('exact', 'x'.repeat(100));
  assert.equal(readRegularFile(p, 100).length, 100);
  assert.throws(() => readRegularFile(p, 99), /is 100 bytes, more than the limit of 99 bytes/);
});

// Amplification: small files whose tables would cost many times their size in memory. One row per
// file: the reader, the message naming the field, and the bound: the heap and buffers grow by less
// than AMPLIFIED_MIB while the file is refused.
const AMPLIFIED_MIB = 64;

/** A safetensors file of `n` zero-size tensors (each entry is ~50 bytes of header). */
function zeroSizeTensors(n: number): string {
  const entries = Array.from({ length: n }, (_, i) => `"t${i}":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}`);
  const header = Buffer.from(`{${entries.join(',')}}`);
  const out = Buffer.alloc(8 + header.length);
  out.writeBigUInt64LE(BigInt(header.length), 0);
  header.copy(out, 8);
  return file('zero-size.safetensors', out as unknown as string);
}

/** A GGUF file whose metadata holds `arrays` u8 arrays of `length` elements each. */
function ggufArrays(arrays: number, length: number): string {
  const kvs = [kvString('general.architecture', 'llama')];
  for (let a = 0; a < arrays; a++) kvs.push((r: Raw) => { r.str(`test.array${a}`).u32(VT.array).u32(VT.u8).u64(length).bytes(new Uint8Array(length)); });
  return file('arrays.gguf', Buffer.from(rawGguf({ kvs })) as unknown as string);
}

const AMPLIFICATION_ROWS: [what: string, make: () => string, read: (p: string) => unknown, message: RegExp][] = [
  [`safetensors header of ${MAX_TENSORS_PER_FILE + 2} zero-size tensors (the cap, plus __metadata__, plus one)`, () => zeroSizeTensors(MAX_TENSORS_PER_FILE + 2), (p) => openSafetensors(p),
    new RegExp(`header: more than ${MAX_TENSORS_PER_FILE + 1} entries in one JSON object`)],
  ['GGUF metadata array of 2^20 + 1 elements', () => ggufArrays(1, 2 ** 20 + 1), (p) => openGguf(p), /array length of metadata "test\.array0" = 1048577 at offset \d+ exceeds the limit of 1048576/],
  ['five GGUF metadata arrays at maxArrayLength (1000 here, to keep the file small)', () => ggufArrays(5, 1000), (p) => openGguf(p, { maxArrayLength: 1000 }),
    /metadata arrays up to "test\.array4" hold 5000 elements in all, more than 4 × maxArrayLength = 4000/],
];

test('files whose tables would amplify in memory are refused, naming the field', () => {
  for (const [what, make, read, message] of AMPLIFICATION_ROWS) {
    const p = make();
    const used = () => process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
    const before = used();
    assert.throws(() => read(p), (e: unknown) => e instanceof FormatError && message.test(e.message), what);
    const grown = (used() - before) / 2 ** 20;
    assert.ok(grown < AMPLIFIED_MIB, `${what}: memory grew by ${grown.toFixed(0)} MiB`);
  }
  // Control: a file at the caps is read.
  openSafetensors(zeroSizeTensors(1000)).close();
});
