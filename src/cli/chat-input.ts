// What `tessera chat` makes of the lines it reads: a message, a command, or part of a multi-line
// message. A message that spans lines is wrapped in """ (as in ollama): a line starting with """
// opens it, a line ending with """ closes it, and the lines between are one message. A line that
// starts with / is a command; an unknown one is refused, never sent to the model as text (a message
// that starts with / can be sent inside """).

export const CHAT_COMMANDS: readonly (readonly [string, string])[] = [
  ['/help', 'show the commands'],
  ['/reset', 'forget the conversation'],
  ['/exit', 'quit (also /quit, Ctrl-D, or Ctrl-C at an empty prompt)'],
];

export const CHAT_COMMAND_NAMES = CHAT_COMMANDS.map(([c]) => c).join(', ');

const ALIASES: Record<string, string> = { '/help': '/help', '/?': '/help', '/reset': '/reset', '/clear': '/reset', '/exit': '/exit', '/quit': '/exit', '/bye': '/exit' };

export const CHAT_HELP_TEXT = [
  ...CHAT_COMMANDS.map(([c, d]) => `  ${c.padEnd(8)} ${d}`),
  '  """      start or end a message of several lines',
  '  Ctrl-C   stop the reply being written',
].join('\n');

export type ChatInputEvent =
  | { kind: 'message'; text: string }
  | { kind: 'command'; command: '/help' | '/reset' | '/exit' }
  | { kind: 'unknown-command'; command: string }
  /** Inside a """ block: more lines are needed. */
  | { kind: 'more' }
  | { kind: 'empty' };

const FENCE = '"""';

/** Turns input lines into chat events; holds the open """ block between lines. */
export class ChatInput {
  private block: string[] | null = null;

  /** True while a """ message is open. */
  get open(): boolean { return this.block !== null; }

  /** Drops an open """ message (Ctrl-C while typing it). */
  cancel(): void { this.block = null; }

  push(line: string): ChatInputEvent {
    if (this.block !== null) {
      const end = line.trimEnd();
      if (!end.endsWith(FENCE)) { this.block.push(line); return { kind: 'more' }; }
      this.block.push(end.slice(0, -FENCE.length));
      return this.close();
    }
    const start = line.trimStart();
    if (start.startsWith(FENCE)) {
      const rest = start.slice(FENCE.length);
      const end = rest.trimEnd();
      if (end.length >= FENCE.length && end.endsWith(FENCE)) return message(end.slice(0, -FENCE.length)); // """one line"""
      this.block = [rest];
      return { kind: 'more' };
    }
    const text = line.trim();
    if (text === '') return { kind: 'empty' };
    if (text.startsWith('/')) {
      const word = text.split(/\s+/)[0];
      const command = ALIASES[word.toLowerCase()];
      if (command === undefined || word !== text) return { kind: 'unknown-command', command: word === text ? word : text };
      return { kind: 'command', command: command as '/help' | '/reset' | '/exit' };
    }
    return message(line);
  }

  /** End of input inside a """ block: what was typed is still a message. */
  end(): ChatInputEvent {
    return this.block === null ? { kind: 'empty' } : this.close();
  }

  private close(): ChatInputEvent {
    const lines = this.block!;
    this.block = null;
    // The fence lines' own text counts only when there is some ("""Dear Sir, … Yours"""); blank
    // first/last lines are the fences alone.
    if (lines.length > 0 && lines[0].trim() === '') lines.shift();
    if (lines.length > 0 && lines[lines.length - 1].trim() === '') lines.pop();
    return message(lines.join('\n'));
  }
}

function message(text: string): ChatInputEvent {
  return text.trim() === '' ? { kind: 'empty' } : { kind: 'message', text };
}
