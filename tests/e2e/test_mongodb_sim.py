# SPDX-License-Identifier: Apache-2.0
"""MongoDB collectors end to end: the real poh_exporter against the project's
replica-set simulator (tests/sim/mongo_rs_sim, real wire protocol, real
libmongoc), with exact expectations: every event counted once through
faults and kill -9, latencies that add up to the simulator's delays, lag
and oplog figures equal to what the simulator reports, a down cluster that
costs only the scrape deadline, and a fixed number of commands per scrape."""
import os
import signal
import time
import unittest

import pymongo

import mongoexp
import mongosim
import pohtest
from mongoexp import TX_STREAM, value, wait_value, wait_stream_up
from mongostack import COMMIT_DELAY_MS, Stack

class TestCounts(unittest.TestCase):
    def test_inserts_and_storage_latency(self):
        st = Stack()
        try:
            exp = st.start_exporter()
            self.assertTrue(wait_stream_up(exp))
            n = 0
            for burst in (1, 999, 4000):
                st.sim.insert(burst)
                n += burst
                got = wait_value(exp, "poh_mongodb_changes_total", n, cluster="main",
                                 stream="tx", operation="insert")
                self.assertEqual(got, n)
            m = exp.metrics()
            self.assertEqual(pohtest.value(m, "poh_storage_latency_seconds_count",
                                           cluster="main", stream="tx"), n)
            total = pohtest.value(m, "poh_storage_latency_seconds_sum", cluster="main", stream="tx")
            self.assertAlmostEqual(total, n * COMMIT_DELAY_MS / 1000, delta=1e-6 * n)
            # every value is 37 ms: all in the 0.05 bucket, none below 0.025
            self.assertEqual(pohtest.value(m, "poh_storage_latency_seconds_bucket", cluster="main",
                                           stream="tx", le="0.025"), 0)
            self.assertEqual(pohtest.value(m, "poh_storage_latency_seconds_bucket", cluster="main",
                                           stream="tx", le="0.05"), n)
            self.assertEqual(pohtest.value(m, "poh_approval_latency_seconds_count",
                                           cluster="main", stream="tx"), 0)
            self.assertEqual(pohtest.find(m, "poh_mongodb_change_field_errors_total",
                                          cluster="main", stream="tx"), {})
            lag = pohtest.value(m, "poh_mongodb_change_stream_lag_seconds", cluster="main", stream="tx")
            self.assertTrue(0 <= lag < 30, lag)
            # nothing more arrives later
            time.sleep(1.0)
            self.assertEqual(value(exp, "poh_mongodb_changes_total", cluster="main", stream="tx",
                                   operation="insert"), n)
            # the generator's traceparent becomes an exemplar in OpenMetrics
            om = exp.scrape(openmetrics=True)
            self.assertRegex(om, r'poh_storage_latency_seconds_bucket\{cluster="main",stream="tx",'
                                 r'le="0.05"\} \d+ # \{trace_id="[0-9a-f]{32}",span_id="[0-9a-f]{16}"\}')
        finally:
            st.close()

    def test_approval_latency_matches_documents(self):
        st = Stack("--approve-after", "150")
        try:
            exp = st.start_exporter()
            self.assertTrue(wait_stream_up(exp))
            n = 300
            st.sim.insert(n)
            self.assertTrue(pohtest.wait_until(lambda: st.sim.counts()["approved"] == n, 30))
            self.assertEqual(wait_value(exp, "poh_mongodb_changes_total", n, cluster="main",
                                        stream="tx", operation="update"), n)
            # the expected sum, read with an independent driver
            client = pymongo.MongoClient(st.sim.uri, serverSelectionTimeoutMS=5000)
            docs = list(client.dag.transactions.find({}))
            client.close()
            self.assertEqual(len(docs), n)
            want = sum((d["approved_at"] - d["created_at"]).total_seconds() for d in docs)
            m = exp.metrics()
            self.assertEqual(pohtest.value(m, "poh_approval_latency_seconds_count",
                                           cluster="main", stream="tx"), n)
            got = pohtest.value(m, "poh_approval_latency_seconds_sum", cluster="main", stream="tx")
            self.assertAlmostEqual(got, want, delta=1e-6 * n)
            self.assertTrue(got >= n * 0.150, got)
            # storage latency is observed on the inserts only
            self.assertEqual(pohtest.value(m, "poh_storage_latency_seconds_count",
                                           cluster="main", stream="tx"), n)
        finally:
            st.close()

    def test_field_errors(self):
        stream = """
- name: tx
  database: dag
  collection: transactions
  latencies:
    - {name: storage, from_field: created_at, to: commit}
- name: other
  database: dag
  collection: other
  latencies:
    - {name: storage, from_field: created_at, to: commit}
"""
        st = Stack(streams=(stream,))
        try:
            exp = st.start_exporter()
            self.assertTrue(wait_stream_up(exp, stream="other"))
            client = pymongo.MongoClient(st.sim.uri, serverSelectionTimeoutMS=5000)
            # an RFC 3339 string a second old: inside the plausible window
            recent = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))
            client.dag.other.insert_many([{"x": i} for i in range(5)] +
                                         [{"created_at": "not a time"} for _ in range(3)] +
                                         [{"created_at": recent}])
            client.close()
            self.assertEqual(wait_value(exp, "poh_mongodb_changes_total", 9, cluster="main",
                                        stream="other", operation="insert"), 9)
            m = exp.metrics()
            self.assertEqual(pohtest.value(m, "poh_mongodb_change_field_errors_total",
                                           cluster="main", stream="other", field="created_at",
                                           reason="missing"), 5)
            self.assertEqual(pohtest.value(m, "poh_mongodb_change_field_errors_total",
                                           cluster="main", stream="other", field="created_at",
                                           reason="not_a_time"), 3)
            self.assertEqual(len(pohtest.find(m, "poh_mongodb_change_field_errors_total",
                                              cluster="main", stream="other")), 2)
            self.assertEqual(pohtest.value(m, "poh_storage_latency_seconds_count",
                                           cluster="main", stream="other"), 1)
            self.assertEqual(pohtest.value(m, "poh_mongodb_changes_total", cluster="main",
                                           stream="tx", operation="insert"), None)
        finally:
            st.close()


