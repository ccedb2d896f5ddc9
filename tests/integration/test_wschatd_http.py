"""build/cmd/wschatd as a program: its flags, its log, its signals, and the
plain HTTP it serves on the WebSocket port (static files, /healthz,
/metrics), including every path-traversal form we know of, and the Origin
policy of its /chat endpoint.

The chat protocol itself is tested by test_chat_*.py. Here every server
gets a temporary --web-root with files written by the test, so nothing
depends on the browser client. Requests go over raw sockets, so that the
exact request target (dots, escapes, backslashes) reaches the server
untouched, and the exact status, headers and body come back.

Run: BUILD=build /usr/bin/python3 -m unittest -v \
         tests/integration/test_wschatd_http.py
Stdlib only.
"""

import base64
import hashlib
import os
import re
import signal
import socket
import struct
import subprocess
import tempfile
import time
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

STOP_LIMIT = 2.0       # seconds from SIGTERM to exit, the contract
IO_TIMEOUT = 5.0
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

SERVING_RE = re.compile(
    r"^wschatd: serving http://(127\.0\.0\.1|\[::1\]):(\d+)/\n$")
LOG_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z "
                    r"(error|warn|info|debug) \S.*$")

HTML = "text/html; charset=utf-8"
TEXT = "text/plain; charset=utf-8"
OCTETS = "application/octet-stream"

# name -> (content, Content-Type)
FILES = {
    "index.html": (b"<!doctype html><title>wschatd test</title>\n", HTML),
    "style.css": (b"body { color: #123; }\n", "text/css; charset=utf-8"),
    "app.js": (b"console.log('hi');\n", "text/javascript; charset=utf-8"),
    "data.json": (b'{"a": [1, 2, 3]}\n', "application/json"),
    "logo.png": (b"\x89PNG\r\n\x1a\n" + bytes(range(256)), "image/png"),
    "icon.svg": (b'<svg xmlns="http://www.w3.org/2000/svg"/>\n',
                 "image/svg+xml"),
    "favicon.ico": (b"\x00\x00\x01\x00" + os.urandom(64), "image/x-icon"),
    "notes.txt": ("na\u00efve caf\u00e9\n".encode("utf-8"), TEXT),
    "UPPER.PNG": (b"\x89PNG upper-case extension", "image/png"),
    "blob.bin": (os.urandom(3000), OCTETS),
    "LICENSE": (b"no extension\n", OCTETS),
    "archive.tar.gz": (b"\x1f\x8b not really", OCTETS),
    "empty.txt": (b"", TEXT),
    "sub/index.html": (b"<p>sub index</p>\n", HTML),
    "sub/deeper/page.html": (b"<p>deep</p>\n", HTML),
    "with space.txt": (b"space in the name\n", TEXT),
    ".hidden": (b"dot file\n", TEXT),
}


def build_dir():
    b = os.environ.get("BUILD", "build")
    return b if os.path.isabs(b) else os.path.join(ROOT, b)


def wschatd_binary():
    return os.path.join(build_dir(), "cmd", "wschatd")


# ------------------------------------------------------------------ running

def run_wschatd(*args, timeout=5.0):
    """Run wschatd to completion (for flags that exit at once):
    (status, stdout, stderr)."""
    p = subprocess.run([wschatd_binary()] + [str(a) for a in args],
                       stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=timeout)
    return (p.returncode, p.stdout.decode("utf-8", "replace"),
            p.stderr.decode("utf-8", "replace"))


