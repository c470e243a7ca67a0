# SPDX-License-Identifier: Apache-2.0
"""Test helpers for MongoDB: the project's replica-set simulator and a real mongod.

MongoSim starts tests/sim/mongo_rs_sim on ephemeral ports, reads the wire port
from the first stdout line and the control port from the second, talks to the
control channel (one command line, one reply line) and stops the process
cleanly, failing if it crashed or a sanitizer reported an error.

    with mongosim.MongoSim("--secondaries", "2") as sim:
        client = pymongo.MongoClient(sim.uri)
        sim.insert(1000)
        assert sim.counts()["insert"] == 1000

real_mongod() yields the URI of a real single-node replica set when `mongod`
is on PATH (started here) or POH_TEST_MONGODB_URI is set, else None; callers
then skip with pohtest.require(uri, ..., allowed_in_ci=...): one SKIPPED line.
"""

import contextlib
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "ERROR: ThreadSanitizer")


def sim_binary():
    """Path of the mongo_rs_sim executable in the build tree."""
    env = os.environ.get("MONGO_RS_SIM")
    if env:
        return env
    build = os.environ.get("POH_BUILD_DIR")
    if not build:
        raise RuntimeError("POH_BUILD_DIR is not set (run the test through ctest)")
    path = os.path.join(build, "tests", "sim", "mongo_rs_sim", "mongo_rs_sim")
    if not os.access(path, os.X_OK):
        raise RuntimeError("mongo_rs_sim is not built at %s" % path)
    return path


def sim_tool(name):
    """Path of a helper program built next to the simulator (e.g. mongo_sim_watch)."""
    return os.path.join(os.path.dirname(sim_binary()), name)


class ControlError(Exception):
    """The control channel answered ERR."""


def _read_line(stream, deadline):
    """Read one line from a pipe without blocking past deadline."""
    buf = b""
    fd = stream.fileno()
    while not buf.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no line from the simulator within the deadline")
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        chunk = os.read(fd, 1)
        if not chunk:
            raise RuntimeError("simulator closed stdout before printing its ports")
        buf += chunk
    return buf.decode().strip()


