// GGUF → GGUF quantisation (what llama-quantize does without an importance matrix): metadata is kept,
// every weight matrix is quantised to the type the recipe picks for it, everything else is copied.
// Recipes follow llama.cpp's llama_tensor_get_type for the Llama family:
//   q8_0, q4_0, q6_k   one type for every matrix, except the output projection (output.weight, or
//                      token_embd.weight when tied): q6_K for q4_0 (as llama.cpp), the type itself else
//   q4_k_m / q5_k_m    q4_K / q5_K, with q6_K for the output projection and for attn_v and ffn_down in
//                      "more bits" layers: the first and last eighth, and every third one in between
// A matrix whose rows are not whole blocks of its type falls back: K-quants (256) to q8_0 (llama.cpp
// picks q5_0 / q5_1 for q4_K / q5_K there, types Tessera does not run), q8_0 / q4_0 (32) to f16.
// Sources may be f32, f16 or bf16; a matrix already quantised is copied if it already has the target
// type and refused otherwise (quantising twice compounds the error: start from the f16 / f32 file).

import { quantizeToK, type KQuantType } from '../kernels/k-quants.js';
import { quantizeToQ4_0, quantizeToQ8_0, f32ToF16 } from '../kernels/reference.js';
import { GGML_TYPES, openGguf, type GgufFile, type GgufTensorEntry } from './gguf.js';
import { writeGguf, type GgufMetadataEntry, type GgufTensorToWrite, type GgufWriteType } from './gguf-writer.js';
import { toFloat32 } from './gguf-quantize.js';
import { FormatError } from './errors.js';

export const QUANT_RECIPES = ['q4_k_m', 'q5_k_m', 'q6_k', 'q8_0', 'q4_0'] as const;
export type QuantRecipe = (typeof QUANT_RECIPES)[number];

/** llama.cpp's llama_ftype value recorded as general.file_type. */
const FILE_TYPE: Record<QuantRecipe, number> = { q4_0: 2, q8_0: 7, q4_k_m: 15, q5_k_m: 17, q6_k: 18 };
const BASE_TYPE: Record<QuantRecipe, GgufWriteType> = { q4_0: 'Q4_0', q8_0: 'Q8_0', q4_k_m: 'Q4_K', q5_k_m: 'Q5_K', q6_k: 'Q6_K' };

/** llama.cpp's use_more_bits: the first and last eighth of the layers and every third in between. */
export function useMoreBits(layer: number, layers: number): boolean {
  const e = Math.floor(layers / 8);
  return layer < e || layer >= Math.floor((7 * layers) / 8) || (layer - e) % 3 === 2;
}

/** Whether a tensor is a weight matrix that quantisation applies to (llama.cpp's rule for these names). */
export function isQuantisable(name: string, ne: readonly number[]): boolean {
  return ne.length >= 2 && name.endsWith('weight') && !name.includes('_norm.weight');
}

/** The type the recipe gives one weight matrix. `tied`: the file has no output.weight (token_embd
 *  serves as the output projection); `layers`: the block count. */
export function recipeType(recipe: QuantRecipe, name: string, cols: number, layer: number | null, layers: number, tied: boolean): GgufWriteType {
  let type = BASE_TYPE[recipe];
  const isOutput = name === 'output.weight' || (tied && name === 'token_embd.weight');
  if (isOutput) {
    if (recipe !== 'q8_0') type = 'Q6_K';
  } else if ((recipe === 'q4_k_m' || recipe === 'q5_k_m') && layer !== null &&
             (name.endsWith('attn_v.weight') || name.endsWith('ffn_down.weight')) && useMoreBits(layer, layers)) {
    type = 'Q6_K';
  }
  const block = GGML_TYPES[type].blockSize;
  if (cols % block === 0) return type;
  if (block === 256) return cols % 32 === 0 ? 'Q8_0' : 'F16';
  return 'F16';
}

const WRITABLE: ReadonlySet<string> = new Set<GgufWriteType>(['F32', 'F16', 'BF16', 'Q8_0', 'Q4_0', 'Q4_K', 'Q5_K', 'Q6_K']);
const K_OF: Partial<Record<GgufWriteType, KQuantType>> = { Q4_K: 'q4_k', Q5_K: 'q5_k', Q6_K: 'q6_k' };

