"""rawws - a raw-socket WebSocket client for tests (stdlib only).

It sends what real clients refuse to: byte-exact handshakes (any method,
version, header), frames with any FIN/RSV bits, opcode, mask and length
encoding, and payloads cut anywhere. It reads the server's answers
strictly: an HTTP response head with its body, or RFC 6455 frames that
must be unmasked and use the shortest length encoding (section 5.2).

Everything raises AssertionError (a test failure, not an error) when the
server's bytes break the protocol, and socket.timeout when the server says
nothing for `timeout` seconds.
"""

import base64
import hashlib
import os
import socket
import struct
import time

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

OPNAMES = {0: "CONT", 1: "TEXT", 2: "BINARY", 8: "CLOSE", 9: "PING",
           10: "PONG"}


def accept_for(key):
    """Sec-WebSocket-Accept for a key (str or bytes), RFC 6455 4.2.2."""
    if isinstance(key, str):
        key = key.encode("ascii")
    return base64.b64encode(hashlib.sha1(key + GUID).digest()).decode()


def new_key():
    return base64.b64encode(os.urandom(16)).decode("ascii")


def mask_bytes(payload, key):
    """XOR payload with the 4-byte key (RFC 6455 5.3)."""
    if not payload:
        return b""
    n = len(payload)
    full = (key * ((n + 3) // 4))[:n]
    return (int.from_bytes(payload, "big") ^
            int.from_bytes(full, "big")).to_bytes(n, "big")


def encode_frame(opcode, payload=b"", fin=True, rsv=0, mask=True,
                 mask_key=None, length=None, length_bytes=None):
    """Build one frame.

    rsv is the three RSV bits as a number 0..7 (4 = RSV1, 2 = RSV2,
    1 = RSV3). length overrides the announced payload length (to lie);
    length_bytes forces the encoding: 0 (7-bit), 2 (16-bit) or 8 (64-bit).
    With mask=False the frame goes out unmasked, as a server's would.
    """
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 0x0F)
    mbit = 0x80 if mask else 0
    if length_bytes is None:
        length_bytes = 0 if n < 126 else (2 if n < 65536 else 8)
    if length_bytes == 0:
        head = struct.pack("!BB", b0, mbit | n)
    elif length_bytes == 2:
        head = struct.pack("!BBH", b0, mbit | 126, n)
    elif length_bytes == 8:
        head = struct.pack("!BBQ", b0, mbit | 127, n)
    else:
        raise ValueError("length_bytes must be 0, 2 or 8")
    if not mask:
        return head + payload
    if mask_key is None:
        mask_key = os.urandom(4)
    return head + mask_key + mask_bytes(payload, mask_key)


def close_payload(code=None, reason=b""):
    if code is None:
        return b""
    if isinstance(reason, str):
        reason = reason.encode("utf-8")
    return struct.pack("!H", code) + reason


class Frame:
    def __init__(self, fin, rsv, opcode, payload, raw_header):
        self.fin = fin
        self.rsv = rsv
        self.opcode = opcode
        self.payload = payload
        self.raw_header = raw_header

    @property
    def close_code(self):
        if self.opcode != OP_CLOSE or len(self.payload) < 2:
            return None
        return struct.unpack("!H", self.payload[:2])[0]

    @property
    def close_reason(self):
        return self.payload[2:]

    def __repr__(self):
        p = self.payload
        shown = p[:40] + (b"..." if len(p) > 40 else b"")
        extra = ""
        if self.opcode == OP_CLOSE:
            extra = " code=%r" % (self.close_code,)
        return "<Frame %s fin=%d rsv=%d len=%d%s %r>" % (
            OPNAMES.get(self.opcode, hex(self.opcode)), self.fin, self.rsv,
            len(p), extra, shown)


class HTTPResponse:
    def __init__(self, status_line, headers, body, raw):
        self.status_line = status_line
        self.headers = headers  # list of (name, value) as received
        self.body = body
        self.raw = raw
        parts = status_line.split(" ", 2)
        self.version = parts[0]
        self.status = int(parts[1]) if len(parts) > 1 and \
            parts[1].isdigit() else -1
        self.reason = parts[2] if len(parts) > 2 else ""

    def get_all(self, name):
        name = name.lower()
        return [v for (k, v) in self.headers if k.lower() == name]

    def get(self, name, default=None):
        vals = self.get_all(name)
        return vals[0] if vals else default

    def has(self, name):
        return bool(self.get_all(name))

    def tokens(self, name):
        """Comma-separated header values, lowercased, across all lines."""
        out = []
        for v in self.get_all(name):
            out += [t.strip().lower() for t in v.split(",") if t.strip()]
        return out

    def __repr__(self):
        return "<HTTPResponse %r>" % (self.raw[:600],)


def build_request(path="/", host="127.0.0.1", key=None, version="13",
                  method="GET", http_version="HTTP/1.1",
                  upgrade="websocket", connection="Upgrade",
                  protocols=None, extensions=None, extra_headers=(),
                  omit=()):
    """A byte-exact upgrade request. Any header set to None, or named in
    omit (lowercase), is left out. extra_headers are (name, value) pairs
    appended in order."""
    if key is None:
        key = new_key()
    lines = ["%s %s %s" % (method, path, http_version)]
    hdrs = [("Host", host), ("Upgrade", upgrade), ("Connection", connection),
            ("Sec-WebSocket-Key", key), ("Sec-WebSocket-Version", version)]
    if protocols is not None:
        hdrs.append(("Sec-WebSocket-Protocol", protocols))
    if extensions is not None:
        hdrs.append(("Sec-WebSocket-Extensions", extensions))
    for name, value in hdrs:
        if value is None or name.lower() in omit:
            continue
        lines.append("%s: %s" % (name, value))
    for name, value in extra_headers:
        lines.append("%s: %s" % (name, value))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"), key


class ConnectionEnded(Exception):
    """The server closed (or reset) the TCP connection."""


class RawWS:
    """One TCP connection to the server, driven byte by byte."""

    def __init__(self, host, port, timeout=5.0):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(timeout)
        self.timeout = timeout
        self.sock.connect((host, port))
        self.host = host
        self.port = port
        self.buf = b""
        self.eof = False
        self.reset = False
        self.key = None

    # -- bytes ------------------------------------------------------------

    def send(self, data):
        self.sock.sendall(data)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def abort(self):
        """Close with RST (SO_LINGER 0) instead of FIN."""
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                 struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close()

    def _fill(self, timeout=None):
        """Read more bytes into buf. Raises ConnectionEnded on EOF/RST."""
        if self.eof:
            raise ConnectionEnded("eof")
        self.sock.settimeout(self.timeout if timeout is None else timeout)
        try:
            chunk = self.sock.recv(1 << 20)
        except ConnectionResetError:
            self.eof = True
            self.reset = True
            raise ConnectionEnded("reset")
        if not chunk:
            self.eof = True
            raise ConnectionEnded("eof")
        self.buf += chunk

    def _need(self, n, timeout=None):
        deadline = time.monotonic() + (self.timeout if timeout is None
                                       else timeout)
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("timed out waiting for %d bytes, "
                                     "have %r" % (n, self.buf[:200]))
            self._fill(left)

    def _take(self, n):
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    # -- HTTP -------------------------------------------------------------

    def read_http_response(self, timeout=None):
        deadline = time.monotonic() + (self.timeout if timeout is None
                                       else timeout)
        while b"\r\n\r\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("no complete HTTP response head, have "
                                     "%r" % (self.buf[:600],))
            try:
                self._fill(left)
            except ConnectionEnded:
                raise AssertionError(
                    "connection ended before a complete HTTP response "
                    "head; received %r" % (self.buf[:600],))
        end = self.buf.index(b"\r\n\r\n")
        head = self._take(end + 4)
        text = head[:-4].decode("latin-1")
        lines = text.split("\r\n")
        headers = []
        for line in lines[1:]:
            assert ":" in line, "malformed header line %r in %r" % (line,
                                                                    head)
            name, value = line.split(":", 1)
            assert name == name.strip() and name, \
                "malformed header name %r" % (name,)
            headers.append((name, value.strip(" \t")))
        resp = HTTPResponse(lines[0], headers, b"", head)
        cl = resp.get_all("Content-Length")
        if resp.status != 101 and not cl:
            # No Content-Length: the body runs to the end of the
            # connection (RFC 9112 6.3).
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise socket.timeout("close-delimited body did not end")
                try:
                    self._fill(left)
                except ConnectionEnded:
                    break
            resp.body = self._take(len(self.buf))
            resp.raw = head + resp.body
        elif resp.status != 101 and cl:
            assert len(cl) == 1 and cl[0].isdigit(), \
                "bad Content-Length %r" % (cl,)
            n = int(cl[0])
            try:
                self._need(n, max(0.1, deadline - time.monotonic()))
            except ConnectionEnded:
                raise AssertionError("body shorter than Content-Length %d: "
                                     "%r" % (n, self.buf))
            resp.body = self._take(n)
            resp.raw = head + resp.body
        return resp

    def handshake(self, path="/", expect_status=101, extra=b"",
                  **request_kw):
        """Send an upgrade request (plus `extra` bytes in the same write)
        and read the response. With expect_status=101 the response is
        checked completely against RFC 6455 4.2.2."""
        req, key = build_request(path=path, **request_kw)
        self.key = key
        self.send(req + extra)
        resp = self.read_http_response()
        if expect_status is not None:
            assert resp.status == expect_status, \
                "expected %s, got %r" % (expect_status, resp.raw[:600])
        if expect_status == 101:
            check_101(resp, key)
        return resp

    # -- frames -----------------------------------------------------------

    def send_frame(self, opcode, payload=b"", **kw):
        self.send(encode_frame(opcode, payload, **kw))

    def send_text(self, text, **kw):
        self.send_frame(OP_TEXT, text, **kw)

    def send_binary(self, data, **kw):
        self.send_frame(OP_BINARY, data, **kw)

    def send_close(self, code=None, reason=b"", **kw):
        self.send_frame(OP_CLOSE, close_payload(code, reason), **kw)

    def recv_frame(self, timeout=None):
        """Read one server frame, checked strictly. Raises
        ConnectionEnded if the connection ends before a whole frame."""
        deadline = time.monotonic() + (self.timeout if timeout is None
                                       else timeout)

        def left():
            return max(0.01, deadline - time.monotonic())

        self._need(2, left())
        b0, b1 = self.buf[0], self.buf[1]
        assert not (b1 & 0x80), \
            "server frame is masked (RFC 6455 5.1): %r" % (self.buf[:14],)
        n = b1 & 0x7F
        hlen = 2
        if n == 126:
            self._need(4, left())
            n = struct.unpack("!H", self.buf[2:4])[0]
            hlen = 4
            assert n >= 126, "non-minimal 16-bit length %d (RFC 6455 5.2)" \
                % n
        elif n == 127:
            self._need(10, left())
            n = struct.unpack("!Q", self.buf[2:10])[0]
            hlen = 10
            assert n >= 65536 and not (n >> 63), \
                "bad/non-minimal 64-bit length %d (RFC 6455 5.2)" % n
        self._need(hlen + n, left())
        header = self._take(hlen)
        payload = self._take(n)
        f = Frame(bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0x0F, payload,
                  header)
        assert f.opcode in (0, 1, 2, 8, 9, 10), \
            "server sent reserved opcode: %r" % f
        if f.opcode >= 8:
            assert f.fin, "server sent fragmented control frame %r" % f
            assert n <= 125, "server control frame over 125 bytes %r" % f
        return f

    def recv_message(self, timeout=None):
        """The next data frame, which must be a whole message (FIN set,
        RSV clear, not a continuation): the echo server's contract."""
        try:
            f = self.recv_frame(timeout)
        except socket.timeout:
            raise AssertionError("expected a message, but the server sent "
                                 "nothing within %.1fs (pending %r)"
                                 % (self.timeout if timeout is None
                                    else timeout, self.buf[:100]))
        except ConnectionEnded as e:
            raise AssertionError("expected a message, but the connection "
                                 "ended (%s), pending %r" % (e, self.buf))
        assert f.opcode in (OP_TEXT, OP_BINARY), \
            "expected a data frame, got %r" % f
        assert f.fin, "echo must be one unfragmented frame, got %r" % f
        assert f.rsv == 0, "server set RSV bits without an extension: %r" \
            % f
        return f

    def expect_eof(self, timeout=3.0):
        """Assert that the server closes the TCP connection (FIN, or a
        reset) within timeout, sending no more bytes."""
        deadline = time.monotonic() + timeout
        while True:
            assert not self.buf, \
                "unexpected bytes before EOF: %r" % (self.buf[:200],)
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("server did not close the TCP "
                                     "connection within %.1fs" % timeout)
            try:
                self._fill(left)
            except ConnectionEnded:
                return
            except socket.timeout:
                raise AssertionError("server did not close the TCP "
                                     "connection within %.1fs" % timeout)

    def expect_close(self, code, timeout=None, reply=False,
                     eof_timeout=3.0):
        """Read the next frame, which must be a close frame with `code`
        (None: an empty payload), then assert EOF. With reply=True a
        masked close frame echoing the code is sent first, as a client
        completing a server-initiated close handshake would."""
        try:
            f = self.recv_frame(timeout)
        except ConnectionEnded as e:
            raise AssertionError("expected close frame %r, but the "
                                 "connection ended (%s) with %r pending"
                                 % (code, e, self.buf))
        except socket.timeout:
            raise AssertionError("expected close frame %r, but the server "
                                 "sent nothing within %.1fs (pending %r)"
                                 % (code, self.timeout if timeout is None
                                    else timeout, self.buf[:100]))
        check_close_frame(f, code)
        if reply:
            try:
                self.send_close(f.close_code)
            except OSError:
                pass
        self.expect_eof(eof_timeout)
        return f

    def nothing_for(self, seconds):
        """Assert that no byte arrives for `seconds` (the connection
        stays open)."""
        self.sock.settimeout(seconds)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            return
        except ConnectionResetError:
            raise AssertionError("connection reset, expected silence")
        if not chunk:
            raise AssertionError("connection closed, expected silence")
        raise AssertionError("expected nothing, got %r" % (chunk[:200],))


