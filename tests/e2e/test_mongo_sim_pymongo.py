# SPDX-License-Identifier: Apache-2.0
"""pymongo (an independent driver) against mongo_rs_sim, and pymongo side by
side with libmongoc (tests/sim/mongo_rs_sim/tools/mongo_sim_watch): both must
see exactly the same change events."""

import json
import os
import re
import subprocess
import sys
import threading
import time
import unittest

import pymongo
from bson import json_util
from bson.json_util import CANONICAL_JSON_OPTIONS
from bson.timestamp import Timestamp

import mongosim

TRACEPARENT = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-01$")


def take(stream, n, timeout=20.0):
    """Read n events from a change stream within timeout seconds."""
    out = []
    deadline = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        ev = stream.try_next()
        if ev is not None:
            out.append(ev)
    if len(out) != n:
        raise AssertionError("got %d of %d events in %.0fs" % (len(out), n, timeout))
    return out


def canonical(doc):
    return json.loads(json_util.dumps(doc, json_options=CANONICAL_JSON_OPTIONS))


class SimTestCase(unittest.TestCase):
    sim_args = ()

    def setUp(self):
        self.sim = mongosim.MongoSim(*self.sim_args).start()
        self.client = pymongo.MongoClient(self.sim.uri, serverSelectionTimeoutMS=10000)

    def tearDown(self):
        self.client.close()
        self.sim.stop()

    def restart(self, *args):
        self.client.close()
        self.sim.stop()
        self.sim = mongosim.MongoSim(*args).start()
        self.client = pymongo.MongoClient(self.sim.uri, serverSelectionTimeoutMS=10000)


