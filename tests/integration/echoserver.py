"""Start and stop build/examples/echo for the integration suites.

The binary is $BUILD/examples/echo ($BUILD defaults to "build"; a relative
BUILD is taken from the repository root). The server is started on port 0
and the port is parsed from its one stdout line
("echo: listening on 127.0.0.1:PORT" or "[::1]:PORT"). stop() sends SIGTERM
and asserts exit status 0; a server that died during a test (a crash) is
reported with its signal and stderr.
"""

import os
import re
import signal
import subprocess
import tempfile
import time
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

LINE_RE = re.compile(r"^echo: listening on (127\.0\.0\.1|\[::1\]):(\d+)\n$")


def build_dir():
    b = os.environ.get("BUILD", "build")
    return b if os.path.isabs(b) else os.path.join(ROOT, b)


def echo_binary():
    return os.path.join(build_dir(), "examples", "echo")


class EchoServer:
    def __init__(self, *flags, host=None, start_timeout=5.0):
        self.flags = list(flags)
        if host is not None:
            self.flags = ["--host", host] + self.flags
        self.binary = echo_binary()
        if not os.access(self.binary, os.X_OK):
            raise AssertionError("echo server binary %s is missing (build "
                                 "it with make)" % self.binary)
        # The server writes to files opened O_APPEND; we read them through
        # separate descriptors, so no file offset is shared with it and
        # nothing it prints can ever block it.
        self.tmpdir = tempfile.TemporaryDirectory(prefix="wschat-echo-")
        out_path = os.path.join(self.tmpdir.name, "stdout")
        err_path = os.path.join(self.tmpdir.name, "stderr")
        out_w = open(out_path, "ab")
        err_w = open(err_path, "ab")
        self.out = open(out_path, "rb")
        self.err = open(err_path, "rb")
        self.argv = [self.binary] + self.flags + ["0"]
        try:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                         stdout=out_w, stderr=err_w)
        finally:
            out_w.close()
            err_w.close()
        self.stopped = False
        self.line = self._first_line(start_timeout)
        m = LINE_RE.match(self.line)
        if not m:
            self.kill()
            raise AssertionError("unexpected first stdout line %r from %r"
                                 % (self.line, self.argv))
        self.host = m.group(1).strip("[]")
        self.port = int(m.group(2))
        assert 0 < self.port < 65536

    def _read(self, f):
        f.seek(0)
        return f.read()

    def _first_line(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            data = self._read(self.out)
            if b"\n" in data:
                return data[:data.index(b"\n") + 1].decode("utf-8",
                                                           "replace")
            if self.proc.poll() is not None:
                raise AssertionError(
                    "%r exited with status %s before printing its line; "
                    "stdout %r stderr %r" % (self.argv, self.proc.returncode,
                                             data, self.stderr()))
            time.sleep(0.01)
        self.kill()
        raise AssertionError("%r printed no line within %.0fs (stdout %r)"
                             % (self.argv, timeout, self._read(self.out)))

    def stderr(self):
        return self._read(self.err).decode("utf-8", "replace")[-4000:]

    def stdout(self):
        return self._read(self.out).decode("utf-8", "replace")

    def alive(self):
        return self.proc.poll() is None

    def assert_alive(self):
        if not self.alive():
            rc = self.proc.returncode
            what = ("killed by signal %d" % -rc) if rc < 0 else \
                ("exited with status %d" % rc)
            raise AssertionError("echo server %s during the test; stderr:\n"
                                 "%s" % (what, self.stderr()))

    def signal(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.stopped = True

    def cleanup(self):
        self.kill()
        for f in (self.out, self.err):
            f.close()
        self.tmpdir.cleanup()

    def stop(self, timeout=10.0):
        """SIGTERM, then assert exit status 0 within timeout seconds.
        Returns the seconds it took."""
        if self.stopped:
            return 0.0
        self.stopped = True
        self.assert_alive()
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("echo server did not exit within %.0fs of "
                                 "SIGTERM; stderr:\n%s" % (timeout,
                                                           self.stderr()))
        took = time.monotonic() - t0
        if rc != 0:
            raise AssertionError("echo server exited with status %d after "
                                 "SIGTERM (want 0); stderr:\n%s"
                                 % (rc, self.stderr()))
        return took

    def wait_exit(self, timeout):
        """Wait for an exit already requested; returns (status, seconds)."""
        t0 = time.monotonic()
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None, time.monotonic() - t0
        self.stopped = True
        return rc, time.monotonic() - t0


class ServerTestCase(unittest.TestCase):
    """Tests start servers with self.server(*flags); tearDown closes the
    clients registered with self.track() first, then stops every server
    (SIGTERM, exit status 0 asserted)."""

    def setUp(self):
        self._servers = []
        self._clients = []

    def server(self, *flags, host=None):
        s = EchoServer(*flags, host=host)
        self._servers.append(s)
        return s

    def track(self, client):
        self._clients.append(client)
        return client

    def tearDown(self):
        for c in self._clients:
            try:
                c.close()
            except Exception:
                pass
        errors = []
        for s in self._servers:
            try:
                s.stop()
            except AssertionError as e:
                errors.append(str(e))
            finally:
                s.cleanup()
        if errors:
            self.fail("\n".join(errors))
