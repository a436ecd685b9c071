// Mutation fuzz of the GGUF reader as the loader uses it (src/testing/fuzz-targets.ts): seeded random
// mutations of a tiny llama GGUF and two odd-typed files. Each must be accepted whole (every tensor
// reads back its bytes; config, tokenizer and chat template build) or be refused with FormatError /
// ChatTemplateError naming the file — never a RangeError, TypeError, out-of-memory or hang. The long
// run of the same cases is `node dist/src/testing/fuzz.js --parser gguf` (docs/RELIABILITY.md).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fuzzTarget, runCase } from '../../src/testing/fuzz-targets.js';

test('fuzz: 3000 mutations of valid GGUF files are accepted whole or refused with a clean error', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-gguf-fuzz-'));
  try {
    const target = fuzzTarget('gguf', dir);
    const accepted = new Map<string, number>();
    let refused = 0;
    for (let i = 0; i < 3000; i++) {
      const out = runCase(target, 'gguf', 0x6775_6766, i);
      if (out.kind === 'crash') assert.fail(`case ${i}: ${out.label} (rerun: node dist/src/testing/fuzz.js --parser gguf --seed ${0x6775_6766} --case ${i})`);
      if (out.kind === 'accepted') accepted.set(out.label, (accepted.get(out.label) ?? 0) + 1);
      else refused++;
    }
    // Both outcomes must occur, and mutants must get through to the tokenizer and the template, or
    // the mutations are too weak / too strong to test anything.
    if (process.env.FUZZ_VERBOSE) console.log(accepted, refused);
    assert.ok(refused > 1000, `refused ${refused}`);
    assert.ok((accepted.get('file') ?? 0) > 50, `opened ${accepted.get('file')}`);
    assert.ok((accepted.get('file+config+tokenizer+template') ?? 0) > 100, `whole models ${accepted.get('file+config+tokenizer+template')}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
