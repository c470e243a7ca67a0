# SPDX-License-Identifier: Apache-2.0
"""Helpers for the exporter's MongoDB end-to-end tests: an exporter
configuration for a cluster, waiting for exact metric values, and servers
that misbehave at the TCP level (refuse, accept and never answer)."""
import os
import shutil
import socket
import tempfile
import time

import pohtest


def config(clusters, state_dir, extra=""):
    """YAML for the exporter. clusters: list of dicts with name, uri and
    optional password_file / streams (list of stream YAML snippets)."""
    lines = [f"state_dir: {state_dir}", "mongodb:"]
    for c in clusters:
        lines.append(f"  - name: {c['name']}")
        lines.append(f"    uri: \"{c['uri']}\"")
        if c.get("password_file"):
            lines.append(f"    password_file: {c['password_file']}")
        if c.get("streams"):
            lines.append("    change_streams:")
            for s in c["streams"]:
                lines.extend("      " + l for l in s.strip("\n").splitlines())
    return "\n".join(lines) + "\n" + extra


TX_STREAM = """
- name: tx
  database: dag
  collection: transactions
  latencies:
    - {name: storage, from_field: created_at, to: commit}
    - {name: approval, from_field: created_at, to_field: approved_at}
"""


def value(exp, name, **labels):
    return pohtest.value(exp.metrics(), name, **labels)


def wait_value(exp, name, want, timeout=30, **labels):
    """Poll until the metric equals want; return the last value seen."""
    last = [None]

    def check():
        last[0] = value(exp, name, **labels)
        return last[0] == want

    pohtest.wait_until(check, timeout=timeout, interval=0.1)
    return last[0]


def wait_stream_up(exp, cluster="main", stream="tx", timeout=30):
    """The change stream's cursor is open: its start point is fixed."""
    return wait_value(exp, "poh_mongodb_change_stream_up", 1, timeout,
                      cluster=cluster, stream=stream) == 1


class StateDir:
    """A state_dir that outlives exporter restarts within a test."""

    def __init__(self):
        self.path = tempfile.mkdtemp(prefix="poh-mongo-state-")

    def cleanup(self):
        shutil.rmtree(self.path, ignore_errors=True)


class Blackhole:
    """Accepts TCP connections (through the listen backlog) and never answers."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]

    def close(self):
        self.sock.close()


def closed_port():
    """A loopback port nobody listens on (connections are refused)."""
    return pohtest.free_port()


SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def stop_checked(exp):
    """Stop the exporter with SIGTERM; raise if it did not exit 0 or a
    sanitizer reported anything."""
    rc = exp.stop()
    log = exp.log_text()
    for marker in SANITIZER_MARKERS:
        if marker in log:
            raise AssertionError("sanitizer report in the exporter log:\n" + log[-4000:])
    if rc != 0:
        raise AssertionError(f"exporter exited with {rc}:\n" + log[-2000:])


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed_scrape(exp, timeout_header):
    t0 = time.monotonic()
    status, _, body = exp.request("/metrics", headers={
        "X-Prometheus-Scrape-Timeout-Seconds": str(timeout_header)})
    return status, time.monotonic() - t0, pohtest.parse_exposition(body.decode())
