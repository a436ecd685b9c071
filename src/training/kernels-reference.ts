// Plain-TypeScript twin of the training kernels (kernels/train-*.ts): the oracle the SIMD build is
// tested against, and the implementation used when the arena runs the reference kernels.
// Same contract as TrainKernels in train-kernels.ts (pointers are byte offsets into `memory`).

import type { Ptr } from '../kernels/types.js';
import type { TrainKernels } from './train-kernels.js';

export function referenceTrainKernels(memory: WebAssembly.Memory): TrainKernels {
  const buf = memory.buffer as unknown as SharedArrayBuffer;
  const f32 = (p: Ptr, n: number) => new Float32Array(buf, p, n);
  return {
    transpose(src, dst, rows, cols) {
      const s = f32(src, rows * cols), d = f32(dst, rows * cols);
      for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) d[c * rows + r] = s[r * cols + c];
    },

    attnForward(q, k, v, out, lse, T, H, Hkv, D, scale, h0, h1) {
      const Q = f32(q, T * H * D), K = f32(k, T * Hkv * D), V = f32(v, T * Hkv * D);
      const O = f32(out, T * H * D), L = f32(lse, T * H);
      const group = H / Hkv, s = new Float64Array(T);
      for (let h = h0; h < h1; h++) {
        const g = Math.floor(h / group);
        for (let i = 0; i < T; i++) {
          const qo = (i * H + h) * D;
          let m = -Infinity;
          for (let j = 0; j <= i; j++) {
            const ko = (j * Hkv + g) * D;
            let dot = 0;
            for (let d = 0; d < D; d++) dot += Q[qo + d] * K[ko + d];
            s[j] = dot * scale;
            m = Math.max(m, s[j]);
          }
          let l = 0;
          for (let j = 0; j <= i; j++) { s[j] = Math.exp(s[j] - m); l += s[j]; }
          for (let d = 0; d < D; d++) {
            let acc = 0;
            for (let j = 0; j <= i; j++) acc += s[j] * V[(j * Hkv + g) * D + d];
            O[qo + d] = acc / l;
          }
          L[i * H + h] = m + Math.log(l);
        }
      }
    },

    attnBackward(q, k, v, out, dout, lse, dq, dk, dv, T, H, Hkv, D, scale, g0, g1) {
      const Q = f32(q, T * H * D), K = f32(k, T * Hkv * D), V = f32(v, T * Hkv * D);
      const O = f32(out, T * H * D), dO = f32(dout, T * H * D), L = f32(lse, T * H);
      const dQ = f32(dq, T * H * D), dK = f32(dk, T * Hkv * D), dV = f32(dv, T * Hkv * D);
      const group = H / Hkv;
      for (let g = g0; g < g1; g++) {
        for (let h = g * group; h < (g + 1) * group; h++) {
          for (let i = 0; i < T; i++) {
            const qo = (i * H + h) * D;
            let delta = 0;
            for (let d = 0; d < D; d++) delta += dO[qo + d] * O[qo + d];
            const li = L[i * H + h];
            for (let j = 0; j <= i; j++) {
              const ko = (j * Hkv + g) * D;
              let sc = 0, dp = 0;
              for (let d = 0; d < D; d++) { sc += Q[qo + d] * K[ko + d]; dp += dO[qo + d] * V[ko + d]; }
              const p = Math.exp(sc * scale - li);
              const ds = p * (dp - delta) * scale;
              for (let d = 0; d < D; d++) {
                dQ[qo + d] += ds * K[ko + d];
                dK[ko + d] += ds * Q[qo + d];
                dV[ko + d] += p * dO[qo + d];
              }
            }
          }
        }
      }
    },
  };
}
