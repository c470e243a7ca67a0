#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# gRPC probe fan-out: poh_exporter (one scrape probing 10, 100, 1,000 targets)
# side by side with prometheus-blackbox-exporter's grpc prober via /probe,
# same targets (poh_node_sim ports), same run; prints wall time per scrape,
# CPU per probe and the ratios.
# Usage: bench/grpc_fanout/run.sh [rounds]   (default 10)
# BUILD_DIR overrides the (Release) build directory; BLACKBOX the blackbox binary.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-/tmp/poh_exporter-bench-release}
mkdir -p "$BUILD_DIR"
if ! { cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release &&
       cmake --build "$BUILD_DIR" -j"$(nproc)" --target poh_exporter poh_node_sim; } \
       >"$BUILD_DIR/bench-build.log" 2>&1; then
    cat "$BUILD_DIR/bench-build.log" >&2
    exit 1
fi
echo "host: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "blackbox: $(${BLACKBOX:-/usr/bin/prometheus-blackbox-exporter} --version 2>&1 | head -1)"
exec /usr/bin/python3 "$ROOT/bench/grpc_fanout/grpc_fanout.py" "$BUILD_DIR" "${1:-10}"
