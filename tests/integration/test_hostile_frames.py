"""Hostile clients after the upgrade, against real servers: absurd frame
lengths, messages that never end, ping floods, every invalid close code,
peers that stop answering or vanish mid-frame. Besides the close code
each gets, the server's memory (RSS from /proc, and libwschat's own
wschat_live_bytes from wschatd's /metrics) and descriptors are checked to
come back to where they were.

Run: BUILD=build /usr/bin/python3 -m unittest -v tests/integration/test_hostile_frames.py
"""

import os
import selectors
import socket
import struct
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import rawws  # noqa: E402
from hostile import HostileCase, fd_count, rss_kib  # noqa: E402
from rawws import (OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG,  # noqa
                   OP_TEXT, encode_frame)

MIB = 1 << 20
MASK = b"\x11\x22\x33\x44"


class FrameCase(HostileCase):

    def chat_session(self, srv):
        """A raw session on wschatd's /chat, past its join notice."""
        ws = self.opened(srv, path="/chat")
        f = ws.recv_message()
        self.assertRegex(f.payload, rb"^\* user\d+ joined lobby$")
        return ws

    def expect_close(self, ws, code, reason, timeout=5.0):
        """Skip data frames (chat notices), then the close frame with this
        exact code and reason, then EOF."""
        deadline = time.monotonic() + timeout
        while True:
            f = ws.recv_frame(max(0.01, deadline - time.monotonic()))
            if f.opcode != OP_TEXT:
                break
        rawws.check_close_frame(f, code)
        self.assertEqual(f.close_reason, reason, f)
        ws.expect_eof()

    def live_bytes(self, srv):
        return srv.metric("wschat_live_bytes")

    def assert_memory_back(self, srv, rss0, live0, slack_kib=8 * 1024):
        rss = rss_kib(srv.proc.pid)
        self.assertLess(rss - rss0, slack_kib,
                        "RSS grew from %d to %d KiB" % (rss0, rss))
        self.wait_for("live bytes to come back", lambda: (
            self.live_bytes(srv) - live0 < 256 * 1024))


class TestLengths(FrameCase):

    def test_length_2_63_minus_1_is_1009_without_allocating(self):
        srv = self.chatd()
        rss0, live0 = rss_kib(srv.proc.pid), self.live_bytes(srv)
        for op in (OP_BINARY, OP_TEXT):
            with self.subTest(opcode=op):
                ws = self.chat_session(srv)
                ws.send(bytes([0x80 | op, 0xFF]) +
                        struct.pack("!Q", (1 << 63) - 1) + MASK)
                self.expect_close(ws, 1009, b"message too big")
        self.assert_memory_back(srv, rss0, live0)

    def test_length_2_63_is_1002(self):
        # The top bit of a 64-bit length must be 0 (RFC 6455 5.2).
        srv = self.chatd()
        ws = self.chat_session(srv)
        ws.send(b"\x82\xff" + struct.pack("!Q", 1 << 63) + MASK)
        self.expect_close(ws, 1002, b"64-bit length with the top bit set")

    def test_16_mib_frame_is_refused_before_its_payload(self):
        srv = self.chatd()
        rss0, live0 = rss_kib(srv.proc.pid), self.live_bytes(srv)
        ws = self.chat_session(srv)
        # The header and 1 KiB of the 16 MiB: the 1009 must come without
        # the rest.
        ws.send(b"\x82\xff" + struct.pack("!Q", 16 * MIB) + MASK +
                b"x" * 1024)
        t0 = time.monotonic()
        self.expect_close(ws, 1009, b"message too big")
        self.assertLess(time.monotonic() - t0, 2.0)
        self.assert_memory_back(srv, rss0, live0)

    def test_endless_fragmented_message_is_1009(self):
        srv = self.chatd()
        rss0, live0 = rss_kib(srv.proc.pid), self.live_bytes(srv)
        ws = self.chat_session(srv)
        sent = [0]
        stop = threading.Event()
        frag = encode_frame(OP_CONT, b"z" * 4096, fin=False, mask_key=MASK)

        def sender():
            try:
                ws.sock.sendall(encode_frame(OP_TEXT, b"a" * 4096, fin=False,
                                             mask_key=MASK))
                while not stop.is_set() and sent[0] < 256 * MIB:
                    ws.sock.sendall(frag)
                    sent[0] += len(frag)
            except OSError:
                pass
        t = threading.Thread(target=sender)
        t0 = time.monotonic()
        t.start()
        try:
            self.expect_close(ws, 1009, b"message too big", timeout=10)
            took = time.monotonic() - t0
        finally:
            stop.set()
            ws.abort()
            t.join(10)
        self.assertLess(took, 5.0)
        self.assert_memory_back(srv, rss0, live0)


