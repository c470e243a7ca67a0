# SPDX-License-Identifier: Apache-2.0
"""scripts/demo.sh as a newcomer runs it: the simulators, the exporter and a
real Prometheus (Debian's) with the shipped alert and recording rules. Through
Prometheus's API: up == 1 for the exporter, the storage latency query returns
data, and the demo's fault (a PoH node turning NOT_SERVING; here after 5 s
instead of a minute) puts PohNodeDown in "pending" and then "firing" (the
demo's `for: 30s`) for exactly that node, all within two minutes of start; the
recording rules produce series; SIGINT (Ctrl-C) stops every process and
removes the work directory."""
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import unittest
import urllib.parse
import urllib.request

import pohtest

PROMETHEUS = pohtest.which("prometheus")


def api(port, path, **params):
    url = f"http://127.0.0.1:{port}{path}"
    if params:
        url += "?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.load(r)["data"]


def port_open(port):
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


class DemoTest(unittest.TestCase):
    def test_demo(self):
        exp_port, prom_port = pohtest.free_port(), pohtest.free_port()
        env = dict(os.environ, DEMO_NO_BUILD="1", DEMO_BUILD_DIR=pohtest.BUILD,
                   PROMETHEUS_BIND=f"127.0.0.1:{exp_port}", DEMO_PROMETHEUS_PORT=str(prom_port),
                   DEMO_FAULT_AFTER="5")
        proc = subprocess.Popen(["bash", os.path.join(pohtest.SOURCE, "scripts", "demo.sh")],
                                cwd=pohtest.SOURCE, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)
        lines = []
        reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
        reader.start()
        out = lambda: "".join(lines)
        start = time.monotonic()
        try:
            self.assertTrue(pohtest.wait_until(lambda: "turns NOT_SERVING" in out(), 60),
                            "demo did not start:\n" + out())
            self.assertIn(f"Prometheus on http://127.0.0.1:{prom_port}/", out())
            self.assertIn(f"poh_exporter on 127.0.0.1:{exp_port}", out())
            node = re.search(r"the PoH node on :(\d+) turns NOT_SERVING", out()).group(1)
            work = re.search(r"writing spans to (/tmp/poh-demo\.\w+)/", out()).group(1)

            def up():
                try:
                    r = api(prom_port, "/api/v1/query", query='up{job="poh_exporter"}')
                    return r["result"] and r["result"][0]["value"][1] == "1"
                except OSError:
                    return False
            self.assertTrue(pohtest.wait_until(up, 60, 0.5), "Prometheus never scraped:\n" + out())

            def storage_p99():
                r = api(prom_port, "/api/v1/query", query=(
                    "histogram_quantile(0.99, sum by (le) "
                    "(rate(poh_storage_latency_seconds_bucket[1m])))"))["result"]
                return r and r[0]["value"][1] not in ("NaN", "+Inf")
            self.assertTrue(pohtest.wait_until(storage_p99, 60, 0.5),
                            "the storage latency query returned no data")

            def node_down(state):
                alerts = api(prom_port, "/api/v1/alerts")["alerts"]
                return [a for a in alerts
                        if a["labels"]["alertname"] == "PohNodeDown" and a["state"] == state]
            self.assertTrue(pohtest.wait_until(lambda: node_down("pending"), 60, 0.25),
                            "PohNodeDown never became pending:\n" + out())
            self.assertEqual([a["labels"]["target"] for a in node_down("pending")],
                             [f"127.0.0.1:{node}"])
            self.assertTrue(pohtest.wait_until(lambda: node_down("firing"), 60, 0.5),
                            "PohNodeDown never fired:\n" + out())
            self.assertEqual([a["labels"]["target"] for a in node_down("firing")],
                             [f"127.0.0.1:{node}"])
            self.assertLess(time.monotonic() - start, 120, "the whole path took over 2 minutes")

            def recorded():
                r = api(prom_port, "/api/v1/query",
                        query="cluster_stream_operation:poh_mongodb_changes:rate5m")["result"]
                return r and float(r[0]["value"][1]) > 0
            self.assertTrue(pohtest.wait_until(recorded, 60, 0.5),
                            "the recording rules recorded nothing")
            self.assertTrue(os.path.isdir(work))
        finally:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
                self.fail("Ctrl-C did not stop the demo:\n" + out())
        reader.join(5)
        self.assertTrue(pohtest.wait_until(lambda: not port_open(exp_port) and
                                           not port_open(prom_port), 10),
                        "a demo process still listens after Ctrl-C")
        self.assertFalse(os.path.exists(work), "the work directory was left behind")


if __name__ == "__main__":
    pohtest.require(PROMETHEUS, "no prometheus on PATH (Debian package prometheus)")
    pohtest.main()
