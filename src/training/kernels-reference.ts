// Plain-TypeScript twin of the training kernels (kernels/train-*.ts): the oracle the SIMD build is
// tested against, and the fallback when the arena runs the reference kernels.

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
  };
}
