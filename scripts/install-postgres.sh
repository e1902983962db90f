#!/usr/bin/env bash
# Installs PostgreSQL's server programs (initdb, postgres) from Debian's packages when missing.
# The tests start their own throw-away server on a free port; nothing here starts one.
set -euo pipefail
if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1; then
  exit 0
fi
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
can_apt_install || cannot_install "PostgreSQL (initdb, postgres)" postgresql
echo "installing postgresql from Debian's packages"
apt_install postgresql
ls /usr/lib/postgresql/*/bin/initdb >/dev/null
