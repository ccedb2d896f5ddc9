"""Hostile clients during the opening handshake, against real servers
(the echo example and wschatd): slow clients (one byte a second, a
thousand at once), oversized and malformed requests, refused origins.
Each refusal is checked byte for byte: status line, headers, the one-line
body naming the reason, then the server's close.

Run: BUILD=build /usr/bin/python3 -m unittest -v tests/integration/test_hostile_http.py
"""

import asyncio
import errno
import os
import selectors
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import rawws  # noqa: E402
from chatd import JClient  # noqa: E402
from hostile import HostileCase, http_reply, raise_nofile  # noqa: E402

TIMEOUT_408 = (408, "Request Timeout", "handshake timeout")


def chat_request(**kw):
    return rawws.build_request(path="/chat", **kw)[0]


class TestSlowClients(HostileCase):

    def slowloris(self, srv, timeout_s):
        """Send a valid request one byte a second; returns (seconds until
        the server answered, the RawWS)."""
        req = chat_request()
        ws = self.raw(srv, timeout=10)
        t0 = time.monotonic()
        for i in range(len(req)):
            try:
                ws.send(req[i:i + 1])
            except OSError:
                break
            ws.sock.settimeout(1.0)
            try:
                data = ws.sock.recv(65536)
            except socket.timeout:
                continue
            ws.buf = data
            ws.eof = not data
            break
        took = time.monotonic() - t0
        self.assertLess(took, timeout_s + 3, "never timed out")
        return took, ws

    def test_one_byte_a_second_is_cut_at_the_handshake_timeout_echo(self):
        srv = self.echo("--handshake-timeout", "2500")
        took, ws = self.slowloris(srv, 2.5)
        self.assertGreater(took, 2.2)
        self.assert_refused(ws, ws.read_http_response(), *TIMEOUT_408)

    def test_one_byte_a_second_is_cut_at_the_handshake_timeout_wschatd(self):
        srv = self.chatd("--handshake-timeout", "2000")
        took, ws = self.slowloris(srv, 2.0)
        self.assertGreater(took, 1.7)
        self.assert_refused(ws, ws.read_http_response(), *TIMEOUT_408)

    def test_a_thousand_slow_clients_do_not_stop_a_chat(self):
        n = 1000
        self.assertGreaterEqual(raise_nofile(2 * n + 200), 2 * n + 200)
        srv = self.chatd("--handshake-timeout", "6000")
        sel = selectors.DefaultSelector()
        slow = []
        t0 = time.monotonic()
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.track(s)
            s.setblocking(False)
            rc = s.connect_ex((srv.host, srv.port))
            self.assertIn(rc, (0, errno.EINPROGRESS))
            slow.append(s)
            sel.register(s, selectors.EVENT_WRITE, b"")
        # Each sends its first byte as soon as it is connected.
        pending = n
        while pending and time.monotonic() - t0 < 10:
            for key, _ in sel.select(0.5):
                s = key.fileobj
                self.assertEqual(s.getsockopt(socket.SOL_SOCKET,
                                              socket.SO_ERROR), 0)
                s.send(b"G")
                sel.modify(s, selectors.EVENT_READ, b"")
                pending -= 1
        self.assertEqual(pending, 0, "slow clients failed to connect")

        async def chat():
            t = time.monotonic()
            a = await JClient.connect(srv, "a")
            b = await JClient.connect(srv, "b")
            connect_time = time.monotonic() - t
            await a.join("r")
            await b.join("r")
            await a.say("r", "through the crowd")
            got = await b.expect("message", room="r", text="through the "
                                 "crowd")
            await a.close()
            await b.close()
            return connect_time, got
        connect_time, got = asyncio.run(asyncio.wait_for(chat(), 20))
        self.assertEqual(got["from"], "user1")
        self.assertLess(connect_time, 3.0)
        # The slow clients go on with a byte a second each; every one is
        # answered 408 at its deadline.
        head, body = http_reply(*TIMEOUT_408)
        want = head + b"Connection: close\r\n\r\n" + body
        req = chat_request()
        sent = {s: 1 for s in slow}
        next_byte = time.monotonic()
        got = {}
        done = 0
        while done < n and time.monotonic() - t0 < 25:
            if time.monotonic() >= next_byte:
                next_byte += 1.0
                for s in slow:
                    if s.fileno() >= 0 and s not in got:
                        try:
                            s.send(req[sent[s]:sent[s] + 1])
                            sent[s] += 1
                        except OSError:
                            pass
            for key, _ in sel.select(0.2):
                s = key.fileobj
                try:
                    data = s.recv(4096)
                except ConnectionResetError:
                    data = b""
                if data:
                    got[s] = got.get(s, b"") + data
                else:
                    sel.unregister(s)
                    s.close()
                    done += 1
        sel.close()
        self.assertEqual(done, n, "slow clients still open after 25 s")
        wrong = [v for v in got.values() if v != want]
        self.assertEqual(len(got), n)
        self.assertEqual(wrong[:1], [])
        # All gone from the server (the /metrics request is the one).
        self.wait_for("the slow clients' connections to close", lambda:
                      srv.metric("wschat_connections") == 1.0)