class TestStatus(unittest.TestCase):
    def test_replication_lag_and_members(self):
        st = Stack("--secondaries", "4", streams=())
        try:
            st.sim.lag(1, 7)
            st.sim.lag(2, 3)
            st.sim.health(3, False)
            st.sim.lag(3, 50)
            st.sim.optime(4, True)
            hosts = [m["host"] for m in st.sim.status()["members"]]
            exp = st.start_exporter()
            m = exp.metrics()
            self.assertEqual(pohtest.value(m, "poh_mongodb_up", cluster="main"), 1)
            lag = pohtest.find(m, "poh_mongodb_replication_lag_seconds", cluster="main")
            got = {dict(k[1])["member"]: v for k, v in lag.items()}
            self.assertEqual(got, {hosts[0]: 0, hosts[1]: 7, hosts[2]: 3})
            self.assertEqual(pohtest.value(m, "poh_mongodb_member_health", cluster="main",
                                           member=hosts[3]), 0)
            self.assertEqual(pohtest.value(m, "poh_mongodb_member_health", cluster="main",
                                           member=hosts[1]), 1)
            self.assertEqual(pohtest.value(m, "poh_mongodb_member_state", cluster="main",
                                           member=hosts[0], state="PRIMARY"), 1)
            self.assertEqual(pohtest.value(m, "poh_mongodb_member_state", cluster="main",
                                           member=hosts[1], state="SECONDARY"), 1)
            self.assertEqual(pohtest.value(m, "poh_mongodb_member_state", cluster="main",
                                           member=hosts[1], state="PRIMARY"), 0)
            # a member that is down: state 8 with stateStr "(not reachable/healthy)",
            # as mongod reports it, is DOWN (from the numeric code)
            self.assertEqual(pohtest.value(m, "poh_mongodb_member_state", cluster="main",
                                           member=hosts[3], state="DOWN"), 1)
            self.assertEqual(pohtest.value(m, "poh_mongodb_member_state", cluster="main",
                                           member=hosts[3], state="SECONDARY"), 0)
            self.assertEqual(pohtest.find(m, "poh_mongodb_member_state", cluster="main",
                                          member=hosts[3], state="(not reachable/healthy)"), {})
            # the lag follows the simulator
            st.sim.lag(1, 12)
            self.assertEqual(wait_value(exp, "poh_mongodb_replication_lag_seconds", 12,
                                        cluster="main", member=hosts[1]), 12)
        finally:
            st.close()

    def test_oplog_window(self):
        st = Stack(streams=())
        try:
            st.sim.insert(100)
            time.sleep(2.2)  # let the cluster time move on by whole seconds
            st.sim.insert(100)
            c = st.sim.counts()
            exp = st.start_exporter()
            m = exp.metrics()
            first, last = c["oplog"]["first_ts"]["t"], c["last_ts"]["t"]
            self.assertGreaterEqual(last - first, 2)
            self.assertEqual(pohtest.value(m, "poh_mongodb_oplog_first_timestamp_seconds",
                                           cluster="main"), first)
            self.assertEqual(pohtest.value(m, "poh_mongodb_oplog_last_timestamp_seconds",
                                           cluster="main"), last)
            self.assertEqual(pohtest.value(m, "poh_mongodb_oplog_window_seconds", cluster="main"),
                             last - first)
            self.assertEqual(pohtest.value(m, "poh_mongodb_oplog_size_bytes", cluster="main"),
                             c["oplog"]["bytes"])
            self.assertEqual(pohtest.value(m, "poh_mongodb_oplog_max_size_bytes", cluster="main"),
                             c["oplog"]["max_bytes"])
            ops = pohtest.find(m, "poh_mongodb_operations_total", cluster="main")
            self.assertEqual({dict(k[1])["op"] for k in ops},
                             {"insert", "query", "update", "delete", "getmore", "command"})
            self.assertEqual(pohtest.value(m, "poh_mongodb_transactions_total", cluster="main",
                                           result="started"), 0)
            # the exporter's own commands, timed by libmongoc APM
            for cmd in ("replSetGetStatus", "find", "collStats", "serverStatus"):
                self.assertGreaterEqual(pohtest.value(
                    m, "poh_mongodb_command_duration_seconds_count", cluster="main",
                    command=cmd), 1, cmd)
        finally:
            st.close()

    def test_commands_per_scrape_fixed(self):
        """10 vs 10,000 collections: the same commands, one of each kind."""
        seen = {}
        for ncoll in (10, 10000):
            st = Stack("--collections", str(ncoll), streams=())
            try:
                exp = st.start_exporter()
                exp.metrics()  # handshake and first scan out of the way
                before = st.sim.commands()
                t0 = time.monotonic()
                m = exp.metrics()
                took = time.monotonic() - t0
                after = st.sim.commands()
                seen[ncoll] = ({k: v - before.get(k, 0) for k, v in after.items()
                                if v != before.get(k, 0)}, took)
                self.assertEqual(pohtest.value(m, "poh_mongodb_up", cluster="main"), 1)
            finally:
                st.close()
        cmds10, cmds10k = seen[10][0], seen[10000][0]
        heartbeat = {"hello", "isMaster", "ismaster"}
        ours10 = {k: v for k, v in cmds10.items() if k not in heartbeat}
        ours10k = {k: v for k, v in cmds10k.items() if k not in heartbeat}
        self.assertEqual(ours10, {"replSetGetStatus": 1, "find": 2, "collStats": 1,
                                  "serverStatus": 1})
        self.assertEqual(ours10k, ours10)
        print(f"commands per scrape: 10 collections {sum(ours10.values())} "
              f"({seen[10][1] * 1000:.1f} ms), 10000 collections {sum(ours10k.values())} "
              f"({seen[10000][1] * 1000:.1f} ms)")


