// Smoke check run by install.sh: the prebuilt llama.cpp binary loads without building anything.
import { loadLlama, referenceVersion } from './llama.mjs';

const { llama } = await loadLlama(2);
console.log(`tools/reference: llama.cpp binary OK: ${referenceVersion(llama)}`);
await llama.dispose();
