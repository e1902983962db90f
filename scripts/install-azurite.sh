#!/usr/bin/env bash
# Installs Azurite (the Azure Storage emulator) from the npm registry into the project-local
# folder .tools/azurite, for the leader-election-blob tests. Does nothing when already there.
set -euo pipefail
cd "$(dirname "$0")/.."

prefix=.tools/azurite
if [ -x "$prefix/node_modules/.bin/azurite-blob" ]; then
  echo "azurite already installed in $prefix"
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "install-azurite.sh: npm not found; install Node.js (>= 18) and npm first" >&2
  if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    echo "  Docker is available: the tests will start Azurite in a container instead." >&2
    exit 0
  fi
  exit 1
fi
mkdir -p "$prefix"
npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error azurite@3
"$prefix/node_modules/.bin/azurite-blob" --version
