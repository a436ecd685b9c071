// The built CLI, spawned as a user runs it: exit codes, messages, help, --json output.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { maxThreads } from '../../src/runtime/pool.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

function tessera(...args: string[]) {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe'] });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('usage errors exit 2 and name the flag, with a hint', () => {
  const cases: [string[], RegExp][] = [
    [['generate', '--model', 'm', '--prompt', 'hi', '--bogus'], /unknown option --bogus/],
    [['generate', '--model', 'm', '--prompt'], /--prompt needs a value/],
    [['generate', '--model', 'm', '--prompt', 'hi', '--max-tokens', 'ten'], /--max-tokens expects an integer, got 'ten'/],
    [['generate', '--model', 'm', '--prompt', 'hi', '--temperature', '-1'], /--temperature must be a number ≥ 0/],
    [['generate', '--model', 'm', '--prompt', 'hi', '--top-p', '1.5'], /--top-p must be/],
    [['generate', '--model', 'm', '--prompt', 'hi', '--quantize', 'q4_0'], /--quantize must be one of q8_0/],
    [['generate', '--prompt', 'hi'], /missing required option --model/],
    [['generate', '--model', 'm'], /exactly one of --prompt TEXT or --prompt-file PATH/],
    [['chat', '--model', 'm', '--ctx', '0'], /--ctx must be an integer ≥ 1/],
    [['info'], /missing required option --model/],
    [['info', '--model', 'm', 'extra'], /unexpected argument 'extra'/],
    [['frobnicate'], /unknown command 'frobnicate'/],
    [['generate', '-m', 'm', '-p', 'hi', '-n0'], /--max-tokens must be an integer ≥ 1, got 0/],
    [['bench', '--model'], /--model needs a value/],
    [['bench', '--bogus'], /unknown option --bogus/],
    [['bench', '--ctx', '512,x'], /--ctx expects an integer, got 'x'/],
    [['bench', '--shapes', 'gpt-5'], /--shapes must be one of smollm2-135m, llama3.2-1b/],
    [['bench', '--dtypes', 'q8_0'], /--dtypes applies to --shapes files/],
    [['bench', '--batch', '1,0'], /--batch must be an integer ≥ 1 and ≤ 256, got 0/],
    [['bench', '--rounds', '0'], /--rounds must be an integer ≥ 1 and ≤ 100, got 0/],
    [['bench', '--rounds', '3', '--batch', '4'], /--rounds applies to single-sequence decoding, not --batch/],
    [['bench', '--prefill-once'], /--prefill-once applies to --batch/],
    [['bench', '--rounds', '3', '--no-llama-cpp'], /--rounds alternates Tessera with llama\.cpp; drop --no-llama-cpp/],
    [['tokenize', '--text', 'x'], /missing required option --model/],
    [['detokenize', '-m', 'm', '--ids', '1', '--file', 'f'], /give one of --ids or --file/],
    [['serve', '--model', 'm', '--port', '70000'], /--port must be an integer ≥ 0 and ≤ 65535, got 70000/],
    [['serve', '--model', 'm', '--api-key', 'k', '--api-key-file', 'f'], /give one of --api-key or --api-key-file/],
    [['serve', '--model', 'm', '--api-key', ''], /--api-key is empty/],
    [['serve', '--model', 'm', '--queue', '-1'], /--queue must be an integer ≥ 0/],
    // the thread pool's own limit (4 × the cores), checked with the flags rather than after loading
    [['generate', '--model', 'm', '--prompt', 'hi', '--threads', String(maxThreads() + 1)], new RegExp(`--threads must be an integer ≥ 1 and ≤ ${maxThreads()}, got ${maxThreads() + 1}`)],
    [['bench', '--threads', '100000'], /--threads must be an integer ≥ 1 and ≤ \d+, got 100000/],
    [['eval-ppl', '--model', 'm', '--threads', '100000'], /--threads must be an integer ≥ 1 and ≤ \d+/],
  ];
  for (const [argv, re] of cases) {
    const r = tessera(...argv);
    assert.equal(r.code, 2, `${argv.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /^tessera: /);
    assert.match(r.stderr, re);
    assert.match(r.stderr, new RegExp(`hint: run 'tessera ${argv[0] === 'frobnicate' ? '' : `${argv[0]} `}--help'`));
    assert.doesNotMatch(r.stderr, /TESSERA_DEBUG|\n\s+at /); // no stack-trace hint, no stack
    assert.equal(r.stdout, '');
  }
  const none = tessera();
  assert.equal(none.code, 2);
  assert.match(none.stderr, /Usage: tessera <command>/);
});

test('a missing model path is a runtime error (exit 1) with a hint of what a model is', () => {
  for (const cmd of ['generate', 'info', 'chat']) {
    const r = tessera(cmd, '--model', '/no/such/model', ...(cmd === 'generate' ? ['--prompt', 'x'] : []));
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /tessera: model path \/no\/such\/model does not exist/);
    assert.match(r.stderr, /Hugging Face model folder \(config\.json \+ \*\.safetensors\) or a \.gguf file/);
  }
});

test('--help for the program and each command; --version', () => {
  const top = tessera('--help');
  assert.equal(top.code, 0);
  for (const cmd of ['generate', 'chat', 'info', 'bench']) assert.ok(top.stdout.includes(cmd));
  const flags: Record<string, string[]> = {
    generate: ['--model', '--prompt', '--max-tokens', '--temperature', '--top-k', '--top-p', '--min-p', '--repeat-penalty', '--seed', '--stop', '--threads', '--ctx', '--quantize', '--json'],
    chat: ['--model', '--system', '--chat-template', '--max-tokens', '--temperature', '--stop', '--threads', '--ctx'],
    info: ['--model', '--ctx', '--json', '--quantize'],
    serve: ['--model', '--host', '--port', '--api-key', '--api-key-file', '--cors', '--parallel', '--kv-budget', '--attention', '--speculate', '--prompt-cache', '--queue', '--max-body', '--timeout', '--grace'],
  };
  for (const [cmd, list] of Object.entries(flags)) {
    const r = tessera(cmd, '--help');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^Usage: tessera ${cmd}`));
    for (const f of list) assert.ok(r.stdout.includes(f), `${cmd} --help lists ${f}`);
  }
  // every command listed by --help has a --help of the same style
  const commands = [...top.stdout.matchAll(/^ {2}([a-z-]+) {2,}/gm)].map((m) => m[1]);
  assert.ok(commands.length >= 9, top.stdout);
  for (const cmd of commands) {
    const r = tessera(cmd, '--help');
    assert.equal(r.code, 0, `${cmd}: ${r.stderr}`);
    // positional operands (quantize IN.gguf OUT.gguf) come before [options]
    assert.match(r.stdout, new RegExp(`^Usage: tessera ${cmd}( [A-Z][A-Za-z.]*)* \\[options\\]\n\n`));
    assert.match(r.stdout, /\nOptions:\n/);
    assert.match(r.stdout, /-h, --help +show this help/);
    assert.doesNotMatch(r.stdout, /\) \(|repeatable.*repeatable/, cmd);
  }
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  assert.equal(tessera('--version').stdout.trim(), `tessera ${pkg.version}`);
});

