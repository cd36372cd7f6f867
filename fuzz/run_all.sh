#!/bin/bash
# Runs fuzz targets one after the other (the machine is shared): each for SECONDS
# (default 240), with the limits used in docs/reliability.md, and prints one summary
# line per target. Usage: fuzz/run_all.sh [SECONDS] [TARGET...] (default: all).
set -u
cd "$(dirname "$0")"
SECONDS_EACH=${1:-240}
shift || true
TARGETS=${*:-$(ls fuzz_targets | sed 's/\.rs$//')}
mkdir -p logs
for t in $TARGETS; do
  case $t in
    key_file) L=8192 ;;
    trust_entry | version_vector | channel_auth | trust_file) L=16384 ;;
    *) L=65536 ;;
  esac
  cargo +nightly fuzz run "$t" -- -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 -malloc_limit_mb=64 \
    -timeout=10 -max_len="$L" -print_final_stats=1 > "logs/$t.log" 2>&1
  echo "$t exit=$? $(grep -E '^Done' "logs/$t.log") $(grep -E 'cov:' "logs/$t.log" | tail -1 | cut -c1-100)"
done
