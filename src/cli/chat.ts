// `tessera chat`: an interactive conversation with the checkpoint's chat template.
// Ctrl-C cancels the reply being generated (the process stays) or the line being typed; Ctrl-C at an
// empty prompt, Ctrl-D or /exit quits. Input lines become messages as chat-input.ts says ("""" for
// several lines, /commands); piped stdin is read the same way, one message per line.

import { createInterface } from 'node:readline';
import { CliError, formatHelp, parseFlags, type FlagSpecs } from './args.js';
import { MODEL_FLAGS, SAMPLING_FLAGS, STOP_FLAGS, loadForCli, samplingFrom, speculationFor, stopFrom } from './model-flags.js';
import { statsLine } from './generate.js';
import { CHAT_COMMAND_NAMES, CHAT_HELP_TEXT, ChatInput } from './chat-input.js';
import { DEFAULT_CHATML_TEMPLATE } from '../tokenizer/chat-template.js';
import { ContextOverflowError, type GenerationResult } from '../generation/generate.js';
import type { ChatRole } from '../api/validate.js';
import { DEFAULT_REPLY_TOKENS } from '../api/tessera.js';
import { readTextFile } from '../formats/regular-file.js';

/** 1 MiB: released chat templates are a few KiB (tool-calling ones ~30 KiB). */
const MAX_TEMPLATE_FILE_BYTES = 1 << 20;

const FLAGS: FlagSpecs = {
  ...MODEL_FLAGS,
  system: { type: 'string', placeholder: 'TEXT', description: 'system message at the start of the conversation' },
  'chat-template': { type: 'string', placeholder: 'PATH|chatml', description: 'Jinja chat template file (or chatml) for models without one' },
  'max-tokens': { type: 'integer', min: 1, placeholder: 'N', description: `most tokens per reply (default: the model's generation_config max_new_tokens, else ${DEFAULT_REPLY_TOKENS})`, short: 'n' },
  ...SAMPLING_FLAGS,
  ...STOP_FLAGS,
  stats: { type: 'boolean', description: 'print speed statistics after each reply (stderr)' },
  help: { type: 'boolean', description: 'show this help', short: 'h' },
};

export const CHAT_HELP = formatHelp('chat',
  'Chats with a model in the terminal, using its chat template. In the chat:\n' + CHAT_HELP_TEXT
  + '\nPiped stdin is read the same way: one message per line, or several lines between """.', FLAGS);

