// Writes models/default: the model `npm start` runs. Until Tessera ships a trained model, this is a
// RANDOM-WEIGHT SmolLM2-shaped miniature (3 layers, hidden 96) with the small test tokenizer: it
// shows the engine working end to end, and its text is gibberish by construction.
//   npm run build && node dist/tools/make-default-model.js

import { cpSync, rmSync, writeFileSync, mkdtempSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { writeTestCheckpoint } from '../src/testing/checkpoints.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const out = join(repo, 'models/default');
const tmp = mkdtempSync(join(tmpdir(), 'tessera-default-'));
const ck = writeTestCheckpoint(tmp, 'smollm2-tiny', { formats: ['hf'], seed: 1 });
rmSync(out, { recursive: true, force: true });
cpSync(ck.hfDir!, out, { recursive: true });
rmSync(tmp, { recursive: true, force: true });
writeFileSync(join(out, 'README.md'), `# models/default — random weights

This is **not a trained model**. It is a SmolLM2-shaped miniature (llama architecture, ${ck.config.num_hidden_layers} layers,
hidden size ${ck.config.hidden_size}, ${ck.config.num_attention_heads} heads / ${ck.config.num_key_value_heads} KV heads, vocabulary ${ck.config.vocab_size}) with
seeded random weights and a small byte-level BPE tokenizer, written by \`node dist/tools/make-default-model.js\`.
\`npm start\` runs it so that a fresh checkout shows the whole engine (tokenizer, loader, kernels,
sampler, streaming) working without downloading anything. Its output is gibberish by construction.
`);
console.log(`wrote ${out}`);
