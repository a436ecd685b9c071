// Every results file the documentation points to is in the repository, so a reader can check a table
// without re-running it (docs/results/README.md is the index of documented runs and their files).
// A path under docs/ named in README.md, docs/*.md, docs/results/README.md or a models/*/README.md,
// and a relative link inside docs/, must exist; `{a,b}` expands, and `*` or an all-capitals word
// (`fuzz-PARSER.json`, `-from-N`) stands for a part of a name that at least one file must match.
// And every data file (.json, .md) in the results folders is listed in the index.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const INDEX = 'docs/results/README.md';
const RESULTS_FOLDERS = ['docs/results', 'docs/evaluation', 'docs/experiments', 'docs/plots'];

/** The documents that cite results, relative to the repository root. */
function documents(): string[] {
  const docs = readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`);
  const models = readdirSync(join(ROOT, 'models')).map((m) => `models/${m}/README.md`).filter((f) => existsSync(join(ROOT, f)));
  return ['README.md', ...docs, INDEX, ...models];
}

/** `a{b,c}d` → [abd, acd] (one level of braces per group, groups expanded left to right). */
function expandBraces(path: string): string[] {
  const m = /\{([^{}]*)\}/.exec(path);
  if (!m) return [path];
  return m[1]!.split(',').flatMap((alt) => expandBraces(path.slice(0, m.index) + alt + path.slice(m.index + m[0].length)));
}

/** Paths under docs/ named in `text`: `docs/…` anywhere, and relative Markdown links when the document
 *  itself lives in docs/ (`from` is its folder). Web links and anchors are not paths. */
function citedPaths(text: string, from: string): string[] {
  const found: string[] = [];
  for (const m of text.matchAll(/(?<![\w/.-])docs\/(?:[\w.*-]|\/|\{[\w.,-]*\})+/g)) found.push(m[0].replace(/\.+$/, ''));
  if (from === 'docs' || from.startsWith('docs/')) {
    for (const m of text.matchAll(/\]\(([^)\s#]+)(?:#[^)]*)?\)/g)) {
      const target = m[1]!;
      if (/^[a-z]+:/.test(target)) continue;
      const path = relative(ROOT, join(ROOT, from, target));
      if (path.startsWith('docs/')) found.push(path);
    }
  }
  return found.flatMap(expandBraces);
}

const PLACEHOLDER = /\*|(?<![A-Za-z])[A-Z][A-Z0-9_]*(?![A-Za-z])/;

/** The file names `name` stands for, when it holds a placeholder; else undefined. */
function namePattern(name: string): RegExp | undefined {
  if (!PLACEHOLDER.test(name)) return undefined;
  const parts = name.split(new RegExp(PLACEHOLDER.source)).map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`^${parts.join('[^/]+')}$`);
}

/** Whether `path` names something in the repository, literally or as a pattern (see the header). */
function resolves(path: string): boolean {
  const bare = path.replace(/\/$/, '');
  if (existsSync(join(ROOT, bare))) return true;
  const folder = dirname(bare), pattern = namePattern(bare.slice(folder.length + 1));
  if (!pattern || PLACEHOLDER.test(folder) || !existsSync(join(ROOT, folder))) return false;
  return readdirSync(join(ROOT, folder)).some((f) => pattern.test(f));
}

/** Data files (.json, .md) under the results folders, relative to the root. */
function dataFiles(folder: string): string[] {
  const abs = join(ROOT, folder);
  if (!existsSync(abs)) return [];
  return readdirSync(abs).flatMap((f) => {
    const path = `${folder}/${f}`;
    if (statSync(join(ROOT, path)).isDirectory()) return dataFiles(path);
    return /\.(json|md)$/.test(f) && path !== INDEX ? [path] : [];
  });
}

test('every results file the docs cite exists', () => {
  const missing: string[] = [];
  let cited = 0;
  for (const doc of documents()) {
    for (const path of citedPaths(readFileSync(join(ROOT, doc), 'utf8'), dirname(doc))) {
      cited++;
      if (!resolves(path)) missing.push(`${doc}: ${path}`);
    }
  }
  assert.ok(cited > 50, `found only ${cited} cited paths: the scan no longer reads the docs`);
  assert.deepEqual(missing, [], 'the docs cite files that are not in the repository: keep the file, or say in the doc that it was not kept');
});

test('the results index lists every kept results file', () => {
  const index = readFileSync(join(ROOT, INDEX), 'utf8');
  const listed = citedPaths(index, 'docs/results');
  const covered = (file: string) => listed.some((p) => p === file || (p.endsWith('/') && file.startsWith(p)) || patternCovers(p, file));
  const unlisted = RESULTS_FOLDERS.flatMap(dataFiles).filter((f) => !covered(f));
  assert.deepEqual(unlisted, [], `${INDEX} does not list these results files: add each with its table and command`);
});

/** Whether the pattern path `p` (with `*` or a capitals placeholder) names `file`. */
function patternCovers(p: string, file: string): boolean {
  const pattern = namePattern(p);
  return pattern !== undefined && pattern.test(file);
}

test('the path scan finds what it must, and a missing file fails', () => {
  assert.deepEqual(citedPaths('see `docs/results/lm-fair.{md,json}`, then docs/plots.', '.'), ['docs/results/lm-fair.md', 'docs/results/lm-fair.json', 'docs/plots']);
  assert.deepEqual(citedPaths('[plot](results/x.svg) [web](https://a.b/c) [here](#a)', 'docs'), ['docs/results/x.svg']);
  assert.deepEqual(citedPaths('[plot](results/x.svg)', '.'), [], 'relative links outside docs/ are not results');
  assert.ok(resolves('docs/results/fuzz-PARSER.json'));
  assert.ok(resolves('docs/results/fuzz-rest-PARSER-from-N.json'));
  assert.ok(resolves('docs/results/lm-fair-*.svg'));
  assert.ok(!resolves('docs/results/long-context-never-kept.json'));
  assert.ok(!resolves('docs/results/never-kept-*.json'));
});
