import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  applyChatTemplate, ChatTemplateError, DEFAULT_CHATML_TEMPLATE, renderChatTemplate,
} from '../../src/tokenizer/chat-template.js';
import { buildTinyTokenizerJson, TINY_CHAT_TEMPLATE, tinyTokenizerConfig } from '../../src/testing/tiny-tokenizer.js';
import { loadHfTokenizer } from '../../src/tokenizer/hf-tokenizer.js';

const messages = [
  { role: 'system', content: 'You are a helpful assistant.' },
  { role: 'user', content: 'What is 2 + 2?' },
  { role: 'assistant', content: '4' },
  { role: 'user', content: '  And 3 + 3?\n' },
];

test('Llama 3 template renders the documented Llama 3 prompt format', () => {
  // Format from Meta's Llama 3 model card: <|begin_of_text|> then, per message,
  // <|start_header_id|>{role}<|end_header_id|>\n\n{content stripped}<|eot_id|>; the generation
  // prompt opens an assistant header.
  const out = renderChatTemplate(TINY_CHAT_TEMPLATE, { messages, addGenerationPrompt: true, bosToken: '<|begin_of_text|>' });
  const expected =
    '<|begin_of_text|>' +
    '<|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant.<|eot_id|>' +
    '<|start_header_id|>user<|end_header_id|>\n\nWhat is 2 + 2?<|eot_id|>' +
    '<|start_header_id|>assistant<|end_header_id|>\n\n4<|eot_id|>' +
    '<|start_header_id|>user<|end_header_id|>\n\nAnd 3 + 3?<|eot_id|>' +
    '<|start_header_id|>assistant<|end_header_id|>\n\n';
  assert.equal(out, expected);
  const noPrompt = renderChatTemplate(TINY_CHAT_TEMPLATE, { messages, addGenerationPrompt: false, bosToken: '<|begin_of_text|>' });
  assert.equal(noPrompt, expected.slice(0, -'<|start_header_id|>assistant<|end_header_id|>\n\n'.length));
});

test('ChatML default template', () => {
  const out = renderChatTemplate(DEFAULT_CHATML_TEMPLATE, { messages: messages.slice(0, 2), addGenerationPrompt: true });
  assert.equal(out, '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nWhat is 2 + 2?<|im_end|>\n<|im_start|>assistant\n');
});

test('applyChatTemplate takes bos from the tokenizer and explains a missing template', () => {
  const tk = loadHfTokenizer({ tokenizerJson: buildTinyTokenizerJson(), tokenizerConfig: tinyTokenizerConfig() });
  const out = applyChatTemplate(tk, 'tiny', { messages: [{ role: 'user', content: 'hi' }], addGenerationPrompt: true });
  assert.ok(out.startsWith('<|begin_of_text|><|start_header_id|>user'));
  const noTemplate = loadHfTokenizer({ tokenizerJson: buildTinyTokenizerJson() });
  assert.equal(noTemplate.chatTemplate, null);
  assert.throws(() => applyChatTemplate(noTemplate, 'models/tiny', { messages: [] }),
    /models\/tiny has no chat template; pass --template or use generate/);
});

test('extra variables reach the template; reserved names cannot be replaced', () => {
  const t = '{{ date_string }}|{{ bos_token }}|{{ messages|length }}';
  const out = renderChatTemplate(t, { messages, bosToken: 'B', extra: { date_string: '26 Jul 2024', bos_token: 'X', messages: [] } });
  assert.equal(out, '26 Jul 2024|B|4');
  assert.match(renderChatTemplate("{{ strftime_now('%Y') }}", { messages }), /^\d{4}$/);
});

test('raise_exception and parse errors become ChatTemplateError', () => {
  assert.throws(() => renderChatTemplate("{{ raise_exception('Conversation roles must alternate') }}", { messages }),
    (e: unknown) => e instanceof ChatTemplateError && /Conversation roles must alternate/.test(e.message));
  assert.throws(() => renderChatTemplate('{% for %}', { messages }), ChatTemplateError);
  assert.throws(() => renderChatTemplate('{{ x }}', { messages: [{ role: 'user' } as never] }), /messages\[0\]/);
});

test('sandbox: templates cannot reach JS constructors, prototypes or globals', () => {
  const g = globalThis as { __tesseraPwned?: unknown };
  delete g.__tesseraPwned;
  const payload = "globalThis.__tesseraPwned = 1";
  const attacks = [
    `{{ constructor.constructor('${payload}')() }}`,
    `{{ messages.constructor.constructor('${payload}')() }}`,
    `{{ ''.constructor.constructor('${payload}')() }}`,
    `{{ messages[0]['constructor']['constructor']('${payload}')() }}`,
    `{{ raise_exception.constructor('${payload}')() }}`,
    `{{ range.constructor('${payload}')() }}`,
    `{{ strftime_now.call(none, '${payload}') }}`,
    `{{ cycler.__init__.__globals__.os.popen('id').read() }}`,
    `{{ self.__init__.__globals__ }}{{ lipsum.__globals__ }}`,
    '{{ messages.__proto__ }}{{ messages[0].__proto__ }}{{ messages.toString }}',
    "{% set ns = namespace(a=1) %}{% set ns.__proto__ = 5 %}{{ ns.__proto__ }}",
    "{% set x = messages[0] %}{% set y = x.__proto__ %}{{ y.polluted }}",
    "{{ messages|map(attribute='constructor')|list }}",
    "{{ process.mainModule.require('child_process') }}{{ require('fs') }}{{ globalThis }}",
  ];
  for (const t of attacks) {
    let out: string | undefined;
    try {
      out = renderChatTemplate(t, { messages: [{ role: 'user', content: 'hi' }] });
    } catch (e) {
      assert.ok(e instanceof ChatTemplateError, `${t}: unexpected ${String(e)}`);
    }
    assert.equal(g.__tesseraPwned, undefined, t);
    assert.equal(({} as { polluted?: unknown }).polluted, undefined, t);
    // Whatever renders, it is not a JS function or object dump.
    if (out !== undefined) assert.doesNotMatch(out, /function|\[native code\]|\[object /, t);
  }
});

test('bounds: runaway loops, doubling strings/lists and huge ranges stop with an error', () => {
  const m = { messages: [{ role: 'user', content: 'hi' }] };
  assert.throws(() => renderChatTemplate('{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}', { ...m, maxSteps: 20_000 }),
    /stopped after 20000 evaluation steps/);
  assert.throws(() => renderChatTemplate("{% set ns = namespace(s='xxxxxxxx') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s }}", { ...m, maxOutputChars: 1 << 16 }),
    /exceeds the limit of 65536/);
  assert.throws(() => renderChatTemplate('{% set ns = namespace(a=[1]) %}{% for i in range(40) %}{% set ns.a = ns.a + ns.a %}{% endfor %}', { ...m, maxItems: 1000 }),
    /list of 1024 items exceeds the limit of 1000/);
  assert.throws(() => renderChatTemplate('{{ range(1000000000)|length }}', m), /range\(\) of 1000000000 items exceeds/);
  // The same bounds leave ordinary templates alone: 2,000 messages render.
  const many = Array.from({ length: 2000 }, (_, i) => ({ role: i % 2 ? 'assistant' : 'user', content: `message ${i}` }));
  const out = renderChatTemplate(TINY_CHAT_TEMPLATE, { messages: many, bosToken: '<|begin_of_text|>' });
  assert.equal(out.split('<|eot_id|>').length - 1, 2000);
});
