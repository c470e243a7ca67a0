# SPDX-License-Identifier: Apache-2.0
"""MongoDB tracing through the real exporter and mongo_rs_sim: a CLIENT span
per scrape-time command under the scrape span (a replica set's, and a mongos's
cluster-level and shard commands), and a storage.commit span per
traced document joined to the document's own trace (its traceparent), from
created_at to the commit, with sampling on and off and the rate limit."""
import unittest

import mongoexp
import mongosim
import otlpsink
import pohtest

try:
    import pymongo
except ImportError:  # pragma: no cover
    pymongo = None


def exporter_config(sim, state_dir, sink, sample_ratio=1.0, spans_per_second=1000):
    stream = mongoexp.TX_STREAM + f"  commit_spans_per_second: {spans_per_second}\n"
    tracing = (f"tracing:\n  enabled: true\n  endpoint: {sink.endpoint}\n"
               f"  batch_timeout: 100ms\n  shutdown_timeout: 3s\n"
               f"  sample_ratio: {sample_ratio}\n")
    return mongoexp.config([{"name": "main", "uri": sim.uri, "streams": [stream]}], state_dir,
                           tracing)


def documents(sim):
    """traceparent -> (created_at ms) of every generated document."""
    client = pymongo.MongoClient(sim.uri, serverSelectionTimeoutMS=5000)
    try:
        out = {}
        for d in client.dag.transactions.find({}):
            ms = int(d["created_at"].timestamp() * 1000)
            out[d["traceparent"]] = ms
        return out
    finally:
        client.close()


class MongoTracingTest(unittest.TestCase):
    def run_stack(self, n, **kw):
        state = mongoexp.StateDir()
        with mongosim.MongoSim("--commit-delay-ms", "40") as sim, otlpsink.Sink() as sink:
            ex = pohtest.Exporter(exporter_config(sim, state.path, sink, **kw))
            try:
                self.assertTrue(mongoexp.wait_stream_up(ex))
                sim.insert(n)
                self.assertEqual(mongoexp.wait_value(ex, "poh_mongodb_changes_total", n,
                                                     cluster="main", stream="tx",
                                                     operation="insert"), n)
                ex.scrape()
            finally:
                mongoexp.stop_checked(ex)
            docs = documents(sim)
            spans = sink.spans()
        state.cleanup()
        return docs, spans

    def test_commit_spans_join_document_traces(self):
        docs, spans = self.run_stack(20)
        commits = [s for s in spans if s["name"] == "storage.commit"]
        self.assertEqual(len(commits), 20)
        self.assertEqual(len(docs), 20)
        for s in commits:
            tp = f"00-{s['trace_id']}-{s['parent_span_id']}-01"
            self.assertIn(tp, docs, "storage.commit is not a child of a document's span")
            self.assertEqual(s["kind"], 1)  # INTERNAL
            self.assertEqual(s["start"] // 1000000, docs[tp])
            took_ms = (s["end"] - s["start"]) / 1e6
            self.assertAlmostEqual(took_ms, 40, delta=2)  # --commit-delay-ms
            a = s["attributes"]
            self.assertEqual(a["db.system"], "mongodb")
            self.assertEqual(a["db.name"], "dag")
            self.assertEqual(a["db.mongodb.collection"], "transactions")
        self.assertEqual(len({s["parent_span_id"] for s in commits}), 20)

        scrape_ids = {s["span_id"]: s for s in spans if s["name"] == "scrape"}
        self.assertTrue(scrape_ids)
        cmds = [s for s in spans if s["attributes"].get("db.system") == "mongodb"
                and s["kind"] == 3]
        ops = {s["attributes"]["db.operation"] for s in cmds}
        self.assertEqual(ops, {"replSetGetStatus", "find", "collStats", "serverStatus"})
        for s in cmds:
            parent = scrape_ids[s["parent_span_id"]]
            self.assertEqual(s["trace_id"], parent["trace_id"])
            self.assertIn(s["attributes"]["db.name"], ("admin", "local"))
            self.assertEqual(s["status"]["code"], 0)

    def test_router_commands_have_spans(self):
        # Through a mongos: the router's own commands (balancer, chunks,
        # changelog, listShards, serverStatus) and each shard's are CLIENT
        # spans under the scrape span, as a replica set's are.
        state = mongoexp.StateDir()
        with mongosim.MongoSim("--shards", "2") as sim, otlpsink.Sink() as sink:
            tracing = (f"tracing:\n  enabled: true\n  endpoint: {sink.endpoint}\n"
                       f"  batch_timeout: 100ms\n  shutdown_timeout: 3s\n")
            uri = "mongodb://%s/" % sim.address  # the router, not a replica set
            ex = pohtest.Exporter(mongoexp.config([{"name": "main", "uri": uri}], state.path,
                                                  tracing))
            try:
                m = ex.metrics()
                self.assertEqual(pohtest.value(m, "poh_mongodb_up", cluster="main"), 1)
                self.assertIsNotNone(pohtest.value(m, "poh_mongodb_balancer_enabled",
                                                   cluster="main"))
            finally:
                mongoexp.stop_checked(ex)
            spans = sink.spans()
        state.cleanup()
        scrapes = {s["span_id"]: s for s in spans if s["name"] == "scrape"}
        cmds = [s for s in spans if s["attributes"].get("db.system") == "mongodb"
                and s["kind"] == 3]
        by_name = {}
        for s in cmds:
            self.assertIn(s["parent_span_id"], scrapes, s["name"])
            self.assertEqual(s["trace_id"], scrapes[s["parent_span_id"]]["trace_id"])
            by_name.setdefault(s["name"], []).append(s)
        for name in ("balancerStatus admin", "aggregate config", "find config",
                     "listShards admin", "serverStatus admin", "replSetGetStatus admin"):
            self.assertTrue(name in by_name, f"no {name!r} span: {sorted(by_name)}")
        for name in ("balancerStatus admin", "aggregate config", "listShards admin"):
            self.assertEqual(by_name[name][0]["status"]["code"], 0, name)

    def test_sampling_off_keeps_joined_spans(self):
        # Own traces are not sampled; a document's trace says sampled (flags 01)
        # and its storage.commit span follows that decision.
        docs, spans = self.run_stack(10, sample_ratio=0)
        self.assertEqual([s for s in spans if s["name"] == "scrape"], [])
        self.assertEqual(len([s for s in spans if s["name"] == "storage.commit"]), 10)

    def test_rate_limit(self):
        docs, spans = self.run_stack(200, spans_per_second=5)
        n = len([s for s in spans if s["name"] == "storage.commit"])
        self.assertGreaterEqual(n, 5)
        self.assertLess(n, 60)


if __name__ == "__main__":
    pohtest.require(pymongo, "python3-pymongo is not installed (Debian package python3-pymongo)")
    pohtest.main()
