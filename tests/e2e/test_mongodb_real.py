# SPDX-License-Identifier: Apache-2.0
"""The MongoDB collectors against a real single-node replica set: `mongod` on
PATH (started here) or POH_TEST_MONGODB_URI. Expectations are computed
with pymongo, an independent driver: the change events it sees (wallTime
included) give the exact latency sums the exporter must report."""
import datetime
import os
import sys
import threading
import time
import unittest

import pymongo

import mongoexp
import mongosim
import pohtest
from mongoexp import value, wait_value, wait_stream_up

URI = None
COLL = f"transactions_{os.getpid()}"

STREAM = f"""
- name: tx
  database: poh_e2e
  collection: {COLL}
  latencies:
    - {{name: storage, from_field: created_at, to: commit}}
    - {{name: approval, from_field: created_at, to_field: approved_at}}
"""


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


class TestRealMongod(unittest.TestCase):
    def setUp(self):
        self.client = pymongo.MongoClient(URI, serverSelectionTimeoutMS=10000, tz_aware=True)
        self.coll = self.client.poh_e2e[COLL]
        self.state = mongoexp.StateDir()
        self.cfg = mongoexp.config([{"name": "real", "uri": URI, "streams": [STREAM]}],
                                   self.state.path)

    def tearDown(self):
        try:
            self.coll.drop()  # cleanup only; the name is unique to this run
        except pymongo.errors.OperationFailure:
            pass
        self.client.close()
        self.state.cleanup()

    def test_counts_and_latencies(self):
        exp = pohtest.Exporter(self.cfg)
        try:
            self.assertTrue(wait_stream_up(exp, cluster="real"))
            with self.coll.watch(full_document="updateLookup") as cs:
                n = 200
                self.coll.insert_many([{"i": i, "created_at": utcnow()} for i in range(n)])
                for i in range(n):
                    self.coll.update_one({"i": i}, {"$set": {"approved_at": utcnow()}})
                storage = approval = 0.0
                seen = 0
                while seen < 2 * n:
                    ev = cs.next()
                    seen += 1
                    doc = ev["fullDocument"]
                    if ev["operationType"] == "insert":
                        storage += max(0.0, (ev["wallTime"].replace(tzinfo=datetime.timezone.utc)
                                             - doc["created_at"]).total_seconds())
                    else:
                        approval += max(0.0, (ev["updateDescription"]["updatedFields"]["approved_at"]
                                              - doc["created_at"]).total_seconds())
            self.assertEqual(wait_value(exp, "poh_mongodb_changes_total", n, cluster="real",
                                        stream="tx", operation="update"), n)
            m = exp.metrics()
            self.assertEqual(pohtest.value(m, "poh_mongodb_changes_total", cluster="real",
                                           stream="tx", operation="insert"), n)
            self.assertEqual(pohtest.value(m, "poh_storage_latency_seconds_count",
                                           cluster="real", stream="tx"), n)
            self.assertAlmostEqual(pohtest.value(m, "poh_storage_latency_seconds_sum",
                                                 cluster="real", stream="tx"), storage, delta=1e-6 * n)
            self.assertEqual(pohtest.value(m, "poh_approval_latency_seconds_count",
                                           cluster="real", stream="tx"), n)
            self.assertAlmostEqual(pohtest.value(m, "poh_approval_latency_seconds_sum",
                                                 cluster="real", stream="tx"), approval, delta=1e-6 * n)
            self.assertEqual(pohtest.value(m, "poh_mongodb_up", cluster="real"), 1)
            self.assertGreaterEqual(pohtest.value(m, "poh_mongodb_oplog_window_seconds",
                                                  cluster="real"), 0)
            self.assertGreater(pohtest.value(m, "poh_mongodb_oplog_max_size_bytes", cluster="real"), 0)
            lag = pohtest.find(m, "poh_mongodb_replication_lag_seconds", cluster="real")
            self.assertEqual(list(lag.values()), [0])
        finally:
            mongoexp.stop_checked(exp)

    def test_kill9_restart_while_writing(self):
        exp = pohtest.Exporter(self.cfg)
        stop = threading.Event()
        written = [0]

        def writer():
            c = pymongo.MongoClient(URI, serverSelectionTimeoutMS=10000)
            coll = c.poh_e2e[COLL]
            while not stop.is_set():
                coll.insert_many([{"created_at": utcnow()} for _ in range(50)])
                written[0] += 50
            c.close()

        t = threading.Thread(target=writer)
        try:
            self.assertTrue(wait_stream_up(exp, cluster="real"))
            t.start()
            for _ in range(2):
                time.sleep(0.7)
                exp.proc.kill()
                exp.proc.wait(10)
                exp.stop()
                exp = pohtest.Exporter(self.cfg)
                self.assertTrue(wait_stream_up(exp, cluster="real"))
            time.sleep(0.5)
            stop.set()
            t.join(30)
            self.assertEqual(wait_value(exp, "poh_mongodb_changes_total", written[0], 60,
                                        cluster="real", stream="tx", operation="insert"),
                             written[0])
            time.sleep(1)
            self.assertEqual(value(exp, "poh_mongodb_changes_total", cluster="real", stream="tx",
                                   operation="insert"), written[0])
        finally:
            stop.set()
            if t.is_alive():
                t.join(30)
            mongoexp.stop_checked(exp)


if __name__ == "__main__":
    with mongosim.real_mongod() as uri:
        pohtest.require(uri, "no mongod: set MONGOD=/path/to/mongod or POH_TEST_MONGODB_URI, or put mongod on PATH",
                        allowed_in_ci="no Debian package provides mongod")
        URI = uri
        sys.argv[1:] = []
        pohtest.main()
