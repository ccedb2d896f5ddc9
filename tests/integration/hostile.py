"""hostile - shared by the test_hostile_*.py suites: servers started with
their own options (echo, wschatd, either under a descriptor limit),
raw clients that are closed at tearDown, and readings of a server
process's memory, descriptors and CPU time from /proc.
"""

import os
import re
import resource
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import rawws  # noqa: E402
from chatd import ChatServer, chatd_binary  # noqa: E402
from echoserver import EchoServer  # noqa: E402
# fd_count and rss_kib are re-exported for the test_hostile_* suites.
from serverproc import (ServerProcess, fd_count, rss_kib,  # noqa: E402,F401
                        stop_all)

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """utime + stime of a process, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is the state (field 3); utime and stime are fields 14, 15.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def raise_nofile(want):
    """Raise this process's soft descriptor limit to `want` (at most the
    hard limit); servers started afterwards inherit it. Returns the soft
    limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def http_reply(status, reason, why):
    """The exact bytes the library answers a refused request with."""
    body = ("%d %s: %s\n" % (status, reason, why)).encode()
    return (b"HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
            b"Content-Length: %d\r\n" % (status, reason.encode(), len(body)),
            body)


class AnyEchoServer(EchoServer):
    """The echo server on any listen address (:: or 0.0.0.0 too)."""
    LINE_RE = re.compile(r"^echo: listening on (\S+):(\d+)\n$")


class LimitedChatServer(ChatServer):
    """wschatd run under `prlimit --nofile=N:N`, which execs it (the pid
    is the server's)."""

    def __init__(self, nofile, *flags):
        self.flags = [str(f) for f in flags]
        ServerProcess.__init__(
            self, ["/usr/bin/prlimit", "--nofile=%d:%d" % (nofile, nofile),
                   chatd_binary(), "--host", "127.0.0.1", "--port", "0"]
            + self.flags)


class HostileCase(unittest.TestCase):
    """Servers from self.echo()/self.chatd(), raw clients from self.raw();
    tearDown closes the clients, then stops every server (SIGTERM, exit
    status 0 asserted: a hostile client must never cost a crash)."""

    def setUp(self):
        self._servers = []
        self._socks = []

    def _keep(self, srv):
        self._servers.append(srv)
        return srv

    def echo(self, *flags, host=None):
        return self._keep(AnyEchoServer(*flags, host=host))

    def chatd(self, *flags):
        return self._keep(ChatServer(*flags))

    def chatd_limited(self, nofile, *flags):
        return self._keep(LimitedChatServer(nofile, *flags))

    def track(self, sock):
        self._socks.append(sock)
        return sock

    def raw(self, srv, timeout=5.0, source=None):
        """A RawWS connected to srv, nothing sent; `source` binds the
        client side to that address first."""
        if source is None:
            return self.track(rawws.RawWS(srv.host, srv.port, timeout))
        ws = rawws.RawWS.__new__(rawws.RawWS)
        family = socket.AF_INET6 if ":" in srv.host else socket.AF_INET
        ws.sock = socket.socket(family, socket.SOCK_STREAM)
        ws.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        ws.sock.bind((source, 0))
        ws.sock.settimeout(timeout)
        ws.timeout = timeout
        ws.sock.connect((srv.host, srv.port))
        ws.host, ws.port = srv.host, srv.port
        ws.buf, ws.eof, ws.reset, ws.key = b"", False, False, None
        return self.track(ws)

    def opened(self, srv, path="/", **kw):
        """A session: connected and upgraded (101 checked)."""
        ws = self.raw(srv, **kw)
        ws.handshake(path=path)
        return ws

    def tearDown(self):
        for s in self._socks:
            try:
                s.close()
            except Exception:
                pass
        errors = stop_all(self._servers)
        if errors:
            self.fail("\n".join(errors))

    # -- assertions --------------------------------------------------------

    def assert_refused(self, ws, resp, status, reason, why, **headers):
        """The exact head and body the library sends when it refuses a
        request (extra headers by name_with_underscores), then EOF."""
        head, body = http_reply(status, reason, why)
        for name, value in headers.items():
            head += b"%s: %s\r\n" % (name.replace("_", "-").encode(),
                                    value.encode())
        head += b"Connection: close\r\n\r\n"
        self.assertEqual(resp.raw, head + body)
        ws.expect_eof()

    def echoes(self, ws, payload=b"still here"):
        ws.send_text(payload)
        f = ws.recv_message()
        self.assertEqual((f.opcode, f.payload), (rawws.OP_TEXT, payload))

    def pongs(self, ws, payload=b"alive?", timeout=5.0):
        """A ping is answered (chat notices that arrive first are
        skipped)."""
        ws.send_frame(rawws.OP_PING, payload)
        deadline = time.monotonic() + timeout
        while True:
            f = ws.recv_frame(max(0.01, deadline - time.monotonic()))
            if f.opcode == rawws.OP_PONG:
                self.assertEqual(f.payload, payload)
                return
            self.assertIn(f.opcode, (rawws.OP_TEXT, rawws.OP_BINARY), f)

    def wait_for(self, what, cond, timeout=5.0, step=0.05):
        deadline = time.monotonic() + timeout
        while True:
            v = cond()
            if v:
                return v
            if time.monotonic() > deadline:
                self.fail("timed out waiting for %s" % what)
            time.sleep(step)
