// Shared SIMD building blocks for the kernels: horizontal sums, f16/bf16 widening, f32 -> f16
// rounding and a vectorised exp. Everything here is @inline, so it costs no call and no memory.

/** Sum of the four f32 lanes of v. */
@inline export function hsum(v: v128): f32 {
  const s = f32x4.add(v, f32x4.shuffle(v, v, 2, 3, 0, 1));
  return f32x4.extract_lane(s, 0) + f32x4.extract_lane(s, 1);
}

/** Largest of the four f32 lanes of v. */
@inline export function hmax(v: v128): f32 {
  const s = f32x4.max(v, f32x4.shuffle(v, v, 2, 3, 0, 1));
  return max<f32>(f32x4.extract_lane(s, 0), f32x4.extract_lane(s, 1));
}

/** [hsum(a), hsum(b), hsum(c), hsum(d)] in one vector (a 4×4 transpose-and-add). */
@inline export function hsum4(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = f32x4.add(f32x4.shuffle(a, b, 0, 1, 4, 5), f32x4.shuffle(a, b, 2, 3, 6, 7)); // [a01 a23 b01 b23] parts
  const cd = f32x4.add(f32x4.shuffle(c, d, 0, 1, 4, 5), f32x4.shuffle(c, d, 2, 3, 6, 7));
  return f32x4.add(f32x4.shuffle(ab, cd, 0, 2, 4, 6), f32x4.shuffle(ab, cd, 1, 3, 5, 7));
}

// 2^112 as f32 bits: rebiases an f16 exponent (bias 15) to f32 (bias 127); exact for subnormals too.
export const F16_REBIAS: u32 = 0x77800000;

/** Four f16 values (one per i32 lane, zero-extended) -> four f32. Finite values only (inf/NaN
 *  weights do not occur); subnormals are exact because the rebias is a multiplication. */
@inline export function f16x4(h: v128): v128 {
  const mag = f32x4.mul(i32x4.shl(v128.and(h, i32x4.splat(0x7fff)), 13), f32x4.splat(reinterpret<f32>(F16_REBIAS)));
  return v128.or(mag, i32x4.shl(v128.and(h, i32x4.splat(0x8000)), 16));
}

/** Loads 4 f16 at p as 4 f32 (finite values, subnormals exact). Sign-extending load: after << 13
 *  the f16 sign lands on bit 31 with copies on bits 28-30, which the mask clears, leaving sign,
 *  exponent and mantissa in f32 position; the multiply rebiases (4 operations instead of f16x4's 7). */
@inline export function loadF16x4(p: usize): v128 {
  return f32x4.mul(loadF16x4Scaled(p), f32x4.splat(reinterpret<f32>(F16_REBIAS)));
}

/** loadF16x4 without its multiply: the four f32 are worth value × 2^-112 (exact; subnormal where the
 *  f16 is), for a product whose other factor carries the 2^112 (the q8_0 activations' scale in their
 *  block sums, kernels/quant.ts): the same real product, rounded once, so the same bits. */
@inline export function loadF16x4Scaled(p: usize): v128 {
  return v128.and(i32x4.shl(v128.load16x4_s(p), 13), i32x4.splat(<i32>0x8fffe000));
}

// Subnormal f16 values and the multiply above: the product is exact, but an f32 operand that is
// subnormal costs the x86 core a microcode assist of ~100 cycles (WebAssembly keeps IEEE subnormals:
// no flush-to-zero). K-quant super-block scales are mostly subnormal in real files (q6_K's d is about
// the weights' scale / 4064, below f16's smallest normal 6.1e-5 for weights of std ~0.02), one load
// per 4 rows × 256 values, and the assists made the q6_K kernel 1.6× slower than on normal scales
// (BENCHMARKS §4, *Subnormal K-quant scales*). Loads of such values take the integer path below.
const F16_MIN_NORMAL_MAG: i32 = 0x400;        // the f16 magnitude bits of 2^-14
const F16_SUBNORMAL_UNIT: f32 = 5.9604644775390625e-8; // 2^-24, one unit of an f16 subnormal's mantissa