class TestFaults(unittest.TestCase):
    def test_faults_keep_exact_totals(self):
        st = Stack()
        try:
            exp = st.start_exporter()
            self.assertTrue(wait_stream_up(exp))
            faults = [
                ("drop connections", lambda: st.sim.drop()),
                ("resumable getMore error", lambda: st.sim.fail_getmore(91)),
                ("step-down", lambda: st.sim.stepdown(2)),
                ("stalled replies", lambda: st.sim.stall(1500)),
            ]
            n = 0
            resumed = {}
            for name, fault in faults:
                st.sim.insert(250)
                n += 250
                before = mongoexp.value(exp, "poh_mongodb_change_stream_resumes_total",
                                        cluster="main", stream="tx")
                fault()
                st.sim.insert(250)  # while the stream is broken (the simulator stays writable
                n += 250            # for these bursts, which bypass the wire protocol)
                if name == "stalled replies":
                    time.sleep(0.5)
                    st.sim.stall(0)
                got = wait_value(exp, "poh_mongodb_changes_total", n, 60, cluster="main",
                                 stream="tx", operation="insert")
                self.assertEqual(got, n, name)
                self.assertEqual(st.produced(), n)
                resumed[name] = mongoexp.value(exp, "poh_mongodb_change_stream_resumes_total",
                                               cluster="main", stream="tx") - before
            m = exp.metrics()
            self.assertEqual(pohtest.value(m, "poh_storage_latency_seconds_count",
                                           cluster="main", stream="tx"), n)
            # The armed error 91 fails the next getMore, which is resumed from the
            # token; it may be the getMore of a later phase (one dispatched before
            # the error was armed can bring that phase's events), so only the
            # total is certain. After the dropped connections the cursor lives on
            # in the server, as in mongod: libmongoc's monitor, whose awaitable
            # hello was on one of them, may have replaced the pool before the next
            # getMore (which then just continues), or that getMore fails and is
            # resumed. The counts are exact either way.
            print(f"  resumes seen per phase: {resumed}")
            self.assertTrue(pohtest.wait_until(lambda: mongoexp.value(
                exp, "poh_mongodb_change_stream_resumes_total", cluster="main",
                stream="tx") >= 1, 30))
            self.assertEqual(pohtest.value(m, "poh_mongodb_change_stream_history_lost_total",
                                           cluster="main", stream="tx"), 0)
        finally:
            st.close()

    def test_history_lost_counted_and_recovers(self):
        st = Stack()
        try:
            exp = st.start_exporter()
            self.assertTrue(wait_stream_up(exp))
            st.sim.insert(100)
            self.assertEqual(wait_value(exp, "poh_mongodb_changes_total", 100, cluster="main",
                                        stream="tx", operation="insert"), 100)
            # 1) the server says the history is gone (code 286 on getMore)
            st.sim.fail_getmore(286)
            self.assertEqual(wait_value(exp, "poh_mongodb_change_stream_history_lost_total", 1,
                                        cluster="main", stream="tx"), 1)
            self.assertTrue(wait_stream_up(exp))
            st.sim.insert(50)
            self.assertEqual(wait_value(exp, "poh_mongodb_changes_total", 150, cluster="main",
                                        stream="tx", operation="insert"), 150)
            self.assertEqual(len([l for l in exp.log_lines if "history lost" in l]), 1)
            # 2) the saved token really is gone: stop, write, truncate the oplog, restart
            mongoexp.stop_checked(exp)
            st.sim.insert(70)
            st.sim.truncate_oplog(0)
            st.sim.insert(5)
            exp = st.exp = st.start_exporter()
            self.assertEqual(wait_value(exp, "poh_mongodb_change_stream_history_lost_total", 2,
                                        cluster="main", stream="tx"), 2)
            self.assertTrue(wait_stream_up(exp))
            # the 75 written meanwhile are lost (that is what the counter says); later ones count
            st.sim.insert(20)
            self.assertEqual(wait_value(exp, "poh_mongodb_changes_total", 170, cluster="main",
                                        stream="tx", operation="insert"), 170)
        finally:
            st.close()

    def test_kill9_restart_exactly_once(self):
        st = Stack()
        try:
            for cycle in range(3):
                exp = st.start_exporter()
                self.assertTrue(wait_stream_up(exp))
                if cycle == 0:
                    st.sim.rate(3000)  # from now on every event must be counted once
                self.assertTrue(pohtest.wait_until(
                    lambda: (value(exp, "poh_mongodb_changes_total", cluster="main", stream="tx",
                                   operation="insert") or 0) > 0, 20))
                time.sleep(0.3 + 0.4 * cycle)
                exp.kill9()  # SIGKILL, mid-stream, while the generator keeps writing
                st.exp = None
                time.sleep(0.3)
            exp = st.start_exporter()
            self.assertTrue(wait_stream_up(exp))
            time.sleep(0.5)
            st.sim.rate(0)
            time.sleep(0.2)
            produced = st.produced()
            self.assertGreater(produced, 3000)
            got = wait_value(exp, "poh_mongodb_changes_total", produced, 60, cluster="main",
                             stream="tx", operation="insert")
            self.assertEqual(got, produced)
            time.sleep(1.0)
            self.assertEqual(value(exp, "poh_mongodb_changes_total", cluster="main", stream="tx",
                                   operation="insert"), produced)
            # the histograms are saved with the counters: their _count agrees too (issue 16 item 4)
            m = exp.metrics()
            self.assertEqual(pohtest.value(m, "poh_storage_latency_seconds_count", cluster="main",
                                           stream="tx"), produced)
            self.assertEqual(pohtest.value(m, "poh_storage_latency_seconds_bucket", cluster="main",
                                           stream="tx", le="+Inf"), produced)
            total = pohtest.value(m, "poh_storage_latency_seconds_sum", cluster="main", stream="tx")
            self.assertAlmostEqual(total, produced * COMMIT_DELAY_MS / 1000, delta=1e-6 * produced)
        finally:
            st.close()

    def test_reload_hands_over_without_double_counting(self):
        st = Stack()
        try:
            exp = st.start_exporter()
            self.assertTrue(wait_stream_up(exp))
            st.sim.rate(2000)
            for i in range(3):
                time.sleep(0.4)
                exp.proc.send_signal(signal.SIGHUP)
                self.assertTrue(pohtest.wait_until(
                    lambda: sum("msg=\"reloaded " in l for l in exp.log_lines) == i + 1, 10))
            time.sleep(0.5)
            st.sim.rate(0)
            time.sleep(0.2)
            produced = st.produced()
            got = wait_value(exp, "poh_mongodb_changes_total", produced, 60, cluster="main",
                             stream="tx", operation="insert")
            self.assertEqual(got, produced)
            self.assertEqual(value(exp, "poh_exporter_config_last_reload_successful"), 1)
        finally:
            st.close()