test('tokenize and detokenize round-trip through a pipe; bad ids are named', () => {
  const model = join(ROOT, 'models/default');
  const ids = tessera('tokenize', '-m', model, '-p', 'Once upon a time');
  assert.equal(ids.code, 0, ids.stderr);
  assert.match(ids.stdout, /^\d+( \d+)+\n$/);
  const back = spawnSync(process.execPath, [MAIN, 'detokenize', '-m', model], { input: ids.stdout, encoding: 'utf8' });
  assert.equal(back.status, 0, back.stderr);
  assert.equal(back.stdout, 'Once upon a time');
  const bare = tessera('tokenize', '-m', model, '-p', 'Once upon a time', '--no-special', '--json');
  const o = JSON.parse(bare.stdout) as { ids: number[]; count: number };
  assert.deepEqual(o.ids, ids.stdout.trim().split(' ').map(Number).slice(1)); // the BOS token is the only difference
  assert.equal(o.count, o.ids.length);
  const vocab = (JSON.parse(readFileSync(join(model, 'config.json'), 'utf8')) as { vocab_size: number }).vocab_size;
  const bad = tessera('detokenize', '-m', model, '--ids', `5 ${vocab}`);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, new RegExp(`token id #2 is ${vocab}, outside this vocabulary \\(ids 0…${vocab - 1}\\)`));
});

