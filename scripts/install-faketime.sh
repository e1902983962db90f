#!/usr/bin/env bash
# Installs libfaketime from Debian's packages when it is missing: the tester's clock faults
# (`--clock-faults`) run contender processes under it, with wall clocks stepped and clocks
# running fast or slow. Where it cannot be installed (not root, no apt-get) the clock-fault
# tests say why and pass, so this never fails the run.
set -euo pipefail

# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
if ls /usr/lib/*/faketime/libfaketime.so.1 >/dev/null 2>&1; then
  echo "libfaketime already installed: $(ls /usr/lib/*/faketime/libfaketime.so.1)"
  exit 0
fi
if ! can_apt_install; then
  echo "libfaketime is missing and cannot be installed here (needs root and apt-get):" >&2
  echo "  the clock-fault tests will say so and pass without running." >&2
  echo "  on Debian or Ubuntu: sudo apt-get install -y libfaketime" >&2
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends libfaketime >/dev/null
echo "installed libfaketime: $(ls /usr/lib/*/faketime/libfaketime.so.1)"
