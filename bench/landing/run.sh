#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The landing page at 1,000 targets beside blackbox_exporter's (RelWithDebInfo build).
set -euo pipefail
cd "$(dirname "$0")/../.."
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-bench -j"$(nproc)" --target poh_exporter poh_node_sim mongo_rs_sim >/dev/null
/usr/bin/python3 bench/landing/landing.py build-bench "$@"
