// Fuzz: seeded random mutations of small valid safetensors files (src/testing/fuzz-targets.ts). Every
// mutant must either open with all tensors inside the file and tiling its data section, or be refused
// with a FormatError naming the file; any other exception (RangeError, stack overflow, TypeError…)
// fails the test. The long run is `node dist/src/testing/fuzz.js --parser safetensors`.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fuzzTarget, runCase } from '../../src/testing/fuzz-targets.js';

test('4000 random mutations: each opens consistently or throws FormatError', { timeout: 120_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-st-fuzz-'));
  try {
    const target = fuzzTarget('safetensors', dir);
    let opened = 0, refused = 0;
    const reasons = new Set<string>();
    for (let i = 0; i < 4000; i++) {
      const out = runCase(target, 'safetensors', 0x7e55e7a, i);
      if (out.kind === 'crash') assert.fail(`case ${i}: ${out.label} (rerun: node dist/src/testing/fuzz.js --parser safetensors --seed ${0x7e55e7a} --case ${i})`);
      if (out.kind === 'accepted') opened++;
      else { refused++; reasons.add(out.label); }
    }
    // The fuzz must reach both outcomes and many distinct rules, or it tests nothing.
    if (process.env.FUZZ_VERBOSE) console.log(opened, refused, [...reasons].join('\n'));
    assert.ok(opened > 100, `only ${opened} mutants opened`);
    assert.ok(refused > 2000, `only ${refused} mutants refused`);
    assert.ok(reasons.size >= 15, `only ${reasons.size} distinct reasons: ${[...reasons].join(' | ')}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
