// Checkpoints that load but would compute something wrong: each row is a hostile or damaged file
// that used to load silently (NaN weights generating token 0 forever, metadata that shrinks the
// model, a tokenizer with no tokens) and must now be refused with an error naming the problem, or,
// where only the forward pass can tell (large but finite weights whose products overflow float32),
// stop generation with an error instead of sampling from NaN. The CLI rows check that such a run
// exits non-zero.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ggufVocabFor, presetConfig, writeTestCheckpoint } from '../../src/testing/checkpoints.js';
import { randomLlamaWeights } from '../../src/testing/random-model.js';
import { convertHfToGguf } from '../../src/formats/hf-to-gguf.js';
import { quantizeToQ4_0, quantizeToQ8_0 } from '../../src/formats/gguf-quantize.js';
import { loadModel, type LoadOptions } from '../../src/models/load.js';
import { generateText } from '../../src/generation/generate.js';
import { openGguf } from '../../src/formats/gguf.js';
import { writeGguf, type GgufTensorToWrite, type GgufWriteType } from '../../src/formats/gguf-writer.js';
import type { GgufType, GgufValue } from '../../src/formats/gguf.js';
import { openSafetensors } from '../../src/formats/safetensors.js';
import { writeSafetensors, type TensorToWrite } from '../../src/formats/safetensors-writer.js';
import { f32ToF16 } from '../../src/kernels/reference.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'tessera-wrong-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));
const ck = writeTestCheckpoint(join(dir, 'base'), 'smollm2-tiny', { formats: ['hf', 'gguf-f32', 'gguf-f16', 'gguf-q8_0'] });
let copies = 0;

/** A copy of a GGUF with metadata replaced (undefined deletes a key) and tensor bytes edited. */
function editedGguf(src: string, meta: Record<string, [GgufValue, GgufType] | undefined>, edit?: (name: string, bytes: Uint8Array) => void): string {
  const f = openGguf(src);
  const metadata = new Map<string, { type: GgufType; value: GgufValue }>();
  for (const [k, value] of f.metadata) if (k !== 'general.alignment') metadata.set(k, { type: f.metadataTypes.get(k)!, value });
  for (const [k, v] of Object.entries(meta)) {
    if (v === undefined) metadata.delete(k);
    else metadata.set(k, { value: v[0], type: v[1] });
  }
  const tensors: GgufTensorToWrite[] = [...f.tensors.values()].map((e) => {
    const data = new Uint8Array(e.byteLength);
    f.read(e, data);
    edit?.(e.name, data);
    return { name: e.name, ggmlType: e.ggmlType as GgufWriteType, shape: e.shape, data };
  });
  f.close();
  const out = join(dir, `edited-${copies++}.gguf`);
  writeGguf(out, metadata, tensors);
  return out;
}

/** A copy of the HF folder with config.json / tokenizer.json text and f32 tensors edited. */
function editedFolder(opts: { config?: (c: Record<string, unknown>) => void; tokenizer?: (text: string) => string; tensor?: (name: string, x: Float32Array) => void }): string {
  const out = join(dir, `folder-${copies++}`);
  cpSync(ck.hfDir!, out, { recursive: true });
  if (opts.config) {
    const c = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as Record<string, unknown>;
    opts.config(c);
    writeFileSync(join(out, 'config.json'), JSON.stringify(c));
  }
  if (opts.tokenizer) writeFileSync(join(out, 'tokenizer.json'), opts.tokenizer(readFileSync(join(out, 'tokenizer.json'), 'utf8')));
  if (opts.tensor) {
    const src = openSafetensors(join(ck.hfDir!, 'model.safetensors'));
    const tensors: TensorToWrite[] = [...src.tensors.values()].map((e) => {
      const x = new Float32Array(e.byteLength / 4);
      src.read(e, new Uint8Array(x.buffer));
      opts.tensor!(e.name, x);
      return { name: e.name, dtype: 'F32', shape: e.shape, data: new Uint8Array(x.buffer) };
    });
    src.close();
    writeSafetensors(join(out, 'model.safetensors'), tensors);
  }
  return out;
}

const f32At = (bytes: Uint8Array, i: number, v: number) => new DataView(bytes.buffer, bytes.byteOffset).setFloat32(4 * i, v, true);
const f16At = (bytes: Uint8Array, i: number, v: number) => new DataView(bytes.buffer, bytes.byteOffset).setUint16(2 * i, f32ToF16(v), true);
const L = 3; // smollm2-tiny's layers
const q8Path = () => ck.gguf.q8_0!;
const f32Path = () => ck.gguf.f32!;

interface Row { what: string; make: () => string; opts?: LoadOptions; error: RegExp }

