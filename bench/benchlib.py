# SPDX-License-Identifier: Apache-2.0
"""Helpers shared by the Python drivers of bench/ (grpc_fanout, soak, ir)."""
import os
import re
import select
import signal
import subprocess
import time


def read_line(stream, timeout):
    """One line from a child's pipe, or what came before the timeout."""
    deadline = time.monotonic() + timeout
    buf = b""
    while time.monotonic() < deadline:
        r, _, _ = select.select([stream], [], [], max(0.0, deadline - time.monotonic()))
        if not r:
            break
        ch = os.read(stream.fileno(), 1)
        if not ch or ch == b"\n":
            break
        buf += ch
    return buf.decode(errors="replace")


def wait_log(path, pattern, timeout=15):
    """The first match of pattern in the file at path, waiting up to timeout."""
    rx = re.compile(pattern)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(path, errors="replace") as f:
            m = rx.search(f.read())
        if m:
            return m
        time.sleep(0.05)
    raise RuntimeError("no %r in %s" % (pattern, path))


def stop(proc, timeout=10):
    """SIGTERM, then SIGKILL after timeout seconds. True when the process
    (None counts as stopped) ended by itself or on SIGTERM."""
    if proc is None or proc.poll() is not None:
        return True
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
        return True
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
        return False


def start_node_sim(binary, nports, stderr=subprocess.DEVNULL, timeout=30):
    """poh_node_sim on nports ephemeral ports of 127.0.0.1: (process, addresses)."""
    sim = subprocess.Popen([binary, "--listen", "127.0.0.1:0", "--ports", str(nports)],
                           stdout=subprocess.PIPE, stderr=stderr)
    line = read_line(sim.stdout, timeout)
    if not line.startswith("ports="):
        stop(sim)
        raise RuntimeError("poh_node_sim did not start: %r" % line)
    return sim, ["127.0.0.1:%s" % p for p in line.split()[0][len("ports="):].split(",")]
