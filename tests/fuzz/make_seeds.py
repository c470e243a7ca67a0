#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Writes the seed corpora of tests/fuzz/corpus/ (committed; rerun only to
change the seeds): real-shaped inputs for each target. BSON from pymongo's
bson module; protobuf bytes by hand. Inputs found by scripts/fuzz.sh are
added beside these as crash-* files and are never rewritten here."""
import datetime
import os
import struct

import bson
import bson.json_util
from bson.int64 import Int64
from bson.timestamp import Timestamp

HERE = os.path.dirname(os.path.abspath(__file__))
UTC = datetime.timezone.utc
T0 = datetime.datetime(2026, 11, 25, 15, 42, 15, 123000, tzinfo=UTC)
TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def put(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def varint(v):
    out = b""
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field(num, wt, payload):
    return varint(num << 3 | wt) + payload


def pb_state():
    # poh.PoH/GetState reply as poh_node_sim sends it: 1 tick_height, 2 slot,
    # 3 hashes_per_second (double), 5 leader {1 id, 2 offset (sint64)}
    leader = field(1, 2, varint(6) + b"node-0") + field(2, 0, varint(3))  # zigzag(-2) = 3
    return (field(1, 0, varint(123456789)) + field(2, 0, varint(771)) +
            field(3, 1, struct.pack("<d", 2e6)) + field(5, 2, varint(len(leader)) + leader))


def seeds_pbwire():
    put("pbwire", "state", pb_state())
    put("pbwire", "health_serving", field(1, 0, varint(1)))
    put("pbwire", "health_not_serving", field(1, 0, varint(2)))
    put("pbwire", "empty", b"")
    put("pbwire", "fixed32_float", field(1, 5, struct.pack("<f", 1.5)) + field(2, 5, b"\1\0\0\0"))
    put("pbwire", "group", field(7, 3, b"") + field(1, 0, varint(1)) + field(7, 4, b""))
    put("pbwire", "truncated_len", field(5, 2, varint(100)) + b"\x08")
    put("pbwire", "varint_10", field(1, 0, b"\xff" * 9 + b"\x01"))


def seeds_traceparent():
    put("traceparent", "valid", TP)
    put("traceparent", "unsampled", TP[:-2] + "00")
    put("traceparent", "future_version", "cc" + TP[2:] + "-extra")
    put("traceparent", "zero_trace", "00-" + "0" * 32 + "-00f067aa0ba902b7-01")
    put("traceparent", "upper", TP.upper())
    put("traceparent", "short", TP[:40])


def event(op, full=None, upd=None, wall=True, extra=None):
    e = {"_id": {"_data": "8263A1B2C3000000012B022C0100296E5A1004"}, "operationType": op,
         "clusterTime": Timestamp(1795621335, 1),
         "ns": {"db": "dag", "coll": "transactions"}, "documentKey": {"_id": 1}}
    if wall:
        e["wallTime"] = T0
    if full is not None:
        e["fullDocument"] = full
    if upd is not None:
        e["updateDescription"] = upd
    e.update(extra or {})
    return bson.encode(e)


def seeds_change_event():
    ms = int(T0.timestamp() * 1000)
    put("change_event", "insert_date", event("insert", {"_id": 1, "created_at": T0 - datetime.timedelta(milliseconds=40), "traceparent": TP}))
    put("change_event", "insert_ms", event("insert", {"_id": 2, "created_at": Int64(ms - 5), "meta": {"created": (ms - 5) / 1000}}))
    put("change_event", "insert_rfc3339", event("insert", {"_id": 3, "created_at": "2026-11-25T15:42:15.083Z"}))
    put("change_event", "update_approved", event("update", {"_id": 4, "meta": {"created": ms / 1000 - 2}}, {"updatedFields": {"approved_at": ms / 1000}, "removedFields": [], "truncatedArrays": [], "disambiguatedPaths": {}}))
    put("change_event", "replace", event("replace", {"_id": 5, "created_at": T0}))
    put("change_event", "delete", event("delete"))
    put("change_event", "no_walltime_50", event("insert", {"_id": 6, "created_at": T0}, wall=False))
    put("change_event", "full_null", event("update", None, {"updatedFields": {"x": 1}}, extra={"fullDocument": None}))
    put("change_event", "absurd_times", event("insert", {"_id": 7, "created_at": -1.7e308, "approved_at": 1.7e308}))
    put("change_event", "invalidate", event("invalidate"))
    put("change_event", "drop", event("drop"))
    put("change_event", "rename", event("rename", extra={"to": {"db": "dag", "coll": "old"}}))
    # the fragments of a split event ($changeStreamSplitLargeEvent), as the corpus has them
    for i in (1, 2, 3):
        path = os.path.join(HERE, "..", "data", "mongodb", f"event_split_7.0_update_3of3_fragment{i}.json")
        with open(path) as f:
            put("change_event", f"split_{i}of3", bson.encode(bson.json_util.loads(f.read())))


def seeds_replset():
    def member(i, state, state_str, health=1.0, optime=True):
        m = {"_id": i, "name": f"db{i}:27017", "health": health, "state": state, "stateStr": state_str}
        if optime:
            m["optime"] = {"ts": Timestamp(1795621335 - i, 1), "t": Int64(3)}
            m["optimeDate"] = T0
        return m
    status = {"set": "rs0", "date": T0, "myState": 1, "members": [
        member(0, 1, "PRIMARY"), member(1, 2, "SECONDARY"), member(2, 7, "ARBITER", optime=False),
        member(3, 8, "(not reachable/healthy)", 0.0, optime=False), member(4, 3, "RECOVERING"),
        member(5, 5, "STARTUP2"), member(6, 9, "ROLLBACK"), member(7, 10, "REMOVED")], "ok": 1.0}
    put("replset", "status_7_0", bson.encode(status))
    put("replset", "state_huge", bson.encode({"members": [{"name": "a:1", "state": 2.01e14, "health": 1e308}], "ok": 1.0}))
    put("replset", "times", bson.encode({"d": T0, "i": Int64(1795621335123), "f": 1795621335.5, "s": "2026-11-25T15:42:15Z", "t": Timestamp(1795621335, 1)}))
    put("replset", "error_history_lost", bson.encode({"ok": 0.0, "errmsg": "Resume of change stream was not possible", "code": 286, "codeName": "ChangeStreamHistoryLost"}))
    put("replset", "optime_forms", bson.encode({"members": [
        {"_id": 0, "name": "db0:27017", "state": 1, "health": 1, "optime": Timestamp(1795621335, 7)},
        {"_id": 1, "name": "d" * 300, "stateStr": "S" * 40, "state": 99, "health": 0.5,
         "optimeDate": datetime.datetime(1960, 1, 1, tzinfo=UTC)},
        {"_id": 2, "state": 2}, "not a document"], "ok": 1.0}))
    put("replset", "rfc3339_offset", "2026-11-25t15:42:15.123456789-09:30")
    put("replset", "error_labels", bson.encode({"ok": 0.0, "code": 91, "errorLabels": ["ResumableChangeStreamError"]}))


def seeds_state_file():
    st = {"v": 1, "ns": "dag.transactions", "token": {"_data": "8263A1B2C3000000012B022C0100296E5A1004"},
          "last_wall_ms": Int64(int(T0.timestamp() * 1000)),
          "changes": {"insert": Int64(36004680), "update": Int64(12)},
          "field_errors": {"missing:created_at": Int64(3), "too_large:created_at": Int64(1), "legacy_field": Int64(2)},
          "resumes": Int64(4), "history_lost": Int64(0)}
    put("state_file", "valid", bson.encode(st))
    put("state_file", "no_token", bson.encode({"v": 1, "last_wall_ms": Int64(0), "changes": {}, "field_errors": {}, "resumes": Int64(0), "history_lost": Int64(0)}))
    put("state_file", "wrong_version", bson.encode({"v": 2}))
    put("state_file", "negative_counts", bson.encode({"v": 1, "changes": {"insert": Int64(-5)}, "resumes": Int64(-1)}))
    put("state_file", "truncated", bson.encode(st)[:40])


def seeds_http_headers():
    for i, v in enumerate([
            "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1",
            "application/openmetrics-text; version=0.0.1,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
            "text/plain", "*/*", "", "gzip", "gzip;", "gzip;q=0, *;q=1", "deflate, gzip;q=1.0, *;q=0.5",
            "x-gzip;q=0.5", "10", "9.5", "86400", "1e400", "-1", "nan", "0x10",
            'text/plain;version="0.0.4";q=1', "application/openmetrics-text;q=0.5;version=1.0.0,"]):
        put("http_headers", f"h{i:02d}", v)


def seeds_config():
    with open(os.path.join(HERE, "..", "..", "etc", "poh_exporter.yml"), "rb") as f:
        put("config", "shipped", f.read())
    put("config", "grpc", """grpc:
  - name: poh
    targets: ["127.0.0.1:50051", "[::1]:50052"]
    timeout: 2s
    max_reply_size: 64KiB
    metadata: {x-team: dag}
    state:
      method: /poh.PoH/GetState
      fields:
        - {path: "1", metric: poh_node_tick_height, type: uint64}
        - {path: "5.2", metric: poh_node_leader_offset, type: sint64}
