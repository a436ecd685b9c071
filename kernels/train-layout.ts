// Training layout kernels. dst (cols, rows) = srcᵀ for src (rows, cols), f32, in 16×16 tiles so both
// the reads and the writes stay within a few cache lines.

export function trainTranspose(src: usize, dst: usize, rows: i32, cols: i32): void {
  const B = 16;
  for (let r0 = 0; r0 < rows; r0 += B) {
    const r1 = min<i32>(rows, r0 + B);
    for (let c0 = 0; c0 < cols; c0 += B) {
      const c1 = min<i32>(cols, c0 + B);
      for (let r = r0; r < r1; r++) {
        const s = src + ((<usize>r * <usize>cols) << 2);
        for (let c = c0; c < c1; c++) {
          store<f32>(dst + ((<usize>c * <usize>rows + <usize>r) << 2), load<f32>(s + (<usize>c << 2)));
        }
      }
    }
  }
}
