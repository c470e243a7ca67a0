# SPDX-License-Identifier: Apache-2.0
"""A corrupt change-stream state file (issue 19 item 5): the exporter moves
it aside as <file>.corrupt-<unix time> with its bytes intact, logs one error
line saying so, starts the stream from now with its counters at 0, and
writes a fresh state file that a later restart resumes from."""
import os
import re
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


class CorruptStateTest(unittest.TestCase):
    def run_case(self, corrupt):
        sim = mongosim.MongoSim().start()
        state = mongoexp.StateDir()
        clusters = [{"name": "main", "uri": sim.uri, "streams": [TX_STREAM]}]
        path = os.path.join(state.path, STATE_FILE)
        exp = None
        try:
            exp = pohtest.Exporter(mongoexp.config(clusters, state.path))
            self.assertTrue(wait_stream_up(exp))
            sim.insert(10)
            self.assertEqual(wait_value(exp, "poh_mongodb_changes_total", 10, cluster="main",
                                        stream="tx", operation="insert"), 10)
            mongoexp.stop_checked(exp)
            exp = None
            with open(path, "rb") as f:
                good = f.read()
            bad = corrupt(good)
            with open(path, "wb") as f:
                f.write(bad)
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

    def test_torn_file(self):
        self.run_case(torn)

    def test_garbage_file(self):
        self.run_case(garbage)


if __name__ == "__main__":
    pohtest.main()
