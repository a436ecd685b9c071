// Regenerates test/fixtures/k-quants/ggml-blocks.json: llama.cpp's own K-quant routines (the
// libggml-base.so that node-llama-cpp ships, called through the small C program k-quants.c) run on a
// fixed set of awkward super-blocks, so Tessera's block codecs are checked byte for byte and bit for
// bit against the real thing:
//   - quantize_row_q{4,5,6}_K_ref (what llama-quantize writes without an importance matrix) and
//     quantize_row_q8_K_ref (llama.cpp's activation quantiser for K-quant dot products): the bytes;
//   - dequantize_row_q{4,5,6}_K of those bytes: the f32 bits.
//
//   tools/reference/install.sh && node tools/reference/make-k-quant-fixtures.mjs
// Needs gcc. The fixture is self-contained (inputs included), so tests need neither.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const HERE = new URL('./', import.meta.url).pathname;
const OUT = new URL('../../test/fixtures/k-quants/ggml-blocks.json', import.meta.url).pathname;
const binsRoot = join(HERE, 'node_modules/@node-llama-cpp/linux-x64/bins');
let libDir;
try {
  libDir = join(binsRoot, readdirSync(binsRoot)[0]);
} catch (e) {
  throw new Error(`make-k-quant-fixtures: node-llama-cpp's linux-x64 binaries are missing: run tools/reference/install.sh (${e.message})`);
}
const meta = JSON.parse(readFileSync(join(libDir, '_nlcBuildMetadata.json'), 'utf8'));
const version = JSON.parse(readFileSync(join(HERE, 'node_modules/node-llama-cpp/package.json'), 'utf8')).version;

const work = mkdtempSync(join(tmpdir(), 'tessera-kq-'));
try {
  const bin = join(work, 'k-quants');
  execFileSync('gcc', ['-O2', '-o', bin, join(HERE, 'k-quants.c'), `-L${libDir}`, '-lggml-base', `-Wl,-rpath,${libDir}`], { stdio: 'inherit' });

  // Eight super-blocks, each a case the quantisers treat specially.
  let s = 12345;
  const rand = () => { s = (Math.imul(s, 1103515245) + 12345) >>> 0; return s / 2 ** 32; };
  const gauss = () => (rand() + rand() + rand() + rand() - 2) * 1.7;
  const blocks = [
    (i) => gauss(),                                       // weight-like, unit scale
    (i) => (rand() * 2 - 1) * 0.02,                       // typical trained-weight magnitude
    (i) => (i % 37 === 5 ? 40 : 1) * gauss() * 0.01,      // outliers
    (i) => 0,                                             // all zero
    (i) => 0.5 + rand(),                                  // all positive (min clamps to 0)
    (i) => (i < 32 || (i >= 128 && i < 144) ? 0 : gauss()), // zero sub-blocks next to live ones
    (i) => -0.75,                                         // constant
    (i) => gauss() * 1e-6,                                // scales in f16's subnormal range
  ];
  const x = new Float32Array(256 * blocks.length);
  blocks.forEach((f, b) => { for (let i = 0; i < 256; i++) x[256 * b + i] = f(i); });
  const input = Buffer.from(x.buffer);

  const types = {};
  for (const [type, bytes] of [['q4_K', 144], ['q5_K', 176], ['q6_K', 210], ['q8_K', 292]]) {
    const out = execFileSync(bin, [type], { input, maxBuffer: 1 << 24 });
    const qBytes = bytes * blocks.length;
    types[type] = { blocks: out.subarray(0, qBytes).toString('base64') };
    if (type !== 'q8_K') types[type].dequantized = out.subarray(qBytes).toString('base64');
  }
  const fixture = {
    generatedBy: `tools/reference/make-k-quant-fixtures.mjs with node-llama-cpp ${version} (llama.cpp ${meta.buildOptions.llamaCpp.repo}@${meta.buildOptions.llamaCpp.release}, libggml-base.so)`,
    encoding: 'base64 of little-endian bytes: input = f32 values; blocks = quantize_row_<type>_ref(input); dequantized = f32 values of dequantize_row_<type>(blocks)',
    input: input.toString('base64'),
    types,
  };
  writeFileSync(OUT, JSON.stringify(fixture, null, 1) + '\n');
  console.log(`make-k-quant-fixtures: wrote ${OUT} (${blocks.length} super-blocks per type)`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
