# SPDX-License-Identifier: Apache-2.0
"""Baseline for bench/otlp: the same scrape-shaped spans built, encoded and
shipped from Python (python3-protobuf's upb C backend + python3-grpcio), as
the in-process library poh_exporter replaces did. Stubs are generated from
proto/ at run time. Prints key=value lines like bench_otlp."""
import os
import random
import resource
import sys
import tempfile
import time

import grpc
from grpc_tools import protoc


def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main():
    src, endpoint, total, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    tmp = tempfile.mkdtemp(prefix="otlp-bench-py-")
    protos = ["opentelemetry/proto/common/v1/common.proto",
              "opentelemetry/proto/resource/v1/resource.proto",
              "opentelemetry/proto/trace/v1/trace.proto",
              "opentelemetry/proto/collector/trace/v1/trace_service.proto"]
    if protoc.main(["protoc", "-I", os.path.join(src, "proto"), f"--python_out={tmp}",
                    f"--grpc_python_out={tmp}"] + protos) != 0:
        sys.exit("protoc failed")
    sys.path.insert(0, tmp)
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as pb
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc as pb_grpc
    from opentelemetry.proto.trace.v1 import trace_pb2
    from google.protobuf.internal import api_implementation

    stub = pb_grpc.TraceServiceStub(grpc.insecure_channel(endpoint))
    rnd = random.Random(1)
    sent = 0
    c0, w0 = cpu(), time.monotonic()
    while sent < total:
        req = pb.ExportTraceServiceRequest()
        rs = req.resource_spans.add()
        for k, v in (("service.name", "poh-exporter"), ("service.version", "0.1.0"),
                     ("host.name", "bench")):
            a = rs.resource.attributes.add()
            a.key, a.value.string_value = k, v
        ss = rs.scope_spans.add()
        ss.scope.name, ss.scope.version = "poh_exporter", "0.1.0"
        n = min(batch, total - sent)
        for i in range(n):
            s = ss.spans.add()
            s.trace_id = rnd.randbytes(16)
            s.span_id = rnd.randbytes(8)
            s.name = "grpc.health.v1.Health/Check"
            s.kind = trace_pb2.Span.SPAN_KIND_CLIENT
            s.flags = 0x101
            s.start_time_unix_nano = time.time_ns()
            for k, v in (("rpc.system", "grpc"), ("rpc.service", "grpc.health.v1.Health"),
                         ("rpc.method", "Check"), ("server.address", "poh-node-1.example")):
                a = s.attributes.add()
                a.key, a.value.string_value = k, v
            a = s.attributes.add()
            a.key, a.value.int_value = "server.port", 50051
            a = s.attributes.add()
            a.key, a.value.int_value = "rpc.grpc.status_code", 0 if (sent + i) % 7 else 14
            s.end_time_unix_nano = time.time_ns()
        stub.Export(req, timeout=30)
        sent += n
    c, w = cpu() - c0, time.monotonic() - w0
    print(f"python spans={sent} impl={api_implementation.Type()} wall_s={w:.4f} cpu_s={c:.4f} "
          f"spans_per_s={sent / w:.0f} spans_per_cpu_s={sent / c:.0f} "
          f"cpu_ns_per_span={c * 1e9 / sent:.1f}")


if __name__ == "__main__":
    main()
