#!/usr/bin/env bash
# Installs ip (iproute2) and nft (nftables) from Debian's packages when either is not on PATH:
# the network-fault tests put contenders in network namespaces and drop their packets with
# nftables (leader-election-fixtures' `netns` feature). They need root; where they cannot run
# (not root, nothing installable) each says why and passes, so this never fails the run.
set -euo pipefail

missing=()
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v nft >/dev/null 2>&1 || missing+=(nftables)
if [ ${#missing[@]} -eq 0 ]; then
  echo "ip and nft already installed: $(nft -v)"
  exit 0
fi

# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
if ! can_apt_install; then
  echo "ip or nft is missing and cannot be installed here (needs root and apt-get):" >&2
  echo "  the network-fault tests will say so and pass without running." >&2
  echo "  on Debian or Ubuntu: sudo apt-get install -y ${missing[*]}" >&2
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "installed ${missing[*]}: $(nft -v)"
