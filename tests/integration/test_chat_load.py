"""wschatd under load, against /work/shared/PROTOCOL.md and the daemon's
contract: 200 JSON clients in one room, a slow consumer closed with 1008
while the others keep receiving, SIGTERM closing every session with 1001.

Run: BUILD=build /usr/bin/python3 -m unittest -v tests/integration/test_chat_load.py

All clients share one asyncio loop (python3-websockets 10.4); each test
keeps under ~20 s on 2 cores.
"""

import asyncio
import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import rawws  # noqa: E402
from chatd import PROTO, ChatCase, async_test, ws_connect  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402


class Collector:
    """Reads one JSON client in the background: keeps its `message`
    events, its acks, and the names in `left` events."""

    def __init__(self, client):
        self.c = client
        self.messages = []
        self.acks = []
        self.errors = []
        self.left = []
        self.closed = None
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self):
        ws = self.c.ws
        try:
            while True:
                data = await ws.recv()
                o = json.loads(data)
                t = o.get("type")
                if t == "message":
                    self.messages.append(o)
                elif t == "ack":
                    self.acks.append(o)
                elif t == "error":
                    self.errors.append(o)
                elif t == "left":
                    self.left.append(o.get("name"))
        except ConnectionClosed as e:
            self.closed = e
        except asyncio.CancelledError:
            pass

    def stop(self):
        self.task.cancel()


async def wait_until(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0fs waiting for %s"
                                 % (timeout, what))
        await asyncio.sleep(0.005)


