// Hugging Face model folders: single-file and sharded weights, side files, and a hostile
// model.safetensors.index.json (missing shards, paths leaving the folder, tensors in two shards).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, unlinkSync, writeFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FormatError } from '../../src/formats/errors.js';
import { openHfFolder, openShardedSafetensors } from '../../src/formats/hf-folder.js';
import { writeSafetensors, writeShardedSafetensors, type TensorToWrite } from '../../src/formats/safetensors-writer.js';

const root = mkdtempSync(join(tmpdir(), 'tessera-hf-'));
process.on('exit', () => rmSync(root, { recursive: true, force: true }));
let counter = 0;
const fresh = (): string => { const d = join(root, `m${counter++}`); mkdirSync(d); return d; };

const CONFIG = '{"model_type":"llama","vocab_size":8,"hidden_size":4,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":2,"max_position_embeddings":16}';
const f32 = (name: string, values: number[]): TensorToWrite => ({ name, dtype: 'F32', shape: [values.length], data: new Uint8Array(new Float32Array(values).buffer) });

function readF32(src: ReturnType<typeof openHfFolder>['source'], name: string): number[] {
  const e = src.tensors.get(name);
  assert.ok(e, `tensor ${name} missing`);
  const buf = new Uint8Array(e.byteLength);
  src.read(e, buf);
  return [...new Float32Array(buf.buffer)];
}

function rejects(f: () => unknown, re: RegExp): void {
  assert.throws(f, (e: unknown) => {
    assert.ok(e instanceof FormatError, `expected FormatError, got ${String(e)}`);
    assert.match(e.message, re);
    return true;
  });
}

test('single-file folder with all side files', () => {
  const d = fresh();
  writeFileSync(join(d, 'config.json'), CONFIG);
  writeFileSync(join(d, 'generation_config.json'), '{"temperature":0.6,"eos_token_id":[1,2]}');
  writeFileSync(join(d, 'tokenizer.json'), '{}');
  writeFileSync(join(d, 'tokenizer_config.json'), '{"chat_template":"{{ messages }}"}');
  writeSafetensors(join(d, 'model.safetensors'), [f32('w', [1, 2, 3]), f32('b', [4])]);
  const m = openHfFolder(d);
  assert.deepEqual(m.config, JSON.parse(CONFIG));
  assert.deepEqual(m.generationConfig, { temperature: 0.6, eos_token_id: [1, 2] });
  assert.equal(m.tokenizerJsonPath, join(d, 'tokenizer.json'));
  assert.deepEqual(m.tokenizerConfig, { chat_template: '{{ messages }}' });
  assert.deepEqual(readF32(m.source, 'w'), [1, 2, 3]);
  assert.deepEqual(readF32(m.source, 'b'), [4]);
  m.source.close();
});

test('sharded folder: tensors from every shard, optional side files absent', () => {
  const d = fresh();
  writeFileSync(join(d, 'config.json'), CONFIG);
  writeShardedSafetensors(d, [f32('a', [1, 2]), f32('b', [3, 4]), f32('c', [5])], 8);
  const m = openHfFolder(d);
  assert.deepEqual([...m.source.tensors.keys()].sort(), ['a', 'b', 'c']);
  assert.deepEqual(readF32(m.source, 'b'), [3, 4]);
  assert.deepEqual(readF32(m.source, 'c'), [5]);
  assert.equal(m.generationConfig, undefined);
  assert.equal(m.tokenizerJsonPath, undefined);
  m.source.close();
});

test('shards reached through symlinks (the Hugging Face cache layout) are accepted', () => {
  const d = fresh();
  const blobs = join(root, `blobs${counter++}`);
  mkdirSync(blobs);
  writeFileSync(join(d, 'config.json'), CONFIG);
  writeShardedSafetensors(d, [f32('a', [1]), f32('b', [2])], 4);
  for (const f of ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']) {
    renameSync(join(d, f), join(blobs, f));
    symlinkSync(join('..', blobs.slice(root.length + 1), f), join(d, f));
  }
  const m = openHfFolder(d);
  assert.deepEqual(readF32(m.source, 'b'), [2]);
  m.source.close();
});

test('missing folder, config.json or weights give clear errors', () => {
  rejects(() => openHfFolder(join(root, 'absent')), /absent: not a directory; expected a Hugging Face model folder/);
  const d = fresh();
  rejects(() => openHfFolder(d), /no config\.json in .*; expected a Hugging Face model folder/);
  writeFileSync(join(d, 'config.json'), CONFIG);
  rejects(() => openHfFolder(d), /: no model\.safetensors or model\.safetensors\.index\.json in .*m\d+; expected a Hugging Face model folder/);
  writeFileSync(join(d, 'config.json'), '{"a":1,"a":2}');
  writeSafetensors(join(d, 'model.safetensors'), [f32('w', [1])]);
  rejects(() => openHfFolder(d), /config\.json: duplicate key "a"/);
  writeFileSync(join(d, 'config.json'), CONFIG);
  writeFileSync(join(d, 'tokenizer_config.json'), '{"x":');
  rejects(() => openHfFolder(d), /tokenizer_config\.json: invalid JSON/);
});