/** Four f16 at p as f32, the same values as loadF16x4, with no subnormal f32 operand: for values that
 *  are often subnormal (K-quant scales). Normal values take loadF16x4's bits with the exponent
 *  rebiased by an integer add (112 = 127 − 15) instead of the multiply; when a lane's exponent field
 *  is zero (a subnormal, or zero), all four go the exact way below, a branch that a file whose scales
 *  are all normal, or mostly subnormal, predicts alike. */
@inline export function loadSmallF16x4(p: usize): v128 {
  const h = v128.load16x4_s(p), bits = v128.and(i32x4.shl(h, 13), i32x4.splat(<i32>0x8fffe000));
  if (i32x4.all_true(v128.and(bits, i32x4.splat(0x0f800000)))) return i32x4.add(bits, i32x4.splat(112 << 23));
  return f16x4Subnormal(h);
}

/** Four f16 (sign-extended into i32 lanes) as f32 where some are subnormal: normal lanes by the
 *  integer rebias, subnormal ones (and zero) as their mantissa converted from i32 (exact) times 2^-24,
 *  a product of normal f32 values; the sign (bit 31 of the sign-extended lane) or-ed back. */
function f16x4Subnormal(h: v128): v128 {
  const mag = v128.and(h, i32x4.splat(0x7fff));
  const normal = i32x4.add(i32x4.shl(mag, 13), i32x4.splat(112 << 23));
  const small = f32x4.mul(f32x4.convert_i32x4_s(mag), f32x4.splat(F16_SUBNORMAL_UNIT));
  const value = v128.bitselect(small, normal, i32x4.lt_s(mag, i32x4.splat(F16_MIN_NORMAL_MAG)));
  return v128.or(value, v128.and(h, i32x4.splat(<i32>0x80000000)));
}

/** Loads 4 bf16 at p as 4 f32 (bf16 is the top half of an f32). */
@inline export function loadBF16x4(p: usize): v128 {
  return i32x4.shl(v128.load16x4_u(p), 16);
}

/** One f16 at p as f32 (finite values), with no subnormal f32 operand (see loadSmallF16x4: a
 *  select between the integer rebias and the mantissa × 2^-24). */
@inline export function loadF16(p: usize): f32 {
  const h = <u32>load<u16>(p), m = h & 0x7fff;
  const mag = select<f32>(<f32>m * F16_SUBNORMAL_UNIT, reinterpret<f32>((m << 13) + (112 << 23)), <i32>m < F16_MIN_NORMAL_MAG);
  return reinterpret<f32>(reinterpret<u32>(mag) | ((h & 0x8000) << 16));
}

/** f32 -> f16 bits, round to nearest even, overflow to ±inf, NaN kept NaN (IEEE 754 binary16). */
export function f32ToF16Bits(f: f32): u32 {
  const x = reinterpret<u32>(f);
  const sign = (x >> 16) & 0x8000;
  const e = <i32>((x >> 23) & 0xff);
  let m = x & 0x7fffff;
  if (e == 0xff) return sign | 0x7c00 | (m != 0 ? 0x200 : 0);
  const ex = e - 112; // f16 biased exponent
  if (ex >= 31) return sign | 0x7c00;
  if (ex <= 0) {
    if (ex < -10) return sign; // below half the smallest subnormal: ±0
    m |= 0x800000;
    const shift = <u32>(14 - ex);
    let h = m >> shift;
    const rem = m & ((1 << shift) - 1);
    const half = <u32>1 << (shift - 1);
    if (rem > half || (rem == half && (h & 1) != 0)) h++;
    return sign | h;
  }
  let h = (<u32>ex << 10) | (m >> 13);
  const rem = m & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (h & 1) != 0)) h++; // a carry into the exponent is correct (may reach inf)
  return sign | h;
}

