#!/usr/bin/env bash
# The whole test suite, from a clean checkout on a fresh machine.
# Installs what the tests need (redis-server, from Debian packages) when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-server >/dev/null 2>&1; then
  echo "scripts/test.sh: installing redis-server (the Redis store's tests start their own on loopback)"
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null
fi

# Snapshots are reviewed, never written by a test run.
export INSTA_UPDATE=no

cargo test --workspace --lib --bins --tests
cargo test --workspace --doc
# The benchmarks compile (they are run with `cargo bench`; see BENCHMARKS.md).
if [ -d benches ]; then cargo test -p stepup-benches --benches --no-run; fi
# The examples replay with every expectation met, on the embedded default store (a file of its
# own, new each run: one left by an earlier build is not this build's test).
rm -f target/ci-replay.redb
cargo run -q -p stepup-cli -- replay --rules rules --expect --db target/ci-replay.redb examples/scenarios/ >/dev/null
cargo run -q -p stepup-cli -- check --deny-warnings rules/
cargo run -q -p stepup-cli -- fmt --check rules/
# The report-only example: its candidates' would-be results are expectations too.
cargo run -q -p stepup-cli -- replay --store memory --rules examples/report-only/rules --expect examples/report-only/scenarios/ >/dev/null
cargo run -q -p stepup-cli -- check --deny-warnings examples/report-only/rules/ >/dev/null
cargo run -q -p stepup-cli -- fmt --check examples/report-only/rules/
echo "scripts/test.sh: all green"
