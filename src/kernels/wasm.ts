// Binds the WebAssembly SIMD build of kernels/*.ts (dist/kernels.wasm) to one memory. The module is
// compiled once per process (synchronously, cached) and instantiated once per arena memory; every
// worker thread instantiates the same compiled module against the same shared memories.
// Pointers are byte offsets < 2^32: JS numbers >= 2^31 reach the wasm i32 parameters through ToInt32
// (same bits) and the kernels read them back as unsigned usize, so all of a 4 GiB memory is addressable.

import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { isPanelDType, panelBase, panelRowParts, PANEL_COLS } from './repack.js';
import { checkBlockRange, checkSplitsKeys, weightBytes, type Kernels, type Ptr } from './types.js';

/** Raw exports of kernels/index.ts (pointers and counts as i32, floats as f32). */
interface KernelExports {
  matmulF32(w: Ptr, x: Ptr, y: Ptr, n: number, rows: number, cols: number, r0: number, r1: number): void;
  matmulF16(w: Ptr, x: Ptr, y: Ptr, n: number, rows: number, cols: number, r0: number, r1: number): void;
  matmulBF16(w: Ptr, x: Ptr, y: Ptr, n: number, rows: number, cols: number, r0: number, r1: number): void;
  matmulF32Panels(w: Ptr, x: Ptr, y: Ptr, n: number, rows: number, cols: number, r0: number, r1: number): void;
  matmulF16Panels(w: Ptr, x: Ptr, y: Ptr, n: number, rows: number, cols: number, r0: number, r1: number): void;
  matmulBF16Panels(w: Ptr, x: Ptr, y: Ptr, n: number, rows: number, cols: number, r0: number, r1: number): void;
  matmulQ8_0(w: Ptr, xq: Ptr, y: Ptr, n: number, rows: number, cols: number, r0: number, r1: number): void;
  matmulQ4_0(w: Ptr, xq: Ptr, y: Ptr, n: number, rows: number, cols: number, r0: number, r1: number): void;
  matmulQ8_0x4(w: Ptr, xq: Ptr, y: Ptr, n: number, rows: number, cols: number, r0: number, r1: number): void;
  matmulQ4_0x4(w: Ptr, xq: Ptr, y: Ptr, n: number, rows: number, cols: number, r0: number, r1: number): void;
  rowToF32Q8_0x4(w: Ptr, row: number, cols: number, dst: Ptr): void;
  rowToF32Q4_0x4(w: Ptr, row: number, cols: number, dst: Ptr): void;
  matmulQ4_K(w: Ptr, xq: Ptr, y: Ptr, n: number, rows: number, cols: number, r0: number, r1: number): void;
  matmulQ5_K(w: Ptr, xq: Ptr, y: Ptr, n: number, rows: number, cols: number, r0: number, r1: number): void;
  matmulQ6_K(w: Ptr, xq: Ptr, y: Ptr, n: number, rows: number, cols: number, r0: number, r1: number): void;
  matmulQ4_Kx4(w: Ptr, xq: Ptr, y: Ptr, n: number, rows: number, cols: number, r0: number, r1: number): void;
  matmulQ5_Kx4(w: Ptr, xq: Ptr, y: Ptr, n: number, rows: number, cols: number, r0: number, r1: number): void;
  matmulQ6_Kx4(w: Ptr, xq: Ptr, y: Ptr, n: number, rows: number, cols: number, r0: number, r1: number): void;
  rowToF32Q4_Kx4(w: Ptr, row: number, cols: number, dst: Ptr): void;
  rowToF32Q5_Kx4(w: Ptr, row: number, cols: number, dst: Ptr): void;
  rowToF32Q6_Kx4(w: Ptr, row: number, cols: number, dst: Ptr): void;
  quantizeQ8(x: Ptr, xq: Ptr, count: number, b0: number, b1: number): void;
  quantizeQ8K(x: Ptr, xq: Ptr, count: number): void;
  toF32F32(src: Ptr, dst: Ptr, count: number): void;
  toF32F16(src: Ptr, dst: Ptr, count: number): void;
  toF32BF16(src: Ptr, dst: Ptr, count: number): void;
  toF32Q8_0(src: Ptr, dst: Ptr, count: number): void;
  toF32Q4_0(src: Ptr, dst: Ptr, count: number): void;
  toF32Q4_K(src: Ptr, dst: Ptr, count: number): void;
  toF32Q5_K(src: Ptr, dst: Ptr, count: number): void;
  toF32Q6_K(src: Ptr, dst: Ptr, count: number): void;
  storeRowsF16(src: Ptr, dst: Ptr, count: number): void;
  rmsNorm(x: Ptr, w: Ptr, y: Ptr, n: number, dim: number, eps: number): void;
  layerNorm(x: Ptr, w: Ptr, b: Ptr, y: Ptr, n: number, dim: number, eps: number): void;
  rope(x: Ptr, pos: Ptr, invFreq: Ptr, n: number, heads: number, headDim: number, style: number): void;
  siluMul(gate: Ptr, up: Ptr, count: number): void;
  geluMul(gate: Ptr, up: Ptr, count: number): void;
  siluMulStacked(gu: Ptr, out: Ptr, n: number, F: number): void;
  geluMulStacked(gu: Ptr, out: Ptr, n: number, F: number): void;
  add(y: Ptr, x: Ptr, count: number): void;
  addBias(y: Ptr, bias: Ptr, rows: number, cols: number): void;
  softmax(x: Ptr, n: number, len: number): void;
  attentionF32(q: Ptr, qPos: Ptr, k: Ptr, v: Ptr, out: Ptr, n: number, S: number, H: number, Hkv: number,
               D: number, scale: number, pages: Ptr, pageShift: number, state: Ptr, h0: number, h1: number): void;
  attentionF16(q: Ptr, qPos: Ptr, k: Ptr, v: Ptr, out: Ptr, n: number, S: number, H: number, Hkv: number,
               D: number, scale: number, pages: Ptr, pageShift: number, state: Ptr, h0: number, h1: number): void;
  attentionChunksF32(q: Ptr, qPos: Ptr, k: Ptr, v: Ptr, out: Ptr, n: number, S: number, H: number, Hkv: number,
                     D: number, scale: number, pages: Ptr, pageShift: number, state: Ptr, u0: number, u1: number): void;
  attentionChunksF16(q: Ptr, qPos: Ptr, k: Ptr, v: Ptr, out: Ptr, n: number, S: number, H: number, Hkv: number,
                     D: number, scale: number, pages: Ptr, pageShift: number, state: Ptr, u0: number, u1: number): void;
  attentionMerge(qPos: Ptr, out: Ptr, n: number, S: number, H: number, Hkv: number, D: number, state: Ptr): void;
  attentionBatchF32(table: Ptr, count: number, k: Ptr, v: Ptr, H: number, Hkv: number, D: number, scale: number, pageShift: number, u0: number, u1: number): void;
  attentionBatchF16(table: Ptr, count: number, k: Ptr, v: Ptr, H: number, Hkv: number, D: number, scale: number, pageShift: number, u0: number, u1: number): void;
  attentionBatchMerge(table: Ptr, count: number, H: number, Hkv: number, D: number): void;
}