class TestLoad(ChatCase):

    async def join_quick(self, c, room):
        """join, reading up to the history reply (load tests do not check
        the join replies; test_chat_json does)."""
        await c.send({"type": "join", "room": room})
        while True:
            o = await c.recv(timeout=10)
            if o["type"] == "history":
                return

    @async_test(timeout=40)
    async def test_200_clients_5_senders_every_message_once_in_order(self):
        N, SENDERS, PER = 200, 5, 50
        srv = self.server("--rate", "0", "--max-connections", "1000")
        t0 = time.monotonic()
        clients = []
        for batch in range(0, N, 25):
            clients += await asyncio.gather(*(
                self.jclient(srv, "c%d" % i)
                for i in range(batch, min(N, batch + 25))))
        names = [c.name for c in clients]
        self.assertEqual(len(set(n.lower() for n in names)), N,
                         "duplicate names among 200 sessions")
        for c in clients:
            await self.join_quick(c, "big")
        cols = [Collector(c) for c in clients]
        t_join = time.monotonic() - t0
        senders = clients[:SENDERS]

        async def send_all(k, c):
            for i in range(PER):
                await c.send({"type": "say", "room": "big",
                              "text": "s%d:%d" % (k, i), "ref": "%d" % i})

        t1 = time.monotonic()
        await asyncio.gather(*(send_all(k, c) for k, c in
                               enumerate(senders)))
        total = SENDERS * PER
        await wait_until(lambda: all(len(x.messages) >= total
                                     for x in cols), 25,
                         "every client to receive %d messages (have %s)"
                         % (total, sorted(set(len(x.messages)
                                              for x in cols))))
        t_fan = time.monotonic() - t1
        await asyncio.sleep(0.3)     # duplicates would arrive by now
        srv.assert_alive()
        ref_ids = None
        for idx, col in enumerate(cols):
            self.assertIsNone(col.closed, "client %d closed: %s"
                              % (idx, col.closed))
            msgs = col.messages
            self.assertEqual(len(msgs), total,
                             "client %d got %d messages, want %d (each "
                             "exactly once)" % (idx, len(msgs), total))
            per = {}
            for m in msgs:
                self.assertEqual(m.get("room"), "big")
                k, i = m["text"][1:].split(":")
                self.assertEqual(m.get("from"), names[int(k)], m)
                per.setdefault(int(k), []).append(int(i))
            for k in range(SENDERS):
                self.assertEqual(per.get(k), list(range(PER)),
                                 "client %d: sender %d's messages out of "
                                 "order or missing" % (idx, k))
            got_ids = [m["id"] for m in msgs]
            self.assertTrue(all(a < b for a, b in zip(got_ids, got_ids[1:])),
                            "client %d: ids not strictly increasing" % idx)
            if ref_ids is None:
                ref_ids = got_ids
            else:
                self.assertEqual(got_ids, ref_ids,
                                 "client %d saw a different order" % idx)
            self.assertEqual(col.errors, [], "client %d got errors" % idx)
        for k, col in enumerate(cols[:SENDERS]):
            self.assertEqual(len(col.acks), PER, "sender %d acks" % k)
            mine = [m["id"] for m in col.messages if m["from"] == names[k]]
            self.assertEqual([a.get("id") for a in col.acks], mine)
            self.assertEqual([a.get("ref") for a in col.acks],
                             ["%d" % i for i in range(PER)])
        for col in cols:
            col.stop()
        sys.stderr.write("\n  [200 clients: connect+join %.1fs, %d msgs x %d "
                         "fan-out in %.1fs] " % (t_join, total, N, t_fan))

    @async_test(timeout=40)
    async def test_slow_consumer_closed_1008_others_unaffected(self):
        srv = self.server("--rate", "0", "--max-text", "65536",
                          "--max-message", "1048576")
        sender = await self.jclient(srv, "sender")
        r1 = await self.jclient(srv, "r1")
        r2 = await self.jclient(srv, "r2")
        for c in (sender, r1, r2):
            await self.join_quick(c, "big")

        # The slow consumer: a raw socket that joins, then never reads
        # again. (Its receive buffer is left alone: a tiny SO_RCVBUF makes
        # loopback TCP crawl at ~40 KB/s when it does read at the end.)
        slow = rawws.RawWS("127.0.0.1", srv.port, timeout=10)
        try:
            slow.handshake(path="/chat", protocols=PROTO)
            w = json.loads(slow.recv_message().payload)
            self.assertEqual(w["type"], "welcome")
            slow_name = w["name"]
            slow.send_text(json.dumps({"type": "join", "room": "big"}))
            while True:
                o = json.loads(slow.recv_message().payload)
                if o["type"] == "history":
                    break
            cols = [Collector(c) for c in (sender, r1, r2)]

            body = "x" * 60000
            sent = []
            WINDOW = 4           # messages in flight per normal reader
            MAX = 400            # 24 MB: far past any kernel buffering
            extra_after_close = 10
            closed_at = None
            k = 0
            t0 = time.monotonic()
            while k < MAX:
                text = "m%05d:" % k + body
                await sender.send({"type": "say", "room": "big",
                                   "text": text})
                sent.append(text)
                k += 1
                await wait_until(
                    lambda: all(len(c.messages) >= k - WINDOW
                                for c in cols), 15,
                    "normal clients to keep up (have %r of %d)"
                    % ([len(c.messages) for c in cols], k))
                if closed_at is None and any(slow_name in c.left
                                             for c in cols):
                    closed_at = k
                if closed_at is not None and k >= closed_at + \
                        extra_after_close:
                    break
            t_send = time.monotonic() - t0
            self.assertIsNotNone(
                closed_at, "the slow consumer was not closed (no `left` "
                "for %s) after %d x 60 KB messages" % (slow_name, k))
            await wait_until(lambda: all(len(c.messages) >= len(sent)
                                         for c in cols), 15,
                             "normal clients to receive every message")
            await asyncio.sleep(0.2)
            for name, c in zip(("sender", "r1", "r2"), cols):
                self.assertIsNone(c.closed, "%s was closed too: %s"
                                  % (name, c.closed))
                self.assertEqual([m["text"] for m in c.messages], sent,
                                 "%s missed or reordered messages" % name)
                self.assertEqual(c.errors, [])
            for name, c in zip(("sender", "r1", "r2"), cols):
                self.assertEqual(c.left, [slow_name],
                                 "%s: left events %r" % (name, c.left))

            # Now read what the slow consumer was sent: whole frames, a
            # prefix of the room's messages, then close 1008.
            got = []
            frames = 0
            close = None
            while True:
                try:
                    f = await asyncio.get_running_loop().run_in_executor(
                        None, slow.recv_frame, 5)
                except rawws.ConnectionEnded as e:
                    self.fail("slow consumer: TCP ended (%s) without a "
                              "close frame after %d frames" % (e, frames))
                except socket.timeout:
                    self.fail("slow consumer: no close frame; nothing more "
                              "for 5 s after %d frames (%d messages)"
                              % (frames, len(got)))
                frames += 1
                if f.opcode == rawws.OP_CLOSE:
                    close = f
                    break
                self.assertEqual(f.opcode, rawws.OP_TEXT, f)
                self.assertTrue(f.fin, f)
                o = json.loads(f.payload)
                if o["type"] == "message":
                    got.append(o["text"])
            rawws.check_close_frame(close, 1008)
            self.assertEqual(got, sent[:len(got)],
                             "the slow consumer's messages are not a prefix "
                             "of the room's")
            try:
                slow.send_close(1008)
            except OSError:
                pass
            slow.expect_eof(3)
            metric = srv.metric("wschat_slow_closes_total")
            if metric is not None:
                self.assertGreaterEqual(metric, 1)
            sys.stderr.write(
                "\n  [slow consumer closed after %d x 60 KB (had received "
                "%d); %d sent in %.1fs; wschat_slow_closes_total=%s] "
                % (closed_at, len(got), len(sent), t_send, metric))
            for c in cols:
                c.stop()
        finally:
            slow.close()

    @async_test(timeout=30)
    async def test_paused_reader_under_1mib_is_not_closed(self):
        # A reader that pauses while less than 1 MiB in all is sent to it
        # can never have over 1 MiB unsent: it must stay open and then get
        # every message.
        srv = self.server("--rate", "0", "--max-text", "65536",
                          "--max-message", "1048576")
        sender = await self.jclient(srv, "sender")
        await self.join_quick(sender, "big")
        slow = rawws.RawWS("127.0.0.1", srv.port, timeout=10)
        try:
            slow.handshake(path="/chat", protocols=PROTO)
            slow_name = json.loads(slow.recv_message().payload)["name"]
            slow.send_text(json.dumps({"type": "join", "room": "big"}))
            while json.loads(slow.recv_message().payload)["type"] != \
                    "history":
                pass
            sent = []
            for k in range(14):               # 14 x ~60 KB < 1 MiB
                text = "p%02d:" % k + "y" * 60000
                _, _ = await sender.say("big", text)
                sent.append(text)
            await asyncio.sleep(0.5)
            got = []
            while len(got) < len(sent):
                f = await asyncio.get_running_loop().run_in_executor(
                    None, slow.recv_frame, 5)
                self.assertEqual(f.opcode, rawws.OP_TEXT,
                                 "paused reader got %r after %d messages"
                                 % (f, len(got)))
                o = json.loads(f.payload)
                if o["type"] == "message":
                    got.append(o["text"])
            self.assertEqual(got, sent)
            left = [o for o in await sender.quiet() if o["type"] == "left"]
            self.assertEqual(left, [], "%s was dropped" % slow_name)
            slow.send_close(1000)
            slow.expect_close(1000)
        finally:
            slow.close()

    @async_test(timeout=30)
    async def test_sigterm_closes_20_sessions_1001(self):
        srv = self.server()
        js = [await self.jclient(srv, "j%d" % i) for i in range(14)]
        for i, c in enumerate(js):
            await self.join_quick(c, "r%d" % (i % 3))
        ts = [await ws_connect(srv) for _ in range(5)]   # text dialect
        raw = rawws.RawWS("127.0.0.1", srv.port, timeout=5)
        raw.handshake(path="/chat", protocols=PROTO)
        self.assertEqual(json.loads(raw.recv_message().payload)["type"],
                         "welcome")
        await asyncio.sleep(0.2)

        loop = asyncio.get_running_loop()
        t0 = time.monotonic()
        srv.signal()

        async def code_of(ws):
            try:
                while True:
                    await asyncio.wait_for(ws.recv(), 5)
            except ConnectionClosed as e:
                return e.rcvd.code if e.rcvd is not None else None
            except asyncio.TimeoutError:
                return "no close within 5 s"

        def raw_close():
            while True:
                f = raw.recv_frame(5)
                if f.opcode == rawws.OP_CLOSE:
                    return f
        exit_f = loop.run_in_executor(None, srv.wait_exit, 5.0)
        raw_f = loop.run_in_executor(None, raw_close)
        codes = await asyncio.gather(*(code_of(c.ws) for c in js),
                                     *(code_of(w) for w in ts))
        try:
            f = await raw_f
            rawws.check_close_frame(f, 1001)
            raw.send_close(1001)
        except (rawws.ConnectionEnded, OSError) as e:
            self.fail("raw client: no close frame (%s)" % e)
        finally:
            raw.close()
        rc, took = await exit_f
        took_all = time.monotonic() - t0
        self.assertEqual(codes, [1001] * 19, "close codes after SIGTERM")
        self.assertIsNotNone(rc, "wschatd still running 5 s after SIGTERM")
        self.assertEqual(rc, 0, "exit status after SIGTERM; stderr:\n%s"
                         % srv.stderr())
        self.assertLessEqual(took, 2.0, "exit took %.2fs" % took)
        sys.stderr.write("\n  [SIGTERM: exit %s after %.2fs] " % (rc,
                                                                  took_all))


if __name__ == "__main__":
    import unittest
    unittest.main()
