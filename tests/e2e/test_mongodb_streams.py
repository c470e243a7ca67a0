# SPDX-License-Identifier: Apache-2.0
"""Change streams through what production does to them (issue 16 item 3),
the real poh_exporter against the simulator with exact counts: the watched
collection dropped, renamed away, replaced by a rename onto it, or its
database dropped, each followed by more writes; and pymongo seeing the same
events the simulator sends the exporter."""
import datetime
import time
import unittest

import bson
import pymongo

import mongoexp
import mongosim
import pohtest
from mongoexp import value, wait_value, wait_stream_up
from mongostack import Stack

L = {"cluster": "main", "stream": "tx"}


def changes(exp, op):
    return value(exp, "poh_mongodb_changes_total", operation=op, **L) or 0


class TestInvalidate(unittest.TestCase):
    def setUp(self):
        self.st = Stack()
        self.exp = self.st.start_exporter()
        self.assertTrue(wait_stream_up(self.exp))
        self.client = pymongo.MongoClient(self.st.sim.uri, serverSelectionTimeoutMS=10000)

    def tearDown(self):
        self.client.close()
        self.st.close()

    def wait_inserts(self, n, timeout=60):
        self.assertEqual(self.st.produced(), n)
        self.assertEqual(wait_value(self.exp, "poh_mongodb_changes_total", n, timeout,
                                    operation="insert", **L), n)

    def assert_invalidations(self, n, drops=0, renames=0):
        """n invalidates counted, the stream open again, one log line each."""
        self.assertEqual(wait_value(self.exp, "poh_mongodb_change_stream_invalidations_total", n,
                                    **L), n)
        self.assertTrue(wait_stream_up(self.exp))
        m = self.exp.metrics()
        self.assertEqual(pohtest.value(m, "poh_mongodb_changes_total", operation="invalidate",
                                       **L), n)
        self.assertEqual(pohtest.value(m, "poh_mongodb_changes_total", operation="drop", **L)
                         or 0, drops)
        self.assertEqual(pohtest.value(m, "poh_mongodb_changes_total", operation="rename", **L)
                         or 0, renames)
        # an invalidate is not an error: no resume, no history lost, no field error
        self.assertEqual(pohtest.value(m, "poh_mongodb_change_stream_resumes_total", **L), 0)
        self.assertEqual(pohtest.value(m, "poh_mongodb_change_stream_history_lost_total", **L), 0)
        self.assertEqual(pohtest.find(m, "poh_mongodb_change_field_errors_total", **L), {})
        logged = [l for l in self.exp.log_lines if "change stream invalidated" in l]
        self.assertEqual(len(logged), n, logged)

    def test_drop_mid_stream_then_written_again(self):
        sim = self.st.sim
        sim.insert(300)
        self.wait_inserts(300)
        # dropped while the generator writes; its next insert creates the collection again
        sim.rate(2000)
        time.sleep(0.4)
        self.client.dag.transactions.drop()
        time.sleep(0.4)
        sim.rate(0)
        time.sleep(0.2)
        counts = sim.counts()
        self.assertEqual(counts["drop"], 1)
        produced = self.st.produced()
        self.assertGreater(produced, 600)
        self.wait_inserts(produced)
        self.assert_invalidations(1, drops=1)
        self.assertEqual(self.st.produced("drop"), 1)
        # nothing later arrives twice
        time.sleep(1.0)
        self.assertEqual(changes(self.exp, "insert"), produced)
        self.assertEqual(value(self.exp, "poh_storage_latency_seconds_count", **L), produced)

    def test_rename_away_and_rename_onto(self):
        sim = self.st.sim
        sim.insert(300)
        self.wait_inserts(300)
        self.client.admin.command("renameCollection", "dag.transactions", to="dag.tx_old")
        sim.insert(200)
        self.wait_inserts(500)
        self.assert_invalidations(1, renames=1)
        # another collection renamed onto the watched one (dropTarget): its documents were
        # never inserts of dag.transactions, but the stream is invalidated again
        sim.insert(40, "dag.staging")
        self.client.admin.command("renameCollection", "dag.staging", to="dag.transactions",
                                  dropTarget=True)
        sim.insert(30)
        self.wait_inserts(530)
        self.assert_invalidations(2, renames=2)
        count = lambda c: self.client.dag.command("count", c)["n"]
        self.assertEqual((count("transactions"), count("tx_old")), (70, 300))

    def test_drop_database(self):
        sim = self.st.sim
        sim.insert(120)
        sim.insert(10, "dag.other")
        self.wait_inserts(120)
        self.client.drop_database("dag")
        sim.insert(80)
        self.wait_inserts(200)
        # a collection stream sees its collection's drop, then the invalidate
        self.assert_invalidations(1, drops=1)
        self.assertEqual(sim.counts()["dropDatabase"], 1)
        self.assertEqual(sim.counts()["drop"], 2)

    def test_kill9_after_invalidate_restarts_with_start_after(self):
        """The invalidate's token is saved as one: a restarted exporter opens
        with startAfter (resumeAfter an invalidate is refused with code 260)."""
        sim = self.st.sim
        sim.insert(100)
        self.wait_inserts(100)
        self.client.dag.transactions.drop()
        self.assertEqual(wait_value(self.exp, "poh_mongodb_change_stream_invalidations_total", 1,
                                    **L), 1)
        self.exp.kill9()
        sim.insert(50)
        self.exp = self.st.exp = self.st.start_exporter()
        self.wait_inserts(150)
        self.assertTrue(wait_stream_up(self.exp))
        m = self.exp.metrics()
        self.assertEqual(pohtest.value(m, "poh_mongodb_change_stream_invalidations_total", **L), 1)
        self.assertEqual(pohtest.value(m, "poh_mongodb_changes_total", operation="drop", **L), 1)
        self.assertEqual(pohtest.value(m, "poh_mongodb_change_stream_resumes_total", **L), 0)
        self.assertFalse([l for l in self.exp.log_lines if "InvalidResumeToken" in l
                          or "change stream error" in l])