/** e^x on four lanes, relative error ~2e-7 (Cephes expf: Cody–Waite reduction + degree-5 polynomial).
 *  Saturates properly: x > 88.72 -> +inf, x < -104 (or -inf) -> 0, subnormal results in between. */
@inline export function expV(x: v128): v128 {
  // pmin/pmax (one minps/maxps each; f32x4.min/max need a NaN- and ±0-exact sequence of ~8
  // instructions on x86): the same values here — the bounds are neither NaN nor zero, and with x
  // as the first operand a NaN x is passed through
  const xc = f32x4.pmax(f32x4.pmin(x, f32x4.splat(88.8)), f32x4.splat(-104.0));
  const n = f32x4.nearest(f32x4.mul(xc, f32x4.splat(1.44269504088896341)));
  let r = f32x4.sub(xc, f32x4.mul(n, f32x4.splat(0.693359375)));
  r = f32x4.sub(r, f32x4.mul(n, f32x4.splat(-2.12194440e-4)));
  let p = f32x4.splat(1.9875691500e-4);
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.3981999507e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(8.3334519073e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(4.1665795894e-2));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.6666665459e-1));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(5.0000001201e-1));
  const y = f32x4.add(f32x4.add(f32x4.mul(f32x4.mul(p, r), r), r), f32x4.splat(1.0));
  // 2^n as two factors so that n in [-150, 128] never leaves the normal exponent range.
  const ni = i32x4.trunc_sat_f32x4_s(n);
  const n1 = i32x4.shr_s(ni, 1);
  const n2 = i32x4.sub(ni, n1);
  const s1 = i32x4.shl(i32x4.add(n1, i32x4.splat(127)), 23);
  const s2 = i32x4.shl(i32x4.add(n2, i32x4.splat(127)), 23);
  return f32x4.mul(f32x4.mul(y, s1), s2);
}

/** Scalar e^x with the same arithmetic as expV. */
@inline export function expS(x: f32): f32 {
  return f32x4.extract_lane(expV(f32x4.splat(x)), 0);
}

/** [Σa, Σb, Σc, Σd] of four i32x4 (transpose-and-add). */
@inline export function hsum4i(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = i32x4.add(i32x4.shuffle(a, b, 0, 1, 4, 5), i32x4.shuffle(a, b, 2, 3, 6, 7));
  const cd = i32x4.add(i32x4.shuffle(c, d, 0, 1, 4, 5), i32x4.shuffle(c, d, 2, 3, 6, 7));
  return i32x4.add(i32x4.shuffle(ab, cd, 0, 2, 4, 6), i32x4.shuffle(ab, cd, 1, 3, 5, 7));
}

/** i32 lane k = i16 lanes 2k + 2k+1 of v: i32x4.extadd_pairwise_i16x8_s, written as a dot product with
 *  ones because V8 (x64) emits extadd as pmaddwd with a constant it reloads from memory through a
 *  scalar register every time; a v128 constant is hoisted out of the loop and stays in a register. */
@inline export function pairsToI32(v: v128): v128 { return i32x4.dot_i16x8_s(v, i16x8.splat(1)); }

/** The i16 pair sums of w (16 u8 lanes ≤ 63: four values of each of four rows) against xs, four q8
 *  activations broadcast to each row: lanes 2k, 2k+1 are row k's — the product of the x4 layouts of
 *  q4_0, q4_K and q6_K (src/kernels/repack.ts). pairSums of matmul-kquant.ts with the activations
 *  splatted (relaxed: pmaddubsw; plain: widened, dotted, narrowed; exact). */
@inline export function dot4(w: v128, xs: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return i16x8.relaxed_dot_i8x16_i7x16_s(xs, w);
  const xw = i16x8.extend_low_i8x16_s(xs);
  return i16x8.narrow_i32x4_s(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_u(w), xw), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_u(w), xw));
}

/** dot4 against the four activations at x. */
@inline export function pairSums4(w: v128, x: usize): v128 { return dot4(w, v128.load32_splat(x)); }