class TestPymongo(SimTestCase):
    def test_handshake_with_replica_set_uri(self):
        self.assertEqual(self.client.admin.command("ping")["ok"], 1.0)
        self.assertEqual(self.client.primary, ("127.0.0.1", self.sim.port))
        hello = self.client.admin.command("hello")
        self.assertEqual(hello["setName"], "rs0")
        self.assertEqual(hello["hosts"], [self.sim.address])
        self.assertTrue(hello["isWritablePrimary"])
        self.assertEqual(hello["maxWireVersion"], 17)
        legacy = self.client.admin.command("isMaster")
        self.assertTrue(legacy["ismaster"])
        # pymongo 3.11 opens every connection with a legacy OP_QUERY "ismaster".
        self.assertGreaterEqual(self.sim.commands().get("ismaster", 0), 1)

    def test_insert_many_update_one_exact_counts(self):
        coll = self.client.shop.items
        self.sim.reset_commands()
        res = coll.insert_many([{"_id": i, "n": i, "tag": "x" if i % 2 else "y"} for i in range(500)])
        self.assertEqual(len(res.inserted_ids), 500)
        # One insert command carrying a kind-1 document sequence.
        self.assertEqual(self.sim.commands().get("insert"), 1)
        upd = coll.update_one({"_id": 7}, {"$set": {"n": 700, "seen": True}})
        self.assertEqual((upd.matched_count, upd.modified_count), (1, 1))
        self.assertEqual(coll.update_one({"_id": 9999}, {"$set": {"a": 1}}).matched_count, 0)
        up = coll.update_one({"_id": 9999}, {"$set": {"a": 1}}, upsert=True)
        self.assertEqual(up.upserted_id, 9999)
        self.assertEqual(coll.replace_one({"_id": 8}, {"whole": "new"}).modified_count, 1)
        self.assertEqual(coll.delete_one({"_id": 3}).deleted_count, 1)
        self.assertEqual(coll.find_one({"_id": 7})["n"], 700)
        self.assertEqual(coll.find_one({"_id": 8}), {"_id": 8, "whole": "new"})
        # _id 7 now has n 700, the largest
        self.assertEqual([d["_id"] for d in coll.find({"tag": "x"}).sort("n", -1).limit(3)], [7, 499, 497])
        self.assertEqual(len(list(coll.find({"n": {"$gte": 490, "$lt": 500}}))), 10)
        with self.assertRaises(pymongo.errors.DuplicateKeyError):
            coll.insert_one({"_id": 1})
        ns = self.sim.counts()["ns"]["shop.items"]
        self.assertEqual((ns["insert"], ns["update"], ns["replace"], ns["delete"]), (501, 1, 1, 1))
        self.assertEqual(ns["docs"], 500)

    def test_both_drivers_see_the_same_events(self):
        coll = self.client.dag.transactions
        start = self.sim.counts()["last_ts"]
        at = Timestamp(start["t"], start["i"] + 1)
        coll.insert_many([{"_id": "p%d" % i, "v": i} for i in range(3)])
        coll.update_one({"_id": "p1"}, {"$set": {"v": 10}, "$unset": {"nothing": 1}})
        coll.replace_one({"_id": "p2"}, {"v": 20, "w": "x"})
        coll.delete_one({"_id": "p0"})
        self.sim.insert(5)
        total = 3 + 1 + 1 + 1 + 5
        watcher = subprocess.run(
            [mongosim.sim_tool("mongo_sim_watch"), "--uri", self.sim.uri, "--ns", "dag.transactions", "--count",
             str(total), "--start-at", "%d,%d" % (at.time, at.inc), "--full-document", "updateLookup",
             "--timeout-ms", "30000"],
            capture_output=True, text=True, timeout=60)
        self.assertEqual(watcher.returncode, 0, watcher.stderr)
        from_libmongoc = [json.loads(line) for line in watcher.stdout.splitlines()]
        with coll.watch(start_at_operation_time=at, full_document="updateLookup", max_await_time_ms=200) as stream:
            from_pymongo = [canonical(ev) for ev in take(stream, total)]
        self.assertEqual(len(from_libmongoc), total)
        self.assertEqual(from_pymongo, from_libmongoc)
        kinds = [ev["operationType"] for ev in from_pymongo]
        self.assertEqual(kinds, ["insert"] * 3 + ["update", "replace", "delete"] + ["insert"] * 5)
        self.assertEqual(from_pymongo[3]["updateDescription"]["updatedFields"], {"v": {"$numberInt": "10"}})

    def test_watch_and_resume_after(self):
        coll = self.client.dag.transactions
        with coll.watch(max_await_time_ms=200) as stream:
            self.sim.insert(6)
            first = take(stream, 3)
            token = stream.resume_token
        self.assertEqual([ev["fullDocument"]["seq"] for ev in first], [1, 2, 3])
        self.assertEqual(token, first[-1]["_id"])
        with coll.watch(resume_after=token, max_await_time_ms=200) as stream:
            rest = take(stream, 3)
        self.assertEqual([ev["fullDocument"]["seq"] for ev in rest], [4, 5, 6])
        # startAfter resumes after the same event.
        with coll.watch(start_after=first[0]["_id"], max_await_time_ms=200) as stream:
            self.assertEqual([ev["fullDocument"]["seq"] for ev in take(stream, 5)], [2, 3, 4, 5, 6])

    def test_resume_across_drop_and_injected_errors(self):
        coll = self.client.dag.transactions
        seqs = []
        with coll.watch(max_await_time_ms=200) as stream:
            self.sim.insert(5)
            seqs += [ev["fullDocument"]["seq"] for ev in take(stream, 5)]
            # Every connection dropped: the cursor lives on in the server, as in
            # mongod. The driver's monitor, whose awaitable hello was on one of
            # them, may have replaced the pool before the next getMore (then
            # that getMore just continues), or the getMore fails and the stream
            # resumes with a new aggregate: either way nothing is lost or doubled.
            self.assertGreaterEqual(self.sim.drop(), 1)
            self.sim.insert(5)
            seqs += [ev["fullDocument"]["seq"] for ev in take(stream, 5)]
            aggregates = self.sim.commands()["aggregate"]
            self.sim.fail_getmore(91)  # ShutdownInProgress: resumable, a new aggregate
            self.sim.insert(5)
            seqs += [ev["fullDocument"]["seq"] for ev in take(stream, 5)]
            self.assertEqual(seqs, list(range(1, 16)))  # exactly once, in order
            self.assertEqual(self.sim.commands()["aggregate"], aggregates + 1)
            self.sim.fail_getmore(286)
            self.sim.insert(1)
            with self.assertRaises(pymongo.errors.OperationFailure) as ctx:
                take(stream, 1)
            self.assertEqual(ctx.exception.code, 286)

    def test_getmore_await_uses_no_cpu(self):
        with self.client.dag.transactions.watch(max_await_time_ms=1000) as stream:
            cpu0, t0 = self.sim.cpu_seconds(), time.monotonic()
            self.assertIsNone(stream.try_next())
            self.assertIsNone(stream.try_next())
            waited, cpu = time.monotonic() - t0, self.sim.cpu_seconds() - cpu0
        self.assertGreaterEqual(waited, 1.9)
        self.assertLess(cpu, 0.3, "simulator used %.2fs CPU while awaiting" % cpu)

    def test_oplog_sorted_by_natural(self):
        self.sim.insert(10)
        oplog = self.client.local["oplog.rs"]
        counts = self.sim.counts()
        newest = oplog.find().sort("$natural", -1).limit(1).next()
        oldest = oplog.find().sort("$natural", 1).limit(1).next()
        self.assertEqual(newest["ts"], Timestamp(counts["last_ts"]["t"], counts["last_ts"]["i"]))
        self.assertEqual((newest["op"], newest["ns"]), ("i", "dag.transactions"))
        self.assertEqual((oldest["op"], oldest["o"]), ("n", {"msg": "initiating set"}))
        later = list(oplog.find({"ts": {"$gt": oldest["ts"]}}, {"ts": 1, "wall": 1, "_id": 0}).sort("$natural", 1))
        self.assertEqual(len(later), 10)
        self.assertEqual(set(later[0].keys()), {"ts", "wall"})
        self.assertEqual(later[-1]["ts"], newest["ts"])
        stats = self.client.local.command("collStats", "oplog.rs")
        self.assertEqual(stats["count"], counts["oplog"]["count"])
        self.assertEqual(stats["maxSize"], 64 * 1024 * 1024)
        self.assertTrue(stats["capped"])

    def test_stall_and_fail_command(self):
        self.sim.stall(300, "ping")
        t0 = time.monotonic()
        self.client.admin.command("ping")
        self.assertGreaterEqual(time.monotonic() - t0, 0.29)
        self.sim.clear_faults()
        self.sim.fail_command("serverStatus", 96)
        with self.assertRaises(pymongo.errors.OperationFailure) as ctx:
            self.client.admin.command("serverStatus")
        self.assertEqual(ctx.exception.code, 96)
        self.assertEqual(ctx.exception.details["codeName"], "OperationFailed")
        status = self.client.admin.command("serverStatus")
        for key in ("opcounters", "opcountersRepl", "opLatencies", "transactions", "connections", "uptime"):
            self.assertIn(key, status)
        with self.assertRaises(pymongo.errors.OperationFailure) as ctx:
            self.client.admin.command("fsync")
        self.assertEqual(ctx.exception.code, 59)

    def test_conformance_checks_pass_on_the_simulator(self):
        # The same checks run against a real mongod in test_mongo_sim_real_mongod.py.
        mongosim.check_conformance(self.sim.uri)

    def test_real_mongod_harness_with_a_stand_in(self):
        """real_mongod() starts whatever `mongod` is on PATH: here a stand-in
        script running the simulator, so the harness path is exercised."""
        import tempfile
        with tempfile.TemporaryDirectory() as d:
            stand_in = os.path.join(d, "mongod")
            with open(stand_in, "w") as f:
                f.write("#!/bin/sh\n"
                        "while [ $# -gt 0 ]; do [ \"$1\" = --port ] && port=$2; shift; done\n"
                        "exec %s --port \"$port\"\n" % mongosim.sim_binary())
            os.chmod(stand_in, 0o755)
            env = {k: os.environ.get(k) for k in ("PATH", "POH_TEST_MONGODB_URI")}
            os.environ["PATH"] = d + os.pathsep + os.environ["PATH"]
            os.environ.pop("POH_TEST_MONGODB_URI", None)
            try:
                with mongosim.real_mongod() as uri:
                    self.assertIsNotNone(uri)
                    mongosim.check_conformance(uri)
                os.environ["POH_TEST_MONGODB_URI"] = self.sim.uri
                with mongosim.real_mongod() as uri:
                    self.assertEqual(uri, self.sim.uri)
            finally:
                for k, v in env.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v

    def test_hundreds_of_simultaneous_connections(self):
        import bson
        import socket
        import struct
        msg = bson.BSON.encode({"ping": 1, "$db": "admin"})
        msg = struct.pack("<iiiiI", 16 + 5 + len(msg), 1, 0, 2013, 0) + b"\x00" + msg
        conns = [socket.create_connection(("127.0.0.1", self.sim.port), timeout=30) for _ in range(400)]
        try:
            for c in conns:
                c.sendall(msg)
            for c in conns:
                head = c.recv(16, socket.MSG_WAITALL)
                length = struct.unpack("<i", head[:4])[0]
                body = c.recv(length - 16, socket.MSG_WAITALL)
                self.assertEqual(bson.BSON(body[5:]).decode()["ok"], 1.0)
            self.assertGreaterEqual(self.sim.status()["connections"], 400)
        finally:
            for c in conns:
                c.close()

    def test_many_concurrent_clients(self):
        errors = []

        def worker(k):
            try:
                c = pymongo.MongoClient(self.sim.uri, serverSelectionTimeoutMS=10000)
                c.load.items.insert_many([{"w": k, "i": i} for i in range(20)])
                for i in range(5):
                    c.load.items.insert_one({"w": k, "single": i})
                c.close()
            except Exception as e:  # reported below
                errors.append(e)

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(32)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])
        self.assertEqual(self.sim.counts()["ns"]["load.items"]["insert"], 32 * 25)
        self.assertEqual(self.client.load.items.estimated_document_count(), 32 * 25)


