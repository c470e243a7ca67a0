# SPDX-License-Identifier: Apache-2.0
"""The MongoDB collectors against a real single-node replica set: `mongod` on
PATH (started here) or POH_TEST_MONGODB_URI. Expectations are computed
with pymongo, an independent driver: the change events it sees (wallTime
included) give the exact latency sums the exporter must report.

The scenarios of issue 16 item 3 that test_mongodb_streams.py runs against
the simulator run here against mongod: drop and rename of the watched
collection (invalidate, reopened with startAfter, also across kill -9), a 20 MB
update event (split, or refused by an older server), a
primary step-down while writing, and history lost (the saved token's entry
truncated out of the oplog). The last two step down or fill the server, so
they run only on a mongod this test started itself, never on
POH_TEST_MONGODB_URI."""
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
OWN = False  # the mongod was started by this test (may be stepped down, filled)
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
                exp.kill9()
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


L = {"cluster": "real", "stream": "tx"}


class TestRealMongodStreams(unittest.TestCase):
    """Exact counts through what production does to a stream."""

    def setUp(self):
        self.client = pymongo.MongoClient(URI, serverSelectionTimeoutMS=10000, tz_aware=True)
        self.db = self.client.poh_e2e
        self.coll = self.db[COLL]
        self.state = mongoexp.StateDir()
        self.cfg = mongoexp.config([{"name": "real", "uri": URI, "streams": [STREAM]}],
                                   self.state.path)
        self.exp = None

    def tearDown(self):
        try:
            if self.exp:
                mongoexp.stop_checked(self.exp)
        finally:
            for name in (COLL, COLL + "_old", "filler_%d" % os.getpid()):
                try:
                    self.db.drop_collection(name)
                except pymongo.errors.PyMongoError:
                    pass
            self.client.close()
            self.state.cleanup()

    def start(self):
        self.exp = pohtest.Exporter(self.cfg)
        self.assertTrue(wait_stream_up(self.exp, cluster="real"))
        return self.exp

    def insert(self, n, coll=None):
        (coll or self.coll).insert_many([{"created_at": utcnow()} for _ in range(n)])

    def wait_inserts(self, n, timeout=60):
        self.assertEqual(wait_value(self.exp, "poh_mongodb_changes_total", n, timeout,
                                    operation="insert", **L), n)

    def assert_counts(self, invalidations, drops, renames):
        self.assertEqual(wait_value(self.exp, "poh_mongodb_change_stream_invalidations_total",
                                    invalidations, **L), invalidations)
        self.assertTrue(wait_stream_up(self.exp, cluster="real"))
        m = self.exp.metrics()
        for op, want in (("invalidate", invalidations), ("drop", drops), ("rename", renames)):
            self.assertEqual(pohtest.value(m, "poh_mongodb_changes_total", operation=op, **L)
                             or 0, want, op)
        self.assertEqual(pohtest.value(m, "poh_mongodb_change_stream_history_lost_total", **L), 0)

    def test_drop_rename_and_kill9_after_invalidate(self):
        self.start()
        self.insert(50)
        self.wait_inserts(50)
        self.coll.drop()
        self.insert(30)                           # creates the collection again
        self.wait_inserts(80)
        self.assert_counts(1, drops=1, renames=0)
        self.client.admin.command("renameCollection", "poh_e2e." + COLL,
                                  to="poh_e2e." + COLL + "_old")
        self.insert(20)
        self.wait_inserts(100)
        self.assert_counts(2, drops=1, renames=1)
        # the invalidate's token is what a restart starts after (resumeAfter would be refused)
        self.coll.drop()
        self.assertEqual(wait_value(self.exp, "poh_mongodb_change_stream_invalidations_total", 3,
                                    **L), 3)
        self.exp.kill9()
        self.insert(10)
        self.start()
        self.wait_inserts(110)
        self.assert_counts(3, drops=2, renames=1)
        self.assertEqual(value(self.exp, "poh_mongodb_change_stream_resumes_total", **L), 0)
        self.assertEqual(value(self.exp, "poh_storage_latency_seconds_count", **L), 110)

    def test_step_down_while_writing(self):
        if not OWN:
            self.skipTest("SKIPPED: steps the primary down: only on a mongod this test started")
        self.start()
        stop = threading.Event()

        def writer():
            c = pymongo.MongoClient(URI, serverSelectionTimeoutMS=30000)
            coll = c.poh_e2e[COLL]
            while not stop.is_set():
                try:
                    coll.insert_many([{"created_at": utcnow()} for _ in range(20)])
                except pymongo.errors.PyMongoError:
                    time.sleep(0.1)               # no primary for a moment; counted below
            c.close()

        t = threading.Thread(target=writer)
        t.start()
        try:
            time.sleep(1.0)
            try:
                # one node: no electable secondary, so force; it stands again after 2 s
                self.client.admin.command("replSetStepDown", 2, secondaryCatchUpPeriodSecs=1,
                                          force=True)
            except pymongo.errors.AutoReconnect:
                pass                              # the step-down closes our connection
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if self.client.admin.command("hello").get("isWritablePrimary"):
                        break
                except pymongo.errors.PyMongoError:
                    pass
                time.sleep(0.2)
            else:
                self.fail("mongod did not become primary again within 60 s")
            time.sleep(1.0)
        finally:
            stop.set()
            t.join(60)
        n = self.coll.count_documents({})         # what was written, whatever failed midway
        self.assertGreater(n, 0)
        self.wait_inserts(n, timeout=90)
        time.sleep(1.0)
        m = self.exp.metrics()
        self.assertEqual(pohtest.value(m, "poh_mongodb_changes_total", operation="insert", **L), n)
        self.assertEqual(pohtest.value(m, "poh_storage_latency_seconds_count", **L), n)
        self.assertEqual(pohtest.value(m, "poh_mongodb_change_stream_history_lost_total", **L), 0)

    def test_update_event_over_16_mb(self):
        """10 MB updatedFields + 10 MB fullDocument (updateLookup): a server with
        $changeStreamSplitLargeEvent (7.0+, 6.0.9+) sends it in fragments, counted
        once as an update; an older one refuses it (BSONObjectTooLarge), counted
        once as too large. Either way every other event is counted exactly."""
        v = tuple(self.client.server_info()["versionArray"][:3])
        if v >= (7, 0, 0) or (6, 0, 9) <= v < (6, 1, 0):
            splits = True
        elif v < (6, 0, 9):
            splits = False
        else:
            splits = None                         # 6.1-6.3 rapid releases: either
        self.start()
        now = utcnow()
        self.coll.insert_one({"_id": "big", "created_at": now, "blob": "x" * (10 << 20)})
        self.coll.update_one({"_id": "big"}, {"$set": {"blob": "y" * (10 << 20),
                                                       "approved_at": utcnow()}})
        self.insert(5)
        self.wait_inserts(6)
        time.sleep(1.5)                           # nothing more: no loop on the same event
        m = self.exp.metrics()
        updates = pohtest.value(m, "poh_mongodb_changes_total", operation="update", **L) or 0
        big = pohtest.value(m, "poh_mongodb_change_stream_events_too_large_total", **L) or 0
        self.assertEqual(updates + big, 1, (updates, big))
        if splits is not None:
            self.assertEqual((updates, big), (1, 0) if splits else (0, 1), v)
        if updates:
            self.assertEqual(pohtest.value(m, "poh_approval_latency_seconds_count", **L), 1)
        self.assertEqual(pohtest.value(m, "poh_mongodb_changes_total", operation="insert", **L), 6)
        self.assertEqual(pohtest.value(m, "poh_mongodb_change_stream_up", **L), 1)

    def oldest_oplog_ts(self):
        first = self.client.local["oplog.rs"].find({}, {"ts": 1}).sort("$natural", 1).limit(1)
        return next(iter(first))["ts"]

    def test_history_lost(self):
        if not OWN:
            self.skipTest("SKIPPED: overflows the oplog: only on a mongod this test started")
        self.start()
        self.insert(10)
        self.wait_inserts(10)
        mongoexp.stop_checked(self.exp)
        self.exp = None
        time.sleep(1.1)                           # the gap spans at least one cluster second
        self.insert(5)                            # never observable: truncated below
        last = self.client.local["oplog.rs"].find({}, {"ts": 1}).sort("$natural", -1).limit(1)
        missed_ts = next(iter(last))["ts"]
        filler = self.db["filler_%d" % os.getpid()]
        blob = "f" * (1 << 20)
        deadline = time.monotonic() + 120
        # the oplog is 64 MB (mongosim.real_mongod): write until its oldest entry is newer
        while self.oldest_oplog_ts() <= missed_ts:
            self.assertLess(time.monotonic(), deadline, "the oplog was not truncated in 120 s")
            filler.insert_many([{"b": blob} for _ in range(16)])
        self.start()
        self.assertEqual(wait_value(self.exp, "poh_mongodb_change_stream_history_lost_total", 1,
                                    **L), 1)
        self.assertTrue(self.exp.wait_log(r"real/tx: change stream history lost",
                                          timeout=10), self.exp.log_text()[-3000:])
        self.insert(3)
        self.wait_inserts(13)                     # the 5 were not seen: a gap, not a guess
        m = self.exp.metrics()
        self.assertGreater(pohtest.value(m, "poh_mongodb_change_stream_history_lost_seconds_total",
                                         **L), 0)
        self.assertEqual(pohtest.value(m, "poh_mongodb_changes_total", operation="insert", **L), 13)


if __name__ == "__main__":
    OWN = not os.environ.get("POH_TEST_MONGODB_URI")
    with mongosim.real_mongod() as uri:
        pohtest.require(uri, "no mongod: set MONGOD=/path/to/mongod or POH_TEST_MONGODB_URI, or put mongod on PATH",
                        allowed_in_ci="no Debian package provides mongod")
        URI = uri
        sys.argv[1:] = []
        pohtest.main()
