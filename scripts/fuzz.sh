#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Run every libFuzzer target of tests/fuzz for a while, and keep what it finds.
# Usage: bash scripts/fuzz.sh [SECONDS [TARGET...]]   (default 60 s, every target)
# Builds the targets with clang + libFuzzer + ASan + UBSan in build-fuzz/
# (POH_FUZZ=ON: pohcore instrumented for coverage), runs each on a scratch
# copy of its corpus (tests/fuzz/corpus/<name>/ is not rewritten with the
# fuzzer's own finds), and copies every crash, leak, timeout or out-of-memory
# input into tests/fuzz/corpus/<name>/ as crash-<kind>-<sha1> so CTest's
# fuzz.<name> replays it from then on. Prints the runs per target; exits 1 if
# anything was found.
set -uo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER=${1:-60}
case $SECONDS_PER in '' | *[!0-9]*) echo "usage: $0 [SECONDS [TARGET...]]" >&2; exit 2 ;; esac
shift $(($# ? 1 : 0))
ALL=$(sed -n 's/^set(POH_FUZZ_TARGETS \(.*\))$/\1/p' tests/fuzz/CMakeLists.txt)
[ -n "$ALL" ] || { echo "fuzz: no POH_FUZZ_TARGETS in tests/fuzz/CMakeLists.txt" >&2; exit 1; }
TARGETS=${*:-$ALL}
for t in $TARGETS; do
  case " $ALL " in *" $t "*) ;; *) echo "fuzz: unknown target $t (targets: $ALL)" >&2; exit 2 ;; esac
done
bash scripts/deps.sh || exit 1
B=build-fuzz
mkdir -p "$B"
echo "=== build $B (clang, libFuzzer + ASan + UBSan)"
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
  echo "=== fuzz_$t for ${SECONDS_PER}s ($(ls "$work/corpus" | wc -l) seeds)"
  (cd "$work" && "$OLDPWD/$B/tests/fuzz/fuzz_$t" -max_total_time="$SECONDS_PER" -timeout=10 \
      -rss_limit_mb=2048 -max_len=65536 -artifact_prefix="$work/artifacts/" \
      -print_final_stats=1 corpus >"$work/log" 2>&1)
  rc=$?
  # "Done N runs in S second(s)" at a normal end; the final stats after a crash
  runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$work/log" | tail -1)
  [ -n "$runs" ] || runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$work/log" | tail -1)
  new=0
  for a in "$work"/artifacts/*; do
    [ -e "$a" ] || continue
    name=$(basename "$a")
    case $name in crash-*) ;; *) name=crash-$name ;; esac # leak-, timeout-, oom-, slow-unit-
    cp "$a" "tests/fuzz/corpus/$t/$name"
    echo "  kept tests/fuzz/corpus/$t/$name"
    new=$((new + 1))
  done
  if [ $rc -ne 0 ] || [ $new -gt 0 ]; then
    found=1
    echo "fuzz_$t: ${runs:-?} runs, ${cov:-cov ?}: FOUND $new input(s) (exit $rc)"
    grep -m5 -E 'ERROR|runtime error|check failed' "$work/log"
  else
    echo "fuzz_$t: ${runs:-?} runs in ${SECONDS_PER}s, ${cov:-cov ?}, nothing found"
  fi
  rm -rf "$work"
done
exit $found
