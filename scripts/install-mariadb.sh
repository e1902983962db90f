#!/usr/bin/env bash
# Installs MariaDB's server programs (mariadb-install-db, mariadbd) from Debian's packages when
# missing. The tests start their own throw-away server on a free port; nothing here starts one.
set -euo pipefail
if command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ]; then
  exit 0
fi
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
can_apt_install || cannot_install "MariaDB (mariadb-install-db, mariadbd)" mariadb-server
echo "installing mariadb-server from Debian's packages"
# The package's scripts would start a server of their own where a service manager runs: none is
# wanted here.
if [ -d /usr/sbin ] && [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt_install mariadb-server
[ -x /usr/sbin/mariadbd ]
