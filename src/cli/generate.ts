// `tessera generate`: complete a prompt, streaming text to stdout (or one JSON object with --json).
// Diagnostics and stats go to stderr, so stdout is only the model's text.

import { CliError, UsageError, formatHelp, parseFlags, type FlagSpecs } from './args.js';
import { MODEL_FLAGS, SAMPLING_FLAGS, STOP_FLAGS, loadForCli, samplingFrom, speculationFor, stopFrom } from './model-flags.js';
import type { GenerationResult } from '../generation/generate.js';
import { readTextFile } from '../formats/regular-file.js';

/** 64 MiB: more text than the longest context Tessera plans (2^24 tokens) holds at ~4 bytes a token. */
const MAX_PROMPT_FILE_BYTES = 64 << 20;

/** Tokens generated when --max-tokens is not given (fewer when the prompt leaves less room). */
const DEFAULT_MAX_TOKENS = 256;

const FLAGS: FlagSpecs = {
  ...MODEL_FLAGS,
  prompt: { type: 'string', placeholder: 'TEXT', description: 'the prompt to complete', short: 'p' },
  'prompt-file': { type: 'string', placeholder: 'PATH', description: 'read the prompt from a file instead' },
  'max-tokens': { type: 'integer', min: 1, placeholder: 'N', description: `most tokens to generate (default ${DEFAULT_MAX_TOKENS}, or what the context leaves after the prompt if less)`, short: 'n' },
  ...SAMPLING_FLAGS,
  ...STOP_FLAGS,
  'ignore-eos': { type: 'boolean', description: 'keep generating past end-of-sequence tokens' },
  json: { type: 'boolean', description: 'print one JSON object {text, tokens, prompt_tokens, finish_reason, timings} instead of streaming' },
  help: { type: 'boolean', description: 'show this help', short: 'h' },
};

export const GENERATE_HELP = formatHelp('generate', 'Completes a prompt with a model and streams the text to stdout.\nExample: tessera generate --model models/default --prompt "Once upon a time" --max-tokens 48', FLAGS);

/** One line of speed statistics. `processed` is how many prompt tokens are in the cache (cached +
 *  prefilled) when known: after a prefill stopped by Ctrl-C it is fewer than the prompt, and the line
 *  counts only those. A rate is printed only when something was timed. */
export function statsLine(r: GenerationResult, processed = r.promptTokens): string {
  const t = r.timings;
  const done = Math.min(processed, r.promptTokens);
  const computed = done - r.cachedTokens;
  const rate = (n: number, ms: number) => (n > 0 && ms > 0 ? ` (${(n / (ms / 1000)).toFixed(1)} tok/s)` : '');
  const cached = r.cachedTokens > 0 ? ` (${r.cachedTokens} cached)` : '';
  const prompt = done < r.promptTokens ? `${done} of ${r.promptTokens} tokens${cached}, stopped,` : `${r.promptTokens} tokens${cached}`;
  return `prompt: ${prompt} in ${(t.prefillMs / 1000).toFixed(2)} s${rate(computed, t.prefillMs)} | `
    + `generated: ${r.tokens.length} tokens in ${(t.decodeMs / 1000).toFixed(2)} s${rate(r.tokens.length - 1, t.decodeMs)} | `
    + `finish: ${r.finishReason} | seed: ${r.seed}`
    + (r.speculative ? ` | speculative: ${speculativeStats(r.speculative)}` : '');
}

/** Acceptance for the stats line; a run that drafted nothing (no n-gram match, or γ = 0 chosen by
 *  the cost model) says so instead of "0/0 accepted". */
function speculativeStats(s: NonNullable<GenerationResult['speculative']>): string {
  if (s.drafted === 0) return 'no tokens drafted (decoded plainly)';
  return `${s.accepted}/${s.drafted} draft tokens accepted, ${s.meanAcceptedLength.toFixed(2)} tokens per step`;
}

export async function runGenerate(argv: string[]): Promise<number> {
  const v = parseFlags(argv, FLAGS, 'generate');
  if (v.help) { process.stdout.write(GENERATE_HELP); return 0; }
  if ((v.prompt === undefined) === (v['prompt-file'] === undefined)) throw new UsageError('give exactly one of --prompt TEXT or --prompt-file PATH', 'generate');
  let prompt = v.prompt as string | undefined;
  if (prompt === undefined) {
    try { prompt = readTextFile(v['prompt-file'] as string, MAX_PROMPT_FILE_BYTES, '--prompt-file'); } catch (e) {
      throw new CliError(`cannot read --prompt-file: ${(e as Error).message}`, 'give the path of a regular UTF-8 text file');
    }
  }
  const json = v.json === true;
  const speculation = speculationFor(v);
  const tessera = await loadForCli(v);
  let spec: Awaited<ReturnType<typeof speculation.load>>;
  try { spec = await speculation.load(tessera); } catch (e) { tessera.dispose(); throw e; }
  // Ctrl-C stops the generation (the text so far and the stats are still printed); a second one kills.
  const ac = new AbortController();
  const onSigint = () => { if (ac.signal.aborted) process.exit(130); ac.abort(); };
  process.on('SIGINT', onSigint);
  let prefilled = 0;
  try {
    // without --max-tokens, a model with a short context still answers (a 128-token model would
    // refuse 256): the default shrinks to the room the prompt leaves; an explicit value is kept as
    // asked, and too large is the context error
    let input: string | number[] = prompt, maxTokens = v['max-tokens'] as number | undefined;
    if (maxTokens === undefined) {
      input = tessera.promptIds(prompt);
      maxTokens = Math.max(1, Math.min(DEFAULT_MAX_TOKENS, tessera.contextLength - input.length));
    }
    const it = tessera.generate(input, {
      ...samplingFrom(v), speculate: spec.speculate, maxTokens, stop: stopFrom(v),
      ignoreEos: v['ignore-eos'] === true, signal: ac.signal, onPrefillProgress: (done) => { prefilled = done; },
    });
    let result: GenerationResult;
    let last = '';
    for (;;) {
      const step = await it.next();
      if (step.done) { result = step.value; break; }
      if (!json && step.value.text) { process.stdout.write(step.value.text); last = step.value.text; }
    }
    if (json) {
      const t = result.timings;
      process.stdout.write(JSON.stringify({
        text: result.text, tokens: result.tokens, prompt_tokens: result.promptTokens, finish_reason: result.finishReason,
        timings: {
          prefill_ms: t.prefillMs, decode_ms: t.decodeMs,
          prefill_tokens_per_second: t.prefillTokensPerSecond, decode_tokens_per_second: t.decodeTokensPerSecond,
          ...(result.speculative ? { speculative: {
            steps: result.speculative.steps, drafted: result.speculative.drafted, accepted: result.speculative.accepted,
            acceptance_rate: result.speculative.acceptanceRate, mean_accepted_length: result.speculative.meanAcceptedLength,
            per_position_acceptance: result.speculative.perPosition, accepted_per_position: result.speculative.acceptedAt,
            ...(result.speculative.byBudget ? { by_budget: result.speculative.byBudget } : {}),
          } } : {}),
        },
      }) + '\n');
    } else {
      if (!last.endsWith('\n')) process.stdout.write('\n'); // the text is a line of its own, on a terminal or in a pipe
      process.stderr.write(statsLine(result, result.cachedTokens + prefilled) + '\n');
    }
    return 0;
  } finally {
    process.off('SIGINT', onSigint);
    spec.dispose();
    tessera.dispose();
  }
}
