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
apt_install_or_skip "ip or nft" "${missing[@]}"
echo "installed ${missing[*]}: $(nft -v)"
