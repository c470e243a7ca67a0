# SPDX-License-Identifier: Apache-2.0
"""Malformed, truncated, oversized and random messages over real sockets: each
bad connection is closed with a log line, and the simulator keeps serving a
normal client (and a change stream opened before the abuse) throughout."""

import os
import random
import socket
import struct
import sys
import time
import unittest

import bson
import pymongo

import mongosim

OP_QUERY, OP_COMPRESSED, OP_MSG = 2004, 2012, 2013


def header(length, opcode, request_id=1):
    return struct.pack("<iiii", length, request_id, 0, opcode)


def op_msg(body, flags=0, extra=b""):
    payload = struct.pack("<I", flags) + b"\x00" + bson.BSON.encode(body) + extra
    return header(16 + len(payload), OP_MSG) + payload


def kind1(ident, docs, size_delta=0):
    raw = ident.encode() + b"\x00" + b"".join(bson.BSON.encode(d) for d in docs)
    return b"\x01" + struct.pack("<i", 4 + len(raw) + size_delta) + raw


def fix_length(msg):
    return struct.pack("<i", len(msg)) + msg[4:]


def nested(depth):
    doc = b"\x05\x00\x00\x00\x00"
    for _ in range(depth):
        elem = b"\x03a\x00" + doc
        doc = struct.pack("<i", 4 + len(elem) + 1) + elem + b"\x00"
    return doc


