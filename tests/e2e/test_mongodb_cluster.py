# SPDX-License-Identifier: Apache-2.0
"""Cluster-level series of a mongos entry (issue 17 item 4): each router of
the URI up, the balancer enabled and running, chunks and jumbo chunks per
shard and collection equal to the simulator's config database, chunk
migrations from config.changelog counted once each, across scrapes and
across kill -9 of the exporter, and the commands one scrape sends the same
with 40 chunks and with 20,000."""

import signal
import unittest

import mongoexp
import mongosim
import pohtest

NS = "dag.transactions"


def by_shard_coll(samples):
    return {(dict(k[1])["shard"], dict(k[1])["collection"]): v for k, v in samples.items()}


def chunk_map(sim):
    """{(shard, ns): (chunks, jumbo)} from the simulator's config.chunks."""
    import pymongo
    c = pymongo.MongoClient("mongodb://%s/" % sim.address, serverSelectionTimeoutMS=5000)
    try:
        uuids = {d["uuid"]: d["_id"] for d in c.config.collections.find()}
        out = {}
        for d in c.config.chunks.find():
            key = (d["shard"], uuids[d["uuid"]])
            n, j = out.get(key, (0, 0))
            out[key] = (n + 1, j + (1 if d.get("jumbo") else 0))
        return out
    finally:
        c.close()


