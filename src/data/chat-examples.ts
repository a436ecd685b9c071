// Chat-shaped training text from a corpus of plain documents, so a small model trained on the corpus
// also learns to answer in turns and to END its turn (the end-of-turn token it is trained on is what
// stops a reply). The documents have no paragraphs, so a "passage" is a run of consecutive sentences
// that fits a reply budget; each passage becomes one assistant turn, and its user turn is built from
// the passage itself:
//   - topic:    a question about the passage's most specific common word ("Tell me about tariffs.");
//   - opening:  the passage's first sentence, answered by the sentences that follow it;
//   - greeting: a greeting ("Hello."), answered by the opening passage of a document.
// Conversations are 1–3 consecutive turns of one document. The text format is the one CHAT_TEMPLATE
// renders (tested equal), so the model sees at inference exactly what it was trained on.

import { Rng } from './rng.js';

export const CHAT_USER = '<|user|>';
export const CHAT_ASSISTANT = '<|assistant|>';
/** End of a turn: the model emits it to end its reply (an EOS id of the exported model). */
export const CHAT_END = '<|end|>';
export const CHAT_SPECIAL_TOKENS: readonly string[] = [CHAT_USER, CHAT_ASSISTANT, CHAT_END];

/** The Jinja chat template of the format: assistant turns as `<|assistant|>`, every other role as a
 *  user turn (the model was trained without system prompts), each turn closed by `<|end|>`. */
export const CHAT_TEMPLATE =
  "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'assistant' %}{{ '<|assistant|>' }}{% else %}{{ '<|user|>' }}{% endif %}"
  + "{{ message['content'] + '<|end|>' }}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}";

export interface ChatTurn { user: string; assistant: string }

export interface ChatExampleOptions {
  /** Longest reply in tokens (passages are cut at sentence ends below it). */
  maxReplyTokens: number;
  /** Counts the tokens of a piece of text. */
  countTokens: (text: string) => number;
  seed: number;
  /** Most turns in one conversation (default 3). */
  maxTurns?: number;
}

