// Does a chat model end its replies by itself? For a few user messages × seeds, one chat completion
// each (no max_tokens: the default reply bound applies), under the API's default sampling and under
// the CLI's; counts replies that ended with finish_reason 'stop' (the model's end-of-turn token) and
// their lengths. The numbers in models/default/README.md come from this command.
//
// Run:  node dist/src/experiments/chat-ends.js [--model models/default] [--seeds 8]

import { Tessera, DEFAULT_REPLY_TOKENS } from '../api/tessera.js';
import { markdownTable } from './report.js';
import type { FlagSpecs } from '../cli/args.js';
import { isMainModule, runScript, scriptFlags } from '../cli/script.js';

/** Greetings, questions in and out of the fine-tuning templates, and statements. */
export const CHAT_PROBES = [
  'Hi', 'Tell me about the railroads.', 'What about taxes?', 'What should Congress do about education?',
  'How is the economy doing?', 'Thank you for coming.', 'Tell me a story.', 'Why should we trust the banks?',
];

const SAMPLINGS: { name: string; params: Record<string, number> }[] = [
  { name: 'API defaults (temperature 1)', params: {} },
  { name: 'CLI defaults (T 0.8, top-k 40, top-p 0.95, min-p 0.05)', params: { temperature: 0.8, top_k: 40, top_p: 0.95, min_p: 0.05 } },
];

export interface ChatEndsRow { sampling: string; replies: number; stopped: number; meanTokens: number; maxTokens: number }

export async function measureChatEnds(t: Tessera, seeds: number): Promise<ChatEndsRow[]> {
  const rows: ChatEndsRow[] = [];
  for (const s of SAMPLINGS) {
    const lengths: number[] = [];
    let stopped = 0;
    for (const content of CHAT_PROBES) {
      for (let seed = 1; seed <= seeds; seed++) {
        const r = await t.chat.completions.create({ messages: [{ role: 'user', content }], seed, ...s.params });
        lengths.push(r.usage.completion_tokens);
        if (r.choices[0].finish_reason === 'stop') stopped++;
      }
    }
    rows.push({ sampling: s.name, replies: lengths.length, stopped, meanTokens: lengths.reduce((a, b) => a + b, 0) / lengths.length, maxTokens: Math.max(...lengths) });
  }
  return rows;
}

const FLAGS: FlagSpecs = {
  model: { type: 'string', default: 'models/default', placeholder: 'PATH', description: 'the chat model' },
  seeds: { type: 'integer', min: 1, default: 8, description: 'sampling seeds per user message' },
};

async function main(): Promise<number> {
  const v = scriptFlags(import.meta.url, FLAGS, 'Does a chat model end its replies by itself? Counts finish_reason "stop" over a few messages × seeds.');
  if (!v) return 0;
  const model = v.model as string, seeds = v.seeds as number;
  const t = await Tessera.load(model, { threads: 1 });
  try {
    const rows = await measureChatEnds(t, seeds);
    process.stdout.write(`${model}: ${CHAT_PROBES.length} user messages × ${seeds} seeds, reply bound ${DEFAULT_REPLY_TOKENS} tokens\n\n`);
    process.stdout.write(markdownTable(['sampling', 'replies', 'ended by themselves', 'mean tokens', 'longest'],
      rows.map((r) => [r.sampling, r.replies, `${r.stopped} (${((100 * r.stopped) / r.replies).toFixed(0)}%)`, r.meanTokens.toFixed(1), r.maxTokens])));
  } finally {
    t.dispose();
  }
  return 0;
}

if (isMainModule(import.meta.url)) runScript(import.meta.url, main);
