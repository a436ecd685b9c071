// Loading: progress, cancellation, memory reporting and the errors a user sees for broken checkpoints.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, readFileSync, writeFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeTestCheckpoint } from '../../src/testing/checkpoints.js';
import { loadModel, describeModel } from '../../src/models/load.js';
import { openSafetensors } from '../../src/formats/safetensors.js';
import type { LlamaConfig } from '../../src/models/config.js';
import { writeSafetensors, type TensorToWrite } from '../../src/formats/safetensors-writer.js';

const dir = mkdtempSync(join(tmpdir(), 'tessera-load-'));
const ck = writeTestCheckpoint(join(dir, 'base'), 'llama3-tiny', { formats: ['hf', 'gguf-q8_0'] });
test.after(() => rmSync(dir, { recursive: true, force: true }));

/** A copy of the HF folder whose tensors went through `edit`. */
function editedFolder(name: string, edit: (ts: TensorToWrite[]) => TensorToWrite[]): string {
  const out = join(dir, name);
  cpSync(ck.hfDir!, out, { recursive: true });
  const src = openSafetensors(join(ck.hfDir!, 'model.safetensors'));
  const tensors: TensorToWrite[] = [...src.tensors.values()].map((e) => {
    const data = new Uint8Array(e.byteLength);
    src.read(e, data);
    return { name: e.name, dtype: 'F32', shape: e.shape, data };
  });
  src.close();
  writeSafetensors(join(out, 'model.safetensors'), edit(tensors));
  return out;
}

test('progress is reported up to the total and ends with ready', async () => {
  const seen: { stage: string; loaded: number; total: number }[] = [];
  const { model } = await loadModel(ck.hfDir!, { threads: 1, onProgress: (p) => seen.push({ stage: p.stage, loaded: p.loadedBytes, total: p.totalBytes }) });
  model.dispose();
  assert.ok(seen.length > 5);
  for (let i = 1; i < seen.length; i++) assert.ok(seen[i].loaded >= seen[i - 1].loaded, 'monotonic');
  const last = seen[seen.length - 1];
  assert.equal(last.stage, 'ready');
  assert.equal(last.loaded, last.total);
});

test('an AbortSignal cancels loading with an AbortError', async () => {
  const ac = new AbortController();
  let calls = 0;
  await assert.rejects(loadModel(ck.hfDir!, { threads: 2, signal: ac.signal, onProgress: () => { if (++calls === 3) ac.abort(); } }),
    (e: Error) => e.name === 'AbortError');
  const pre = new AbortController();
  pre.abort();
  await assert.rejects(loadModel(ck.hfDir!, { signal: pre.signal }), (e: Error) => e.name === 'AbortError');
});

test('describeModel reports parameters, dtypes and memory without reading weights', () => {
  const f32 = describeModel(ck.hfDir!, { cacheDType: 'f32' });
  const q8 = describeModel(ck.gguf.q8_0);
  assert.equal(f32.format, 'safetensors');
  assert.equal(q8.format, 'gguf');
  assert.equal(f32.parameters, q8.parameters);
  const c = f32.config as LlamaConfig;
  const expected = c.vocab_size * c.hidden_size * (c.tie_word_embeddings ? 1 : 2) + c.hidden_size
    + c.num_hidden_layers * (2 * c.hidden_size + 3 * c.hidden_size * c.intermediate_size
      + c.hidden_size * 16 * (c.num_attention_heads * 2 + c.num_key_value_heads * 2));
  assert.equal(f32.parameters, expected);
  assert.deepEqual(f32.dtypes, { f32: 3 + 9 * c.num_hidden_layers });
  assert.ok(q8.weightBytes < f32.weightBytes / 3, 'q8_0 is about a quarter of f32');
  assert.equal(f32.kvBytesPerToken, 2 * c.num_key_value_heads * 16 * 4 * c.num_hidden_layers);
  assert.ok(f32.memoryNeeded(4096) - f32.memoryNeeded(1024) >= 3072 * f32.kvBytesPerToken);
  assert.ok(describeModel(ck.hfDir!, { quantize: 'q8_0' }).weightBytes < f32.weightBytes / 3);
  assert.ok(describeModel(ck.hfDir!, { cacheDType: 'f16' }).kvBytesPerToken === f32.kvBytesPerToken / 2);
  assert.equal(describeModel(ck.hfDir!).kvBytesPerToken, f32.kvBytesPerToken / 2, 'the KV cache is f16 unless asked');
});

