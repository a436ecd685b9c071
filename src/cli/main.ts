#!/usr/bin/env node
// The `tessera` command: dispatches to one file per subcommand. Exit codes: 0 ok, 1 runtime error,
// 2 usage error (unknown flag, missing value, bad number), 130 interrupted.

import { readFileSync } from 'node:fs';
import { CliError, UsageError, clip } from './args.js';
import { MODEL_HINT } from './model-flags.js';
import { FormatError } from '../formats/errors.js';
import { ContextOverflowError } from '../generation/generate.js';
import { MissingCorpusError } from '../data/corpora.js';

type Run = (argv: string[]) => Promise<number>;

/**
 * The commands, in the order `tessera --help` lists them. Each lives in its own file, parses its flags
 * with args.ts and is imported only when run, so one command's dependencies never slow another.
 * Adding a command: see src/cli/README.md.
 */
const COMMANDS: { name: string; summary: string; load: () => Promise<Run> }[] = [
  { name: 'generate', summary: 'complete a prompt, streaming the text (--json for one JSON object)', load: async () => (await import('./generate.js')).runGenerate },
  { name: 'chat', summary: "chat with a model in the terminal (uses the model's chat template)", load: async () => (await import('./chat.js')).runChat },
  { name: 'serve', summary: 'an OpenAI-compatible HTTP server (completions, chat, streaming, /metrics)', load: async () => (await import('./serve.js')).runServe },
  { name: 'info', summary: 'describe a checkpoint: architecture, sizes, dtypes, memory needed', load: async () => (await import('./info.js')).runInfo },
  { name: 'quantize', summary: 'quantise a GGUF file (q4_k_m, q5_k_m, q6_k, q8_0, q4_0) into a new GGUF file', load: async () => (await import('./quantize.js')).runQuantize },
  { name: 'tokenize', summary: "text to token ids with a model's tokenizer", load: async () => (await import('./tokenize.js')).runTokenize },
  { name: 'detokenize', summary: "token ids to text with a model's tokenizer", load: async () => (await import('./tokenize.js')).runDetokenize },
  { name: 'bench', summary: 'measure prefill and decode speed (your model, or random-weight models of real shapes)', load: async () => (await import('./bench.js')).runBench },
  { name: 'train', summary: 'train a Llama-architecture transformer or a Memory Mosaic from a JSON config', load: async () => (await import('./train.js')).runTrain },
  { name: 'eval-ppl', summary: 'loss / perplexity of a model on a corpus or on your own text file', load: async () => (await import('./eval-ppl.js')).runEvalPpl },
  { name: 'eval', summary: 'long-context accuracy (RULER-style tasks) and attention error per attention backend', load: async () => (await import('./eval.js')).runEval },
];

const width = Math.max(...COMMANDS.map((c) => c.name.length)) + 3;
const HELP = `Usage: tessera <command> [options]

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(width)}${c.summary}`).join('\n')}

Run 'tessera <command> --help' for the options of a command.
Models: a Hugging Face folder (config.json + *.safetensors + tokenizer.json) or a .gguf file.
Options: --help, --version
`;

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case undefined: process.stderr.write(HELP); return 2;
    case '--help': case '-h': case 'help': process.stdout.write(HELP); return 0;
    case '--version': case '-v': process.stdout.write(`tessera ${version()}\n`); return 0;
  }
  const found = COMMANDS.find((c) => c.name === command);
  if (!found) throw new UsageError(`unknown command '${clip(command)}' (commands: ${COMMANDS.map((c) => c.name).join(', ')})`);
  return (await found.load())(rest);
}

/** Prints `tessera: <message>` and a hint; returns the exit code. */
function report(e: unknown): number {
  const err = e instanceof Error ? e : new Error(String(e));
  const say = (msg: string, hint?: string) => process.stderr.write(`tessera: ${msg}\n${hint ? `  hint: ${hint}\n` : ''}`);
  if (err instanceof UsageError) {
    say(err.message, err.command ? `run 'tessera ${err.command} --help' for the options` : "run 'tessera --help' for the commands");
    return 2;
  }
  if (process.env.TESSERA_DEBUG) process.stderr.write(`${err.stack}\n`);
  if (err instanceof CliError) { say(err.message, err.hint); return 1; }
  if (err instanceof FormatError) { say(err.message, `the file is damaged or not a supported checkpoint; ${MODEL_HINT}`); return 1; }
  if (err instanceof MissingCorpusError) { say(err.message); return 1; }
  if (err instanceof ContextOverflowError) { say(err.message, 'load with a larger --ctx or lower --max-tokens'); return 1; }
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'EISDIR' || code === 'ENOTDIR') {
    // model paths are checked (with MODEL_HINT) before loading; this is an input or output path
    const path = (err as NodeJS.ErrnoException).path;
    say(err.message, `check the path${path ? ` ${path}` : ''}: its folder must exist, and a file must not stand where a folder is expected (or the reverse)`);
    return 1;
  }
  if (code === 'ERR_MODULE_NOT_FOUND') { say(err.message, 'this build is incomplete: run npm run build'); return 1; }
  say(err.message, process.env.TESSERA_DEBUG ? undefined : 'set TESSERA_DEBUG=1 for a stack trace');
  return 1;
}

// `tessera … | head` closes stdout early: that is not an error.
process.stdout.on('error', (e: NodeJS.ErrnoException) => { if (e.code === 'EPIPE') process.exit(0); throw e; });

let code: number;
try {
  code = await main(process.argv.slice(2));
} catch (e) {
  code = report(e);
}
// Exit once stdout is flushed (worker threads or a readline could otherwise keep the process alive).
process.stdout.write('', () => process.exit(code));
