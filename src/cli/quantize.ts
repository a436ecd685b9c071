// `tessera quantize IN OUT --type T`: a GGUF file quantised into a new GGUF file (recipes in
// src/formats/gguf-requantize.ts). The output is written atomically and an existing file is only
// replaced with --force.

import { existsSync, realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import { CliError, UsageError, formatHelp, parseFlags, type FlagSpecs } from './args.js';
import { QUANT_RECIPES, quantizeGguf, type QuantRecipe } from '../formats/gguf-requantize.js';
import { FormatError } from '../formats/errors.js';

const FLAGS: FlagSpecs = {
  type: { type: 'string', required: true, choices: QUANT_RECIPES, placeholder: QUANT_RECIPES.join('|'), description: 'quantisation: K-quant mixes as llama.cpp makes them, or one type throughout' },
  force: { type: 'boolean', description: 'replace OUT if it exists' },
  help: { type: 'boolean', description: 'show this help', short: 'h' },
};

export const QUANTIZE_HELP = formatHelp('quantize IN.gguf OUT.gguf',
  'Quantises a GGUF model (f32/f16/bf16 weights) into a new GGUF file that Tessera and llama.cpp load.\n' +
  'q4_k_m / q5_k_m: q4_K / q5_K weights, q6_K for the output projection and for attn_v and ffn_down in\n' +
  'a third of the layers; q6_k, q8_0, q4_0: one type (q4_0 keeps the output projection in q6_K).\n' +
  'Matrices whose rows are not whole blocks fall back to q8_0 (K-quants) or f16.', FLAGS);

/** IN and OUT: the arguments that are neither flags nor flag values. */
function positionals(argv: readonly string[]): { paths: string[]; flags: string[] } {
  const paths: string[] = [], flags: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('-') || a === '-') { paths.push(a); continue; }
    flags.push(a);
    const name = a.replace(/^--?/, '');
    const spec = FLAGS[name] ?? Object.values(FLAGS).find((s) => s.short === name);
    if (spec && spec.type !== 'boolean' && !a.includes('=') && i + 1 < argv.length) flags.push(argv[++i]!);
  }
  return { paths, flags };
}

export async function runQuantize(argv: string[]): Promise<number> {
  const { paths, flags } = positionals(argv);
  const v = parseFlags(flags, FLAGS, 'quantize');
  if (v.help) { process.stdout.write(QUANTIZE_HELP); return 0; }
  if (paths.length !== 2) throw new UsageError(`expected IN.gguf and OUT.gguf, got ${paths.length} path${paths.length === 1 ? '' : 's'}`, 'quantize');
  const [inPath, outPath] = paths as [string, string];
  if (!existsSync(inPath)) throw new CliError(`input ${inPath} does not exist`, 'give the path of a .gguf file (convert a Hugging Face folder to an f16 GGUF first)');
  if (existsSync(outPath)) {
    if (realpathSync(outPath) === realpathSync(inPath)) throw new CliError(`output ${outPath} is the input file`, 'choose a new output path');
    if (!v.force) throw new CliError(`output ${outPath} already exists`, 'choose a new path, or pass --force to replace it');
  }
  const recipe = v.type as QuantRecipe;
  const t0 = performance.now();
  const tty = process.stderr.isTTY;
  let result: ReturnType<typeof quantizeGguf>;
  try {
    result = quantizeGguf(inPath, resolve(outPath), recipe, {
      onTensor: (done, total, name, type) => {
        if (tty) process.stderr.write(`\r\x1b[Kquantize: [${done}/${total}] ${name} → ${type}`);
      },
    });
  } catch (e) {
    // a file quantize cannot take (damaged, or already quantised) gets quantize's hint, not the loaders'
    if (e instanceof FormatError) throw new CliError(e.message, 'quantize takes a GGUF whose weights are f32, f16 or bf16 (as llama.cpp\'s convert_hf_to_gguf.py writes them)');
    throw e;
  }
  if (tty) process.stderr.write('\r\x1b[K');
  const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
  const types = Object.entries(result.types).map(([t, n]) => `${t} ${n}`).join(', ');
  process.stdout.write(`${outPath}: ${recipe}, tensors ${types}; ${mib(result.inBytes)} → ${mib(result.outBytes)} in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  return 0;
}