/** The two builds of kernels/*.ts: 'relaxed' adds WebAssembly relaxed SIMD (int8 dot products,
 *  kernels/matmul-kquant.ts), 'simd' is plain SIMD. Both compute the same integers (tested). */
export type KernelBuild = 'simd' | 'relaxed';
/** Each build's file, relative to this module in dist/src/kernels/ (a package must ship both). */
export const BUILD_FILES: Readonly<Record<KernelBuild, string>> = { simd: '../../kernels.wasm', relaxed: '../../kernels-relaxed.wasm' };
const cached = new Map<KernelBuild, WebAssembly.Module>();
let chosen: KernelBuild | undefined;

/** The build this process runs: 'relaxed' where the engine validates relaxed SIMD (Node ≥ 22; Node 20
 *  once --experimental-wasm-relaxed-simd is set, which is done here, before any module is compiled —
 *  V8 flags are process-wide, so worker threads see it too), else 'simd'. TESSERA_KERNELS=simd
 *  forces the plain build. */
export function kernelBuild(): KernelBuild {
  if (chosen) return chosen;
  if (process.env.TESSERA_KERNELS === 'simd') return (chosen = 'simd');
  if (!WebAssembly.validate(RELAXED_PROBE)) {
    try { setFlagsFromString('--experimental-wasm-relaxed-simd'); } catch { /* engine without the flag */ }
  }
  return (chosen = WebAssembly.validate(RELAXED_PROBE) ? 'relaxed' : 'simd');
}

/** The compiled kernel module of a build (dist/kernels.wasm or dist/kernels-relaxed.wasm, next to
 *  dist/src/), compiled on first use; by default the build kernelBuild() picks. */
export function kernelModule(build: KernelBuild = kernelBuild()): WebAssembly.Module {
  const hit = cached.get(build);
  if (hit) return hit;
  const url = new URL(BUILD_FILES[build], import.meta.url);
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = new Uint8Array(readFileSync(url));
  } catch (e) {
    throw new Error(`kernelModule: cannot read ${url.pathname} (${(e as Error).message}); run \`npm run build:kernels\``);
  }
  if (!simdSupported()) throw new Error('kernelModule: this JavaScript engine lacks WebAssembly SIMD; use the reference kernels');
  if (build === 'relaxed' && !WebAssembly.validate(RELAXED_PROBE)) throw new Error('kernelModule: this JavaScript engine lacks WebAssembly relaxed SIMD; use the simd build');
  const module = new WebAssembly.Module(bytes);
  cached.set(build, module);
  return module;
}

