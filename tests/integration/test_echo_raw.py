"""build/examples/echo driven by a raw socket client (rawws): everything a
real client refuses to send, checked byte for byte against RFC 6455 and
the echo server's contract.

Run: BUILD=build /usr/bin/python3 -m unittest -v tests/integration/test_echo_raw.py
"""

import os
import signal
import socket
import struct
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import rawws  # noqa: E402
from echoserver import ServerTestCase  # noqa: E402
from rawws import (OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG,  # noqa
                   OP_TEXT, encode_frame)

REASONS = {
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    414: "URI Too Long",
    426: "Upgrade Required",
    431: "Request Header Fields Too Large",
    503: "Service Unavailable",
}

RFC_KEY = "dGhlIHNhbXBsZSBub25jZQ=="          # RFC 6455 section 1.3
RFC_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

PROTOCOL_ERROR = 1002
BAD_DATA = 1007
TOO_BIG = 1009
GOING_AWAY = 1001


class RawCase(ServerTestCase):

    def srv(self, *flags):
        return self.server(*flags)

    def tcp(self, srv, timeout=5.0):
        """A plain TCP connection, nothing sent yet."""
        return self.track(rawws.RawWS(srv.host, srv.port, timeout))

    def open(self, srv, **kw):
        """A connection upgraded to WebSocket (101 checked)."""
        ws = self.tcp(srv)
        ws.handshake(**kw)
        return ws

    def send_request(self, srv, request):
        ws = self.tcp(srv)
        ws.send(request)
        return ws, ws.read_http_response()

    def assert_rejected(self, ws, resp, status, **must_have):
        """The exact status line, Connection: close, no upgrade headers,
        the headers in must_have (name_with_underscores=value), a body of
        Content-Length bytes, then the server closes the connection."""
        want = "HTTP/1.1 %d %s" % (status, REASONS[status])
        self.assertEqual(resp.status_line, want,
                         "full response: %r" % (resp.raw[:600],))
        for name, value in must_have.items():
            name = name.replace("_", "-")
            self.assertEqual(resp.get_all(name), [value],
                             "header %s in %r" % (name, resp.raw[:600]))
        self.assertIn("close", resp.tokens("Connection"),
                      "a response after which the server closes must say "
                      "Connection: close (RFC 9112 9.6): %r" % resp.raw)
        self.assertFalse(resp.has("Sec-WebSocket-Accept"), resp.raw)
        self.assertNotIn("websocket", resp.tokens("Upgrade"), resp.raw)
        ws.expect_eof()

    def reject(self, srv, request, status, **must_have):
        ws, resp = self.send_request(srv, request)
        self.assert_rejected(ws, resp, status, **must_have)
        return resp

    def echo_roundtrip(self, ws, opcode, payload):
        ws.send_frame(opcode, payload)
        f = ws.recv_message()
        self.assertEqual(f.opcode, opcode)
        self.assertEqual(f.payload, payload)
        return f

    def assert_fails(self, srv, data, code, **kw):
        """Open a session, send data, expect the close `code` then EOF."""
        ws = self.open(srv)
        ws.send(data)
        return ws.expect_close(code, **kw)


# ---------------------------------------------------------------------------
# Opening handshake
# ---------------------------------------------------------------------------

class TestHandshakeAccept(RawCase):

    def test_rfc_example_key(self):
        srv = self.srv()
        ws = self.tcp(srv)
        resp = ws.handshake(key=RFC_KEY)
        self.assertEqual(resp.get_all("Sec-WebSocket-Accept"), [RFC_ACCEPT])
        self.assertFalse(resp.has("Sec-WebSocket-Protocol"))
        self.echo_roundtrip(ws, OP_TEXT, b"hello")

    def test_any_path_and_query(self):
        srv = self.srv()
        for path in ("/", "/chat", "/a/b/c?x=1&y=2"):
            with self.subTest(path=path):
                ws = self.open(srv, path=path)
                self.echo_roundtrip(ws, OP_TEXT, path.encode())
                ws.send_close(1000)
                ws.expect_close(1000)

    def test_header_case_and_token_lists(self):
        srv = self.srv()
        ws = self.tcp(srv)
        req = ("GET / HTTP/1.1\r\nhost: x\r\nUPGRADE: WebSocket\r\n"
               "connection: keep-alive, Upgrade\r\n"
               "sec-websocket-key: %s\r\nSEC-WEBSOCKET-VERSION: 13\r\n\r\n"
               % RFC_KEY).encode()
        ws.send(req)
        resp = ws.read_http_response()
        rawws.check_101(resp, RFC_KEY)
        self.echo_roundtrip(ws, OP_BINARY, b"\x00\x01")

    def test_permessage_deflate_offer_declined(self):
        srv = self.srv()
        ws = self.tcp(srv)
        resp = ws.handshake(extensions="permessage-deflate; "
                            "client_max_window_bits")
        self.assertFalse(resp.has("Sec-WebSocket-Extensions"), resp.raw)
        f = self.echo_roundtrip(ws, OP_TEXT, b"not compressed " * 20)
        self.assertEqual(f.rsv, 0)

    def test_subprotocol_in_client_order(self):
        srv = self.srv("--subprotocol", "chat", "--subprotocol", "superchat")
        cases = [
            ("superchat, chat", "superchat"),
            ("chat, superchat", "chat"),
            ("foo, chat", "chat"),
            ("foo,superchat", "superchat"),
        ]
        for offer, want in cases:
            with self.subTest(offer=offer):
                ws = self.tcp(srv)
                resp = ws.handshake(protocols=offer)
                self.assertEqual(resp.get_all("Sec-WebSocket-Protocol"),
                                 [want], resp.raw)
                self.echo_roundtrip(ws, OP_TEXT, b"x")

    def test_subprotocol_offer_on_several_header_lines(self):
        # RFC 6455 11.3.4: the header may appear several times, which is
        # the same as one header with all the values.
        srv = self.srv("--subprotocol", "chat", "--subprotocol", "superchat")
        ws = self.tcp(srv)
        resp = ws.handshake(protocols="foo", extra_headers=[
            ("Sec-WebSocket-Protocol", "superchat, chat")])
        self.assertEqual(resp.get_all("Sec-WebSocket-Protocol"),
                         ["superchat"], resp.raw)

    def test_subprotocol_none_known(self):
        srv = self.srv("--subprotocol", "chat")
        ws = self.tcp(srv)
        resp = ws.handshake(protocols="foo, bar")
        self.assertFalse(resp.has("Sec-WebSocket-Protocol"), resp.raw)
        self.echo_roundtrip(ws, OP_TEXT, b"still open")

    def test_subprotocol_not_sent_when_server_has_none(self):
        srv = self.srv()
        ws = self.tcp(srv)
        resp = ws.handshake(protocols="chat")
        self.assertFalse(resp.has("Sec-WebSocket-Protocol"), resp.raw)

    def test_frames_in_same_packet_as_handshake(self):
        srv = self.srv()
        ws = self.tcp(srv)
        extra = (encode_frame(OP_TEXT, b"early") +
                 encode_frame(OP_PING, b"p1") +
                 encode_frame(OP_BINARY, b"\xff\x00"))
        ws.handshake(extra=extra)
        f = ws.recv_message()
        self.assertEqual((f.opcode, f.payload), (OP_TEXT, b"early"))
        f = ws.recv_frame()
        self.assertEqual((f.opcode, f.payload), (OP_PONG, b"p1"))
        f = ws.recv_message()
        self.assertEqual((f.opcode, f.payload), (OP_BINARY, b"\xff\x00"))

    def test_request_sent_byte_by_byte(self):
        srv = self.srv()
        ws = self.tcp(srv)
        req, key = rawws.build_request()
        for i in range(len(req)):
            ws.send(req[i:i + 1])
            if i % 16 == 0:
                time.sleep(0.002)
        rawws.check_101(ws.read_http_response(), key)
        self.echo_roundtrip(ws, OP_TEXT, b"slow")

    def test_exactly_64_header_lines_accepted(self):
        srv = self.srv()
        extra = [("X-H%d" % i, "v") for i in range(59)]  # 5 + 59 = 64
        ws = self.tcp(srv)
        ws.handshake(extra_headers=extra)
        self.echo_roundtrip(ws, OP_TEXT, b"64")

    def test_head_of_exactly_8192_bytes_accepted(self):
        srv = self.srv()
        req, key = rawws.build_request(extra_headers=[("X-Pad", "")])
        pad = 8192 - len(req)
        req, key = rawws.build_request(extra_headers=[("X-Pad", "a" * pad)])
        self.assertEqual(len(req), 8192)
        ws = self.tcp(srv)
        ws.send(req)
        rawws.check_101(ws.read_http_response(), key)
        self.echo_roundtrip(ws, OP_TEXT, b"8192")

    def test_path_option_accepts_that_path(self):
        srv = self.srv("--path", "/chat")
        for path in ("/chat", "/chat?room=1"):
            with self.subTest(path=path):
                ws = self.open(srv, path=path)
                self.echo_roundtrip(ws, OP_TEXT, b"ok")


