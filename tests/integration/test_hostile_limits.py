"""Hostile clients against the connection limits of real servers: the
global limit, the per-address limit (--max-per-ip) over IPv4 and IPv6,
and a process that runs out of file descriptors.

Run: BUILD=build /usr/bin/python3 -m unittest -v tests/integration/test_hostile_limits.py
"""

import os
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import rawws  # noqa: E402
from hostile import HostileCase, cpu_seconds, fd_count  # noqa: E402

PER_IP_WHY = "too many connections from this address"


class TestPerAddressLimit(HostileCase):

    def refused_503(self, ws, why):
        """The connection over a limit gets the 503 at once (before it
        sends anything) and is closed."""
        resp = ws.read_http_response()
        self.assert_refused(ws, resp, 503, "Service Unavailable", why)

    def open_until_101(self, srv, timeout=3.0, **kw):
        """A slot frees when the server has closed the socket, a moment
        after the client's close: retry until the upgrade succeeds."""
        deadline = time.monotonic() + timeout
        while True:
            ws = self.raw(srv, **kw)
            resp = ws.handshake(expect_status=None)
            if resp.status == 101:
                rawws.check_101(resp, ws.key)
                return ws
            self.assertEqual(resp.status, 503, resp.raw)
            self.assertLess(time.monotonic(), deadline,
                            "no slot freed within %.1fs" % timeout)
            time.sleep(0.05)

    def hold_slot(self, srv, timeout=3.0):
        """A connection that holds a slot with half a request: retried
        until the server takes it instead of answering 503 (a closed
        connection's slot is given back a moment after its FIN)."""
        deadline = time.monotonic() + timeout
        while True:
            ws = self.raw(srv)
            ws.send(b"GET / HTTP/1.1\r\n")
            ws.sock.settimeout(0.3)
            try:
                data = ws.sock.recv(4096)
            except socket.timeout:
                return ws
            self.assertTrue(data.startswith(b"HTTP/1.1 503 "), data)
            ws.close()
            self.assertLess(time.monotonic(), deadline, "no slot freed")

    def test_ipv4_limit_per_source_address(self):
        srv = self.echo("--max-per-ip", "3")
        first = [self.opened(srv) for _ in range(3)]
        self.refused_503(self.raw(srv), PER_IP_WHY)
        # Handshaking connections count as well: hold one slot with a
        # half-sent request.
        first[0].send_close(1000)
        first[0].expect_close(1000)
        half = self.hold_slot(srv)
        self.refused_503(self.raw(srv), PER_IP_WHY)
        # Another source address has its own count (all of 127/8 is
        # loopback on Linux).
        other = [self.opened(srv, source="127.0.0.2") for _ in range(3)]
        self.refused_503(self.raw(srv, source="127.0.0.2"), PER_IP_WHY)
        for ws in first[1:] + other:
            self.echoes(ws)
        # Freed slots are given back.
        half.close()
        first[1].send_close(1000)
        first[1].expect_close(1000)
        again = [self.open_until_101(srv)]
        again.append(self.open_until_101(srv))
        for ws in again:
            self.echoes(ws)
        self.refused_503(self.raw(srv), PER_IP_WHY)

    def test_ipv6_limit(self):
        srv = self.echo("--max-per-ip", "2", host="::1")
        a = self.opened(srv)
        b = self.opened(srv)
        self.refused_503(self.raw(srv), PER_IP_WHY)
        self.echoes(a)
        b.abort()   # a reset gives the slot back too
        c = self.open_until_101(srv)
        self.echoes(c)
        self.refused_503(self.raw(srv), PER_IP_WHY)

    def test_dual_stack_ipv4_mapped_counts_as_ipv4(self):
        # A listener on :: sees IPv4 clients as ::ffff:127.0.0.1; they
        # count against one address whichever way they arrive.
        srv = self.echo("--max-per-ip", "2", host="::")
        s4 = type("S", (), {"host": "127.0.0.1", "port": srv.port})
        a = self.opened(s4)
        b = self.opened(s4)
        self.refused_503(self.raw(s4), PER_IP_WHY)
        self.echoes(a)
        self.echoes(b)
        # ::1 is another address.
        s6 = type("S", (), {"host": "::1", "port": srv.port})
        self.echoes(self.opened(s6))

    def test_unlimited_by_default(self):
        srv = self.echo()
        many = [self.opened(srv) for _ in range(40)]
        for ws in many[::13]:
            self.echoes(ws)

    def test_global_limit_wins_with_its_own_reason(self):
        srv = self.echo("--max-connections", "2", "--max-per-ip", "5")
        a = self.opened(srv)
        self.opened(srv, source="127.0.0.2")
        self.refused_503(self.raw(srv, source="127.0.0.3"),
                         "too many connections")
        self.echoes(a)

    def test_flood_over_the_limit_is_bounded(self):
        # 300 connections at once from one address with a limit of 2:
        # each is answered 503 (or, past the 64 answers in progress,
        # closed at once), none is left hanging, and the two sessions
        # keep working.
        srv = self.echo("--max-per-ip", "2")
        a = self.opened(srv)
        b = self.opened(srv)
        base = fd_count(srv.proc.pid)
        flood = []
        for _ in range(300):
            s = socket.create_connection((srv.host, srv.port), timeout=5)
            self.track(s)
            flood.append(s)
        refused = 0
        for s in flood:
            data = b""
            while True:
                try:
                    chunk = s.recv(4096)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                data += chunk
            s.close()
            if data:
                self.assertTrue(data.startswith(
                    b"HTTP/1.1 503 Service Unavailable\r\n"), data)
                self.assertTrue(data.endswith(PER_IP_WHY.encode() + b"\n"),
                                data)
                refused += 1
        self.assertGreaterEqual(refused, 64)
        self.echoes(a)
        self.echoes(b)
        srv.assert_alive()
        self.wait_for("the flood's descriptors to be released",
                      lambda: fd_count(srv.proc.pid) <= base)

    def test_wschatd_flag(self):
        srv = self.chatd("--max-per-ip", "1")
        a = self.opened(srv, path="/chat")
        ws = self.raw(srv)
        resp = ws.read_http_response()
        self.assert_refused(ws, resp, 503, "Service Unavailable", PER_IP_WHY)
        # Plain HTTP counts too: /healthz from the same address is
        # refused while the session holds the only slot.
        ws = self.raw(srv)
        self.assertEqual(ws.read_http_response().status, 503)
        a.close()
        self.wait_for("the slot to be free", lambda: self.raw(
            srv).handshake(path="/chat", expect_status=None).status == 101)

    def test_wschatd_bad_values(self):
        import subprocess
        from chatd import chatd_binary
        for value in ("-1", "x", "10000001"):
            with self.subTest(value=value):
                p = subprocess.run([chatd_binary(), "--port", "0",
                                    "--max-per-ip", value],
                                   capture_output=True, text=True, timeout=10)
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertEqual(p.stdout, "")
                self.assertEqual(
                    p.stderr, "wschatd: --max-per-ip: invalid value '%s' "
                    "(expected 0-10000000)\n" % value)


