// The CLI is product code: nothing it can load (statically or by a lazy import) may come from
// src/experiments/, the research scripts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = fileURLToPath(new URL('../../../src/', import.meta.url));

/** Relative imports of a TypeScript file: `from './x.js'` and `import('./x.js')`, as .ts paths. */
function imports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specs = [...text.matchAll(/(?:from\s+|import\s*\(\s*)'(\.{1,2}\/[^']+)\.js'/g)].map((m) => m[1]);
  return specs.map((s) => resolve(dirname(file), `${s}.ts`)).filter((p) => existsSync(p));
}

test('nothing reachable from src/cli/main.ts is in src/experiments/', () => {
  const seen = new Set<string>();
  const stack = [join(SRC, 'cli/main.ts')];
  const from = new Map<string, string>();
  while (stack.length) {
    const f = stack.pop()!;
    if (seen.has(f)) continue;
    seen.add(f);
    for (const g of imports(f)) if (!seen.has(g)) { from.set(g, f); stack.push(g); }
  }
  assert.ok(seen.size > 50, `walked only ${seen.size} files`);
  assert.ok(seen.has(join(SRC, 'eval/perplexity.ts')) && seen.has(join(SRC, 'training/train-run.ts')), 'lazy imports are followed');
  const bad = [...seen].filter((f) => f.includes(`${join(SRC, 'experiments')}/`));
  const chain = (f: string): string => (from.has(f) ? `${chain(from.get(f)!)} → ` : '') + relative(SRC, f);
  assert.deepEqual(bad.map(chain), []);
});
