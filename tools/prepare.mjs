// `npm ci` / `npm install` in this folder, and installing this folder into another project
// (`npm install /path/to/tessera`), run this: it builds dist/ (kernels + TypeScript). In the second
// case npm installs Tessera's dependencies but not its devDependencies — the compilers — so they are
// installed here first, at the lockfile's versions, without touching the other project.

import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const hasCompilers = () => ['assemblyscript', 'typescript'].every((p) => existsSync(join(root, 'node_modules', p, 'package.json')));

function run(args) {
  const r = spawnSync(npm, args, { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' });
  if (r.status !== 0) {
    process.stderr.write(`tessera prepare: 'npm ${args.join(' ')}' failed in ${root}; run it there by hand to see why, then install again\n`);
    process.exit(r.status ?? 1);
  }
}

if (!hasCompilers()) {
  process.stderr.write(`tessera prepare: ${root} has no build yet and no build tools: installing its devDependencies there (npm ci --include=dev) to build it\n`);
  // the outer install's choices of what to install, and where, must not steer this one
  for (const k of ['omit', 'include', 'production', 'only', 'dev', 'global', 'prefix', 'install_links', 'workspace', 'workspaces']) {
    for (const key of Object.keys(process.env)) if (key.toLowerCase() === `npm_config_${k}`) delete process.env[key];
  }
  run(['ci', '--include=dev', '--ignore-scripts', '--no-audit', '--no-fund']);
}
run(['run', 'build']);
