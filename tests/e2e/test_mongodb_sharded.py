# SPDX-License-Identifier: Apache-2.0
"""The exporter pointed at a mongos (issue 17 item 1): it recognises the
router, lists the shards, asks each shard's replica set with the entry's own
credentials, follows a shard's primary stopping and a shard being added or
removed without a restart, and counts the change stream through mongos
exactly as the simulator does."""

import os
import tempfile
import unittest

import mongoexp
import mongosim
import pohtest

USER = "monitor"
PASSWORD = "s3cret-Pass"


class ShardedExporterTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="poh-shard-")
        self.pw_file = os.path.join(self.tmp, "pw")
        with open(self.pw_file, "w") as f:
            f.write(PASSWORD + "\n")
        os.chmod(self.pw_file, 0o600)
        self.sim = mongosim.MongoSim("--shards", "3", "--approve-after", "100", "--auth-user", USER,
                                     "--auth-password-file", self.pw_file).start()
        self.state = mongoexp.StateDir()
        uri = "mongodb://%s@%s/?authSource=admin" % (USER, self.sim.address)
        cfg = mongoexp.config([{"name": "main", "uri": uri, "password_file": self.pw_file,
                                "streams": [mongoexp.TX_STREAM]}], self.state.path)
        self.ex = pohtest.Exporter(cfg)

    def tearDown(self):
        mongoexp.stop_checked(self.ex)
        self.sim.stop()
        self.state.cleanup()

    def shard_value(self, name, shard):
        return mongoexp.value(self.ex, name, cluster="main", shard=shard)

    def test_shards_discovered_and_followed(self):
        self.assertEqual(mongoexp.wait_value(self.ex, "poh_mongodb_shards", 3, cluster="main"), 3)
        m = self.ex.metrics()
        self.assertEqual(pohtest.value(m, "poh_mongodb_up", cluster="main"), 1)
        for k in range(3):
            self.assertEqual(pohtest.value(m, "poh_mongodb_shard_up", cluster="main", shard="shard%d" % k), 1)
            self.assertEqual(pohtest.value(m, "poh_mongodb_shard_has_primary", cluster="main",
                                           shard="shard%d" % k), 1)
        # replSetGetStatus does not exist on mongos: no member series, no error.
        self.assertFalse(pohtest.find(m, "poh_mongodb_member_state"))
        # Stopping one shard's primary shows on that shard only, at the next scrape.
        self.sim.control("SHARD shard1 STEPDOWN 0")
        m = self.ex.metrics()
        self.assertEqual(pohtest.value(m, "poh_mongodb_shard_has_primary", cluster="main", shard="shard1"), 0)
        self.assertEqual(pohtest.value(m, "poh_mongodb_shard_up", cluster="main", shard="shard1"), 1)
        self.assertEqual(pohtest.value(m, "poh_mongodb_shard_has_primary", cluster="main", shard="shard0"), 1)
        self.assertEqual(pohtest.value(m, "poh_mongodb_up", cluster="main"), 1)
        self.sim.control("SHARD shard1 STEPUP")
        self.assertEqual(self.shard_value("poh_mongodb_shard_has_primary", "shard1"), 1)
        # A fourth shard appears without a restart; a removed one goes.
        self.sim.control("ADD_SHARD")
        m = self.ex.metrics()
        self.assertEqual(pohtest.value(m, "poh_mongodb_shards", cluster="main"), 4)
        self.assertEqual(pohtest.value(m, "poh_mongodb_shard_up", cluster="main", shard="shard3"), 1)
        self.sim.control("REMOVE_SHARD shard0")
        m = self.ex.metrics()
        self.assertEqual(pohtest.value(m, "poh_mongodb_shards", cluster="main"), 3)
        self.assertIsNone(pohtest.value(m, "poh_mongodb_shard_up", cluster="main", shard="shard0"))

    def test_changes_through_mongos_equal_the_simulator_counts(self):
        self.assertTrue(mongoexp.wait_stream_up(self.ex))
        self.sim.control("RATE 500")
        mongoexp.wait_value(self.ex, "poh_mongodb_shards", 3, cluster="main")
        pohtest.wait_until(lambda: (mongoexp.value(self.ex, "poh_mongodb_changes_total", cluster="main",
                                                   stream="tx", operation="insert") or 0) > 300,
                           timeout=30, interval=0.2)
        self.sim.control("SHARD shard2 STEPDOWN 0")
        pohtest.wait_until(lambda: (mongoexp.value(self.ex, "poh_mongodb_changes_total", cluster="main",
                                                   stream="tx", operation="insert") or 0) > 800,
                           timeout=30, interval=0.2)
        self.sim.control("SHARD shard2 STEPUP")
        self.sim.control("RATE 0")
        counts = self.sim.counts()["ns"]["dag.transactions"]
        pohtest.wait_until(lambda: self.sim.counts()["ns"]["dag.transactions"] == counts, timeout=5, interval=0.3)
        import time
        time.sleep(0.5)  # the last approvals (100 ms after their inserts)
        counts = self.sim.counts()["ns"]["dag.transactions"]
        for op in ("insert", "update"):
            self.assertEqual(mongoexp.wait_value(self.ex, "poh_mongodb_changes_total", counts[op], cluster="main",
                                                 stream="tx", operation=op), counts[op], op)
        self.assertGreater(counts["update"], 0)


if __name__ == "__main__":
    pohtest.main()
