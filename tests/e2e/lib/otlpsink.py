# SPDX-License-Identifier: Apache-2.0
"""Helpers for the OTLP end-to-end tests: the otlp_sink simulator (gRPC C core
receiver), the otlp_emit driver of the exporter's tracer, and Python stubs
generated from proto/ at test time with grpc_tools.protoc. Every wait is
bounded; the sink writes a request's lines before it answers, so once
otlp_emit has exited (its tracer waited for every answer) the records are
complete and no polling is needed."""
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time

from pohtest import BUILD, SOURCE

SIM_DIR = os.path.join(BUILD, "tests", "sim", "otlp_sink")
SINK = os.path.join(SIM_DIR, "otlp_sink")
EMIT = os.path.join(SIM_DIR, "otlp_emit")
PROTOS = [
    "opentelemetry/proto/common/v1/common.proto",
    "opentelemetry/proto/resource/v1/resource.proto",
    "opentelemetry/proto/trace/v1/trace.proto",
    "opentelemetry/proto/collector/trace/v1/trace_service.proto",
]


def require_binaries():
    for p in (SINK, EMIT):
        if not os.access(p, os.X_OK):
            raise RuntimeError(f"{p} is not built (it is part of the build)")


class Sink:
    """otlp_sink on 127.0.0.1 with an ephemeral port; records go to a file."""

    def __init__(self, *args, start_timeout=15):
        require_binaries()
        self.tmp = tempfile.mkdtemp(prefix="otlp-sink-")
        self.out = os.path.join(self.tmp, "records.jsonl")
        cmd = [SINK, "--out", self.out] + [str(a) for a in args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        # The first stdout line is the port.
        line = ""
        ready, _, _ = select.select([self.proc.stdout], [], [], start_timeout)
        if ready:
            line = self.proc.stdout.readline().strip()
        if not line.isdigit():
            self.stop()
            raise RuntimeError(f"otlp_sink did not start: {line!r} {self.proc.stderr.read()}")
        self.port = int(line)
        self.endpoint = f"127.0.0.1:{self.port}"
        self.summary = None

    def records(self, kind=None):
        out = []
        if os.path.exists(self.out):
            with open(self.out) as f:
                for line in f:
                    if line.strip():
                        r = json.loads(line)
                        if kind is None or r["type"] == kind:
                            out.append(r)
        return out

    def spans(self):
        return self.records("span")

    def requests(self):
        return self.records("request")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for f in (self.proc.stdout, self.proc.stderr):
            if f:
                f.close()
        for r in self.records("summary"):
            self.summary = r
        return self.summary

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.stop()


class Emitted:
    def __init__(self, proc, wall):
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.wall = wall
        self.lines = [json.loads(l) for l in proc.stdout.splitlines() if l.startswith("{")]
        self.made = [l for l in self.lines if l["type"] == "made"]
        stats = [l for l in self.lines if l["type"] == "stats"]
        self.stats = stats[-1] if stats else None
        flood = [l for l in self.lines if l["type"] == "flood"]
        self.flood = flood[-1] if flood else None
        self.enabled = not any(l["type"] == "tracer" and not l["enabled"] for l in self.lines)

    def made_by(self, name):
        return [m for m in self.made if m["name"] == name]


def emit(*args, endpoint=None, env=None, timeout=120, clean_env=True):
    """Run otlp_emit; returns Emitted. clean_env drops OTEL_* / OTLP_* from the
    inherited environment so only what the test sets applies."""
    require_binaries()
    e = dict(os.environ)
    if clean_env:
        for k in list(e):
            if k.startswith("OTEL_") or k.startswith("OTLP_"):
                del e[k]
    e.update(env or {})
    cmd = [EMIT]
    if endpoint:
        cmd += ["--endpoint", endpoint]
    cmd += [str(a) for a in args]
    t0 = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, env=e, timeout=timeout)
    res = Emitted(p, time.monotonic() - t0)
    if p.returncode != 0:
        raise AssertionError(f"otlp_emit failed ({p.returncode}): {p.stderr}\n{p.stdout}")
    return res


def traceparent_ids(tp):
    """(trace_id, span_id, flags) of a traceparent string."""
    _, trace_id, span_id, flags = tp.split("-")
    return trace_id, span_id, int(flags, 16)


def gen_stubs(dest):
    """Python protobuf + grpc stubs of the project's OTLP protos, generated now
    with grpc_tools.protoc (from python3-grpc-tools), importable from dest."""
    cmd = [sys.executable, "-m", "grpc_tools.protoc", "-I", os.path.join(SOURCE, "proto"),
           f"--python_out={dest}", f"--grpc_python_out={dest}"] + PROTOS
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        raise RuntimeError(f"grpc_tools.protoc failed: {p.stderr}")
    if dest not in sys.path:
        sys.path.insert(0, dest)
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
    from opentelemetry.proto.trace.v1 import trace_pb2
    return trace_service_pb2, trace_service_pb2_grpc, trace_pb2


def make_cert(dest, cn="localhost"):
    """Self-signed certificate for localhost / 127.0.0.1 with openssl."""
    cert = os.path.join(dest, "cert.pem")
    key = os.path.join(dest, "key.pem")
    cmd = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
           "-keyout", key, "-out", cert, "-subj", f"/CN={cn}",
           "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise RuntimeError(f"openssl failed: {p.stderr}")
    return cert, key
