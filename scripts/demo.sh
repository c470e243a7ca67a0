#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The main job: install what is missing, build, start the bundled demo stack
# (simulators, when built) on loopback and run poh_exporter in the foreground
# on $PROMETHEUS_BIND (default 0.0.0.0:8000). Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"

work=$(mktemp -d /tmp/poh-demo.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

# start NAME CMD...: run a simulator, wait for the port it prints first.
start() {
  local name=$1; shift
  "$@" >"$work/$name.out" 2>"$work/$name.log" &
  pids+=($!)
  for _ in $(seq 100); do
    [ -s "$work/$name.out" ] && break
    sleep 0.1
  done
  head -n1 "$work/$name.out" | grep -Eo '[0-9]+$'
}

bind=${PROMETHEUS_BIND:-0.0.0.0:8000}
config="$work/poh_exporter.yml"
cat >"$config" <<YAML
web:
  listen_address: "$bind"
state_dir: $work/state
YAML
mkdir -p "$work/state"
if [ -f scripts/demo_stack.sh ]; then
  # Simulators of the later issues append their sections to the config.
  source scripts/demo_stack.sh
fi
echo "demo: poh_exporter on $bind; open http://127.0.0.1:${bind##*:}/ (Ctrl-C stops)"
build/poh_exporter --config.file="$config" &
pids+=($!)
wait "${pids[-1]}"
