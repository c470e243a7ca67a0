# SPDX-License-Identifier: Apache-2.0
"""Hostile input to the MongoDB collectors (issue 14, items 2 and 3), end to
end through the replica-set simulator and the real binary:

* documents whose times are absurd (the ends of the double range, 1970, an
  hour in the future) are not observed: the latency histograms' sums stay
  finite and right, and each refusal is counted with its reason, across a
  restart too;
* a FIFO in place of a stream's state file is refused with its path instead
  of blocking the stream, and SIGTERM still stops the exporter at once;
* a state_dir that others can write, or that belongs to someone else, is
  refused at start."""
import datetime
import math
import os
import signal
import subprocess
import time
import unittest

import pymongo

import mongoexp
import mongosim
import pohtest
from mongoexp import TX_STREAM, value, wait_value, wait_stream_up

STATE_FILE = "mongodb@main@tx.state"
# A stream of its own with a narrow window: at most 1.5 s, no clock skew allowed.
WIN_STREAM = """
- name: win
  database: dag
  collection: win
  latencies:
    - {name: approval, from_field: created_at, to_field: approved_at, max: 1500ms, clock_skew: 0s}
"""


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def errors(exp, stream, field, reason):
    return value(exp, "poh_mongodb_change_field_errors_total", cluster="main", stream=stream,
                 field=field, reason=reason)


class TestPlausibleValues(unittest.TestCase):
    def test_absurd_times_are_counted_not_observed(self):
        sim = mongosim.MongoSim().start()
        state = mongoexp.StateDir()
        cfg = mongoexp.config([{"name": "main", "uri": sim.uri,
                                "streams": [TX_STREAM, WIN_STREAM]}], state.path)
        exp = None
        try:
            exp = pohtest.Exporter(cfg)
            self.assertTrue(wait_stream_up(exp))
            self.assertTrue(wait_stream_up(exp, stream="win"))
            client = pymongo.MongoClient(sim.uri, serverSelectionTimeoutMS=5000)
            now = utcnow()
            epoch = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
            client.dag.transactions.insert_many([
                # The document of the issue: the approval sum went +Inf.
                {"created_at": -1.7e308, "approved_at": 1.7e308},
                # Finite and in range, but from 1970: skews the mean for ever.
                {"created_at": epoch, "approved_at": now},
                # Written by a clock an hour ahead of the server.
                {"created_at": now + datetime.timedelta(hours=1)},
                # A real one: 100 ms before the commit, approved 200 ms later.
                {"created_at": now - datetime.timedelta(milliseconds=100),
                 "approved_at": now + datetime.timedelta(milliseconds=100)},
            ])
            client.dag.win.insert_many([
                {"created_at": now, "approved_at": now + datetime.timedelta(seconds=1)},
                {"created_at": now, "approved_at": now + datetime.timedelta(seconds=2)},
                {"created_at": now, "approved_at": now - datetime.timedelta(milliseconds=1)},
            ])
            client.close()
            self.assertEqual(wait_value(exp, "poh_mongodb_changes_total", 4, cluster="main",
                                        stream="tx", operation="insert"), 4)
            self.assertEqual(wait_value(exp, "poh_mongodb_changes_total", 3, cluster="main",
                                        stream="win", operation="insert"), 3)
            m = exp.metrics()
            for stream in ("tx", "win"):
                s = pohtest.value(m, "poh_approval_latency_seconds_sum", cluster="main",
                                  stream=stream)
                self.assertTrue(math.isfinite(s), f"{stream}: approval _sum {s}")
            # only the real document is observed, with its own latencies
            self.assertEqual(pohtest.value(m, "poh_approval_latency_seconds_count",
                                           cluster="main", stream="tx"), 1)
            self.assertAlmostEqual(pohtest.value(m, "poh_approval_latency_seconds_sum",
                                                 cluster="main", stream="tx"), 0.2, delta=0.0015)
            self.assertEqual(pohtest.value(m, "poh_storage_latency_seconds_count",
                                           cluster="main", stream="tx"), 1)
            storage = pohtest.value(m, "poh_storage_latency_seconds_sum", cluster="main",
                                    stream="tx")
            self.assertTrue(0.09 <= storage < 30, storage)
            # each refusal counted once, with its reason
            want = {("created_at", "out_of_range"): 1,   # storage of the first document
                    ("approved_at", "out_of_range"): 1,  # its approval
                    ("created_at", "too_large"): 2,      # 1970: storage and approval
                    ("created_at", "negative"): 1}       # an hour ahead: storage
            got = {(dict(k[1])["field"], dict(k[1])["reason"]): v for k, v in pohtest.find(
                m, "poh_mongodb_change_field_errors_total", cluster="main", stream="tx").items()}
            self.assertEqual(got, want)
            # the stream's own window: 1 s observed; 2 s too large; -1 ms negative
            self.assertEqual(pohtest.value(m, "poh_approval_latency_seconds_count",
                                           cluster="main", stream="win"), 1)
            self.assertEqual(pohtest.value(m, "poh_approval_latency_seconds_sum",
                                           cluster="main", stream="win"), 1.0)
            got = {(dict(k[1])["field"], dict(k[1])["reason"]): v for k, v in pohtest.find(
                m, "poh_mongodb_change_field_errors_total", cluster="main", stream="win").items()}
            self.assertEqual(got, {("created_at", "too_large"): 1, ("created_at", "negative"): 1})

            # The counts by reason are saved with the resume token: a restart
            # continues them, and new errors add to the same series.
            mongoexp.stop_checked(exp)
            exp = pohtest.Exporter(cfg)
            self.assertTrue(wait_stream_up(exp))
            for (field, reason), n in want.items():
                self.assertEqual(errors(exp, "tx", field, reason), n, (field, reason))
            client = pymongo.MongoClient(sim.uri, serverSelectionTimeoutMS=5000)
            client.dag.transactions.insert_one({"created_at": 1.7e308})
            client.close()
            self.assertEqual(wait_value(exp, "poh_mongodb_change_field_errors_total", 2,
                                        cluster="main", stream="tx", field="created_at",
                                        reason="out_of_range"), 2)
        finally:
            if exp:
                mongoexp.stop_checked(exp)
            sim.stop()
            state.cleanup()