class MongoSim:
    """A running mongo_rs_sim process."""

    def __init__(self, *args, binary=None, start_timeout=30.0, host="127.0.0.1"):
        self.args = list(args)
        self.binary = binary or sim_binary()
        self.host = host
        self.start_timeout = start_timeout
        self.proc = None
        self.port = None
        self.control_port = None
        self._ctl = None
        self._ctl_file = None
        self._log = None

    # -- lifecycle -------------------------------------------------------
    def start(self):
        self._log = tempfile.NamedTemporaryFile(prefix="mongo_rs_sim-", suffix=".log", delete=False)
        cmd = [self.binary, "--bind", self.host, "--port", "0", "--control-port", "0"] + self.args
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self._log, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + self.start_timeout
        try:
            self.port = int(_read_line(self.proc.stdout, deadline))
            self.control_port = int(_read_line(self.proc.stdout, deadline))
        except Exception:
            self.proc.kill()
            self.proc.wait(timeout=10)
            raise RuntimeError("mongo_rs_sim did not start: %s" % self.log_text()[-2000:])
        return self

    def __enter__(self):
        return self.start()

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.stop()
        else:
            self.stop(check=False)
        return False

    def stop(self, timeout=20.0, check=True):
        """Ask the simulator to shut down; return its exit code.

        With check, raise if it did not exit 0 or a sanitizer reported an error."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                self.control("SHUTDOWN", timeout=5)
            except Exception:
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
                if check:
                    raise AssertionError("mongo_rs_sim did not stop within %.0fs" % timeout)
        self._close_control()
        self.proc.stdout.close()
        code = self.proc.returncode
        log = self.log_text()
        self.proc = None
        self._log.close()
        if check:
            for marker in SANITIZER_MARKERS:
                if marker in log:
                    raise AssertionError("sanitizer report in mongo_rs_sim log:\n" + log[-4000:])
            if code != 0:
                raise AssertionError("mongo_rs_sim exited with %s:\n%s" % (code, log[-4000:]))
        os.unlink(self._log.name)
        return code

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_text(self):
        if not self._log:
            return ""
        with open(self._log.name, "r", errors="replace") as f:
            return f.read()

    @property
    def pid(self):
        return self.proc.pid

    @property
    def address(self):
        return "%s:%d" % (self.host, self.port)

    @property
    def uri(self):
        """Replica-set URI, as the exporter uses it."""
        return "mongodb://%s/?replicaSet=rs0&directConnection=false" % self.address

    @property
    def direct_uri(self):
        return "mongodb://%s/?directConnection=true" % self.address

    # -- control channel -----------------------------------------------------
    def _close_control(self):
        if self._ctl_file:
            self._ctl_file.close()
        if self._ctl:
            self._ctl.close()
        self._ctl = self._ctl_file = None

    def control(self, line, timeout=60.0):
        """Send one command line; return the reply line (without newline)."""
        if self._ctl is None:
            self._ctl = socket.create_connection((self.host, self.control_port), timeout=timeout)
            self._ctl_file = self._ctl.makefile("rwb")
        self._ctl.settimeout(timeout)
        try:
            self._ctl_file.write(line.encode() + b"\n")
            self._ctl_file.flush()
            reply = self._ctl_file.readline().decode().rstrip("\n")
        except (OSError, ValueError):
            self._close_control()
            raise
        if not reply:
            self._close_control()
            raise ConnectionError("control channel closed")
        if reply.startswith("ERR"):
            raise ControlError(reply)
        return reply

    def control_json(self, line, timeout=60.0):
        """Send a command whose reply is a JSON object (alone or after OK)."""
        reply = self.control(line, timeout)
        if reply.startswith("OK"):
            reply = reply[2:].strip() or "{}"
        return json.loads(reply)

    def counts(self):
        return self.control_json("COUNTS")

    def commands(self):
        return self.control_json("COMMANDS")

    def status(self):
        return self.control_json("STATUS")

    def reset_commands(self):
        self.control("RESET_COMMANDS")

    def drop(self):
        return self.control_json("DROP")["closed"]

    def stall(self, ms, command=None):
        self.control("STALL %d%s" % (ms, " " + command if command else ""))

    def fail_getmore(self, code, count=1):
        self.control("FAIL_GETMORE %d %d" % (code, count))

    def fail_command(self, name, code, count=1):
        self.control("FAIL_COMMAND %s %d %d" % (name, code, count))

    def clear_faults(self):
        self.control("CLEAR_FAULTS")

    def stepdown(self, seconds=10):
        return self.control_json("STEPDOWN %d" % seconds)

    def stepup(self):
        return self.control_json("STEPUP")

    def lag(self, member, seconds):
        self.control("LAG %s %d" % (member, seconds))

    def health(self, member, up):
        self.control("HEALTH %s %s" % (member, "up" if up else "down"))

    def optime(self, member, zero):
        self.control("OPTIME %s %s" % (member, "zero" if zero else "normal"))

    def truncate_oplog(self, keep=0):
        return self.control_json("TRUNCATE_OPLOG %d" % keep)["removed"]

    def insert(self, n, ns=None):
        return self.control_json("INSERT %d%s" % (n, " " + ns if ns else ""))

    def collections(self, n, db=None):
        return self.control_json("COLLECTIONS %d%s" % (n, " " + db if db else ""))["created"]

    def rate(self, per_second):
        self.control("RATE %g" % per_second)

    def cpu_seconds(self):
        """User + system CPU time the simulator process has used so far."""
        with open("/proc/%d/stat" % self.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks


# -- real mongod ---------------------------------------------------------------

def _free_port(host="127.0.0.1"):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def real_mongod(timeout=60.0):
    """Yield the URI of a real single-node replica set, or None if there is none.

    POH_TEST_MONGODB_URI wins; otherwise the `mongod` named by MONGOD (an
    error when it is not an executable file), or the one on PATH, is started
    on loopback with a temporary dbpath, initiated as replica set rs0 and
    stopped afterwards."""
    uri = os.environ.get("POH_TEST_MONGODB_URI")
    if uri:
        yield uri
        return
    mongod = os.environ.get("MONGOD")
    if mongod and not (os.path.isfile(mongod) and os.access(mongod, os.X_OK)):
        raise RuntimeError("MONGOD=%s is not an executable file" % mongod)
    mongod = mongod or shutil.which("mongod")
    if not mongod:
        yield None
        return
    import pymongo  # only needed to initiate the set

    dbpath = tempfile.mkdtemp(prefix="poh-mongod-")
    proc = None
    try:
        # mongod cannot report an ephemeral port, so pick a free one and retry on a clash.
        for attempt in range(5):
            port = _free_port()
            log = open(os.path.join(dbpath, "mongod-%d.log" % attempt), "w")
            proc = subprocess.Popen([mongod, "--replSet", "rs0", "--bind_ip", "127.0.0.1", "--port", str(port),
                                     "--dbpath", dbpath, "--oplogSize", "64", "--quiet"],
                                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            client = pymongo.MongoClient("mongodb://127.0.0.1:%d/?directConnection=true" % port,
                                         serverSelectionTimeoutMS=1000)
            deadline = time.monotonic() + timeout
            up = False
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    client.admin.command("ping")
                    up = True
                    break
                except pymongo.errors.PyMongoError:
                    time.sleep(0.2)
            if up:
                break
            client.close()
            proc.kill()
            proc.wait(timeout=10)
            proc = None
        if proc is None:
            raise RuntimeError("mongod on PATH did not start; logs in %s" % dbpath)
        try:
            client.admin.command("replSetInitiate",
                                 {"_id": "rs0", "members": [{"_id": 0, "host": "127.0.0.1:%d" % port}]})
        except pymongo.errors.OperationFailure as e:
            if e.code != 23:  # AlreadyInitialized is fine
                raise
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if client.admin.command("hello").get("isWritablePrimary"):
                break
            time.sleep(0.2)
        else:
            raise RuntimeError("mongod did not become primary within %.0fs" % timeout)
        client.close()
        yield "mongodb://127.0.0.1:%d/?replicaSet=rs0&directConnection=false" % port
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        shutil.rmtree(dbpath, ignore_errors=True)


def check_conformance(uri, timeout=30.0):
    """Driver-visible behaviour the exporter relies on, checked with pymongo.

    Runs unchanged against the simulator and a real replica set, so the
    simulator is measured against the real thing whenever mongod exists.
    Raises AssertionError on the first difference."""
    import random
    import pymongo
    from bson.timestamp import Timestamp

    def expect(cond, what):
        if not cond:
            raise AssertionError("conformance: " + what)

    client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=int(timeout * 1000))
    try:
        hello = client.admin.command("hello")
        expect(hello.get("setName") and hello.get("isWritablePrimary"), "hello names a set and a writable primary")
        expect(hello.get("maxWireVersion", 0) >= 9, "maxWireVersion >= 9 (MongoDB 4.4+)")
        coll = client.conformance["c%08x" % random.getrandbits(32)]
        start = client.admin.command("ping")["operationTime"]
        coll.insert_many([{"_id": i, "v": i} for i in range(20)])
        expect(coll.update_one({"_id": 3}, {"$set": {"v": 33}}).modified_count == 1, "update_one modifies")
        expect(coll.delete_one({"_id": 4}).deleted_count == 1, "delete_one deletes")

        def take(stream, n):
            out, deadline = [], time.monotonic() + timeout
            while len(out) < n and time.monotonic() < deadline:
                ev = stream.try_next()
                if ev is not None:
                    out.append(ev)
            expect(len(out) == n, "%d of %d change events arrived" % (len(out), n))
            return out

        with coll.watch(start_at_operation_time=start, full_document="updateLookup", max_await_time_ms=200) as cs:
            events = take(cs, 22)
        kinds = [e["operationType"] for e in events]
        expect(kinds == ["insert"] * 20 + ["update", "delete"], "event order %s" % kinds)
        for e in events:
            for key in ("_id", "operationType", "clusterTime", "ns", "documentKey"):
                expect(key in e, "change event has %s" % key)
            expect(e["ns"] == {"db": "conformance", "coll": coll.name}, "event ns")
        if hello["maxWireVersion"] >= 13:
            expect(all("wallTime" in e for e in events), "change events carry wallTime (5.0+)")
        expect(events[0]["fullDocument"] == {"_id": 0, "v": 0}, "insert carries fullDocument")
        expect(events[20]["updateDescription"]["updatedFields"] == {"v": 33}, "update description")
        expect(events[20]["fullDocument"] == {"_id": 3, "v": 33}, "updateLookup")
        expect(events[21]["documentKey"] == {"_id": 4}, "delete documentKey")
        with coll.watch(resume_after=events[9]["_id"], max_await_time_ms=200) as cs:
            expect(take(cs, 1)[0]["documentKey"] == {"_id": 10}, "resumeAfter resumes right after its event")

        status = client.admin.command("replSetGetStatus")
        expect(status.get("set") == hello["setName"], "replSetGetStatus set name")
        primaries = [m for m in status["members"] if m.get("stateStr") == "PRIMARY"]
        expect(len(primaries) == 1, "exactly one PRIMARY member")
        for m in status["members"]:
            for key in ("name", "health", "state", "stateStr", "optime", "optimeDate"):
                expect(key in m, "member has %s" % key)

        oplog = client.local["oplog.rs"]
        newest = oplog.find().sort("$natural", -1).limit(1).next()
        oldest = oplog.find().sort("$natural", 1).limit(1).next()
        expect(isinstance(newest["ts"], Timestamp) and newest["ts"] >= events[-1]["clusterTime"],
               "newest oplog entry is at or after the last event")
        expect(oldest["ts"] <= newest["ts"] and "wall" in newest, "oplog order and wall time")
        expect(oplog.find_one({"ts": {"$gt": oldest["ts"]}}) is not None, "oplog ts $gt filter")
        stats = client.local.command("collStats", "oplog.rs")
        expect(all(k in stats for k in ("size", "count", "maxSize")), "collStats on the oplog")
        server = client.admin.command("serverStatus")
        for key in ("opcounters", "opcountersRepl", "opLatencies", "connections", "uptime"):
            expect(key in server, "serverStatus has %s" % key)
    finally:
        client.close()