""")
    put("config", "mongodb", """state_dir: /tmp
mongodb:
  - name: main
    uri: "mongodb://monitor:pw@127.0.0.1:27017/?replicaSet=rs0&tlsCertificateKeyFilePassword=x"
    change_streams:
      - name: tx
        database: dag
        collection: transactions
        latencies:
          - {name: storage, from_field: created_at, to: commit}
          - {name: approval, from_field: created_at, to_field: approved_at, max: 1h, clock_skew: 2s}
        buckets: [0.005, 0.05, 0.5, 5]
tracing: {enabled: false, sample_ratio: 0.5, headers: {authorization: secret}}
""")
    put("config", "errors", "web:\n  listen_adress: :8000\n  max_scrape_timeout: 2d\n- [\n")
    put("config", "anchors", "a: &x {b: *x}\nweb: *x\n")
    # the web config file (exporter-toolkit's format), parsed from the same bytes
    put("config", "web_full", """tls_server_config:
  cert_file: server.pem
  key_file: server.key
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: ca.pem
  client_allowed_sans: [scraper.example, 10.0.0.1]
  min_version: TLS12
  max_version: TLS13
  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_AES_128_GCM_SHA256]
  prefer_server_cipher_suites: false
  curve_preferences: [X25519, CurveP256]
