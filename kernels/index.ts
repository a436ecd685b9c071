// Entry point of the WebAssembly kernel module: re-exports every kernel file.
// Kernels take byte offsets (usize: JS passes numbers >= 2^31 through ToInt32, and the bits are
// read back unsigned) into the imported shared memory; they allocate nothing and use no static
// data, so the first 64 KiB of every memory stay untouched.
export function kernelsVersion(): i32 { return 1; }
export { matmulF32, matmulF16, matmulBF16, matmulF32Panels, matmulF16Panels, matmulBF16Panels } from './matmul';
export { matmulQ8_0, matmulQ4_0 } from './matmul-quant';
export { matmulQ8_0x4, matmulQ4_0x4, rowToF32Q8_0x4, rowToF32Q4_0x4 } from './matmul-quant-x4';
export { matmulQ4_K, matmulQ5_K, matmulQ6_K, quantizeQ8K, toF32Q4_K, toF32Q5_K, toF32Q6_K } from './matmul-kquant';
export { matmulQ4_Kx4, matmulQ5_Kx4, matmulQ6_Kx4, rowToF32Q4_Kx4, rowToF32Q5_Kx4, rowToF32Q6_Kx4 } from './matmul-kquant-x4';
export { quantizeQ8, toF32F32, toF32F16, toF32BF16, toF32Q8_0, toF32Q4_0, storeRowsF16 } from './quant';
export { rmsNorm, layerNorm } from './norm';
export { rope } from './rope';
export { siluMul, geluMul, siluMulStacked, geluMulStacked, add, addBias, softmax } from './activations';
export { attentionF32, attentionF16, attentionChunksF32, attentionChunksF16, attentionMerge, attentionBatchF32, attentionBatchF16, attentionBatchMerge } from './attention';
export * from './train-layout';
export * from './train-attention';
export * from './train-mosaic';
export * from './lsh';
export * from './sparse';