class TestStateLock(unittest.TestCase):
    def test_second_exporter_waits_for_the_lock_then_takes_over(self):
        st = Stack()
        second = None
        try:
            first = st.start_exporter()
            self.assertTrue(wait_stream_up(first))
            second = pohtest.Exporter(mongoexp.config(st.clusters, st.state.path))
            self.assertTrue(second.wait_log("another process uses this stream's state file", 20))
            st.sim.insert(300)
            self.assertEqual(wait_value(first, "poh_mongodb_changes_total", 300, cluster="main",
                                        stream="tx", operation="insert"), 300)
            self.assertEqual(value(second, "poh_mongodb_change_stream_up", cluster="main",
                                   stream="tx"), 0)
            self.assertIsNone(value(second, "poh_mongodb_changes_total", cluster="main",
                                    stream="tx", operation="insert"))
            first.kill9()  # the lock goes with the process
            st.exp = None
            st.sim.insert(200)
            # the second picks up the saved state: the same totals, then the new events
            self.assertEqual(wait_value(second, "poh_mongodb_changes_total", 500, 40,
                                        cluster="main", stream="tx", operation="insert"), 500)
        finally:
            if second:
                mongoexp.stop_checked(second)
            st.close()


class TestDown(unittest.TestCase):
    def test_down_cluster_costs_only_the_deadline(self):
        hole = mongoexp.Blackhole()
        refused = mongoexp.closed_port()
        st = Stack(extra_clusters=[
            {"name": "refused", "uri": f"mongodb://127.0.0.1:{refused}/?replicaSet=rs0"},
            {"name": "blackhole", "uri": f"mongodb://127.0.0.1:{hole.port}/?replicaSet=rs0",
             "streams": [TX_STREAM]},
        ])
        try:
            exp = st.start_exporter()
            self.assertTrue(wait_stream_up(exp))
            for _ in range(3):
                status, took, m = mongoexp.timed_scrape(exp, 2)
                self.assertEqual(status, 200)
                self.assertLess(took, 2.0)  # 2 s scrape timeout minus the 0.5 s offset
                self.assertEqual(pohtest.value(m, "poh_mongodb_up", cluster="main"), 1)
                self.assertEqual(pohtest.value(m, "poh_mongodb_up", cluster="refused"), 0)
                self.assertEqual(pohtest.value(m, "poh_mongodb_up", cluster="blackhole"), 0)
                self.assertEqual(pohtest.value(m, "poh_mongodb_change_stream_up",
                                               cluster="blackhole", stream="tx"), 0)
                self.assertEqual(pohtest.value(m, "poh_exporter_collector_success",
                                               collector="mongodb/main"), 1)
            # refused is answered at once, without waiting for any timeout
            status, took, m = mongoexp.timed_scrape(exp, 10)
            self.assertEqual(pohtest.value(m, "poh_mongodb_up", cluster="refused"), 0)
            # a stalled cluster is down for the scrape, then comes back with its stream
            st.sim.stall(4000)
            status, took, m = mongoexp.timed_scrape(exp, 2)
            self.assertLess(took, 2.0)
            self.assertEqual(pohtest.value(m, "poh_mongodb_up", cluster="main"), 0)
            st.sim.stall(0)
            self.assertTrue(pohtest.wait_until(
                lambda: mongoexp.timed_scrape(exp, 3)[2].get(
                    ("poh_mongodb_up", frozenset({"cluster": "main"}.items()))) == 1, 30))
            st.sim.insert(10)
            self.assertEqual(wait_value(exp, "poh_mongodb_changes_total", 10, 30, cluster="main",
                                        stream="tx", operation="insert"), 10)
        finally:
            st.close()
            hole.close()

    def test_cluster_that_starts_later_is_picked_up(self):
        port = mongoexp.closed_port()
        state = mongoexp.StateDir()
        exp = pohtest.Exporter(mongoexp.config(
            [{"name": "late", "uri": f"mongodb://127.0.0.1:{port}/?replicaSet=rs0",
              "streams": [TX_STREAM]}], state.path))
        sim = None
        try:
            status, took, m = mongoexp.timed_scrape(exp, 2)
            self.assertEqual(pohtest.value(m, "poh_mongodb_up", cluster="late"), 0)
            sim = mongosim.MongoSim("--port", str(port)).start()
            self.assertTrue(wait_stream_up(exp, cluster="late", timeout=40))
            sim.insert(42)
            self.assertEqual(wait_value(exp, "poh_mongodb_changes_total", 42, cluster="late",
                                        stream="tx", operation="insert"), 42)
            self.assertEqual(value(exp, "poh_mongodb_up", cluster="late"), 1)
        finally:
            try:
                mongoexp.stop_checked(exp)
            finally:
                if sim:
                    sim.stop()
                state.cleanup()


