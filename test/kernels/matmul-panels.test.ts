// The panel layout of wide float matrices (f32p / f16p / bf16p, src/kernels/repack.ts) and its matmul
// (kernels/matmul.ts matmulPanels): the layout only moves values; the SIMD kernels, in both builds,
// give each row the f32 sum, in panel order, of what the row-major kernels give its panels (bit for
// bit), stay close to the twin on every range, and leave rows outside the range untouched.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isPanelDType, panelIndex, panelsFit, PANEL_COLS, PANEL_ROWS, repackForMatmul, repackPanels, unpackPanels } from '../../src/kernels/repack.js';
import { weightBytes, type Kernels } from '../../src/kernels/types.js';
import { assertBytesEqual, assertClose, makeBench, simdBuilds, randomF32, rng, toBF16Bits, toF16Bits, type Bench } from './harness.js';

const FLOATS = ['f32', 'f16', 'bf16'] as const;
type Float = typeof FLOATS[number];

function bytesOf(dtype: Float, values: Float32Array): Uint8Array {
  if (dtype === 'f32') return new Uint8Array(values.buffer.slice(0));
  return new Uint8Array((dtype === 'f16' ? toF16Bits(values) : toBF16Bits(values)).buffer);
}

test('repackPanels moves values only: every value lands where panelIndex says, unpackPanels gives the bytes back, the size stays', () => {
  const rows = 64, cols = 3 * PANEL_COLS;
  for (const dtype of FLOATS) {
    const es = dtype === 'f32' ? 4 : 2;
    // value (r, c) = a code of its place, so any misplaced value shows
    const values = new Float32Array(rows * cols);
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) values[r * cols + c] = r * 8 + (c % 8) + (c >> 3) / 1024;
    const orig = bytesOf(dtype, values), bytes = orig.slice();
    assert.equal(repackForMatmul(dtype, bytes, rows, cols), `${dtype}p`);
    assert.equal(bytes.length, weightBytes(`${dtype}p`, rows * cols));
    for (const [r, c] of [[0, 0], [0, 2047], [0, 2048], [1, 0], [31, 6143], [32, 0], [33, 4097], [63, 6143]] as const) {
      const at = panelIndex(cols, r, c) * es, from = (r * cols + c) * es;
      assertBytesEqual(bytes.subarray(at, at + es), orig.subarray(from, from + es), `${dtype} (${r}, ${c})`);
    }
    assertBytesEqual(unpackPanels(`${dtype}p`, bytes, rows, cols), orig, `${dtype}: round trip`);
    const seen = new Set<number>();
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) seen.add(panelIndex(cols, r, c));
    assert.equal(seen.size, rows * cols, `${dtype}: panelIndex is one to one`);
  }
});

test('only float matrices wider than one panel, in whole groups and panels, go into panels', () => {
  assert.ok(panelsFit(32, 2 * PANEL_COLS));
  assert.ok(!panelsFit(32, PANEL_COLS), 'one panel: row-major already keeps X in L1');
  assert.ok(!panelsFit(48, 2 * PANEL_COLS), 'rows not whole groups');
  assert.ok(!panelsFit(32, 3 * PANEL_COLS / 2), 'cols not whole panels');
  assert.equal(repackForMatmul('f32', new Uint8Array(32 * PANEL_COLS * 4), 32, PANEL_COLS), 'f32');
  assert.equal(repackForMatmul('f16', new Uint8Array(48 * 2 * PANEL_COLS * 2), 48, 2 * PANEL_COLS), 'f16');
  assert.equal(repackForMatmul('bf16', new Uint8Array(32 * 2 * PANEL_COLS * 2), 32, 2 * PANEL_COLS), 'bf16p');
  assert.ok(isPanelDType('f16p') && !isPanelDType('f16'));
  assert.throws(() => repackPanels('f32', new Uint8Array(32 * 4096 * 4 - 4), 32, 4096), /needs rows % 32 == 0, cols a multiple of 2048 above it, and 524288 bytes/);
});

/** Random rows × cols weights of `dtype` at w (row-major) and w4 (panels), n tokens of X at x. */
function setup(b: Bench, dtype: Float, rows: number, cols: number, n: number, seed: number) {
  b.reset();
  const rand = rng(seed);
  const bytes = bytesOf(dtype, randomF32(rand, rows * cols));
  const w = b.alloc(bytes.length), wp = b.alloc(bytes.length);
  b.u8(w, bytes.length).set(bytes);
  b.u8(wp, bytes.length).set(bytes);
  repackPanels(dtype, b.u8(wp, bytes.length), rows, cols);
  const x = b.alloc(n * cols * 4);
  b.f32(x, n * cols).set(randomF32(rand, n * cols));
  return { w, wp, x };
}