class TestHandshakeReject(RawCase):

    def test_post_is_405(self):
        srv = self.srv()
        req, _ = rawws.build_request(method="POST")
        self.reject(srv, req, 405, Allow="GET")

    def test_put_is_405(self):
        srv = self.srv()
        req, _ = rawws.build_request(method="PUT", extra_headers=[
            ("Content-Length", "0")])
        self.reject(srv, req, 405, Allow="GET")

    def test_http_1_0_is_400(self):
        srv = self.srv()
        req, _ = rawws.build_request(http_version="HTTP/1.0")
        self.reject(srv, req, 400)

    def test_no_host_is_400(self):
        srv = self.srv()
        req, _ = rawws.build_request(omit=("host",))
        self.reject(srv, req, 400)

    def test_upgrade_without_connection_upgrade_is_400(self):
        srv = self.srv()
        for conn in (None, "keep-alive", "close"):
            with self.subTest(connection=conn):
                req, _ = rawws.build_request(connection=conn)
                self.reject(srv, req, 400)

    def test_version_8_is_426(self):
        srv = self.srv()
        req, _ = rawws.build_request(version="8")
        self.reject(srv, req, 426, Sec_WebSocket_Version="13")

    def test_version_missing_is_426(self):
        srv = self.srv()
        req, _ = rawws.build_request(version=None)
        self.reject(srv, req, 426, Sec_WebSocket_Version="13")

    def test_version_14_is_426(self):
        srv = self.srv()
        req, _ = rawws.build_request(version="14")
        self.reject(srv, req, 426, Sec_WebSocket_Version="13")

    def test_bad_keys_are_400(self):
        srv = self.srv()
        keys = {
            "missing": None,
            "empty": "",
            "too short (22 chars)": "dGhlIHNhbXBsZSBub25jZQ",
            "too short (20 chars)": "AAAAAAAAAAAAAAAAAAAA",
            "too long (28 chars)": "AAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            "bad character": "dGhlIHNhbXBsZSBub25j*Q==",
            "space inside": "dGhlIHNhbXBsZ SBub25jZQ==",
            "18 bytes, 24 chars": "AAAAAAAAAAAAAAAAAAAAAAAA",
            "17 bytes": "AAAAAAAAAAAAAAAAAAAAAAA=",
        }
        for what, key in keys.items():
            with self.subTest(key=what):
                if key is None:
                    req, _ = rawws.build_request(omit=("sec-websocket-key",))
                else:
                    req, _ = rawws.build_request(key=key)
                self.reject(srv, req, 400)

    def test_duplicate_host_is_400(self):
        # RFC 9112 3.2: a server MUST answer 400 to a request with more
        # than one Host header line.
        srv = self.srv()
        req, _ = rawws.build_request(extra_headers=[("Host", "other")])
        self.reject(srv, req, 400)

    def test_duplicate_key_is_400(self):
        # RFC 6455 11.3.1: Sec-WebSocket-Key MUST NOT appear more than
        # once; with two keys there is no single right Accept value.
        srv = self.srv()
        req, _ = rawws.build_request(key=RFC_KEY, extra_headers=[
            ("Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAAAA==")])
        self.reject(srv, req, 400)

    def test_duplicate_version_is_rejected(self):
        # RFC 6455 11.3.5: Sec-WebSocket-Version MUST NOT appear more
        # than once. 400 (malformed) or 426 (no single version 13) both
        # refuse it; 101 does not.
        srv = self.srv()
        req, _ = rawws.build_request(version="13", extra_headers=[
            ("Sec-WebSocket-Version", "8")])
        ws, resp = self.send_request(srv, req)
        self.assertIn(resp.status, (400, 426), resp.raw)
        self.assert_rejected(ws, resp, resp.status)

    def test_head_over_8192_is_431(self):
        srv = self.srv()
        req, _ = rawws.build_request(extra_headers=[("X-Pad", "a" * 9000)])
        self.reject(srv, req, 431)

    def test_65_header_lines_is_431(self):
        srv = self.srv()
        extra = [("X-H%d" % i, "v") for i in range(60)]  # 5 + 60 = 65
        req, _ = rawws.build_request(extra_headers=extra)
        self.reject(srv, req, 431)

    def test_target_over_8192_is_414(self):
        srv = self.srv()
        req, _ = rawws.build_request(path="/" + "a" * 9000)
        self.reject(srv, req, 414)

    def test_garbage_is_400(self):
        srv = self.srv()
        samples = {
            "text": b"this is not http at all\r\n\r\n",
            "bad request line": b"GET\r\n\r\n",
            "TLS ClientHello": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"
                               + bytes(range(32)),
            "NUL in method": b"G\x00T / HTTP/1.1\r\nHost: x\r\n\r\n",
        }
        for what, data in samples.items():
            with self.subTest(sample=what):
                t0 = time.monotonic()
                self.reject(srv, data, 400)
                self.assertLess(time.monotonic() - t0, 3.0,
                                "400 must not wait for a timeout")

    def test_plain_get_is_426(self):
        srv = self.srv()
        self.reject(srv, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 426,
                    Sec_WebSocket_Version="13")

    def test_path_option_other_path_is_404(self):
        srv = self.srv("--path", "/chat")
        for path in ("/other", "/", "/chatroom", "/chat/x"):
            with self.subTest(path=path):
                req, _ = rawws.build_request(path=path)
                self.reject(srv, req, 404)

    def test_max_connections_503(self):
        srv = self.srv("--max-connections", "2")
        a = self.open(srv)
        self.open(srv)
        c = self.tcp(srv)
        # The server may answer as soon as it accepts, or after reading the
        # request: wait a little before sending so both designs work.
        c.sock.settimeout(0.3)
        try:
            first = c.sock.recv(65536)
            c.buf += first
            if not first:
                c.eof = True
        except socket.timeout:
            req, _ = rawws.build_request()
            c.send(req)
        resp = c.read_http_response()
        self.assert_rejected(c, resp, 503)
        # A slot frees up once a session has closed.
        a.send_close(1000)
        a.expect_close(1000)
        deadline = time.monotonic() + 3.0
        while True:
            d = self.tcp(srv)
            resp = d.handshake(expect_status=None)
            if resp.status == 101 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        rawws.check_101(resp, d.key)
        self.echo_roundtrip(d, OP_TEXT, b"in")

    def test_handshake_timeout_partial_request_is_408(self):
        srv = self.srv("--handshake-timeout", "500")
        ws = self.tcp(srv, timeout=5.0)
        t0 = time.monotonic()
        ws.send(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        resp = ws.read_http_response()
        took = time.monotonic() - t0
        self.assert_rejected(ws, resp, 408)
        self.assertGreater(took, 0.35, "408 came too early")
        self.assertLess(took, 3.0, "408 came too late")

    def test_handshake_timeout_silent_client_is_408(self):
        srv = self.srv("--handshake-timeout", "500")
        ws = self.tcp(srv, timeout=5.0)
        t0 = time.monotonic()
        resp = ws.read_http_response()
        took = time.monotonic() - t0
        self.assert_rejected(ws, resp, 408)
        self.assertGreater(took, 0.35)
        self.assertLess(took, 3.0)

    def test_handshake_timeout_not_reset_by_trickle(self):
        # A client that keeps sending a byte at a time never completes its
        # head; the deadline runs from accept, not from the last byte.
        srv = self.srv("--handshake-timeout", "500")
        ws = self.tcp(srv, timeout=5.0)
        t0 = time.monotonic()
        trickle = b"GET / HTTP/1.1\r\nX-Slow: " + b"a" * 200
        got = b""
        for i in range(len(trickle)):
            try:
                ws.send(trickle[i:i + 1])
            except OSError:
                break
            ws.sock.settimeout(0.05)
            try:
                got = ws.sock.recv(65536)
            except socket.timeout:
                continue
            except ConnectionResetError:
                break
            break
        ws.buf = got
        if not got:
            ws.eof = True
        took = time.monotonic() - t0
        self.assertLess(took, 3.0, "the trickling client was never timed "
                        "out (%.1fs)" % took)
        resp = ws.read_http_response()
        self.assert_rejected(ws, resp, 408)

    def test_max_connections_counts_handshaking(self):
        srv = self.srv("--max-connections", "2")
        # One connection with half a request head, one with a single
        # byte: both count against the limit. (One that has sent nothing
        # is still with the kernel, TCP_DEFER_ACCEPT, and counts once it
        # is handed over.)
        half = self.tcp(srv)
        byte = self.tcp(srv)
        half.send(b"GET / HTTP/1.1\r\n")
        byte.send(b"G")
        time.sleep(0.2)
        c = self.tcp(srv)
        c.sock.settimeout(0.3)
        try:
            first = c.sock.recv(65536)
            c.buf += first
            if not first:
                c.eof = True
        except socket.timeout:
            req, _ = rawws.build_request()
            c.send(req)
        resp = c.read_http_response()
        self.assert_rejected(c, resp, 503)

    def test_version_with_surrounding_whitespace(self):
        srv = self.srv()
        ws = self.tcp(srv)
        req, key = rawws.build_request(version="13")
        req = req.replace(b"Sec-WebSocket-Version: 13",
                          b"Sec-WebSocket-Version: \t 13 \t")
        ws.send(req)
        rawws.check_101(ws.read_http_response(), key)
        self.echo_roundtrip(ws, OP_TEXT, b"ows")

    def test_close_frame_and_fin_leave_in_one_segment(self):
        # Once both close frames are exchanged the server sends its last
        # bytes with MSG_MORE and closes: the FIN rides in the segment
        # that carries the close frame, not in a segment of its own.
        # Twenty clients close together, so both the batched send and the
        # single-session send are exercised. Watched on the loopback
        # interface, which needs CAP_NET_RAW (CI runs as root).
        try:
            sniff = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM,
                                  socket.htons(0x0800))
        except PermissionError:
            self.skipTest("watching loopback needs CAP_NET_RAW")
        self.addCleanup(sniff.close)
        sniff.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        sniff.bind(("lo", 0))
        srv = self.srv()
        clients = [self.open(srv) for _ in range(20)]
        ports = {ws.sock.getsockname()[1] for ws in clients}
        for ws in clients:
            ws.send_close(1000)
        for ws in clients:
            ws.expect_close(1000)
        time.sleep(0.2)
        sniff.setblocking(False)
        close_segments = {}  # client port -> TCP flags of each close segment
        bare_fins = []
        while True:
            try:
                pkt = sniff.recv(65536)
            except BlockingIOError:
                break
            if len(pkt) < 20 or pkt[9] != socket.IPPROTO_TCP:
                continue
            ihl = (pkt[0] & 15) * 4
            total = struct.unpack("!H", pkt[2:4])[0]
            sport, dport = struct.unpack("!HH", pkt[ihl:ihl + 4])
            if sport != srv.port or dport not in ports:
                continue
            doff = (pkt[ihl + 12] >> 4) * 4
            flags = pkt[ihl + 13]
            payload = pkt[ihl + doff:total]
            if payload[:1] == b"\x88":
                close_segments.setdefault(dport, []).append(flags)
            elif flags & 1:
                bare_fins.append(dport)
        self.assertEqual(set(close_segments), ports,
                         "close frames seen for %d of %d clients"
                         % (len(close_segments), len(ports)))
        for dport, seen in close_segments.items():
            self.assertTrue(all(f & 1 for f in seen),
                            "close frame to port %d without FIN: flags %r"
                            % (dport, seen))
        self.assertEqual(bare_fins, [], "FINs sent in segments of their own")

    def test_handshake_timeout_spares_open_sessions(self):
        srv = self.srv("--handshake-timeout", "300")
        ws = self.open(srv)
        ws.nothing_for(1.0)
        self.echo_roundtrip(ws, OP_TEXT, b"alive")

    def test_client_gone_mid_handshake(self):
        srv = self.srv("--max-connections", "1")
        a = self.tcp(srv)
        a.send(b"GET / HTTP/1.1\r\nHost: x\r\nUpgr")
        a.close()
        b = self.tcp(srv)
        b.send(b"GET / HTTP/1.1\r\n")
        b.abort()
        deadline = time.monotonic() + 3.0
        while True:
            c = self.tcp(srv)
            resp = c.handshake(expect_status=None)
            if resp.status == 101 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        rawws.check_101(resp, c.key)
        self.echo_roundtrip(c, OP_TEXT, b"x")


