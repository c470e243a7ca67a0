# SPDX-License-Identifier: Apache-2.0
"""A real Prometheus server (Debian package prometheus) scrapes the real
exporter on loopback; its HTTP API must show up == 1 and our samples."""
import json
import os
import subprocess
import tempfile
import time
import unittest
import urllib.parse
import urllib.request

import pohtest

PROMETHEUS = pohtest.which("prometheus")


def start_prometheus(targets, tmp, interval="1s", extra_jobs=""):
    port = pohtest.free_port()
    cfg = os.path.join(tmp, "prometheus.yml")
    with open(cfg, "w") as f:
        f.write(f"global:\n  scrape_interval: {interval}\n  scrape_timeout: {interval}\n"
                f"scrape_configs:\n  - job_name: poh\n    static_configs:\n"
                f"      - targets: {json.dumps(targets)}\n{extra_jobs}")
    proc = subprocess.Popen([PROMETHEUS, f"--config.file={cfg}",
                             f"--storage.tsdb.path={os.path.join(tmp, 'data')}",
                             f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return proc, f"http://127.0.0.1:{port}"


def query(base, q):
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": q})
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            d = json.load(r)
    except OSError:
        return None
    if d.get("status") != "success":
        return None
    return d["data"]["result"]


def target_metadata(base, metric):
    """Prometheus's metadata of metric as scraped from job poh ([] if none,
    None if the API did not answer)."""
    url = f"{base}/api/v1/targets/metadata?" + urllib.parse.urlencode(
        {"match_target": '{job="poh"}', "metric": metric})
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            d = json.load(r)
    except OSError:
        return None
    if d.get("status") != "success":
        return None
    return d.get("data") or []


class PrometheusScrapeTest(unittest.TestCase):
    def test_up(self):
        tmp = tempfile.mkdtemp(prefix="poh-prom-")
        with pohtest.Exporter() as ex:
            proc, base = start_prometheus([f"127.0.0.1:{ex.port}"], tmp)
            try:
                res = pohtest.wait_until(
                    lambda: (r := query(base, 'up{job="poh"}')) and r[0]["value"][1] == "1" and r,
                    timeout=60, interval=0.5)
                self.assertTrue(res, "Prometheus never saw up == 1")
                res = pohtest.wait_until(
                    lambda: query(base, "poh_exporter_build_info"), timeout=30, interval=0.5)
                self.assertTrue(res)
                self.assertEqual(res[0]["value"][1], "1")
                with urllib.request.urlopen(f"{base}/api/v1/targets", timeout=5) as r:
                    t = json.load(r)["data"]["activeTargets"][0]
                self.assertEqual(t["health"], "up")
                self.assertEqual(t["lastError"], "")
                res = query(base, "process_cpu_seconds_total")
                self.assertTrue(res)
                # Prometheus asked for OpenMetrics and got it: only an OpenMetrics
                # exposition names a counter's family without _total
                # ("# TYPE process_cpu_seconds counter"), and Prometheus keeps the
                # metadata under the name it read. In the text format it would be
                # process_cpu_seconds_total.
                meta = pohtest.wait_until(
                    lambda: target_metadata(base, "process_cpu_seconds"), timeout=30,
                    interval=0.5)
                self.assertTrue(meta, "no metadata for the OpenMetrics family name")
                self.assertEqual(meta[0]["type"], "counter")
                # [] (not None: an API error must not pass as "absent").
                self.assertEqual(target_metadata(base, "process_cpu_seconds_total"), [],
                                 "the text format's name: OpenMetrics was not negotiated")
            finally:
                proc.terminate()
                proc.wait(20)


if __name__ == "__main__":
    pohtest.require(PROMETHEUS, "no prometheus on PATH (Debian package prometheus)")
    pohtest.main()
