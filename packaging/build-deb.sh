#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Build the poh-exporter Debian package: the one documented command.
#
#   packaging/build-deb.sh [OUTDIR]        (default OUTDIR: ./dist)
#
# Copies the source tree (without .git and build directories) to a temporary
# directory, moves packaging/debian to its root where dpkg-buildpackage wants
# it, runs `dpkg-buildpackage -us -uc -b` there and copies the resulting .deb
# files to OUTDIR. The source tree itself is never modified.
#
# Environment: DEB_BUILD_OPTIONS is passed through (nocheck skips the unit
# tests; parallel=N defaults to the number of CPUs). VERBOSE=1 streams the
# build log instead of printing its tail on failure.
set -euo pipefail

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:-$PWD/dist}
mkdir -p "$out"
out=$(cd "$out" && pwd)

for tool in dpkg-buildpackage dpkg-checkbuilddeps dh; do
  if ! command -v "$tool" >/dev/null; then
    echo "build-deb: $tool not found; install with: apt-get install -y dpkg-dev debhelper" >&2
    exit 1
  fi
done

work=$(mktemp -d "${TMPDIR:-/tmp}/poh-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
tree="$work/poh-exporter"
mkdir "$tree"

# The working tree as it is, minus VCS data and build output of any kind.
# GNU tar exits 1 when a file changed while it was read (someone editing);
# the copy is still complete, so only >1 is an error.
set +e
tar -C "$src" -cf - --warning=no-file-changed \
    --exclude=./.git --exclude='./build' --exclude='./build-*' --exclude='./build_*' \
    --exclude=./dist --exclude='./obj-*' --exclude=./debian --exclude='__pycache__' \
    --exclude='*.deb' . | tar -C "$tree" -xf -
rcs=("${PIPESTATUS[@]}")
set -e
if [ "${rcs[0]}" -gt 1 ] || [ "${rcs[1]}" -ne 0 ]; then
  echo "build-deb: copying the source tree failed" >&2
  exit 1
fi
mv "$tree/packaging/debian" "$tree/debian"

if ! missing=$(cd "$tree" && dpkg-checkbuilddeps 2>&1); then
  echo "build-deb: $missing" >&2
  echo "build-deb: install the build dependencies listed above (apt-get install -y ...)" >&2
  exit 1
fi

opts=${DEB_BUILD_OPTIONS:-}
case " $opts " in
  *" parallel="*) ;;
  *) opts="${opts:+$opts }parallel=$(nproc)" ;;
esac

log="$work/build.log"
echo "build-deb: building in $tree (DEB_BUILD_OPTIONS=\"$opts\")"
set +e
if [ "${VERBOSE:-0}" = 1 ]; then
  (cd "$tree" && DEB_BUILD_OPTIONS="$opts" dpkg-buildpackage -us -uc -b) 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
else
  (cd "$tree" && DEB_BUILD_OPTIONS="$opts" dpkg-buildpackage -us -uc -b) >"$log" 2>&1
  rc=$?
fi
set -e
if [ "$rc" -ne 0 ]; then
  echo "build-deb: dpkg-buildpackage failed (exit $rc); last lines of the log:" >&2
  tail -n 60 "$log" >&2
  exit "$rc"
fi

shopt -s nullglob
debs=("$work"/*.deb)
if [ ${#debs[@]} -eq 0 ]; then
  echo "build-deb: dpkg-buildpackage produced no .deb" >&2
  exit 1
fi
cp "${debs[@]}" "$out/"
for d in "${debs[@]}"; do
  echo "build-deb: $out/$(basename "$d")"
done
