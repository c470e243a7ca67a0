# SPDX-License-Identifier: Apache-2.0
"""The README's "Scaling out" example works: the hashmod relabel_configs block,
copied from the README with only the addresses replaced, makes a real
Prometheus send each PoH target to exactly one of three real exporters
through /probe, the one Prometheus' hashmod names, and every probe succeeds."""
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest
import urllib.parse
import urllib.request

import yaml

import pohtest

PROMETHEUS = pohtest.which("prometheus")
README = os.path.join(pohtest.SOURCE, "README.md")
N_TARGETS = 8


def readme_sharding_job():
    with open(README) as f:
        text = f.read()
    start = text.index("## Scaling out")
    end = text.index("\n## ", start + 1)
    block = re.search(r"```yaml\n(.*?)```", text[start:end], re.S).group(1)
    return yaml.safe_load(block)["scrape_configs"][0]


def hashmod(value, modulus):
    """Prometheus' hashmod: md5 of the value, low 8 bytes big-endian, modulo."""
    return int.from_bytes(hashlib.md5(value.encode()).digest()[8:], "big") % modulus


class ScalingOutTest(unittest.TestCase):
    def test_hashmod_sharding_from_readme(self):
        import grpcsim
        job = readme_sharding_job()
        modulus = next(r["modulus"] for r in job["relabel_configs"]
                       if r.get("action") == "hashmod")
        replacements = [r for r in job["relabel_configs"]
                        if r.get("target_label") == "__address__"]
        self.assertEqual(len(replacements), modulus)
        group = job["params"]["module"][0]

        tmp = tempfile.mkdtemp(prefix="poh-shard-")
        stack = []
        try:
            nodes = grpcsim.NodeSim([["--ports", str(N_TARGETS)]])
            stack.append(nodes.stop)
            targets = [f"127.0.0.1:{p}" for p in nodes.listener_ports(0)]
            # Prometheus holds the target list: the group allows the nodes' network.
            config = (f"grpc:\n  - name: {group}\n    targets: [{targets[0]}]\n"
                      "    health_service: poh.PoH\n    timeout: 500ms\n"
                      "    probe: {allow: [\"127.0.0.0/8\"]}\n")
            exporters = []
            for _ in range(modulus):
                ex = pohtest.Exporter(config)
                stack.append(ex.stop)
                exporters.append(f"127.0.0.1:{ex.port}")
            # The README's job, addresses replaced: shard N -> exporter N.
            job["static_configs"] = [{"targets": targets}]
            for r in replacements:
                r["replacement"] = exporters[int(r["regex"])]
            cfg = os.path.join(tmp, "prometheus.yml")
            with open(cfg, "w") as f:
                yaml.safe_dump({"global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
                                "scrape_configs": [job]}, f)
            port = pohtest.free_port()
            log = open(os.path.join(tmp, "prometheus.log"), "w")
            prom = subprocess.Popen([PROMETHEUS, f"--config.file={cfg}",
                                     f"--storage.tsdb.path={tmp}/data",
                                     f"--web.listen-address=127.0.0.1:{port}"],
                                    stdout=subprocess.DEVNULL, stderr=log)
            stack.append(lambda: (prom.terminate(), prom.wait(20), log.close()))
            base = f"http://127.0.0.1:{port}/api/v1/"

            def api(path, **params):
                try:
                    with urllib.request.urlopen(base + path + "?" + urllib.parse.urlencode(
                            params), timeout=5) as r:
                        return json.load(r)["data"]
                except OSError:
                    return None

            def query(q):
                d = api("query", query=q)
                return d["result"] if d else None

            def all_probed():
                res = query(f'poh_probe_success{{job="{job["job_name"]}"}}')
                return res if res and len(res) == N_TARGETS else None
            res = pohtest.wait_until(all_probed, timeout=60, interval=0.5)
            self.assertTrue(res, f"not every target was probed: {res}")
            self.assertEqual(sorted(s["metric"]["instance"] for s in res), sorted(targets))
            self.assertTrue(all(s["value"][1] == "1" for s in res), res)
            # The labels the dashboard's probe panels and PohNodeDown select on.
            for s in res:
                self.assertEqual(s["metric"]["target"], s["metric"]["instance"])
                self.assertEqual(s["metric"]["group"], group)
            # What the README says /probe answers with.
            for name in ("poh_probe_duration_seconds", "poh_grpc_status_code",
                         "poh_grpc_health_status"):
                self.assertTrue(query(f'{name}{{job="{job["job_name"]}"}}'), name)

            active = api("targets")["activeTargets"]
            self.assertEqual(len(active), N_TARGETS)
            used = set()
            for t in active:
                target = t["labels"]["instance"]
                url = urllib.parse.urlsplit(t["scrapeUrl"])
                want = exporters[hashmod(target, modulus)]
                self.assertEqual(url.netloc, want, target)
                self.assertEqual(url.path, "/probe")
                self.assertEqual(urllib.parse.parse_qs(url.query),
                                 {"module": [group], "target": [target]})
                self.assertEqual(t["health"], "up", t.get("lastError"))
                used.add(url.netloc)
            print(f"{N_TARGETS} targets over {len(used)} of {modulus} exporters")
        finally:
            for stop in reversed(stack):
                try:
                    stop()
                except Exception as e:
                    print(f"teardown: {e}")
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    pohtest.require(PROMETHEUS, "no prometheus on PATH (Debian package prometheus)")
    pohtest.main()
