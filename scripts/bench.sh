#!/usr/bin/env bash
# Runs every benchmark quoted in BENCHMARKS.md, end to end: installs and starts what it needs
# (PostgreSQL, Azurite, one redis-server and one etcd member, each on a free loopback port,
# stopped at the end; the benchmarks and the tester start their own Redis deployments, etcd
# clusters and S3 emulator) and prints the figures. The tester's JSON reports go to a temporary
# folder, named at the start and kept. Takes about an hour and a half.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-redis.sh
bash scripts/install-postgres.sh
bash scripts/install-pgbouncer.sh
bash scripts/install-azurite.sh
bash scripts/install-etcd.sh
bash scripts/install-moto.sh

echo "== machine"
nproc
grep -m1 "model name" /proc/cpuinfo || true
free -g | head -2
rustc --version
redis-server --version
etcd --version | head -1

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_port() {
  for _ in $(seq 300); do
    (echo > /dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing answers on 127.0.0.1:$1" >&2
  return 1
}

dir=$(mktemp -d)
chmod 755 "$dir"
reports=$(mktemp -d -t leader-election-reports.XXXXXX)
echo "tester reports: $reports"
pids=()
pg_stop=()
cleanup() {
  if [ ${#pg_stop[@]} -gt 0 ]; then "${pg_stop[@]}" >/dev/null 2>&1 || true; fi
  for pid in "${pids[@]}"; do kill -- -"$pid" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT

# One run of the tester in release mode; its report goes to $reports/<name>.json and stdout.
# Exit status 3 (safe, but a fault kind asked for was never injected: its warning says which)
# goes on; any other failure stops the script.
tester() {
  local name=$1 status=0
  shift
  cargo run -q --release -p leader-election-tester "$@" --report json -q \
    | tee "$reports/$name.json" || status=$?
  if [ "$status" -ne 0 ] && [ "$status" -ne 3 ]; then exit "$status"; fi
}
etcd_tester() {
  local name=$1 status=0
  shift
  cargo run -q --release -p leader-election-tester --features etcd -- "$@" --report json -q \
    | tee "$reports/$name.json" || status=$?
  if [ "$status" -ne 0 ] && [ "$status" -ne 3 ]; then exit "$status"; fi
}

echo "== Peers: etcd's election recipe (Go's concurrency.Election, Campaign/Resign) and this backend, one three-member cluster"
cargo run -q --release -p leader-election-peers -- etcd
echo "== Peers: rslock (Redlock) and this backend, one redis-server"
cargo run -q --release -p leader-election-peers -- redis

echo "== Redis: handover, crash failover, follower load; smart vs poll followers"
cargo run -q --release -p leader-election-redis --example bench

echo "== Redis: scale, 1,000 elections for 60 s"
cargo run -q --release -p leader-election-redis --example scale -- 1000 60
echo "== Redis: scale, 10,000 elections for 60 s"
cargo run -q --release -p leader-election-redis --example scale -- 10000 60

echo "== Redis over TLS: handover over plain TCP, TLS and mutual TLS"
cargo run -q --release -p leader-election-redis --example tls_handover

echo "== Redis Cluster: handover next to a standalone server; failover, crash, slot migration"
cargo run -q --release -p leader-election-redis --example cluster_handover

echo "== Redis Sentinel: what WAIT costs (handover without it, with min_replica_acks 1 and 2)"
cargo run -q --release -p leader-election-redis --example sentinel_handover
echo "== Redis Sentinel: failover timings and the two-primaries window (the Sentinel tests)"
cargo test -q --release -p leader-election-redis --test sentinel -- --nocapture

echo "== PostgreSQL: handover and crash failover"
cargo run -q --release -p leader-election-postgres --example postgres_bench
echo "== PostgreSQL: handover over plain TCP, TLS and PgBouncer"
cargo run -q --release -p leader-election-postgres --example postgres_tls_handover

echo "== Azure Blob on Azurite: handover and crash failover (followers poll every retry_interval)"
port=$(free_port)
mkdir "$dir/azurite"
setsid .tools/azurite/node_modules/.bin/azurite-blob --blobHost 127.0.0.1 --blobPort "$port" \
  --location "$dir/azurite" --disableTelemetry >/dev/null 2>&1 &
pids+=($!)
wait_port "$port"
export AZURE_STORAGE_CONNECTION_STRING="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=http://127.0.0.1:$port/devstoreaccount1;"
echo "-- retry_interval 1 s"
cargo run -q --release -p leader-election-blob --example failover -- 5 1000
echo "-- retry_interval 5 s"
cargo run -q --release -p leader-election-blob --example failover -- 3 5000

echo "== Operators on Azure Blob and S3 (the backends' operator tests)"
cargo test -q --release -p leader-election-blob --test operator -- --nocapture
cargo test -q --release -p leader-election-s3 --test operator -- --nocapture

echo "== Tester: Redis with every fault, 60 s"
tester redis-spawned-60s -- --backend redis --spawn-redis --duration 60s

echo "== Tester: etcd on three members (spawned): handover, crashes, partitions, member kills, idle followers"
etcd_tester etcd-graceful --backend etcd --spawn-etcd --duration 60s --faults graceful --contenders 5
etcd_tester etcd-crash --backend etcd --spawn-etcd --duration 60s --faults crash
etcd_tester etcd-partition --backend etcd --spawn-etcd --duration 60s --faults partition --contenders 5
etcd_tester etcd-member-kills --backend etcd --spawn-etcd --duration 60s --faults server-handover
etcd_tester etcd-member-kills-5s --backend etcd --spawn-etcd --duration 90s --faults server-handover \
  --lease-duration 5s
# Not quiet: after the run the tester prints the keep-alives of followers' claims, which the
# report's per-follower operations do not count (BENCHMARKS.md adds them); only that line is kept.
cargo run -q --release -p leader-election-tester --features etcd -- --backend etcd --spawn-etcd \
  --duration 60s --faults none --contenders 5 --report json \
  2> >(grep 'keep-alives' >&2) | tee "$reports/etcd-idle.json"
etcd_tester etcd-mixed --backend etcd --spawn-etcd --duration 90s --contenders 5

echo "== Tester: S3 on moto with every fault, operator included"
tester s3-mixed -- --backend s3 --spawn-s3 --contenders 5 --duration 180s --lease-duration 4s \
  --renew-interval 1s --retry-interval 500ms --faults mixed

echo "== Tester: DynamoDB on moto (spawned) with every fault, operator included"
tester dynamodb-mixed -- --backend dynamodb --spawn-dynamodb --contenders 3 --duration 120s \
  --lease-duration 4s --renew-interval 1s --retry-interval 500ms --fault-jitter 4s

echo "== Tester: MySQL on MariaDB (spawned) with every fault, operator included"
tester mysql-mixed -- --backend mysql --spawn-mysql --faults mixed --duration 120s --fault-jitter 2s

echo "== Tester: ZooKeeper, a three-server ensemble (spawned), with every fault, operator included"
tester zookeeper-mixed -- --backend zookeeper --spawn-zookeeper --contenders 5 --duration 120s \
  --faults mixed --fault-jitter 2s

echo "== Tester: Redis Cluster (spawned): failovers, coordinated failovers, every fault"
tester redis-cluster-failover -- --backend redis --spawn-redis cluster --faults server-failover \
  --contenders 5 --duration 90s
tester redis-cluster-handover -- --backend redis --spawn-redis cluster --faults server-handover \
  --contenders 5 --duration 60s
tester redis-cluster-mixed -- --backend redis --spawn-redis cluster --contenders 5 --duration 90s

echo "== Tester: Redis Sentinel (spawned): failovers, every fault"
tester redis-sentinel-failover -- --backend redis --spawn-redis sentinel --faults server-failover \
  --contenders 5 --duration 120s
tester redis-sentinel-mixed -- --backend redis --spawn-redis sentinel --contenders 5 --duration 90s

echo "== Tester: a replicated server cut off its peers, its clients still reaching it"
etcd_tester etcd-server-partition --backend etcd --spawn-etcd --faults server-partition \
  --lease-duration 2s --renew-interval 500ms --retry-interval 250ms --duration 90s
if [ "$(id -u)" -eq 0 ]; then
  etcd_tester etcd-server-partition-netns --backend etcd --spawn-etcd --processes --network netns \
    --faults server-partition --lease-duration 2s --renew-interval 500ms --retry-interval 250ms \
    --duration 90s
  # The Sentinel primary's cut is an nftables rule (root).
  tester redis-sentinel-partition -- --backend redis --spawn-redis sentinel \
    --faults server-partition --contenders 5 --duration 180s
  tester redis-sentinel-mixed-root -- --backend redis --spawn-redis sentinel --contenders 5 \
    --duration 300s
fi

echo "== a redis-server, one etcd member and PostgreSQL for the tester's runs against a given server"
redis_port=$(free_port)
setsid redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
  >/dev/null 2>&1 &
pids+=($!)
wait_port "$redis_port"
redis_url="redis://127.0.0.1:$redis_port"

etcd_port=$(free_port)
etcd_peer=$(free_port)
setsid etcd --name bench --data-dir "$dir/etcd" \
  --listen-client-urls "http://127.0.0.1:$etcd_port" \
  --advertise-client-urls "http://127.0.0.1:$etcd_port" \
  --listen-peer-urls "http://127.0.0.1:$etcd_peer" \
  --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
  --initial-cluster "bench=http://127.0.0.1:$etcd_peer" >/dev/null 2>&1 &
pids+=($!)
wait_port "$etcd_port"
etcd_url="http://127.0.0.1:$etcd_port"

pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$pg_bin" ] || pg_bin=$(dirname "$(command -v initdb)")
as_pg=()
if [ "$(id -u)" = 0 ]; then
  # initdb and postgres refuse to run as root.
  as_pg=(runuser -u postgres --)
fi
pg_port=$(free_port)
mkdir "$dir/pg"
[ ${#as_pg[@]} -eq 0 ] || chown postgres "$dir/pg"
"${as_pg[@]}" "$pg_bin/initdb" -U postgres --auth=trust -E UTF8 --no-sync -D "$dir/pg/data" \
  >/dev/null
"${as_pg[@]}" "$pg_bin/pg_ctl" -D "$dir/pg/data" -l "$dir/pg/log" -w \
  -o "-p $pg_port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$dir/pg -c fsync=off -c max_connections=200" \
  start >/dev/null
pg_stop=("${as_pg[@]}" "$pg_bin/pg_ctl" -D "$dir/pg/data" -m fast stop)
pg_url="postgres://postgres@127.0.0.1:$pg_port/postgres"

echo "== Tester: Redis graceful handover, alone and among every fault (mixed: the contenders talk"
echo "   through the partition proxies), on the same server"
tester redis-graceful-120s -- --backend redis --redis-url "$redis_url" --contenders 5 \
  --duration 120s --faults graceful
tester redis-mixed-120s -- --backend redis --redis-url "$redis_url" --contenders 5 \
  --duration 120s --faults mixed

echo "== Tester on every backend (3 contenders, every fault)"
if [ "$(id -u)" -eq 0 ]; then
  # Partitions as a real network's: each contender process in a network namespace, the
  # leader's packets dropped by nftables (needs root, ip and nft).
  tester redis-netns -- --backend redis --spawn-redis --processes --network netns --duration 60s

  echo "== Tester: every network fault in network namespaces, on every backend (root)"
  # Partition, replies dropped, requests dropped, 20 % loss, latency past operation_timeout,
  # in turn on the leader.
  net=(--processes --network netns --faults network)
  fast=(--lease-duration 1s --renew-interval 300ms --retry-interval 100ms)
  slow=(--lease-duration 2s --renew-interval 500ms --retry-interval 250ms)
  tester redis-network -- --backend redis --spawn-redis "${net[@]}" "${fast[@]}" --duration 120s
  tester redis-sentinel-network -- --backend redis --spawn-redis sentinel "${net[@]}" "${fast[@]}" \
    --duration 120s
  tester redis-sentinel-netns-mixed -- --backend redis --spawn-redis sentinel --processes \
    --network netns --contenders 5 --duration 300s
  etcd_tester etcd-network --backend etcd --spawn-etcd "${net[@]}" "${slow[@]}" --duration 120s
  tester postgres-network -- --backend postgres --postgres-url "$pg_url" --key bench-network \
    "${net[@]}" "${fast[@]}" --duration 120s
  tester s3-network -- --backend s3 --spawn-s3 --key bench-network "${net[@]}" "${slow[@]}" \
    --duration 120s
  tester blob-network -- --backend blob --container bench-network "${net[@]}" --duration 300s

  echo "== Tester: clock faults under libfaketime (wall clocks stepped; clocks fast or slow)"
  tester redis-clock-step -- --backend redis --spawn-redis --processes --clock-faults step \
    --faults mixed "${fast[@]}" --duration 90s
  tester redis-clock-rate -- --backend redis --spawn-redis --processes --clock-faults rate \
    --faults mixed "${fast[@]}" --duration 90s
  etcd_tester etcd-clock-step --backend etcd --spawn-etcd --processes --clock-faults step \
    --faults mixed "${slow[@]}" --duration 120s
  tester postgres-clock-rate -- --backend postgres --postgres-url "$pg_url" --key bench-clock \
    --processes --clock-faults rate --faults mixed "${fast[@]}" --duration 90s
fi
tester memory -- --backend memory --duration 30s
tester redis -- --backend redis --redis-url "$redis_url" --duration 30s
tester redis-processes -- --backend redis --redis-url "$redis_url" --duration 30s --processes
tester redis-spawned -- --backend redis --spawn-redis --duration 30s
tester redis-spawned-processes -- --backend redis --spawn-redis --duration 30s --processes
etcd_tester etcd --backend etcd --etcd-endpoints "$etcd_url" --duration 30s
etcd_tester etcd-processes --backend etcd --etcd-endpoints "$etcd_url" --duration 30s --processes
etcd_tester etcd-spawned --backend etcd --spawn-etcd --duration 60s
tester blob -- --backend blob --connection-string "$AZURE_STORAGE_CONNECTION_STRING" --duration 90s
tester blob-processes -- --backend blob --connection-string "$AZURE_STORAGE_CONNECTION_STRING" \
  --duration 90s --processes

echo "== Tester: scheduled jobs (leader-election-jobs) through every fault"
tester redis-jobs -- --backend redis --spawn-redis --key bench-jobs --jobs 3 --every 1s \
  --duration 120s
tester postgres-jobs -- --backend postgres --postgres-url "$pg_url" --key bench-jobs --jobs 3 \
  --every 1s --duration 120s
etcd_tester etcd-jobs --backend etcd --spawn-etcd --key bench-jobs --jobs 3 --every 1s \
  --duration 120s

echo "== Tester: operators, resignations and preferred leaders"
tester redis-operator -- --backend redis --spawn-redis --faults operator --duration 90s
tester postgres-operator -- --backend postgres --postgres-url "$pg_url" --faults operator \
  --duration 90s
tester blob-operator -- --backend blob --connection-string "$AZURE_STORAGE_CONNECTION_STRING" \
  --faults operator --duration 420s
etcd_tester etcd-operator --backend etcd --spawn-etcd --faults operator --duration 60s
tester redis-resign -- --backend redis --spawn-redis --faults resign --duration 60s
etcd_tester etcd-resign --backend etcd --spawn-etcd --faults resign --duration 60s
tester postgres-resign -- --backend postgres --postgres-url "$pg_url" --faults resign --duration 60s
tester redis-priorities -- --backend redis --spawn-redis --faults resign --priorities 0,0,5 \
  --duration 60s
tester postgres-priorities -- --backend postgres --postgres-url "$pg_url" --faults resign \
  --priorities 0,0,5 --duration 60s

echo "== done; tester reports in $reports"
