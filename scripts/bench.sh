#!/usr/bin/env bash
# Runs every benchmark quoted in BENCHMARKS.md, end to end: installs and starts what it needs
# (redis-server, PostgreSQL and Azurite, each on a free loopback port, stopped at the end; etcd
# clusters started by the tester) and
# prints the figures. Takes about 20 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-redis.sh
bash scripts/install-postgres.sh
bash scripts/install-azurite.sh
bash scripts/install-etcd.sh

echo "== machine"
nproc
grep -m1 "model name" /proc/cpuinfo || true
free -g | head -2
rustc --version
redis-server --version

echo "== Redis: handover, crash failover, follower load; smart vs poll followers"
cargo run -q --release -p leader-election-redis --example bench

echo "== Redis: scale, 1,000 elections for 60 s"
cargo run -q --release -p leader-election-redis --example scale -- 1000 60
echo "== Redis: scale, 10,000 elections for 60 s"
cargo run -q --release -p leader-election-redis --example scale -- 10000 60

echo "== PostgreSQL: handover and crash failover"
cargo run -q --release -p leader-election-postgres --example postgres_bench

echo "== Azure Blob on Azurite: handover and crash failover (followers poll every retry_interval)"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
dir=$(mktemp -d)
setsid .tools/azurite/node_modules/.bin/azurite-blob --blobHost 127.0.0.1 --blobPort "$port" \
  --location "$dir" --disableTelemetry >/dev/null 2>&1 &
azurite=$!
trap 'kill -- -"$azurite" 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 100); do
  (echo > /dev/tcp/127.0.0.1/"$port") 2>/dev/null && break
  sleep 0.1
done
export AZURE_STORAGE_CONNECTION_STRING="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=http://127.0.0.1:$port/devstoreaccount1;"
echo "-- retry_interval 1 s"
cargo run -q --release -p leader-election-blob --example failover -- 5 1000
echo "-- retry_interval 5 s"
cargo run -q --release -p leader-election-blob --example failover -- 3 5000

echo "== Tester: Redis with every fault, 60 s"
cargo run -q --release -p leader-election-tester -- --backend redis --spawn-redis --duration 60s \
  --report json -q

echo "== Tester: etcd on three members (spawned): handover, crashes, partitions, member kills, idle followers"
for faults in "graceful --contenders 5" "crash" "partition --contenders 5" "server-handover" "none --contenders 5"; do
  # shellcheck disable=SC2086
  cargo run -q --release -p leader-election-tester -- --backend etcd --spawn-etcd --duration 60s \
    --faults $faults --report json -q
done
