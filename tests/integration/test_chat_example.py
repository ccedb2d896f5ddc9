"""examples/chat.c, the tutorial's final program: user<N> names and
"user3 said: hi" to everyone, with python3-websockets clients."""

import asyncio
import os
import re
import signal
import subprocess
import unittest

import websockets

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, os.environ.get("BUILD", "build"))


class ChatExample(unittest.TestCase):
    def setUp(self):
        self.proc = subprocess.Popen(
            [os.path.join(BUILD, "examples", "chat"), "0"],
            stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        m = re.fullmatch(r"chat: listening on ws://127\.0\.0\.1:(\d+)/chat\n",
                         line)
        self.assertIsNotNone(m, line)
        self.url = "ws://127.0.0.1:%s/chat" % m.group(1)

    def tearDown(self):
        self.proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.proc.wait(5), 0)
        self.proc.stdout.close()

    def test_names_and_said_lines_reach_everyone(self):
        async def scenario():
            clients = []
            for n in range(1, 4):
                ws = await websockets.connect(self.url)
                clients.append(ws)
                self.assertEqual(
                    await ws.recv(),
                    "You are connected! There are %d users here." % n)
            await clients[2].send("hi")
            for ws in clients:
                self.assertEqual(await ws.recv(), "user3 said: hi")
            await clients[0].send(b"binary is ignored")
            await clients[0].send("hello")
            for ws in clients:
                self.assertEqual(await ws.recv(), "user1 said: hello")
            # A closed connection leaves the set; the others still chat.
            await clients[1].close()
            await clients[0].send("still here")
            for ws in (clients[0], clients[2]):
                self.assertEqual(await ws.recv(), "user1 said: still here")
            newcomer = await websockets.connect(self.url)
            self.assertEqual(await newcomer.recv(),
                             "You are connected! There are 3 users here.")
            for ws in (clients[0], clients[2], newcomer):
                await ws.close()

        asyncio.run(asyncio.wait_for(scenario(), 20))

    def test_other_paths_are_404(self):
        async def scenario():
            with self.assertRaises(websockets.InvalidStatusCode) as cm:
                await websockets.connect(self.url.replace("/chat", "/other"))
            self.assertEqual(cm.exception.status_code, 404)

        asyncio.run(asyncio.wait_for(scenario(), 10))


if __name__ == "__main__":
    unittest.main()
