#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# OTLP span pipeline benchmark, side by side in one run:
#   1. encode only (protobuf-c), one thread
#   2. the real tracer shipping to otlp_sink over gRPC (loopback), tuned
#      (queue 8192, 50 ms batch timeout) and with the schema's defaults
#   3. baseline: the same spans built, encoded and shipped from Python
#      (python3-protobuf upb + python3-grpcio), like the library it replaces
# Goal: >= 100,000 spans/s on one core (spans per CPU-second of the exporter).
# Usage: bench/otlp/run.sh [pipeline-spans]   (default 1000000; Python gets 1/10)
# BUILD_DIR overrides the (Release) build directory.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-/tmp/poh_exporter-bench-release}
N=${1:-1000000}
PYN=$((N / 10))
mkdir -p "$BUILD_DIR"
if ! { cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release &&
       cmake --build "$BUILD_DIR" -j"$(nproc)" --target bench_otlp otlp_sink; } >"$BUILD_DIR/bench-otlp-build.log" 2>&1; then
    cat "$BUILD_DIR/bench-otlp-build.log" >&2
    exit 1
fi
echo "host: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"

TMP=$(mktemp -d)
SINK_PID=
cleanup() { [ -n "$SINK_PID" ] && kill "$SINK_PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT INT TERM

start_sink() {
    "$BUILD_DIR/tests/sim/otlp_sink/otlp_sink" --discard --out "$TMP/sink.$1" >"$TMP/port.$1" &
    SINK_PID=$!
    i=0
    while [ ! -s "$TMP/port.$1" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
    PORT=$(head -1 "$TMP/port.$1")
    [ -n "$PORT" ] || { echo "otlp_sink did not start" >&2; exit 1; }
}
stop_sink() {
    kill "$SINK_PID"; wait "$SINK_PID" || true; SINK_PID=
    echo "otlp_sink ($1 run) received: $(cat "$TMP/sink.$1")"
}

start_sink C
"$BUILD_DIR/bench/otlp/bench_otlp" --endpoint "127.0.0.1:$PORT" --pipeline-spans "$N" | tee "$TMP/c.txt"
stop_sink C

# The same pipeline with only the endpoint configured: the schema's defaults
# (queue_size 2048, batch_size 512, batch_timeout 5s), what an operator gets.
start_sink Cdefaults
"$BUILD_DIR/bench/otlp/bench_otlp" --endpoint "127.0.0.1:$PORT" --pipeline-spans "$N" \
    --encode-spans 0 --defaults | tee "$TMP/cd.txt"
stop_sink Cdefaults

start_sink Python
/usr/bin/python3 "$ROOT/bench/otlp/baseline_py.py" "$ROOT" "127.0.0.1:$PORT" "$PYN" 512 | tee "$TMP/py.txt"
stop_sink Python

get() { sed -n "s/^$1 .*$2=\([0-9.]*\).*/\1/p" "$3"; }
ENC=$(get encode spans_per_cpu_s "$TMP/c.txt")
PIPE=$(get pipeline spans_per_cpu_s "$TMP/c.txt")
PIPE_WALL=$(get pipeline spans_per_s "$TMP/c.txt")
DEF=$(get pipeline spans_per_cpu_s "$TMP/cd.txt")
DEF_WALL=$(get pipeline spans_per_s "$TMP/cd.txt")
PY=$(get python spans_per_cpu_s "$TMP/py.txt")
PY_WALL=$(get python spans_per_s "$TMP/py.txt")
awk -v enc="$ENC" -v pipe="$PIPE" -v pw="$PIPE_WALL" -v def="$DEF" -v dw="$DEF_WALL" \
    -v py="$PY" -v pyw="$PY_WALL" 'BEGIN {
    printf "\n%-52s %14s %14s\n", "", "spans/CPU-s", "spans/s wall"
    printf "%-52s %14.0f %14s\n", "encode only (protobuf-c)", enc, "-"
    printf "%-52s %14.0f %14.0f\n", "tracer, defaults (queue 2048, batch 512, 5s)", def, dw
    printf "%-52s %14.0f %14.0f\n", "tracer, tuned (queue 8192, batch 512, 50ms)", pipe, pw
    printf "%-52s %14.0f %14.0f\n", "Python upb+grpcio baseline (batch 512)", py, pyw
    printf "\nall against otlp_sink (a simulator of an OTLP collector) on loopback\n"
    printf "ratio to goal (100000 spans/s on one core): defaults %.2fx, tuned %.2fx\n", def / 100000, pipe / 100000
    printf "C pipeline vs Python baseline (CPU per span): defaults %.1fx, tuned %.1fx\n", def / py, pipe / py
}'