/** A folder with shard files s1 (a, b) and s2 (c), and an index given as raw text. */
function shardedFolder(index: string, s2: TensorToWrite[] = [f32('c', [5])]): string {
  const d = fresh();
  writeFileSync(join(d, 'config.json'), CONFIG);
  writeSafetensors(join(d, 's1.safetensors'), [f32('a', [1]), f32('b', [2])]);
  writeSafetensors(join(d, 's2.safetensors'), s2);
  writeFileSync(join(d, 'model.safetensors.index.json'), index);
  return d;
}
const wm = (m: Record<string, string>): string => JSON.stringify({ metadata: { total_size: 12 }, weight_map: m });
const OK = { a: 's1.safetensors', b: 's1.safetensors', c: 's2.safetensors' };

test('a consistent hand-written index opens', () => {
  const m = openHfFolder(shardedFolder(wm(OK)));
  assert.deepEqual(readF32(m.source, 'c'), [5]);
  m.source.close();
});

const indexRows: [string, string, RegExp, TensorToWrite[]?][] = [
  ['index not an object', '[1]', /must be a JSON object with a weight_map/],
  ['weight_map missing', '{"metadata":{}}', /weight_map is missing or not an object/],
  ['weight_map empty', '{"weight_map":{}}', /weight_map is empty/],
  ['weight_map value not a string', '{"weight_map":{"a":1}}', /weight_map\["a"\] must be a file name string/],
  ['duplicate tensor in weight_map', '{"weight_map":{"a":"s1.safetensors","a":"s2.safetensors"}}', /duplicate key "a"/],
  ['missing shard', wm({ ...OK, c: 's3.safetensors' }), /shard file "s3\.safetensors" does not exist in/],
  ['path traversal with ..', wm({ ...OK, c: '../s2.safetensors' }), /shard file "\.\.\/s2\.safetensors" contains '\.\.'; shard files must stay inside the model folder/],
  ['.. in the middle', wm({ ...OK, c: 'x/../../s2.safetensors' }), /contains '\.\.'/],
  ['absolute path', wm({ ...OK, c: '/etc/passwd' }), /shard file "\/etc\/passwd" is an absolute or non-portable path/],
  ['backslash path', wm({ ...OK, c: '..\\s2.safetensors' }), /is an absolute or non-portable path/],
  ['drive letter', wm({ ...OK, c: 'C:s2.safetensors' }), /is an absolute or non-portable path/],
  ['empty file name', wm({ ...OK, c: '' }), /shard file "" is not a valid file name/],
  ['the folder itself', wm({ ...OK, c: '.' }), /resolves outside the model folder/],
  ['mapped tensor not in its shard', wm({ ...OK, c: 's1.safetensors' }), /weight_map maps tensor "c" to s1\.safetensors, which does not contain it|tensor "c" in shard s2/],
  ['tensor in two shards', wm(OK), /tensor "a" is in two shards: s1\.safetensors and s2\.safetensors/, [f32('a', [9]), f32('c', [5])]],
  ['tensor in a shard but not in weight_map', wm(OK), /tensor "z" in shard s2\.safetensors is not mapped to that shard by weight_map/, [f32('c', [5]), f32('z', [0])]],
  ['mapped tensor absent everywhere', wm({ ...OK, q: 's2.safetensors' }), /weight_map maps tensor "q" to s2\.safetensors, which does not contain it/],
];

for (const [what, index, re, s2] of indexRows) {
  test(`index rejects: ${what}`, () => {
    const d = shardedFolder(index, s2);
    rejects(() => openHfFolder(d), re);
    rejects(() => openShardedSafetensors(join(d, 'model.safetensors.index.json')), re);
  });
}

test('a malformed shard is reported with the shard file name', () => {
  const d = shardedFolder(wm(OK));
  writeFileSync(join(d, 's2.safetensors'), new Uint8Array([200, 0, 0, 0, 0, 0, 0, 0, 123]));
  rejects(() => openHfFolder(d), /s2\.safetensors: header length 200 runs past the end of the file/);
  unlinkSync(join(d, 's2.safetensors'));
  mkdirSync(join(d, 's2.safetensors'));
  rejects(() => openHfFolder(d), /s2\.safetensors/);
});

test('failed opens and close() release every shard file handle', { skip: !existsSync('/proc/self/fd') }, () => {
  const fds = (): number => readdirSync('/proc/self/fd').length;
  const bad = shardedFolder(wm(OK), [f32('a', [9]), f32('c', [5])]); // fails after both shards are open
  const good = shardedFolder(wm(OK));
  const before = fds();
  for (let i = 0; i < 20; i++) {
    rejects(() => openHfFolder(bad), /is in two shards/);
    openHfFolder(good).source.close();
  }
  assert.equal(fds(), before);
});
