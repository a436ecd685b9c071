import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UsageError, formatHelp, parseFlags, type FlagSpecs } from '../../src/cli/args.js';

const SPECS: FlagSpecs = {
  model: { type: 'string', required: true, placeholder: 'PATH', description: 'model', short: 'm' },
  'max-tokens': { type: 'integer', min: 1, default: 16, description: 'n' },
  temperature: { type: 'number', min: 0, description: 't' },
  'top-p': { type: 'number', min: 0, exclusiveMin: true, max: 1, description: 'p' },
  quantize: { type: 'string', choices: ['q8_0'], description: 'q' },
  stop: { type: 'string', multiple: true, description: 's' },
  json: { type: 'boolean', description: 'j' },
  help: { type: 'boolean', description: 'h', short: 'h' },
};

test('flags parse in all their forms, with defaults', () => {
  const v = parseFlags(['-m', 'x', '--temperature=0.5', '--stop', 'a', '--stop=b', '--json', '--top-p', '1'], SPECS, 'cmd');
  assert.deepEqual(v, { model: 'x', temperature: 0.5, stop: ['a', 'b'], json: true, 'top-p': 1, 'max-tokens': 16 });
  assert.equal(parseFlags(['--model', 'x', '--no-json'], SPECS, 'cmd').json, false);
  assert.equal(parseFlags(['--model', 'x', '--temperature', '-0'], SPECS, 'cmd').temperature, -0);
  assert.deepEqual(parseFlags(['--model', 'x', '--stop', '-'], SPECS, 'cmd').stop, ['-']);
  assert.deepEqual(parseFlags(['--help'], SPECS, 'cmd'), { help: true }); // no "missing --model" with --help
});

test('every mistake is a UsageError naming the flag', () => {
  const cases: [string[], RegExp][] = [
    [['--model', 'x', '--bogus'], /unknown option --bogus/],
    [['--model', 'x', '-z'], /unknown option -z/],
    [['--model', 'x', 'stray'], /unexpected argument 'stray'/],
    [['--model'], /--model needs a value/],
    [['--model', '--json'], /--model needs a value/],
    [['--model', 'x', '--max-tokens', 'abc'], /--max-tokens expects an integer, got 'abc'/],
    [['--model', 'x', '--max-tokens', '1.5'], /--max-tokens expects an integer/],
    [['--model', 'x', '--max-tokens', '0'], /--max-tokens must be an integer ≥ 1, got 0/],
    [['--model', 'x', '--max-tokens', ''], /--max-tokens expects an integer/],
    [['--model', 'x', '--temperature', '-1'], /--temperature must be a number ≥ 0/],
    [['--model', 'x', '--temperature', 'NaN'], /--temperature expects a number/],
    [['--model', 'x', '--top-p', '0'], /--top-p must be a number > 0 and ≤ 1/],
    [['--model', 'x', '--quantize', 'q4'], /--quantize must be one of q8_0, got 'q4'/],
    [['--model', 'x', '--json=maybe'], /--json takes no value/],
    [['--json'], /missing required option --model PATH/],
  ];
  for (const [argv, re] of cases) {
    assert.throws(() => parseFlags(argv, SPECS, 'cmd'), (e: unknown) => e instanceof UsageError && re.test(e.message) && e.command === 'cmd', argv.join(' '));
  }
});

test('help lists every flag with its placeholder and default', () => {
  const h = formatHelp('cmd', 'Does things.', SPECS);
  assert.match(h, /^Usage: tessera cmd \[options\]/);
  for (const name of Object.keys(SPECS)) assert.ok(h.includes(`--${name}`), name);
  assert.match(h, /-m, --model PATH +model \(required\)/);
  assert.match(h, /--max-tokens N +n \(default 16\)/);
});

