# SPDX-License-Identifier: Apache-2.0
"""The documented reply shapes of tests/data/mongodb/ through real drivers
(issue 16 item 1): mongo_rs_sim answers replSetGetStatus, serverStatus,
collStats and find with a corpus file (control command REPLY), and both
libmongoc (the exporter's scrape) and pymongo read them; the exporter's
series are checked against the values written in the files. hello replies
(REPLY hello) are read by both drivers over a direct connection; change
events (EVENT <file>) by the exporter's stream and a pymongo watch."""
import os
import time
import unittest

import bson.json_util
import pymongo
import pymongo.monitoring

import mongoexp
import mongosim
import pohtest

CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "mongodb")


def corpus(name):
    return os.path.join(CORPUS, name)


class CorpusThroughDrivers(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sim = mongosim.MongoSim().start()
        cls.state = mongoexp.StateDir()
        cls.exp = pohtest.Exporter(mongoexp.config(
            [{"name": "main", "uri": cls.sim.uri}], cls.state.path))
        cls.client = pymongo.MongoClient(cls.sim.uri, serverSelectionTimeoutMS=10000)

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        try:
            mongoexp.stop_checked(cls.exp)
        finally:
            cls.sim.stop()
            cls.state.cleanup()

    def tearDown(self):
        self.sim.control("CLEAR_FAULTS")

    def scrape(self):
        m = self.exp.metrics()
        self.assertEqual(pohtest.value(m, "poh_mongodb_up", cluster="main"), 1)
        return m

    def state_of(self, m, member):
        on = [dict(k[1])["state"] for k, v in pohtest.find(
            m, "poh_mongodb_member_state", cluster="main", member=member).items() if v == 1]
        return on

    def test_members_in_every_state_7_0(self):
        self.sim.control("REPLY replSetGetStatus " + corpus("rs_status_7.0_all_states.json"))
        members = self.client.admin.command("replSetGetStatus")["members"]
        down = [x for x in members if x["name"] == "m3.example.net:27017"][0]
        self.assertEqual((down["state"], down["stateStr"], down["health"]),
                         (8, "(not reachable/healthy)", 0))
        m = self.scrape()
        want = {"m0.example.net:27017": ("PRIMARY", 1, 0),
                "m1.example.net:27017": ("SECONDARY", 1, 2),
                "m2.example.net:27017": ("ARBITER", 1, None),
                "m3.example.net:27017": ("DOWN", 0, None),
                "m4.example.net:27017": ("RECOVERING", 1, 335)}
        for member, (state, health, lag) in want.items():
            with self.subTest(member=member):
                self.assertEqual(self.state_of(m, member), [state])
                self.assertEqual(pohtest.value(m, "poh_mongodb_member_health", cluster="main",
                                               member=member), health)
                got = pohtest.find(m, "poh_mongodb_replication_lag_seconds", cluster="main",
                                   member=member)
                self.assertEqual(list(got.values()), [] if lag is None else [lag])
        self.assertEqual(pohtest.find(m, "poh_mongodb_member_state", cluster="main",
                                      state="(not reachable/healthy)"), {})

    def test_down_member_without_optime_5_0(self):
        self.sim.control("REPLY replSetGetStatus " + corpus("rs_status_5.0_down_no_optime.json"))
        members = self.client.admin.command("replSetGetStatus")["members"]
        self.assertEqual([x["state"] for x in members], [1, 8, 2])
        m = self.scrape()
        self.assertEqual(self.state_of(m, "p1.example.net:27017"), ["DOWN"])
        self.assertEqual(pohtest.value(m, "poh_mongodb_member_health", cluster="main",
                                       member="p1.example.net:27017"), 0)
        lag = pohtest.find(m, "poh_mongodb_replication_lag_seconds", cluster="main")
        self.assertEqual({dict(k[1])["member"]: v for k, v in lag.items()},
                         {"p0.example.net:27017": 0, "p2.example.net:27017": 5})

    def test_startup2_rollback_removed_6_0(self):
        self.sim.control("REPLY replSetGetStatus " +
                         corpus("rs_status_6.0_startup2_rollback_removed.json"))
        members = self.client.admin.command("replSetGetStatus")["members"]
        self.assertEqual([x["stateStr"] for x in members],
                         ["PRIMARY", "SECONDARY", "STARTUP2", "ROLLBACK", "REMOVED"])
        m = self.scrape()
        want = {"n0.example.net:27017": ("PRIMARY", 0), "n1.example.net:27017": ("SECONDARY", 10),
                "n2.example.net:27017": ("STARTUP2", None),
                "n3.example.net:27017": ("ROLLBACK", 135),
                "n4.example.net:27017": ("REMOVED", 5)}
        for member, (state, lag) in want.items():
            with self.subTest(member=member):
                self.assertEqual(self.state_of(m, member), [state])
                got = pohtest.find(m, "poh_mongodb_replication_lag_seconds", cluster="main",
                                   member=member)
                self.assertEqual(list(got.values()), [] if lag is None else [lag])

    def test_written_optimes_8_0(self):
        self.sim.control("REPLY replSetGetStatus " + corpus("rs_status_8.0_written_optimes.json"))
        members = self.client.admin.command("replSetGetStatus")["members"]
        self.assertEqual(members[1]["optimeWritten"]["ts"].time - members[1]["optime"]["ts"].time, 3)
        m = self.scrape()
        lag = pohtest.find(m, "poh_mongodb_replication_lag_seconds", cluster="main")
        # the applied optime's lag, not the written one's (0)
        self.assertEqual({dict(k[1])["member"]: v for k, v in lag.items()},
                         {"e0.example.net:27017": 0, "e1.example.net:27017": 3,
                          "e2.example.net:27017": 0})

    def test_server_status_7_0(self):
        self.sim.control("REPLY serverStatus " + corpus("server_status_7.0.json"))
        ss = self.client.admin.command("serverStatus")
        self.assertEqual(ss["opcounters"]["insert"], 2345001)
        m = self.scrape()
        ops = pohtest.find(m, "poh_mongodb_operations_total", cluster="main")
        self.assertEqual({dict(k[1])["op"]: v for k, v in ops.items()},
                         {"insert": 2345001, "query": 120034, "update": 98001, "delete": 1203,
                          "getmore": 77003, "command": 560001})
        self.assertEqual(pohtest.value(m, "poh_mongodb_operation_latency_seconds_total",
                                       cluster="main", op_type="writes"), 456.789012)
        self.assertEqual(pohtest.value(m, "poh_mongodb_operation_latency_ops_total",
                                       cluster="main", op_type="transactions"), 1000)
        txn = pohtest.find(m, "poh_mongodb_transactions_total", cluster="main")
        self.assertEqual({dict(k[1])["result"]: v for k, v in txn.items()},
                         {"started": 1000, "committed": 987, "aborted": 12})

    def test_mongos_server_status_5_0_has_no_latencies(self):
        self.sim.control("REPLY serverStatus " + corpus("server_status_5.0_mongos.json"))
        self.assertEqual(self.client.admin.command("serverStatus")["process"], "mongos")
        m = self.scrape()
        self.assertEqual(pohtest.value(m, "poh_mongodb_operations_total", cluster="main",
                                       op="query"), 3000)
        self.assertEqual(pohtest.find(m, "poh_mongodb_operation_latency_seconds_total",
                                      cluster="main"), {})
        self.assertEqual(pohtest.value(m, "poh_mongodb_transactions_total", cluster="main",
                                       result="committed"), 38)

    def test_oplog_bounds_and_size(self):
        self.sim.control("REPLY collStats " + corpus("coll_stats_oplog_7.0.json"))
        self.sim.control("REPLY find " + corpus("oplog_first_7.0.json"))
        m = self.scrape()
        self.assertEqual(pohtest.value(m, "poh_mongodb_oplog_size_bytes", cluster="main"),
                         5348201776)
        self.assertEqual(pohtest.value(m, "poh_mongodb_oplog_max_size_bytes", cluster="main"),
                         53687091200)
        # both bounds read the one entry of the file: the window is 0
        for name in ("poh_mongodb_oplog_first_timestamp_seconds",
                     "poh_mongodb_oplog_last_timestamp_seconds"):
            self.assertEqual(pohtest.value(m, name, cluster="main"), 1795534935)
        self.assertEqual(pohtest.value(m, "poh_mongodb_oplog_window_seconds", cluster="main"), 0)
        self.sim.control("REPLY find " + corpus("oplog_empty_7.0.json"))
        m = self.scrape()
        self.assertEqual(pohtest.find(m, "poh_mongodb_oplog_window_seconds", cluster="main"), {})
        self.assertEqual(pohtest.find(m, "poh_mongodb_oplog_first_timestamp_seconds",
                                      cluster="main"), {})

    def test_reply_errors_are_clear(self):
        for line, want in (("REPLY serverStatus /nonexistent.json", "cannot open"),
                           ("REPLY serverStatus", "usage"),
                           ("REPLY serverStatus " + os.path.join(CORPUS, "SOURCES.md"), "SOURCES")):
            with self.subTest(line=line):
                with self.assertRaises(mongosim.ControlError) as cm:
                    self.sim.control(line)
                self.assertIn(want, str(cm.exception))
        # and off brings the simulator's own answer back
        self.sim.control("REPLY serverStatus " + corpus("server_status_7.0.json"))
        self.sim.control("REPLY serverStatus off")
        self.assertNotEqual(self.client.admin.command("serverStatus")["opcounters"]["insert"],
                            2345001)


# The change events of the corpus in the order EVENT sends them, with the
# operation each counts as (None: a fragment that is not the last of its
# event). The expanded DDL events go to no stream here: neither the exporter
# nor pymongo asks for showExpandedEvents.
EVENTS = (("event_insert_7.0.json", "insert"),
          ("event_insert_5.0_no_walltime.json", "insert"),
          ("event_update_7.0_truncated_arrays.json", "update"),
          ("event_update_6.1_disambiguated_paths.json", "update"),
          ("event_update_7.0_full_document_null.json", "update"),
          ("event_replace_7.0.json", "replace"),
          ("event_delete_7.0.json", "delete"),
          ("event_split_7.0_fragment1.json", None),
          ("event_split_7.0_fragment2.json", "update"),
          ("event_split_7.0_update_3of3_fragment1.json", None),
          ("event_split_7.0_update_3of3_fragment2.json", None),
          ("event_split_7.0_update_3of3_fragment3.json", "update"))
EXPANDED = ("event_create_6.0_expanded.json", "event_createIndexes_6.0_expanded.json",
            "event_modify_6.0_expanded.json", "event_shardCollection_6.0_expanded.json")


class EventsThroughDrivers(unittest.TestCase):
    """Every change event of the corpus that leaves a stream open, sent by the
    simulator as written (EVENT <file>, its own resume token as _id), through
    the exporter's stream (libmongoc) and a pymongo watch at once."""

    def test_every_event(self):
        with mongosim.MongoSim() as sim:
            state = mongoexp.StateDir()
            ex = pohtest.Exporter(mongoexp.config(
                [{"name": "main", "uri": sim.uri, "streams": [mongoexp.TX_STREAM]}], state.path))
            client = pymongo.MongoClient(sim.uri, serverSelectionTimeoutMS=10000, tz_aware=True)
            try:
                self.assertTrue(mongoexp.wait_stream_up(ex))
                with client.dag.transactions.watch(max_await_time_ms=200) as stream:
                    for name in EXPANDED + tuple(f for f, _ in EVENTS):
                        sim.control("EVENT " + corpus(name))
                    seen = []
                    deadline = time.monotonic() + 30
                    while len(seen) < len(EVENTS) and time.monotonic() < deadline:
                        ev = stream.try_next()
                        if ev is not None:
                            seen.append(ev)
                self.check_pymongo(seen)
                self.check_exporter(ex)
                for name in ("event_invalidate_7.0.json", "event_drop_7.0.json"):
                    with self.assertRaises(mongosim.ControlError) as cm:
                        sim.control("EVENT " + corpus(name))
                    self.assertIn("closes a stream", str(cm.exception))
            finally:
                client.close()
                mongoexp.stop_checked(ex)
                state.cleanup()

    def check_pymongo(self, seen):
        want = []
        for name, _ in EVENTS:
            with open(corpus(name)) as f:
                want.append(bson.json_util.loads(f.read()))
        self.assertEqual([e.get("operationType") for e in seen],
                         [w.get("operationType") for w in want])  # no expanded event among them
        for got, w in zip(seen, want):
            self.assertNotEqual(got["_id"], w["_id"])  # the simulator's own token
            self.assertEqual({k: v for k, v in got.items() if k != "_id"},
                             {k: v for k, v in w.items() if k != "_id"})
        self.assertEqual(seen[2]["updateDescription"]["truncatedArrays"],
                         [{"field": "history", "newSize": 2}])
        self.assertIsNone(seen[4]["fullDocument"])

    def check_exporter(self, ex):
        L = {"cluster": "main", "stream": "tx"}
        want = {}
        for _, op in EVENTS:
            if op:
                want[op] = want.get(op, 0) + 1
        for op, n in want.items():
            self.assertEqual(mongoexp.wait_value(ex, "poh_mongodb_changes_total", n, 30,
                                                 operation=op, **L), n, op)
        m = ex.metrics()
        got = pohtest.find(m, "poh_mongodb_changes_total", **L)
        self.assertEqual({dict(k[1])["operation"]: v for k, v in got.items() if v}, want)
        # storage (inserts, created_at to the commit): 7.0's wallTime 15:42:15.250
        # less 15:42:15.000; 5.0's clusterTime 15:42:15 (no wallTime) less 15:42:14
        self.assertEqual(pohtest.value(m, "poh_storage_latency_seconds_count", **L), 2)
        self.assertAlmostEqual(pohtest.value(m, "poh_storage_latency_seconds_sum", **L), 1.25)
        # approval (created_at to approved_at): the 3-fragment update only, its
        # approved_at (fragment 2, 15:42:16.500) less created_at (fragment 3,
        # 15:42:14.000)
        self.assertEqual(pohtest.value(m, "poh_approval_latency_seconds_count", **L), 1)
        self.assertAlmostEqual(pohtest.value(m, "poh_approval_latency_seconds_sum", **L), 2.5)


def shape(doc):
    """A document's keys and value types, nested documents as their shapes."""
    return {k: shape(v) if isinstance(v, dict) else type(v).__name__ for k, v in doc.items()}


class ClosingEventsShape(unittest.TestCase):
    """The events that close a stream (drop, rename, dropDatabase and the
    invalidate after them) are not sent from the corpus files (EVENT refuses
    them): the simulator makes them itself when a collection or database is
    dropped or renamed, and the exporter's handling of them is tested with
    exact counts in test_mongodb_streams. Here the simulator's own are
    compared, key by key and type by type, with the documented shapes of the
    corpus, as pymongo receives them."""

    def corpus_shape(self, name):
        with open(corpus(name)) as f:
            return shape(bson.json_util.loads(f.read()))

    def events(self, watchable, action, n):
        with watchable.watch(max_await_time_ms=200) as stream:
            action()
            got = []
            deadline = time.monotonic() + 20
            while len(got) < n and stream.alive and time.monotonic() < deadline:
                ev = stream.try_next()
                if ev is not None:
                    got.append(ev)
        return got

    def test_drop_rename_drop_database(self):
        with mongosim.MongoSim("--server-version", "7.0") as sim:
            client = pymongo.MongoClient(sim.uri, serverSelectionTimeoutMS=10000)
            try:
                db = client.dag
                db.transactions.insert_one({"x": 1})
                drop = self.events(db.transactions, db.transactions.drop, 2)
                self.assertEqual([e["operationType"] for e in drop], ["drop", "invalidate"])
                self.assertEqual(shape(drop[0]), self.corpus_shape("event_drop_7.0.json"))
                self.assertEqual(shape(drop[1]), self.corpus_shape("event_invalidate_7.0.json"))
                db.transactions.insert_one({"x": 2})
                rename = self.events(db.transactions,
                                     lambda: db.transactions.rename("transactions_old"), 2)
                self.assertEqual([e["operationType"] for e in rename], ["rename", "invalidate"])
                self.assertEqual(shape(rename[0]), self.corpus_shape("event_rename_7.0.json"))
                dropdb = self.events(db, lambda: client.drop_database("dag"), 3)
                self.assertEqual([e["operationType"] for e in dropdb],
                                 ["drop", "dropDatabase", "invalidate"])
                self.assertEqual(shape(dropdb[1]),
                                 self.corpus_shape("event_dropDatabase_7.0.json"))
            finally:
                client.close()


HELLOS = (("hello_5.0_rs_primary.json", "RSPrimary", 13),
          ("hello_6.0_rs_secondary.json", "RSSecondary", 17),
          ("hello_7.0_rs_arbiter.json", "RSArbiter", 21),
          ("hello_8.0_rs_primary.json", "RSPrimary", 25),
          ("hello_8.0_mongos.json", "Mongos", 25))


class TypeListener(pymongo.monitoring.ServerListener):
    """The server types pymongo's monitor gives the server, in order."""

    def __init__(self):
        self.types = []

    def opened(self, event):
        pass

    def closed(self, event):
        pass

    def description_changed(self, event):
        self.types.append(event.new_description.server_type_name)


class HelloThroughDrivers(unittest.TestCase):
    """hello as MongoDB 5.0-8.0 answer it (REPLY hello: also isMaster, with
    ismaster for isWritablePrimary), read by pymongo and by libmongoc in the
    exporter over a direct connection, so the hosts the files name are never
    dialled. Each driver types the server as the file says; the exporter
    takes the router's way for a mongos and the replica set's otherwise; and
    both keep to the streaming protocol of 4.4+: an awaitable hello waits
    while the file's topologyVersion stands, so the monitors do not spin."""

    def hellos(self, sim):
        c = sim.commands()
        return c.get("hello", 0) + c.get("isMaster", 0) + c.get("ismaster", 0)

    def test_every_hello(self):
        for name, server_type, wire in HELLOS:
            with self.subTest(name):
                self.check(name, server_type, wire)

    def check(self, name, server_type, wire):
        with open(corpus(name)) as f:
            want = bson.json_util.loads(f.read())
        with mongosim.MongoSim() as sim:
            sim.control("REPLY hello " + corpus(name))
            listener = TypeListener()
            client = pymongo.MongoClient(sim.address, directConnection=True,
                                         serverSelectionTimeoutMS=10000,
                                         event_listeners=[listener])
            try:
                got = client.admin.command("hello")
                self.assertEqual(got["maxWireVersion"], wire)
                self.assertEqual(got["topologyVersion"], want["topologyVersion"])
                self.assertEqual(got.get("setName"), want.get("setName"))
                self.assertTrue(pohtest.wait_until(lambda: server_type in listener.types, 10),
                                listener.types)
                self.assertEqual(listener.types[-1], server_type)
                self.exporter_reads(sim, server_type)
                # Streaming: pymongo's monitor waits in an awaitable hello (10 s,
                # its heartbeat) and libmongoc's clients are gone: a handful of
                # hellos in 2 s, not thousands.
                before = self.hellos(sim)
                time.sleep(2)
                self.assertLess(self.hellos(sim) - before, 10)
            finally:
                client.close()

    def exporter_reads(self, sim, server_type):
        state = mongoexp.StateDir()
        uri = "mongodb://%s/?directConnection=true" % sim.address
        ex = pohtest.Exporter(mongoexp.config([{"name": "main", "uri": uri}], state.path))
        try:
            m = ex.metrics()
            self.assertEqual(pohtest.value(m, "poh_mongodb_up", cluster="main"), 1)
            routers = pohtest.find(m, "poh_mongodb_mongos_up", cluster="main")
            members = pohtest.find(m, "poh_mongodb_member_state", cluster="main")
            if server_type == "Mongos":
                # msg "isdbgrid": libmongoc types it Mongos, the router's way
                self.assertEqual(list(routers.values()), [1])
                self.assertEqual(members, {})
            else:
                # the replica set's way: the simulator's own replSetGetStatus
                self.assertEqual(routers, {})
                self.assertGreaterEqual(len(members), 10)
        finally:
            mongoexp.stop_checked(ex)
            state.cleanup()


if __name__ == "__main__":
    pohtest.main()
