// The int8 multiply ceiling of 128-bit WebAssembly SIMD on this machine, one thread: loops of 10
// product instructions per step into 5 accumulators, weights held in registers, two activation
// vectors loaded per step (no other memory traffic), compiled by AssemblyScript and run by V8 (TurboFan only). The
// rows mix i16x8.relaxed_dot_i8x16_i7x16_s (x86 pmaddubsw, 16 multiply-adds) with
// i32x4.dot_i16x8_s (pmaddwd, 8): if the two used separate execution units, the mixed rows would
// run more instructions per ns than the pure ones. What the matmul kernels' speeds are measured
// against (docs/BENCHMARKS.md §4, "the multiply ceiling").
//
//   node tools/simd-ceiling.mjs [--steps 100000000]

import { setFlagsFromString } from 'node:v8';
import asc from 'assemblyscript/asc';

setFlagsFromString('--experimental-wasm-relaxed-simd');
setFlagsFromString('--no-liftoff'); // only TurboFan's code: the kernels' steady state

const at = process.argv.indexOf('--steps');
const steps = at > 0 ? Number(process.argv[at + 1]) : 1e8;
if (!(Number.isInteger(steps) && steps > 0)) throw new Error(`--steps: a positive integer, got ${process.argv[at + 1]}`);

const ACC = 5;   // accumulators, each with a weight vector of its own: with the step's operands 14 of x86's 16 vector registers, no spills
/** A loop whose step multiplies two activation vectors (loaded each step, so nothing is hoisted) by
 *  ACC weight vectors held in registers: 10 product instructions per step into ACC accumulators.
 *  kinds[j]: how accumulator j's products are made — 'b' pmaddubsw into i16 lanes, 'w' pmaddwd
 *  into i32 lanes, 'bw' pmaddubsw then pmaddwd by ones (what q8_0's sign trick does per 16 products). */
function loop(name, kinds) {
  const lines = [`export function ${name}(p: usize, n: i32): i32 {`];
  for (let j = 0; j < ACC; j++) lines.push(`  let a${j} = i32x4.splat(0); const w${j} = v128.load(p, ${16 * j});`);
  lines.push('  for (let i = 0; i < n; i++) {', '    const x = v128.load(p, 96), y = v128.load(p, 112);');
  for (const v of ['x', 'y']) {
    for (let j = 0; j < ACC; j++) {
      const k = kinds[j];
      if (k === 'w') lines.push(`    a${j} = i32x4.add(a${j}, i32x4.dot_i16x8_s(w${j}, ${v}));`);
      else if (k === 'bw') lines.push(`    a${j} = i32x4.add(a${j}, i32x4.extadd_pairwise_i16x8_s(i16x8.relaxed_dot_i8x16_i7x16_s(w${j}, ${v})));`);
      else lines.push(`    a${j} = i16x8.add(a${j}, i16x8.relaxed_dot_i8x16_i7x16_s(w${j}, ${v}));`);
    }
  }
  let sum = 'a0';
  for (let j = 1; j < ACC; j++) sum = `i32x4.add(${sum}, a${j})`;
  lines.push('  }', `  return i32x4.extract_lane(${sum}, 0);`, '}');
  return lines.join('\n');
}

const CASES = [
  { name: 'pmaddubsw', what: '10 pmaddubsw', kinds: ['b', 'b', 'b', 'b', 'b'], perStep: 10 * 16, instrs: 10 },
  { name: 'pmaddwd', what: '10 pmaddwd', kinds: ['w', 'w', 'w', 'w', 'w'], perStep: 10 * 8, instrs: 10 },
  { name: 'mixed', what: '6 pmaddubsw + 4 pmaddwd', kinds: ['b', 'b', 'b', 'w', 'w'], perStep: 6 * 16 + 4 * 8, instrs: 10 },
  { name: 'widened', what: "10 × (pmaddubsw, then pmaddwd by ones): q8_0's products", kinds: ['bw', 'bw', 'bw', 'bw', 'bw'], perStep: 10 * 16, instrs: 20 },
];

const { binary, stderr } = await asc.compileString(CASES.map((c) => loop(c.name, c.kinds)).join('\n'), {
  optimizeLevel: 3, runtime: 'stub', initialMemory: 1, enable: ['simd', 'relaxed-simd'],
});
if (!binary) throw new Error(`simd-ceiling: AssemblyScript failed:\n${stderr.toString()}`);
const instance = new WebAssembly.Instance(new WebAssembly.Module(binary), { env: { abort() { throw new Error('abort'); } } });
const mem = new Uint8Array(instance.exports.memory.buffer);
for (let i = 0; i < 144; i++) mem[i] = i < 96 ? (i * 7) & 0xff : (i * 3) & 0x7f; // weights, then the 7-bit operand in 0..127

for (const c of CASES) instance.exports[c.name](0, 1000); // compiled before timing
console.log(`Int8 products of 128-bit WebAssembly SIMD, one thread, ${steps} steps per loop, best of 3 (Node ${process.versions.node}, V8 ${process.versions.v8})\n`);
console.log('| loop (per step) | ns per step | product instructions per ns | G multiply-adds/s |\n|---|---:|---:|---:|');
for (const c of CASES) {
  let best = Infinity;
  for (let r = 0; r < 3; r++) {
    const t0 = process.hrtime.bigint();
    instance.exports[c.name](0, steps);
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / steps);
  }
  console.log(`| ${c.what} | ${best.toFixed(2)} | ${(c.instrs / best).toFixed(2)} | ${(c.perStep / best).toFixed(1)} |`);
}
