// How `tessera chat` reads its input: """ blocks are one message, /commands are never sent as text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChatInput, type ChatInputEvent } from '../../src/cli/chat-input.js';

function feed(lines: string[]): ChatInputEvent[] {
  const input = new ChatInput();
  return [...lines.map((l) => input.push(l)), input.end()].filter((e) => e.kind !== 'more' && e.kind !== 'empty');
}

test('a line is a message; blank lines are nothing', () => {
  assert.deepEqual(feed(['Hello there', '', '   ']), [{ kind: 'message', text: 'Hello there' }]);
});

test('lines between """ are one message, with their line breaks', () => {
  assert.deepEqual(feed(['"""', 'Dear Congress,', '', 'the budget.', '"""', 'next']), [
    { kind: 'message', text: 'Dear Congress,\n\nthe budget.' },
    { kind: 'message', text: 'next' },
  ]);
  // text on the fence lines belongs to the message
  assert.deepEqual(feed(['"""first', 'second"""']), [{ kind: 'message', text: 'first\nsecond' }]);
  assert.deepEqual(feed(['"""one line"""']), [{ kind: 'message', text: 'one line' }]);
  // a command inside a block is text
  assert.deepEqual(feed(['"""', '/exit is a command', '"""']), [{ kind: 'message', text: '/exit is a command' }]);
});

test('the end of input inside a """ block still sends what was typed', () => {
  assert.deepEqual(feed(['"""', 'unfinished', 'letter']), [{ kind: 'message', text: 'unfinished\nletter' }]);
});

test('an open block reports "more" until it is closed, and cancel() drops it', () => {
  const input = new ChatInput();
  assert.equal(input.push('"""').kind, 'more');
  assert.equal(input.open, true);
  assert.equal(input.push('draft').kind, 'more');
  input.cancel();
  assert.equal(input.open, false);
  assert.deepEqual(input.push('fresh'), { kind: 'message', text: 'fresh' });
});

test('known commands and their aliases; unknown ones are refused, not sent', () => {
  assert.deepEqual(feed(['/help', '/reset', '/clear', '/exit', '/QUIT', '/bye']).map((e) => e.kind === 'command' && e.command),
    ['/help', '/reset', '/reset', '/exit', '/exit', '/exit']);
  assert.deepEqual(feed(['/save chat.txt', '/model', '/']), [
    { kind: 'unknown-command', command: '/save chat.txt' },
    { kind: 'unknown-command', command: '/model' },
    { kind: 'unknown-command', command: '/' },
  ]);
});