# ---------------------------------------------------------------------------
# Data frames: echo
# ---------------------------------------------------------------------------

class TestEcho(RawCase):

    def test_sizes_exact_headers(self):
        srv = self.srv()
        ws = self.open(srv)
        for opcode in (OP_TEXT, OP_BINARY):
            for n, header_tail in ((0, b"\x00"), (125, b"\x7d"),
                                   (126, b"\x7e\x00\x7e"),
                                   (65535, b"\x7e\xff\xff"),
                                   (65536, b"\x7f" + struct.pack("!Q",
                                                                 65536))):
                with self.subTest(opcode=opcode, n=n):
                    payload = (b"abcdefghij" * (n // 10 + 1))[:n]
                    if opcode == OP_BINARY:
                        payload = bytes((i * 7) & 0xFF for i in range(n))
                    f = self.echo_roundtrip(ws, opcode, payload)
                    self.assertEqual(f.raw_header,
                                     bytes([0x80 | opcode]) + header_tail)

    def test_utf8_text_echoed_unchanged(self):
        srv = self.srv()
        ws = self.open(srv)
        text = "héllo wörld € 𝄞 日本語 \x00 end".encode("utf-8")
        self.echo_roundtrip(ws, OP_TEXT, text)

    def test_max_message_limit_inclusive(self):
        srv = self.srv("--max-message", "100")
        ws = self.open(srv)
        self.echo_roundtrip(ws, OP_BINARY, b"x" * 100)
        ws.send_binary(b"x" * 101)
        ws.expect_close(TOO_BIG)

    def test_fragmented_message_echoed_as_one_frame(self):
        srv = self.srv()
        ws = self.open(srv)
        ws.send(encode_frame(OP_TEXT, b"Hel", fin=False) +
                encode_frame(OP_CONT, b"lo, ", fin=False) +
                encode_frame(OP_CONT, b"", fin=False) +
                encode_frame(OP_CONT, b"world", fin=True))
        f = ws.recv_message()
        self.assertEqual((f.opcode, f.payload), (OP_TEXT, b"Hello, world"))

    def test_fragmented_within_limit(self):
        srv = self.srv()
        ws = self.open(srv)
        ws.send(encode_frame(OP_BINARY, b"\x00" * 30000, fin=False) +
                encode_frame(OP_CONT, b"\x01" * 35536, fin=True))
        f = ws.recv_message()
        self.assertEqual(f.opcode, OP_BINARY)
        self.assertEqual(f.payload, b"\x00" * 30000 + b"\x01" * 35536)

    def test_many_one_byte_fragments(self):
        srv = self.srv()
        ws = self.open(srv)
        body = bytes(ord("a") + i % 26 for i in range(3000))
        frames = [encode_frame(OP_TEXT, body[:1], fin=False)]
        frames += [encode_frame(OP_CONT, body[i:i + 1], fin=False)
                   for i in range(1, len(body) - 1)]
        frames.append(encode_frame(OP_CONT, body[-1:], fin=True))
        ws.send(b"".join(frames))
        f = ws.recv_message()
        self.assertEqual((f.opcode, f.payload), (OP_TEXT, body))

    def test_utf8_split_across_fragments(self):
        srv = self.srv()
        ws = self.open(srv)
        clef = "𝄞".encode("utf-8")  # 4 bytes
        ws.send(encode_frame(OP_TEXT, b"a" + clef[:1], fin=False) +
                encode_frame(OP_CONT, clef[1:2], fin=False) +
                encode_frame(OP_CONT, clef[2:3], fin=False) +
                encode_frame(OP_CONT, clef[3:] + b"b", fin=True))
        f = ws.recv_message()
        self.assertEqual((f.opcode, f.payload), (OP_TEXT, b"a" + clef + b"b"))

    def test_frame_sent_byte_by_byte(self):
        srv = self.srv()
        ws = self.open(srv)
        frame = encode_frame(OP_TEXT, "€uro sign".encode(), length_bytes=2)
        for i in range(len(frame)):
            ws.send(frame[i:i + 1])
            time.sleep(0.003)
        f = ws.recv_message()
        self.assertEqual(f.payload, "€uro sign".encode())

    def test_many_frames_in_one_write_in_order(self):
        srv = self.srv()
        ws = self.open(srv)
        msgs = [("m%d" % i).encode() * (i % 50 + 1) for i in range(300)]
        ws.send(b"".join(encode_frame(OP_TEXT if i % 2 else OP_BINARY, m)
                         for i, m in enumerate(msgs)))
        for i, m in enumerate(msgs):
            f = ws.recv_message()
            self.assertEqual((f.opcode, f.payload),
                             (OP_TEXT if i % 2 else OP_BINARY, m),
                             "message %d" % i)

    def test_zero_mask_key(self):
        srv = self.srv()
        ws = self.open(srv)
        ws.send_text(b"zero mask", mask_key=b"\x00\x00\x00\x00")
        self.assertEqual(ws.recv_message().payload, b"zero mask")

    def test_big_message_with_raised_limit(self):
        srv = self.srv("--max-message", str(1 << 20))
        ws = self.open(srv)
        payload = os.urandom(1 << 20)
        self.echo_roundtrip(ws, OP_BINARY, payload)


# ---------------------------------------------------------------------------
# Control frames
# ---------------------------------------------------------------------------

class TestControl(RawCase):

    def test_ping_pong_payloads(self):
        srv = self.srv()
        ws = self.open(srv)
        for payload in (b"", b"x", bytes(range(125)), os.urandom(125)):
            with self.subTest(n=len(payload)):
                ws.send_frame(OP_PING, payload)
                f = ws.recv_frame()
                self.assertEqual(f.opcode, OP_PONG, f)
                self.assertTrue(f.fin)
                self.assertEqual(f.payload, payload)

    def test_unsolicited_pong_gets_nothing(self):
        srv = self.srv()
        ws = self.open(srv)
        ws.send_frame(OP_PONG, b"unsolicited")
        ws.send_frame(OP_PONG, b"")
        ws.nothing_for(0.4)
        self.echo_roundtrip(ws, OP_TEXT, b"after pong")

    def test_ping_between_fragments_answered_first(self):
        srv = self.srv()
        ws = self.open(srv)
        ws.send(encode_frame(OP_TEXT, b"frag", fin=False) +
                encode_frame(OP_PING, b"mid"))
        # The pong must come now, before the message is complete.
        f = ws.recv_frame(timeout=3.0)
        self.assertEqual((f.opcode, f.payload), (OP_PONG, b"mid"))
        ws.send(encode_frame(OP_PONG, b"ignored") +
                encode_frame(OP_CONT, b"ment", fin=True))
        f = ws.recv_message()
        self.assertEqual((f.opcode, f.payload), (OP_TEXT, b"fragment"))

    def test_ping_between_fragments_same_packet(self):
        srv = self.srv()
        ws = self.open(srv)
        ws.send(encode_frame(OP_BINARY, b"\x01", fin=False) +
                encode_frame(OP_PING, b"a") +
                encode_frame(OP_CONT, b"\x02", fin=False) +
                encode_frame(OP_PING, b"b") +
                encode_frame(OP_CONT, b"\x03", fin=True))
        got = [ws.recv_frame() for _ in range(3)]
        self.assertEqual([(f.opcode, f.payload) for f in got],
                         [(OP_PONG, b"a"), (OP_PONG, b"b"),
                          (OP_BINARY, b"\x01\x02\x03")])

    def test_server_pings_with_ping_interval(self):
        srv = self.srv("--ping-interval", "300")
        ws = self.open(srv)
        t0 = time.monotonic()
        f = ws.recv_frame(timeout=3.0)
        self.assertEqual(f.opcode, OP_PING, f)
        self.assertGreater(time.monotonic() - t0, 0.2)
        ws.send_frame(OP_PONG, f.payload)
        self.echo_roundtrip(ws, OP_TEXT, b"after ping")

    def test_pongs_keep_session_from_idle_timeout(self):
        srv = self.srv("--ping-interval", "200", "--idle-timeout", "700")
        ws = self.open(srv)
        end = time.monotonic() + 2.0
        pings = 0
        while time.monotonic() < end:
            try:
                f = ws.recv_frame(timeout=max(0.05, end - time.monotonic()))
            except socket.timeout:
                break
            self.assertEqual(f.opcode, OP_PING,
                             "a session answering pings was closed: %r" % f)
            pings += 1
            ws.send_frame(OP_PONG, f.payload)
        self.assertGreaterEqual(pings, 2)
        self.echo_roundtrip(ws, OP_TEXT, b"still here")


# ---------------------------------------------------------------------------
# Protocol errors: the exact close code, then EOF
# ---------------------------------------------------------------------------

class TestFrameErrors(RawCase):

    def test_unmasked_frame_1002(self):
        srv = self.srv()
        for op in (OP_TEXT, OP_BINARY, OP_PING, OP_CLOSE):
            with self.subTest(opcode=op):
                payload = rawws.close_payload(1000) if op == OP_CLOSE \
                    else b"hi"
                self.assert_fails(srv, encode_frame(op, payload, mask=False),
                                  PROTOCOL_ERROR)

    def test_rsv_bits_1002(self):
        srv = self.srv()
        for rsv in (4, 2, 1, 7):
            for op in (OP_TEXT, OP_PING):
                with self.subTest(rsv=rsv, opcode=op):
                    self.assert_fails(srv, encode_frame(op, b"x", rsv=rsv),
                                      PROTOCOL_ERROR)

    def test_rsv1_on_continuation_1002(self):
        srv = self.srv()
        self.assert_fails(srv, encode_frame(OP_TEXT, b"a", fin=False) +
                          encode_frame(OP_CONT, b"b", rsv=4),
                          PROTOCOL_ERROR)

    def test_reserved_opcodes_1002(self):
        srv = self.srv()
        for op in list(range(3, 8)) + list(range(11, 16)):
            with self.subTest(opcode=op):
                self.assert_fails(srv, encode_frame(op, b"x"),
                                  PROTOCOL_ERROR)

    def test_fragmented_control_1002(self):
        srv = self.srv()
        for op, payload in ((OP_PING, b"p"), (OP_PONG, b"p"),
                            (OP_CLOSE, rawws.close_payload(1000))):
            with self.subTest(opcode=op):
                self.assert_fails(srv, encode_frame(op, payload, fin=False),
                                  PROTOCOL_ERROR)

    def test_control_payload_over_125_1002(self):
        srv = self.srv()
        for op, payload in ((OP_PING, b"p" * 126), (OP_PONG, b"p" * 126),
                            (OP_CLOSE, rawws.close_payload(1000, b"r" * 124))):
            with self.subTest(opcode=op):
                self.assert_fails(srv, encode_frame(op, payload),
                                  PROTOCOL_ERROR)

    def test_control_length_over_125_from_header_1002(self):
        # Only the header: the server must not wait for 1000 bytes.
        srv = self.srv()
        self.assert_fails(srv, encode_frame(OP_PING, b"", length=1000),
                          PROTOCOL_ERROR)

    def test_continuation_without_start_1002(self):
        srv = self.srv()
        for fin in (True, False):
            with self.subTest(fin=fin):
                self.assert_fails(srv, encode_frame(OP_CONT, b"x", fin=fin),
                                  PROTOCOL_ERROR)

    def test_continuation_after_complete_message_1002(self):
        srv = self.srv()
        ws = self.open(srv)
        ws.send(encode_frame(OP_TEXT, b"done") + encode_frame(OP_CONT, b"x"))
        self.assertEqual(ws.recv_message().payload, b"done")
        ws.expect_close(PROTOCOL_ERROR)

    def test_new_message_during_fragmented_one_1002(self):
        srv = self.srv()
        for first in (OP_TEXT, OP_BINARY):
            for second in (OP_TEXT, OP_BINARY):
                with self.subTest(first=first, second=second):
                    self.assert_fails(
                        srv, encode_frame(first, b"a", fin=False) +
                        encode_frame(second, b"b"), PROTOCOL_ERROR)

    def test_64bit_length_top_bit_1002(self):
        srv = self.srv()
        head = bytes([0x82, 0x80 | 127]) + struct.pack("!Q", 1 << 63) + \
            b"\x01\x02\x03\x04"
        self.assert_fails(srv, head, (PROTOCOL_ERROR, TOO_BIG))

    def test_close_one_byte_payload_1002(self):
        srv = self.srv()
        self.assert_fails(srv, encode_frame(OP_CLOSE, b"\x03"),
                          PROTOCOL_ERROR)

    def test_invalid_close_codes_1002(self):
        srv = self.srv()
        for code in (0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999,
                     5000, 65535):
            with self.subTest(code=code):
                self.assert_fails(
                    srv, encode_frame(OP_CLOSE, struct.pack("!H", code)),
                    PROTOCOL_ERROR)

    def test_close_reason_not_utf8_1007(self):
        srv = self.srv()
        for reason in (b"\xff", b"ok\xc3", b"\xed\xa0\x80", b"\xc0\xaf"):
            with self.subTest(reason=reason):
                self.assert_fails(
                    srv, encode_frame(OP_CLOSE, rawws.close_payload(1000,
                                                                    reason)),
                    BAD_DATA)


class TestUtf8(RawCase):

    BAD = {
        "0xff": b"\xff",
        "0xfe": b"ab\xfe",
        "lone continuation": b"\x80",
        "overlong slash": b"\xc0\xaf",
        "overlong 3-byte": b"\xe0\x80\xaf",
        "surrogate": b"\xed\xa0\x80",
        "above U+10FFFF": b"\xf4\x90\x80\x80",
        "5-byte lead": b"\xf8\x88\x80\x80\x80",
        "truncated at end": b"ok\xe2\x82",
        "bad continuation": b"\xe2\x28\xa1",
    }

    def test_invalid_text_1007(self):
        srv = self.srv()
        for what, data in self.BAD.items():
            with self.subTest(case=what):
                self.assert_fails(srv, encode_frame(OP_TEXT, data),
                                  BAD_DATA)

    def test_invalid_in_later_fragment_1007(self):
        srv = self.srv()
        self.assert_fails(srv, encode_frame(OP_TEXT, b"good", fin=False) +
                          encode_frame(OP_CONT, b"\xe2\x82", fin=False) +
                          encode_frame(OP_CONT, b"(", fin=True), BAD_DATA)

    def test_truncated_sequence_at_message_end_across_fragments_1007(self):
        srv = self.srv()
        self.assert_fails(srv, encode_frame(OP_TEXT, b"a\xf0\x9d",
                                            fin=False) +
                          encode_frame(OP_CONT, b"\x84", fin=True), BAD_DATA)

    def test_binary_is_not_checked(self):
        srv = self.srv()
        ws = self.open(srv)
        self.echo_roundtrip(ws, OP_BINARY, b"\xff\xfe\xc0\xaf\xed\xa0\x80")

    def test_fail_fast_inside_incomplete_frame(self):
        srv = self.srv()
        ws = self.open(srv)
        key = b"\x11\x22\x33\x44"
        payload = b"0123456789\xff" + b"a" * 9          # 20 bytes
        head = bytes([0x81, 0x80 | 126]) + struct.pack("!H", 1000) + key
        ws.send(head + rawws.mask_bytes(payload, key))
        # 980 bytes of the frame are never sent.
        ws.expect_close(BAD_DATA, timeout=3.0)

    def test_fail_fast_inside_incomplete_message(self):
        srv = self.srv()
        ws = self.open(srv)
        ws.send(encode_frame(OP_TEXT, b"abc\xc3\x28", fin=False))
        ws.expect_close(BAD_DATA, timeout=3.0)

    def test_fail_fast_byte_by_byte(self):
        srv = self.srv()
        ws = self.open(srv)
        key = b"\x01\x02\x03\x04"
        ws.send(bytes([0x81, 0x80 | 126]) + struct.pack("!H", 500) + key)
        good = rawws.mask_bytes(b"abcd" * 2, key)
        ws.send(good)
        ws.nothing_for(0.2)
        ws.send(rawws.mask_bytes(b"\xff", key))  # offset 8 -> key[0]
        ws.expect_close(BAD_DATA, timeout=3.0)


class TestTooBig(RawCase):

    def test_16mib_header_alone_1009(self):
        srv = self.srv()
        for op in (OP_BINARY, OP_TEXT):
            with self.subTest(opcode=op):
                ws = self.open(srv)
                ws.send(bytes([0x80 | op, 0x80 | 127]) +
                        struct.pack("!Q", 16 << 20) + b"\x00\x00\x00\x00")
                ws.expect_close(TOO_BIG, timeout=3.0)

    def test_65537_header_alone_1009(self):
        srv = self.srv()
        self.assert_fails(srv, encode_frame(OP_BINARY, b"", length=65537),
                          TOO_BIG, timeout=3.0)

    def test_fragments_adding_up_over_limit_1009(self):
        srv = self.srv()
        ws = self.open(srv)
        ws.send(encode_frame(OP_BINARY, b"a" * 40000, fin=False))
        ws.nothing_for(0.2)
        ws.send(encode_frame(OP_CONT, b"", length=40000)[:8])  # header only
        ws.expect_close(TOO_BIG, timeout=3.0)

    def test_limit_from_option(self):
        srv = self.srv("--max-message", "1000")
        ws = self.open(srv)
        self.echo_roundtrip(ws, OP_TEXT, b"t" * 1000)
        ws.send(encode_frame(OP_TEXT, b"", length=1001)[:8])
        ws.expect_close(TOO_BIG, timeout=3.0)


# ---------------------------------------------------------------------------
# Ordering: what came before a bad frame is echoed first
# ---------------------------------------------------------------------------

class TestOrdering(RawCase):

    def test_valid_messages_echoed_before_1002(self):
        srv = self.srv()
        ws = self.open(srv)
        ws.send(encode_frame(OP_TEXT, b"one") +
                encode_frame(OP_BINARY, b"two") +
                encode_frame(OP_TEXT, b"thr", fin=False) +
                encode_frame(OP_CONT, b"ee", fin=True) +
                encode_frame(OP_PING, b"p") +
                encode_frame(OP_TEXT, b"bad", mask=False))
        got = []
        for _ in range(4):
            f = ws.recv_frame()
            got.append((f.opcode, f.payload))
        self.assertEqual(got, [(OP_TEXT, b"one"), (OP_BINARY, b"two"),
                               (OP_TEXT, b"three"), (OP_PONG, b"p")])
        ws.expect_close(PROTOCOL_ERROR)

    def test_valid_messages_echoed_before_1007(self):
        srv = self.srv()
        ws = self.open(srv)
        msgs = [("msg %d" % i).encode() for i in range(50)]
        ws.send(b"".join(encode_frame(OP_TEXT, m) for m in msgs) +
                encode_frame(OP_TEXT, b"\xc3\x28"))
        for m in msgs:
            self.assertEqual(ws.recv_message().payload, m)
        ws.expect_close(BAD_DATA)

    def test_valid_messages_echoed_before_1009(self):
        srv = self.srv()
        ws = self.open(srv)
        ws.send(encode_frame(OP_BINARY, b"x" * 60000) +
                encode_frame(OP_TEXT, b"y") +
                encode_frame(OP_BINARY, b"", length=1 << 24)[:14])
        self.assertEqual(ws.recv_message().payload, b"x" * 60000)
        self.assertEqual(ws.recv_message().payload, b"y")
        ws.expect_close(TOO_BIG)

    def test_nothing_echoed_after_close(self):
        srv = self.srv()
        ws = self.open(srv)
        ws.send(encode_frame(OP_TEXT, b"before") +
                rawws.encode_frame(OP_CLOSE, rawws.close_payload(1000)) +
                encode_frame(OP_TEXT, b"after"))
        self.assertEqual(ws.recv_message().payload, b"before")
        ws.expect_close(1000)


# ---------------------------------------------------------------------------
# Closing handshake
# ---------------------------------------------------------------------------

class TestClose(RawCase):

    VALID = (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012,
             1013, 1014, 3000, 3999, 4000, 4999)

    def test_valid_codes_echoed(self):
        srv = self.srv()
        for code in self.VALID:
            with self.subTest(code=code):
                ws = self.open(srv)
                ws.send_close(code, b"bye")
                ws.expect_close(code)

    def test_empty_close_gets_empty_close(self):
        srv = self.srv()
        ws = self.open(srv)
        ws.send_close()
        ws.expect_close(None)

    def test_close_with_utf8_reason_of_123_bytes(self):
        srv = self.srv()
        ws = self.open(srv)
        reason = ("é" * 61 + "x").encode()
        self.assertEqual(len(reason), 123)
        ws.send_close(1000, reason)
        ws.expect_close(1000)

    def test_close_during_fragmented_message(self):
        srv = self.srv()
        ws = self.open(srv)
        ws.send(encode_frame(OP_TEXT, b"half", fin=False))
        ws.send_close(1000)
        ws.expect_close(1000)

    def test_idle_timeout_1001(self):
        srv = self.srv("--idle-timeout", "500")
        ws = self.open(srv)
        t0 = time.monotonic()
        ws.expect_close(GOING_AWAY, timeout=5.0, reply=True)
        took = time.monotonic() - t0
        self.assertGreater(took, 0.35, "idle close came too early")
        self.assertLess(took, 3.0, "idle close came too late")

    def test_idle_timeout_counts_from_last_frame(self):
        srv = self.srv("--idle-timeout", "600")
        ws = self.open(srv)
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            self.echo_roundtrip(ws, OP_TEXT, b"tick")
            time.sleep(0.2)
        t0 = time.monotonic()
        ws.expect_close(GOING_AWAY, timeout=5.0, reply=True)
        self.assertGreater(time.monotonic() - t0, 0.3)

    def test_no_echo_after_server_close(self):
        # RFC 6455 5.5.1: after sending a close frame an endpoint sends no
        # more data frames. Data arriving before the client's close reply
        # is not echoed.
        srv = self.srv("--idle-timeout", "300")
        ws = self.open(srv)
        f = ws.recv_frame(timeout=5.0)
        rawws.check_close_frame(f, GOING_AWAY)
        ws.send(encode_frame(OP_TEXT, b"late") +
                encode_frame(OP_BINARY, b"later"))
        time.sleep(0.1)
        try:
            ws.send_close(GOING_AWAY)
        except OSError:
            pass
        ws.expect_eof()

    def test_close_timeout_when_peer_never_answers(self):
        srv = self.srv("--idle-timeout", "300", "--close-timeout", "500")
        ws = self.open(srv)
        f = ws.recv_frame(timeout=5.0)
        rawws.check_close_frame(f, GOING_AWAY)
        # We neither answer nor close: the server must give up and close.
        ws.expect_eof(timeout=3.0)

    def test_sigterm_closes_sessions_with_1001(self):
        srv = self.srv()
        a = self.open(srv)
        b = self.open(srv)
        pending = self.tcp(srv)
        pending.send(b"GET / HTTP/1.1\r\n")
        time.sleep(0.1)
        srv.signal()
        for ws in (a, b):
            ws.expect_close(GOING_AWAY, timeout=3.0, reply=True)
        rc, took = srv.wait_exit(5.0)
        self.assertEqual(rc, 0, "exit status after SIGTERM; stderr:\n%s"
                         % srv.stderr())
        self.assertLess(took, 3.0)
        pending.sock.settimeout(1.0)
        try:
            while pending.sock.recv(65536):
                pass
        except (ConnectionResetError, socket.timeout):
            pass


    def test_sigint_closes_sessions_with_1001(self):
        srv = self.srv()
        ws = self.open(srv)
        self.echo_roundtrip(ws, OP_TEXT, b"before")
        srv.signal(signal.SIGINT)
        ws.expect_close(GOING_AWAY, timeout=3.0, reply=True)
        rc, took = srv.wait_exit(5.0)
        self.assertEqual(rc, 0, "exit status after SIGINT; stderr:\n%s"
                         % srv.stderr())
        self.assertLess(took, 3.0)


class TestSlowConsumer(RawCase):

    def test_reader_that_stops_reading_gets_1008(self):
        # 300 echoes of 60000 bytes cannot all sit in socket buffers: the
        # server's queue passes --max-queued and the session must be
        # closed with 1008 (after the echoes already queued), while other
        # clients keep being served.
        srv = self.srv("--max-queued", "65536")
        slow = self.open(srv)
        slow.sock.settimeout(10.0)
        payload = bytes(range(256)) * 234 + b"end"
        frame = encode_frame(OP_BINARY, payload)
        done = threading.Event()

        def sender():
            try:
                for _ in range(300):
                    slow.sock.sendall(frame)
            except OSError:
                pass  # the server may stop reading once it has closed
            done.set()

        t = threading.Thread(target=sender, daemon=True)
        t.start()
        done.wait(5.0)
        other = self.open(srv)
        self.echo_roundtrip(other, OP_TEXT, b"not stalled")
        echoes = 0
        while True:
            f = slow.recv_frame(timeout=5.0)
            if f.opcode == OP_CLOSE:
                break
            self.assertEqual((f.opcode, f.fin), (OP_BINARY, True), f)
            self.assertEqual(f.payload, payload, "echo %d corrupted" % echoes)
            echoes += 1
        rawws.check_close_frame(f, 1008)
        self.assertLess(echoes, 300, "nothing was dropped: the queue limit "
                        "was never hit")
        slow.send_close(1008)
        slow.expect_eof()
        t.join(5.0)
        self.echo_roundtrip(other, OP_TEXT, b"still fine")


# ---------------------------------------------------------------------------
# Robustness: clients that vanish
# ---------------------------------------------------------------------------

class TestVanishingClients(RawCase):

    def _others_still_served(self, srv):
        ws = self.open(srv)
        self.echo_roundtrip(ws, OP_TEXT, b"still serving")
        ws.send_close(1000)
        ws.expect_close(1000)

    def test_partial_frame_then_fin(self):
        srv = self.srv()
        keep = self.open(srv)
        for data in (b"\x81", b"\x81\xfe\x01", encode_frame(OP_TEXT, b"x" * 300)[:50],
                     encode_frame(OP_TEXT, b"a", fin=False)):
            with self.subTest(data=data[:8]):
                ws = self.open(srv)
                ws.send(data)
                time.sleep(0.05)
                ws.close()
        self.echo_roundtrip(keep, OP_TEXT, b"unaffected")
        self._others_still_served(srv)
        srv.assert_alive()

    def test_partial_frame_then_reset(self):
        srv = self.srv()
        for _ in range(5):
            ws = self.open(srv)
            ws.send(encode_frame(OP_BINARY, b"y" * 5000)[:1000])
            time.sleep(0.02)
            ws.abort()
        self._others_still_served(srv)

    def test_slot_released_after_partial_frame(self):
        srv = self.srv("--max-connections", "1")
        ws = self.open(srv)
        ws.send(encode_frame(OP_TEXT, b"z" * 1000)[:100])
        ws.close()
        deadline = time.monotonic() + 3.0
        while True:
            c = self.tcp(srv)
            resp = c.handshake(expect_status=None)
            if resp.status == 101 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        rawws.check_101(resp, c.key)
        self.echo_roundtrip(c, OP_TEXT, b"ok")

    def test_no_descriptor_leak(self):
        srv = self.srv("--handshake-timeout", "300", "--close-timeout",
                       "300")
        fd_dir = "/proc/%d/fd" % srv.proc.pid

        def fds():
            return len(os.listdir(fd_dir))

        base = fds()
        for i in range(10):
            ws = self.open(srv)                       # clean close
            ws.send_close(1000)
            ws.expect_close(1000)
            ws.close()
            ws = self.open(srv)                       # protocol error
            ws.send(encode_frame(OP_TEXT, b"x", mask=False))
            ws.expect_close(PROTOCOL_ERROR)
            ws.close()
            ws = self.open(srv)                       # reset mid-frame
            ws.send(encode_frame(OP_TEXT, b"y" * 100)[:20])
            ws.abort()
            ws, resp = self.send_request(srv, b"GET / HTTP/1.0\r\n\r\n")
            ws.close()                                # rejected handshake
            ws = self.tcp(srv)                        # silent client
            ws.close()
            ws = self.open(srv)                       # leaves, no close
            ws.close()
        deadline = time.monotonic() + 3.0
        while fds() > base and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(fds(), base, "descriptors still open: %s" %
                         sorted(os.readlink(os.path.join(fd_dir, f))
                                for f in os.listdir(fd_dir)))
        self._others_still_served(srv)

    def test_client_disconnects_with_echo_pending(self):
        # The client sends a lot and leaves without reading the echoes.
        srv = self.srv("--max-message", str(1 << 20))
        for _ in range(3):
            ws = self.open(srv)
            ws.sock.settimeout(2.0)
            try:
                ws.sock.sendall(encode_frame(OP_BINARY, b"q" * (1 << 20)) * 4)
            except OSError:
                pass  # the server may stop reading (queue limit): fine
            ws.abort()
        self._others_still_served(srv)


if __name__ == "__main__":
    unittest.main()