def check_close_frame(f, code):
    assert f.opcode == OP_CLOSE, "expected close frame %r, got %r" % (code,
                                                                      f)
    assert f.fin and f.rsv == 0, "bad close frame bits %r" % f
    if code is None:
        assert f.payload == b"", "expected empty close payload, got %r" % f
        return
    codes = code if isinstance(code, tuple) else (code,)
    assert len(f.payload) >= 2, "close frame without code, want %r: %r" \
        % (code, f)
    assert f.close_code in codes, "expected close code %r, got %r" % (code,
                                                                     f)
    try:
        f.close_reason.decode("utf-8")
    except UnicodeDecodeError:
        raise AssertionError("close reason is not UTF-8: %r" % f)


def check_101(resp, key):
    assert resp.status_line == "HTTP/1.1 101 Switching Protocols", \
        "bad status line %r" % (resp.status_line,)
    assert [v.lower() for v in resp.get_all("Upgrade")] == ["websocket"], \
        "Upgrade header %r" % (resp.get_all("Upgrade"),)
    assert "upgrade" in resp.tokens("Connection"), \
        "Connection header %r" % (resp.get_all("Connection"),)
    assert resp.get_all("Sec-WebSocket-Accept") == [accept_for(key)], \
        "Sec-WebSocket-Accept %r, want %r" % (
            resp.get_all("Sec-WebSocket-Accept"), accept_for(key))
    assert not resp.has("Sec-WebSocket-Extensions"), \
        "server accepted an extension: %r" % (resp.raw,)
    assert resp.body == b""


def connect(port, host="127.0.0.1", timeout=5.0, **handshake_kw):
    """Connect and complete an upgrade; returns the open RawWS."""
    ws = RawWS(host, port, timeout)
    try:
        ws.handshake(**handshake_kw)
    except BaseException:
        ws.close()
        raise
    return ws