class TestHistoryGap(unittest.TestCase):
    """The saved position left the oplog while the exporter was down: the
    stream restarts from now and the gap is counted in cluster seconds,
    exactly the simulator's restart time minus the saved token's time. The
    number of events in it is not knowable from the server (the oplog no
    longer holds them), so the exporter does not claim one; the simulator
    knows it (75 here) and the exporter's count is short by exactly that."""

    def test_gap_seconds_exact(self):
        st = Stack()
        try:
            exp = st.exp = st.start_exporter()
            self.assertTrue(wait_stream_up(exp))
            st.sim.insert(100)
            self.assertEqual(wait_value(exp, "poh_mongodb_changes_total", 100, operation="insert",
                                        **L), 100)
            saved = st.sim.counts()["last_ts"]  # the token of the last batch
            mongoexp.stop_checked(exp)
            st.exp = None
            st.sim.insert(70)
            time.sleep(2.2)  # the gap spans at least two cluster seconds
            st.sim.insert(5)
            st.sim.truncate_oplog(0)
            restart = st.sim.counts()["last_ts"]  # nothing is written until the stream is open
            exp = st.exp = st.start_exporter()
            self.assertTrue(wait_stream_up(exp))
            want = restart["t"] - saved["t"]
            self.assertGreaterEqual(want, 2)
            self.assertEqual(wait_value(exp, "poh_mongodb_change_stream_history_lost_seconds_total",
                                        want, **L), want)
            self.assertEqual(value(exp, "poh_mongodb_change_stream_history_lost_total", **L), 1)
            gap = [l for l in exp.log_lines if "history gap:" in l]
            self.assertEqual(len(gap), 1, gap)
            self.assertIn(f"{want} s of history not seen, from Timestamp({saved['t']}, "
                          f"{saved['i']}) to the restart at Timestamp({restart['t']}, "
                          f"{restart['i'] + 1})", gap[0])
            st.sim.insert(20)
            self.assertEqual(wait_value(exp, "poh_mongodb_changes_total", 120, operation="insert",
                                        **L), 120)
            self.assertEqual(st.produced() - 120, 75)  # what the simulator knows was missed
            # the gap survives a restart: counted once, not again
            mongoexp.stop_checked(exp)
            exp = st.exp = st.start_exporter()
            self.assertTrue(wait_stream_up(exp))
            self.assertEqual(value(exp, "poh_mongodb_change_stream_history_lost_seconds_total",
                                   **L), want)
            self.assertEqual(value(exp, "poh_mongodb_changes_total", operation="insert", **L), 120)
        finally:
            st.close()


