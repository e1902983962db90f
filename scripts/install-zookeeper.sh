#!/usr/bin/env bash
# Installs Apache ZooKeeper's server (its jars, run with `java`) from Debian's `zookeeper`
# package when missing. The tests start their own throw-away servers on free ports; nothing
# here starts one.
set -euo pipefail
if [ -e /usr/share/java/zookeeper.jar ] && command -v java >/dev/null 2>&1; then
  exit 0
fi
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
can_apt_install || cannot_install "ZooKeeper (its server jars and java)" zookeeper
echo "installing zookeeper from Debian's packages"
# The package's scripts would start a server of their own where a service manager runs: none is
# wanted here.
if [ -d /usr/sbin ] && [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt_install zookeeper
[ -e /usr/share/java/zookeeper.jar ]