http_server_config:
  http2: false
  headers: {X-Frame-Options: deny, Strict-Transport-Security: max-age=3600}
basic_auth_users:
  alice: $2y$04$P9dVwyKnM0mFSfh5Nn7/..OMwYSCTpwEYC6tiWHN6xkq4ar5aKVEm
rate_limit: {interval: 100ms, burst: 5}
""")
    put("config", "web_errors", """tls_server_config:
  cert: inline
  cert_file: x.pem
  client_ca_file: ca.pem
  min_version: TLS14
http_server_config: {headers: {X-Foo: bar}}
basic_auth_users: {"a:b": plain}
rate_limit: {interval: 1s}
""")


def seeds_otlp_reply():
    def ld(num, payload):
        return field(num, 2, varint(len(payload)) + payload)

    def status(code, message, *details):
        return field(1, 0, varint(code)) + ld(2, message.encode()) + b"".join(ld(3, d) for d in details)

    def any_(type_url, value):
        return ld(1, type_url.encode()) + ld(2, value)

    def retry_info(secs, nanos=0):
        dur = field(1, 0, varint(secs & (2**64 - 1))) + (field(2, 0, varint(nanos & (2**64 - 1))) if nanos else b"")
        return any_("type.googleapis.com/google.rpc.RetryInfo", ld(1, dur))

    error_info = any_("type.googleapis.com/google.rpc.ErrorInfo", ld(1, b"QUOTA") + ld(2, b"otel.example"))
    put("otlp_reply", "response_empty", b"")
    put("otlp_reply", "response_partial", ld(1, field(1, 0, varint(3)) + ld(2, b"3 spans had no name")))
    put("otlp_reply", "response_negative", ld(1, field(1, 0, varint(2**64 - 7))))
    put("otlp_reply", "status_retry_2s", status(8, "slow down", retry_info(2, 500000000)))
    put("otlp_reply", "status_retry_after_other", status(14, "unavailable", error_info, retry_info(1)))
    put("otlp_reply", "status_retry_negative", status(8, "", retry_info(-5, -1)))
    put("otlp_reply", "status_retry_huge", status(8, "", retry_info(2**63 - 1, 999999999)))
    put("otlp_reply", "status_no_retry", status(3, "bad request", error_info))
    put("otlp_reply", "status_truncated", status(8, "x", retry_info(2))[:-3])


def seeds_probe_target():
    for i, v in enumerate([
            "127.0.0.1:50051", "[::1]:50052", "node-1.poh.internal:443", "POH-A.example:8080",
            "[fe80::1%eth0]:1", "host:0", "host:65536", "a:b:80", "[::1]", "x.poh.internal:00443",
            "10.1.2.3:1", "[]:1", ":80", "user@host:80", "host:80/path", "10.0.0.0/8",
            "fd00::/129", "*.poh.internal", "poh-?.example", "[a]b]:1"]):
        put("probe_target", f"t{i:02d}", v)


if __name__ == "__main__":
    for fn in (seeds_pbwire, seeds_traceparent, seeds_change_event, seeds_replset,
               seeds_state_file, seeds_http_headers, seeds_config, seeds_otlp_reply,
               seeds_probe_target):
        fn()
