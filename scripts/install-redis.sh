#!/usr/bin/env bash
# Installs redis-server and redis-cli from Debian's packages when either is not on PATH; the
# Redis backend's tests start their own redis-server processes from it, and the Cluster
# fixture creates and administers its cluster with redis-cli.
set -euo pipefail

if command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1; then
  echo "redis-server already installed: $(redis-server --version)"
  exit 0
fi

# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
can_apt_install || cannot_install redis-server "redis-server redis-tools"

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends redis-server redis-tools >/dev/null
echo "installed: $(redis-server --version)"
