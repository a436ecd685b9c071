// Rotary position embedding, in place on x (n, heads, D) f32. pos (n) i32, invFreq (D/2) f32.
// angle = pos · invFreq[i] in f32 (as Hugging Face computes it), cos/sin in f64 rounded to f32, once
// per (token, pair) and reused by every head.
//   'neox'   (style 0): pairs (i, i + D/2)  — Hugging Face rotate_half
//   'normal' (style 1): pairs (2i, 2i + 1) — llama.cpp LLAMA_ROPE_TYPE_NORM
// Pair rotation: (a, b) -> (a·cos − b·sin, a·sin + b·cos).

// sin/cos in f64 without the standard library (whose large-argument reduction needs a static table):
// Cody–Waite reduction by π/2 with fdlibm's split constants (exact for |x| < 2^20·π/2, i.e. positions
// far beyond any context length; beyond that the error stays ~1e-9), then fdlibm's __sin/__cos kernels.
@inline function kernelSin(x: f64): f64 {
  const z = x * x, w = z * z;
  const r = 8.33333333332248946124e-03 + z * (-1.98412698298579493134e-04 + z * 2.75573137070700676789e-06)
          + z * w * (-2.50507602534068634195e-08 + z * 1.58969099521155010221e-10);
  return x + z * x * (-1.66666666666666324348e-01 + z * r);
}

@inline function kernelCos(x: f64): f64 {
  const z = x * x, w = z * z;
  const r = z * (4.16666666666666019037e-02 + z * (-1.38888888888741095749e-03 + z * 2.48015872894767294178e-05))
          + w * w * (-2.75573143513906633035e-07 + z * (2.08757232129817482790e-09 + z * -1.13596475577881948265e-11));
  const hz = 0.5 * z, c = 1.0 - hz;
  return c + (((1.0 - c) - hz) + z * r);
}

/** cos (out = 0) or sin (out = 1) of pos · invFreq[i], the angle rounded to f32 first. */
@inline function cosSin(p: f32, invFreq: usize, i: i32, out: i32): f32 {
  const x = <f64>(p * load<f32>(invFreq + (<usize>i << 2)));
  const n = nearest<f64>(x * 6.36619772367581382433e-01); // x · 2/π
  const r = (x - n * 1.57079632673412561417e+00) - n * 6.07710050650619224932e-11;
  const q = (<i32>n + 3 * out) & 3; // sin(x) = cos(x − π/2): quadrant n − 1 for sin
  const s = kernelSin(r), c = kernelCos(r);
  const v = (q & 1) != 0 ? s : c;
  return <f32>((q == 1 || q == 2) ? -v : v);
}

export function rope(x: usize, pos: usize, invFreq: usize, n: i32, heads: i32, headDim: i32, style: i32): void {
  const half = headDim >> 1;
  const headBytes = <usize>headDim << 2;
  for (let t = 0; t < n; t++) {
    const p = <f32>load<i32>(pos + (<usize>t << 2));
    const xt = x + <usize>t * <usize>heads * headBytes;
    let i = 0;
    for (; i + 4 <= half; i += 4) {
      let cv = f32x4.splat(cosSin(p, invFreq, i, 0));
      cv = f32x4.replace_lane(cv, 1, cosSin(p, invFreq, i + 1, 0));
      cv = f32x4.replace_lane(cv, 2, cosSin(p, invFreq, i + 2, 0));
      cv = f32x4.replace_lane(cv, 3, cosSin(p, invFreq, i + 3, 0));
      let sv = f32x4.splat(cosSin(p, invFreq, i, 1));
      sv = f32x4.replace_lane(sv, 1, cosSin(p, invFreq, i + 1, 1));
      sv = f32x4.replace_lane(sv, 2, cosSin(p, invFreq, i + 2, 1));
      sv = f32x4.replace_lane(sv, 3, cosSin(p, invFreq, i + 3, 1));
      if (style == 0) {
        for (let h = 0; h < heads; h++) {
          const pa = xt + <usize>h * headBytes + (<usize>i << 2), pb = pa + (<usize>half << 2);
          const a = v128.load(pa), b = v128.load(pb);
          v128.store(pa, f32x4.sub(f32x4.mul(a, cv), f32x4.mul(b, sv)));
          v128.store(pb, f32x4.add(f32x4.mul(a, sv), f32x4.mul(b, cv)));
        }
      } else {
        // Adjacent pairs: [a0 b0 a1 b1] · [c0 c0 c1 c1] + [b0 a0 b1 a1] · [−s0 s0 −s1 s1].
        const c01 = f32x4.shuffle(cv, cv, 0, 0, 1, 1), c23 = f32x4.shuffle(cv, cv, 2, 2, 3, 3);
        const ns = f32x4.neg(sv);
        const s01 = f32x4.shuffle(ns, sv, 0, 4, 1, 5), s23 = f32x4.shuffle(ns, sv, 2, 6, 3, 7);
        for (let h = 0; h < heads; h++) {
          const pa = xt + <usize>h * headBytes + (<usize>i << 3);
          const v0 = v128.load(pa), v1 = v128.load(pa, 16);
          v128.store(pa, f32x4.add(f32x4.mul(v0, c01), f32x4.mul(f32x4.shuffle(v0, v0, 1, 0, 3, 2), s01)));
          v128.store(pa, f32x4.add(f32x4.mul(v1, c23), f32x4.mul(f32x4.shuffle(v1, v1, 1, 0, 3, 2), s23)), 16);
        }
      }
    }
    for (; i < half; i++) {
      const c = cosSin(p, invFreq, i, 0), s = cosSin(p, invFreq, i, 1);
      for (let h = 0; h < heads; h++) {
        const pa = xt + <usize>h * headBytes + (style == 0 ? <usize>i << 2 : <usize>i << 3);
        const pb = pa + (style == 0 ? <usize>half << 2 : 4);
        const a = load<f32>(pa), b = load<f32>(pb);
        store<f32>(pa, a * c - b * s);
        store<f32>(pb, a * s + b * c);
      }
    }
  }
}