test('bench --model measures the given model, caps prompt lengths at its context, and says why llama.cpp has no row', async () => {
  const { writeTestCheckpoint } = await import('../../src/testing/checkpoints.js');
  const dir = mkdtempSync(join(tmpdir(), 'tessera-bench-'));
  try {
    const ck = writeTestCheckpoint(dir, 'smollm2-tiny', { formats: ['hf'] });
    const r = spawnSync(process.execPath, [MAIN, 'bench', '--model', ck.hfDir!, '--ctx', '16,100000', '--decode-tokens', '2', '--threads', '1'],
      { encoding: 'utf8', timeout: 120_000, env: { ...process.env, TESSERA_BENCH_DIR: join(dir, 'never-written') } });
    assert.equal(r.status, 0, r.stderr);
    const rows = r.stdout.split('\n').filter((l) => l.startsWith('| hf |'));
    assert.equal(rows.length, 4, r.stdout); // ctx 16 and the cap 507 (512 - 2 decoded - 3 spare), tessera + llama.cpp each
    assert.match(rows[0], /^\| hf \| f32 \| 16 \| tessera \| 1 \| \d/);
    assert.match(rows[1], /^\| hf \| f32 \| 16 \| llama\.cpp \| 1 \| not measured: llama\.cpp reads \.gguf files only/);
    assert.match(rows[2], /^\| hf \| f32 \| 507 \| tessera \|/);
    assert.match(r.stderr, /prompt lengths capped at 507/);
    assert.ok(!existsSync(join(dir, 'never-written')), 'a --model run writes no bench files');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bench --rounds refuses, before measuring anything, a model llama.cpp cannot read', () => {
  const r = tessera('bench', '--model', 'models/default', '--rounds', '3');
  assert.equal(r.code, 1);
  assert.match(r.stderr, /--rounds alternates Tessera with llama\.cpp, which reads \.gguf files only: models\/default/);
  assert.equal(r.stdout, '');
});

test('generate without --max-tokens fits the default to the context the prompt leaves; an explicit value too large is the context error', () => {
  // models/default at --ctx 32: the default of 256 would not fit
  const r = tessera('generate', '--model', 'models/default', '--ctx', '32', '--prompt', 'The Congress', '--temperature', '0', '--ignore-eos', '--json', '--threads', '1');
  assert.equal(r.code, 0, r.stderr);
  const o = JSON.parse(r.stdout) as { tokens: number[]; prompt_tokens: number; finish_reason: string };
  assert.equal(o.prompt_tokens + o.tokens.length, 32, 'generated up to the end of the context');
  assert.equal(o.finish_reason, 'length');
  const asked = tessera('generate', '--model', 'models/default', '--ctx', '32', '--prompt', 'The Congress', '--max-tokens', '40', '--threads', '1');
  assert.equal(asked.code, 1);
  assert.match(asked.stderr, /max tokens \(40\) = \d+ exceeds the context length of 32 tokens/);
});

test('generate --json prints exactly one JSON object on stdout (tiny random checkpoint)', async () => {
  const { writeTestCheckpoint } = await import('../../src/testing/checkpoints.js');
  const dir = mkdtempSync(join(tmpdir(), 'tessera-cli-'));
  try {
    const ck = writeTestCheckpoint(dir, 'smollm2-tiny', { formats: ['hf'] });
    const r = tessera('generate', '--model', ck.hfDir!, '--prompt', 'Once upon a time', '--max-tokens', '5', '--temperature', '0', '--ignore-eos', '--json', '--threads', '1');
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 1);
    const o = JSON.parse(lines[0]) as Record<string, unknown>;
    assert.deepEqual(Object.keys(o).sort(), ['finish_reason', 'prompt_tokens', 'text', 'timings', 'tokens']);
    assert.equal((o.tokens as number[]).length, 5);
    assert.equal(o.finish_reason, 'length');
    assert.ok((o.prompt_tokens as number) > 0);
    // greedy is deterministic: streaming mode prints the same text
    const streamed = tessera('generate', '--model', ck.hfDir!, '--prompt', 'Once upon a time', '--max-tokens', '5', '--temperature', '0', '--ignore-eos', '--threads', '1');
    assert.equal(streamed.code, 0, streamed.stderr);
    // the text ends its line, so piped output does not run into what follows
    assert.equal(streamed.stdout, `${o.text as string}\n`);
    assert.match(streamed.stderr, /finish: length/);
    // stderr is a pipe: the loading progress is two lines (start, end), not one per update
    assert.deepEqual(streamed.stderr.split('\n').filter((l) => l.startsWith('loading')).map((l) => l.replace(/\d+/, 'N')), ['loading: N MiB', 'loading: done']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('generate --speculate … --json: the tokens of plain greedy, and the speculative timings consistent with each other', () => {
  // a prompt that repeats itself: prompt lookup finds n-grams to draft from
  const prompt = 'the state of the union is strong. the state of the union is strong. the state of the union is';
  const args = ['generate', '--model', 'models/default', '--prompt', prompt, '--max-tokens', '24', '--temperature', '0', '--ignore-eos', '--json', '--threads', '1'];
  const plain = tessera(...args);
  assert.equal(plain.code, 0, plain.stderr);
  const p = JSON.parse(plain.stdout) as { tokens: number[]; timings: Record<string, unknown> };
  assert.equal(p.timings.speculative, undefined, 'no speculative timings without --speculate');
  const r = tessera(...args, '--speculate', 'draft=prompt-lookup,gamma=4');
  assert.equal(r.code, 0, r.stderr);
  const o = JSON.parse(r.stdout) as { tokens: number[]; timings: { speculative: {
    steps: number; drafted: number; accepted: number; acceptance_rate: number; mean_accepted_length: number;
    per_position_acceptance: number[]; accepted_per_position: number[] } } };
  assert.deepEqual(o.tokens, p.tokens, 'greedy speculation is token-identical to plain greedy');
  const s = o.timings.speculative;
  assert.ok(s.steps > 0 && s.drafted > 0, `it drafted (${JSON.stringify(s)})`);
  assert.ok(s.accepted <= s.drafted && s.drafted <= 4 * s.steps);
  assert.equal(s.acceptance_rate, s.accepted / s.drafted);
  assert.equal(s.mean_accepted_length, 1 + s.accepted / s.steps);
  assert.ok(s.accepted_per_position.length <= 4);
  assert.equal(s.accepted_per_position.reduce((a, b) => a + b, 0), s.accepted, 'per-position counts add up to the accepted tokens');
  assert.deepEqual(s.per_position_acceptance, s.accepted_per_position.map((n) => n / s.steps));
  for (let j = 1; j < s.accepted_per_position.length; j++) assert.ok(s.accepted_per_position[j]! <= s.accepted_per_position[j - 1]!, 'never rises with the position');
});

test('chat reads piped lines; SIGINT stops the current reply, not the process; """ makes one message of many lines; unknown /commands are refused; /exit quits', async () => {
  const { writeTestCheckpoint } = await import('../../src/testing/checkpoints.js');
  const { spawn } = await import('node:child_process');
  const dir = mkdtempSync(join(tmpdir(), 'tessera-chat-'));
  try {
    const ck = writeTestCheckpoint(dir, 'smollm2-tiny', { formats: ['hf'] });
    // greedy on this checkpoint never emits eos: the reply would run to the end of the 512-token context
    const p = spawn(process.execPath, [MAIN, 'chat', '--model', ck.hfDir!, '--temperature', '0', '--threads', '1', '--stats'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '', err = '';
    p.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    p.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    p.stdin.write('Tell me a long story\n');
    await new Promise<void>((resolve) => { const iv = setInterval(() => { if (out.length > 0) { clearInterval(iv); resolve(); } }, 2); });
    p.kill('SIGINT');
    await new Promise((r) => setTimeout(r, 100));
    p.stdin.write('/reset\n/save notes.txt\n"""\nsecond question,\n\non three lines\n"""\n/exit\nnever read\n');
    p.stdin.end();
    const code = await new Promise<number | null>((resolve) => p.on('exit', resolve));
    assert.equal(code, 0, err);
    assert.match(err, /\(reply stopped\)/);
    assert.match(err, /\(conversation cleared\)/);
    const stats = err.split('\n').filter((l) => l.startsWith('prompt: '));
    // the stopped reply and the second question; not the unknown command, not a turn per line, nothing after /exit
    assert.equal(stats.length, 2, err);
    assert.match(stats[0], /finish: abort/);
    assert.match(err, /unknown command \/save notes\.txt; the commands are \/help, \/reset, \/exit/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('tessera chat --model models/default (the README example): piped messages get replies that end by themselves', () => {
  const r = spawnSync(process.execPath, [MAIN, 'chat', '--model', join(ROOT, 'models/default'), '--seed', '1', '--stats', '--threads', '1'],
    { encoding: 'utf8', timeout: 120_000, input: 'Tell me about the railroads.\nHello\n' });
  assert.equal(r.status, 0, r.stderr);
  const stats = r.stderr.split('\n').filter((l) => l.startsWith('prompt: '));
  assert.equal(stats.length, 2, r.stderr);
  // seeded, so fixed: both replies end at the model's end-of-turn token, well within the 512-token bound
  for (const line of stats) assert.match(line, /generated: \d+ tokens .*finish: eos/, line);
  assert.equal(r.stdout.trim().split('\n').length, 2, r.stdout);
});

test('chat --stop ends each reply before the stop text, as generate --stop does (the README lists it among the sampling flags)', () => {
  const r = spawnSync(process.execPath, [MAIN, 'chat', '--model', join(ROOT, 'models/default'), '--temperature', '0', '--stop', 'United', '--stats', '--threads', '1'],
    { encoding: 'utf8', timeout: 120_000, input: 'Tell me about the railroads.\nHello\n' });
  assert.equal(r.status, 0, r.stderr);
  // greedy, this model's reply to both begins "They of the United States, …" (without --stop it runs to the 512-token bound)
  assert.deepEqual(r.stdout.split('\n').map((l) => l.trim()).filter((l) => l.length > 0), ['They of the', 'They of the'], r.stdout);
  const stats = r.stderr.split('\n').filter((l) => l.startsWith('prompt: '));
  assert.equal(stats.length, 2, r.stderr);
  for (const line of stats) assert.match(line, /finish: stop/, line);
});