test('broken checkpoints fail with errors that name the tensor and the problem', async () => {
  const missing = editedFolder('missing', (ts) => ts.filter((t) => t.name !== 'model.layers.1.mlp.up_proj.weight'));
  await assert.rejects(loadModel(missing), /tensor model\.layers\.1\.mlp\.up_proj\.weight is missing/);
  const misshapen = editedFolder('misshapen', (ts) => ts.map((t) => t.name === 'model.norm.weight'
    ? { ...t, shape: [t.shape[0] / 2, 2] } : t));
  await assert.rejects(loadModel(misshapen), /tensor model\.norm\.weight has shape \[32,2\], expected \[64\]/);
  const intTensor = editedFolder('int', (ts) => ts.map((t) => t.name === 'model.norm.weight' ? { ...t, dtype: 'I32' } : t));
  await assert.rejects(loadModel(intTensor), /model\.norm\.weight is stored as i32; Tessera loads f32, f16, bf16, q8_0, q4_0, q4_K, q5_K and q6_K/);
  const badConfig = join(dir, 'badconfig');
  cpSync(ck.hfDir!, badConfig, { recursive: true });
  const cfg = JSON.parse(readFileSync(join(badConfig, 'config.json'), 'utf8'));
  cfg.num_attention_heads = 5;
  writeFileSync(join(badConfig, 'config.json'), JSON.stringify(cfg));
  await assert.rejects(loadModel(badConfig), /num_attention_heads/);
  await assert.rejects(loadModel(join(dir, 'nowhere')), /no such file or folder; expected a Hugging Face model folder/);
  writeFileSync(join(dir, 'notgguf.bin'), 'hello');
  await assert.rejects(loadModel(join(dir, 'notgguf.bin')), /not a GGUF file/);
});

test('a GGUF tensor with an unknown name is refused with an error that names the file and the tensor', async () => {
  // Same length as blk.0.attn_q.weight, so only the name changes.
  const bytes = Buffer.from(readFileSync(ck.gguf.q8_0!));
  const at = bytes.indexOf('blk.0.attn_q.weight');
  assert.ok(at > 0);
  bytes.write('blk.0.attn_Q.weight', at);
  const path = join(dir, 'unknown-tensor.gguf');
  writeFileSync(path, bytes);
  await assert.rejects(loadModel(path), (e: Error) => e.message.startsWith(`${path}: tensor "blk.0.attn_Q.weight" has no Hugging Face equivalent`));
});

test('impossible options are refused before anything is allocated', async () => {
  await assert.rejects(loadModel(ck.hfDir!, { contextLength: 0 }), /contextLength must be a positive integer/);
  await assert.rejects(loadModel(ck.hfDir!, { prefillChunk: 1e6 }), /prefillChunk must be an integer/);
  // (f32 rows: with f16 ones this tiny model's largest context still fits one layer arena)
  await assert.rejects(loadModel(ck.hfDir!, { contextLength: 2 ** 24, cacheDType: 'f32' }), /more than one 4 GiB WebAssembly memory/);
  await assert.rejects(loadModel(ck.hfDir!, { contextLength: 2 ** 40 }), /contextLength 1099511627776 is more than the 16777216 tokens Tessera supports/);
  await assert.rejects(loadModel(ck.hfDir!, { attention: 'sparse' }), /unknown backend "sparse"/);
});

test('a sliding-window (Mistral v0.1) checkpoint loads up to its window and refuses a longer context', async () => {
  const swa = join(dir, 'swa');
  cpSync(ck.hfDir!, swa, { recursive: true });
  const cfg = JSON.parse(readFileSync(join(swa, 'config.json'), 'utf8'));
  writeFileSync(join(swa, 'config.json'), JSON.stringify({ ...cfg, model_type: 'mistral', architectures: ['MistralForCausalLM'], sliding_window: 48 }));
  // within the window full attention is the model's own computation: same logits as the Llama folder
  const tokens = Array.from({ length: 40 }, (_, i) => 3 + ((i * 7) % 90));
  const logits = async (path: string, contextLength?: number) => {
    const { model } = await loadModel(path, { threads: 1, ...(contextLength ? { contextLength } : {}) });
    try { return { capacity: model.contextLength, out: model.forward(tokens, model.createCache()).slice() }; } finally { model.dispose(); }
  };
  const a = await logits(swa), b = await logits(ck.hfDir!, 48);
  assert.equal(a.capacity, 48, 'the default context stops at the window');
  assert.deepEqual(a.out, b.out);
  await assert.rejects(loadModel(swa, { contextLength: 49 }), /sliding-window attention over 48 tokens.*contextLength ≤ 48/);
});

test('tokenizer: false loads a folder of token ids without a tokenizer.json; the same logits, and its tokenizer throws when used', async () => {
  const out = join(dir, 'ids-only');
  cpSync(ck.hfDir!, out, { recursive: true });
  rmSync(join(out, 'tokenizer.json'));
  await assert.rejects(loadModel(out, { kernels: 'reference', threads: 1, contextLength: 8 }), /no tokenizer\.json/);
  const ids = await loadModel(out, { kernels: 'reference', threads: 1, contextLength: 8, tokenizer: false });
  const full = await loadModel(ck.hfDir!, { kernels: 'reference', threads: 1, contextLength: 8 });
  const run = (m: typeof ids.model) => { const c = m.createCache(); try { return Array.from(m.forward([1, 2, 3], c, { phase: 'prefill' })); } finally { c.release(); } };
  assert.deepEqual(run(ids.model), run(full.model));
  assert.throws(() => ids.tokenizer.encode('a'), /loaded with tokenizer: false/);
  ids.model.dispose(); full.model.dispose();
});
