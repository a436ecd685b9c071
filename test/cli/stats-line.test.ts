// The speed line of `generate --stats`-style output counts only what was done and prints no 0.0 tok/s.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { statsLine } from '../../src/cli/generate.js';
import type { GenerationResult } from '../../src/generation/generate.js';
import type { SpeculativeStats } from '../../src/generation/speculative.js';

function result(over: Partial<GenerationResult> & { prefillMs: number; decodeMs: number }): GenerationResult {
  const { prefillMs, decodeMs, ...rest } = over;
  return {
    text: '', tokens: [], finishReason: 'stop', promptTokens: 512, cachedTokens: 0, seed: 7,
    timings: { prefillMs, decodeMs, prefillTokensPerSecond: 0, decodeTokensPerSecond: 0 }, ...rest,
  };
}

test('a prefill stopped by Ctrl-C counts the prompt tokens processed, at their rate', () => {
  const line = statsLine(result({ finishReason: 'abort', prefillMs: 400, decodeMs: 0 }), 128);
  assert.match(line, /^prompt: 128 of 512 tokens, stopped, in 0\.40 s \(320\.0 tok\/s\) \| generated: 0 tokens in 0\.00 s \| finish: abort/);
  assert.doesNotMatch(line, /\(0\.0 tok\/s\)/);
});

test('stopped before the first chunk: no rate at all', () => {
  const line = statsLine(result({ finishReason: 'abort', prefillMs: 3, decodeMs: 0 }), 0);
  assert.match(line, /^prompt: 0 of 512 tokens, stopped, in 0\.00 s \| generated: 0 tokens/);
  assert.doesNotMatch(line, /tok\/s/);
});

test('a finished reply: the whole prompt, cached tokens named, rates of what was computed', () => {
  const line = statsLine(result({ tokens: [1, 2, 3, 4, 5], cachedTokens: 112, prefillMs: 200, decodeMs: 1000 }), 512);
  assert.equal(line, 'prompt: 512 tokens (112 cached) in 0.20 s (2000.0 tok/s) | generated: 5 tokens in 1.00 s (4.0 tok/s) | finish: stop | seed: 7');
  // without the processed count (a caller that does not track prefill) the prompt counts as done
  assert.equal(statsLine(result({ tokens: [1, 2, 3, 4, 5], cachedTokens: 112, prefillMs: 200, decodeMs: 1000 })), line);
});

test('speculative acceptance in the line; a run that drafted nothing says so rather than "0/0 accepted"', () => {
  const stats = (drafted: number, accepted: number, steps: number): SpeculativeStats => ({
    steps, drafted, accepted, rejected: accepted === drafted ? 0 : 1, acceptanceRate: drafted > 0 ? accepted / drafted : 0,
    meanAcceptedLength: steps > 0 ? 1 + accepted / steps : 0, perPosition: [], acceptedAt: [],
  });
  const some = statsLine(result({ tokens: [1, 2, 3], prefillMs: 10, decodeMs: 10, speculative: stats(8, 6, 2) }));
  assert.match(some, / \| speculative: 6\/8 draft tokens accepted, 4\.00 tokens per step$/);
  const none = statsLine(result({ tokens: [1, 2, 3], prefillMs: 10, decodeMs: 10, speculative: stats(0, 0, 0) }));
  assert.match(none, / \| speculative: no tokens drafted \(decoded plainly\)$/);
  assert.doesNotMatch(none, /0\/0/);
});
