#!/usr/bin/env bash
# The project's one test command: installs what the tests need (redis-server, Azurite, ...),
# then checks formatting, lints, docs, and runs every test in the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

for installer in scripts/install-*.sh; do
  [ -e "$installer" ] || continue
  echo "==> $installer"
  bash "$installer"
done

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings
echo "==> cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --all-features --locked
echo "==> cargo test"
cargo test --workspace --all-features --locked
