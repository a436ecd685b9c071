import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAttentionSpec, formatAttentionSpec } from '../../src/attention/spec.js';
import { attentionBackend } from '../../src/attention/create.js';

test('attention specs parse into a kind and typed parameters', () => {
  assert.deepEqual(parseAttentionSpec('dense'), { kind: 'dense', params: {} });
  assert.deepEqual(parseAttentionSpec('magicpig:K=10,L=150'), { kind: 'magicpig', params: { K: 10, L: 150 } });
  assert.deepEqual(parseAttentionSpec(' streaming:window=256,sinks=4 '), { kind: 'streaming', params: { window: 256, sinks: 4 } });
  assert.deepEqual(parseAttentionSpec('magicpig:dense=0+16'), { kind: 'magicpig', params: { dense: '0+16' } });
  assert.equal(formatAttentionSpec(parseAttentionSpec('magicpig:K=10,L=150')), 'magicpig:K=10,L=150');
});

test('bad attention specs are rejected with the reason', () => {
  assert.throws(() => parseAttentionSpec('flash'), /unknown backend "flash"; choose one of dense/);
  assert.throws(() => parseAttentionSpec('magicpig:K'), /must look like NAME=VALUE/);
  assert.throws(() => parseAttentionSpec('magicpig:K=1,K=2'), /given twice/);
  assert.throws(() => attentionBackend(parseAttentionSpec('dense:x=1')), /dense takes no parameters/);
});
