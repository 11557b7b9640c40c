#!/usr/bin/env bash
# Every benchmark in two checkouts side by side, interleaved before/after per benchmark, on the same broker and
# PostgreSQL (KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL, or the local defaults); each checkout needs its `make install`.
#   bench/before_after.sh BEFORE_DIR AFTER_DIR [ROUNDS] [OUT_DIR]
# Writes one log per run and index.log (start, load average, exit code) to OUT_DIR (default .cache/before-after).
set -uo pipefail
before=$(cd "$1" && pwd); after=$(cd "$2" && pwd); rounds=${3:-2}
out=${4:-"$(cd "$(dirname "$0")/.." && pwd)/.cache/before-after"}
mkdir -p "$out"
run() { # tree label module args...
  local tree=$1 label=$2; shift 2
  echo "== $(date +%T) $label $* (load $(cut -d' ' -f1-3 /proc/loadavg))" >> "$out/index.log"
  (cd "$tree" && .venv/bin/python -m "$@") > "$out/$label.log" 2>&1
  echo "   $(date +%T) rc=$?" >> "$out/index.log"
}
for round in $(seq 1 "$rounds"); do
  for bench in "intake_bench --runs 1" "consent_bench --runs 1 --count 20000" "dispatch_bench --quick --runs 1" \
               "portal_bench --quick --runs 1" "stats_bench --size 100000"; do
    name=${bench%%_bench*}
    # shellcheck disable=SC2086
    run "$before" "before-$name-$round" bench.$bench
    # shellcheck disable=SC2086
    run "$after" "after-$name-$round" bench.$bench
  done
done
echo "done $(date +%T)" >> "$out/index.log"
