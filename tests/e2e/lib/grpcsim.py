# SPDX-License-Identifier: Apache-2.0
"""Helpers for the gRPC end-to-end tests.

NodeSim       runs tests/sim/poh_node_sim (the project's C server) and talks to
              its control port (exact per-method call counts, runtime modes).
PyHealthServer a grpc.health.v1 server written with python3-grpcio, an
              implementation nobody here wrote, for interoperability tests.
load_stubs()  generates Python stubs from proto/ with grpc_tools.protoc into a
              temporary directory (at test time, nothing generated is kept).
run_cli()     runs poh_grpc_probe_cli (the exporter's C probe engine) and
              parses its lines.
make_certs()  a throwaway CA, server and client certificates (openssl CLI).

Every wait is bounded; servers bind 127.0.0.1 port 0 and report their ports.
"""
import atexit
import concurrent.futures
import importlib
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HEALTH_METHOD = "/grpc.health.v1.Health/Check"
STATE_METHOD = "/poh.PoH/GetState"


def source_dir():
    return os.environ.get("POH_SOURCE_DIR") or os.path.dirname(os.path.dirname(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def build_dir():
    d = os.environ.get("POH_BUILD_DIR")
    if not d:
        raise RuntimeError("POH_BUILD_DIR is not set (run through ctest)")
    return d


def sim_binary():
    return os.path.join(build_dir(), "tests", "sim", "poh_node_sim", "poh_node_sim")


def cli_binary():
    return os.path.join(build_dir(), "tests", "sim", "poh_node_sim", "poh_grpc_probe_cli")


def read_line(stream, timeout):
    """One line from a pipe, or "" after timeout seconds (bounded)."""
    deadline = time.monotonic() + timeout
    buf = b""
    fd = stream.fileno()
    while time.monotonic() < deadline and len(buf) < 65536:
        r, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not r:
            break
        ch = os.read(fd, 1)
        if not ch:
            break
        buf += ch
        if ch == b"\n":
            break
    return buf.decode(errors="replace")


class NodeSim:
    """poh_node_sim with listeners given as lists of options, e.g.
    NodeSim([[], ["--mode", "slow:300"], ["--mode", "blackhole"]])."""

    def __init__(self, listeners, extra=(), host="127.0.0.1"):
        self.listeners = [list(opts) for opts in listeners]
        args = [sim_binary()] + list(extra)
        for opts in self.listeners:
            args += ["--listen", host + ":0"] + opts
        self.errlog = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.errlog)
        line = read_line(self.proc.stdout, 15)
        if not line.startswith("ports="):
            self.stop()
            raise RuntimeError("poh_node_sim did not start: %r %s" % (line, self.stderr()))
        ports, control = line.split()
        self.ports = [int(p) for p in ports[len("ports="):].split(",")]
        self.control_port = int(control[len("control="):])
        self.host = host
        # First port of each listener (a listener with --ports N takes N).
        self.first = []
        i = 0
        for opts in self.listeners:
            self.first.append(i)
            n = int(opts[opts.index("--ports") + 1]) if "--ports" in opts else 1
            i += n

    def addr(self, listener, k=0):
        return "%s:%d" % (self.host, self.ports[self.first[listener] + k])

    def listener_ports(self, listener):
        start = self.first[listener]
        end = self.first[listener + 1] if listener + 1 < len(self.first) else len(self.ports)
        return self.ports[start:end]

    def control(self, cmd, timeout=5.0):
        """Send one command, return the answer lines (terminator included)."""
        with socket.create_connection(("127.0.0.1", self.control_port), timeout=timeout) as s:
            s.sendall(cmd.encode() + b"\n")
            data = b""
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
                lines = data.decode().splitlines()
                if data.endswith(b"\n") and lines and lines[-1].split(" ")[0] in (
                        "END", "OK", "VALUE", "NONE", "ERR"):
                    return lines
            raise RuntimeError("control %r: incomplete answer %r" % (cmd, data))

    def counts(self):
        out = {}
        for line in self.control("COUNTS")[:-1]:
            idx, method, n = line.split(" ")
            out[(int(idx), method)] = int(n)
        return out

    def count(self, listener, method=HEALTH_METHOD):
        return self.counts().get((listener, method), 0)

    def reset(self):
        assert self.control("RESET") == ["OK"]

    def set_mode(self, listener, mode):
        ans = self.control("MODE %d %s" % (listener, mode))
        assert ans == ["OK"], ans

    def set_health(self, listener, status, service=""):
        ans = self.control("HEALTH %d %s %s" % (listener, status, service))
        assert ans == ["OK"], ans

    def lastmd(self, listener, key):
        ans = self.control("LASTMD %d %s" % (listener, key))[-1]
        return ans[len("VALUE "):] if ans.startswith("VALUE ") else None

    def peers(self, listener):
        return [l[5:] for l in self.control("PEERS %d" % listener) if l.startswith("PEER ")]

    def stderr(self):
        if self.errlog.closed:
            return ""
        self.errlog.seek(0)
        return self.errlog.read().decode(errors="replace")

    def stop(self):
        """SIGTERM, bounded wait, then SIGKILL. Returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc.stdout:
            self.proc.stdout.close()
        self.errlog.close()
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


_stubs = None
_stub_dir = None


def load_stubs():
    """(health_pb2, health_pb2_grpc, poh_pb2, poh_pb2_grpc) generated now with
    grpc_tools.protoc. The protos are copied under other file names so the
    generated modules do not shadow the `grpc` package; the proto package
    names (grpc.health.v1, poh) and so the method paths are unchanged."""
    global _stubs, _stub_dir
    if _stubs:
        return _stubs
    _stub_dir = tempfile.mkdtemp(prefix="poh-grpc-stubs-")
    atexit.register(cleanup_stubs)
    src = os.path.join(_stub_dir, "src")
    os.mkdir(src)
    shutil.copy(os.path.join(source_dir(), "proto", "grpc", "health", "v1", "health.proto"),
                os.path.join(src, "pohtest_health.proto"))
    shutil.copy(os.path.join(source_dir(), "proto", "poh", "poh.proto"),
                os.path.join(src, "pohtest_state.proto"))
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "-I" + src,
                    "--python_out=" + _stub_dir, "--grpc_python_out=" + _stub_dir,
                    os.path.join(src, "pohtest_health.proto"),
                    os.path.join(src, "pohtest_state.proto")],
                   check=True, timeout=120)
    sys.path.insert(0, _stub_dir)
    _stubs = tuple(importlib.import_module(m) for m in (
        "pohtest_health_pb2", "pohtest_health_pb2_grpc", "pohtest_state_pb2",
        "pohtest_state_pb2_grpc"))
    return _stubs


def cleanup_stubs():
    if _stub_dir:
        shutil.rmtree(_stub_dir, ignore_errors=True)


class PyHealthServer:
    """grpc.health.v1 Health/Check served by python3-grpcio (and, with
    state=True, poh.PoH/GetState; version_bytes makes its reply that much
    larger). statuses: service name -> status name;
    an unknown service gets NOT_FOUND like the reference implementation.
    Counts calls and keeps the metadata of the last call."""

    def __init__(self, statuses=None, state=False, delay=0.0, abort=None, workers=16,
                 version_bytes=0):
        import grpc
        h_pb2, h_grpc, s_pb2, s_grpc = load_stubs()
        self.statuses = dict(statuses if statuses is not None else {"": "SERVING"})
        self.calls = {}
        self.last_metadata = {}
        self.delay = delay
        self.abort = abort  # (grpc.StatusCode, message) or None
        self.lock = threading.Lock()
        outer = self

        def record(method, context):
            with outer.lock:
                outer.calls[method] = outer.calls.get(method, 0) + 1
                outer.last_metadata = {k: v for k, v in context.invocation_metadata()}
            if outer.delay:
                time.sleep(outer.delay)
            if outer.abort:
                context.abort(*outer.abort)

        class Health(h_grpc.HealthServicer):
            def Check(self, request, context):
                record(HEALTH_METHOD, context)
                with outer.lock:
                    status = outer.statuses.get(request.service)
                if status is None:
                    context.abort(grpc.StatusCode.NOT_FOUND, "unknown service")
                return h_pb2.HealthCheckResponse(
                    status=h_pb2.HealthCheckResponse.ServingStatus.Value(status))

        class PoH(s_grpc.PoHServicer):
            def GetState(self, request, context):
                record(STATE_METHOD, context)
                version = "v" * version_bytes if version_bytes else "py-grpcio"
                return s_pb2.NodeState(tick_height=777, slot=12, hashes_per_second=1.25e6,
                                       version=version,
                                       leader=s_pb2.NodeState.Leader(id="py", offset=-3))

        self.server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=workers))
        h_grpc.add_HealthServicer_to_server(Health(), self.server)
        if state:
            s_grpc.add_PoHServicer_to_server(PoH(), self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        if not self.port:
            raise RuntimeError("grpcio could not bind 127.0.0.1:0")
        self.server.start()
        self.addr = "127.0.0.1:%d" % self.port

    def count(self, method=HEALTH_METHOD):
        with self.lock:
            return self.calls.get(method, 0)

    def stop(self):
        self.server.stop(grace=None).wait(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def run_cli(args, timeout=60):
    """Run poh_grpc_probe_cli; returns (calls, walls): calls is a list of
    dicts (round, target, method, code, serving, latency, bytes, details,
    field.*), walls the per-round wall times."""
    p = subprocess.run([cli_binary()] + list(args), capture_output=True, text=True,
                       timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError("poh_grpc_probe_cli failed (%d): %s" % (p.returncode, p.stderr))
    calls, walls = [], []
    for line in p.stdout.splitlines():
        if line.startswith("wall="):
            walls.append(float(line[5:]))
            continue
        rec = {}
        head, _, rest = line.partition(' details="')
        details, _, fields = rest.rpartition('"')
        for tok in head.split(" ") + fields.split():
            k, _, v = tok.partition("=")
            rec[k] = v
        rec["details"] = details
        rec["round"] = int(rec["round"])
        rec["latency"] = float(rec["latency"])
        rec["bytes"] = int(rec["bytes"])
        calls.append(rec)
    return calls, walls


def make_certs(directory):
    """CA, server (CN/SAN poh-node) and client certificates; returns paths."""
    def ossl(*args):
        subprocess.run(["openssl"] + list(args), check=True, capture_output=True, timeout=60)
    d = lambda name: os.path.join(directory, name)  # noqa: E731
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    ossl("req", "-x509", *ec, "-keyout", d("ca.key"), "-out", d("ca.pem"), "-days", "2",
         "-subj", "/CN=poh-test-ca")
    for name, ext in (("server", "subjectAltName=DNS:poh-node\nextendedKeyUsage=serverAuth\n"),
                      ("client", "extendedKeyUsage=clientAuth\n")):
        with open(d(name + ".ext"), "w") as f:
            f.write(ext)
        ossl("req", *ec, "-keyout", d(name + ".key"), "-out", d(name + ".csr"),
             "-subj", "/CN=" + ("poh-node" if name == "server" else "poh-exporter"))
        ossl("x509", "-req", "-in", d(name + ".csr"), "-CA", d("ca.pem"), "-CAkey", d("ca.key"),
             "-CAcreateserial", "-out", d(name + ".pem"), "-days", "2",
             "-extfile", d(name + ".ext"))
    return {k: d(k + ".pem") for k in ("ca", "server", "client")} | {
        "server_key": d("server.key"), "client_key": d("client.key")}