// (module (func (result v128) (i32x4.relaxed_dot_i8x16_i7x16_add_s (v128.const 0) (v128.const 0)
// (v128.const 0)))): validates only where relaxed SIMD is enabled.
const RELAXED_PROBE = ((): Uint8Array<ArrayBuffer> => {
  const zero = [0xfd, 0x0c, ...new Array<number>(16).fill(0)];
  const body = [0x00, ...zero, ...zero, ...zero, 0xfd, 0x93, 0x02, 0x0b];
  return new Uint8Array([0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 1, 5, 1, 0x60, 0, 1, 0x7b, 3, 2, 1, 0, 0x0a, body.length + 2, 1, body.length, ...body]);
})();

// (module (func (result v128) v128.const i32x4 0 0 0 0)): validates only where SIMD is supported.
const SIMD_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, 0x03,
  0x02, 0x01, 0x00, 0x0a, 0x16, 0x01, 0x14, 0x00, 0xfd, 0x0c, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
  0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0b,
]);

/** Whether this engine validates WebAssembly SIMD (v128) code. */
export function simdSupported(): boolean {
  return WebAssembly.validate(SIMD_PROBE);
}

/** Kernels running in a fresh instance of `module` bound to `memory` (imported as env.memory; the
 *  memory must be shared with maximum <= 65536 pages, as the module declares). */
