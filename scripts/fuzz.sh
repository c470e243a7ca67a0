#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Run every libFuzzer target of tests/fuzz for a while, and keep what it finds.
# Usage: bash scripts/fuzz.sh [SECONDS]   (default 60 per target)
# Builds the targets with clang + libFuzzer + ASan + UBSan in build-fuzz/, runs
# each on a scratch copy of its corpus (tests/fuzz/corpus/<name>/ is not
# rewritten with the fuzzer's own finds), and copies every crash, leak,
# timeout or out-of-memory input into tests/fuzz/corpus/<name>/ so CTest's
# fuzz.<name> replays it from then on. Prints the runs per target; exits 1 if
# anything was found.
set -uo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER=${1:-60}
bash scripts/deps.sh || exit 1
TARGETS=$(sed -n 's/^set(POH_FUZZ_TARGETS \(.*\))$/\1/p' tests/fuzz/CMakeLists.txt)
B=build-fuzz
mkdir -p "$B"
cmake -S . -B "$B" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug -DPOH_SANITIZE=ON \
      -DPOH_FUZZ=ON -DPOH_WERROR=ON >"$B/build.log" 2>&1 || { cat "$B/build.log"; exit 1; }
cmake --build "$B" -j"$(nproc)" --target $(for t in $TARGETS; do printf 'fuzz_%s ' "$t"; done) \
      >>"$B/build.log" 2>&1 || { tail -50 "$B/build.log"; exit 1; }
found=0
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
for t in $TARGETS; do
  work=$(mktemp -d)
  mkdir -p "$work/corpus" "$work/artifacts"
  cp tests/fuzz/corpus/"$t"/* "$work/corpus/" 2>/dev/null
  (cd "$work" && "$OLDPWD/$B/tests/fuzz/fuzz_$t" -max_total_time="$SECONDS_PER" -timeout=10 \
      -rss_limit_mb=2048 -max_len=65536 -artifact_prefix="$work/artifacts/" \
      -print_final_stats=1 corpus >"$work/log" 2>&1)
  rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$work/log" | tail -1)
  new=0
  for a in "$work"/artifacts/*; do
    [ -e "$a" ] || continue
    cp "$a" "tests/fuzz/corpus/$t/$(basename "$a")"
    new=$((new + 1))
  done
  if [ $rc -ne 0 ] || [ $new -gt 0 ]; then
    found=1
    echo "fuzz_$t: ${runs:-?} runs, ${cov:-cov ?}: FOUND $new input(s) (exit $rc), kept in tests/fuzz/corpus/$t/"
    grep -m5 -E 'ERROR|runtime error|check failed' "$work/log"
  else
    echo "fuzz_$t: ${runs:-?} runs in ${SECONDS_PER}s, ${cov:-cov ?}, nothing found"
  fi
  rm -rf "$work"
done
exit $found
