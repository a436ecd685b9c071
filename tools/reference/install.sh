#!/usr/bin/env bash
# Installs the opt-in llama.cpp reference (node-llama-cpp, pinned in package-lock.json) into
# tools/reference/node_modules. Not part of the default install: it is ~700 MB (prebuilt llama.cpp
# binaries for every backend) and only make-fixtures.mjs / bench-llamacpp.mjs need it.
# Usage: tools/reference/install.sh        (from anywhere)
set -euo pipefail
cd "$(dirname "$0")"
start=$(date +%s)
# --ignore-scripts: node-llama-cpp's postinstall only tries to download/build a binary when no
# prebuilt one fits; the prebuilt CPU binary (@node-llama-cpp/linux-x64 etc.) is what we use.
npm ci --no-audit --no-fund --ignore-scripts
end=$(date +%s)
size=$(du -sh node_modules | cut -f1)
echo "tools/reference: installed node-llama-cpp $(node -p "require('./node_modules/node-llama-cpp/package.json').version") in $((end - start)) s, node_modules = $size"
# Smoke check: load the prebuilt CPU binary without building anything.
node check.mjs