export function createWasmKernels(module: WebAssembly.Module, memory: WebAssembly.Memory): Kernels {
  const instance = new WebAssembly.Instance(module, { env: { memory } });
  const k = instance.exports as unknown as KernelExports;
  return {
    matmul(dtype, w, x, y, n, rows, cols, r0, r1) {
      switch (dtype) {
        case 'f32': return k.matmulF32(w, x, y, n, rows, cols, r0, r1);
        case 'f16': return k.matmulF16(w, x, y, n, rows, cols, r0, r1);
        case 'bf16': return k.matmulBF16(w, x, y, n, rows, cols, r0, r1);
        case 'f32p': return k.matmulF32Panels(w, x, y, n, rows, cols, r0, r1);
        case 'f16p': return k.matmulF16Panels(w, x, y, n, rows, cols, r0, r1);
        case 'bf16p': return k.matmulBF16Panels(w, x, y, n, rows, cols, r0, r1);
        case 'q8_0': return k.matmulQ8_0(w, x, y, n, rows, cols, r0, r1);
        case 'q4_0': return k.matmulQ4_0(w, x, y, n, rows, cols, r0, r1);
        case 'q8_0x4': return k.matmulQ8_0x4(w, x, y, n, rows, cols, r0, r1);
        case 'q4_0x4': return k.matmulQ4_0x4(w, x, y, n, rows, cols, r0, r1);
        case 'q4_k': return k.matmulQ4_K(w, x, y, n, rows, cols, r0, r1);
        case 'q5_k': return k.matmulQ5_K(w, x, y, n, rows, cols, r0, r1);
        case 'q6_k': return k.matmulQ6_K(w, x, y, n, rows, cols, r0, r1);
        case 'q4_kx4': return k.matmulQ4_Kx4(w, x, y, n, rows, cols, r0, r1);
        case 'q5_kx4': return k.matmulQ5_Kx4(w, x, y, n, rows, cols, r0, r1);
        case 'q6_kx4': return k.matmulQ6_Kx4(w, x, y, n, rows, cols, r0, r1);
        default: { const never: never = dtype; throw new Error(`matmul: unknown dtype ${String(never)}`); }
      }
    },
    quantizeQ8: (x, xq, count, b0 = 0, b1 = count / 32) => { checkBlockRange('quantizeQ8', count, b0, b1); k.quantizeQ8(x, xq, count, b0, b1); },
    quantizeQ8K: (x, xq, count) => k.quantizeQ8K(x, xq, count),
    toF32(dtype, src, dst, count) {
      switch (dtype) {
        case 'f32': return k.toF32F32(src, dst, count);
        case 'f16': return k.toF32F16(src, dst, count);
        case 'bf16': return k.toF32BF16(src, dst, count);
        case 'q8_0': return k.toF32Q8_0(src, dst, count);
        case 'q4_0': return k.toF32Q4_0(src, dst, count);
        case 'q4_k': return k.toF32Q4_K(src, dst, count);
        case 'q5_k': return k.toF32Q5_K(src, dst, count);
        case 'q6_k': return k.toF32Q6_K(src, dst, count);
        case 'q8_0x4': case 'q4_0x4': case 'q4_kx4': case 'q5_kx4': case 'q6_kx4': case 'f32p': case 'f16p': case 'bf16p':
          throw new Error(`toF32: ${dtype} has its rows interleaved; read rows with rowToF32`);
        default: { const never: never = dtype; throw new Error(`toF32: unknown dtype ${String(never)}`); }
      }
    },
    rowToF32(dtype, w, row, cols, dst) {
      if (isPanelDType(dtype)) for (const [at, c0] of panelRowParts(dtype, w, row, cols)) this.toF32(panelBase(dtype), at, dst + 4 * c0, PANEL_COLS);
      else if (dtype === 'q8_0x4') k.rowToF32Q8_0x4(w, row, cols, dst);
      else if (dtype === 'q4_0x4') k.rowToF32Q4_0x4(w, row, cols, dst);
      else if (dtype === 'q4_kx4') k.rowToF32Q4_Kx4(w, row, cols, dst);
      else if (dtype === 'q5_kx4') k.rowToF32Q5_Kx4(w, row, cols, dst);
      else if (dtype === 'q6_kx4') k.rowToF32Q6_Kx4(w, row, cols, dst);
      else this.toF32(dtype, w + weightBytes(dtype, row * cols), dst, cols);
    },
    rmsNorm: (x, w, y, n, dim, eps) => k.rmsNorm(x, w, y, n, dim, eps),
    layerNorm: (x, w, b, y, n, dim, eps) => k.layerNorm(x, w, b, y, n, dim, eps),
    rope: (x, pos, invFreq, n, heads, headDim, style) => k.rope(x, pos, invFreq, n, heads, headDim, style === 'neox' ? 0 : 1),
    softmax: (x, n, len) => k.softmax(x, n, len),
    siluMul: (gate, up, count) => k.siluMul(gate, up, count),
    geluMul: (gate, up, count) => k.geluMul(gate, up, count),
    siluMulStacked: (gu, out, n, F) => k.siluMulStacked(gu, out, n, F),
    geluMulStacked: (gu, out, n, F) => k.geluMulStacked(gu, out, n, F),
    add: (y, x, count) => k.add(y, x, count),
    addBias: (y, bias, rows, cols) => k.addBias(y, bias, rows, cols),
    attention(q, qPos, kp, v, out, cacheDType, n, S, H, Hkv, D, scale, pages, pageShift, state, h0, h1) {
      if (state === 0) throw new Error('attention: state is 0; pass attentionStateBytes(n, H, Hkv, D, S) bytes of scratch (src/kernels/types.ts)');
      if (cacheDType === 'f16') k.attentionF16(q, qPos, kp, v, out, n, S, H, Hkv, D, scale, pages, pageShift, state, h0, h1);
      else k.attentionF32(q, qPos, kp, v, out, n, S, H, Hkv, D, scale, pages, pageShift, state, h0, h1);
    },
    attentionChunks(q, qPos, kp, v, out, cacheDType, n, S, H, Hkv, D, scale, pages, pageShift, state, u0, u1) {
      if (state === 0) throw new Error('attentionChunks: state is 0; pass attentionStateBytes(n, H, Hkv, D, S) bytes of scratch (src/kernels/types.ts)');
      checkSplitsKeys(n, S);
      if (cacheDType === 'f16') k.attentionChunksF16(q, qPos, kp, v, out, n, S, H, Hkv, D, scale, pages, pageShift, state, u0, u1);
      else k.attentionChunksF32(q, qPos, kp, v, out, n, S, H, Hkv, D, scale, pages, pageShift, state, u0, u1);
    },
    attentionMerge: (qPos, out, n, S, H, Hkv, D, state) => k.attentionMerge(qPos, out, n, S, H, Hkv, D, state),
    attentionBatch(table, count, kp, v, cacheDType, H, Hkv, D, scale, pageShift, u0, u1) {
      if (cacheDType === 'f16') k.attentionBatchF16(table, count, kp, v, H, Hkv, D, scale, pageShift, u0, u1);
      else k.attentionBatchF32(table, count, kp, v, H, Hkv, D, scale, pageShift, u0, u1);
    },
    attentionBatchMerge: (table, count, H, Hkv, D) => k.attentionBatchMerge(table, count, H, Hkv, D),
    storeRows(cacheDType, src, dst, count) {
      if (cacheDType === 'f16') k.storeRowsF16(src, dst, count);
      else k.toF32F32(src, dst, count);
    },
  };
}
