// The sampling defaults a checkpoint's authors suggest in generation_config.json (temperature, top_p,
// top_k, min_p, repetition_penalty). As vLLM does, the API applies them to every request that leaves a
// field out; a field the request sets wins. `do_sample` is not read: a request (or the default
// temperature 1) decides whether to sample, and `temperature: 0` in the file makes omitted requests greedy.
// The CLI keeps llama.cpp's defaults (src/cli/model-flags.ts), so a run there compares with llama.cpp.

import { FormatError, showValue } from '../formats/errors.js';
import type { SamplingOptions } from '../generation/sampler.js';

const SOURCE = 'generation_config.json';

type Check = { key: keyof SamplingOptions; ok: (x: number) => boolean; expected: string; integer?: boolean };

const FIELDS: Record<string, Check> = {
  temperature: { key: 'temperature', ok: (x) => x >= 0, expected: 'a number ≥ 0 (0 = greedy)' },
  top_p: { key: 'topP', ok: (x) => x > 0 && x <= 1, expected: 'a number greater than 0 and at most 1' },
  top_k: { key: 'topK', ok: (x) => x >= 0, expected: 'an integer ≥ 0 (0 = off)', integer: true },
  min_p: { key: 'minP', ok: (x) => x >= 0 && x <= 1, expected: 'a number between 0 and 1' },
  repetition_penalty: { key: 'repetitionPenalty', ok: (x) => x > 0, expected: 'a number greater than 0 (1 = off)' },
};

/** The sampling defaults in a parsed generation_config.json (absent or null fields are left out).
 *  A value that no request could set is refused at load, naming the field, rather than failing every
 *  request later. */
export function samplingDefaults(config: Record<string, unknown> | undefined): SamplingOptions {
  const out: SamplingOptions = {};
  if (config === undefined) return out;
  for (const [field, c] of Object.entries(FIELDS)) {
    const v = config[field];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'number' || !Number.isFinite(v) || (c.integer === true && !Number.isSafeInteger(v)) || !c.ok(v)) {
      throw new FormatError(SOURCE, `${field} = ${showValue(v)} must be ${c.expected}; fix the value or delete the field`);
    }
    (out as Record<string, number>)[c.key] = v;
  }
  return out;
}

/** `opts` with every sampling field it leaves undefined taken from `defaults`. */
export function withSamplingDefaults<T extends SamplingOptions>(opts: T, defaults: SamplingOptions): T {
  const out = { ...opts };
  for (const [k, v] of Object.entries(defaults) as [keyof SamplingOptions, number][]) {
    if (out[k] === undefined) (out as Record<string, unknown>)[k] = v;
  }
  return out;
}