class ClusterLevelTest(unittest.TestCase):
    def setUp(self):
        self.sim = mongosim.MongoSim("--shards", "3", "--rate", "50").start()
        # No migration before the test wants one: the balancer is off.
        self.sim.control("BALANCER off")
        self.sim.control("SPLIT %s 12" % NS)  # shards the collection now, 12 chunks
        self.state = mongoexp.StateDir()
        self.dead = "127.0.0.1:%d" % mongoexp.closed_port()
        self.cfg = mongoexp.config([{"name": "main",
                                     "uri": "mongodb://%s,%s/" % (self.sim.address, self.dead)}],
                                   self.state.path)
        self.ex = pohtest.Exporter(self.cfg)

    def tearDown(self):
        mongoexp.stop_checked(self.ex)
        self.sim.stop()
        self.state.cleanup()

    def migrations(self, result):
        return mongoexp.value(self.ex, "poh_mongodb_chunk_migrations_total", cluster="main", result=result)

    def check_chunks(self):
        m = self.ex.metrics()
        want = chunk_map(self.sim)
        got = by_shard_coll(pohtest.find(m, "poh_mongodb_chunks", cluster="main"))
        self.assertEqual(got, {k: v[0] for k, v in want.items()})
        jumbo = by_shard_coll(pohtest.find(m, "poh_mongodb_jumbo_chunks", cluster="main"))
        self.assertEqual(jumbo, {k: v[1] for k, v in want.items()})

    def test_routers_balancer_chunks(self):
        self.assertEqual(mongoexp.wait_value(self.ex, "poh_mongodb_mongos_up", 1, cluster="main",
                                             router=self.sim.address), 1)
        m = self.ex.metrics()
        self.assertEqual(pohtest.value(m, "poh_mongodb_mongos_up", cluster="main", router=self.dead), 0)
        self.assertEqual(pohtest.value(m, "poh_mongodb_balancer_enabled", cluster="main"), 0)
        self.assertEqual(pohtest.value(m, "poh_mongodb_balancer_running", cluster="main"), 0)
        self.sim.control("BALANCER on")
        self.assertEqual(mongoexp.value(self.ex, "poh_mongodb_balancer_enabled", cluster="main"), 1)
        self.sim.control("BALANCER off")
        self.check_chunks()
        self.sim.control("JUMBO %s shard1 3" % NS)
        self.sim.control("MIGRATE %s shard0 shard2" % NS)
        self.check_chunks()
        self.assertEqual(sum(pohtest.find(self.ex.metrics(), "poh_mongodb_jumbo_chunks",
                                                               cluster="main").values()), 3)

    def test_balancer_from_config_settings(self):
        """balancerStatus refused (Unauthorized, 13): enabled comes from
        config.settings {_id: "balancer"}; whether a round runs is unknown."""
        self.sim.fail_command("balancerStatus", 13, 1000)
        m = self.ex.metrics()
        self.assertEqual(pohtest.value(m, "poh_mongodb_balancer_enabled", cluster="main"), 0)
        self.assertIsNone(pohtest.value(m, "poh_mongodb_balancer_running", cluster="main"))
        self.sim.control("BALANCER on")
        self.assertEqual(mongoexp.value(self.ex, "poh_mongodb_balancer_enabled", cluster="main"), 1)
        self.assertEqual(mongoexp.value(self.ex, "poh_mongodb_up", cluster="main"), 1)

    def test_commands_do_not_grow_with_chunks(self):
        def per_scrape():
            self.ex.metrics()
            before = self.sim.commands()
            self.ex.metrics()
            after = self.sim.commands()
            return {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}
        few = per_scrape()
        self.sim.control("SPLIT %s 20000" % NS)
        many = per_scrape()
        self.assertEqual(few, many)
        self.assertEqual(sum(pohtest.find(self.ex.metrics(), "poh_mongodb_chunks",
                                                               cluster="main").values()), 12 * 1667)

    def test_migrations_counted_once_across_kill(self):
        self.assertEqual(mongoexp.wait_value(self.ex, "poh_mongodb_chunk_migrations_total", 0, cluster="main",
                                             result="succeeded"), 0)
        for _ in range(3):
            self.sim.control("MIGRATE %s shard0 shard1" % NS)
        self.sim.control("MIGRATE %s shard1 shard2 fail" % NS)
        self.assertEqual(self.migrations("succeeded"), 3)
        self.assertEqual(self.migrations("failed"), 1)
        self.assertEqual(self.migrations("succeeded"), 3)  # scraped again: not counted twice
        self.ex.stop(signal.SIGKILL)
        self.sim.control("MIGRATE %s shard2 shard0" % NS)
        self.sim.control("MIGRATE %s shard2 shard0 fail" % NS)
        self.ex = pohtest.Exporter(self.cfg)
        st = self.sim.status()["migrations"]
        self.assertEqual((st["ok"], st["failed"]), (4, 2))
        self.assertEqual(mongoexp.wait_value(self.ex, "poh_mongodb_chunk_migrations_total", 4, cluster="main",
                                             result="succeeded"), 4)
        self.assertEqual(self.migrations("failed"), 2)
        self.assertEqual(self.migrations("succeeded"), 4)

    def test_one_exporter_counts_per_state_file(self):
        # A second exporter on the same state_dir does not count into the
        # first one's file; it takes over, from the saved counts, when the
        # first lets go of the lock.
        self.assertEqual(mongoexp.wait_value(self.ex, "poh_mongodb_chunk_migrations_total", 0, cluster="main",
                                             result="succeeded"), 0)
        second = pohtest.Exporter(self.cfg)
        try:
            for _ in range(2):
                self.sim.control("MIGRATE %s shard0 shard1" % NS)
            self.assertEqual(self.migrations("succeeded"), 2)
            m = second.metrics()
            self.assertEqual(pohtest.find(m, "poh_mongodb_chunk_migrations_total"), {})
            self.assertTrue(second.wait_log("not counting migrations until it lets go"),
                            second.log_text())
            mongoexp.stop_checked(self.ex)
            self.ex = second
            self.sim.control("MIGRATE %s shard1 shard2" % NS)
            self.assertEqual(mongoexp.wait_value(second, "poh_mongodb_chunk_migrations_total", 3,
                                                 cluster="main", result="succeeded"), 3)
            self.assertEqual(self.migrations("failed"), 0)
        except BaseException:
            if self.ex is not second:
                mongoexp.stop_checked(second)
            raise


if __name__ == "__main__":
    pohtest.main()
