// Chat-shaped training text: the format is exactly what the chat template renders, replies fit their
// budget, and the conversations are deterministic.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CHAT_TEMPLATE, chatConversations, renderConversation, splitSentences } from '../../src/data/chat-examples.js';
import { renderChatTemplate } from '../../src/tokenizer/chat-template.js';

const BOS = '<|endoftext|>';

test('the training text of a conversation is what the chat template renders; a prompt is its prefix', () => {
  const turns = [{ user: 'Tell me about tariffs.', assistant: 'The tariff is high.' }, { user: 'And the army?', assistant: 'It is small.' }];
  const messages = turns.flatMap((t) => [{ role: 'user', content: t.user }, { role: 'assistant', content: t.assistant }]);
  const text = renderConversation(turns, BOS);
  assert.equal(renderChatTemplate(CHAT_TEMPLATE, { messages, bosToken: BOS }), text);
  const prompt = renderChatTemplate(CHAT_TEMPLATE, { messages: messages.slice(0, 3), bosToken: BOS, addGenerationPrompt: true });
  assert.equal(prompt, text.slice(0, text.lastIndexOf('It is small.')));
  // a system message is a user turn (the model was trained without system prompts)
  assert.equal(renderChatTemplate(CHAT_TEMPLATE, { messages: [{ role: 'system', content: 'Be brief.' }], bosToken: BOS }), `${BOS}<|user|>Be brief.<|end|>`);
});

test('splitSentences cuts after . ! ? before a capital, not inside abbreviations followed by lower case', () => {
  assert.deepEqual(splitSentences('We met. It rained! Why? "Because," he said. 1790 was long ago. Mr. Smith came.'),
    ['We met.', 'It rained!', 'Why?', '"Because," he said.', '1790 was long ago.', 'Mr.', 'Smith came.']);
  assert.deepEqual(splitSentences('e.g. this one stays whole.'), ['e.g. this one stays whole.']);
});

const DOCS = [
  'Fellow citizens: We meet in peace. The tariffs of the nation are high, and the tariffs must fall. The army is small. '
  + 'The navy needs new ships and the ships need sailors. Our railroads cross the continent. The railroads carry grain.',
  'Gentlemen of the Congress: The treasury is full. The tariffs brought revenue. The army guards the frontier, and the navy the coast.',
  // topics are words the corpus uses at least 30 times
  ...Array.from({ length: 30 }, (_, i) => `Report ${i}: the tariffs, the railroads and the army.`),
];
const words = (s: string) => s.trim().split(/\s+/).length;

test('conversations: a greeting opens each document, replies fit the budget, the same seed gives the same text', () => {
  const opts = { maxReplyTokens: 12, countTokens: words, seed: 3 };
  const convs = chatConversations(DOCS, opts);
  assert.deepEqual(chatConversations(DOCS, opts), convs);
  const turns = convs.flat();
  assert.ok(turns.length >= 30 + 4, JSON.stringify(convs));
  assert.ok(turns.some((t) => /tariffs|railroads|army/i.test(t.user) && !DOCS.some((d) => d.includes(t.user))), 'some user turns ask about a topic');
  for (const t of turns) {
    assert.ok(words(t.assistant) <= 12, `reply over budget: ${t.assistant}`);
    assert.ok(t.user.length > 0 && t.assistant.length > 0);
  }
  // each document's first passage answers a greeting
  for (const d of DOCS) {
    const opening = turns.find((t) => d.startsWith(t.assistant));
    assert.ok(opening && /^(Hello|Hi|Good)/.test(opening.user), `${JSON.stringify(opening)}`);
  }
  // every reply is text of the documents, in order within a conversation
  for (const c of convs) {
    const doc = DOCS.find((d) => d.includes(c[0].assistant))!;
    assert.ok(doc, c[0].assistant);
    let at = 0;
    for (const t of c) { const i = doc.indexOf(t.assistant, at); assert.ok(i >= at, t.assistant); at = i + t.assistant.length; }
  }
  assert.throws(() => chatConversations(DOCS, { ...opts, maxReplyTokens: 4 }), /maxReplyTokens 4 must be an integer ≥ 8/);
});
