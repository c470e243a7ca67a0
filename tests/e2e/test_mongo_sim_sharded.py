# SPDX-License-Identifier: Apache-2.0
"""mongo_rs_sim --shards (issue 17 item 5): pymongo and libmongoc against the
simulated mongos front; writes spread over the shards by hashed _id; the
config database; change streams through mongos merged in cluster-time order,
exactly what the simulator's COUNTS say, across a shard's step-down and a
resume; migrations, balancer, adding and removing shards."""

import json
import subprocess
import time
import unittest

import pymongo
from bson import json_util
from bson.json_util import CANONICAL_JSON_OPTIONS

import mongosim


def take(stream, n, timeout=30.0):
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


def drain(stream, quiet=1.5, limit=60.0):
    """Events until the stream has been quiet for `quiet` seconds."""
    out = []
    deadline = time.monotonic() + limit
    last = time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - last < quiet:
        ev = stream.try_next()
        if ev is not None:
            out.append(ev)
            last = time.monotonic()
    return out


def wait_for(cond, timeout=20.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


class ShardedCase(unittest.TestCase):
    shards = 3
    extra = ()

    def setUp(self):
        self.sim = mongosim.MongoSim("--shards", str(self.shards), *self.extra).start()
        self.uri = "mongodb://%s/" % self.sim.address
        # standard: UUIDs go back as subtype 4, as config.chunks stores them
        self.client = pymongo.MongoClient(self.uri, serverSelectionTimeoutMS=10000, uuidRepresentation="standard")

    def tearDown(self):
        self.client.close()
        self.sim.stop()

    def shard_counts(self):
        return self.sim.counts()["shards"]


class TestTopology(ShardedCase):
    def test_hello_and_list_shards(self):
        hello = self.client.admin.command("hello")
        self.assertEqual(hello["msg"], "isdbgrid")
        self.assertNotIn("setName", hello)
        self.assertTrue(hello["isWritablePrimary"])
        shards = self.client.admin.command("listShards")["shards"]
        self.assertEqual([s["_id"] for s in shards], ["shard0", "shard1", "shard2"])
        for s in shards:
            self.assertEqual(s["state"], 1)
            set_name, hosts = s["host"].split("/")
            self.assertEqual(set_name, s["_id"])
            # Each shard is a replica set a driver can reach directly.
            with pymongo.MongoClient("mongodb://%s/?replicaSet=%s" % (hosts, set_name),
                                     serverSelectionTimeoutMS=10000) as direct:
                self.assertEqual(direct.admin.command("hello")["setName"], set_name)
                self.assertEqual(direct.admin.command("replSetGetStatus")["set"], set_name)
        with self.assertRaises(pymongo.errors.OperationFailure) as ctx:
            self.client.admin.command("replSetGetStatus")
        self.assertEqual(ctx.exception.code, 59)
        status = self.client.admin.command("balancerStatus")
        self.assertEqual((status["mode"], status["inBalancerRound"]), ("full", False))
        self.assertIn("numBalancerRounds", status)

    def test_writes_spread_and_reads_merge(self):
        coll = self.client.shop.items
        coll.insert_many([{"_id": i, "v": i % 10} for i in range(600)])
        per_shard = {name: c["insert"] for name, c in self.shard_counts().items()}
        self.assertEqual(sum(per_shard.values()), 600)
        for name, n in per_shard.items():
            self.assertGreater(n, 100, "hashed _id leaves %s nearly empty: %s" % (name, per_shard))
        self.assertEqual(coll.count_documents({}), 600)
        self.assertEqual(coll.count_documents({"v": 3}), 60)
        self.assertEqual([d["_id"] for d in coll.find({"v": 0}).sort("_id", -1).limit(3)], [590, 580, 570])
        self.assertEqual(len(list(coll.find(batch_size=50))), 600)  # getMore through mongos
        self.assertEqual(coll.update_one({"_id": 7}, {"$set": {"w": 1}}).modified_count, 1)
        self.assertEqual(coll.update_many({"v": 1}, {"$set": {"w": 2}}).modified_count, 60)
        self.assertEqual(coll.delete_many({"v": 2}).deleted_count, 60)
        self.assertEqual(coll.delete_one({"v": 3}).deleted_count, 1)
        self.assertEqual(coll.count_documents({}), 539)
        with self.assertRaises(pymongo.errors.WriteError) as ctx:
            coll.update_one({"v": 99}, {"$set": {"x": 1}}, upsert=True)
        self.assertEqual(ctx.exception.code, 61)
        agg = list(coll.aggregate([{"$group": {"_id": "$w", "n": {"$sum": 1}}}, {"$sort": {"_id": 1}}]))
        self.assertEqual(agg, [{"_id": None, "n": 478}, {"_id": 1, "n": 1}, {"_id": 2, "n": 60}])
        counts = self.sim.counts()
        self.assertEqual(counts["ns"]["shop.items"]["total"], 600 + 1 + 60 + 61)
        self.assertEqual(counts["total"], sum(c["total"] for c in counts["shards"].values()))

    def test_config_database(self):
        self.client.dag.transactions.insert_one({"x": 1})
        colls = list(self.client.config.collections.find())
        self.assertEqual([c["_id"] for c in colls], ["dag.transactions"])
        self.assertEqual(colls[0]["key"], {"_id": "hashed"})
        chunks = list(self.client.config.chunks.find({"uuid": colls[0]["uuid"]}))
        self.assertEqual(len(chunks), 6)  # two per shard, like hashed sharding's initial split
        for c in chunks:
            for field in ("_id", "uuid", "min", "max", "shard", "lastmod", "history"):
                self.assertIn(field, c)
            self.assertNotIn("ns", c)  # 5.0+ shape
        by_shard = list(self.client.config.chunks.aggregate(
            [{"$group": {"_id": "$shard", "n": {"$sum": 1}}}, {"$sort": {"_id": 1}}]))
        self.assertEqual(by_shard, [{"_id": "shard%d" % k, "n": 2} for k in range(3)])
        self.assertEqual(self.client.config.settings.find_one({"_id": "balancer"})["mode"], "full")
        self.assertEqual(self.client.config.mongos.count_documents({}), 1)
        self.sim.control("JUMBO dag.transactions shard1 1")
        self.assertEqual(self.client.config.chunks.count_documents({"jumbo": True}), 1)
        self.assertEqual(json.loads(self.sim.control("SPLIT dag.transactions 600")[3:])["chunks"], 600)
        self.assertEqual(self.client.config.chunks.count_documents({}), 600)
        self.assertEqual(len(list(self.client.config.chunks.find())), 600)

    def test_migration_balancer_and_changelog(self):
        coll = self.client.shop.items
        coll.insert_many([{"_id": i} for i in range(300)])
        self.sim.control("BALANCER off")
        self.assertEqual(self.client.admin.command("balancerStatus")["mode"], "off")
        self.assertEqual(self.client.config.settings.find_one({"_id": "balancer"})["mode"], "off")
        before = {k: v["docs"] for k, v in self.shard_counts().items()}
        with coll.watch(max_await_time_ms=200) as stream:
            self.assertIn('"commit"', self.sim.control("MIGRATE shop.items shard0 shard1"))
            self.assertIn('"error"', self.sim.control("MIGRATE shop.items shard2 shard1 fail"))
            self.assertEqual(drain(stream, quiet=1.0), [])  # migrations are no change events
        after = {k: v["docs"] for k, v in self.shard_counts().items()}
        moved = before["shard0"] - after["shard0"]
        self.assertGreater(moved, 0)
        self.assertEqual(after["shard1"] - before["shard1"], moved)
        self.assertEqual(after["shard2"], before["shard2"])
        self.assertEqual(coll.count_documents({}), 300)
        whats = [e["what"] for e in self.client.config.changelog.find()]
        self.assertEqual(whats, ["moveChunk.start", "moveChunk.commit", "moveChunk.start", "moveChunk.error"])
        err = self.client.config.changelog.find_one({"what": "moveChunk.error"})
        self.assertEqual((err["ns"], err["details"]["from"], err["details"]["to"]), ("shop.items", "shard2", "shard1"))
        # Updates and deletes by _id still find documents on their new shard.
        self.assertEqual(coll.update_many({}, {"$set": {"m": 1}}).modified_count, 300)
        for i in range(300):
            self.assertEqual(coll.find_one({"_id": i})["m"], 1)
        # The balancer evens out the 1/3/2 chunk split left by the migration.
        self.sim.control("BALANCER on")
        wait_for(lambda: sorted(d["n"] for d in self.client.config.chunks.aggregate(
            [{"$group": {"_id": "$shard", "n": {"$sum": 1}}}])) == [2, 2, 2], what="balanced chunks")
        self.assertEqual(coll.count_documents({}), 300)

    def test_add_and_remove_shards(self):
        coll = self.client.shop.items
        coll.insert_many([{"_id": i} for i in range(300)])
        reply = json.loads(self.sim.control("ADD_SHARD")[3:])
        self.assertEqual(reply["shard"], "shard3")
        shards = self.client.admin.command("listShards")["shards"]
        self.assertEqual(len(shards), 4)
        wait_for(lambda: self.client.config.chunks.count_documents({"shard": "shard3"}) >= 1,
                 what="the balancer to give the new shard a chunk")
        wait_for(lambda: self.shard_counts()["shard3"]["docs"] > 0, what="documents on the new shard")
        self.assertIn('"moved"', self.sim.control("REMOVE_SHARD shard0"))
        self.assertEqual([s["_id"] for s in self.client.admin.command("listShards")["shards"]],
                         ["shard1", "shard2", "shard3"])
        self.assertEqual(self.client.config.chunks.count_documents({"shard": "shard0"}), 0)
        self.assertEqual(self.shard_counts()["shard0"]["docs"], 0)
        self.assertEqual(coll.count_documents({}), 300)
        removed_inserts = self.shard_counts()["shard0"]["insert"]
        coll.insert_many([{"_id": 1000 + i} for i in range(30)])
        self.assertEqual(self.shard_counts()["shard0"]["insert"], removed_inserts)  # no writes go there now
        self.assertEqual(coll.count_documents({}), 330)


class TestChangeStreams(ShardedCase):
    extra = ("--approve-after", "50")

    def test_merged_stream_in_cluster_time_order_and_resume(self):
        coll = self.client.dag.transactions
        with coll.watch(max_await_time_ms=200) as stream:
            self.sim.insert(300)
            first = take(stream, 150)
            token = stream.resume_token
        self.assertEqual(token, first[-1]["_id"])
        times = [ev["clusterTime"] for ev in first]
        self.assertEqual(times, sorted(times))
        self.assertEqual(len(set(ev["_id"]["_data"] for ev in first)), 150)
        with coll.watch(resume_after=token, max_await_time_ms=200) as stream:
            rest = drain(stream, quiet=1.5)
        events = first + rest
        # 300 inserts and their 300 approvals (updates), each exactly once, in cluster-time order.
        self.assertEqual(len(events), 600)
        self.assertEqual(len(set(ev["_id"]["_data"] for ev in events)), 600)
        self.assertEqual([ev["clusterTime"] for ev in events], sorted(ev["clusterTime"] for ev in events))
        seqs = [ev["fullDocument"]["seq"] for ev in events if ev["operationType"] == "insert"]
        self.assertEqual(sorted(seqs), list(range(1, 301)))
        self.assertEqual(sum(1 for ev in events if ev["operationType"] == "update"), 300)
        self.assertEqual(self.sim.counts()["ns"]["dag.transactions"]["total"], 600)

    def test_stream_sees_exactly_the_counts_across_a_shard_step_down(self):
        """pymongo's own stream through mongos = the simulator's COUNTS, exactly."""
        events = []
        with self.client.dag.transactions.watch(max_await_time_ms=200) as stream:
            self.sim.control("RATE 1000")
            events += take(stream, 500)
            self.assertIn("PRIMARY", self.sim.control("STATUS"))
            self.sim.control("SHARD shard1 STEPDOWN 0")  # no secondaries: shard1 has no primary now
            status = self.sim.control_json("STATUS")
            self.assertEqual(status["shards"][1]["state"], "SECONDARY")
            events += take(stream, 500)
            self.sim.control("SHARD shard1 STEPUP")
            events += take(stream, 200)
            self.sim.control("RATE 0")
            time.sleep(0.3)
            events += drain(stream, quiet=1.5)
        counts = self.sim.counts()
        ns = counts["ns"]["dag.transactions"]
        self.assertEqual(len(events), ns["total"])
        self.assertEqual(sum(1 for e in events if e["operationType"] == "insert"), ns["insert"])
        self.assertEqual(sum(1 for e in events if e["operationType"] == "update"), ns["update"])
        self.assertEqual(ns["insert"], counts["generated"])
        self.assertGreater(ns["update"], 0)
        times = [ev["clusterTime"] for ev in events]
        self.assertEqual(times, sorted(times))
        self.assertEqual(len(set(times)), len(times))
        for name, c in counts["shards"].items():
            self.assertGreater(c["insert"], 0, name)

    def test_libmongoc_sees_what_pymongo_sees(self):
        coll = self.client.shop.things
        start = self.sim.counts()["last_ts"]
        coll.insert_many([{"_id": "k%d" % i, "v": i} for i in range(40)])
        coll.update_one({"_id": "k3"}, {"$set": {"v": 33}})
        coll.delete_one({"_id": "k4"})
        total = 42
        watcher = subprocess.run(
            [mongosim.sim_tool("mongo_sim_watch"), "--uri", self.uri, "--ns", "shop.things", "--count", str(total),
             "--start-at", "%d,%d" % (start["t"], start["i"] + 1), "--timeout-ms", "30000"],
            capture_output=True, text=True, timeout=60)
        self.assertEqual(watcher.returncode, 0, watcher.stderr)
        from_libmongoc = [json.loads(line) for line in watcher.stdout.splitlines()]
        from bson.timestamp import Timestamp
        with coll.watch(start_at_operation_time=Timestamp(start["t"], start["i"] + 1),
                        max_await_time_ms=200) as stream:
            from_pymongo = [json.loads(json_util.dumps(ev, json_options=CANONICAL_JSON_OPTIONS))
                            for ev in take(stream, total)]
        self.assertEqual(from_pymongo, from_libmongoc)
        self.assertEqual([e["operationType"] for e in from_pymongo][-2:], ["update", "delete"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
