# SPDX-License-Identifier: Apache-2.0
"""Interoperability with an implementation nobody here wrote: Python protobuf
stubs generated from proto/ at test time by grpc_tools.protoc, and a
python3-grpcio server receiving the exporter's Export call. The same request
bytes the C sink recorded are decoded by Python and must agree field by field;
a grpcio client's request decodes in the C sink."""
import os
import tempfile
import threading
import unittest
from concurrent import futures

import grpc

from otlpsink import Sink, emit, gen_stubs, traceparent_ids
from pohtest import main

TMP = tempfile.mkdtemp(prefix="otlp-stubs-")
pb, pb_grpc, trace_pb2 = gen_stubs(TMP)


def any_value(v):
    which = v.WhichOneof("value")
    return which, (getattr(v, which) if which else None)


class Receiver(pb_grpc.TraceServiceServicer):
    """A grpcio TraceService that keeps every request and its metadata."""

    def __init__(self, reject=0):
        self.requests = []
        self.metadata = []
        self.reject = reject
        self.lock = threading.Lock()

    def Export(self, request, context):
        with self.lock:
            self.requests.append(request)
            self.metadata.append(dict(context.invocation_metadata()))
        resp = pb.ExportTraceServiceResponse()
        if self.reject:
            resp.partial_success.rejected_spans = self.reject
            resp.partial_success.error_message = "python says no"
        return resp


