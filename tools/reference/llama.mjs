// Shared by the reference scripts: loads node-llama-cpp's prebuilt CPU build of llama.cpp.
// Threads are always explicit (node-llama-cpp's default oversubscribes small machines), nothing is
// ever built from source, and the GPU is off so results are the CPU arithmetic Tessera is compared to.

import { readFileSync } from 'node:fs';

export async function loadLlama(threads) {
  let mod;
  try {
    mod = await import('node-llama-cpp');
  } catch (e) {
    throw new Error(`node-llama-cpp is not installed: run tools/reference/install.sh first (${e.message})`);
  }
  const llama = await mod.getLlama({ gpu: false, build: 'never', maxThreads: threads, logLevel: 'error' });
  return { mod, llama };
}

/** node-llama-cpp version and the llama.cpp release its prebuilt binary was built from. */
export function referenceVersion(llama) {
  const pkg = new URL('./node_modules/node-llama-cpp/package.json', import.meta.url);
  const version = JSON.parse(readFileSync(pkg, 'utf8')).version;
  return `node-llama-cpp ${version} (llama.cpp ${llama.llamaCppRelease.repo}@${llama.llamaCppRelease.release}, ${llama.buildType} CPU build)`;
}

/** Context options that make llama.cpp's arithmetic comparable with Tessera's f32 path:
 *  f32 KV cache (llama.cpp defaults to f16), no flash attention, one sequence. */
export function contextOptions(threads, contextSize, batchSize = Math.min(contextSize, 512)) {
  return {
    contextSize,
    batchSize,
    threads,
    sequences: 1,
    flashAttention: false,
    experimentalKvCacheKeyType: 'F32',
    experimentalKvCacheValueType: 'F32',
    ignoreMemorySafetyChecks: true,
  };
}
