#!/bin/bash
# Minimizes each target's working corpus (fuzz/corpus/<t>) into the committed
# regression corpus (fuzz/regressions/<t>): a set cover of its edges, at most 60
# files, plus every crash, OOM and timeout input found. Usage: fuzz/minimize.sh TARGET...
set -u
cd "$(dirname "$0")"
for t in "$@"; do
  keep=$(mktemp -d)
  cp regressions/"$t"/crash-* regressions/"$t"/oom-* regressions/"$t"/timeout-* "$keep"/ 2>/dev/null
  rm -rf regressions/"$t" && mkdir -p regressions/"$t"
  cargo +nightly fuzz run "$t" regressions/"$t" corpus/"$t" -- -merge=1 -set_cover_merge=1 -use_counters=0 \
    -rss_limit_mb=2048 -timeout=10 > /dev/null 2>&1
  ls regressions/"$t" | sort | tail -n +61 | while read -r f; do rm regressions/"$t"/"$f"; done
  cp "$keep"/* artifacts/"$t"/crash-* artifacts/"$t"/oom-* artifacts/"$t"/timeout-* regressions/"$t"/ 2>/dev/null
  rm -rf "$keep"
  echo "$t: $(ls corpus/"$t" | wc -l) in the working corpus, $(ls regressions/"$t" | wc -l) kept"
done