class TestStateFiles(unittest.TestCase):
    def test_fifo_state_file_is_refused_and_sigterm_stops(self):
        sim = mongosim.MongoSim().start()
        state = mongoexp.StateDir()
        fifo = os.path.join(state.path, STATE_FILE)
        os.mkfifo(fifo, 0o600)
        exp = None
        try:
            exp = pohtest.Exporter(mongoexp.config(
                [{"name": "main", "uri": sim.uri, "streams": [TX_STREAM]}], state.path))
            self.assertTrue(exp.wait_log(
                r'main/tx: cannot use the state file: ' + state.path + '/' + STATE_FILE +
                r': not a regular file', 15), exp.log_text()[-2000:])
            self.assertEqual(value(exp, "poh_mongodb_change_stream_up", cluster="main",
                                   stream="tx"), 0)
            # the landing page says why the stream does not run
            st, _, body = exp.request("/")
            self.assertEqual(st, 200)
            self.assertIn(STATE_FILE + ": not a regular file", body.decode())
            # the rest of the cluster is scraped as usual
            self.assertEqual(value(exp, "poh_mongodb_up", cluster="main"), 1)
            self.assertTrue(os.path.exists(fifo))  # left alone, not renamed
            t0 = time.monotonic()
            exp.proc.send_signal(signal.SIGTERM)
            try:
                rc = exp.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.fail("SIGTERM did not stop the exporter within 5 s")
            self.assertEqual(rc, 0, exp.log_text()[-2000:])
            self.assertLess(time.monotonic() - t0, 5)
            exp.stop()

            # Once the FIFO is gone the stream starts, from now, on its own.
            exp = pohtest.Exporter(mongoexp.config(
                [{"name": "main", "uri": sim.uri, "streams": [TX_STREAM]}], state.path))
            self.assertTrue(exp.wait_log("not a regular file", 15))
            os.unlink(fifo)
            self.assertTrue(wait_stream_up(exp, timeout=30))
            sim.insert(5)
            self.assertEqual(wait_value(exp, "poh_mongodb_changes_total", 5, cluster="main",
                                        stream="tx", operation="insert"), 5)
        finally:
            if exp:
                mongoexp.stop_checked(exp)
            sim.stop()
            state.cleanup()

    def run_refused(self, state_dir, want):
        """Start the exporter on state_dir: it must exit 1 at once, saying why."""
        cfg = os.path.join(os.path.dirname(state_dir), "poh_exporter.yml")
        with open(cfg, "w") as f:
            f.write(mongoexp.config([{"name": "main", "uri": "mongodb://127.0.0.1:1/",
                                      "streams": [TX_STREAM]}], state_dir))
        p = subprocess.run([pohtest.EXPORTER, f"--config.file={cfg}",
                            "--web.listen-address=127.0.0.1:0"],
                           capture_output=True, text=True, timeout=20)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn(f"state_dir {state_dir} {want}", p.stderr)
        self.assertNotIn(STATE_FILE, os.listdir(state_dir))

    def test_unsafe_state_dir_is_refused_at_start(self):
        state = mongoexp.StateDir()
        try:
            d = os.path.join(state.path, "state")
            os.mkdir(d)
            os.chmod(d, 0o777)
            self.run_refused(d, "is writable by its group and others (mode 0777)")
            os.chmod(d, 0o1777)  # sticky like /tmp: others still plant files
            self.run_refused(d, "is writable by its group and others (mode 1777)")
            os.chmod(d, 0o770)
            self.run_refused(d, "is writable by its group (mode 0770)")
            if os.geteuid() == 0:
                os.chmod(d, 0o700)
                os.chown(d, 65534, 65534)
                self.run_refused(d, "is owned by uid 65534, not by the exporter's uid 0")
                os.chown(d, 0, 0)
            # 0755, ours: fine
            os.chmod(d, 0o755)
            sim = mongosim.MongoSim().start()
            try:
                exp = pohtest.Exporter(mongoexp.config(
                    [{"name": "main", "uri": sim.uri, "streams": [TX_STREAM]}], d))
                try:
                    self.assertTrue(wait_stream_up(exp))
                finally:
                    mongoexp.stop_checked(exp)
            finally:
                sim.stop()
            self.assertIn(STATE_FILE, os.listdir(d))
        finally:
            state.cleanup()


if __name__ == "__main__":
    pohtest.main()
