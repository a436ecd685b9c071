// `tessera tokenize` / `tessera detokenize`: text → ids and ids → text with a model's tokenizer
// (the weights are not read). Input from --text/--ids, --file, or piped stdin; ids print on one line,
// separated by spaces, so `tessera tokenize … | tessera detokenize …` round-trips.

import { existsSync, readFileSync, statSync } from 'node:fs';
import { CliError, UsageError, clip, formatHelp, parseFlags, type FlagSpecs, type FlagValues } from './args.js';
import { MODEL_HINT } from './model-flags.js';
import { loadTokenizer } from '../models/load.js';
import type { Tokenizer } from '../tokenizer/types.js';

/** Input larger than this is refused: it would take minutes and its output would be unreadable. */
const MAX_INPUT_BYTES = 64 * 2 ** 20;

const MODEL = { type: 'string', required: true, placeholder: 'PATH', description: 'Hugging Face model folder or .gguf file (only its tokenizer is read)', short: 'm' } as const;
const FILE = { type: 'string', placeholder: 'PATH', description: 'read the input from a file (default: --text/--ids, else piped stdin)', short: 'f' } as const;
const HELP_FLAG = { type: 'boolean', description: 'show this help', short: 'h' } as const;

const TOKENIZE_FLAGS: FlagSpecs = {
  model: MODEL,
  text: { type: 'string', placeholder: 'TEXT', description: 'the text to tokenize', short: 'p' },
  file: FILE,
  special: { type: 'boolean', default: true, description: "add the tokenizer's special tokens (BOS) as the model expects them; --no-special leaves them out" },
  pieces: { type: 'boolean', description: 'print one token per line: id, then the token as stored in the vocabulary' },
  json: { type: 'boolean', description: 'print one JSON object {ids, count}' },
  help: HELP_FLAG,
};

const DETOKENIZE_FLAGS: FlagSpecs = {
  model: MODEL,
  ids: { type: 'string', placeholder: 'IDS', description: "token ids separated by spaces or commas ('1 2 3', '[1, 2, 3]' also works)" },
  file: FILE,
  special: { type: 'boolean', description: 'keep special tokens (BOS, EOS, …) in the text' },
  help: HELP_FLAG,
};

export const TOKENIZE_HELP = formatHelp('tokenize', "Turns text into token ids with a model's tokenizer and prints them on one line.\n" +
  'Example: tessera tokenize --model models/default --text "Once upon a time"', TOKENIZE_FLAGS);
export const DETOKENIZE_HELP = formatHelp('detokenize', "Turns token ids into text with a model's tokenizer.\n" +
  'Example: tessera tokenize -m models/default -p "Hello" | tessera detokenize -m models/default', DETOKENIZE_FLAGS);

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    bytes += chunk.length;
    if (bytes > MAX_INPUT_BYTES) throw new CliError(`the input on stdin is larger than ${MAX_INPUT_BYTES / 2 ** 20} MiB`, 'split it into smaller pieces');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

async function readInput(v: FlagValues, inline: string, command: string): Promise<string> {
  if (v[inline] !== undefined && v.file !== undefined) throw new UsageError(`give one of --${inline} or --file`, command);
  if (v[inline] !== undefined) return v[inline] as string;
  const path = v.file as string | undefined;
  if (path === undefined) {
    if (process.stdin.isTTY) throw new UsageError(`give --${inline}, --file PATH, or pipe the input into stdin`, command);
    return (await readStdin()).toString('utf8');
  }
  let size: number;
  try { size = statSync(path).size; } catch (e) { throw new CliError(`cannot read ${path}: ${(e as Error).message}`, 'check the path'); }
  if (size > MAX_INPUT_BYTES) throw new CliError(`${path} is larger than ${MAX_INPUT_BYTES / 2 ** 20} MiB`, 'split it into smaller files');
  try { return readFileSync(path, 'utf8'); } catch (e) { throw new CliError(`cannot read ${path}: ${(e as Error).message}`, 'check the path'); }
}

function tokenizerFor(v: FlagValues): Tokenizer {
  const path = v.model as string;
  if (!existsSync(path)) throw new CliError(`model path ${path} does not exist`, MODEL_HINT);
  return loadTokenizer(path);
}

/** Parses "1 2 3", "1,2,3" or "[1, 2, 3]"; every id must be an integer in [0, vocabSize). */
export function parseIds(text: string, vocabSize: number): number[] {
  const parts = text.replace(/^\s*\[|\]\s*$/g, '').split(/[\s,]+/).filter(Boolean);
  return parts.map((p, i) => {
    if (!/^\d+$/.test(p)) throw new CliError(`token id #${i + 1} is '${clip(p)}', not a non-negative integer`, 'give ids separated by spaces or commas, as tessera tokenize prints them');
    const id = Number(p);
    if (id >= vocabSize) throw new CliError(`token id #${i + 1} is ${clip(p)}, outside this vocabulary (ids 0…${vocabSize - 1})`, 'use the model the ids were made with');
    return id;
  });
}

export async function runTokenize(argv: string[]): Promise<number> {
  const v = parseFlags(argv, TOKENIZE_FLAGS, 'tokenize');
  if (v.help) { process.stdout.write(TOKENIZE_HELP); return 0; }
  const text = await readInput(v, 'text', 'tokenize');
  const tok = tokenizerFor(v);
  const ids = tok.encode(text, { addSpecialTokens: v.special === true });
  if (v.json) process.stdout.write(JSON.stringify({ ids, count: ids.length }) + '\n');
  else if (v.pieces) process.stdout.write(ids.map((id) => `${id}\t${JSON.stringify(tok.idToToken(id) ?? '')}\n`).join(''));
  else process.stdout.write(ids.join(' ') + '\n');
  return 0;
}

export async function runDetokenize(argv: string[]): Promise<number> {
  const v = parseFlags(argv, DETOKENIZE_FLAGS, 'detokenize');
  if (v.help) { process.stdout.write(DETOKENIZE_HELP); return 0; }
  const text = await readInput(v, 'ids', 'detokenize');
  const tok = tokenizerFor(v);
  const out = tok.decode(parseIds(text, tok.vocabSize), { skipSpecialTokens: v.special !== true });
  process.stdout.write(out.endsWith('\n') || !process.stdout.isTTY ? out : `${out}\n`);
  return 0;
}
