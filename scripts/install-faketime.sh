#!/usr/bin/env bash
# Installs libfaketime from Debian's packages when it is missing: the tester's clock faults
# (`--clock-faults`) run contender processes under it, with wall clocks stepped and clocks
# running fast or slow. Where it cannot be installed (not root, no apt-get) the clock-fault
# tests say why and pass, so this never fails the run.
set -euo pipefail

if ls /usr/lib/*/faketime/libfaketime.so.1 >/dev/null 2>&1; then
  echo "libfaketime already installed: $(ls /usr/lib/*/faketime/libfaketime.so.1)"
  exit 0
fi

# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
apt_install_or_skip libfaketime libfaketime
echo "installed libfaketime: $(ls /usr/lib/*/faketime/libfaketime.so.1)"
