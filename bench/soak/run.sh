#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Memory over time: poh_exporter under the production load (1,000 gRPC
# targets with the GetState call, 10 change streams at 2,000 tx/s, scraped
# every second) side by side with prometheus-blackbox-exporter probing the
# same targets through /probe; samples VmRSS, RssAnon, threads, fds and CPU
# of both every 5 s, prints a table, the growth over the last half and the
# ratio, writes soak.csv and soak.svg. Every knob is an option of soak.py:
#   bench/soak/run.sh --duration 120            (a short look)
#   bench/soak/run.sh --no-state --streams 0 --scrape-interval 5
# BUILD_DIR overrides the (RelWithDebInfo) build directory; OUT the output
# directory (default $BUILD_DIR/soak).
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-/tmp/poh_exporter-bench-relwithdebinfo}
mkdir -p "$BUILD_DIR"
if ! { cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo &&
       cmake --build "$BUILD_DIR" -j"$(nproc)" --target poh_exporter poh_node_sim mongo_rs_sim otlp_sink; } \
       >"$BUILD_DIR/bench-build.log" 2>&1; then
    cat "$BUILD_DIR/bench-build.log" >&2
    exit 1
fi
echo "host: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "blackbox: $(${BLACKBOX:-/usr/bin/prometheus-blackbox-exporter} --version 2>&1 | head -1)"
exec /usr/bin/python3 "$ROOT/bench/soak/soak.py" "$BUILD_DIR" --out "${OUT:-$BUILD_DIR/soak}" "$@"
