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
# The default services, then each profile's: `config --services` lists every service, so read
# the profiles from the normalized file (docker-compose's own Python has PyYAML).
listing=$(DOCKER_HOST=unix:///nonexistent docker-compose --file docker-compose.yml config | "$(head -1 "$(command -v docker-compose)" | sed 's/^#!//')" -c '
import sys, yaml
services = yaml.safe_load(sys.stdin)["services"]
groups = {}
for name, service in services.items():
    for profile in service.get("profiles") or ["default"]:
        groups.setdefault(profile, []).append(name)
for profile in sorted(groups):
    print(profile + ": " + " ".join(sorted(groups[profile])))
')
expected="cluster: redis-cluster-1 redis-cluster-2 redis-cluster-3 redis-cluster-4 redis-cluster-5 redis-cluster-6 redis-cluster-create
default: azurite etcd mysql postgres redis s3 zookeeper
etcd-cluster: etcd-cluster-1 etcd-cluster-2 etcd-cluster-3
sentinel: redis-sentinel-1 redis-sentinel-2 redis-sentinel-3 redis-sentinel-primary redis-sentinel-replica-1 redis-sentinel-replica-2"
if [ "$listing" != "$expected" ]; then
  echo "install-compose-check.sh: unexpected services per profile:" >&2
  echo "$listing" >&2
  echo "expected:" >&2
  echo "$expected" >&2
  exit 1
fi
echo "docker-compose.yml is valid ($(docker-compose version --short 2>/dev/null || echo docker-compose)):"
echo "$listing" | sed 's/^/  /'