class GrpcioServer:
    def __init__(self, receiver):
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        pb_grpc.add_TraceServiceServicer_to_server(receiver, self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.server.stop(grace=1).wait(5)


class GrpcioReceiverTest(unittest.TestCase):
    def test_exporter_to_grpcio_server(self):
        rx = Receiver()
        with GrpcioServer(rx) as srv:
            run = emit("--scenario", "tree", "--child-ms", "5", "--header", "x-tenant=t9",
                       "--resource", "k8s.pod.name=p-1", endpoint=f"127.0.0.1:{srv.port}")
        self.assertEqual(run.stats["exported"], 4)
        self.assertEqual(len(rx.requests), 1)
        req = rx.requests[0]
        self.assertEqual(rx.metadata[0]["x-tenant"], "t9")
        rs, = req.resource_spans
        res = {kv.key: any_value(kv.value) for kv in rs.resource.attributes}
        self.assertEqual(res["service.name"], ("string_value", "poh-exporter"))
        self.assertEqual(res["k8s.pod.name"], ("string_value", "p-1"))
        ss, = rs.scope_spans
        self.assertEqual(ss.scope.name, "poh_exporter")
        spans = {s.span_id.hex(): s for s in ss.spans}
        made = {traceparent_ids(m["traceparent"])[1]: m for m in run.made}
        self.assertEqual(set(spans), set(made))
        root = [s for s in ss.spans if s.name == "scrape"][0]
        self.assertEqual(root.kind, trace_pb2.Span.SPAN_KIND_SERVER)
        self.assertEqual(root.parent_span_id, b"")
        for s in ss.spans:
            self.assertEqual(len(s.trace_id), 16)
            self.assertEqual(len(s.span_id), 8)
            self.assertEqual(s.trace_id, root.trace_id)
            self.assertLessEqual(s.start_time_unix_nano, s.end_time_unix_nano)
            self.assertEqual(s.flags & trace_pb2.SPAN_FLAGS_TRACE_FLAGS_MASK, 1)
            self.assertTrue(s.flags & trace_pb2.SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK)
            if s is not root:
                self.assertEqual(s.kind, trace_pb2.Span.SPAN_KIND_CLIENT)
                self.assertEqual(s.parent_span_id, root.span_id)
        bad = [s for s in ss.spans
               if any(kv.key == "server.address" and kv.value.string_value == "poh-2"
                      for kv in s.attributes)][0]
        self.assertEqual(bad.status.code, trace_pb2.Status.STATUS_CODE_ERROR)
        self.assertEqual(bad.status.message, "NOT_SERVING")
        port = [kv for kv in bad.attributes if kv.key == "server.port"][0]
        self.assertEqual(any_value(port.value), ("int_value", 50052))

    def test_edge_values_decode_in_python(self):
        rx = Receiver()
        with GrpcioServer(rx) as srv:
            emit("--scenario", "types", endpoint=f"127.0.0.1:{srv.port}")
        s = rx.requests[0].resource_spans[0].scope_spans[0].spans[0]
        attrs = {kv.key: any_value(kv.value) for kv in s.attributes}
        self.assertEqual(attrs["int.max"], ("int_value", 2**63 - 1))
        self.assertEqual(attrs["int.min"], ("int_value", -2**63))
        self.assertEqual(attrs["double"], ("double_value", 0.1))
        self.assertEqual(attrs["bool.false"], ("bool_value", False))
        self.assertEqual(attrs["str"], ("string_value", 'h\u00e9llo \u2713 "quoted"\\'))
        self.assertEqual(s.kind, trace_pb2.Span.SPAN_KIND_PRODUCER)

    def test_partial_success_from_grpcio(self):
        rx = Receiver(reject=2)
        with GrpcioServer(rx) as srv:
            run = emit("--scenario", "tree", "--child-ms", "0", endpoint=f"127.0.0.1:{srv.port}")
        self.assertEqual(run.stats["exported"], 2)
        self.assertEqual(run.stats["dropped"]["rejected"], 2)
        self.assertIn("python says no", run.stderr)


class SameBytesTest(unittest.TestCase):
    """The C sink's raw request bytes, decoded by Python, match the C sink's
    own decoding (protobuf-c) field by field."""

    def test_same_bytes(self):
        raw = tempfile.mkdtemp(prefix="otlp-raw-")
        with Sink("--raw-dir", raw) as sink:
            emit("--scenario", "tree", "--child-ms", "1", endpoint=sink.endpoint)
            emit("--scenario", "types", endpoint=sink.endpoint)
        c_spans = {s["span_id"]: s for s in sink.spans()}
        files = sorted(os.listdir(raw))
        self.assertEqual(len(files), 2)
        seen = 0
        for name in files:
            with open(os.path.join(raw, name), "rb") as f:
                data = f.read()
            req = pb.ExportTraceServiceRequest.FromString(data)
            # Re-encoding with Python gives the same bytes (same field order,
            # no unknown fields): the encodings agree exactly.
            self.assertEqual(req.SerializeToString(), data)
            for s in req.resource_spans[0].scope_spans[0].spans:
                c = c_spans[s.span_id.hex()]
                self.assertEqual(s.trace_id.hex(), c["trace_id"])
                self.assertEqual(s.parent_span_id.hex(), c["parent_span_id"])
                self.assertEqual(s.name, c["name"])
                self.assertEqual(s.kind, c["kind"])
                self.assertEqual(s.flags, c["flags"])
                self.assertEqual(s.start_time_unix_nano, c["start"])
                self.assertEqual(s.end_time_unix_nano, c["end"])
                self.assertEqual(s.status.code, c["status"]["code"])
                self.assertEqual(s.status.message, c["status"]["message"])
                attrs = {kv.key: any_value(kv.value)[1] for kv in s.attributes}
                self.assertEqual(attrs, c["attributes"])
                seen += 1
        self.assertEqual(seen, len(c_spans))
        self.assertEqual(seen, 5)


class GrpcioClientTest(unittest.TestCase):
    """A grpcio client's Export, built with the Python stubs, decodes in the
    C sink; status codes and partial_success come back as gRPC says."""

    def request(self):
        req = pb.ExportTraceServiceRequest()
        rs = req.resource_spans.add()
        kv = rs.resource.attributes.add()
        kv.key, kv.value.string_value = "service.name", "python-client"
        ss = rs.scope_spans.add()
        ss.scope.name = "py"
        s = ss.spans.add()
        s.trace_id = bytes(range(1, 17))
        s.span_id = bytes(range(1, 9))
        s.name = "from-python"
        s.kind = trace_pb2.Span.SPAN_KIND_CONSUMER
        s.start_time_unix_nano, s.end_time_unix_nano = 10, 20
        a = s.attributes.add()
        a.key, a.value.double_value = "d", 1.5
        return req

    def test_grpcio_client_to_c_sink(self):
        with Sink("--partial-success", 1) as sink:
            with grpc.insecure_channel(sink.endpoint) as ch:
                stub = pb_grpc.TraceServiceStub(ch)
                resp = stub.Export(self.request(), timeout=10, metadata=[("x-py", "1")])
        self.assertEqual(resp.partial_success.rejected_spans, 1)
        self.assertEqual(resp.partial_success.error_message, "rejected by sink")
        s, = sink.spans()
        self.assertEqual(s["name"], "from-python")
        self.assertEqual(s["trace_id"], bytes(range(1, 17)).hex())
        self.assertEqual(s["kind"], 5)
        self.assertEqual(s["attributes"], {"d": 1.5})
        r, = sink.requests()
        self.assertEqual(r["resource"]["service.name"], "python-client")
        self.assertEqual(r["metadata"]["x-py"], "1")

    def test_grpcio_client_sees_injected_status(self):
        with Sink("--fail-unavailable", 1) as sink:
            with grpc.insecure_channel(sink.endpoint) as ch:
                stub = pb_grpc.TraceServiceStub(ch)
                with self.assertRaises(grpc.RpcError) as e:
                    stub.Export(self.request(), timeout=10)
                self.assertEqual(e.exception.code(), grpc.StatusCode.UNAVAILABLE)
                stub.Export(self.request(), timeout=10)
        self.assertEqual([r["status"] for r in sink.requests()], ["UNAVAILABLE", "OK"])


if __name__ == "__main__":
    main()
