# SPDX-License-Identifier: Apache-2.0
"""The README's metric reference cannot drift from the code: run the exporter
with every collector (gRPC groups with a state call, a MongoDB cluster with a
change stream, tracing), scrape /metrics and /probe, and check that every
metric family exposed is documented in the README and every metric the
README's tables name is exposed. The collectors' metric tables (poh_exporter
--print-metric-table) are checked too: each family they declare is in the
README and exposed where they say, with their HELP text, type and labels; a
label the table marks optional ("shard?") is on some series and absent from
others (a sharded cluster's shards and a replica set)."""
import os
import re
import subprocess
import unittest

import pymongo

import grpcsim
import mongoexp
import mongosim
import otlpsink
import pohtest

README = os.path.join(pohtest.SOURCE, "README.md")
# Names configured by the user rather than fixed by the code.
STATE_FIELD = "poh_node_tick_height"
LATENCY_PATTERN = "poh_<name>_latency_seconds"


def families(text):
    return set(re.findall(r"^# TYPE (\S+) \S+$", text, re.M))


def documented():
    """Backquoted metric names in README table rows, and anywhere in the text."""
    text = open(README).read()
    in_tables = set()
    for line in text.splitlines():
        if line.startswith("| `"):
            first_cell = line.split("|")[1]
            in_tables |= set(re.findall(r"`((?:poh|process)_[a-z0-9_<>]+)`", first_cell))
    anywhere = set(re.findall(r"`((?:poh|process)_[a-z0-9_<>]+)`", text))
    return in_tables, anywhere


def metric_tables():
    """[(kind, endpoint, name, type, labels, help)] from the collectors' tables;
    labels are [(name, optional)]."""
    out = subprocess.run([pohtest.EXPORTER, "--print-metric-table"], check=True,
                         capture_output=True, text=True, timeout=30).stdout
    rows = []
    for line in out.splitlines():
        kind, endpoint, name, mtype, labels, text = line.split("\t")
        labels = [(l.rstrip("?"), l.endswith("?")) for l in labels.split(",")] if labels else []
        rows.append((kind, endpoint, name, mtype, labels, text))
    return rows


def family_labels(text, name):
    """Label names of each sample of family name (le left out), in page order."""
    out = []
    for m in re.finditer(r"^%s(?:_bucket|_sum|_count)?(?:\{([^}]*)\})? " % re.escape(name), text,
                         re.M):
        out.append([kv.split("=", 1)[0]
                    for kv in re.findall(r'(\w+="(?:[^"\\]|\\.)*")', m.group(1) or "")
                    if not kv.startswith("le=")])
    return out


class MetricReferenceTest(unittest.TestCase):
    def check_tables(self, pages, in_tables, anywhere):
        rows = metric_tables()
        self.assertTrue(rows, "no metric table printed")
        for kind, endpoint, name, mtype, labels, text in rows:
            with self.subTest(kind=kind, endpoint=endpoint, family=name):
                page = pages[endpoint]
                self.assertIn(name, in_tables if endpoint == "/metrics" else anywhere,
                              "declared but not in the README")
                self.assertIn(f"\n# HELP {name} {text}\n", "\n" + page)
                self.assertIn(f"\n# TYPE {name} {mtype}\n", "\n" + page)
                samples = family_labels(page, name)
                self.assertTrue(samples, "no sample")
                for got in samples:
                    self.assertEqual(got, [l for l, opt in labels if not opt or l in got])
                optional = {l for l, opt in labels if opt}
                if optional:
                    self.assertIn(True, [optional <= set(got) for got in samples],
                                  "optional labels never present")
                    self.assertIn(True, [not optional & set(got) for got in samples],
                                  "optional labels never absent")

    def test_readme_matches_exposition(self):
        state = mongoexp.StateDir()
        with grpcsim.NodeSim([[], ["--mode", "not_serving"]]) as node, \
                mongosim.MongoSim("--rate", "50") as sim, otlpsink.Sink() as sink, \
                mongosim.MongoSim("--shards", "2") as sharded:
            targets = ", ".join(f"127.0.0.1:{p}" for p in node.ports)
            extra = (f"grpc:\n  - name: poh\n    targets: [{targets}]\n"
                     f"    health_service: poh.PoH\n    state:\n"
                     f"      method: /poh.PoH/GetState\n      fields:\n"
                     f"        - {{path: \"1\", metric: {STATE_FIELD}, help: tick height}}\n"
                     f"        - {{path: \"9\", metric: poh_node_missing, help: absent field}}\n"
                     f"tracing:\n  enabled: true\n  endpoint: {sink.endpoint}\n")
            cfg = mongoexp.config([{"name": "main", "uri": sim.uri,
                                    "streams": [mongoexp.TX_STREAM]},
                                   {"name": "sharded", "uri": "mongodb://%s/" % sharded.address}],
                                  state.path, extra)
            ex = pohtest.Exporter(cfg)
            try:
                self.assertTrue(mongoexp.wait_stream_up(ex))
                sim.insert(20)
                sim.fail_getmore(91)
                mongoexp.wait_value(ex, "poh_mongodb_change_stream_resumes_total", 1,
                                    cluster="main", stream="tx")
                sim.insert(20)
                # A document without created_at: a field error.
                client = pymongo.MongoClient(sim.uri, serverSelectionTimeoutMS=5000)
                client.dag.transactions.insert_one({"note": "no created_at"})
                client.close()
                mongoexp.wait_value(ex, "poh_mongodb_change_field_errors_total", 1,
                                    cluster="main", stream="tx", field="created_at",
                                    reason="missing")
                sharded.control("SPLIT dag.transactions 4")  # a sharded collection: chunk series
                mongoexp.wait_value(ex, "poh_mongodb_up", 1, cluster="sharded", shard="shard1")
                mongoexp.wait_value(ex, "poh_mongodb_chunks", 2, cluster="sharded", shard="shard1",
                                    collection="dag.transactions")
                page = ex.scrape()
                exposed = families(page)
                st, _, body = ex.request(f"/probe?module=poh&target={node.addr(0)}")
                self.assertEqual(st, 200)
                probe_only = families(body.decode()) - exposed
                pages = {"/metrics": page, "/probe": body.decode()}
            finally:
                mongoexp.stop_checked(ex)
        state.cleanup()

        in_tables, anywhere = documented()
        # Text-format family names: counters keep _total, histograms are bare.
        # /metrics families belong in the tables; /probe's own in its section.
        undocumented = set()
        for f in exposed:
            if f == STATE_FIELD or (re.fullmatch(r"poh_[a-z]+_latency_seconds", f) and
                                    LATENCY_PATTERN in in_tables):
                continue
            if f not in in_tables:
                undocumented.add(f)
        undocumented |= {f for f in probe_only if f not in anywhere}
        self.assertEqual(undocumented, set(), "exposed but not in the README")
        missing = {m for m in in_tables if "<" not in m and m not in exposed | probe_only}
        self.assertEqual(missing, set(), "in the README's tables but never exposed")
        self.check_tables(pages, in_tables, anywhere)


if __name__ == "__main__":
    pohtest.main()