const REFUSED_AT_LOAD: Row[] = [
  { what: 'HF f32 weight NaN', make: () => editedFolder({ tensor: (n, x) => { if (n === 'model.layers.1.mlp.up_proj.weight') x[77] = NaN; } }),
    error: /tensor model\.layers\.1\.mlp\.up_proj\.weight holds a non-finite value \(NaN at element 77\)/ },
  { what: 'HF f32 norm weight −Infinity', make: () => editedFolder({ tensor: (n, x) => { if (n === 'model.norm.weight') x[3] = -Infinity; } }),
    error: /tensor model\.norm\.weight holds a non-finite value \(-Infinity at element 3\)/ },
  { what: 'HF NaN quantised with quantize q8_0', make: () => editedFolder({ tensor: (n, x) => { if (n === 'model.layers.0.self_attn.q_proj.weight') x[5] = NaN; } }),
    opts: { quantize: 'q8_0' }, error: /self_attn\.q_proj\.weight holds a non-finite value \(NaN at element 5\)/ },
  { what: 'HF one weight of 3e38', make: () => editedFolder({ tensor: (n, x) => { if (n === 'model.embed_tokens.weight') x[12] = 3e38; } }),
    error: /tensor model\.embed_tokens\.weight holds a value too large for float32 arithmetic \(3\.000e\+38 at element 12; from 2\^64 on its square overflows\)/ },
  { what: 'GGUF f32 weight of −1e20', make: () => editedGguf(f32Path(), {}, (n, b) => { if (n === 'blk.1.attn_q.weight') f32At(b, 3, -1e20); }),
    error: /holds a value too large for float32 arithmetic \(-1\.000e\+20 at element 3;/ },
  { what: 'GGUF f32 embedding NaN', make: () => editedGguf(f32Path(), {}, (n, b) => { if (n === 'token_embd.weight') f32At(b, 1000, NaN); }),
    error: /tensor token_embd\.weight holds a non-finite value \(NaN at element 1000\)/ },
  { what: 'GGUF f16 Infinity', make: () => editedGguf(ck.gguf.f16!, {}, (n, b) => { if (n === 'blk.2.ffn_down.weight') f16At(b, 9, Infinity); }),
    error: /blk\.2\.ffn_down\.weight|mlp\.down_proj\.weight/ },
  { what: 'GGUF q8_0 block scale NaN', make: () => editedGguf(q8Path(), {}, (n, b) => { if (n === 'blk.0.attn_k.weight') { b[34] = 0xff; b[35] = 0x7f; } }),
    error: /non-finite value \(NaN at element 32\)/ },
  { what: 'GGUF rms_norm_eps −1', make: () => editedGguf(f32Path(), { 'llama.attention.layer_norm_rms_epsilon': [-1, 'f32'] }),
    error: /llama\.attention\.layer_norm_rms_epsilon = -1 must be a positive number/ },
  { what: 'GGUF rms_norm_eps NaN', make: () => editedGguf(f32Path(), { 'llama.attention.layer_norm_rms_epsilon': [NaN, 'f32'] }),
    error: /layer_norm_rms_epsilon = "NaN" \(f32\) must be a finite number/ },
  { what: 'GGUF rope.freq_base 0', make: () => editedGguf(f32Path(), { 'llama.rope.freq_base': [0, 'f32'] }),
    error: /llama\.rope\.freq_base = 0 must be a positive number/ },
  { what: 'GGUF linear rope factor −4', make: () => editedGguf(f32Path(), { 'llama.rope.scaling.type': ['linear', 'string'], 'llama.rope.scaling.factor': [-4, 'f32'] }),
    error: /llama\.rope\.scaling\.factor = -4 must be a positive number/ },
  { what: 'GGUF block_count 0', make: () => editedGguf(f32Path(), { 'llama.block_count': [0, 'u32'] }),
    error: /llama\.block_count = 0 must be a positive integer/ },
  { what: 'GGUF block_count below the layers in the file', make: () => editedGguf(f32Path(), { 'llama.block_count': [L - 1, 'u32'] }),
    error: new RegExp(`llama\\.block_count = ${L - 1}, but the file holds tensors for ${L} layers`) },
  { what: 'GGUF context_length 0', make: () => editedGguf(f32Path(), { 'llama.context_length': [0, 'u32'] }),
    error: /llama\.context_length = 0 must be a positive integer/ },
  { what: 'HF num_hidden_layers below the layers in the file', make: () => editedFolder({ config: (c) => { c.num_hidden_layers = L - 2; } }),
    error: new RegExp(`num_hidden_layers = ${L - 2}, but the file holds tensors for ${L} layers`) },
  { what: 'tokenizer.json with a second "model" key', make: () => editedFolder({ tokenizer: (t) => `${t.trimEnd().slice(0, -1)}, "model": {"type": "BPE", "vocab": {}, "merges": []}}` }),
    error: /duplicate key "model"/ },
  { what: 'tokenizer.json with an empty vocabulary', make: () => editedFolder({ tokenizer: (t) => {
    const j = JSON.parse(t) as { model: Record<string, unknown>; added_tokens: unknown[] };
    j.model.vocab = {}; j.model.merges = []; j.added_tokens = [];
    return JSON.stringify(j);
  } }), error: /model\.vocab is empty/ },
];

test('checkpoints that would compute a wrong model are refused at load, naming the problem', async () => {
  for (const row of REFUSED_AT_LOAD) {
    const path = row.make();
    await assert.rejects(loadModel(path, { threads: 1, contextLength: 64, ...row.opts }).then((m) => m.model.dispose()),
      (e: Error) => { assert.match(e.message, row.error, `${row.what}: ${e.message}`); return true; }, row.what);
  }
});

/** Weights below 2^64 whose products overflow: embeddings (tied to the output head) × 1e18, final norm 1e19. */
const overflowing = () => editedFolder({ tensor: (n, x) => {
  if (n === 'model.embed_tokens.weight') for (let i = 0; i < x.length; i++) x[i] *= 1e18;
  if (n === 'model.norm.weight') x.fill(1e19);
} });

test('a weight just under 2^64 loads (the bound is the square overflowing, not a guess)', async () => {
  const m = await loadModel(editedFolder({ tensor: (n, x) => { if (n === 'model.layers.0.mlp.up_proj.weight') x[0] = 1.8e19; } }), { threads: 1, contextLength: 64 });
  m.model.dispose();
});

test('finite weights whose products overflow load, but generation stops with an error, not token 0', async () => {
  const m = await loadModel(overflowing(), { threads: 1, contextLength: 64 });
  try {
    await assert.rejects(generateText(m.model, m.tokenizer, 'Once upon a time', { temperature: 0, maxTokens: 4 }),
      /the model's logit for token \d+ after \d+ tokens is (NaN|-?Infinity): its activations overflow float32/);
  } finally { m.model.dispose(); }
});

test('the CLI exits non-zero on them, with the message', () => {
  const overflow = overflowing();
  const huge = editedFolder({ tensor: (n, x) => { if (n === 'model.layers.2.mlp.down_proj.weight') x[7] = 3e38; } });
  const nan = editedFolder({ tensor: (n, x) => { if (n === 'model.embed_tokens.weight') x[40] = NaN; } });
  const rows: [string, string[], RegExp][] = [
    ['NaN weights, greedy', ['--model', nan, '--temperature', '0'], /non-finite value \(NaN at element 40\)/],
    ['NaN weights, --quantize q8_0', ['--model', nan, '--quantize', 'q8_0'], /non-finite value \(NaN at element 40\)/],
    ['one weight of 3e38', ['--model', huge, '--temperature', '0'], /down_proj\.weight holds a value too large for float32 arithmetic/],
    ['products overflow in the forward', ['--model', overflow, '--temperature', '0'], /activations overflow float32/],
  ];
  for (const [what, args, re] of rows) {
    const r = spawnSync(process.execPath, [MAIN, 'generate', ...args, '--prompt', 'Once', '--max-tokens', '3', '--threads', '1'],
      { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 1, `${what}: exit ${r.status}, ${r.stderr}`);
    assert.match(r.stderr, re, what);
    assert.equal(r.stdout, '', what);
  }
});

test('quantising NaN or ±Infinity is refused, not turned into numbers (converter and quantisers)', () => {
  const rows: [string, number, (x: Float32Array) => Uint8Array, RegExp][] = [
    ['q8_0, NaN', NaN, quantizeToQ8_0, /quantizeToQ8_0: value 33 is NaN; non-finite values cannot be quantised/],
    ['q8_0, Infinity', Infinity, quantizeToQ8_0, /quantizeToQ8_0: value 33 is Infinity/],
    ['q4_0, −Infinity', -Infinity, quantizeToQ4_0, /quantizeToQ4_0: value 33 is -Infinity/],
  ];
  for (const [what, v, quantize, re] of rows) {
    const x = new Float32Array(64).fill(0.5);
    x[33] = v;
    assert.throws(() => quantize(x), re, what);
  }
  const config = presetConfig('smollm2-tiny');
  const tensors = randomLlamaWeights(config, 1).map((t) => {
    if (t.name === 'model.layers.1.self_attn.v_proj.weight') t.data[40] = NaN;
    return { name: t.name, dtype: 'f32' as const, shape: t.shape, data: new Uint8Array(t.data.buffer) };
  });
  assert.throws(() => convertHfToGguf({ config, tensors, tokenizer: ggufVocabFor(config.vocab_size), outFile: join(dir, 'nan-q8.gguf'), outType: 'q8_0' }),
    /convertHfToGguf: tensor "model\.layers\.1\.self_attn\.v_proj\.weight": quantizeToQ8_0: value 40 is NaN/);
});