test('short flags take attached values, and a value may start with a dash unless it names an option', () => {
  const specs: FlagSpecs = { ...SPECS, prompt: { type: 'string', description: 'p', short: 'p' }, n: { type: 'integer', min: 1, description: 'n', short: 'n' } };
  const v = parseFlags(['-mx', '-n3', '-p', '-- text', '--stop', '--not-an-option'], specs, 'cmd');
  assert.equal(v.model, 'x');
  assert.equal(v.n, 3);
  assert.equal(v.prompt, '-- text');
  assert.deepEqual(v.stop, ['--not-an-option']);
  for (const [argv, re] of [
    [['-m', 'x', '-p', '-n', '3'], /--prompt needs a value/],          // -n is an option of this command
    [['-m', 'x', '-p', '--json'], /--prompt needs a value/],
    [['-m', 'x', '-n0'], /--n must be an integer ≥ 1, got 0/],
    [['-m', 'x', '-hx'], /-h takes no value/],
  ] as [string[], RegExp][]) {
    assert.throws(() => parseFlags(argv, specs, 'cmd'), (e: unknown) => e instanceof UsageError && re.test(e.message), argv.join(' '));
  }
});

test('list flags split on commas and check every item; quoted input is cut short in messages', () => {
  const specs: FlagSpecs = {
    ctx: { type: 'integer', list: true, min: 1, default: '512,4096', description: 'c' },
    dtypes: { type: 'string', list: true, choices: ['f32', 'q8_0'], description: 'd' },
  };
  assert.deepEqual(parseFlags([], specs, 'cmd'), { ctx: [512, 4096] });
  assert.deepEqual(parseFlags(['--ctx', '8, 16', '--dtypes=q8_0'], specs, 'cmd'), { ctx: [8, 16], dtypes: ['q8_0'] });
  for (const [argv, re] of [
    [['--ctx', '8,,16'], /--ctx expects a comma-separated list without empty items/],
    [['--ctx', '8,0'], /--ctx must be an integer ≥ 1, got 0/],
    [['--dtypes', 'f32,q4'], /--dtypes must be one of f32, q8_0, got 'q4'/],
  ] as [string[], RegExp][]) {
    assert.throws(() => parseFlags(argv, specs, 'cmd'), (e: unknown) => e instanceof UsageError && re.test(e.message), argv.join(' '));
  }
  const long = 'x'.repeat(100_000);
  assert.throws(() => parseFlags(['--ctx', long], specs, 'cmd'), (e: unknown) => e instanceof UsageError && e.message.length < 200);
  assert.throws(() => parseFlags([long], specs, 'cmd'), (e: unknown) => e instanceof UsageError && e.message.length < 200);
});

test('help keeps one parenthesis per row', () => {
  const h = formatHelp('cmd', 'x', {
    queries: { type: 'integer', default: 16, description: 'positions measured (the last N)' },
    length: { type: 'integer', multiple: true, description: 'prompt length' },
  });
  assert.match(h, /positions measured \(the last N; default 16\)\n/);
  assert.match(h, /prompt length \(repeatable\)\n/);
});

test('a positional flag takes bare arguments: one, or several when it is multiple', () => {
  const one: FlagSpecs = { steps: { type: 'integer', min: 1, default: 5, positional: true, placeholder: 'N', description: 'n' }, json: { type: 'boolean', description: 'j' } };
  assert.deepEqual(parseFlags(['3'], one, 'cmd'), { steps: 3 });
  assert.deepEqual(parseFlags(['--json', '3'], one, 'cmd'), { json: true, steps: 3 });
  assert.deepEqual(parseFlags(['--steps', '4'], one, 'cmd'), { steps: 4 });
  assert.throws(() => parseFlags(['3', '4'], one, 'cmd'), (e: unknown) => e instanceof UsageError && /unexpected argument '4'/.test(e.message));
  assert.throws(() => parseFlags(['0'], one, 'cmd'), /--steps must be an integer ≥ 1, got 0/);
  assert.throws(() => parseFlags(['-x'], one, 'cmd'), /unknown option -x/);
  const many: FlagSpecs = { run: { type: 'string', multiple: true, positional: true, required: true, placeholder: 'DIR', description: 'r' }, out: { type: 'string', description: 'o' } };
  assert.deepEqual(parseFlags(['a', '--out', 'o', 'b', '--run=c'], many, 'cmd'), { run: ['a', 'b', 'c'], out: 'o' });
  assert.throws(() => parseFlags(['--out', 'o'], many, 'cmd'), /missing required option --run DIR/);
  const help = formatHelp('cmd', 'S.', many);
  assert.match(help, /^Usage: tessera cmd \[options\] \[DIR…\]$/m);
  assert.match(help, /--run DIR +r \(required, repeatable, also given bare\)/);
});
