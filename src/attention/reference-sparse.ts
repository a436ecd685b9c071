// The plain-TypeScript twin of kernels/lsh.ts and kernels/sparse.ts: the same contract
// (./sparse-kernels.ts) written as obvious loops over views of the same memory. It is the oracle the
// SIMD kernels are tested against and the implementation used with 'reference' kernels.

import { f16ToF32 } from '../kernels/reference.js';
import { kvRowOffset, type KVRows, type Ptr } from '../kernels/types.js';
import { DESC, DESC_WORDS } from './magicpig-desc.js';
import type { SparseKernels } from './sparse-kernels.js';

export function createReferenceSparseKernels(memory: WebAssembly.Memory): SparseKernels {
  const buf = () => memory.buffer as ArrayBuffer;
  const F32 = (p: Ptr, n: number) => new Float32Array(buf(), p, n);
  const U32 = (p: Ptr, n: number) => new Uint32Array(buf(), p, n);
  const U8 = (p: Ptr, n: number) => new Uint8Array(buf(), p, n);
  /** Row of D values at byte offset p (f32 or f16) as numbers. */
  const row = (p: Ptr, f16: boolean, D: number): Float32Array => {
    if (!f16) return F32(p, D).slice();
    const h = new Uint16Array(buf(), p, D);
    return Float32Array.from(h, f16ToF32);
  };
  const dot = (a: ArrayLike<number>, b: ArrayLike<number>, D: number) => { let s = 0; for (let d = 0; d < D; d++) s += a[d]! * b[d]!; return s; };

  /** Byte offset of row id (see KVRows), reading the page table from this memory. */
  const off = (rows: KVRows, id: number): number =>
    kvRowOffset(rows, id, rows.pages === 0 ? undefined : U32(rows.pages, (id >>> rows.pageShift) + 1));

  /** Online-softmax-free reference: collect logits, then normalise (returns acc, m, l). */
  function attendRef(q: Float32Array, k: Ptr, v: Ptr, f16: boolean, rows: KVRows, D: number,
                     ids: ArrayLike<number>, logitOf: (i: number, raw: number, id: number) => number) {
    const n = ids.length;
    const x = new Float64Array(n);
    let m = -Infinity;
    for (let i = 0; i < n; i++) {
      const raw = dot(q, row(k + off(rows, ids[i]!), f16, D), D);
      x[i] = logitOf(i, raw, ids[i]!);
      if (x[i]! > m) m = x[i]!;
    }
    const acc = new Float64Array(D);
    let l = 0;
    for (let i = 0; i < n; i++) {
      const e = Math.exp(x[i]! - m);
      l += e;
      const vr = row(v + off(rows, ids[i]!), f16, D);
      for (let d = 0; d < D; d++) acc[d] += e * vr[d]!;
    }
    return { acc, m, l };
  }

  return {
    lshCodes(x, f16, rowStride, mu, R, xs, D, K, L, codes, codeStride, norms, i0, r0, r1) {
      const Rm = F32(R, K * L * D), m = F32(mu, D);
      const C = new Uint16Array(buf(), codes, L * codeStride), N = F32(norms, r1);
      for (let r = r0; r < r1; r++) {
        const xr = row(x + r * rowStride, f16, D).map((v, d) => v - m[d]!);
        F32(xs + (r - i0) * D * 4, D).set(xr);
        for (let l = 0; l < L; l++) {
          let code = 0;
          for (let b = 0; b < K; b++) {
            const j = l * K + b;
            if (dot(xr, Rm.subarray(j * D, j * D + D), D) > 0) code |= 1 << b;
          }
          C[l * codeStride + r - i0] = code;
        }
        let s = 0;
        for (let d = 0; d < D; d++) s += xr[d]! ** 2;
        N[r] = Math.sqrt(s);
      }
    },

    attendList(q, k, v, f16, rows, D, scale, ids, bias, count, out, lse) {
      const I = U32(ids, count), B = bias ? F32(bias, count) : undefined;
      const { acc, m, l } = attendRef(F32(q, D), k, v, f16, rows, D, I, (i, raw) => raw * scale + (B ? B[i]! : 0));
      const o = F32(out, D);
      for (let d = 0; d < D; d++) o[d] = l > 0 ? acc[d]! / l : 0;
      F32(lse, 1)[0] = l > 0 ? m + Math.log(l) : -Infinity;
    },

    sparseScores(q, k, f16, rows, D, scale, s0, s1, out) {
      const qv = F32(q, D), o = F32(out, s1 - s0);
      for (let s = s0; s < s1; s++) o[s - s0] = dot(qv, row(k + off(rows, s), f16, D), D) * scale;
    },

    magicpigDecode(desc, h0, h1) {
      const w = new Int32Array(buf(), desc, DESC_WORDS), u = new Uint32Array(buf(), desc, DESC_WORDS);
      const H = w[DESC.H]!, Hkv = w[DESC.HKV]!, D = w[DESC.D]!, K = w[DESC.KBITS]!, L = w[DESC.L]!;
      const scale = new Float32Array(buf(), desc, DESC_WORDS)[DESC.SCALE]!;
      const f16 = w[DESC.F16] !== 0, es = f16 ? 2 : 4, cap = u[DESC.CAP]!, NB = 1 << K;
      const rows: KVRows = { rowBytes: w[DESC.ROW]!, pages: u[DESC.PAGES]!, pageShift: w[DESC.PAGE_SHIFT]! };
      const T = w[DESC.LOGU_N]!, logU = F32(u[DESC.LOGU]!, T + 1);
      for (let h = h0; h < h1; h++) {
        const g = Math.floor(h / (H / Hkv));
        const q = F32(u[DESC.Q]! + h * D * 4, D);
        const kBase = u[DESC.K]! + g * D * es, vBase = u[DESC.V]! + g * D * es;
        const R = F32(u[DESC.R]! + g * K * L * D * 4, K * L * D);
        const qb: number[] = [];
        for (let l = 0; l < L; l++) {
          let code = 0;
          for (let b = 0; b < K; b++) if (dot(q, R.subarray((l * K + b) * D, (l * K + b + 1) * D), D) > 0) code |= 1 << b;
          qb.push(code);
        }
        // Retrieval by counting in a fresh map (the kernel's counter array must come back all zero).
        const hits = new Map<number, number>();
        const list: number[] = [];
        const walk = (offP: number, idsP: number, stride: number) => {
          for (let l = 0; l < L; l++) {
            const t = g * L + l, off = U32(offP + t * (NB + 1) * 4, NB + 1), ids = U32(idsP + t * stride * 4, stride);
            for (let i = off[qb[l]!]!; i < off[qb[l]! + 1]!; i++) {
              const c = (hits.get(ids[i]!) ?? 0) + 1;
              hits.set(ids[i]!, c);
              if (c === 2) list.push(ids[i]!);
            }
          }
        };
        if (w[DESC.MAIN_N]! > 0) walk(u[DESC.MAIN_OFF]!, u[DESC.MAIN_IDS]!, u[DESC.MAIN_STRIDE]!);
        if (w[DESC.DELTA_N]! > 0) walk(u[DESC.DELTA_OFF]!, u[DESC.DELTA_IDS]!, u[DESC.DELTA_STRIDE]!);
        new Int32Array(buf(), u[DESC.STATS]!, H)[h] = list.length;
        U8(u[DESC.COUNTERS]! + h * cap, cap).fill(0);
        U32(u[DESC.LISTS]! + h * cap * 4, list.length).set(list);

        const mu = F32(u[DESC.MU]! + g * D * 4, D), knorm = F32(u[DESC.KNORM]! + g * cap * 4, cap);
        const qNorm = Math.sqrt(dot(q, q, D)), qMu = dot(q, mu, D);
        const sampled = attendRef(q, kBase, vBase, f16, rows, D, list, (_i, raw, id) => {
          const den = qNorm * knorm[id]!;
          const c = Math.min(1, Math.max(-1, den > 0 ? (raw - qMu) / den : 0));
          const x = (c + 1) * 0.5 * T, j = Math.min(Math.floor(x), T - 1), f = x - j;
          return raw * scale - (logU[j]! + f * (logU[j + 1]! - logU[j]!));
        });
        const dense = attendRef(q, kBase, vBase, f16, rows, D, U32(u[DESC.DENSE_IDS]!, w[DESC.DENSE_N]!), (_i, raw) => raw * scale);
        // Two-partial merge by log-sum-exp.
        const M = Math.max(sampled.m, dense.m);
        const ws = sampled.l > 0 ? Math.exp(sampled.m - M) : 0, wd = dense.l > 0 ? Math.exp(dense.m - M) : 0;
        const den = ws * sampled.l + wd * dense.l;
        const out = F32(u[DESC.OUT]! + h * D * 4, D);
        for (let d = 0; d < D; d++) out[d] = den > 0 ? (ws * sampled.acc[d]! + wd * dense.acc[d]!) / den : 0;
      }
    },
  };
}
