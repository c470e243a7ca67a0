#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Install what poh_exporter needs to build, test and run its demo (Debian 12).
# Only calls apt-get when something is missing.
set -euo pipefail
PKGS=(build-essential cmake pkg-config git
      libmongoc-dev libbson-dev libmicrohttpd-dev libyaml-dev libgrpc-dev
      libprotobuf-c-dev protobuf-c-compiler protobuf-compiler check zlib1g-dev
      libgnutls28-dev libcrypt-dev libssl-dev
      clang libclang-rt-14-dev
      python3 python3-grpcio python3-grpc-tools python3-pymongo python3-protobuf python3-prometheus-client python3-yaml
      prometheus prometheus-node-exporter prometheus-blackbox-exporter wrk curl bc gnuplot-nox
      debhelper devscripts lintian fakeroot
      openssl groff-base systemd  # test_otlp_tls, test_package (groff, systemd-analyze)
      chromium)                   # test_landing_browser: the landing page in a real browser
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -q
  # The prometheus packages start their services on install; tests run their own.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