class Wschatd:
    """A running wschatd on port 0. Its stdout and stderr go to files (a
    pipe nobody reads could block it); the port comes from the stdout
    line "wschatd: serving http://HOST:PORT/"."""

    def __init__(self, *flags, host=None):
        self.tmp = tempfile.TemporaryDirectory(prefix="wschatd-run-")
        self.out_path = os.path.join(self.tmp.name, "stdout")
        self.err_path = os.path.join(self.tmp.name, "stderr")
        self.argv = [wschatd_binary(), "--port", "0"]
        if host is not None:
            self.argv += ["--host", host]
        self.argv += [str(f) for f in flags]
        with open(self.out_path, "wb") as out, \
                open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=err)
        self.exit_status = None
        deadline = time.monotonic() + IO_TIMEOUT
        while True:
            out = self.stdout()
            if "\n" in out:
                break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise AssertionError(
                    "%r printed no serving line (status %r); stdout %r "
                    "stderr %r" % (self.argv, self.proc.returncode, out,
                                   self.stderr()))
            time.sleep(0.01)
        line = out[:out.index("\n") + 1]
        m = SERVING_RE.match(line)
        if m is None:
            self.kill()
            raise AssertionError("unexpected stdout line %r" % line)
        self.host = m.group(1).strip("[]")
        self.port = int(m.group(2))
        self.serving_line = line

    def stdout(self):
        with open(self.out_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stderr(self):
        with open(self.err_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self, sig=signal.SIGTERM):
        """Send sig; return (exit status, seconds it took), waiting at
        most STOP_LIMIT + 3 s."""
        t0 = time.monotonic()
        self.proc.send_signal(sig)
        try:
            status = self.proc.wait(STOP_LIMIT + 3)
        except subprocess.TimeoutExpired:
            self.kill()
            status = None
        self.exit_status = status
        return status, time.monotonic() - t0

    def close(self):
        self.kill()
        self.tmp.cleanup()


# ------------------------------------------------------------------ clients

class Response:
    def __init__(self, raw):
        self.raw = raw
        head, sep, self.body = raw.partition(b"\r\n\r\n")
        if not sep:
            raise AssertionError("no complete response head in %r" % raw)
        lines = head.decode("latin-1").split("\r\n")
        self.status_line = lines[0]
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise AssertionError("bad status line %r" % lines[0])
        self.status = int(parts[1])
        self.headers = []
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if not colon:
                raise AssertionError("bad header line %r" % line)
            self.headers.append((name.strip().lower(), value.strip()))

    def get_all(self, name):
        return [v for n, v in self.headers if n == name.lower()]

    def get(self, name):
        values = self.get_all(name)
        if len(values) != 1:
            raise AssertionError("want one %s header, got %r in %r"
                                 % (name, values, self.raw[:500]))
        return values[0]

    def tokens(self, name):
        return {t.strip() for v in self.get_all(name)
                for t in v.split(",") if t.strip()}


def connect(srv):
    family = socket.AF_INET6 if ":" in srv.host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(IO_TIMEOUT)
    s.connect((srv.host, srv.port))
    return s


def read_to_eof(s):
    chunks = []
    while True:
        try:
            data = s.recv(65536)
        except ConnectionResetError:
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)


def http(srv, target, method="GET", headers=None, body=b""):
    """Send one request with this exact target (a str taken as latin-1,
    or bytes) and return the Response; the server closes afterwards."""
    if isinstance(target, str):
        target = target.encode("latin-1")
    hdrs = {"Host": "%s:%d" % (srv.host, srv.port)}
    if body:
        hdrs["Content-Length"] = str(len(body))
    hdrs.update(headers or {})
    head = method.encode() + b" " + target + b" HTTP/1.1\r\n"
    for name, value in hdrs.items():
        head += ("%s: %s\r\n" % (name, value)).encode("latin-1")
    s = connect(srv)
    try:
        s.sendall(head + b"\r\n" + body)
        return Response(read_to_eof(s))
    finally:
        s.close()


class WebSocket:
    """Just enough of a client to see the handshake's answer and the
    close frame a stopping server sends."""

    def __init__(self, srv, origin=None, path="/chat"):
        self.key = base64.b64encode(os.urandom(16)).decode()
        lines = ["GET %s HTTP/1.1" % path,
                 "Host: %s:%d" % (srv.host, srv.port),
                 "Upgrade: websocket", "Connection: Upgrade",
                 "Sec-WebSocket-Key: " + self.key,
                 "Sec-WebSocket-Version: 13"]
        if origin is not None:
            lines.append("Origin: " + origin)
        self.sock = connect(srv)
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            data += chunk
        head, _, self.buf = data.partition(b"\r\n\r\n")
        self.response = Response(head + b"\r\n\r\n")
        self.status = self.response.status
        if self.status == 101:
            want = base64.b64encode(hashlib.sha1(
                self.key.encode() + WS_GUID).digest()).decode()
            if self.response.get("Sec-WebSocket-Accept") != want:
                raise AssertionError("bad Sec-WebSocket-Accept in %r" % head)

    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed with %d of %d bytes"
                               % (len(self.buf), n))
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_frame(self):
        """(opcode, payload) of the next frame."""
        b0, b1 = self._need(2)
        if b1 & 0x80:
            raise AssertionError("server frame is masked")
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._need(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._need(8))[0]
        return b0 & 0x0F, self._need(n)

    def read_close(self):
        """Skip data frames until the close frame; return its code."""
        while True:
            opcode, payload = self.read_frame()
            if opcode == 0x8:
                return struct.unpack("!H", payload[:2])[0] if payload \
                    else 1005

    def send_close(self, code=1000):
        payload = struct.pack("!H", code)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(bytes([0x88, 0x80 | len(payload)]) + mask + masked)

    def close(self):
        self.sock.close()


