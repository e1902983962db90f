#!/usr/bin/env bash
# Installs moto (a local S3 emulator whose server mode enforces conditional writes) from PyPI
# into the project-local virtual environment .tools/moto, for the leader-election-s3 tests.
# Does nothing when the pinned version is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

version=5.2.5
prefix=.tools/moto
if [ -x "$prefix/bin/moto_server" ] \
  && [ "$("$prefix/bin/python" -c 'import importlib.metadata as m; print(m.version("moto"))' 2>/dev/null)" = "$version" ]; then
  echo "moto $version already installed in $prefix"
  exit 0
fi
if ! command -v python3 >/dev/null 2>&1; then
  echo "install-moto.sh: python3 not found; install Python (>= 3.9) with venv and pip first" >&2
  echo "  on Debian or Ubuntu: sudo apt-get install -y python3 python3-venv" >&2
  if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    echo "  Docker is available: the tests will start MinIO in a container instead." >&2
    exit 0
  fi
  exit 1
fi
if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
  # Debian splits venv (and its ensurepip) out of python3.
  . scripts/lib.sh
  if can_apt_install; then
    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
  else
    cannot_install "python3-venv" "python3-venv"
  fi
fi
rm -rf "$prefix"
python3 -m venv "$prefix"
"$prefix/bin/python" -m pip install --quiet --disable-pip-version-check "moto[server]==$version"
"$prefix/bin/python" -c 'import importlib.metadata as m; print("moto", m.version("moto"))'