export async function runChat(argv: string[]): Promise<number> {
  const v = parseFlags(argv, FLAGS, 'chat');
  if (v.help) { process.stdout.write(CHAT_HELP); return 0; }
  let template: string | undefined;
  const tflag = v['chat-template'] as string | undefined;
  if (tflag === 'chatml') template = DEFAULT_CHATML_TEMPLATE;
  else if (tflag !== undefined) {
    try { template = readTextFile(tflag, MAX_TEMPLATE_FILE_BYTES, '--chat-template'); } catch (e) {
      throw new CliError(`cannot read --chat-template: ${(e as Error).message}`, 'give a Jinja template file, or chatml');
    }
  }
  const speculation = speculationFor(v);
  const tessera = await loadForCli(v, template === undefined ? {} : { chatTemplate: template });
  let spec: Awaited<ReturnType<typeof speculation.load>>;
  try { spec = await speculation.load(tessera); } catch (e) { tessera.dispose(); throw e; }
  const maxTokens = v['max-tokens'] as number | undefined;
  if (maxTokens !== undefined && maxTokens >= tessera.contextLength) {
    spec.dispose();
    tessera.dispose();
    throw new CliError(`--max-tokens ${maxTokens} leaves no room for the conversation in the context of ${tessera.contextLength} tokens`,
      `lower --max-tokens (at most ${tessera.contextLength - 1}, less the conversation's length) or raise --ctx`);
  }
  const interactive = process.stdin.isTTY === true;
  const system: { role: ChatRole; content: string }[] = v.system !== undefined ? [{ role: 'system', content: v.system as string }] : [];
  let history = [...system];
  let current: AbortController | null = null;
  const input = new ChatInput();
  const rl = createInterface({ input: process.stdin, output: interactive ? process.stdout : undefined, terminal: interactive, prompt: '> ' });
  const prompt = () => { if (interactive) { rl.setPrompt(input.open ? '. ' : '> '); rl.prompt(); } };
  const onInterrupt = () => {
    if (current) { current.abort(); return; }
    if (!interactive) process.exit(130);
    // Ctrl-C drops what is being typed; at an empty prompt it quits, leaving the cursor on a fresh line.
    const typing = rl.line.length > 0 || input.open;
    process.stdout.write('\n');
    if (typing) { input.cancel(); rl.write(null, { ctrl: true, name: 'u' }); prompt(); } else rl.close();
  };
  rl.on('SIGINT', onInterrupt);      // terminal: readline turns Ctrl-C into this event
  process.on('SIGINT', onInterrupt); // piped stdin: the real signal
  const render = (msgs: typeof history) => tessera.applyChatTemplate(msgs);
  try {
    // Render once up front so a model without a template fails before the first question.
    try { await render([...system, { role: 'user', content: 'hi' }]); } catch (e) {
      throw new CliError((e as Error).message, 'pass --chat-template FILE (a Jinja template) or --chat-template chatml, or use tessera generate');
    }
    if (interactive) process.stderr.write(`${tessera.name} ready: /help for the commands, """ for a message of several lines, Ctrl-C stops a reply\n`);
    prompt();
    const lines = rl[Symbol.asyncIterator]();
    for (;;) {
      const next = await lines.next();
      const event = next.done ? input.end() : input.push(next.value);
      if (event.kind === 'command' && event.command === '/exit') break;
      if (event.kind === 'command' && event.command === '/reset') { history = [...system]; process.stderr.write('(conversation cleared)\n'); }
      if (event.kind === 'command' && event.command === '/help') process.stderr.write(CHAT_HELP_TEXT + '\n');
      if (event.kind === 'unknown-command') {
        process.stderr.write(`unknown command ${event.command}; the commands are ${CHAT_COMMAND_NAMES} (to send text that starts with /, put it between """)\n`);
      }
      if (event.kind === 'message') await reply(event.text);
      if (next.done) break;
      prompt();
    }
    return 0;
  } finally {
    process.off('SIGINT', onInterrupt);
    rl.close();
    spec.dispose();
    tessera.dispose();
  }

  async function reply(text: string): Promise<void> {
    history.push({ role: 'user', content: text });
    current = new AbortController();
    let answer = '';
    let result: GenerationResult | undefined;
    let prefilled = 0;
    try {
      // Inside the try: a conversation too long for the context is refused while rendering.
      const ids = tessera.tokenize(await render(history), { addSpecialTokens: false });
      const it = tessera.generate(ids, {
        ...samplingFrom(v), speculate: spec.speculate, maxTokens: maxTokens ?? tessera.defaultReplyTokens(ids.length), stop: stopFrom(v), signal: current.signal,
        onPrefillProgress: (done) => { prefilled = done; },
      });
      for (;;) {
        const step = await it.next();
        if (step.done) { result = step.value; break; }
        answer += step.value.text;
        process.stdout.write(step.value.text);
      }
    } catch (e) {
      if (!(e instanceof ContextOverflowError)) throw e;
      // piped input has nobody to /reset: the rest of the conversation would be answered out of context
      if (!interactive) throw new CliError(`the conversation no longer fits the context of ${tessera.contextLength} tokens (${e.message})`, 'restart with a larger --ctx, a lower --max-tokens, or fewer lines');
      history.pop();
      process.stderr.write(`\n(the conversation no longer fits the context of ${tessera.contextLength} tokens: /reset, or restart with a larger --ctx)\n`);
    } finally {
      current = null;
    }
    if (result) {
      process.stdout.write('\n');
      if (result.finishReason === 'abort') process.stderr.write('(reply stopped)\n');
      if (v.stats) process.stderr.write(statsLine(result, result.cachedTokens + prefilled) + '\n');
      history.push({ role: 'assistant', content: answer });
    }
  }
}
