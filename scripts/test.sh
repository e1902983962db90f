#!/usr/bin/env bash
# The project's one test command: installs what the tests need (redis-server, Azurite, etcd,
# protoc, moto, ...),
# then checks formatting, lints, docs, and runs every test in the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
# One build per configuration, never edited in between: incremental artifacts would only fill
# the disk.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
# As root (CI), the network-fault tests (network namespaces, nftables) must run, never skip.
# (Not a LEADER_ELECTION_ variable: the library reads those as settings and refuses unknown ones.)
# So must the clock-fault tests (libfaketime, which scripts/install-faketime.sh installs).
if [ "$(id -u)" -eq 0 ]; then
  export NETWORK_FAULT_TESTS="${NETWORK_FAULT_TESTS:-required}"
  export CLOCK_FAULT_TESTS="${CLOCK_FAULT_TESTS:-required}"
fi

for installer in scripts/install-*.sh; do
  [ -e "$installer" ] || continue
  echo "==> $installer"
  bash "$installer"
done

# A machine with nothing but Rust builds every crate but the etcd backend, and the tester's
# default build: nothing in their build graphs may run protoc (etcd-client's build script does).
echo "==> default build graph needs no protoc"
for package in leader-election leader-election-redis leader-election-blob leader-election-postgres \
  leader-election-s3 leader-election-dynamodb leader-election-aws leader-election-mysql \
  leader-election-zookeeper \
  leader-election-fixtures leader-election-tester \
  leader-election-jobs examples; do
  tree=$(cargo tree --locked -p "$package" -e normal,build --prefix none)
  if grep -E '^(prost-build|tonic-build|tonic-prost-build|protoc-bin|protobuf-src) ' <<<"$tree"; then
    echo "error: the default build of $package needs protoc (the crates above); keep etcd-client behind a feature" >&2
    exit 1
  fi
done

# Every crate meant for users packages (metadata, versions on path dependencies, files); the
# full verification, which builds each from its package, is in the release steps of the README.
echo "==> cargo package (published crates)"
cargo package --locked --workspace --exclude leader-election-test-support --exclude examples \
  --exclude leader-election-peers \
  --no-verify --quiet

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings
# Every library crate with its default features, with none, and with each feature alone, so
# that a branch that exists only without a feature (Redis without TLS, the core without
# metrics) is compiled and linted too.
echo "==> feature combinations"
for combo in \
  "leader-election" "leader-election --no-default-features" \
  "leader-election --no-default-features --features testing" \
  "leader-election --no-default-features --features metrics" \
  "leader-election-redis" "leader-election-redis --no-default-features" \
  "leader-election-blob" "leader-election-blob --no-default-features" \
  "leader-election-postgres" "leader-election-postgres --no-default-features" \
  "leader-election-postgres --no-default-features --features tls" \
  "leader-election-etcd" "leader-election-etcd --no-default-features" \
  "leader-election-s3" "leader-election-dynamodb" "leader-election-aws" "leader-election-tester" \
  "leader-election-aws --features testing" \
  "leader-election-mysql" "leader-election-mysql --no-default-features" \
  "leader-election-zookeeper" \
  "leader-election-jobs" "leader-election-jobs --features metrics" \
  "leader-election-jobs --features testing" \
  "leader-election-fixtures" "leader-election-fixtures --no-default-features" \
  "leader-election-fixtures --all-features"; do
  echo "    -p $combo"
  # shellcheck disable=SC2086
  cargo clippy --locked --quiet -p $combo -- -D warnings
done
echo "==> cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --all-features --locked
echo "==> cargo test"
# Most tests wait on servers and leases, not on the CPU: run up to eight at once in each test
# binary (the default is one per core), which halves the run on a 2-core machine.
export RUST_TEST_THREADS="${RUST_TEST_THREADS:-8}"
cargo test --workspace --all-features --locked
# The tester's default build (no etcd feature) refuses --backend etcd and says how to get it.
echo "==> tester without the etcd feature"
cargo test --locked -p leader-election-tester --test e2e -- etcd_without_its_feature
