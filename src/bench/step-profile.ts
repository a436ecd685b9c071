// Where a batched decode step spends its time: B sequences of ctx tokens each (prefilled with their
// own random ids) decode together (one thread by default) while V8's sampling profiler runs (node:inspector,
// only during the timed steps); each sample is charged to the function on top of the stack and
// grouped into parts (wasm kernels are named through the module's export section); the shares are of
// sample counts. Samples outside the engine's code ("(program)", "(idle)", native frames: the thread
// descheduled on a shared machine, or blocked) are counted apart and left out of the shares. Prints one markdown table per batch size.
// With --prefill the profiled work is instead the prefill of one sequence of --ctx tokens into a
// fresh cache (logits of the last token only, as generation asks), repeated --steps times, and
// --batch is not used. A script, not a `tessera` command:
//
//   node dist/src/bench/step-profile.js [--batch 1,16] [--ctx 512] [--dtype q8_0 | --model FILE] [--steps 16] [--threads 1]
//   node dist/src/bench/step-profile.js --prefill [--ctx 512] [--dtype q8_0 | --model FILE] [--steps 2] [--chunk 64] [--threads 1]

import { Session } from 'node:inspector/promises';
import { readFileSync } from 'node:fs';
import { loadModel } from '../models/load.js';
import { KV_PAGE_TOKENS } from '../attention/kv-pages.js';
import { kernelBuild } from '../kernels/wasm.js';
import { randomIds } from '../testing/random-model.js';
import { benchFile } from './bench-files.js';
import type { FlagSpecs } from '../cli/args.js';
import { isMainModule, runScript, scriptFlags } from '../cli/script.js';

const FLAGS: FlagSpecs = {
  batch: { type: 'integer', list: true, min: 1, max: 64, default: '1,16', placeholder: 'LIST', description: 'sequences decoded together' },
  ctx: { type: 'integer', min: 1, max: 8192, default: 512, placeholder: 'N', description: 'tokens each sequence holds before the timed steps' },
  dtype: { type: 'string', choices: ['q8_0', 'f32'], default: 'q8_0', placeholder: 'TYPE', description: 'weights of the random-weight SmolLM2-135M-shaped file' },
  model: { type: 'string', placeholder: 'FILE', description: 'profile this GGUF file instead of the SmolLM2-135M-shaped one (--dtype is then not used)' },
  steps: { type: 'integer', min: 1, max: 1000, default: 16, placeholder: 'N', description: 'timed decode steps (with --prefill: timed prefills)' },
  prefill: { type: 'boolean', description: 'profile the prefill of one --ctx-token prompt instead of decode steps' },
  chunk: { type: 'integer', min: 1, max: 4096, default: 64, placeholder: 'N', description: 'prefill chunk (rows per step, loadModel\'s prefillChunk)' },
  threads: { type: 'integer', min: 1, max: 64, default: 1, placeholder: 'N', description: 'threads; with more than one the table is the main thread\'s (its waits for the workers are the thread pool part)' },
};

/** Function index → export name, from the export section of a wasm binary. */
function wasmExportNames(bytes: Uint8Array): Map<number, string> {
  let p = 8;
  const leb = (): number => { let v = 0, shift = 0, b: number; do { b = bytes[p++]!; v += (b & 0x7f) * 2 ** shift; shift += 7; } while (b & 0x80); return v; };
  const names = new Map<number, string>();
  while (p < bytes.length) {
    const id = bytes[p++]!, size = leb(), end = p + size;
    if (id === 7) {
      for (let count = leb(); count > 0; count--) {
        const len = leb(), name = new TextDecoder().decode(bytes.subarray(p, p + len));
        p += len;
        const kind = bytes[p++]!, index = leb();
        if (kind === 0) names.set(index, name);
      }
    }
    p = end;
  }
  return names;
}

/** The part of a step a function belongs to. */
function partOf(fn: string, url: string): string | undefined {
  if (fn === '(program)' || fn === '(idle)' || fn === '(garbage collector)' || (url === '' && !fn.startsWith('wasm:'))) {
    return fn === '(garbage collector)' ? 'garbage collection' : undefined;
  }
  if (fn.startsWith('wasm:matmul')) return `matmul kernels (${fn.slice(5)})`;
  if (fn.startsWith('wasm:attention')) return 'attention kernel';
  if (fn === 'wasm:storeRowsF16' || fn === 'wasm:vector/f32ToF16Bits') return 'K/V rows stored (f32 → f16)';
  if (fn.startsWith('wasm:quantizeQ8')) return 'activation quantisation (quantizeQ8)';
  if (fn.startsWith('wasm:rmsNorm')) return 'RMS norms';
  if (fn.startsWith('wasm:rope')) return 'RoPE';
  if (/^wasm:(silu|gelu)Mul/.test(fn)) return 'SwiGLU';
  if (fn === 'wasm:add' || fn === 'wasm:addBias') return 'residual adds (and biases)';
  if (fn.startsWith('wasm:')) return 'other kernels (embedding, …)';
  if (url.includes('/runtime/')) return 'thread pool and arenas (JavaScript)';
  if (fn === 'unstack') return 'stacked matmul outputs split into buffers (copies)';
  return 'model and attention bookkeeping (JavaScript)';
}

