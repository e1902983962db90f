#!/usr/bin/env bash
# Installs redis-server from Debian's packages when it is not on PATH; the Redis backend's
# tests start their own redis-server processes from it.
set -euo pipefail

if command -v redis-server >/dev/null 2>&1; then
  echo "redis-server already installed: $(redis-server --version)"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-redis.sh: redis-server is missing and installing it needs root" >&2
  echo "  run: sudo apt-get update && sudo apt-get install -y redis-server" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends redis-server >/dev/null
echo "installed: $(redis-server --version)"