class Conn:
    """A raw client connection."""

    def __init__(self, sim):
        self.s = socket.create_connection(("127.0.0.1", sim.port), timeout=10)

    def send(self, data):
        try:
            self.s.sendall(data)
        except OSError:
            pass  # the server may close before reading everything

    def closed_by_server(self, timeout=10.0):
        """True once the server closed the connection (EOF or reset)."""
        self.s.settimeout(timeout)
        try:
            while True:
                chunk = self.s.recv(65536)
                if not chunk:
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def reply(self, timeout=10.0):
        """Read one reply message; return its first document."""
        self.s.settimeout(timeout)
        head = self._read(16)
        length, _, _, opcode = struct.unpack("<iiii", head)
        body = self._read(length - 16)
        offset = 5 if opcode == OP_MSG else 20
        return bson.BSON(body[offset:]).decode()

    def _read(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.s.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("closed")
            buf += chunk
        return buf

    def close(self):
        self.s.close()


class TestMalformedInput(unittest.TestCase):
    def setUp(self):
        self.sim = mongosim.MongoSim().start()
        self.client = pymongo.MongoClient(self.sim.uri, serverSelectionTimeoutMS=10000)
        self.stream = self.client.dag.transactions.watch(max_await_time_ms=200)
        self.seen = 0

    def tearDown(self):
        self.stream.close()
        self.client.close()
        self.sim.stop()  # fails on a crash or a sanitizer report

    def still_serving(self):
        """A normal client still works and the old change stream still delivers."""
        self.assertEqual(self.client.admin.command("ping")["ok"], 1.0)
        self.sim.insert(1)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            ev = self.stream.try_next()
            if ev is not None:
                self.seen += 1
                self.assertEqual(ev["fullDocument"]["seq"], self.seen)
                return
        self.fail("change stream stopped delivering")

    def expect_closed(self, data, reason):
        c = Conn(self.sim)
        c.send(data)
        self.assertTrue(c.closed_by_server(), "connection not closed after: %s" % reason)
        c.close()

    def test_malformed_messages_close_the_connection(self):
        body = {"ping": 1, "$db": "admin"}
        good = op_msg(body)
        cases = [
            (header(15, OP_MSG), "length below the header size"),
            (header(-1, OP_MSG), "negative length"),
            (header(48000001, OP_MSG), "oversized length"),
            (header(0x7FFFFFFF, OP_MSG) + b"x" * 100, "huge length"),
            (fix_length(header(0, OP_MSG) + struct.pack("<I", 4) + b"\x00" + bson.BSON.encode(body)),
             "unknown required flag bit"),
            (fix_length(good + b"\x00" + bson.BSON.encode(body)), "two kind-0 sections"),
            (fix_length(good + b"\x07"), "unknown section kind"),
            (fix_length(good + kind1("documents", [{"a": 1}], size_delta=1000)), "kind-1 size past the end"),
            (fix_length(good + kind1("documents", [{"a": 1}], size_delta=-3)), "kind-1 size cuts a document"),
            (fix_length(header(0, OP_MSG) + b"\x00\x00\x00\x00\x00" + b"\x10\x00\x00\x00\x02a\x00\xff\xff\xff\x7fx\x00\x00"),
             "string length past the document"),
            (fix_length(header(0, OP_MSG) + b"\x00\x00\x00\x00\x00" + nested(5000)), "5000 levels of nesting"),
            (fix_length(header(0, OP_MSG) + b"\x00\x00\x00\x00"), "no body"),
            (fix_length(header(0, OP_COMPRESSED) + b"\x00" * 9), "OP_COMPRESSED"),
            (fix_length(header(0, 2002) + b"\x00" * 20), "legacy OP_INSERT"),
            (fix_length(header(0, OP_QUERY) + b"\x00\x00\x00\x00test.coll\x00" + b"\x00" * 8 + bson.BSON.encode({})),
             "OP_QUERY on a collection"),
            (fix_length(header(0, OP_QUERY) + b"\x00\x00\x00\x00admin.$cmd"), "unterminated OP_QUERY namespace"),
        ]
        for data, reason in cases:
            with self.subTest(reason=reason):
                self.expect_closed(data, reason)
        self.still_serving()
        log = self.sim.log_text()
        self.assertGreaterEqual(log.count(" closed: "), len(cases))
        self.assertIn("OP_MSG has unknown required flag bits", log)
        self.assertIn("outside [16, 48000000]", log)

    def test_truncated_messages(self):
        full = op_msg({"ping": 1, "$db": "admin"})
        for cut in (1, 8, 15, 16, 20, len(full) - 1):
            c = Conn(self.sim)
            c.send(full[:cut])
            c.close()  # EOF in the middle of a message
        # A client that stalls mid-message only holds its own connection.
        stalled = Conn(self.sim)
        stalled.send(full[:30])
        self.still_serving()
        stalled.close()
        self.still_serving()
        self.assertIn("truncated message", self.sim.log_text())

    def test_valid_message_sent_byte_by_byte(self):
        c = Conn(self.sim)
        for b in op_msg({"ping": 1, "$db": "admin"}):
            c.send(bytes([b]))
        self.assertEqual(c.reply()["ok"], 1.0)
        # Well-formed but invalid commands get an error reply, not a close.
        c.send(op_msg({"ping": 1}))
        self.assertEqual(c.reply()["code"], 40571)
        c.send(op_msg({"find": "c", "filter": {"a": {"$where": 1}}, "$db": "d"}))
        self.assertEqual(c.reply()["code"], 2)
        c.send(op_msg({"aggregate": "c", "pipeline": [{"$group": {"_id": 1}}], "cursor": {}, "$db": "d"}))
        self.assertEqual(c.reply()["code"], 40324)
        c.send(op_msg({"getMore": bson.int64.Int64(42), "collection": "c", "$db": "d"}))
        self.assertEqual(c.reply()["code"], 43)
        c.close()
        self.still_serving()

    def test_random_bytes_and_mutations(self):
        seed = int(os.environ.get("POH_FUZZ_SEED", time.time()))
        rng = random.Random(seed)
        print("random seed", seed)
        seeds = [
            op_msg({"ping": 1, "$db": "admin"}),
            op_msg({"insert": "c", "$db": "d"}) + kind1("documents", [{"_id": i, "v": "x" * i} for i in range(3)]),
            op_msg({"find": "oplog.rs", "sort": {"$natural": -1}, "limit": 1, "$db": "local"}),
            op_msg({"aggregate": "c", "pipeline": [{"$changeStream": {}}], "cursor": {}, "$db": "d"}),
            op_msg({"update": "c", "updates": [{"q": {"_id": 1}, "u": {"$set": {"a": 1}}}], "$db": "d"}),
        ]
        closed = answered = 0
        for i in range(300):
            if i % 3 == 0:
                data = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 300)))
            else:
                data = bytearray(rng.choice(seeds))
                for _ in range(rng.randint(1, 6)):
                    pos = rng.randrange(len(data))
                    data[pos] = rng.getrandbits(8)
                if rng.random() < 0.7:
                    data = bytearray(fix_length(bytes(data)))
            c = Conn(self.sim)
            c.send(bytes(data))
            try:
                c.s.shutdown(socket.SHUT_WR)  # no more bytes: the server must answer or close
                c.reply(timeout=10)
                answered += 1
            except (ConnectionError, OSError, struct.error, bson.errors.BSONError):
                closed += 1
            c.close()
            if i % 50 == 49:
                self.still_serving()
        print("random inputs: %d answered, %d closed" % (answered, closed))
        self.assertEqual(answered + closed, 300)
        self.assertTrue(self.sim.alive())
        self.still_serving()


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    print("SUMMARY: %d run, %d failures, %d errors, %d skipped" % (
        result.testsRun, len(result.failures), len(result.errors), len(result.skipped)))
    sys.exit(0 if result.wasSuccessful() else 1)