function encode(type: GgufWriteType, values: Float32Array): Uint8Array {
  switch (type) {
    case 'Q8_0': return quantizeToQ8_0(values);
    case 'Q4_0': return quantizeToQ4_0(values);
    case 'Q4_K': case 'Q5_K': case 'Q6_K': return quantizeToK(K_OF[type]!, values);
    case 'F16': return new Uint8Array(Uint16Array.from(values, f32ToF16).buffer);
    default: throw new Error(`quantizeGguf: cannot encode ${type}`);
  }
}

export interface QuantizeGgufOptions {
  onTensor?: (done: number, total: number, name: string, type: GgufWriteType) => void;
}

export interface QuantizeGgufResult {
  /** Tensors written per ggml type. */
  types: Record<string, number>;
  inBytes: number;
  outBytes: number;
}

function readRaw(file: GgufFile, e: GgufTensorEntry): Uint8Array {
  const raw = new Uint8Array(e.byteLength);
  file.read(e, raw);
  return raw;
}

/** Quantises the GGUF at inPath into a new GGUF at outPath (written atomically: a temp file renamed
 *  into place, so a failure leaves no partial file). */
export function quantizeGguf(inPath: string, outPath: string, recipe: QuantRecipe, opts: QuantizeGgufOptions = {}): QuantizeGgufResult {
  if (!QUANT_RECIPES.includes(recipe)) throw new RangeError(`quantizeGguf: unknown type '${recipe}' (one of ${QUANT_RECIPES.join(', ')})`);
  const file = openGguf(inPath);
  try {
    const arch = file.metadata.get('general.architecture');
    const layers = file.metadata.get(`${String(arch)}.block_count`);
    if (typeof layers !== 'number' || !Number.isInteger(layers) || layers < 1) {
      throw new FormatError(inPath, `metadata ${String(arch)}.block_count is missing or not a positive integer; is this a model file?`);
    }
    const tied = !file.tensors.has('output.weight');
    const entries = [...file.tensors.values()];
    // Check every tensor before writing anything: a refusal must not come after minutes of work.
    const plan = entries.map((e) => {
      if (!isQuantisable(e.name, e.ne)) return { e, type: e.ggmlType as GgufWriteType, copy: true };
      const m = /^blk\.(\d+)\./.exec(e.name);
      const type = recipeType(recipe, e.name, e.ne[0]!, m ? Number(m[1]) : null, layers, tied);
      if (e.ggmlType === type) return { e, type, copy: true };
      if (e.dtype !== 'f32' && e.dtype !== 'f16' && e.dtype !== 'bf16') {
        throw new FormatError(inPath, `tensor ${e.name} is already quantised (${e.ggmlType}); quantising it again to ${type} compounds the error — quantise the f16 or f32 GGUF instead`);
      }
      return { e, type, copy: false };
    });
    for (const { e, type } of plan) {
      if (!WRITABLE.has(type)) throw new FormatError(inPath, `tensor ${e.name} has type ${e.ggmlType}, which Tessera cannot write; convert the model to f16 first`);
    }
    const types: Record<string, number> = {};
    let outBytes = 0;
    function* tensors(): Generator<GgufTensorToWrite> {
      for (let i = 0; i < plan.length; i++) {
        const { e, type, copy } = plan[i]!;
        let data: Uint8Array;
        if (copy) {
          data = readRaw(file, e);
        } else {
          const values = toFloat32(e.dtype as 'f32' | 'f16' | 'bf16', readRaw(file, e));
          for (let j = 0; j < values.length; j++) {
            if (!Number.isFinite(values[j]!)) throw new FormatError(inPath, `tensor ${e.name} holds a non-finite value (${values[j]}) at element ${j}; the source weights are damaged`);
          }
          data = encode(type, values);
        }
        types[type] = (types[type] ?? 0) + 1;
        outBytes += data.byteLength;
        opts.onTensor?.(i + 1, plan.length, e.name, type);
        yield { name: e.name, ggmlType: type, shape: e.shape, data };
      }
    }
    const metadata: GgufMetadataEntry[] = [];
    for (const [k, v] of file.metadata) {
      if (k === 'general.file_type' || k === 'general.quantization_version' || k === 'general.alignment') continue;
      metadata.push([k, v, file.metadataTypes.get(k)]);
    }
    metadata.push(['general.quantization_version', 2, 'u32'], ['general.file_type', FILE_TYPE[recipe], 'u32']);
    writeGguf(outPath, metadata, tensors(), { alignment: file.alignment });
    return { types, inBytes: entries.reduce((a, e) => a + e.byteLength, 0), outBytes };
  } finally {
    file.close();
  }
}