class TestStepDown(unittest.TestCase):
    """A primary step-down while the exporter drains a large backlog and the
    generator keeps writing: the getMore in flight is interrupted as mongod
    interrupts it (11602 InterruptedDueToReplStateChange, resumable), reopens
    are refused (13435) until the node is primary again; the stream resumes
    after its saved token and every event is counted exactly once."""

    def run_case(self, stepdown):
        st = Stack("--secondaries", "1")
        try:
            exp = st.exp = st.start_exporter()
            self.assertTrue(wait_stream_up(exp))
            st.sim.rate(3000)
            time.sleep(0.3)
            st.sim.insert(30000)  # a backlog: several batches
            stepdown(st.sim)
            st.sim.insert(2000)   # written while stepped down (replicated from the new primary)
            time.sleep(2.5)
            st.sim.rate(0)
            time.sleep(0.2)
            produced = st.produced()
            self.assertGreater(produced, 32000)
            self.assertEqual(wait_value(exp, "poh_mongodb_changes_total", produced, 90,
                                        operation="insert", **L), produced)
            time.sleep(1.0)
            m = exp.metrics()
            self.assertEqual(pohtest.value(m, "poh_mongodb_changes_total", operation="insert", **L),
                             produced)
            self.assertEqual(pohtest.value(m, "poh_storage_latency_seconds_count", **L), produced)
            self.assertEqual(pohtest.value(m, "poh_mongodb_change_stream_history_lost_total", **L),
                             0)
            return pohtest.value(m, "poh_mongodb_change_stream_resumes_total", **L)
        finally:
            st.close()

    def test_stepdown_interrupts_the_getmore(self):
        def stepdown(sim):
            sim.fail_getmore(11602)
            sim.stepdown(2)
        self.assertGreaterEqual(self.run_case(stepdown), 1)

    def test_stepdown_keeps_open_cursors(self):
        # mongod 4.2+ lets reads on open cursors go on through a step-down
        self.assertEqual(self.run_case(lambda sim: sim.stepdown(2)), 0)


