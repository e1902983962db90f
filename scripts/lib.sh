#!/usr/bin/env bash
# Shared by the install-*.sh scripts: what to do when a tool is missing and cannot be installed
# here (not root, or no apt-get).

# can_apt_install: whether this machine can install Debian packages now.
can_apt_install() {
  [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1
}

# cannot_install TOOL PACKAGE: says what to do, then exits 0 when Docker is available (the test
# fixtures start the server in a container instead) and 1 otherwise.
cannot_install() {
  local tool=$1 package=$2
  echo "$tool is missing and cannot be installed here (needs root and apt-get)." >&2
  echo "  on Debian or Ubuntu: sudo apt-get update && sudo apt-get install -y $package" >&2
  if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    echo "  Docker is available: the tests will start $tool in a container instead." >&2
    exit 0
  fi
  echo "  or start Docker, and the tests will run $tool in a container." >&2
  exit 1
}

# apt_install_or_skip WHAT PACKAGE...: installs the Debian packages, or, where this machine
# cannot (not root, no apt-get), says which tests will skip for want of WHAT and exits 0: those
# tests say so and pass, so this never fails the run.
apt_install_or_skip() {
  local what=$1
  shift
  if ! can_apt_install; then
    echo "$what is missing and cannot be installed here (needs root and apt-get):" >&2
    echo "  the tests that need it will say so and pass without running." >&2
    echo "  on Debian or Ubuntu: sudo apt-get install -y $*" >&2
    exit 0
  fi
  apt_install "$@"
}

# apt_install PACKAGE...: installs the Debian packages, quietly (the caller checked
# can_apt_install).
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