class TestPymongoReplicaSet(SimTestCase):
    sim_args = ("--secondaries", "2")

    def test_repl_set_get_status(self):
        self.sim.insert(2)
        self.sim.lag(1, 3)
        self.sim.health(2, False)
        st = self.client.admin.command("replSetGetStatus")
        self.assertEqual(st["set"], "rs0")
        members = st["members"]
        self.assertEqual([m["stateStr"] for m in members], ["PRIMARY", "SECONDARY", "(not reachable/healthy)"])
        self.assertEqual([m["health"] for m in members], [1.0, 1.0, 0.0])
        lag = members[0]["optimeDate"] - members[1]["optimeDate"]
        self.assertEqual(lag.total_seconds(), 3.0)
        self.assertEqual(members[0]["optime"]["ts"].time - members[1]["optime"]["ts"].time, 3)
        self.sim.health(2, True)
        self.sim.optime(2, True)
        member2 = self.client.admin.command("replSetGetStatus")["members"][2]
        self.assertEqual(member2["optime"]["ts"], Timestamp(0, 0))
        self.assertEqual(member2["stateStr"], "SECONDARY")
        # The simulated secondaries are listed but accept no connections.
        self.assertEqual(len(self.client.admin.command("hello")["hosts"]), 3)

    def test_stepdown_changes_the_primary(self):
        term = self.client.admin.command("replSetGetStatus")["term"]
        out = self.sim.stepdown(2)
        direct = pymongo.MongoClient(self.sim.direct_uri, serverSelectionTimeoutMS=5000)
        hello = direct.admin.command("hello")
        self.assertFalse(hello["isWritablePrimary"])
        self.assertEqual(hello["primary"], out["primary"])
        self.assertNotEqual(out["primary"], self.sim.address)
        with self.assertRaises(pymongo.errors.PyMongoError):
            direct.x.y.insert_one({"a": 1})
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not direct.admin.command("hello")["isWritablePrimary"]:
            time.sleep(0.05)
        self.assertTrue(direct.admin.command("hello")["isWritablePrimary"])
        self.assertEqual(direct.admin.command("replSetGetStatus")["term"], term + 2)
        direct.close()
        # The replica-set client finds the primary again and writes.
        self.client.x.y.insert_one({"a": 2})


