// Reads one tensor into its final storage, converting on the way when the stored dtype differs from
// the file's: 1-D tensors (norms, biases) are always widened to f32, and `quantize: 'q8_0'` turns
// f32/f16/bf16 matrices into GGUF q8_0 blocks with llama.cpp's reference quantiser.

import type { WeightDType } from '../kernels/types.js';
import type { TensorEntry, TensorSource } from '../formats/tensor-source.js';
import { f16ToF32, bf16ToF32, quantizeToQ8_0 } from '../kernels/reference.js';

/** The tensor's values as f32, whatever its stored dtype. */
export function readAsF32(source: TensorSource, entry: TensorEntry): Float32Array {
  const raw = new Uint8Array(entry.byteLength);
  source.read(entry, raw);
  const count = entry.shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(count);
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  switch (entry.dtype) {
    case 'f32': for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true); break;
    case 'f16': for (let i = 0; i < count; i++) out[i] = f16ToF32(view.getUint16(i * 2, true)); break;
    case 'bf16': for (let i = 0; i < count; i++) out[i] = bf16ToF32(view.getUint16(i * 2, true)); break;
    case 'q8_0':
      for (let b = 0; b < count / 32; b++) {
        const d = f16ToF32(view.getUint16(b * 34, true));
        for (let j = 0; j < 32; j++) out[b * 32 + j] = d * view.getInt8(b * 34 + 2 + j);
      }
      break;
    case 'q4_0':
      for (let b = 0; b < count / 32; b++) {
        const d = f16ToF32(view.getUint16(b * 18, true));
        for (let j = 0; j < 16; j++) {
          const byte = raw[b * 18 + 2 + j];
          out[b * 32 + j] = d * ((byte & 15) - 8);
          out[b * 32 + j + 16] = d * ((byte >> 4) - 8);
        }
      }
      break;
    default: throw new Error(`${source.description}: tensor ${entry.name} has dtype ${entry.dtype}, which cannot be converted to f32`);
  }
  return out;
}

/** Fills `dst` (exactly the stored size) with the tensor stored as `stored`. */
export function readTensorInto(source: TensorSource, entry: TensorEntry, stored: WeightDType, dst: Uint8Array): void {
  if (stored === entry.dtype) { source.read(entry, dst); return; }
  const values = readAsF32(source, entry);
  if (stored === 'f32') { new Float32Array(dst.buffer, dst.byteOffset, values.length).set(values); return; }
  if (stored === 'q8_0') { dst.set(quantizeToQ8_0(values)); return; }
  throw new Error(`${source.description}: cannot store tensor ${entry.name} (${entry.dtype}) as ${stored}`);
}