class TestTooLarge(unittest.TestCase):
    """A 20 MB update event (10 MB updatedFields + 10 MB fullDocument from
    updateLookup) on a server that cannot send it, as 5.0 (and 6.0 without
    $changeStreamSplitLargeEvent) answers: BSONObjectTooLarge (10334) on
    getMore, naming the event's resume token. The exporter skips that one
    event after its token, counts it once as too large, and goes on: no
    retry loop, every other event counted exactly."""

    def test_5_0_skips_the_event_once(self):
        st = Stack("--server-version", "5.0")
        try:
            exp = st.exp = st.start_exporter()
            self.assertTrue(wait_stream_up(exp))
            client = pymongo.MongoClient(st.sim.uri, serverSelectionTimeoutMS=10000)
            coll = client.dag.transactions
            now = datetime.datetime.now(datetime.timezone.utc)
            coll.insert_one({"_id": "big", "created_at": now, "blob": "x" * (10 << 20)})
            coll.update_one({"_id": "big"}, {"$set": {"blob": "y" * (10 << 20)}})
            st.sim.insert(100)
            client.close()
            self.assertEqual(wait_value(exp, "poh_mongodb_change_stream_events_too_large_total", 1,
                                        **L), 1)
            self.assertEqual(wait_value(exp, "poh_mongodb_changes_total", 101, operation="insert",
                                        **L), 101)
            time.sleep(1.5)  # nothing more: no loop on the same event
            m = exp.metrics()
            self.assertEqual(pohtest.value(m, "poh_mongodb_change_stream_events_too_large_total",
                                           **L), 1)
            self.assertEqual(pohtest.value(m, "poh_mongodb_changes_total", operation="insert", **L),
                             101)
            self.assertIsNone(pohtest.value(m, "poh_mongodb_changes_total", operation="update", **L))
            self.assertEqual(st.sim.counts()["ns"]["dag.transactions"]["update"], 1)
            self.assertEqual(pohtest.value(m, "poh_mongodb_change_stream_up", **L), 1)
            logged = [l for l in exp.log_lines if "BSONObjectTooLarge" in l]
            self.assertEqual(len(logged), 1, logged)
            # 5.0 does not know $changeStreamSplitLargeEvent: the exporter opens without it
            # after the first 40324, logged once, not counted as a resume, no retry loop
            logged = [l for l in exp.log_lines if "$changeStreamSplitLargeEvent" in l]
            self.assertEqual(len(logged), 1, logged)
            self.assertEqual(st.sim.commands()["aggregate"], 3)  # 40324, open, after the skip
            # 5.0 events carry no wallTime: the storage latency is taken from clusterTime
            self.assertEqual(pohtest.value(m, "poh_storage_latency_seconds_count", **L), 101)
            self.assertEqual(pohtest.find(m, "poh_mongodb_change_field_errors_total", **L), {})
            self.assertGreaterEqual(pohtest.value(m, "poh_mongodb_change_stream_lag_seconds",
                                                  **L), 0)
        finally:
            st.close()


