"""build/examples/echo against a real client: Debian's python3-websockets
(10.4, asyncio API).

Run: BUILD=build /usr/bin/python3 -m unittest -v tests/integration/test_echo_client.py
"""

import asyncio
import os
import signal
import sys
import time
import unittest

import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatusCode

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import rawws  # noqa: E402
from echoserver import EchoServer  # noqa: E402
from serverproc import stop_all  # noqa: E402

TIMEOUT = 10


def uri(srv, path="/"):
    host = "[%s]" % srv.host if ":" in srv.host else srv.host
    return "ws://%s:%d%s" % (host, srv.port, path)


def payload(n, binary):
    if binary:
        return bytes((i * 31 + 7) & 0xFF for i in range(n)) if n < 70000 \
            else os.urandom(n)
    base = "abcdé€𝄞xyz"
    s = (base * (n // len(base) + 1))
    # trim to exactly n UTF-8 bytes, at a character boundary
    b = s.encode("utf-8")[:n]
    while True:
        try:
            text = b.decode("utf-8")
            break
        except UnicodeDecodeError:
            b = b[:-1]
    text += "." * (n - len(text.encode("utf-8")))
    assert len(text.encode("utf-8")) == n
    return text


def async_test(coro_fn):
    """Run an async test method in a fresh event loop. (Not
    IsolatedAsyncioTestCase: it forces asyncio debug mode, whose slow
    callback warnings flood the output and slow the 16 MiB echoes.)"""
    def wrapper(self):
        asyncio.run(asyncio.wait_for(coro_fn(self), 120))
    wrapper.__name__ = coro_fn.__name__
    wrapper.__doc__ = coro_fn.__doc__
    return wrapper


class ClientCase(unittest.TestCase):
    """Each test starts its servers with self.server(); tearDown stops them
    with SIGTERM and asserts exit status 0 (every client is closed by
    then: asyncio.run has returned)."""

    def setUp(self):
        self.servers = []

    def server(self, *flags, host=None):
        s = EchoServer(*flags, host=host)
        self.servers.append(s)
        return s

    def tearDown(self):
        errors = stop_all(self.servers)
        if errors:
            self.fail("\n".join(errors))

    def connect(self, srv, path="/", **kw):
        kw.setdefault("compression", None)
        kw.setdefault("max_size", None)
        kw.setdefault("open_timeout", TIMEOUT)
        kw.setdefault("close_timeout", TIMEOUT)
        return websockets.connect(uri(srv, path), **kw)

    async def roundtrip(self, ws, msg):
        try:
            await asyncio.wait_for(ws.send(msg), TIMEOUT)
            got = await asyncio.wait_for(ws.recv(), TIMEOUT)
        except ConnectionClosed as e:
            size = len(msg.encode()) if isinstance(msg, str) else len(msg)
            self.fail("connection closed during the echo of a %d-byte %s "
                      "message: %s" % (size, "text" if isinstance(msg, str)
                                       else "binary", e))
        self.assertEqual(type(got), type(msg))
        self.assertEqual(len(got), len(msg))
        self.assertEqual(got, msg)


class TestEchoClient(ClientCase):

    @async_test
    async def test_handshake(self):
        srv = self.server()
        async with self.connect(srv, "/any/path?q=1") as ws:
            self.assertIsNone(ws.subprotocol)
            self.assertEqual(
                ws.response_headers.get("Upgrade", "").lower(), "websocket")
            self.assertNotIn("Sec-WebSocket-Extensions", ws.response_headers)
            await self.roundtrip(ws, "hello")
        self.assertEqual(ws.close_code, 1000)

    @async_test
    async def test_echo_sizes_text_and_binary(self):
        srv = self.server()
        async with self.connect(srv) as ws:
            for n in (0, 1, 125, 126, 127, 65535, 65536):
                for binary in (False, True):
                    with self.subTest(n=n, binary=binary):
                        await self.roundtrip(ws, payload(n, binary))
        self.assertEqual(ws.close_code, 1000)

    @async_test
    async def test_echo_16mib_with_raised_limit(self):
        # Only --max-message is raised: a client that reads its echoes as
        # fast as it can is not a slow consumer, so the session must stay
        # open for the next message.
        srv = self.server("--max-message", str(16 << 20))
        async with self.connect(srv) as ws:
            await self.roundtrip(ws, os.urandom(16 << 20))
            await self.roundtrip(ws, payload(16 << 20, False))
            await self.roundtrip(ws, "after 32 MiB")
        self.assertEqual(ws.close_code, 1000)

    @async_test
    async def test_echo_16mib_with_raised_limit_and_queue(self):
        srv = self.server("--max-message", str(16 << 20),
                          "--max-queued", str(64 << 20))
        async with self.connect(srv) as ws:
            await self.roundtrip(ws, os.urandom(16 << 20))
            await self.roundtrip(ws, payload(16 << 20, False))
            await self.roundtrip(ws, "after 32 MiB")
        self.assertEqual(ws.close_code, 1000)

    @async_test
    async def test_oversized_message_1009(self):
        srv = self.server()
        async with self.connect(srv) as ws:
            await self.roundtrip(ws, b"fine")
            try:
                await ws.send(os.urandom(65537))
            except ConnectionClosed:
                pass
            with self.assertRaises(ConnectionClosed) as cm:
                await asyncio.wait_for(ws.recv(), TIMEOUT)
            self.assertIsNotNone(cm.exception.rcvd,
                                 "no close frame received: %s"
                                 % cm.exception)
            self.assertEqual(cm.exception.rcvd.code, 1009)
        self.assertEqual(ws.close_code, 1009)

    @async_test
    async def test_fragmented_send(self):
        srv = self.server()
        async with self.connect(srv) as ws:
            parts = ["frag", "men", "", "ted ", "€" * 10]
            await ws.send(parts)
            self.assertEqual(await asyncio.wait_for(ws.recv(), TIMEOUT),
                             "".join(parts))
            bparts = [b"\x00" * 1000, b"\x01" * 20000, b"\x02"]
            await ws.send(bparts)
            self.assertEqual(await asyncio.wait_for(ws.recv(), TIMEOUT),
                             b"".join(bparts))

            async def agen():
                for i in range(20):
                    yield "chunk%d;" % i
                    await asyncio.sleep(0.005)

            await ws.send(agen())
            self.assertEqual(await asyncio.wait_for(ws.recv(), TIMEOUT),
                             "".join("chunk%d;" % i for i in range(20)))

    @async_test
    async def test_ping_pong(self):
        srv = self.server()
        async with self.connect(srv, ping_interval=None) as ws:
            for data in (b"", b"ping!", bytes(range(125))):
                with self.subTest(n=len(data)):
                    waiter = await ws.ping(data)
                    # websockets completes the waiter only for a pong
                    # carrying the same payload.
                    await asyncio.wait_for(waiter, TIMEOUT)
            await self.roundtrip(ws, "after pings")

    @async_test
    async def test_invalid_utf8_1007_raw(self):
        # websockets refuses to send invalid text, so this uses rawws.
        srv = self.server()
        ws = rawws.connect(srv.port)
        try:
            ws.send_text(b"valid")
            self.assertEqual(ws.recv_message().payload, b"valid")
            ws.send_text(b"in\xffvalid")
            ws.expect_close(1007)
        finally:
            ws.close()

    @async_test
    async def test_100_concurrent_clients(self):
        srv = self.server()

        async def client(i):
            async with self.connect(srv, "/c%d" % i) as ws:
                for j in range(5):
                    await self.roundtrip(ws, "client %d message %d" % (i, j))
                    await self.roundtrip(ws, bytes([i, j]) * (i * 10 + j))
                await self.roundtrip(ws, payload(70000 - i * 100, True)
                                     [:65536])
            return ws.close_code

        codes = await asyncio.wait_for(
            asyncio.gather(*(client(i) for i in range(100))), 60)
        self.assertEqual(codes, [1000] * 100)

    @async_test
    async def test_subprotocol_client_order(self):
        srv = self.server("--subprotocol", "chat", "--subprotocol",
                          "superchat")
        cases = [
            (["superchat", "chat"], "superchat"),
            (["chat", "superchat"], "chat"),
            (["v2.other", "superchat"], "superchat"),
        ]
        for offer, want in cases:
            with self.subTest(offer=offer):
                async with self.connect(srv, subprotocols=offer) as ws:
                    self.assertEqual(ws.subprotocol, want)
                    await self.roundtrip(ws, "x")

    @async_test
    async def test_subprotocol_none_matching(self):
        srv = self.server("--subprotocol", "chat")
        # The server opens without one; websockets then refuses the
        # connection only if the server named one it did not offer.
        async with self.connect(srv, subprotocols=["other"]) as ws:
            self.assertIsNone(ws.subprotocol)
            self.assertNotIn("Sec-WebSocket-Protocol", ws.response_headers)
            await self.roundtrip(ws, "x")

    @async_test
    async def test_ipv6(self):
        srv = self.server(host="::1")
        self.assertEqual(srv.line, "echo: listening on [::1]:%d\n" % srv.port)
        async with self.connect(srv) as ws:
            await self.roundtrip(ws, "over IPv6")
            await self.roundtrip(ws, b"\x00\x01")

    @async_test
    async def test_ipv4_listen_line(self):
        srv = self.server()
        self.assertEqual(srv.line,
                         "echo: listening on 127.0.0.1:%d\n" % srv.port)

    @async_test
    async def test_path_option_404(self):
        srv = self.server("--path", "/chat")
        async with self.connect(srv, "/chat") as ws:
            await self.roundtrip(ws, "on /chat")
        with self.assertRaises(InvalidStatusCode) as cm:
            async with self.connect(srv, "/other"):
                pass
        self.assertEqual(cm.exception.status_code, 404)

    @async_test
    async def test_sigterm_gives_clients_1001(self):
        srv = self.server()
        clients = [await self.connect(srv) for _ in range(5)]
        for ws in clients:
            await self.roundtrip(ws, "before shutdown")
        t0 = time.monotonic()
        srv.signal(signal.SIGTERM)
        for ws in clients:
            with self.assertRaises(ConnectionClosed) as cm:
                await asyncio.wait_for(ws.recv(), 5)
            self.assertIsNotNone(cm.exception.rcvd,
                                 "no close frame: %s" % cm.exception)
            self.assertEqual(cm.exception.rcvd.code, 1001)
            await ws.wait_closed()
            self.assertEqual(ws.close_code, 1001)
        loop = asyncio.get_running_loop()
        rc, _ = await loop.run_in_executor(None, srv.wait_exit, 5.0)
        took = time.monotonic() - t0
        self.assertEqual(rc, 0, "exit status; stderr:\n%s" % srv.stderr())
        self.assertLess(took, 3.0)


if __name__ == "__main__":
    unittest.main()