class TestDescriptorExhaustion(HostileCase):
    NOFILE = 64

    def speaking(self, srv):
        """A connection that has sent the first byte of a request."""
        s = socket.create_connection((srv.host, srv.port), timeout=5)
        self.track(s)
        s.sendall(b"G")
        return s

    def test_sheds_new_connections_and_keeps_sessions(self):
        srv = self.chatd_limited(self.NOFILE, "--log-level", "warn")
        pid = srv.proc.pid
        with open("/proc/%d/limits" % pid) as f:
            self.assertRegex(f.read(), r"Max open files\s+64\s+64\s")
        sessions = [self.opened(srv, path="/chat") for _ in range(5)]
        base = fd_count(pid)
        # Far more connections than descriptors: the first ones take what
        # is left, the rest are shed (accepted and closed at once). Each
        # sends a byte of a request, so the kernel hands it over at once
        # (the listener defers silent connections, TCP_DEFER_ACCEPT).
        flood = []
        for _ in range(3 * self.NOFILE):
            flood.append(self.speaking(srv))
        time.sleep(0.3)
        self.assertGreaterEqual(fd_count(pid), self.NOFILE - 2)
        cpu0 = cpu_seconds(pid)
        t0 = time.monotonic()
        # While the flood holds every descriptor, more keep arriving.
        shed = 0
        for _ in range(50):
            s = self.speaking(srv)
            s.settimeout(3)
            try:
                shed += s.recv(1) == b""
            except ConnectionResetError:
                shed += 1
            s.close()
        time.sleep(max(0.0, 1.0 - (time.monotonic() - t0)))
        used = cpu_seconds(pid) - cpu0
        elapsed = time.monotonic() - t0
        self.assertEqual(shed, 50, "connections over the limit must be "
                         "closed at once, not left in the backlog")
        self.assertLess(used, 0.5 * elapsed,
                        "server used %.2fs of CPU in %.2fs while out of "
                        "descriptors (spinning?)" % (used, elapsed))
        # The sessions it had still work.
        for ws in sessions:
            self.pongs(ws)
        # The flood ends; a new client gets in again.
        for s in flood:
            s.close()
        self.wait_for("the flood's descriptors to be released",
                      lambda: fd_count(pid) <= base)
        late = self.opened(srv, path="/chat")
        self.assertEqual(late.recv_message().payload, b"* user6 joined lobby")
        # One log line for the whole burst, not one per connection.
        lines = [ln for ln in srv.stderr().splitlines()
                 if "cannot accept connections" in ln]
        self.assertEqual(len(lines), 1, srv.stderr())
        self.assertRegex(lines[0], r"^\S+Z error cannot accept connections: "
                         r"too many open files \(EMFILE\); new connections "
                         r"are closed until descriptors are free$")
        srv.assert_alive()

    def test_a_second_burst_is_logged_again(self):
        srv = self.chatd_limited(self.NOFILE, "--log-level", "warn")
        pid = srv.proc.pid
        base = fd_count(pid)
        for burst in (1, 2):
            flood = []
            for _ in range(2 * self.NOFILE):
                flood.append(self.speaking(srv))
            time.sleep(0.2)
            for s in flood:
                s.close()
            self.wait_for("descriptors to be released",
                          lambda: fd_count(pid) <= base)
            ok = self.opened(srv, path="/chat")
            ok.close()
            n = srv.stderr().count("cannot accept connections")
            self.assertEqual(n, burst, srv.stderr())


if __name__ == "__main__":
    unittest.main()