test('panel matmuls equal the row-major kernels panel by panel, summed in panel order, bit for bit (both builds)', () => {
  const b = makeBench(512);
  const ks = simdBuilds(b);
  const rows = 96, cols = 3 * PANEL_COLS, P = PANEL_COLS;
  for (const dtype of FLOATS) {
    const es = dtype === 'f32' ? 4 : 2;
    for (const n of [1, 2, 5, 33]) {
      const { w, wp, x } = setup(b, dtype, rows, cols, n, 11 + n);
      // each panel as a row-major matrix of its own, and its columns of X
      const wPanel = b.alloc(rows * P * es), xPanel = b.alloc(n * P * 4), yPanel = b.alloc(n * rows * 4), y = b.alloc(n * rows * 4);
      for (const [r0, r1] of [[0, rows], [8, 40], [32, 64], [0, 8], [40, 96]] as const) {
        for (const [name, k] of ks) {
          const want = new Float32Array(n * rows).fill(12345);
          for (let p = 0; p < cols / P; p++) {
            for (let r = 0; r < rows; r++) b.u8(wPanel + r * P * es, P * es).set(b.u8(w + (r * cols + p * P) * es, P * es));
            for (let t = 0; t < n; t++) b.f32(xPanel + t * P * 4, P).set(b.f32(x + (t * cols + p * P) * 4, P));
            k.matmul(dtype, wPanel, xPanel, yPanel, n, rows, P, r0, r1);
            const part = b.f32(yPanel, n * rows);
            for (let t = 0; t < n; t++) for (let r = r0; r < r1; r++) want[t * rows + r] = p === 0 ? part[t * rows + r]! : Math.fround(want[t * rows + r]! + part[t * rows + r]!);
          }
          b.f32(y, n * rows).fill(12345);
          k.matmul(`${dtype}p`, wp, x, y, n, rows, cols, r0, r1);
          assertBytesEqual(new Uint8Array(b.f32(y, n * rows).slice().buffer), new Uint8Array(want.buffer), `${dtype}p ${name} n=${n} [${r0}, ${r1})`);
        }
      }
    }
  }
});

test('panel matmuls match the twin on any range, odd ones included, and write no row outside it; rowToF32 reads a row back', () => {
  const b = makeBench(512);
  const ks: [string, Kernels][] = [['twin', b.ref], ...simdBuilds(b)];
  const rows = 64, cols = 2 * PANEL_COLS;
  for (const dtype of FLOATS) {
    for (const n of [1, 3, 6]) {
      const { w, wp, x } = setup(b, dtype, rows, cols, n, 29 + n);
      const yRef = b.alloc(n * rows * 4), y = b.alloc(n * rows * 4);
      for (const [r0, r1] of [[0, rows], [5, 38], [31, 33], [1, 2], [62, 64]] as const) {
        b.f32(yRef, n * rows).fill(12345);
        b.ref.matmul(dtype, w, x, yRef, n, rows, cols, r0, r1);
        for (const [name, k] of ks) {
          b.f32(y, n * rows).fill(12345);
          k.matmul(`${dtype}p`, wp, x, y, n, rows, cols, r0, r1);
          const what = `${dtype}p ${name} n=${n} [${r0}, ${r1})`;
          assertClose(b.f32(y, n * rows), b.f32(yRef, n * rows), 1e-5, what);
          const Y = b.f32(y, n * rows);
          for (let t = 0; t < n; t++) for (let r = 0; r < rows; r++) if (r < r0 || r >= r1) assert.equal(Y[t * rows + r], 12345, `${what}: row ${r} written`);
        }
      }
      const want = b.alloc(cols * 4), got = b.alloc(cols * 4), es = dtype === 'f32' ? 4 : 2;
      for (const [name, k] of ks) {
        for (const r of [0, 1, 31, 32, 63]) {
          b.ref.toF32(dtype, w + r * cols * es, want, cols);
          k.rowToF32(`${dtype}p`, wp, r, cols, got);
          assertBytesEqual(b.u8(got, cols * 4), b.u8(want, cols * 4), `${dtype}p ${name}: rowToF32 row ${r}`);
        }
        assert.throws(() => k.toF32(`${dtype}p`, wp, got, 16), /rows interleaved; read rows with rowToF32/);
      }
    }
  }
});
