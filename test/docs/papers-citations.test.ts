// The code and docs cite the papers Tessera implements as "PAPERS.md §N" (docs/PAPERS.md): every
// such citation names a section that exists there, so a reader can follow it inside the repository.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

function files(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) files(p, out);
    else if (/\.(ts|md|mjs)$/.test(name)) out.push(p);
  }
  return out;
}

test('every "PAPERS.md §N" citation in src, kernels, test, tools, docs and the README names a section of docs/PAPERS.md', () => {
  const papers = readFileSync(join(ROOT, 'docs/PAPERS.md'), 'utf8');
  const sections = new Set([...papers.matchAll(/^## (\d+)\. /gm)].map((m) => m[1]));
  assert.ok(sections.has('1') && sections.has('2') && sections.has('3'), [...sections].join(', '));
  const sources = ['src', 'kernels', 'test', 'tools', 'docs'].flatMap((d) => files(join(ROOT, d))).concat(join(ROOT, 'README.md'));
  let citations = 0;
  for (const f of sources) {
    const text = readFileSync(f, 'utf8');
    for (const m of text.matchAll(/PAPERS(?:\.md)? §(\d+)/g)) {
      citations++;
      assert.ok(sections.has(m[1]!), `${relative(ROOT, f)} cites PAPERS.md §${m[1]}, which docs/PAPERS.md does not have`);
    }
    assert.doesNotMatch(text, /shared\/docs\/PAPERS/, `${relative(ROOT, f)} points outside the repository`);
  }
  assert.ok(citations >= 30, `found ${citations} citations`);
});
