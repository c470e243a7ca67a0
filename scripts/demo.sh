#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The main job: install what is missing, build, start the bundled demo stack
# (simulators) on loopback, poh_exporter on $PROMETHEUS_BIND (default
# 0.0.0.0:8000) and a real Prometheus (Debian's) on 127.0.0.1:9090 scraping
# it every 5 s with the alert and recording rules of docs/observability.
# A minute in, one PoH node turns NOT_SERVING: PohNodeDown goes pending, and
# firing 30 s later (the demo's copy of alerts.yml waits 30 s, not the
# shipped 2m, so the whole path shows within two minutes). Ctrl-C stops
# everything.
#
# Environment: PROMETHEUS_BIND (exporter), DEMO_PROMETHEUS_PORT (9090; 0 =
# no Prometheus), DEMO_FAULT_AFTER (seconds, 60; 0 = no fault),
# DEMO_ALERT_FOR (PohNodeDown's "for" in the demo, 30s),
# DEMO_NO_BUILD=1 (use the build as it is: the tests do), DEMO_BUILD_DIR (build).
set -euo pipefail
cd "$(dirname "$0")/.."
bdir=${DEMO_BUILD_DIR:-build}
if [ "${DEMO_NO_BUILD:-}" != 1 ]; then
  bash scripts/deps.sh
  cmake -S . -B "$bdir" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$bdir" -j"$(nproc)"
fi

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
port=${bind##*:}
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
"$bdir"/poh_exporter --config.file="$config" &
exporter=$!
pids+=("$exporter")
echo "demo: poh_exporter on $bind: http://127.0.0.1:$port/"

# A real Prometheus, with the shipped rules, scraping every 5 s.
prom_port=${DEMO_PROMETHEUS_PORT:-9090}
if [ "$prom_port" != 0 ]; then
  if ! command -v prometheus >/dev/null; then
    echo "demo: no prometheus on PATH (Debian package prometheus); running without it" >&2
  else
    # The shipped rules, with PohNodeDown's for: shortened for the demo only.
    alert_for=${DEMO_ALERT_FOR:-30s}
    awk -v f="$alert_for" '/- alert:/ { node = ($3 == "PohNodeDown") }
      node && /^ *for:/ { sub(/for: .*/, "for: " f); node = 0 } { print }' \
      docs/observability/alerts.yml >"$work/alerts.yml"
    grep -q "for: $alert_for" "$work/alerts.yml" || { echo "demo: cannot set PohNodeDown's for" >&2; exit 1; }
    cat >"$work/prometheus.yml" <<YAML
global:
  scrape_interval: 5s
  evaluation_interval: 5s
rule_files:
  - $work/alerts.yml
  - $PWD/docs/observability/recording_rules.yml
scrape_configs:
  - job_name: poh_exporter
    static_configs:
      - targets: ["127.0.0.1:$port"]
YAML
    prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/prometheus" \
      --web.listen-address="127.0.0.1:$prom_port" --storage.tsdb.retention.time=1d \
      >"$work/prometheus.log" 2>&1 &
    pids+=($!)
    echo "demo: Prometheus on http://127.0.0.1:$prom_port/ (alerts: http://127.0.0.1:$prom_port/alerts)"
  fi
fi

# One fault a minute in: the first PoH node says NOT_SERVING.
fault_after=${DEMO_FAULT_AFTER:-60}
if [ "$fault_after" != 0 ] && [ -n "${simctl:-}" ]; then
  (
    sleep "$fault_after"
    exec 3<>"/dev/tcp/127.0.0.1/$simctl"
    echo "HEALTH 0 NOT_SERVING poh.PoH" >&3
    read -r _ <&3
    echo "demo: PoH node 127.0.0.1:$poh1 now answers NOT_SERVING: PohNodeDown goes pending," \
         "then firing ${DEMO_ALERT_FOR:-30s} later"
  ) &
  pids+=($!)
  echo "demo: in ${fault_after}s the PoH node on :$poh1 turns NOT_SERVING (Ctrl-C stops everything)"
fi
wait "$exporter"