class TestPings(FrameCase):

    def test_10000_pings_in_one_burst(self):
        srv = self.chatd()
        rss0, live0 = rss_kib(srv.proc.pid), self.live_bytes(srv)
        ws = self.chat_session(srv)
        n = 10000
        ws.send(b"".join(encode_frame(OP_PING, b"%08d" % i, mask_key=MASK)
                         for i in range(n)))
        for i in range(n):
            f = ws.recv_frame(10)
            self.assertEqual((f.opcode, f.payload), (OP_PONG, b"%08d" % i))
        ws.nothing_for(0.3)
        self.pongs(ws, b"after")
        self.assert_memory_back(srv, rss0, live0)

    def test_ping_flood_that_never_reads_is_closed_1008(self):
        # Pongs are output like any other: those never read pile up to
        # max_queued (1 MiB) and the session is closed as a slow
        # consumer, so a flood cannot grow the server without bound.
        srv = self.echo("--close-timeout", "10000")
        rss0 = rss_kib(srv.proc.pid)
        ws = self.opened(srv)
        ping = encode_frame(OP_PING, b"p" * 125, mask_key=MASK)
        # 32 MiB of pongs owed: more than the socket buffers and 1 MiB of
        # queue can hold.
        ws.sock.settimeout(20)
        ws.sock.sendall(ping * (32 * MIB // len(ping)))
        self.assertLess(rss_kib(srv.proc.pid) - rss0, 16 * 1024)
        # Then read it all: whole pongs, the 1008, the end.
        data = bytearray()
        while True:
            chunk = ws.sock.recv(1 << 20)
            if not chunk:
                break
            data += chunk
        pong = b"\x8a\x7d" + b"p" * 125
        n = 0
        while data.startswith(pong, n * len(pong)):
            n += 1
        rest = bytes(data[n * len(pong):])
        self.assertEqual(rest, b"\x88\x0f\x03\xf0slow consumer")
        self.assertGreater(n, 1000)
        self.assertLess(n, 32 * MIB // len(ping))


class TestCloseCodes(FrameCase):
    """Every invalid code, each on its own connection (a close ends the
    session), many connections at a time."""

    INVALID = (list(range(0, 1000)) + [1004, 1005, 1006, 1015] +
               list(range(1016, 3000)) + list(range(5000, 65536, 61)) +
               [65535])
    VALID = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012,
             1013, 1014] + list(range(3000, 5000, 37)) + [4999]

    def run_batch(self, srv, payloads, batch=200):
        """Send each close payload on its own new session (request and
        frame in one write); return what each connection received before
        the server closed it."""
        out = []
        for start in range(0, len(payloads), batch):
            sel = selectors.DefaultSelector()
            got = {}
            for i, p in enumerate(payloads[start:start + batch]):
                req, _ = rawws.build_request()
                s = socket.create_connection((srv.host, srv.port), 5)
                self.track(s)
                s.sendall(req + encode_frame(OP_CLOSE, p, mask_key=MASK))
                s.setblocking(False)
                sel.register(s, selectors.EVENT_READ, start + i)
                got[start + i] = b""
            left = len(got)
            deadline = time.monotonic() + 20
            while left and time.monotonic() < deadline:
                for key, _ in sel.select(0.5):
                    try:
                        data = key.fileobj.recv(4096)
                    except ConnectionResetError:
                        data = b""
                    if data:
                        got[key.data] += data
                    else:
                        sel.unregister(key.fileobj)
                        key.fileobj.close()
                        left -= 1
            sel.close()
            self.assertEqual(left, 0, "connections left open")
            out += [got[k] for k in sorted(got)]
        return out

    def close_frame_of(self, data):
        head, _, frame = data.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 101 "), data[:200])
        return frame

    def test_every_invalid_code_is_1002(self):
        srv = self.echo("--close-timeout", "1000")
        want = (b"\x88\x15" + struct.pack("!H", 1002) +
                b"invalid close frame")
        results = self.run_batch(
            srv, [struct.pack("!H", c) for c in self.INVALID])
        wrong = [(c, self.close_frame_of(r)) for c, r in
                 zip(self.INVALID, results)
                 if self.close_frame_of(r) != want]
        self.assertEqual(wrong[:5], [], "%d codes answered otherwise"
                         % len(wrong))

    def test_valid_codes_are_echoed(self):
        srv = self.echo("--close-timeout", "1000")
        results = self.run_batch(
            srv, [struct.pack("!H", c) + b"bye" for c in self.VALID])
        for c, r in zip(self.VALID, results):
            self.assertEqual(self.close_frame_of(r),
                             b"\x88\x02" + struct.pack("!H", c), c)

    def test_one_byte_and_bad_utf8_reasons(self):
        srv = self.echo("--close-timeout", "1000")
        cases = [
            (b"\x03", 1002, b"invalid close frame"),
            (b"\x03\xe8\xff", 1007, b"invalid UTF-8 in close reason"),
            (b"\x03\xe8ok\xc3", 1007, b"invalid UTF-8 in close reason"),
            (b"\x03\xe8\xed\xa0\x80", 1007, b"invalid UTF-8 in close reason"),
            (b"\x03\xe8\xc0\xaf", 1007, b"invalid UTF-8 in close reason"),
            (b"\x03\xe8\xf4\x90\x80\x80", 1007,
             b"invalid UTF-8 in close reason"),
            # An invalid code wins over a valid reason, and is checked
            # before the reason.
            (b"\x03\xed\xff", 1002, b"invalid close frame"),
        ]
        results = self.run_batch(srv, [c[0] for c in cases])
        for (payload, code, reason), r in zip(cases, results):
            with self.subTest(payload=payload):
                body = struct.pack("!H", code) + reason
                self.assertEqual(self.close_frame_of(r),
                                 bytes([0x88, len(body)]) + body)


class TestVanishingPeers(FrameCase):

    def test_half_open_peer_is_pinged_then_closed_by_idle_timeout(self):
        srv = self.echo("--idle-timeout", "1000", "--ping-interval", "300",
                        "--close-timeout", "500")
        pid = srv.proc.pid
        base = fd_count(pid)
        ws = self.opened(srv)
        self.assertEqual(fd_count(pid), base + 1)
        # The client sends nothing more, answers no ping, reads nothing:
        # the server must let go of it by itself.
        t0 = time.monotonic()
        self.wait_for("the server to close the silent peer",
                      lambda: fd_count(pid) == base, timeout=4.0)
        took = time.monotonic() - t0
        self.assertGreater(took, 0.9)
        frames = []
        while True:
            f = ws.recv_frame(1)
            frames.append(f)
            if f.opcode == OP_CLOSE:
                break
        pings = frames[:-1]
        self.assertGreaterEqual(len(pings), 1)
        for f in pings:
            self.assertEqual((f.opcode, f.payload), (OP_PING, b""))
        rawws.check_close_frame(frames[-1], 1001)
        self.assertEqual(frames[-1].close_reason, b"idle timeout")
        ws.expect_eof()

    def test_wschatd_idle_timeout_frees_a_silent_session(self):
        srv = self.chatd("--idle-timeout", "800")
        ws = self.chat_session(srv)
        t0 = time.monotonic()
        self.expect_close(ws, 1001, b"idle timeout", timeout=4)
        self.assertGreater(time.monotonic() - t0, 0.6)
        self.wait_for("the connection to be gone", lambda: (
            srv.metric("wschat_connections") == 1.0))

    def test_peers_vanishing_mid_frame(self):
        srv = self.chatd()
        pid = srv.proc.pid
        survivor = self.chat_session(srv)
        base_fds = fd_count(pid)
        rss0, live0 = rss_kib(pid), self.live_bytes(srv)
        for round_ in range(3):
            gone = [self.chat_session(srv) for _ in range(30)]
            for i, ws in enumerate(gone):
                # Half a frame: the header announces 1000 bytes, 10 come.
                ws.send(b"\x81\xfe" + struct.pack("!H", 1000) + MASK +
                        b"0123456789")
            time.sleep(0.05)
            for i, ws in enumerate(gone):
                if i % 2:
                    ws.abort()     # RST
                else:
                    ws.close()     # FIN
            self.pongs(survivor, b"round %d" % round_)
        self.wait_for("every vanished peer's descriptor to be released",
                      lambda: fd_count(pid) == base_fds)
        self.wait_for("the connection count to drop", lambda: (
            srv.metric("wschat_connections") == 2.0))
        self.assertEqual(srv.metric("wschat_sessions"), 1.0)
        survivor.send_text(b"/who")
        f = survivor.recv_message()
        self.assertEqual(f.payload, b"* in lobby: user1")
        self.assert_memory_back(srv, rss0, live0)


if __name__ == "__main__":
    unittest.main()