def ms_now():
    """Now, to the millisecond (BSON dates hold milliseconds)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def write_big_update(uri, approve_after=2.5):
    """A 10 MB insert (one event under 16 MB), then an update setting a new 10 MB
    blob and approved_at: its event (10 MB updatedFields + the 10 MB post-image
    of updateLookup) is about 20 MB."""
    client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=10000)
    try:
        coll = client.dag.transactions
        now = ms_now()
        coll.insert_one({"_id": "big", "created_at": now, "blob": "x" * (10 << 20)})
        coll.update_one({"_id": "big"}, {"$set": {
            "blob": "y" * (10 << 20),
            "approved_at": now + datetime.timedelta(seconds=approve_after)}})
    finally:
        client.close()


class TestServerVersions(unittest.TestCase):
    """What pymongo sees of --server-version: 5.0 events without wallTime (it came
    with 6.0) and 5.0/6.0 refusing $changeStreamSplitLargeEvent as mongod does."""

    def test_wall_time_and_split_stage(self):
        for version, wall, split in (("5.0", False, False), ("6.0", True, False),
                                     ("7.0", True, True)):
            with mongosim.MongoSim("--server-version", version) as sim:
                client = pymongo.MongoClient(sim.uri, serverSelectionTimeoutMS=10000)
                coll = client.dag.transactions
                with coll.watch() as cs:
                    coll.insert_one({"_id": 1})
                    ev = cs.next()
                self.assertEqual("wallTime" in ev, wall, (version, ev))
                self.assertIn("clusterTime", ev)
                if split:
                    coll.watch([{"$changeStreamSplitLargeEvent": {}}]).close()
                else:
                    with self.assertRaises(pymongo.errors.OperationFailure) as cm:
                        coll.watch([{"$changeStreamSplitLargeEvent": {}}])
                    self.assertEqual(cm.exception.code, 40324)
                    self.assertIn("Unrecognized pipeline stage name: "
                                  "'$changeStreamSplitLargeEvent'", str(cm.exception))
                with self.assertRaises(pymongo.errors.OperationFailure) as cm:
                    coll.watch([{"$changeStreamSplitLargeEvent": {}}, {"$match": {}}])
                self.assertEqual(cm.exception.code, 40324 if not split else 7182802)
                client.close()


class TestSimulatorSplits(unittest.TestCase):
    """mongo_rs_sim 7.0 through pymongo, as mongod's split_large_event.js
    checks it: without the stage a 20 MB event is BSONObjectTooLarge; with
    it, fragments {_id, splitEvent, fields} within 16 MB, small fields first;
    a fragment's token resumes with the next fragment (the last one's with
    the next event), and only with the stage (280)."""

    def test_fragments_and_their_tokens(self):
        with mongosim.MongoSim("--server-version", "7.0") as sim:
            client = pymongo.MongoClient(sim.uri, serverSelectionTimeoutMS=10000)
            coll = client.dag.transactions
            split = [{"$changeStreamSplitLargeEvent": {}}]
            with coll.watch(split, full_document="updateLookup") as cs:
                start = cs.resume_token
                client.close()
                write_big_update(sim.uri)
                client = pymongo.MongoClient(sim.uri, serverSelectionTimeoutMS=10000)
                coll = client.dag.transactions
                coll.insert_one({"_id": "after"})
                evs = [cs.next() for _ in range(4)]
            self.assertNotIn("splitEvent", evs[0])  # the 10 MB insert fits
            self.assertEqual([e.get("splitEvent") for e in evs[1:3]],
                             [{"fragment": 1, "of": 2}, {"fragment": 2, "of": 2}])
            self.assertEqual(evs[1]["operationType"], "update")
            self.assertEqual(set(evs[1]) & {"fullDocument", "updateDescription"} |
                             set(evs[2]) & {"fullDocument", "updateDescription"},
                             {"fullDocument", "updateDescription"})
            self.assertEqual(list(evs[2]), ["_id", "splitEvent", next(iter(
                set(evs[2]) - {"_id", "splitEvent"}))])
            for e in evs[1:3]:
                self.assertLessEqual(len(bson.encode(e)), 16793600)
            self.assertEqual(evs[3]["documentKey"], {"_id": "after"})
            with coll.watch(split, full_document="updateLookup",
                            resume_after=evs[1]["_id"]) as cs:
                self.assertEqual(cs.next()["_id"], evs[2]["_id"])
            with coll.watch(split, full_document="updateLookup",
                            start_after=evs[2]["_id"]) as cs:
                self.assertEqual(cs.next()["_id"], evs[3]["_id"])
            with self.assertRaises(pymongo.errors.OperationFailure) as cm:
                coll.watch([], full_document="updateLookup", resume_after=evs[1]["_id"])
            self.assertEqual(cm.exception.code, 280)
            with self.assertRaises(pymongo.errors.OperationFailure) as cm:
                with coll.watch([], full_document="updateLookup", resume_after=start) as cs:
                    self.assertEqual(cs.next()["operationType"], "insert")
                    cs.next()  # the 20 MB update
            self.assertEqual(cm.exception.code, 10334)
            self.assertEqual(sim.counts()["fragments"], 3)
            client.close()


class TestSplitLargeEvent(unittest.TestCase):
    """$changeStreamSplitLargeEvent on the simulator's 7.0 behaviour: the
    exporter ends its pipeline with it, the 20 MB update comes as two
    fragments (fields by size, as mongod splits) and is counted once, with
    its approval latency from approved_at (one fragment) minus created_at
    (the other); nothing counted as too large."""

    def assert_exact(self, exp, inserts):
        m = exp.metrics()
        self.assertEqual(pohtest.value(m, "poh_mongodb_changes_total", operation="insert", **L),
                         inserts)
        self.assertEqual(pohtest.value(m, "poh_mongodb_changes_total", operation="update", **L), 1)
        self.assertEqual(pohtest.value(m, "poh_approval_latency_seconds_count", **L), 1)
        self.assertEqual(pohtest.value(m, "poh_approval_latency_seconds_sum", **L), 2.5)
        self.assertEqual(pohtest.value(m, "poh_storage_latency_seconds_count", **L), inserts)
        self.assertEqual(pohtest.value(m, "poh_mongodb_change_stream_events_too_large_total",
                                       **L), 0)
        self.assertEqual(pohtest.find(m, "poh_mongodb_change_field_errors_total", **L), {})
        self.assertEqual(pohtest.value(m, "poh_mongodb_change_stream_up", **L), 1)
        self.assertFalse([l for l in exp.log_lines if "changeStreamSplitLargeEvent" in l
                          or "BSONObjectTooLarge" in l or "change stream error" in l])

    def test_7_0_split_counted_once(self):
        st = Stack("--server-version", "7.0")
        try:
            exp = st.exp = st.start_exporter()
            self.assertTrue(wait_stream_up(exp))
            write_big_update(st.sim.uri)
            st.sim.insert(100)
            self.assertEqual(wait_value(exp, "poh_mongodb_changes_total", 101, operation="insert",
                                        **L), 101)
            self.assertEqual(wait_value(exp, "poh_mongodb_changes_total", 1, operation="update",
                                        **L), 1)
            time.sleep(1.5)  # nothing more arrives
            self.assert_exact(exp, 101)
            self.assertEqual(st.sim.counts()["fragments"], 2)
        finally:
            st.close()

    def test_kill9_between_fragments(self):
        """SPLIT_HOLD 1: the simulator sends fragment 1 and holds fragment 2
        (and what follows). Once the exporter has asked for more after
        fragment 1, it is killed -9; the restarted one reads the event again
        from fragment 1 (the saved position is before the event, so the
        simulator sends 3 fragments in all) and, once the hold is released,
        counts it once."""
        st = Stack("--server-version", "7.0")
        try:
            exp = st.exp = st.start_exporter()
            self.assertTrue(wait_stream_up(exp))
            st.sim.control("SPLIT_HOLD 1")
            write_big_update(st.sim.uri)
            st.sim.insert(50)
            self.assertTrue(pohtest.wait_until(lambda: st.sim.counts()["fragments"] == 1, 60))
            asked = st.sim.commands().get("getMore", 0)
            # the exporter came back for more: fragment 1 is processed
            self.assertTrue(pohtest.wait_until(
                lambda: st.sim.commands().get("getMore", 0) > asked, 30))
            self.assertEqual(value(exp, "poh_mongodb_changes_total", operation="insert", **L), 1)
            self.assertIsNone(value(exp, "poh_mongodb_changes_total", operation="update", **L))
            exp.kill9()
            # restarted while fragment 2 is still held: it reads the event again from
            # fragment 1 (its saved position is before the event), and counts nothing yet
            exp = st.exp = st.start_exporter()
            self.assertTrue(pohtest.wait_until(lambda: st.sim.counts()["fragments"] == 2, 60))
            asked = st.sim.commands().get("getMore", 0)
            self.assertTrue(pohtest.wait_until(
                lambda: st.sim.commands().get("getMore", 0) > asked, 30))
            self.assertIsNone(value(exp, "poh_mongodb_changes_total", operation="update", **L))
            st.sim.control("SPLIT_HOLD off")
            self.assertEqual(wait_value(exp, "poh_mongodb_changes_total", 51, operation="insert",
                                        **L), 51)
            self.assertEqual(wait_value(exp, "poh_mongodb_changes_total", 1, operation="update",
                                        **L), 1)
            time.sleep(1.5)
            self.assert_exact(exp, 51)
            self.assertEqual(st.sim.counts()["fragments"], 3)
        finally:
            st.close()


def take_all(stream, timeout=20.0):
    """Events until the server closes the stream (an invalidate), or until
    nothing more comes for a second."""
    out, idle = [], time.monotonic() + 1.0
    deadline = time.monotonic() + timeout
    while stream.alive and time.monotonic() < min(deadline, idle):
        ev = stream.try_next()
        if ev is not None:
            out.append(ev)
            idle = time.monotonic() + 1.0
    return out


def shape(ev):
    keep = {k: ev[k] for k in ("operationType", "ns", "to") if k in ev}
    if "documentKey" in ev:
        keep["documentKey"] = True
    return keep


class TestPymongoSeesTheSameEvents(unittest.TestCase):
    """The documented 6.0/7.0 shapes: drop {ns}, rename {ns, to},
    dropDatabase {ns: {db}}, invalidate {} closing collection streams on
    drop/rename and database streams on dropDatabase only."""

    def test_ddl_events(self):
        with mongosim.MongoSim() as sim, \
                pymongo.MongoClient(sim.uri, serverSelectionTimeoutMS=10000) as client:
            coll = client.dag.transactions
            cs = coll.watch(max_await_time_ms=100)
            dbs = client.dag.watch(max_await_time_ms=100)
            cls = client.watch(max_await_time_ms=100)
            sim.insert(2)
            coll.drop()
            sim.insert(1)
            client.admin.command("renameCollection", "dag.transactions", to="dag.old")
            client.drop_database("dag")
            tx = {"db": "dag", "coll": "transactions"}
            insert = {"operationType": "insert", "ns": tx, "documentKey": True}
            got = [shape(e) for e in take_all(cs)]
            self.assertEqual(got, [insert, insert, {"operationType": "drop", "ns": tx},
                                   {"operationType": "invalidate"}])
            self.assertFalse(cs.alive)
            # startAfter the invalidate: the collection written again, renamed away
            after = cs.resume_token
            with self.assertRaises(pymongo.errors.OperationFailure) as e:
                coll.watch(resume_after=after).try_next()
            self.assertEqual(e.exception.code, 260)
            cs2 = coll.watch(start_after=after, max_await_time_ms=100)
            got = [shape(e) for e in take_all(cs2)]
            rename = {"operationType": "rename", "ns": tx, "to": {"db": "dag", "coll": "old"}}
            self.assertEqual(got, [insert, rename, {"operationType": "invalidate"}])
            # the database stream: every event, invalidated by dropDatabase only
            got = [shape(e) for e in take_all(dbs)]
            self.assertEqual(got, [insert, insert, {"operationType": "drop", "ns": tx}, insert,
                                   rename,
                                   {"operationType": "drop", "ns": {"db": "dag", "coll": "old"}},
                                   {"operationType": "dropDatabase", "ns": {"db": "dag"}},
                                   {"operationType": "invalidate"}])
            # the cluster stream is never invalidated
            got = [shape(e) for e in take_all(cls)]
            self.assertEqual([g["operationType"] for g in got],
                             ["insert", "insert", "drop", "insert", "rename", "drop",
                              "dropDatabase"])
            self.assertTrue(cls.alive)
            counts = sim.counts()
            self.assertEqual((counts["insert"], counts["drop"], counts["rename"],
                              counts["dropDatabase"]), (3, 2, 1, 1))
            # errors as 6.0 gives them
            client.dag.missing.drop()  # pymongo ignores 26 ("ns not found") on drop
            with self.assertRaises(pymongo.errors.OperationFailure) as e:
                client.dag.command("drop", "missing")
            self.assertEqual(e.exception.code, 26)
            sim.insert(1, "dag.a")
            sim.insert(1, "dag.b")
            with self.assertRaises(pymongo.errors.OperationFailure) as e:
                client.admin.command("renameCollection", "dag.a", to="dag.b")
            self.assertEqual(e.exception.code, 48)
            with self.assertRaises(pymongo.errors.OperationFailure) as e:
                client.dag.command("renameCollection", "dag.a", to="dag.c")
            self.assertEqual(e.exception.code, 13)
            self.assertEqual(sorted(client.dag.list_collection_names()), ["a", "b"])


if __name__ == "__main__":
    pohtest.main()
