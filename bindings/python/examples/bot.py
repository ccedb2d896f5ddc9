#!/usr/bin/env python3
"""bot.py - a chat server with a bot in its room, on the wschat bindings.

    python3 bindings/python/examples/bot.py [--host ADDR] [--port N]
                                            [--room NAME] [--bot-name NAME]

Every WebSocket connection (any path) is named user<N> and put in one room
("lobby"). A text message goes to everyone in the room, sender included,
as "user3 said: hello", like the text dialect of wschatd. "/nick NAME"
renames the sender ("* you are now NAME", or "* error: name taken").

The bot is a member of the room without a connection of its own: it reads
every message the room gets and answers

    !time          bot said: 2026-01-01T12:00:00Z   (UTC, to the room)
    !echo TEXT     bot said: TEXT

Port 0 picks a free port. It prints "bot: listening on HOST:PORT" when
ready; SIGINT or SIGTERM closes every connection with 1001 and exits 0.
"""

import argparse
import os
import sys
import time

# Run from a source tree without installing the package.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                ".."))

import wschat  # noqa: E402


class Bot:
    """The bot: a name and a room, and an answer for each command."""

    def __init__(self, server, room, name):
        self.server = server
        self.room = room
        self.name = name

    def say(self, text):
        self.room.broadcast("%s said: %s" % (self.name, text))

    def hear(self, text):
        """Answer a line the room just saw, if it is a command."""
        if text == "!time":
            self.say(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        elif text.startswith("!echo ") and text[6:].strip():
            self.say(text[6:])


def main():
    ap = argparse.ArgumentParser(description="A chat room with a bot.")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--room", default="lobby")
    ap.add_argument("--bot-name", default="bot")
    args = ap.parse_args()

    server = wschat.Server(host=args.host, port=args.port)
    bot = Bot(server, server.room(args.room), args.bot_name)

    @server.on_open
    def arrive(session):
        session.join(bot.room)
        bot.room.broadcast("* %s joined %s" % (session.name, bot.room.name))

    @server.on_message
    def message(session, data):
        if not isinstance(data, str):
            return  # text only
        if data.startswith("/nick "):
            rename(session, data[6:].strip())
            return
        bot.room.broadcast("%s said: %s" % (session.name, data))
        bot.hear(data)

    def rename(session, name):
        old = session.name
        if name.lower() == bot.name.lower():
            session.send("* error: name taken")
            return
        try:
            session.name = name
        except wschat.NameTaken:
            session.send("* error: name taken")
        except wschat.InvalidArgument:
            session.send("* error: invalid name")
        else:
            session.send("* you are now %s" % name)
            bot.room.broadcast("* %s is now %s" % (old, name),
                               exclude=session)

    @server.on_close
    def depart(session, code, reason):
        # The library removes the session from the room after this returns.
        bot.room.broadcast("* %s left %s" % (session.name, bot.room.name),
                           exclude=session)

    try:
        port = server.listen()
    except wschat.WschatError as e:
        print("bot: cannot listen on %s:%d: %s" % (args.host, args.port,
                                                   e.message),
              file=sys.stderr)
        return 1
    print("bot: listening on %s:%d" % (args.host, port), flush=True)
    server.run()  # SIGINT/SIGTERM stop it
    server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
