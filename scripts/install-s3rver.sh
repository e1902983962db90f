#!/usr/bin/env bash
# Installs s3rver (an S3-compatible server that ignores conditional writes) from the npm
# registry into the project-local folder .tools/s3rver, for the leader-election-s3 test that
# such a store is refused. Does nothing when the pinned version is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

version=3.7.1
prefix=.tools/s3rver
if [ -x "$prefix/node_modules/.bin/s3rver" ] \
  && [ "$("$prefix/node_modules/.bin/s3rver" --version 2>/dev/null)" = "$version" ]; then
  echo "s3rver $version already installed in $prefix"
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "install-s3rver.sh: npm not found; install Node.js (>= 18) and npm first" >&2
  exit 1
fi
mkdir -p "$prefix"
npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error "s3rver@$version"
"$prefix/node_modules/.bin/s3rver" --version
