#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Check the include layers of src/ (issue 13).

Reads every `#include "..."` under src/, maps each file to its folder
(src/<folder>/...; files directly in src/ belong to the folder "main") and
fails when
  - a file in src/config/ includes a folder other than core/ (or config/), or
  - a file in src/trace/ includes src/metrics/ (the tracer's counters are
    plain data; the self collector renders them), or
  - the folders include each other in a cycle.
Headers that are not under src/ (generated ones such as poh_version.h and the
protobuf-c output) are ignored. Usage: check_layers.py [SRC_DIR]
"""
import os
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.MULTILINE)
# What src/config/ (the configuration engine) may include besides itself.
CONFIG_ALLOWED = {"core"}
# Folder -> folders it must not include (beyond the cycle rule).
FORBIDDEN = {"trace": {"metrics"}}


def folder_of(rel):
    parts = rel.split("/")
    return parts[0] if len(parts) > 1 else "main"


def read_edges(src):
    """{folder: {included folder: [(file, header), ...]}} for headers under src/."""
    edges = {}
    for dirpath, _, names in os.walk(src):
        for name in sorted(names):
            if not name.endswith((".c", ".h", ".h.in")):
                continue
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, src).replace(os.sep, "/")
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
            here = folder_of(rel)
            for header in INCLUDE.findall(text):
                if not os.path.isfile(os.path.join(src, header)):
                    continue
                there = folder_of(header)
                if there != here:
                    edges.setdefault(here, {}).setdefault(there, []).append((rel, header))
    return edges


def find_cycles(edges):
    """Strongly connected components with more than one folder (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, {})):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    nodes = set(edges) | {w for ws in edges.values() for w in ws}
    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    src = argv[1] if len(argv) > 1 else os.path.join(here, "..", "src")
    edges = read_edges(src)
    problems = []
    for there, uses in sorted(edges.get("config", {}).items()):
        if there not in CONFIG_ALLOWED:
            for rel, header in uses:
                problems.append(f"src/{rel}: includes \"{header}\": src/config/ may include "
                                f"only {', '.join(sorted(CONFIG_ALLOWED))}/")
    for folder, banned in sorted(FORBIDDEN.items()):
        for there in sorted(banned & set(edges.get(folder, {}))):
            for rel, header in edges[folder][there]:
                problems.append(f"src/{rel}: includes \"{header}\": src/{folder}/ may not "
                                f"include {there}/")
    for comp in find_cycles(edges):
        problems.append("folders include each other in a cycle: " + ", ".join(comp))
        members = set(comp)
        for a in comp:
            for b, uses in sorted(edges.get(a, {}).items()):
                if b in members:
                    rel, header = uses[0]
                    more = f" (and {len(uses) - 1} more)" if len(uses) > 1 else ""
                    problems.append(f"  {a}/ -> {b}/: src/{rel} includes \"{header}\"{more}")
    if problems:
        print("check_layers: FAILED", file=sys.stderr)
        for p in problems:
            print(p, file=sys.stderr)
        return 1
    print("check_layers: ok (%d folders, config/ includes only %s)"
          % (len(set(edges) | {w for ws in edges.values() for w in ws}),
             ", ".join(sorted(CONFIG_ALLOWED))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