# -------------------------------------------------------------------- cases

class WschatdCase(unittest.TestCase):
    """Each test starts its own server(s) on port 0 and stops each with
    SIGTERM at the end, asserting exit status 0 within 2 s."""

    @classmethod
    def setUpClass(cls):
        if not os.access(wschatd_binary(), os.X_OK):
            raise AssertionError("wschatd binary %s is missing (make)"
                                 % wschatd_binary())
        cls.tmp = tempfile.TemporaryDirectory(prefix="wschatd-web-")
        base = cls.tmp.name
        cls.secret = "TOP-SECRET-%s" % os.urandom(8).hex()
        with open(os.path.join(base, "secret.txt"), "w") as f:
            f.write(cls.secret + "\n")
        cls.web_root = os.path.join(base, "root")
        for name, (content, _) in FILES.items():
            path = os.path.join(cls.web_root, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(content)
        os.makedirs(os.path.join(cls.web_root, "emptydir"))
        # Symbolic links out of the tree, and one inside it: none is
        # followed.
        os.symlink("../secret.txt", os.path.join(cls.web_root, "link.txt"))
        os.symlink(base, os.path.join(cls.web_root, "linkdir"))
        os.symlink("index.html", os.path.join(cls.web_root, "alias.html"))
        os.mkfifo(os.path.join(cls.web_root, "fifo.txt"))
        # One byte over the 16 MiB cap (sparse, so it costs no disk).
        with open(os.path.join(cls.web_root, "huge.bin"), "wb") as f:
            f.truncate(16 * 1024 * 1024 + 1)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def setUp(self):
        self.servers = []

    def tearDown(self):
        for srv in self.servers:
            try:
                if srv.proc.poll() is None and srv.exit_status is None:
                    status, took = srv.stop()
                    self.assertEqual(status, 0, "exit status after SIGTERM; "
                                     "stderr:\n" + srv.stderr())
                    self.assertLess(took, STOP_LIMIT)
            finally:
                srv.close()

    def server(self, *flags, web_root=True, host=None):
        if web_root:
            flags = ("--web-root", self.web_root) + flags
        srv = Wschatd(*flags, host=host)
        self.servers.append(srv)
        return srv

    def assert_file(self, resp, name):
        content, ctype = FILES[name]
        self.assertEqual(resp.status_line, "HTTP/1.1 200 OK", resp.raw[:300])
        self.assertEqual(resp.get("Content-Type"), ctype)
        self.assertEqual(resp.get("Content-Length"), str(len(content)))
        self.assertEqual(resp.get("Cache-Control"), "no-cache")
        self.assertEqual(resp.body, content)


class StaticFiles(WschatdCase):

    def test_every_type_exact_bytes(self):
        srv = self.server()
        for name in FILES:
            if name.startswith("."):
                continue
            with self.subTest(name=name):
                target = "/" + name.replace(" ", "%20")
                self.assert_file(http(srv, target), name)

    def test_root_and_directory_slash_serve_index_html(self):
        srv = self.server()
        self.assert_file(http(srv, "/"), "index.html")
        self.assert_file(http(srv, "/sub/"), "sub/index.html")
        self.assert_file(http(srv, "/index.html?v=3#x"), "index.html")
        self.assert_file(http(srv, "/?cache=bust"), "index.html")

    def test_absolute_form_target(self):
        srv = self.server()
        self.assert_file(http(srv, "http://example.org/style.css"),
                         "style.css")

    def test_head_has_headers_of_get_and_no_body(self):
        srv = self.server()
        for name in ("index.html", "logo.png", "empty.txt"):
            with self.subTest(name=name):
                content, ctype = FILES[name]
                r = http(srv, "/" + name, method="HEAD")
                self.assertEqual(r.status, 200)
                self.assertEqual(r.get("Content-Type"), ctype)
                self.assertEqual(r.get("Content-Length"), str(len(content)))
                self.assertEqual(r.body, b"")

    def test_not_found(self):
        srv = self.server()
        for target in ("/missing.html", "/sub/missing", "/sub",
                       "/emptydir/", "/emptydir", "/sub/deeper",
                       "/index.html/", "/.hidden", "/%2ehidden",
                       "/sub/.hidden", "/fifo.txt", "/link.txt",
                       "/alias.html", "/linkdir/secret.txt",
                       "/linkdir/root/index.html"):
            with self.subTest(target=target):
                r = http(srv, target)
                self.assertEqual(r.status_line, "HTTP/1.1 404 Not Found")
                self.assertEqual(r.get("Content-Type"), TEXT)
                self.assertEqual(r.body, b"not found\n")
                self.assertEqual(r.get("Content-Length"), str(len(r.body)))
        r = http(srv, "/missing.html", method="HEAD")
        self.assertEqual(r.status, 404)
        self.assertEqual(r.body, b"")

    def test_file_over_16_mib_is_refused(self):
        srv = self.server()
        r = http(srv, "/huge.bin")
        self.assertEqual(r.status_line, "HTTP/1.1 500 Internal Server Error")
        self.assertLess(len(r.body), 100)
        self.assertIn("huge.bin", srv.stderr())

    def test_default_web_root(self):
        # The documented search, mirrored: the installed client (default
        # PREFIX /usr/local), else examples/web of the source tree the
        # binary was built in (BUILD/cmd/wschatd, BUILD one or two levels
        # deep), else none. Whichever it is, "/" must be its index.html.
        exe_dir = os.path.dirname(os.path.realpath(wschatd_binary()))
        candidates = ["/usr/local/share/wschat/web",
                      os.path.join(exe_dir, "..", "..", "examples", "web"),
                      os.path.join(exe_dir, "..", "..", "..", "examples",
                                   "web")]
        expected = next((os.path.realpath(c) for c in candidates
                         if os.path.isdir(c)), None)
        srv = self.server(web_root=False)
        r = http(srv, "/")
        log = srv.stderr()
        if expected is None:
            self.assertEqual(r.status, 404)
            self.assertRegex(log, r"(?m) warn no web root ")
            return
        self.assertRegex(log, r"(?m) info web root %s$"
                         % re.escape(expected))
        index = os.path.join(expected, "index.html")
        if os.path.isfile(index):
            with open(index, "rb") as f:
                self.assertEqual((r.status, r.body), (200, f.read()))
            self.assertEqual(r.get("Content-Type"), HTML)
        else:
            self.assertEqual(r.status, 404)

    def test_without_web_root_files_are_404_but_endpoints_work(self):
        empty = tempfile.TemporaryDirectory(prefix="wschatd-empty-")
        self.addCleanup(empty.cleanup)
        srv = self.server("--web-root", empty.name, web_root=False)
        self.assertEqual(http(srv, "/").status, 404)
        self.assertEqual(http(srv, "/healthz").status, 200)


class Traversal(WschatdCase):
    """Every form must be refused (400 for malformed or encoded traversal,
    404 for names that do not resolve) and never return the secret file
    beside the web root, /etc/passwd, or any file at all."""

    BAD_REQUEST = [
        "/../secret.txt",
        "/../../../../../../../../etc/passwd",
        "/sub/../../secret.txt",
        "/sub/../index.html",
        "/sub/..",
        "/..",
        "/%2e%2e/secret.txt",
        "/%2E%2e/secret.txt",
        "/%2e%2E/secret.txt",
        "/%2E%2E%2fsecret.txt",
        "/%2E%2E%2Fsecret.txt",
        "/.%2e/secret.txt",
        "/%2e./secret.txt",
        "/..%2fsecret.txt",
        "/..%2f..%2f..%2fetc%2fpasswd",
        "/%2fetc/passwd",
        "/%2fetc%2fpasswd",
        "/sub%2findex.html",
        "/..%5csecret.txt",
        "/%5c..%5csecret.txt",
        "/%5cetc%5cpasswd",
        "/..\\secret.txt",
        "/\\etc\\passwd",
        "/sub\\..\\..\\secret.txt",
        "//etc/passwd",
        "///etc/passwd",
        "/sub//index.html",
        "/./index.html",
        "/%2e/index.html",
        "/sub/./index.html",
        "/index.html%00",
        "/index.html%00.txt",
        "/%00",
        "/%zz",
        "/%2",
        "/index.html%",
        "/%1b[31m",
        "http://x/../secret.txt",
        "http://x/..%2fsecret.txt",
        "http://x/%2e%2e/secret.txt",
        "http://x//etc/passwd",
        "*",
        "etc/passwd",
        "../secret.txt",
    ]

    def assert_refused(self, srv, target, statuses):
        r = http(srv, target)
        self.assertIn(r.status, statuses, "%r -> %r" % (target, r.raw[:300]))
        self.assertNotIn(self.secret.encode(), r.body)
        self.assertNotIn(b"root:", r.body)
        self.assertNotIn(FILES["index.html"][0], r.body)
        self.assertLess(len(r.body), 200)

    def test_traversal_is_400(self):
        srv = self.server()
        for target in self.BAD_REQUEST:
            with self.subTest(target=target):
                self.assert_refused(srv, target, (400,))
        # Nothing above disturbed the server.
        self.assert_file(http(srv, "/"), "index.html")

    def test_symlinks_out_of_the_tree_are_404(self):
        srv = self.server()
        for target in ("/link.txt", "/linkdir/secret.txt",
                       "/linkdir/root/index.html", "/alias.html"):
            with self.subTest(target=target):
                self.assert_refused(srv, target, (404,))

    def test_refusals_are_logged(self):
        srv = self.server()
        http(srv, "/%2e%2e/secret.txt")
        self.assertIn("refused path", srv.stderr())


class Methods(WschatdCase):

    def test_only_get_and_head(self):
        srv = self.server()
        for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
            for target in ("/", "/index.html", "/healthz", "/metrics",
                           "/missing"):
                with self.subTest(method=method, target=target):
                    body = b"x=1" if method in ("POST", "PUT") else b""
                    r = http(srv, target, method=method, body=body)
                    self.assertEqual(r.status_line,
                                     "HTTP/1.1 405 Method Not Allowed")
                    # Allow is a list header: however many lines carry
                    # it, together they must say exactly GET and HEAD.
                    self.assertEqual(r.tokens("Allow"), {"GET", "HEAD"})
                    self.assertEqual(r.body, b"method not allowed\n")

    def test_plain_get_of_chat_is_426(self):
        srv = self.server()
        r = http(srv, "/chat")
        self.assertEqual(r.status_line, "HTTP/1.1 426 Upgrade Required")
        self.assertIn("websocket", r.tokens("Upgrade"))


class Endpoints(WschatdCase):

    def test_healthz(self):
        srv = self.server()
        r = http(srv, "/healthz")
        self.assertEqual(r.status_line, "HTTP/1.1 200 OK")
        self.assertEqual(r.get("Content-Type"), TEXT)
        self.assertEqual(r.get("Cache-Control"), "no-cache")
        self.assertEqual(r.body, b"ok\n")
        r = http(srv, "/healthz", method="HEAD")
        self.assertEqual((r.status, r.get("Content-Length"), r.body),
                         (200, "3", b""))

    def test_healthz_without_any_web_root_flag(self):
        srv = self.server(web_root=False)
        self.assertEqual(http(srv, "/healthz").body, b"ok\n")

    def metrics(self, srv):
        r = http(srv, "/metrics")
        self.assertEqual(r.status_line, "HTTP/1.1 200 OK")
        self.assertEqual(r.get("Content-Type"),
                         "text/plain; version=0.0.4; charset=utf-8")
        self.assertEqual(r.get("Content-Length"), str(len(r.body)))
        return r.body.decode("utf-8")

    def test_metrics(self):
        srv = self.server()
        text = self.metrics(srv)
        self.assertRegex(text, r"(?m)^wschat_connections \d+$")
        self.assertRegex(text, r"(?m)^wschat_closes_total\{code=\"[^\"]+\"\}"
                               r" \d+$")
        self.assertTrue(text.endswith("\n"))

    def test_metrics_count_a_clean_close(self):
        srv = self.server()
        ws = WebSocket(srv)
        self.assertEqual(ws.status, 101)
        ws.send_close(1000)
        self.assertEqual(ws.read_close(), 1000)
        ws.close()
        deadline = time.monotonic() + 3
        while True:
            text = self.metrics(srv)
            m = re.search(r'(?m)^wschat_closes_total\{code="1000"\} (\d+)$',
                          text)
            if m and int(m.group(1)) >= 1:
                break
            if time.monotonic() > deadline:
                self.fail("no close 1000 counted in /metrics:\n" + text)
            time.sleep(0.05)
        self.assertRegex(text, r"(?m)^wschat_connections \d+$")


class Origins(WschatdCase):

    def status(self, srv, origin):
        ws = WebSocket(srv, origin=origin)
        try:
            if ws.status == 101:
                ws.send_close(1000)
            return ws.status
        finally:
            ws.close()

    def test_default_allows_no_origin_and_same_origin_only(self):
        srv = self.server()
        p = srv.port
        cases = [
            (None, 101),
            ("http://127.0.0.1:%d" % p, 101),
            ("http://localhost:%d" % p, 101),
            ("HTTP://LOCALHOST:%d" % p, 101),
            ("http://127.0.0.1:%d" % (p + 1 if p < 65535 else p - 1), 403),
            ("https://127.0.0.1:%d" % p, 403),
            ("http://127.0.0.1", 403),
            ("http://evil.example", 403),
            ("http://evil.example:%d" % p, 403),
            ("null", 403),
            ("", 403),
        ]
        for origin, want in cases:
            with self.subTest(origin=origin):
                self.assertEqual(self.status(srv, origin), want)
        self.assertIn("refused a WebSocket upgrade from origin "
                      "http://evil.example", srv.stderr())

    def test_allow_origin_adds_to_the_policy(self):
        srv = self.server("--allow-origin", "https://chat.example.org",
                          "--allow-origin", "http://b.example:8000")
        p = srv.port
        cases = [
            (None, 101),
            ("https://chat.example.org", 101),
            ("https://CHAT.example.org", 101),
            ("http://b.example:8000", 101),
            ("http://127.0.0.1:%d" % p, 101),
            ("http://chat.example.org", 403),
            ("https://chat.example.org:8443", 403),
            ("https://evil.example.org", 403),
            ("http://b.example", 403),
        ]
        for origin, want in cases:
            with self.subTest(origin=origin):
                self.assertEqual(self.status(srv, origin), want)

    def test_allow_origin_star_accepts_any(self):
        srv = self.server("--allow-origin", "*")
        for origin in (None, "http://anything.example", "null"):
            with self.subTest(origin=origin):
                self.assertEqual(self.status(srv, origin), 101)

    def test_refused_upgrade_is_403_with_connection_close(self):
        srv = self.server()
        ws = WebSocket(srv, origin="http://evil.example")
        try:
            self.assertEqual(ws.response.status_line,
                             "HTTP/1.1 403 Forbidden")
            self.assertEqual(ws.response.get_all("Sec-WebSocket-Accept"), [])
        finally:
            ws.close()


class Flags(WschatdCase):

    def test_version(self):
        status, out, err = run_wschatd("--version")
        self.assertEqual((status, err), (0, ""))
        self.assertRegex(out, r"^wschatd 0\.1\.0 \(libwschat \d+\.\d+\.\d+\)"
                              r"\n$")

    def test_help(self):
        status, out, err = run_wschatd("--help")
        self.assertEqual((status, err), (0, ""))
        self.assertTrue(out.startswith("usage: wschatd"), out)
        for flag in ("--host", "--port", "--web-root", "--history",
                     "--max-text", "--max-message", "--rate",
                     "--max-connections", "--allow-origin", "--idle-timeout",
                     "--log-level", "--version", "--help"):
            self.assertIn(flag, out)

    BAD = [
        (["--port", "abc"], "--port", "invalid value 'abc' (expected "
                                      "0-65535)"),
        (["--port", "65536"], "--port", "65536"),
        (["--port", "-1"], "--port", "-1"),
        (["--port", ""], "--port", "invalid value"),
        (["--port", " 80"], "--port", "invalid value"),
        (["--port", "80x"], "--port", "80x"),
        (["--port"], "--port", "missing value"),
        (["--host", "example.com"], "--host", "example.com"),
        (["--host", "256.1.1.1"], "--host", "256.1.1.1"),
        (["--web-root", "/nonexistent/wschatd"], "--web-root",
         "/nonexistent/wschatd"),
        (["--web-root", "/etc/passwd"], "--web-root", "Not a directory"),
        (["--history", "x"], "--history", "'x'"),
        (["--history", "1000001"], "--history", "1000001"),
        (["--max-text", "0"], "--max-text", "'0'"),
        (["--max-text", "1048577"], "--max-text", "1048577"),
        (["--max-message", "0"], "--max-message", "'0'"),
        (["--max-message", "99999999999999999999999"], "--max-message",
         "99999999999999999999999"),
        (["--rate", "1.5"], "--rate", "1.5"),
        (["--rate", "1000001"], "--rate", "1000001"),
        (["--max-connections", "0"], "--max-connections", "'0'"),
        (["--idle-timeout", "86400001"], "--idle-timeout", "86400001"),
        (["--idle-timeout", "1s"], "--idle-timeout", "1s"),
        (["--log-level", "loud"], "--log-level", "loud"),
        (["--log-level", "INFO"], "--log-level", "INFO"),
        (["--allow-origin", "example.com"], "--allow-origin",
         "example.com"),
        (["--allow-origin", "http://example.com/"], "--allow-origin",
         "http://example.com/"),
        (["--allow-origin", "http://example.com:99999"], "--allow-origin",
         "99999"),
        (["--bogus"], "--bogus", "unknown option"),
        (["--bogus=1"], "--bogus", "unknown option"),
        (["-p", "80"], "-p", "unknown option"),
        (["--max", "5"], "--max", "ambiguous"),
        (["--version=2"], "--version", "takes no value"),
        (["8080"], "8080", "unexpected argument"),
        (["--port", "0", "--rate", "x"], "--rate", "'x'"),
    ]

    def test_bad_flags_exit_2_with_one_line(self):
        for args, flag, detail in self.BAD:
            with self.subTest(args=args):
                status, out, err = run_wschatd(*args)
                self.assertEqual(status, 2, err)
                self.assertEqual(out, "")
                self.assertEqual(err.count("\n"), 1, err)
                self.assertTrue(err.endswith("\n"), err)
                self.assertTrue(err.startswith("wschatd: %s: " % flag), err)
                self.assertIn(detail, err)

    def test_good_values_at_the_edges(self):
        srv = self.server("--history", "0", "--max-text", "1048576",
                          "--max-message", "9223372036854775808",
                          "--rate", "0", "--max-connections", "10000000",
                          "--idle-timeout", "86400000", "--log-level", "warn",
                          "--allow-origin", "http://[::1]:8080")
        self.assertEqual(http(srv, "/healthz").status, 200)
        srv2 = self.server("--history", "1000000", "--max-text", "1",
                           "--max-message", "1", "--rate", "1000000",
                           "--max-connections", "1", "--idle-timeout", "0")
        self.assertEqual(http(srv2, "/healthz").status, 200)

    def test_max_connections_is_applied(self):
        srv = self.server("--max-connections", "1")
        hold = connect(srv)
        # A first byte, so the kernel hands the connection over now (the
        # listener defers silent ones, TCP_DEFER_ACCEPT).
        hold.sendall(b"G")
        try:
            time.sleep(0.1)
            r = http(srv, "/healthz")
            self.assertEqual(r.status, 503)
        finally:
            hold.close()

    def test_listen_failure_exits_1_with_one_line(self):
        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        try:
            port = busy.getsockname()[1]
            status, out, err = run_wschatd("--port", port)
        finally:
            busy.close()
        self.assertEqual(status, 1, err)
        self.assertEqual(out, "")
        self.assertEqual(err.count("\n"), 1, err)
        self.assertIn("127.0.0.1:%d" % port, err)
        self.assertIn("address already in use", err)

    def test_ipv6_loopback(self):
        # Either it serves on [::1] or, where the machine has no IPv6,
        # it fails to listen the documented way.
        try:
            probe = socket.socket(socket.AF_INET6)
            probe.bind(("::1", 0))
            probe.close()
        except OSError:
            status, out, err = run_wschatd("--host", "::1")
            self.assertEqual((status, out, err.count("\n")), (1, "", 1))
            return
        srv = self.server(host="::1")
        self.assertEqual(srv.host, "::1")
        self.assert_file(http(srv, "/"), "index.html")
        ws = WebSocket(srv, origin="http://[::1]:%d" % srv.port)
        self.assertEqual(ws.status, 101)
        ws.close()


class Logging(WschatdCase):

    def log_lines(self, srv):
        lines = srv.stderr().splitlines()
        for line in lines:
            self.assertRegex(line, LOG_RE)
        return lines

    def test_startup_lines(self):
        srv = self.server()
        self.assertEqual(srv.stdout(), srv.serving_line)
        lines = self.log_lines(srv)
        self.assertTrue(any(re.search(r" info .*listening on "
                                      r"http://127\.0\.0\.1:%d/$" % srv.port,
                                      line) for line in lines), lines)
        self.assertTrue(any(self.web_root in line for line in lines), lines)
        # info hides debug: no request lines.
        http(srv, "/")
        self.assertNotIn(" debug ", srv.stderr())

    def test_debug_logs_requests(self):
        srv = self.server("--log-level", "debug")
        http(srv, "/style.css?x=1")
        http(srv, "/missing")
        time.sleep(0.05)
        log = srv.stderr()
        self.assertRegex(log, r"(?m) debug http GET /style\.css\?x=1 200 "
                              r"%d$" % len(FILES["style.css"][0]))
        self.assertRegex(log, r"(?m) debug http GET /missing 404 ")
        self.log_lines(srv)

    def test_error_level_is_quiet(self):
        srv = self.server("--log-level", "error")
        http(srv, "/")
        http(srv, "/%2e%2e/")
        status, took = srv.stop()
        self.assertEqual(status, 0)
        self.assertEqual(srv.stderr(), "")

    def test_stop_is_logged(self):
        srv = self.server()
        status, took = srv.stop(signal.SIGINT)
        self.assertEqual(status, 0)
        self.assertLess(took, STOP_LIMIT)
        lines = self.log_lines(srv)
        self.assertTrue(any("received SIGINT" in line for line in lines),
                        lines)
        self.assertTrue(lines[-1].endswith(" info stopped"), lines)


class Signals(WschatdCase):

    def test_sigterm_closes_sessions_with_1001(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            with self.subTest(signal=sig.name):
                srv = self.server()
                ws = WebSocket(srv)
                self.assertEqual(ws.status, 101)
                t0 = time.monotonic()
                srv.proc.send_signal(sig)
                self.assertEqual(ws.read_close(), 1001)
                ws.send_close(1001)
                status = srv.proc.wait(STOP_LIMIT + 3)
                took = time.monotonic() - t0
                srv.exit_status = status
                ws.close()
                self.assertEqual(status, 0, srv.stderr())
                self.assertLess(took, STOP_LIMIT)

    def test_stop_is_bounded_when_peers_never_answer(self):
        srv = self.server()
        silent = [WebSocket(srv) for _ in range(3)]
        half_request = connect(srv)
        half_request.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        try:
            for ws in silent:
                self.assertEqual(ws.status, 101)
            status, took = srv.stop()
            self.assertEqual(status, 0, srv.stderr())
            self.assertLess(took, STOP_LIMIT)
        finally:
            for ws in silent:
                ws.close()
            half_request.close()

    def test_second_signal_does_not_kill(self):
        srv = self.server()
        ws = WebSocket(srv)
        try:
            t0 = time.monotonic()
            srv.proc.send_signal(signal.SIGTERM)
            time.sleep(0.1)
            srv.proc.send_signal(signal.SIGTERM)
            status = srv.proc.wait(STOP_LIMIT + 3)
            srv.exit_status = status
            self.assertEqual(status, 0, srv.stderr())
            self.assertLess(time.monotonic() - t0, STOP_LIMIT)
        finally:
            ws.close()


if __name__ == "__main__":
    unittest.main()
