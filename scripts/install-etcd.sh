#!/usr/bin/env bash
# Installs etcd (server) and etcdctl from Debian's packages when either is not on PATH; the etcd
# backend's tests start their own single member and three-member clusters from it, and administer
# them (member status, operator deletions) with etcdctl. Also installs protoc: the etcd-client
# crate generates its gRPC code at build time, so every build of the workspace needs it.
set -euo pipefail

missing=()
command -v etcd >/dev/null 2>&1 || missing+=(etcd-server)
command -v etcdctl >/dev/null 2>&1 || missing+=(etcd-client)
command -v protoc >/dev/null 2>&1 || missing+=(protobuf-compiler)
if [ ${#missing[@]} -eq 0 ]; then
  echo "etcd, etcdctl and protoc already installed: $(etcd --version | head -n 1), $(protoc --version)"
  exit 0
fi

# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
if ! can_apt_install; then
  # No container stands in: the etcd fixtures kill and restart members as local processes,
  # and the build itself needs protoc.
  echo "${missing[*]} missing and cannot be installed here (needs root and apt-get)." >&2
  echo "  on Debian or Ubuntu: sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi

apt_install "${missing[@]}"
# The Debian package starts a system etcd on 2379; the tests start their own members on free
# ports, and the tester's default endpoint should not silently reach a system member.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet etcd 2>/dev/null; then
  systemctl stop etcd || true
  systemctl disable etcd >/dev/null 2>&1 || true
fi
echo "installed ${missing[*]}: $(etcd --version | head -n 1), $(protoc --version)"