class TestOversizedAndMalformed(HostileCase):
    """Against wschatd's /chat: the library refuses these before the
    application's handlers see them."""

    def refuse(self, srv, request, status, reason, why, **headers):
        ws = self.raw(srv)
        ws.send(request)
        self.assert_refused(ws, ws.read_http_response(), status, reason, why,
                            **headers)

    def send_big(self, srv, data):
        """Send data from a second thread while this one reads the answer
        (the server answers long before the client is done sending)."""
        ws = self.raw(srv, timeout=10)
        errors = []

        def sender():
            try:
                ws.sock.sendall(data)
            except OSError as e:
                errors.append(e)
        t = threading.Thread(target=sender)
        t.start()
        try:
            resp = ws.read_http_response()
        finally:
            t.join(20)
        return ws, resp

    def test_500_headers_431(self):
        srv = self.chatd()
        req = chat_request(extra_headers=[("X-H%d" % i, "v")
                                          for i in range(500)])
        self.refuse(srv, req, 431, "Request Header Fields Too Large",
                    "too many header lines")

    def test_header_flood_of_10_mib_431(self):
        srv = self.chatd()
        req = chat_request()[:-2]
        flood = b"".join(b"X-Flood-%d: %s\r\n" % (i, b"f" * 1000)
                         for i in range(10 * 1024))
        ws, resp = self.send_big(srv, req + flood + b"\r\n")
        self.assert_refused(ws, resp, 431, "Request Header Fields Too Large",
                            "request head too large")

    def test_one_header_of_10_mib_431(self):
        srv = self.chatd()
        req = chat_request(extra_headers=[("X-Big", "b" * (10 << 20))])
        ws, resp = self.send_big(srv, req)
        self.assert_refused(ws, resp, 431, "Request Header Fields Too Large",
                            "request head too large")

    def test_request_line_of_10_mib_414(self):
        srv = self.chatd()
        ws, resp = self.send_big(
            srv, b"GET /chat?" + b"q" * (10 << 20) + b" HTTP/1.1\r\n\r\n")
        self.assert_refused(ws, resp, 414, "URI Too Long",
                            "request target too long")

    def test_method_of_10_mib_400(self):
        srv = self.chatd()
        ws, resp = self.send_big(srv, b"G" * (10 << 20))
        self.assert_refused(ws, resp, 400, "Bad Request",
                            "invalid HTTP method")

    def test_no_host_400(self):
        self.refuse(self.chatd(), chat_request(omit=("host",)), 400,
                    "Bad Request", "missing Host header")

    def test_http_1_0_400(self):
        self.refuse(self.chatd(), chat_request(http_version="HTTP/1.0"),
                    400, "Bad Request", "WebSocket upgrade needs HTTP/1.1")

    def test_upgrade_without_connection_400(self):
        srv = self.chatd()
        for conn in (None, "keep-alive"):
            with self.subTest(connection=conn):
                self.refuse(srv, chat_request(connection=conn), 400,
                            "Bad Request",
                            "Connection header without the upgrade token")

    def test_bad_key_400(self):
        srv = self.chatd()
        for key in ("", "abc", "A" * 24, "dGhlIHNhbXBsZSBub25jZQ=!",
                    "dGhlIHNhbXBsZSBub25jZQ==" * 10, "dGhlIHNh bXBsZSBub25jZQ"):
            with self.subTest(key=key):
                self.refuse(srv, chat_request(key=key), 400, "Bad Request",
                            "Sec-WebSocket-Key is not 16 bytes of base64")

    def test_control_byte_in_a_header_400(self):
        self.refuse(self.chatd(), chat_request(key="dGhlIHNhbXBsZSBub25j\x01Q=="),
                    400, "Bad Request", "invalid character in header")

    def test_version_8_426_names_13(self):
        srv = self.chatd()
        for version in ("8", "7", "0", "13, 8", "99999999999999999999"):
            with self.subTest(version=version):
                self.refuse(srv, chat_request(version=version), 426,
                            "Upgrade Required",
                            "unsupported Sec-WebSocket-Version",
                            Sec_WebSocket_Version="13")

    def test_refusals_leave_the_server_serving(self):
        srv = self.chatd()
        for _ in range(20):
            ws = self.raw(srv)
            ws.send(chat_request(key="x"))
            ws.read_http_response()
            ws.close()
        ok = self.opened(srv, path="/chat")
        self.assertEqual(ok.recv_message().payload, b"* user1 joined lobby")
        self.assertEqual(srv.metric("wschat_http_rejects_total"), 20.0)


class TestHostileOrigins(HostileCase):

    def status(self, srv, origin, **kw):
        extra = [] if origin is None else [("Origin", origin)]
        ws = self.raw(srv)
        ws.send(chat_request(extra_headers=extra, **kw))
        resp = ws.read_http_response()
        if resp.status == 403:
            self.assert_refused(ws, resp, 403, "Forbidden",
                                "origin not allowed")
        ws.close()
        return resp.status

    def test_look_alike_origins_403(self):
        srv = self.chatd("--allow-origin", "https://chat.example.org")
        cases = [
            ("https://chat.example.org", 101),
            ("https://chat.example.org.evil.example", 403),
            ("https://evilchat.example.org", 403),
            ("https://chat.example.org@evil.example", 403),
            ("https://chat.example.org/", 403),
            ("https://chat.example.org:80", 403),
            ("https://chat.example.org\xe2\x80\xae", 403),
            (" https://chat.example.org x", 403),
            ("https://" + "a" * 7000, 403),
        ]
        for origin, want in cases:
            with self.subTest(origin=origin[:60]):
                self.assertEqual(self.status(srv, origin), want)
        log = srv.stderr()
        # Client bytes reach the log escaped, never raw.
        self.assertNotIn(b"\xe2\x80\xae", srv._read(srv.err))
        self.assertRegex(log, r"origin https://chat\.example\.org"
                         r"\\x(?i:e2)\\x(?i:80)\\x(?i:ae)\n")
        self.assertEqual(srv.metric("wschat_sessions_opened_total"), 1.0)


if __name__ == "__main__":
    unittest.main()
