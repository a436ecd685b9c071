// Runs file readers (or the CLI) on hostile input in a child process, so a reader that blocks at open
// or reads without end is stopped by the parent test's timeout and address-space limit instead of
// hanging or exhausting the test run. `hostile-child.js READER PATH [READER PATH …]` prints one line
// per pair, its error message (or "ok"), as each finishes; at exit it prints the process's peak
// resident memory on stderr. Run without arguments (as the test runner does), it does nothing.

import { fileURLToPath } from 'node:url';
import { openGguf } from '../../src/formats/gguf.js';
import { openSafetensors } from '../../src/formats/safetensors.js';
import { readJsonFile } from '../../src/formats/hf-folder.js';
import { loadHfTokenizer } from '../../src/tokenizer/hf-tokenizer.js';
import { openCheckpoint } from '../../src/models/checkpoint.js';

export const PEAK_MARK = 'hostile-child peak MiB:';

const READERS: Record<string, (path: string) => unknown> = {
  gguf: (p) => openGguf(p).close(),
  safetensors: (p) => openSafetensors(p).close(),
  'config.json': (p) => readJsonFile(p),
  'tokenizer.json': (p) => loadHfTokenizer({ tokenizerJson: p }),
  checkpoint: (p) => openCheckpoint(p).source.close(),
};

const [mode, ...args] = process.argv.slice(2);
if (mode !== undefined) {
  process.on('exit', () => process.stderr.write(`\n${PEAK_MARK} ${(process.resourceUsage().maxRSS / 1024).toFixed(0)}\n`));
  if (mode === 'cli') {
    const main = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
    process.argv = [process.argv[0]!, main, ...args];
    await import(main);
  } else {
    const pairs = [mode, ...args];
    for (let i = 0; i + 1 < pairs.length; i += 2) {
      const read = READERS[pairs[i]!];
      if (!read) throw new Error(`hostile-child: unknown reader ${pairs[i]}`);
      let line = 'ok';
      try { read(pairs[i + 1]!); } catch (e) { line = (e as Error).message.replace(/\n/g, ' '); }
      process.stdout.write(`${line}\n`);
    }
  }
}
