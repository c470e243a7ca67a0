# SPDX-License-Identifier: Apache-2.0
"""The landing page at scale: poh_exporter with --targets gRPC targets
(poh_node_sim --ports) in one group and a change stream on mongo_rs_sim,
scraped --scrapes times (the page's pictures fill at each scrape), then GET /
--requests times over one kept-alive connection. Side by side, in the same
run, the same GETs of blackbox_exporter's landing page (it lists its recent
probes) after as many /probe calls of the same targets. Prints per exporter:
the page's size, wall time per GET on loopback, and the server's CPU time per
GET (utime + stime from /proc, ticks of SC_CLK_TCK), and the ratios.

Guards (the CTest short mode): --max-ms (server CPU ms per GET) and --max-kb.
Usage: landing.py BUILD_DIR [--targets N] [--requests N] [--max-ms X] [--max-kb X]
"""
import argparse
import http.client
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from benchlib import read_line, wait_log  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(conn, path):
    conn.request("GET", path)
    r = conn.getresponse()
    body = r.read()
    if r.status != 200:
        raise RuntimeError("GET %s: %d" % (path, r.status))
    return body


def measure(port, pid, path, n):
    """(size, wall ms per GET, server CPU ms per GET) of n GETs of path."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    body = get(conn, path)
    c0, t0 = cpu_seconds(pid), time.monotonic()
    for _ in range(n):
        body = get(conn, path)
    wall = (time.monotonic() - t0) / n * 1000
    cpu = (cpu_seconds(pid) - c0) / n * 1000
    conn.close()
    return len(body), wall, cpu


def main():
    p = argparse.ArgumentParser()
    p.add_argument("build")
    p.add_argument("--targets", type=int, default=1000)
    p.add_argument("--scrapes", type=int, default=3)
    p.add_argument("--requests", type=int, default=50)
    p.add_argument("--max-ms", type=float, default=0)
    p.add_argument("--max-kb", type=float, default=0)
    a = p.parse_args()
    b = a.build
    node_sim = os.path.join(b, "tests", "sim", "poh_node_sim", "poh_node_sim")
    mongo_sim = os.path.join(b, "tests", "sim", "mongo_rs_sim", "mongo_rs_sim")
    blackbox = os.environ.get("BLACKBOX", "/usr/bin/prometheus-blackbox-exporter")
    tmp = tempfile.mkdtemp(prefix="poh-bench-landing-")
    procs = []
    try:
        sim = subprocess.Popen([node_sim, "--listen", "127.0.0.1:0", "--ports", str(a.targets)],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        procs.append(sim)
        line = read_line(sim.stdout, 60)
        targets = ["127.0.0.1:%s" % x for x in line.split()[0][len("ports="):].split(",")]
        ms = subprocess.Popen([mongo_sim, "--port", "0", "--control-port", "0", "--rate", "200",
                               "--approve-after", "100", "--log-level", "warn"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        procs.append(ms)
        mport = int(read_line(ms.stdout, 30))
        os.mkdir(os.path.join(tmp, "state"), 0o700)
        cfg = os.path.join(tmp, "poh.yml")
        with open(cfg, "w") as f:
            f.write("state_dir: %s\ngrpc:\n  - name: poh\n    timeout: 5s\n    targets:\n" %
                    os.path.join(tmp, "state"))
            f.writelines("      - %s\n" % t for t in targets)
            f.write("mongodb:\n  - name: main\n    uri: mongodb://127.0.0.1:%d/?replicaSet=rs0\n"
                    "    change_streams:\n      - name: tx\n        database: dag\n"
                    "        collection: transactions\n        latencies:\n"
                    "          - {name: storage, from_field: created_at, to: commit}\n"
                    "          - {name: approval, from_field: created_at, "
                    "to_field: approved_at}\n" % mport)
        plog = os.path.join(tmp, "poh.log")
        poh = subprocess.Popen([os.path.join(b, "poh_exporter"), "--config.file=" + cfg,
                                "--web.listen-address=127.0.0.1:0"],
                               stdout=subprocess.DEVNULL, stderr=open(plog, "w"))
        procs.append(poh)
        pport = int(wait_log(plog, r"listening on 127\.0\.0\.1:(\d+)", 60).group(1))
        conn = http.client.HTTPConnection("127.0.0.1", pport, timeout=60)
        for _ in range(a.scrapes):
            get(conn, "/metrics")
            time.sleep(1)
        conn.close()
        bport = free_port()
        bcfg = os.path.join(tmp, "blackbox.yml")
        with open(bcfg, "w") as f:
            f.write("modules:\n  grpc_health:\n    prober: grpc\n    timeout: 5s\n    grpc:\n"
                    "      tls: false\n      preferred_ip_protocol: ip4\n")
        bb = subprocess.Popen([blackbox, "--config.file=" + bcfg,
                               "--web.listen-address=127.0.0.1:%d" % bport],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(bb)
        deadline = time.monotonic() + 30
        while True:
            try:
                c = http.client.HTTPConnection("127.0.0.1", bport, timeout=2)
                get(c, "/-/healthy")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("blackbox_exporter did not start")
                time.sleep(0.1)
        # blackbox's page lists its recent probes (its history, up to 100 by
        # default): give it as many as there are targets
        for t in targets:
            get(c, "/probe?module=grpc_health&target=" + t)
        c.close()
        size, wall, cpu = measure(pport, poh.pid, "/", a.requests)
        bsize, bwall, bcpu = measure(bport, bb.pid, "/", a.requests)
        print("landing page, %d targets, %d scrapes, %d GETs each, loopback, kept-alive" %
              (a.targets, a.scrapes, a.requests))
        print("%-18s %10s %14s %18s" % ("", "size KB", "wall ms/GET", "server CPU ms/GET"))
        print("%-18s %10.1f %14.2f %18.2f" % ("poh_exporter", size / 1024, wall, cpu))
        print("%-18s %10.1f %14.2f %18.2f" % ("blackbox_exporter", bsize / 1024, bwall, bcpu))
        print("ratio poh/blackbox: size %.1f, wall %.2f, CPU %.2f  (blackbox's page is a table "
              "of its last probes, poh's the grid, charts and member tables)" %
              (size / max(bsize, 1), wall / max(bwall, 1e-9), cpu / max(bcpu, 1e-9)))
        bad = []
        if a.max_ms and cpu > a.max_ms:
            bad.append("server CPU %.1f ms per GET over %.1f" % (cpu, a.max_ms))
        if a.max_kb and size / 1024 > a.max_kb:
            bad.append("page %.1f KB over %.1f" % (size / 1024, a.max_kb))
        if bad:
            print("FAILED: " + "; ".join(bad))
            return 1
        return 0
    finally:
        for pr in procs:
            pr.terminate()
        for pr in procs:
            try:
                pr.wait(10)
            except subprocess.TimeoutExpired:
                pr.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