class TestSecrets(unittest.TestCase):
    def test_password_never_shown(self):
        secret = "Hunter2-pa55word"
        state = mongoexp.StateDir()
        pw = os.path.join(state.path, "pass")
        with open(pw, "w") as f:
            f.write("FileSecret-77x\n")
        hole = mongoexp.Blackhole()
        port = mongoexp.closed_port()
        exp = pohtest.Exporter(mongoexp.config([
            {"name": "inline", "uri": f"mongodb://monitor:{secret}@127.0.0.1:{port}/?replicaSet=rs0",
             "streams": [TX_STREAM]},
            {"name": "file", "uri": f"mongodb://monitor@127.0.0.1:{hole.port}/?replicaSet=rs0",
             "password_file": pw, "streams": [TX_STREAM]},
        ], state.path))
        try:
            for _ in range(2):
                mongoexp.timed_scrape(exp, 2)
            # both stream threads fail (refused, and no answer within the timeouts) and log
            self.assertTrue(exp.wait_log("inline/tx: change stream error", 20))
            self.assertTrue(exp.wait_log("file/tx: change stream error", 20))
            status, _, page = exp.request("/")
            page = page.decode()
            self.assertIn("mongodb://monitor:***@127.0.0.1", page)
            body = exp.scrape() + exp.scrape(openmetrics=True)
            for text in (page, body, exp.log_text()):
                self.assertNotIn(secret, text)
                self.assertNotIn("FileSecret-77x", text)
        finally:
            try:
                mongoexp.stop_checked(exp)
            finally:
                hole.close()
                state.cleanup()


if __name__ == "__main__":
    pohtest.main()
