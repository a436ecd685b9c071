// What `npm pack` ships (and `npm install /path/to/tessera` links): both kernel builds the engine may
// pick at run time, the `tessera` command and its model, and no research scripts. Node 20 runs the
// relaxed-SIMD build, so a package without dist/kernels-relaxed.wasm failed every model command.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BUILD_FILES } from '../../src/kernels/wasm.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

test('npm pack ships both kernel builds, the command, its default model and no experiments', () => {
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const out = execFileSync(npm, ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const files = new Set((JSON.parse(out) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path));
  const kernelsDir = resolve(root, 'dist/src/kernels');
  for (const build of Object.values(BUILD_FILES)) {
    const path = relative(root, resolve(kernelsDir, build)).split('\\').join('/');
    assert.ok(files.has(path), `the package lacks ${path}`);
  }
  const pkg = JSON.parse(readFileSync(resolve(root, 'package.json'), 'utf8')) as { bin: Record<string, string>; main: string };
  for (const p of [...Object.values(pkg.bin), pkg.main]) assert.ok(files.has(p.replace(/^\.\//, '')), `the package lacks ${p}`);
  for (const p of ['models/default/config.json', 'models/default/tokenizer.json']) assert.ok(files.has(p), `the package lacks ${p}`);
  assert.deepEqual([...files].filter((p) => p.startsWith('dist/src/experiments/')), [], 'research scripts stay out of the package');
});