/** Sentences of a text: cut after . ! ? (and a closing quote or bracket) before a capital or digit. */
export function splitSentences(text: string): string[] {
  return text.split(/(?<=[.!?]["'”’)]?)\s+(?=["'“‘(]?[A-Z0-9])/).map((s) => s.trim()).filter((s) => s.length > 0);
}

const GREETINGS = ['Hello.', 'Hi', 'Hi!', 'Hello', 'Good evening.', 'Hi there.', 'Good morning.', 'Hello, Mr. President.'];
const QUESTIONS: ((w: string) => string)[] = [
  (w) => `Tell me about ${w}.`, (w) => `What about ${w}?`, (w) => `What do you say about ${w}?`,
  (w) => `What should Congress do about ${w}?`, (w) => `Speak to us about ${w}.`, (w) => `What is the news on ${w}?`,
  (w) => `${w[0].toUpperCase()}${w.slice(1)}?`,
];
// Frequent words that make poor topics although they are long enough.
const STOP = new Set(['about', 'after', 'again', 'against', 'being', 'before', 'because', 'between', 'could', 'every', 'first',
  'great', 'their', 'there', 'these', 'those', 'other', 'shall', 'should', 'since', 'still', 'under', 'which', 'while', 'would',
  'where', 'within', 'without', 'whose', 'through', 'during', 'upon', 'have', 'made', 'make', 'must', 'such', 'than', 'that',
  'this', 'will', 'with', 'from', 'been', 'were', 'they', 'them', 'what', 'when', 'also', 'more', 'most', 'some', 'only',
  'into', 'very', 'much', 'many', 'said', 'year', 'years', 'time', 'present', 'further', 'already', 'people', 'whether']);

const WORD = /[A-Za-z][a-z]+/g;

/** Word counts (lower-cased) over the documents: how common each candidate topic is. */
function wordCounts(texts: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const t of texts) for (const m of t.matchAll(WORD)) { const w = m[0].toLowerCase(); counts.set(w, (counts.get(w) ?? 0) + 1); }
  return counts;
}

// Word endings of nouns (and plurals): a question about "tariffs" or "education" reads as one; a
// question about "allotted" does not.
const NOUNLIKE = /(tion|sion|ment|ity|ance|ence|ism|ure|ness|ship|try|ery|ies|ers|ors|als|ists)$|[^su]s$/;

/** The passage's most specific noun-like word or name among those common in the corpus (≥ 30 uses),
 *  or null. Kept capitalised only when it is capitalised mid-sentence (a name). */
function topicWord(passage: string, counts: Map<string, number>): string | null {
  let best: string | null = null, bestCount = Infinity;
  for (const m of passage.matchAll(WORD)) {
    const lower = m[0].toLowerCase();
    if (lower.length < 5 || STOP.has(lower)) continue;
    const n = counts.get(lower) ?? 0;
    if (n < 30 || n >= bestCount) continue;
    const atStart = m.index === 0 || /[.!?:]\s*["'“‘(]?$/.test(passage.slice(Math.max(0, m.index - 3), m.index));
    const name = m[0][0] === m[0][0].toUpperCase() && !atStart;
    if (!name && !NOUNLIKE.test(lower)) continue;
    best = name ? m[0] : lower;
    bestCount = n;
  }
  return best;
}

/** Consecutive sentences of one document grouped into passages of at most maxReplyTokens tokens; a
 *  sentence longer than that ends the passage before it and is left out. */
function passages(text: string, opts: ChatExampleOptions): string[][] {
  const out: string[][] = [];
  let cur: string[] = [], used = 0;
  for (const s of splitSentences(text)) {
    const n = opts.countTokens(` ${s}`);
    if (n > opts.maxReplyTokens) { if (cur.length) out.push(cur); cur = []; used = 0; continue; }
    if (used + n > opts.maxReplyTokens && cur.length) { out.push(cur); cur = []; used = 0; }
    cur.push(s); used += n;
  }
  if (cur.length) out.push(cur);
  return out;
}

/** Conversations built from the documents (deterministic for a seed). */
export function chatConversations(texts: readonly string[], opts: ChatExampleOptions): ChatTurn[][] {
  if (!(Number.isInteger(opts.maxReplyTokens) && opts.maxReplyTokens >= 8)) throw new RangeError(`chatConversations: maxReplyTokens ${opts.maxReplyTokens} must be an integer ≥ 8`);
  const maxTurns = opts.maxTurns ?? 3;
  const counts = wordCounts(texts);
  const rng = new Rng(opts.seed);
  const conversations: ChatTurn[][] = [];
  for (const text of texts) {
    const ps = passages(text, opts);
    let conv: ChatTurn[] = [], size = 1 + rng.int(maxTurns);
    ps.forEach((p, i) => {
      let turn: ChatTurn;
      const topic = topicWord(p.join(' '), counts);
      if (i === 0) turn = { user: GREETINGS[rng.int(GREETINGS.length)], assistant: p.join(' ') };
      else if (p.length >= 2 && (topic === null || rng.float() < 0.3)) turn = { user: p[0], assistant: p.slice(1).join(' ') };
      else if (topic !== null) turn = { user: QUESTIONS[rng.int(QUESTIONS.length)](topic), assistant: p.join(' ') };
      else return; // one sentence and no topic: nothing to ask
      conv.push(turn);
      if (conv.length >= size) { conversations.push(conv); conv = []; size = 1 + rng.int(maxTurns); }
    });
    if (conv.length) conversations.push(conv);
  }
  return conversations;
}

/** A conversation as training text: what CHAT_TEMPLATE renders for it, `bos` first. */
export function renderConversation(turns: readonly ChatTurn[], bos: string): string {
  return bos + turns.map((t) => `${CHAT_USER}${t.user}${CHAT_END}${CHAT_ASSISTANT}${t.assistant}${CHAT_END}`).join('');
}
