// Every results file the documentation points to is in the repository, so a reader can check a table
// without re-running it (docs/results/README.md is the index of documented runs and their files).
// A path under docs/ named in README.md, docs/*.md, docs/results/README.md or a models/*/README.md,
// and a relative link inside docs/, must exist; `{a,b}` expands, and `*` or an all-capitals word
// (`fuzz-PARSER.json`, `-from-N`) stands for a part of a name that at least one file must match.
// And every data file (.json, .md) in the results folders is listed in the index, and a few numbers
// the docs quote are checked against the results files they come from.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { acceptanceTable } from '../../src/experiments/long-context/acceptance.js';

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

/** A number a document quotes, and how to read it from the results file it comes from: the test
 *  formats the value as the doc prints it and looks for the quoted text around it. */
interface QuotedNumber { doc: string; file: string; quote: (data: any) => string }

const readJson = (file: string): any => JSON.parse(readFileSync(join(ROOT, file), 'utf8'));
const readJsonLines = (file: string): any[] => readFileSync(join(ROOT, file), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
const pct = (x: number) => `${Math.round(100 * x)}%`;
const shippedRow = (data: any, kind: string) => data.rows.find((r: any) => r.kind === kind);

const QUOTED: QuotedNumber[] = [
  { doc: 'docs/LONG_CONTEXT_MODEL.md', file: 'docs/results/long-context-model/shipped-2048.json',
    quote: (d) => `| needle-single | 2048 | 50 | ${shippedRow(d, 'needle-single').meanPromptTokens} | **${pct(shippedRow(d, 'needle-single').accuracy)}**` },
  { doc: 'docs/LONG_CONTEXT_MODEL.md', file: 'docs/results/long-context-model/shipped-2048.json',
    quote: (d) => `| needle-multikey | 2048 | 50 | ${shippedRow(d, 'needle-multikey').meanPromptTokens} | **${pct(shippedRow(d, 'needle-multikey').accuracy)}**` },
  { doc: 'docs/LONG_CONTEXT_MODEL.md', file: 'docs/results/long-context-model/shipped-2048.json',
    quote: (d) => `(training difficulty) | 2048 | 50 | ${Math.round(shippedRow(d, 'most-frequent-name').meanPromptTokens)} | **${pct(shippedRow(d, 'most-frequent-name').accuracy)}**` },
  { doc: 'models/default/README.md', file: 'docs/results/default-base-ppl-128.json',
    quote: (d) => `trained at 128 tokens) | ${d.loss.toFixed(3)} (ppl ${d.perplexity.toFixed(1)}) |` },
  { doc: 'models/default/README.md', file: 'docs/results/default-base-ppl-256.json',
    quote: (d) => `| ${d.loss.toFixed(3)} (ppl ${d.perplexity.toFixed(1)}) |\n  | this model` },
  { doc: 'models/default/README.md', file: 'docs/results/default-model-ppl-128.json',
    quote: (d) => `| this model (fine-tuned at 256 tokens) | ${d.loss.toFixed(3)} (ppl ${d.perplexity.toFixed(1)}) |` },
  { doc: 'models/default/README.md', file: 'docs/results/default-model-ppl-256.json',
    quote: (d) => `| ${d.loss.toFixed(3)} (ppl ${d.perplexity.toFixed(1)}) |\n` },
  { doc: 'docs/LONG_CONTEXT_MODEL.md', file: 'docs/results/long-context-draft/eval.jsonl',
    quote: (lines) => `answer loss ${lines.at(-1).loss.toFixed(3)} at step ${lines.at(-1).step}` },
  { doc: 'docs/EXPERIMENTS.md', file: 'docs/results/recall-llama-l2-3000/result.json',
    quote: (d) => `reaches **${(100 * d.final.accuracy).toFixed(1)}%** held-out\naccuracy, held-out answer loss` },
  ...['h1', 'b8'].map((name): QuotedNumber => ({ doc: 'docs/EXPERIMENTS.md', file: `docs/results/recall-llama-l2-${name}/result.json`,
    quote: (d) => `| ${d.steps.toLocaleString('en-US')} × ${d.config.batch} | 2.05 M | ${d.final.loss.toFixed(3)} | ${(100 * d.final.accuracy).toFixed(1)}% |` })),
  { doc: 'docs/EXPERIMENTS.md', file: 'docs/results/recall-llama-l2-lr1e-3-wd0/result.json',
    quote: (d) => `| ${d.steps} × ${d.config.batch} | 1.23 M | ${d.final.loss.toFixed(3)} | ${(100 * d.final.accuracy).toFixed(1)}% |` },
  ...['mosaic-l1', 'llama-l1', 'llama-l2'].map((name): QuotedNumber => ({ doc: 'docs/EXPERIMENTS.md', file: `docs/results/recall-pairs2-${name}/result.json`,
    quote: (d) => `| \`recall-pairs2-${name}.json\` | ${d.parameters.toLocaleString('en-US')} | ${(100 * d.final.accuracy).toFixed(1)}% | ${d.final.loss.toFixed(3)} |` })),
  { doc: 'docs/EXPERIMENTS.md', file: 'docs/results/sotu-llama-d128-l1-1000/result.json',
    quote: (d) => `**${d.final.loss.toFixed(3)}** (ppl ${d.final.perplexity.toFixed(1)}, next-token accuracy ${(100 * d.final.accuracy).toFixed(1)}%` },
  { doc: 'docs/EXPERIMENTS.md', file: 'docs/results/sotu-llama-d128-l1-1000/eval-ppl-128.json',
    quote: (d) => `(${d.loss.toFixed(3)} on the same ${d.windows} windows of ${d.ctx}\ntokens)` },
  { doc: 'docs/EXPERIMENTS.md', file: 'docs/results/default-model-ppl-128.json',
    quote: (d) => `scores ${d.loss.toFixed(3)} (\`docs/results/default-model-ppl-128.json\`)` },
  ...['seed1-arenas-default', 'seed1-arena-max-1', 'seed1-arena-max-2', 'seed2-arenas-default', 'seed3-arenas-default', 'seed2-arena-max-1', 'seed3-arena-max-1'].map((name): QuotedNumber => ({
    doc: 'docs/RELIABILITY.md', file: `docs/results/request-fuzz-${name}.json`,
    // the table row: RSS at the baseline, then each pass's end minus the baseline, then the noise floor and the tolerance
    quote: (d) => `RSS | ${d.rssMiB[1].toFixed(1)} | ${d.rssAboveBaselineMiB.map((x: number) => `+${x.toFixed(1)}`).join(' | ')} | ${d.noiseFloorMiB.toFixed(1)}, ${d.toleranceMiB.toFixed(1)} |`,
  })),
  ...['seed1-warmup-30000', 'seed1-warmup-30000-run2', 'seed2-warmup-30000', 'seed3-warmup-30000', 'seed1-warmup-30000-no-compact'].map((name): QuotedNumber => ({
    doc: 'docs/RELIABILITY.md', file: `docs/results/request-fuzz-${name}.json`,
    quote: (d) => `RSS | ${d.rssMiB[1].toFixed(1)} | ${d.rssAboveBaselineMiB.map((x: number) => `${x < 0 ? '−' : '+'}${Math.abs(x).toFixed(1)}`).join(' | ')} | ${d.noiseFloorMiB.toFixed(1)}, ${d.toleranceMiB.toFixed(1)} |`,
  })),
  { doc: 'docs/BENCHMARKS.md', file: 'docs/results/serve-soak-rounds.md',
    quote: (text) => `| RSS | ${/^\| RSS MiB \| (.*) \|$/m.exec(text)![1]} |` },
];

/** Experiment c (docs/results/lm-fair.json, one row per run): the rate each arm's seed-1 sweep on the
 *  first corpus chose, computed here independently of lm-fair.ts. */
const FAIR_LABEL: Record<string, string> = { transformer: 'transformer', 'mosaic-short': 'mosaic (short-budget init)', 'mosaic-library': 'mosaic (Library init)' };
function fairBestLr(runs: any[], arm: string, depth: number): number {
  const swept = runs.filter((r) => r.corpus === 'sotu' && r.arm === arm && r.depth === depth && r.seed === 1);
  return swept.reduce((a, b) => (b.final.loss < a.final.loss ? b : a)).lr;
}
/** The row of the table "at the best learning rate" as the doc prints it, up to the loss column. */
function fairMainRow(runs: any[], corpus: string, arm: string, depth: number): string {
  const lr = fairBestLr(runs, arm, depth);
  const sel = runs.filter((r) => r.corpus === corpus && r.arm === arm && r.depth === depth && r.lr === lr);
  const losses = sel.map((r) => r.final.loss), mean = losses.reduce((a: number, b: number) => a + b, 0) / losses.length;
  const loss = sel.length > 1 ? `${mean.toFixed(3)} ± ${((Math.max(...losses) - Math.min(...losses)) / 2).toFixed(3)}` : `${mean.toFixed(3)} (one seed)`;
  return `| ${corpus} | ${FAIR_LABEL[arm]} | ${depth} | ${sel[0].parameters.toLocaleString('en-US')} | ${lr} | ${sel.map((r) => r.seed).join(', ')} | ${sel[0].tokens.toLocaleString('en-US')} | ${loss} |`;
}
/** A row of the sweep table: every rate any sweep tried, the best in bold, '–' where not run. */
function fairSweepRow(runs: any[], arm: string, depth: number): string {
  const swept = runs.filter((r) => r.corpus === 'sotu' && r.seed === 1);
  const lrs = [...new Set(swept.map((r) => r.lr))].sort((a, b) => a - b);
  const mine = swept.filter((r) => r.arm === arm && r.depth === depth), best = Math.min(...mine.map((r) => r.final.loss));
  const cell = (lr: number) => { const r = mine.find((x) => x.lr === lr); return !r ? '–' : r.final.loss === best ? `**${r.final.loss.toFixed(3)}**` : r.final.loss.toFixed(3); };
  return `| ${FAIR_LABEL[arm]} | ${depth} | ${lrs.map(cell).join(' | ')} |`;
}
for (const [arm, depth] of [['transformer', 1], ['mosaic-short', 1], ['transformer', 4], ['mosaic-short', 4]] as const) {
  QUOTED.push({ doc: 'docs/EXPERIMENTS.md', file: 'docs/results/lm-fair.json', quote: (runs) => fairSweepRow(runs, arm, depth) });
  QUOTED.push({ doc: 'docs/EXPERIMENTS.md', file: 'docs/results/lm-fair.json', quote: (runs) => fairMainRow(runs, 'sotu', arm, depth) });
}
for (const arm of ['transformer', 'mosaic-short']) for (const depth of [1, 4]) {
  QUOTED.push({ doc: 'docs/EXPERIMENTS.md', file: 'docs/results/lm-fair.json', quote: (runs) => fairMainRow(runs, 'moby-dick', arm, depth) });
}
QUOTED.push({ doc: 'models/sotu-mosaic-d128-l4/README.md', file: 'docs/results/lm-fair.json', quote: (runs) => {
  const lr = fairBestLr(runs, 'mosaic-short', 4);
  const best = runs.filter((r: any) => r.corpus === 'sotu' && r.arm === 'mosaic-short' && r.depth === 4 && r.lr === lr).reduce((a: any, b: any) => (b.final.loss < a.final.loss ? b : a));
  return `**${best.final.loss.toFixed(3)} nats/token (perplexity ${best.final.perplexity.toFixed(1)})**`;
} });

QUOTED.push({ doc: 'docs/EXPERIMENTS.md', file: 'docs/results/sotu-mosaic-d128-l4-ppl-128.json',
  quote: (d) => `${d.loss.toFixed(3)} (ppl ${d.perplexity.toFixed(1)}) on ${d.windows} windows of ${d.ctx} through the engine` });

// the 4096-token model (docs/LONG_CONTEXT_MODEL.md) and its acceptance table (BENCHMARKS §9)
QUOTED.push({ doc: 'docs/LONG_CONTEXT_MODEL.md', file: 'docs/results/long-context-4k/needle-2048-4096.json', quote: (d) => {
  const r = d.rows.find((x: any) => x.context === 4096);
  return `| needle-single | 4096 | **${pct(r.accuracy)}** (${r.byDepth.map((x: number) => Math.round(100 * x)).join(' / ')}%) |`;
} });
QUOTED.push({ doc: 'docs/LONG_CONTEXT_MODEL.md', file: 'docs/results/long-context-4k/shipped-needle-4096.json',
  quote: (d) => `tokens it finds ${pct(d.rows[0].accuracy)} of the needles` });
for (const [file, bold] of [['docs/results/selfspec-acceptance-4k-greedy.json', 'streaming:sinks=16,window=496'], ['docs/results/selfspec-acceptance-4k-t1.json', 'streaming:sinks=16,window=496']] as const) {
  QUOTED.push({ doc: 'docs/BENCHMARKS.md', file, quote: (d) => {
    const cell = (r: any, b: boolean) => `${b ? `**${r.acceptanceRate.toFixed(2)}**` : r.acceptanceRate.toFixed(2)} / ${r.meanAcceptedLength.toFixed(2)} (${(100 * r.keysFraction).toFixed(1)}%)`;
    const at = (c: number) => d.rows.find((x: any) => x.draft === bold && x.context === c);
    return `| ${cell(at(2048), false)} | ${cell(at(4096), true)} | ${at(4096).perPosition.map((x: number) => x.toFixed(2)).join(' / ')} |`;
  } });
}

// self-speculation at equal keys and equal time (BENCHMARKS §9): every row's rate, keys read and µs
for (const draft of ['streaming:sinks=16,window=240', 'streaming:sinks=16,window=496', 'streaming:sinks=16,window=1008', 'streaming:sinks=16,window=2032',
  'snapkv:budget=512', 'magicpig:dense=none', 'magicpig:dense=0']) {
  QUOTED.push({ doc: 'docs/BENCHMARKS.md', file: 'docs/results/selfspec-equal-time-4k-greedy-2.json', quote: (d) => {
    const cell = (c: number) => { const r = d.rows.find((x: any) => x.draft === draft && x.context === c);
      return `${r.acceptanceRate.toFixed(2)} (${(100 * r.keysFraction).toFixed(1)}%, ${r.attendMicros.toFixed(0)} µs)`; };
    return `| ${cell(2048)} | ${cell(4096)} |`;
  } });
}

// prompt lookup and the draft model on the 4096-token model (BENCHMARKS §9): every row's cells as
// the experiment prints them, the draft's name aside
const DRAFT_ROWS = ['prompt-lookup', 'model:models/long-context-draft,attention=streaming:sinks=4,window=128', 'model:models/long-context-draft,attention=streaming:sinks=4,window=256'];
for (const file of ['docs/results/draft-acceptance-4k-greedy.json', 'docs/results/draft-acceptance-4k-t1.json']) {
  for (const draft of DRAFT_ROWS) {
    QUOTED.push({ doc: 'docs/BENCHMARKS.md', file, quote: (d) => {
      const line = acceptanceTable(d.rows.filter((r: any) => r.draft === draft), [2048, 4096]).split('\n')[2]!;
      return line.slice(line.indexOf('` | ') + 2);
    } });
  }
}

test('numbers the docs quote are the ones their results files hold', () => {
  const wrong: string[] = [];
  for (const { doc, file, quote } of QUOTED) {
    const expected = quote(file.endsWith('.jsonl') ? readJsonLines(file) : file.endsWith('.md') ? readFileSync(join(ROOT, file), 'utf8') : readJson(file));
    if (!readFileSync(join(ROOT, doc), 'utf8').includes(expected)) wrong.push(`${doc} should quote ${JSON.stringify(expected)} (from ${file})`);
  }
  assert.deepEqual(wrong, [], 'a doc number differs from its results file: quote what the file holds, or rerun and keep the new file');
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
