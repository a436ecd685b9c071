// `tessera chat`: an interactive conversation with the checkpoint's chat template.
// Ctrl-C cancels the reply being generated (the process stays); Ctrl-C at an empty prompt, Ctrl-D or
// /exit quits. When stdin is not a terminal, each input line is one user message.

import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { CliError, formatHelp, parseFlags, type FlagSpecs } from './args.js';
import { MODEL_FLAGS, SAMPLING_FLAGS, loadForCli, samplingFrom } from './model-flags.js';
import { statsLine } from './generate.js';
import { DEFAULT_CHATML_TEMPLATE } from '../tokenizer/chat-template.js';
import { ContextOverflowError, type GenerationResult } from '../generation/generate.js';
import type { ChatRole } from '../api/validate.js';

const FLAGS: FlagSpecs = {
  ...MODEL_FLAGS,
  system: { type: 'string', placeholder: 'TEXT', description: 'system message at the start of the conversation' },
  'chat-template': { type: 'string', placeholder: 'PATH|chatml', description: 'Jinja chat template file (or chatml) for models without one' },
  'max-tokens': { type: 'integer', min: 1, placeholder: 'N', description: 'most tokens per reply (default: up to the end of the context)', short: 'n' },
  ...SAMPLING_FLAGS,
  stats: { type: 'boolean', description: 'print speed statistics after each reply (stderr)' },
  help: { type: 'boolean', description: 'show this help', short: 'h' },
};

export const CHAT_HELP = formatHelp('chat',
  'Chats with a model in the terminal. Commands: /exit (or Ctrl-D), /reset (forget the conversation), /help.\n'
  + 'Ctrl-C stops the reply being written. Piped stdin: one user message per line.', FLAGS);

const COMMANDS = '/exit quit · /reset forget the conversation · /help this text · Ctrl-C stop the current reply';

export async function runChat(argv: string[]): Promise<number> {
  const v = parseFlags(argv, FLAGS, 'chat');
  if (v.help) { process.stdout.write(CHAT_HELP); return 0; }
  let template: string | undefined;
  const tflag = v['chat-template'] as string | undefined;
  if (tflag === 'chatml') template = DEFAULT_CHATML_TEMPLATE;
  else if (tflag !== undefined) {
    try { template = readFileSync(tflag, 'utf8'); } catch (e) {
      throw new CliError(`cannot read --chat-template ${tflag}: ${(e as Error).message}`, 'give a Jinja template file, or chatml');
    }
  }
  const tessera = await loadForCli(v, template === undefined ? {} : { chatTemplate: template });
  const interactive = process.stdin.isTTY === true;
  const system: { role: ChatRole; content: string }[] = v.system !== undefined ? [{ role: 'system', content: v.system as string }] : [];
  let history = [...system];
  let current: AbortController | null = null;
  const rl = createInterface({ input: process.stdin, output: interactive ? process.stdout : undefined, terminal: interactive, prompt: '> ' });
  const onInterrupt = () => {
    if (current) current.abort();
    else if (interactive) rl.close();
    else process.exit(130);
  };
  rl.on('SIGINT', onInterrupt);      // terminal: readline turns Ctrl-C into this event
  process.on('SIGINT', onInterrupt); // piped stdin: the real signal
  try {
    // Render once up front so a model without a template fails before the first question.
    const render = (msgs: typeof history) => tessera.applyChatTemplate(msgs);
    try { await render([...system, { role: 'user', content: 'hi' }]); } catch (e) {
      throw new CliError((e as Error).message, 'pass --chat-template FILE (a Jinja template) or --chat-template chatml, or use tessera generate');
    }
    if (interactive) { process.stderr.write(`${tessera.name} ready (${COMMANDS})\n`); rl.prompt(); }
    for await (const raw of rl) {
      const line = raw.trim();
      if (line === '') { if (interactive) rl.prompt(); continue; }
      if (line === '/exit' || line === '/quit') break;
      if (line === '/reset') { history = [...system]; process.stderr.write('(conversation cleared)\n'); if (interactive) rl.prompt(); continue; }
      if (line === '/help') { process.stderr.write(COMMANDS + '\n'); if (interactive) rl.prompt(); continue; }
      history.push({ role: 'user', content: raw });
      const prompt = tessera.tokenize(await render(history), { addSpecialTokens: false });
      current = new AbortController();
      let reply = '';
      let result: GenerationResult | undefined;
      try {
        const it = tessera.generate(prompt, { ...samplingFrom(v), maxTokens: v['max-tokens'] as number | undefined, signal: current.signal });
        for (;;) {
          const step = await it.next();
          if (step.done) { result = step.value; break; }
          reply += step.value.text;
          process.stdout.write(step.value.text);
        }
      } catch (e) {
        if (!(e instanceof ContextOverflowError)) throw e;
        history.pop();
        process.stderr.write(`\n(the conversation no longer fits the context of ${tessera.contextLength} tokens: /reset, or restart with a larger --ctx)\n`);
      } finally {
        current = null;
      }
      if (result) {
        process.stdout.write('\n');
        if (result.finishReason === 'abort') process.stderr.write('(reply stopped)\n');
        if (v.stats) process.stderr.write(statsLine(result) + '\n');
        history.push({ role: 'assistant', content: reply });
      }
      if (interactive) rl.prompt();
    }
    return 0;
  } finally {
    process.off('SIGINT', onInterrupt);
    rl.close();
    tessera.dispose();
  }
}
