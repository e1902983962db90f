#!/usr/bin/env bash
# Validates docker-compose.yml offline (no Docker daemon needed) with the legacy
# `docker-compose config -q`, installing Debian's docker-compose package when the tool is
# missing. Fails when the file is invalid. Run by scripts/test.sh like every install-*.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v docker-compose >/dev/null 2>&1; then
  if ! { [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; }; then
    # Only validates a file: skipping it never hides a failing test.
    echo "install-compose-check.sh: docker-compose is missing and cannot be installed here;" >&2
    echo "  skipping the offline check of docker-compose.yml" >&2
    echo "  (on Debian: sudo apt-get install -y docker-compose)" >&2
    exit 0
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends docker-compose >/dev/null
fi

# Offline: only parse and check the file. DOCKER_HOST points nowhere, so nothing can reach a
# daemon even if one runs.
DOCKER_HOST=unix:///nonexistent docker-compose --file docker-compose.yml config -q
services=$(DOCKER_HOST=unix:///nonexistent docker-compose --file docker-compose.yml config --services | sort | tr '\n' ' ')
if [ "$services" != "azurite postgres redis " ]; then
  echo "install-compose-check.sh: expected the services azurite, postgres and redis, got: $services" >&2
  exit 1
fi
echo "docker-compose.yml is valid ($(docker-compose version --short 2>/dev/null || echo docker-compose)): services $services"
