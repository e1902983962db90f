#!/usr/bin/env bash
# Installs PgBouncer from Debian's packages when missing: the PostgreSQL backend's tests run
# elections through it in transaction mode. The tests start their own on a free port (as the
# `postgres` user when run as root); the package's own service is not used.
set -euo pipefail
if [ -x "${PGBOUNCER:-/usr/sbin/pgbouncer}" ] || command -v pgbouncer >/dev/null 2>&1; then
  exit 0
fi
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
if ! can_apt_install; then
  # No container stands in for PgBouncer: the pooler test needs the program.
  echo "PgBouncer is missing and cannot be installed here (needs root and apt-get)." >&2
  echo "  on Debian or Ubuntu: sudo apt-get update && sudo apt-get install -y pgbouncer" >&2
  echo "  or set PGBOUNCER to the path of a pgbouncer binary." >&2
  [ -n "${PGBOUNCER:-}" ] && exit 0
  exit 1
fi
echo "installing pgbouncer from Debian's packages"
apt_install pgbouncer
[ -x /usr/sbin/pgbouncer ] || command -v pgbouncer >/dev/null
