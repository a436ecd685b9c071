import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

test('kernel module is built and validates', () => {
  const bytes = readFileSync(new URL('../kernels.wasm', import.meta.url));
  assert.ok(WebAssembly.validate(bytes));
});