class TestPymongoGenerator(SimTestCase):
    sim_args = ("--rate", "300", "--approve-after", "100", "--commit-delay-ms", "50")

    def test_generated_transactions_and_approvals(self):
        inserts = updates = 0
        with self.client.dag.transactions.watch(max_await_time_ms=200) as stream:
            deadline = time.monotonic() + 30
            while (inserts < 30 or updates < 10) and time.monotonic() < deadline:
                ev = stream.try_next()
                if ev is None:
                    continue
                if ev["operationType"] == "insert":
                    doc = ev["fullDocument"]
                    delay = ev["wallTime"] - doc["created_at"]
                    self.assertEqual(delay.total_seconds(), 0.05)
                    self.assertRegex(doc["traceparent"], TRACEPARENT)
                    inserts += 1
                else:
                    self.assertEqual(ev["operationType"], "update")
                    fields = ev["updateDescription"]["updatedFields"]
                    self.assertEqual(fields["status"], "approved")
                    self.assertIn("approved_at", fields)
                    updates += 1
        self.assertGreaterEqual(inserts, 30)
        self.assertGreaterEqual(updates, 10)
        counts = self.sim.counts()
        self.assertEqual(counts["ns"]["dag.transactions"]["insert"], counts["generated"])
        self.assertEqual(counts["ns"]["dag.transactions"]["update"], counts["approved"])
        doc = self.client.dag.transactions.find_one({"status": "approved"})
        self.assertGreaterEqual((doc["approved_at"] - doc["created_at"]).total_seconds(), 0.15)


class TestPymongoManyCollections(SimTestCase):
    sim_args = ("--collections", "10000")

    def test_ten_thousand_collections(self):
        names = self.client.bulk.list_collection_names()
        self.assertEqual(len(names), 10000)
        self.assertEqual(self.sim.collections(10500), 500)
        self.assertEqual(len(self.client.bulk.list_collection_names()), 10500)


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    print("SUMMARY: %d run, %d failures, %d errors, %d skipped" % (
        result.testsRun, len(result.failures), len(result.errors), len(result.skipped)))
    sys.exit(0 if result.wasSuccessful() else 1)
