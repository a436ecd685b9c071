// Entry point of the WebAssembly kernel module: re-exports every kernel file.
export function kernelsVersion(): i32 { return 1; }
