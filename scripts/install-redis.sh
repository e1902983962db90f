#!/usr/bin/env bash
# Installs redis-server, redis-cli and redis-sentinel from Debian's packages when any is not on
# PATH; the Redis backend's tests start their own redis-server processes from it, the Cluster
# fixture creates and administers its cluster with redis-cli, and the Sentinel fixture starts
# redis-sentinel processes.
set -euo pipefail

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
command -v redis-sentinel >/dev/null 2>&1 || missing+=(redis-sentinel)
if [ ${#missing[@]} -eq 0 ]; then
  echo "redis-server, redis-cli and redis-sentinel already installed: $(redis-server --version)"
  exit 0
fi

# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
can_apt_install || cannot_install redis-server "${missing[*]}"

apt_install "${missing[@]}"
echo "installed ${missing[*]}: $(redis-server --version)"