async function main(): Promise<number> {
  const v = scriptFlags(import.meta.url, FLAGS, 'Where a batched decode step spends its time (V8 sampling profiler; random-weight SmolLM2-135M shape or --model FILE, f16 KV).');
  if (!v) return 0;
  const batches = v.batch as number[], ctx = v.ctx as number, steps = v.steps as number, dtype = v.dtype as string;
  const threads = v.threads as number;
  const file = (v.model as string | undefined) ?? benchFile('smollm2-135m', dtype, (path) => process.stderr.write(`writing ${path} (random weights)…\n`));
  const wasm = new URL(kernelBuild() === 'relaxed' ? '../../kernels-relaxed.wasm' : '../../kernels.wasm', import.meta.url);
  const kernelNames = wasmExportNames(new Uint8Array(readFileSync(wasm)));
  // functions the module does not export (attention's tile loop, f16 conversion…) by their names in
  // the text form the kernel build writes next to the binary, as module/function
  readFileSync(new URL(wasm.href.replace(/\.wasm$/, '.wat')), 'utf8').split('\n').filter((l) => l.startsWith(' (func $'))
    .forEach((l, i) => { if (!kernelNames.has(i)) kernelNames.set(i, l.slice(8).split(' ')[0]!.replace(/^kernels\//, '')); });
  const prefill = v.prefill === true;
  const B = prefill ? 1 : Math.max(...batches), per = ctx + (prefill ? 1 : steps + 3);
  const { model } = await loadModel(file, { threads, contextLength: per, parallel: B, cacheDType: 'f16', prefillChunk: v.chunk as number,
    kvBudget: B * Math.ceil(per / KV_PAGE_TOKENS) * KV_PAGE_TOKENS });
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 250 });
  /** Charges the profile's samples to parts and prints the table. */
  const report = (profile: { nodes: { id: number; callFrame: { functionName: string; url: string } }[]; samples?: number[] }, title: string, wall: number, unit: string,
                  cpu?: number) => {
    const nodes = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
    const parts = new Map<string, number>();
    let counted = 0;
    profile.samples!.forEach((id) => {
      const f = nodes.get(id)!;
      const m = /^wasm-function\[(\d+)\]$/.exec(f.functionName);
      const fn = m ? `wasm:${kernelNames.get(Number(m[1])) ?? f.functionName}` : f.functionName || '(anonymous)';
      const part = partOf(fn, f.url);
      if (part === undefined) return;
      parts.set(part, (parts.get(part) ?? 0) + 1);
      counted++;
    });
    const all = profile.samples!.length;
    console.log(`\n${title}; ${counted} samples in the engine's code, ${all - counted} elsewhere ` +
      '(the thread descheduled on a shared machine, or blocked in the runtime) left out\n');
    // with the CPU time known (prefill), also share × CPU time: on a shared machine the wall time
    // counts the waits for a core, the CPU time only the work
    const cpuHead = cpu === undefined ? '' : ` CPU ms/${unit} (share × CPU time) |`;
    console.log(`| part | share of the samples | ms/${unit} (share × ${unit} time) |${cpuHead}\n|---|---|---|${cpu === undefined ? '' : '---|'}`);
    for (const [part, c] of [...parts].sort((p, q) => q[1] - p[1])) {
      const cpuCell = cpu === undefined ? '' : ` ${((c / counted) * cpu).toFixed(1)} |`;
      console.log(`| ${part} | ${((100 * c) / counted).toFixed(1)}% | ${((c / counted) * wall).toFixed(1)} |${cpuCell}`);
    }
  };
  const what = (v.model as string | undefined) ?? dtype;
  const threadsLabel = `${threads} thread${threads > 1 ? 's (main thread)' : ''}`;
  try {
    if (prefill) {
      const prompt = randomIds(1234, ctx, model.vocabSize);
      const run = () => { const cache = model.createCache(); model.forward(prompt, cache); cache.release(); };
      run(); // warm-up
      await session.post('Profiler.start');
      const t0 = performance.now(), c0 = process.cpuUsage();
      for (let s = 0; s < steps; s++) run();
      const wall = (performance.now() - t0) / steps, c = process.cpuUsage(c0), cpu = (c.user + c.system) / 1000 / steps;
      const { profile } = await session.post('Profiler.stop');
      // CPU time is of the whole process (every thread): on a shared machine it is what the work cost,
      // where wall time also counts the time the threads waited for a core
      report(profile, `prefill of ${ctx} tokens, chunk ${v.chunk as number}, ${what}, ${threadsLabel}: ${wall.toFixed(0)} ms/prefill ` +
        `(${(ctx * 1000 / wall).toFixed(1)} tok/s), ${cpu.toFixed(0)} ms of CPU time per prefill`, wall, 'prefill', threads === 1 ? cpu : undefined);
      return 0;
    }
    for (const b of batches) {
      process.stderr.write(`step-profile: batch ${b}: prefill ${b} × ${ctx} tokens…\n`);
      const caches = Array.from({ length: b }, () => model.createCache());
      model.forwardBatch(caches.map((cache, i) => ({ cache, tokens: randomIds(1234 + i, ctx, model.vocabSize), logits: 'none' as const })));
      const next = caches.map((_, i) => (i * 977) % model.vocabSize);
      const step = () => model.forwardBatch(caches.map((cache, i) => ({ cache, tokens: [next[i]!] })));
      step(); step(); // warm-up
      await session.post('Profiler.start');
      const t0 = performance.now();
      for (let s = 0; s < steps; s++) step();
      const wall = (performance.now() - t0) / steps;
      const { profile } = await session.post('Profiler.stop');
      for (const c of caches) c.release();
      report(profile, `batch ${b}, ctx ${ctx}, ${what}, ${threadsLabel}: ${wall.toFixed(1)} ms/step (${(b * 1000 / wall).toFixed(1)} tok/s)`, wall, 'step');
    }
  } finally {
    session.disconnect();
    model.dispose();
  }
  return 0;
}

if (isMainModule(import.meta.url)) runScript(import.meta.url, main);
