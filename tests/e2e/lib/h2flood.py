#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A hostile gRPC server for the reply-size tests (issue 14, item 1).

It speaks just enough HTTP/2 by hand to answer every call with response
headers and one gRPC message whose 5-byte prefix declares --declare bytes
(default 2 GiB), then streams the message body as fast as the client's flow
control allows, for ever (or until --total bytes per stream). No library is
used on purpose: grpcio and grpc's C core both refuse to send a message they
cannot hold, and a hostile peer does not ask permission.

    h2flood.py [--declare N] [--total N] [--port P]

prints "PORT <n>" once listening on 127.0.0.1, then "SENT <stream-bytes>"
lines on stderr as connections end. Every loop is bounded by the client: a
connection ends when the client closes it or resets all its streams.
"""
import argparse
import select
import socket
import struct
import sys
import threading

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
# print() writes the text and its newline separately, so connections ending
# together could run their SENT lines into one; one write per line, in turn.
REPORT_LOCK = threading.Lock()
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE = 0, 1, 3, 4, 6, 7, 8
END_HEADERS, ACK = 0x4, 0x1
FRAME = 16384  # SETTINGS_MAX_FRAME_SIZE's default: the largest DATA frame a peer must take


def frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", sid) + payload


# :status 200 (static index 8); content-type (static name 31, literal value
# without indexing): application/grpc.
RESPONSE_HPACK = b"\x88" + b"\x0f\x10" + bytes([16]) + b"application/grpc"


class Conn:
    def __init__(self, sock, declare, total):
        self.sock = sock
        self.declare = declare
        self.total = total
        self.buf = b""
        self.conn_window = 65535
        self.init_window = 65535
        self.streams = {}  # sid -> [window, sent]
        self.sent = 0
        self.zeros = bytes(FRAME)

    def read_frames(self):
        data = self.sock.recv(65536)
        if not data:
            return False
        self.buf += data
        if self.buf.startswith(PREFACE):
            self.buf = self.buf[len(PREFACE):]
        while len(self.buf) >= 9:
            n = int.from_bytes(self.buf[:3], "big")
            if len(self.buf) < 9 + n:
                break
            ftype, flags = self.buf[3], self.buf[4]
            sid = int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF
            payload = self.buf[9:9 + n]
            self.buf = self.buf[9 + n:]
            self.on_frame(ftype, flags, sid, payload)
        return True

    def on_frame(self, ftype, flags, sid, payload):
        if ftype == SETTINGS and not flags & ACK:
            for i in range(0, len(payload) - 5, 6):
                ident, value = struct.unpack(">HI", payload[i:i + 6])
                if ident == 4:  # SETTINGS_INITIAL_WINDOW_SIZE
                    delta = value - self.init_window
                    self.init_window = value
                    for st in self.streams.values():
                        st[0] += delta
            self.sock.sendall(frame(SETTINGS, ACK, 0))
        elif ftype == PING and not flags & ACK:
            self.sock.sendall(frame(PING, ACK, 0, payload))
        elif ftype == WINDOW_UPDATE and len(payload) == 4:
            inc = int.from_bytes(payload, "big") & 0x7FFFFFFF
            if sid == 0:
                self.conn_window += inc
            elif sid in self.streams:
                self.streams[sid][0] += inc
        elif ftype == HEADERS and sid not in self.streams and sid % 2 == 1:
            self.sock.sendall(frame(HEADERS, END_HEADERS, sid, RESPONSE_HPACK))
            self.streams[sid] = [self.init_window, 0]
            self.send_data(sid, b"\x00" + struct.pack(">I", self.declare))
        elif ftype == RST_STREAM:
            self.streams.pop(sid, None)
        elif ftype == GOAWAY:
            self.streams.clear()

    def send_data(self, sid, payload):
        st = self.streams[sid]
        st[0] -= len(payload)
        self.conn_window -= len(payload)
        st[1] += len(payload)
        self.sent += len(payload)
        self.sock.sendall(frame(DATA, 0, sid, payload))

    def pump(self):
        """Send what the windows allow, up to 1 MiB per call; True if sent."""
        sent = False
        budget = 1 << 20
        for sid in list(self.streams):
            st = self.streams.get(sid)
            while st and budget > 0 and self.conn_window > 0 and st[0] > 0 and \
                    (self.total <= 0 or st[1] < self.total):
                n = min(FRAME, self.conn_window, st[0], budget)
                self.send_data(sid, self.zeros[:n])
                budget -= n
                sent = True
        return sent

    def run(self):
        self.sock.sendall(frame(SETTINGS, 0, 0))
        try:
            while True:
                busy = self.pump()
                r, _, _ = select.select([self.sock], [], [], 0 if busy else 5.0)
                if r and not self.read_frames():
                    break
                if not r and not busy:
                    break  # 5 s with nothing to send and nothing heard: the client is gone
        except OSError:
            pass
        finally:
            self.sock.close()
            with REPORT_LOCK:
                sys.stderr.write("SENT %d\n" % self.sent)
                sys.stderr.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--declare", type=int, default=2 << 30)
    ap.add_argument("--total", type=int, default=0)
    ap.add_argument("--port", type=int, default=0)
    a = ap.parse_args()
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", a.port))
    ls.listen(64)
    print("PORT %d" % ls.getsockname()[1], flush=True)
    while True:
        s, _ = ls.accept()
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=Conn(s, min(a.declare, 0xFFFFFFFF), a.total).run, daemon=True).start()


if __name__ == "__main__":
    main()
