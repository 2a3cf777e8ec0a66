#!/usr/bin/env bash
# The long fuzz campaign (issue 17): every cargo-fuzz target in fuzz/ for RUNS runs (default
# 1,000,000), libFuzzer on stable (`-s none`: no sanitizer, so no nightly), one target after
# the other, from the committed seeds (fuzz/seeds/<target>/) into a generated corpus
# (fuzz/corpus-generated/<target>/, not committed). An input slower than STEPUP_FUZZ_SLOW_MS
# (default 1000 ms, release build) is a crash, like a panic or a broken invariant; crashes go
# to fuzz/artifacts/<target>/. Prints one summary line per target (runs, seconds, corpus
# size, crashes) and writes the logs to fuzz/logs/.
#
#   scripts/fuzz.sh                        # all targets, 1,000,000 runs each
#   RUNS=100000 TARGETS="policy_text" scripts/fuzz.sh
#   MAX_TIME=600 scripts/fuzz.sh           # and stop a target after 600 s
#   cargo fuzz run -s none policy_text fuzz/artifacts/policy_text/crash-…   # replay a crash
#
# CI does not run this (it needs cargo-fuzz); CI runs the bounded smoke instead:
# `cargo test -p stepup-fuzz` (see FUZZING.md).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
RUNS=${RUNS:-1000000}
MAX_TIME=${MAX_TIME:-0}
TARGETS=${TARGETS:-"policy_text scenario_ron decision_log http_token http_headers differential"}
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "scripts/fuzz.sh: cargo-fuzz is missing: cargo install cargo-fuzz" >&2
  exit 2
fi
max_len() {
  case "$1" in
    policy_text) echo 65536 ;;
    scenario_ron) echo 16384 ;;
    *) echo 4096 ;;
  esac
}
cargo fuzz build -s none
mkdir -p logs
echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')  $(date -u +%FT%TZ)  runs=$RUNS"
status=0
for t in $TARGETS; do
  mkdir -p "corpus-generated/$t" "artifacts/$t"
  start=$(date +%s)
  set +e
  cargo fuzz run -s none "$t" "corpus-generated/$t" "seeds/$t" -- \
    -runs="$RUNS" -max_total_time="$MAX_TIME" -max_len="$(max_len "$t")" -timeout=10 \
    -rss_limit_mb=4096 -print_final_stats=1 -artifact_prefix="artifacts/$t/" \
    >"logs/$t.log" 2>&1
  rc=$?
  set -e
  secs=$(( $(date +%s) - start ))
  runs=$(awk '/stat::number_of_executed_units/ {print $2}' "logs/$t.log" | tail -1)
  crashes=$(find "artifacts/$t" -type f | wc -l)
  corpus=$(find "corpus-generated/$t" -type f | wc -l)
  printf '%-14s runs=%-9s time=%ss corpus=%s crashes=%s exit=%s\n' "$t" "${runs:-?}" "$secs" "$corpus" "$crashes" "$rc"
  if [ "$rc" -ne 0 ]; then
    status=1
    grep -m1 -E 'panicked|ERROR' "logs/$t.log" || true
  fi
done
exit $status
