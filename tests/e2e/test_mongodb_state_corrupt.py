# SPDX-License-Identifier: Apache-2.0
"""A corrupt change-stream state file (issue 19 item 5): the exporter moves
it aside as <file>.corrupt-<unix time> with its bytes intact, logs one error
line saying so, starts the stream from now with its counters at 0, and
writes a fresh state file that a later restart resumes from. When it cannot
be moved aside (an immutable file), the stream waits with an
error naming the file, counts nothing and overwrites nothing, and goes on as
above once the directory is writable again."""
import os
import re
import subprocess
import unittest

import mongoexp
import mongosim
import pohtest
from mongoexp import TX_STREAM, wait_value, wait_stream_up

STATE_FILE = "mongodb@main@tx.state"


def torn(data):
    return data[:len(data) // 2]                   # a write cut in the middle


def garbage(data):
    return b"\x40\x00\x00\x00\x03not bson at all" + bytes(range(48))  # length says 64, body is junk


def count_then_corrupt(test, sim, clusters, path, n, corrupt):
    """An exporter counts n inserts and stops; its state file is then replaced
    by corrupt(its bytes). Returns the bytes written."""
    exp = pohtest.Exporter(mongoexp.config(clusters, os.path.dirname(path)))
    try:
        test.assertTrue(wait_stream_up(exp))
        sim.insert(n)
        test.assertEqual(wait_value(exp, "poh_mongodb_changes_total", n, cluster="main",
                                    stream="tx", operation="insert"), n)
    finally:
        mongoexp.stop_checked(exp)
    with open(path, "rb") as f:
        bad = corrupt(f.read())
    with open(path, "wb") as f:
        f.write(bad)
    return bad


class CorruptStateTest(unittest.TestCase):
    def run_case(self, corrupt):
        sim = mongosim.MongoSim().start()
        state = mongoexp.StateDir()
        clusters = [{"name": "main", "uri": sim.uri, "streams": [TX_STREAM]}]
        path = os.path.join(state.path, STATE_FILE)
        exp = None
        try:
            bad = count_then_corrupt(self, sim, clusters, path, 10, corrupt)
            sim.insert(6)                          # while the exporter is down: not counted

            exp = pohtest.Exporter(mongoexp.config(clusters, state.path))
            self.assertTrue(wait_stream_up(exp))
            rx = (r"level=error module=mongodb msg=\"main/tx: state file \S+/" + re.escape(STATE_FILE) +
                  r" is not valid; moved aside as (" + re.escape(STATE_FILE) +
                  r"\.corrupt-\d+), starting from now with counters at 0\"")
            self.assertTrue(exp.wait_log(rx, timeout=10), exp.log_text()[-3000:])
            lines = [re.search(rx, l) for l in exp.log_text().splitlines()]
            lines = [m for m in lines if m]
            self.assertEqual(len(lines), 1)
            aside = os.path.join(state.path, lines[0].group(1))
            with open(aside, "rb") as f:
                self.assertEqual(f.read(), bad)    # moved, not rewritten
            # the 10 saved and the 6 missed are gone: no series until a new event
            self.assertIn(mongoexp.value(exp, "poh_mongodb_changes_total", cluster="main",
                                         stream="tx", operation="insert"), (None, 0))
            sim.insert(4)
            self.assertEqual(wait_value(exp, "poh_mongodb_changes_total", 4, cluster="main",
                                        stream="tx", operation="insert"), 4)
            mongoexp.stop_checked(exp)
            exp = None

            # the fresh file is valid: a restart resumes from it, silently
            exp = pohtest.Exporter(mongoexp.config(clusters, state.path))
            self.assertTrue(wait_stream_up(exp))
            self.assertEqual(wait_value(exp, "poh_mongodb_changes_total", 4, cluster="main",
                                        stream="tx", operation="insert"), 4)
            self.assertTrue(exp.wait_log(r"main/tx: resuming from the saved state", timeout=5))
            self.assertNotIn("is not valid", exp.log_text())
            self.assertEqual(sorted(n for n in os.listdir(state.path) if ".corrupt-" in n),
                             [lines[0].group(1)])
        finally:
            try:
                if exp:
                    mongoexp.stop_checked(exp)
            finally:
                sim.stop()
                state.cleanup()

    def test_file_that_cannot_be_moved_aside(self):
        sim = mongosim.MongoSim().start()
        state = mongoexp.StateDir()
        clusters = [{"name": "main", "uri": sim.uri, "streams": [TX_STREAM]}]
        path = os.path.join(state.path, STATE_FILE)
        exp = None
        frozen = False
        try:
            bad = count_then_corrupt(self, sim, clusters, path, 3, garbage)
            # root ignores permissions; an immutable file cannot be renamed even by root
            r = subprocess.run(["chattr", "+i", path], capture_output=True, text=True)
            if r.returncode != 0:
                self.skipTest("SKIPPED: no immutable flag here (chattr: %s)" % r.stderr.strip())
            frozen = True

            exp = pohtest.Exporter(mongoexp.config(clusters, state.path))
            rx = (r"level=error module=mongodb msg=\"main/tx: state file is not valid and cannot "
                  r"be moved aside: \S+/" + re.escape(STATE_FILE) + r": Operation not permitted\"")
            self.assertTrue(exp.wait_log(rx, timeout=10), exp.log_text()[-3000:])
            sim.insert(5)                          # not counted: the stream waits
            self.assertNotIn("moved aside as", exp.log_text())
            self.assertIn(mongoexp.value(exp, "poh_mongodb_changes_total", cluster="main",
                                         stream="tx", operation="insert"), (None, 0))
            with open(path, "rb") as f:
                self.assertEqual(f.read(), bad)    # nothing overwritten

            subprocess.run(["chattr", "-i", path], check=True)
            frozen = False
            self.assertTrue(exp.wait_log(r"is not valid; moved aside as " + re.escape(STATE_FILE) +
                                         r"\.corrupt-\d+", timeout=30), exp.log_text()[-3000:])
            self.assertTrue(wait_stream_up(exp))
            sim.insert(2)
            self.assertEqual(wait_value(exp, "poh_mongodb_changes_total", 2, cluster="main",
                                        stream="tx", operation="insert"), 2)
            asides = [n for n in os.listdir(state.path) if ".corrupt-" in n]
            self.assertEqual(len(asides), 1)
            with open(os.path.join(state.path, asides[0]), "rb") as f:
                self.assertEqual(f.read(), bad)
        finally:
            try:
                if frozen:
                    subprocess.run(["chattr", "-i", path])
                if exp:
                    mongoexp.stop_checked(exp)
            finally:
                sim.stop()
                state.cleanup()

    def test_torn_file(self):
        self.run_case(torn)

    def test_garbage_file(self):
        self.run_case(garbage)


if __name__ == "__main__":
    pohtest.main()
