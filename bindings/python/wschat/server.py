"""Server, Session, Room and Request: the Python face of libwschat's server
API.

Threading: a server and everything reached through it belong to the thread
that runs its loop. Callbacks run on that thread; outside a callback, the
objects may be used before run() and after it returns. Only Server.stop()
may be called from any thread (or a signal handler) while the loop runs;
other calls from a foreign thread raise RuntimeError instead of racing the
loop.

Lifetime: the C session pointer of each open session maps to one Session
object, created before on_open and dropped after on_close returns. A
Session kept past on_close stays readable (id, name, path, data,
close_code) but every action on it raises SessionClosed.
"""

import ctypes
import enum
import logging
import signal
import threading

from . import _lib
from .errors import (EINVAL, ENOMEM, ENOTLISTENING, ECLOSED, Busy,
                     InvalidArgument, SessionClosed, check, error)

log = logging.getLogger("wschat")

TEXT = 1
BINARY = 2


class CloseCode(enum.IntEnum):
    """RFC 6455 close codes the library uses."""
    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED = 1003
    NO_STATUS = 1005
    ABNORMAL = 1006
    INVALID_DATA = 1007
    POLICY = 1008
    TOO_BIG = 1009
    INTERNAL = 1011


class CloseReason(enum.IntEnum):
    """The situations in which the library closes a session itself; keys of
    the close_codes option (wschat_server_set_close_code())."""
    PROTOCOL_ERROR = 0
    BAD_UTF8 = 1
    TOO_BIG = 2
    SLOW_CONSUMER = 3
    IDLE = 4
    SHUTDOWN = 5
    INTERNAL = 6


# Server.stats() keys, in wschat_stat order.
STATS = ("connections", "sessions", "sessions_total", "rooms", "messages_in",
         "messages_out", "bytes_in", "bytes_out", "slow_closes",
         "http_rejects", "rate_limited")

# keyword -> (C setter, bits of its integer argument)
_INT_OPTIONS = {
    "max_message": ("wschat_server_set_max_message", 64),
    "max_header": ("wschat_server_set_max_header", 64),
    "max_header_count": ("wschat_server_set_max_header_count", 32),
    "max_connections": ("wschat_server_set_max_connections", 32),
    "max_per_ip": ("wschat_server_set_max_per_ip", 32),
    "max_queued": ("wschat_server_set_max_queued", 64),
    "handshake_timeout": ("wschat_server_set_handshake_timeout", 32),
    "close_timeout": ("wschat_server_set_close_timeout", 32),
    "idle_timeout": ("wschat_server_set_idle_timeout", 32),
    "ping_interval": ("wschat_server_set_ping_interval", 32),
    "max_rooms": ("wschat_server_set_max_rooms", 32),
    "history": ("wschat_server_set_history", 32),
}
_CHAT_OPTIONS = {
    "chat_max_text": ("wschat_chat_set_max_text", 64),
    "chat_presence_limit": ("wschat_chat_set_presence_limit", 32),
}
OPTIONS = tuple(_INT_OPTIONS) + ("path", "subprotocols", "rate",
                                 "close_codes") + tuple(_CHAT_OPTIONS) + (
                                     "chat_server_name",)


def _int_arg(name, value, bits):
    """An option or count checked to fit its C type, so that ctypes never
    wraps a negative or oversized value into a valid-looking one."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("%s must be an int, not %s"
                        % (name, type(value).__name__))
    if value < 0 or value >= 1 << bits:
        raise InvalidArgument(EINVAL, None, "%s=%d" % (name, value))
    return value


def _payload(data):
    """(type, bytes) for a message: str is text (UTF-8), bytes-like is
    binary."""
    if isinstance(data, str):
        return TEXT, data.encode("utf-8", "surrogatepass")
    if isinstance(data, (bytes, bytearray, memoryview)):
        return BINARY, bytes(data)
    raise TypeError("a message is str (text) or bytes (binary), not %s"
                    % type(data).__name__)


def _text(ptr):
    """A NUL-terminated C string (bytes from a c_char_p restype) as str."""
    if ptr is None:
        return None
    return ptr.decode("utf-8", "surrogateescape")


def _bytes_at(ptr, size):
    return ctypes.string_at(ptr, size) if size else b""


class Session:
    """One WebSocket connection. Made by the server; never construct one.

    Attributes: server; id (unique per server); path; subprotocol (or
    None); peer ("ip:port"); data (a dict for the application's own state,
    kept until the object is dropped); close_code and close_reason (None
    until on_close).
    """

    def __init__(self, server, ptr):
        lib = server._lib
        self.server = server
        self._ptr = ptr
        self.data = {}
        self.id = lib.wschat_session_id(ptr)
        self.path = _text(lib.wschat_session_path(ptr))
        self.subprotocol = _text(lib.wschat_session_subprotocol(ptr))
        buf = ctypes.create_string_buffer(64)
        n = lib.wschat_session_peer(ptr, buf, len(buf))
        self.peer = buf.raw[:n].decode("ascii") if n > 0 else None
        self._name = _text(lib.wschat_session_name(ptr))
        self.close_code = None
        self.close_reason = None

    def _p(self):
        self.server._check_thread()
        if self._ptr is None:
            raise SessionClosed(ECLOSED, None, "session %d has ended"
                                % self.id)
        return self._ptr

    @property
    def is_open(self):
        """True until on_close has returned."""
        return self._ptr is not None

    @property
    def name(self):
        """The session's name ("user<N>" unless renamed). Assigning renames
        (NameTaken, InvalidArgument)."""
        if self._ptr is not None:
            self._name = _text(self.server._lib.wschat_session_name(
                self._p()))
        return self._name

    @name.setter
    def name(self, value):
        self.rename(value)

    def rename(self, name):
        """wschat_session_set_name(); raises NameTaken, InvalidArgument or
        SessionClosed."""
        if not isinstance(name, str):
            raise TypeError("a name is a str")
        check(self.server._lib.wschat_session_set_name(
            self._p(), name.encode("utf-8")), "wschat_session_set_name", name)
        self._name = name

    def send(self, data):
        """Queue a text (str) or binary (bytes-like) message."""
        kind, raw = _payload(data)
        fn = (self.server._lib.wschat_session_send_text if kind == TEXT else
              self.server._lib.wschat_session_send_binary)
        check(fn(self._p(), raw, len(raw)), fn.__name__)

    def send_text(self, text):
        if not isinstance(text, str):
            raise TypeError("send_text takes a str")
        self.send(text)

    def send_binary(self, data):
        if isinstance(data, str):
            raise TypeError("send_binary takes bytes")
        self.send(data)

    def close(self, code=CloseCode.NORMAL, reason=""):
        """Start the close handshake with `code` (1000-1003, 1007-1014,
        3000-4999, or 0 for none) and a reason of at most 123 UTF-8
        bytes."""
        code = _int_arg("code", code, 16)
        check(self.server._lib.wschat_session_close(
            self._p(), code, (reason or "").encode("utf-8", "surrogatepass")),
            "wschat_session_close")

    def ping(self, data=b""):
        """Send a ping (up to 125 bytes); the pong reaches on_pong."""
        raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        check(self.server._lib.wschat_session_ping(self._p(), raw, len(raw)),
              "wschat_session_ping")

    @property
    def queued(self):
        """Bytes queued and not yet written to the socket."""
        return self.server._lib.wschat_session_queued(self._p())

    def rate_take(self):
        """Take a token from the session's rate bucket: True, or False when
        the rate limit is exceeded."""
        return self.server._lib.wschat_session_rate_take(self._p()) == 0

    def join(self, room):
        """Join a Room or the room with this name (created if needed);
        returns the Room."""
        room = self.server._room_arg(room)
        room.join(self)
        return room

    def leave(self, room):
        room = self.server._room_arg(room)
        room.leave(self)
        return room

    @property
    def rooms(self):
        """The Rooms the session is in, in the order it joined them."""
        ptrs = []
        cb = _lib.ROOM_CB(lambda room, arg: ptrs.append(room))
        self.server._lib.wschat_session_foreach_room(self._p(), cb, None)
        return [self.server._room_for_ptr(p) for p in ptrs]

    def __repr__(self):
        state = "open" if self.is_open else "closed %s" % self.close_code
        return "<wschat.Session %d %s %s>" % (self.id, self._name, state)


class Room:
    """A named room of a server (Server.room()). Rooms live as long as the
    server; the object looks its room up by name on every use, so it stays
    valid even if the library drops the empty room to make space (it is
    created again on join). `data` is a dict for the application."""

    def __init__(self, server, name):
        self.server = server
        self.name = name
        self.data = {}
        self._bname = name.encode("utf-8")

    def _find(self):
        return self.server._lib.wschat_room_find(self.server._p(),
                                                 self._bname)

    def _open(self):
        out = ctypes.c_void_p()
        check(self.server._lib.wschat_room_open(self.server._p(), self._bname,
                                                ctypes.byref(out)),
              "wschat_room_open", self.name)
        return out.value

    def join(self, session):
        """Add an open session (AlreadyMember, SessionClosed)."""
        check(self.server._lib.wschat_room_join(self._open(), session._p()),
              "wschat_room_join", self.name)

    def leave(self, session):
        """Remove a session (NotMember)."""
        room = self._find()
        rc = (self.server._lib.wschat_room_leave(room, session._p())
              if room else -30105)
        check(rc, "wschat_room_leave", self.name)

    def __contains__(self, session):
        room = self._find()
        return bool(room and session.is_open and self.server._lib
                    .wschat_room_is_member(room, session._p()))

    def __len__(self):
        return self.member_count

    @property
    def member_count(self):
        room = self._find()
        return self.server._lib.wschat_room_member_count(room) if room else 0

    def _member_ptrs(self):
        room = self._find()
        ptrs = []
        if room:
            cb = _lib.MEMBER_CB(lambda s, arg: ptrs.append(s))
            self.server._lib.wschat_room_foreach_member(room, cb, None)
        return ptrs

    @property
    def members(self):
        """The member Sessions in join order (only sessions the Python
        callbacks track: none when the built-in chat protocol runs)."""
        known = self.server._sessions
        return [known[p] for p in self._member_ptrs() if p in known]

    @property
    def member_names(self):
        lib = self.server._lib
        return [_text(lib.wschat_session_name(p))
                for p in self._member_ptrs()]

    def broadcast(self, data, exclude=None):
        """Send a text (str) or binary (bytes) message to every member but
        `exclude` (a Session or None), encoded once. Returns how many
        members it was queued for."""
        room = self._find()
        if not room:
            return 0
        except_ptr = exclude._p() if exclude is not None else None
        return self.server._broadcast(room, data, except_ptr)

    def history_add(self, data):
        """Store a message (str or bytes) in the room's history; returns
        its id."""
        raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        ident = ctypes.c_uint64()
        check(self.server._lib.wschat_room_history_add(
            self._open(), raw, len(raw), ctypes.byref(ident)),
            "wschat_room_history_add")
        return ident.value

    def history(self, after=0, before=0, limit=50):
        """The newest `limit` stored messages with after < id (< before
        unless 0), oldest first: (list of (id, bytes), more)."""
        room = self._find()
        if not room:
            return [], False
        out = []
        cb = _lib.HISTORY_CB(
            lambda r, i, d, n, arg: out.append((i, _bytes_at(d, n))))
        more = ctypes.c_int(0)
        self.server._lib.wschat_room_history(
            room, _int_arg("after", after, 64), _int_arg("before", before, 64),
            _int_arg("limit", limit, 32), cb, None, ctypes.byref(more))
        return out, bool(more.value)

    @property
    def last_id(self):
        room = self._find()
        return self.server._lib.wschat_room_last_id(room) if room else 0

    @property
    def first_id(self):
        room = self._find()
        return self.server._lib.wschat_room_first_id(room) if room else 0

    def __repr__(self):
        return "<wschat.Room %s>" % self.name


class Request:
    """A plain HTTP request, inside an on_http or on_origin callback only."""

    def __init__(self, server, ptr, can_respond):
        self._server = server
        self._ptr = ptr
        self._can_respond = can_respond
        lib = server._lib
        self.method = _text(lib.wschat_http_method(ptr))
        self.path = _text(lib.wschat_http_path(ptr))
        self.query = _text(lib.wschat_http_query(ptr))

    def header(self, name):
        """The first header with this name (case-insensitive), or None."""
        if self._ptr is None:
            raise RuntimeError("the request is only valid in its callback")
        return _text(self._server._lib.wschat_http_header(
            self._ptr, name.encode("ascii")))

    def respond(self, status, body=b"", content_type="text/plain; "
                "charset=utf-8", headers=None):
        """Answer with status, Content-Type, `headers` (a dict or pairs) and
        body (str is sent as UTF-8)."""
        if self._ptr is None or not self._can_respond:
            raise RuntimeError("only an on_http request can be answered, "
                               "inside its callback")
        if isinstance(body, str):
            body = body.encode("utf-8")
        body = bytes(body)
        extra = None
        if headers:
            items = headers.items() if hasattr(headers, "items") else headers
            extra = "".join("%s: %s\r\n" % (k, v) for k, v in items)
            extra = extra.encode("latin-1")
        ctype = content_type.encode("latin-1") if content_type else None
        check(self._server._lib.wschat_http_respond(
            self._ptr, _int_arg("status", status, 16), ctype, extra, body,
            len(body)), "wschat_http_respond")


class Server:
    """A libwschat server.

        server = Server(host="127.0.0.1", port=8080, max_message=1 << 20)

        @server.on_message
        def echo(session, data):
            session.send(data)

        server.run()

    Keyword options (see Server.OPTIONS and include/wschat.h for ranges):
    max_message, max_header, max_header_count, max_connections,
    max_queued, handshake_timeout, close_timeout, idle_timeout,
    ping_interval (ms), max_per_ip, path, subprotocols (list of str), max_rooms,
    history, rate ((per_second, burst)), close_codes ({CloseReason: code}),
    and with chat=True: chat_max_text, chat_presence_limit,
    chat_server_name. A bad value raises InvalidArgument (a WschatError),
    an unknown keyword TypeError.

    Callbacks (decorators, or keyword arguments of the same names):
    on_open(session), on_message(session, data) (str for text, bytes for
    binary), on_close(session, code, reason), on_pong(session, data),
    on_http(request), on_origin(request, origin) -> bool,
    on_accept_error(error). A callback that
    raises is logged on the "wschat" logger and the server goes on.
    """

    OPTIONS = OPTIONS

    def __init__(self, host="127.0.0.1", port=8080, *, chat=False,
                 on_open=None, on_message=None, on_close=None, on_pong=None,
                 on_http=None, on_origin=None, on_accept_error=None,
                 **options):
        self._lib = _lib.lib()
        self.host = host
        self._port = port
        self._sessions = {}
        self._rooms = {}
        self._handlers = {}
        self._chat = False
        self._listening = False
        self._loop_thread = None
        self._thread = None
        self._run_result = None
        self._stop_lock = threading.RLock()
        self._ptr = self._lib.wschat_server_new(None)
        if not self._ptr:
            raise error(ENOMEM, "wschat_server_new")
        # The C callbacks live as long as the server: ctypes frees a
        # CFUNCTYPE thunk when its object is collected.
        self._c = {
            "open": _lib.OPEN_CB(self._c_open),
            "message": _lib.MESSAGE_CB(self._c_message),
            "close": _lib.CLOSE_CB(self._c_close),
            "pong": _lib.PONG_CB(self._c_pong),
            "http": _lib.HTTP_CB(self._c_http),
            "origin": _lib.ORIGIN_CB(self._c_origin),
            "accept_error": _lib.ACCEPT_ERROR_CB(self._c_accept_error),
        }
        try:
            # Sessions are tracked from on_open to on_close whatever the
            # application registers.
            self._lib.wschat_server_on_open(self._ptr, self._c["open"])
            self._lib.wschat_server_on_message(self._ptr, self._c["message"])
            self._lib.wschat_server_on_close(self._ptr, self._c["close"])
            if chat:
                chat_opts = {k: options.pop(k) for k in list(options)
                             if k.startswith("chat_")}
                self.enable_chat(**{k[5:]: v for k, v in chat_opts.items()})
            self.configure(**options)
            for what, fn in (("open", on_open), ("message", on_message),
                             ("close", on_close), ("pong", on_pong),
                             ("http", on_http), ("origin", on_origin),
                             ("accept_error", on_accept_error)):
                if fn is not None:
                    self._register(what, fn)
        except BaseException:
            self.close()
            raise

    # ---------------------------------------------------------- plumbing

    def _p(self):
        self._check_thread()
        if self._ptr is None:
            raise RuntimeError("the server has been closed")
        return self._ptr

    def _check_thread(self):
        loop = self._loop_thread
        if loop is not None and loop != threading.get_ident():
            raise RuntimeError("libwschat objects may only be used from the "
                               "thread running the server (use stop() to "
                               "end it from elsewhere)")

    def _dispatch(self, what, fn, *args):
        try:
            return fn(*args)
        except Exception:
            log.exception("wschat: the %s callback %r raised", what,
                          getattr(fn, "__name__", fn))
        except BaseException:
            # SystemExit or KeyboardInterrupt inside a callback: log it and
            # end the server rather than unwinding through C frames.
            log.exception("wschat: the %s callback raised; stopping", what)
            self.stop()
        return None

    def _session(self, ptr):
        s = self._sessions.get(ptr)
        if s is None:
            s = self._sessions[ptr] = Session(self, ptr)
        return s

    def _room_for_ptr(self, ptr):
        return self.room(_text(self._lib.wschat_room_name(ptr)))

    def _room_arg(self, room):
        return room if isinstance(room, Room) else self.room(room)

    def _broadcast(self, room_ptr, data, except_ptr):
        kind, raw = _payload(data)
        frame = ctypes.c_void_p()
        check(self._lib.wschat_frame_new(kind, raw, len(raw),
                                         ctypes.byref(frame)),
              "wschat_frame_new")
        try:
            return check(self._lib.wschat_room_broadcast(
                room_ptr, frame, except_ptr), "wschat_room_broadcast")
        finally:
            self._lib.wschat_frame_release(frame)

    # The C callbacks: they must never let an exception reach ctypes.

    def _c_open(self, sp, ud):
        try:
            s = self._session(sp)
            fn = self._handlers.get("open")
            if fn is not None:
                self._dispatch("on_open", fn, s)
        except BaseException:
            log.exception("wschat: on_open failed")

    def _c_message(self, sp, kind, data, size, ud):
        try:
            s = self._session(sp)
            fn = self._handlers.get("message")
            if fn is None:
                return
            raw = _bytes_at(data, size)
            # Text is valid UTF-8: the library checked it.
            payload = raw.decode("utf-8") if kind == TEXT else raw
            self._dispatch("on_message", fn, s, payload)
        except BaseException:
            log.exception("wschat: on_message failed")

    def _c_close(self, sp, code, reason, size, ud):
        s = None
        try:
            s = self._session(sp)
            s.name  # keep the last name readable after the close
            s.close_code = code
            s.close_reason = _bytes_at(reason, size).decode("utf-8",
                                                            "replace")
            fn = self._handlers.get("close")
            if fn is not None:
                self._dispatch("on_close", fn, s, code, s.close_reason)
        except BaseException:
            log.exception("wschat: on_close failed")
        finally:
            # The pointer dies when on_close returns.
            self._sessions.pop(sp, None)
            if s is not None:
                s._ptr = None

    def _c_pong(self, sp, data, size, ud):
        try:
            fn = self._handlers.get("pong")
            if fn is not None:
                self._dispatch("on_pong", fn, self._session(sp),
                               _bytes_at(data, size))
        except BaseException:
            log.exception("wschat: on_pong failed")

    def _c_http(self, server, req, ud):
        r = None
        try:
            fn = self._handlers.get("http")
            if fn is not None:
                r = Request(self, req, True)
                self._dispatch("on_http", fn, r)
        except BaseException:
            log.exception("wschat: on_http failed")
        finally:
            if r is not None:
                r._ptr = None

    def _c_origin(self, server, req, origin, ud):
        r = None
        try:
            fn = self._handlers.get("origin")
            if fn is None:
                return 1
            r = Request(self, req, False)
            try:
                return 1 if fn(r, _text(origin)) else 0
            except BaseException:
                log.exception("wschat: the on_origin callback raised; "
                              "refusing the origin")
                return 0
        except BaseException:
            log.exception("wschat: on_origin failed")
            return 0
        finally:
            if r is not None:
                r._ptr = None

    def _c_accept_error(self, server, err, ud):
        try:
            fn = self._handlers.get("accept_error")
            if fn is not None:
                self._dispatch("on_accept_error", fn, error(err, "accept"))
        except BaseException:
            log.exception("wschat: on_accept_error failed")

    def _register(self, what, fn):
        if not callable(fn):
            raise TypeError("on_%s needs a callable" % what)
        if self._chat and what in ("open", "message", "close"):
            raise RuntimeError("the built-in chat protocol owns on_open, "
                               "on_message and on_close")
        ptr = self._p()
        if what in ("pong", "http", "origin", "accept_error"):
            setter = "wschat_server_on_" + what
            if not lib_has(self, setter):
                raise NotImplementedError("the loaded library has no %s"
                                          % setter)
            getattr(self._lib, setter)(ptr, self._c[what])
        self._handlers[what] = fn
        return fn

    # ------------------------------------------------------ callbacks

    def on_open(self, fn):
        """Decorator: fn(session) after the handshake."""
        return self._register("open", fn)

    def on_message(self, fn):
        """Decorator: fn(session, data), data str (text) or bytes."""
        return self._register("message", fn)

    def on_close(self, fn):
        """Decorator: fn(session, code, reason), once per session."""
        return self._register("close", fn)

    def on_pong(self, fn):
        """Decorator: fn(session, data) when a pong arrives."""
        return self._register("pong", fn)

    def on_http(self, fn):
        """Decorator: fn(request) for requests that are not upgrades; answer
        with request.respond()."""
        return self._register("http", fn)

    def on_origin(self, fn):
        """Decorator: fn(request, origin) -> bool, origin None when absent;
        False answers 403."""
        return self._register("origin", fn)

    def on_accept_error(self, fn):
        """Decorator: fn(error), a WschatError, when accepting a connection
        failed (out of descriptors and the like)."""
        return self._register("accept_error", fn)

    # -------------------------------------------------------- options

    def configure(self, **options):
        """Set options (the constructor's keywords); InvalidArgument for a
        value out of range, Busy for path/subprotocols once listening."""
        lib = self._lib
        for name, value in options.items():
            if name in _INT_OPTIONS or name in _CHAT_OPTIONS:
                setter, bits = (_INT_OPTIONS.get(name) or
                                _CHAT_OPTIONS[name])
                if not lib_has(self, setter):
                    raise NotImplementedError("%s: the loaded library has no "
                                              "%s" % (name, setter))
                rc = getattr(lib, setter)(self._p(),
                                          _int_arg(name, value, bits))
                check(rc, setter, "%s=%r" % (name, value))
            elif name == "path":
                rc = lib.wschat_server_set_path(
                    self._p(), None if value is None else value.encode())
                check(rc, "wschat_server_set_path", "path=%r" % (value,))
            elif name == "subprotocols":
                names = [n.encode("utf-8") for n in value]
                arr = (ctypes.c_char_p * max(len(names), 1))(*names)
                check(lib.wschat_server_set_subprotocols(self._p(), arr,
                                                         len(names)),
                      "wschat_server_set_subprotocols")
            elif name == "rate":
                per_second, burst = value
                check(lib.wschat_server_set_rate(
                    self._p(), _int_arg("rate", per_second, 32),
                    _int_arg("burst", burst, 32)),
                    "wschat_server_set_rate", "rate=%r" % (value,))
            elif name == "close_codes":
                for reason, code in dict(value).items():
                    if isinstance(reason, str):
                        reason = CloseReason[reason.upper()]
                    check(lib.wschat_server_set_close_code(
                        self._p(), CloseReason(reason),
                        _int_arg("close code", code, 16)),
                        "wschat_server_set_close_code",
                        "%s=%r" % (CloseReason(reason).name, code))
            elif name == "chat_server_name":
                check(lib.wschat_chat_set_server_name(
                    self._p(), value.encode("utf-8")),
                    "wschat_chat_set_server_name")
            else:
                raise TypeError("unknown wschat option %r" % name)

    def enable_chat(self, max_text=None, presence_limit=None,
                    server_name=None):
        """Speak the built-in chat protocol (wschatd's, both dialects). It
        takes over on_open, on_message and on_close; call before
        listening."""
        check(self._lib.wschat_chat_enable(self._p()), "wschat_chat_enable")
        self._chat = True
        for k in ("open", "message", "close"):
            self._handlers.pop(k, None)
        opts = {}
        if max_text is not None:
            opts["chat_max_text"] = max_text
        if presence_limit is not None:
            opts["chat_presence_limit"] = presence_limit
        if server_name is not None:
            opts["chat_server_name"] = server_name
        self.configure(**opts)

    @property
    def chat(self):
        return self._chat

    # ---------------------------------------------------- running

    def listen(self, host=None, port=None):
        """Bind and start accepting; returns the port (useful with port 0).
        Raises AlreadyListening, InvalidArgument (host not an address
        literal) or a libuv WschatError such as EADDRINUSE."""
        if host is not None:
            self.host = host
        if port is not None:
            self._port = port
        check(self._lib.wschat_server_listen(
            self._p(), self.host.encode("ascii"),
            _int_arg("port", self._port, 16)), "wschat_server_listen",
            "%s:%s" % (self.host, self._port))
        self._listening = True
        return self.port

    @property
    def port(self):
        """The port listened on, or None before listen()."""
        if self._ptr is None:
            return None
        rc = self._lib.wschat_server_port(self._ptr)
        return rc if rc > 0 else None

    def run(self, handle_signals=True):
        """Listen (if not yet) and serve until stop(). Returns when the
        stop has completed and every session has had its on_close.

        Called from the main thread, the C loop runs in a thread of its own
        (callbacks run there) while the main thread waits, so that Python
        signal handlers run at once; with handle_signals, SIGINT and SIGTERM
        call stop() (unless the application set its own handlers). A
        KeyboardInterrupt stops the server and is raised once it has.
        """
        if self._thread is not None:
            raise RuntimeError("the server is already running")
        if not self._listening:
            self.listen()
        if threading.current_thread() is not threading.main_thread():
            return self._run_here()
        saved = {}
        if handle_signals:
            saved = self._install_signal_handlers()
        self._run_result = None
        t = threading.Thread(target=self._run_in_thread,
                             name="wschat-loop", daemon=True)
        self._thread = t
        interrupted = None
        try:
            t.start()
            while t.is_alive():
                try:
                    t.join()
                except KeyboardInterrupt as e:
                    interrupted = e
                    self.stop()
        finally:
            self._thread = None
            for signum, handler in saved.items():
                signal.signal(signum, handler)
        if interrupted is not None:
            raise interrupted
        return self._finish_run(self._run_result)

    def _install_signal_handlers(self):
        saved = {}

        def handler(signum, frame):
            self.stop()

        for signum, default in ((signal.SIGINT, signal.default_int_handler),
                                (signal.SIGTERM, signal.SIG_DFL)):
            current = signal.getsignal(signum)
            if current is default or current is None:
                saved[signum] = current if current is not None else \
                    signal.SIG_DFL
                signal.signal(signum, handler)
        return saved

    def _run_here(self):
        self._loop_thread = threading.get_ident()
        try:
            # ctypes releases the GIL for the whole loop; callbacks take it.
            rc = self._lib.wschat_server_run(self._ptr)
        finally:
            self._loop_thread = None
        return self._finish_run(rc)

    def _run_in_thread(self):
        self._loop_thread = threading.get_ident()
        try:
            self._run_result = self._lib.wschat_server_run(self._ptr)
        except BaseException as e:
            self._run_result = e
        finally:
            self._loop_thread = None

    def _finish_run(self, rc):
        if isinstance(rc, BaseException):
            raise rc
        if rc is None:
            raise RuntimeError("the server loop ended abnormally")
        self._listening = False
        check(rc, "wschat_server_run")
        return rc

    def start(self):
        """Listen (if not yet) and run the server in a background thread
        (which then runs the callbacks); returns the port. End it with
        stop() and wait(). No signal handlers are installed."""
        if self._thread is not None:
            raise RuntimeError("the server is already running")
        if not self._listening:
            self.listen()
        self._run_result = None
        ready = threading.Event()

        def body():
            self._loop_thread = threading.get_ident()
            ready.set()
            self._run_in_thread()

        self._thread = threading.Thread(target=body, name="wschat-loop",
                                        daemon=True)
        self._thread.start()
        ready.wait()
        return self.port

    def wait(self, timeout=None):
        """Wait for a start()ed server to end; True if it has. Raises the
        loop's error, if any."""
        t = self._thread
        if t is None:
            return True
        t.join(timeout)
        if t.is_alive():
            return False
        self._thread = None
        self._finish_run(self._run_result)
        return True

    def stop(self):
        """Stop the server: refuse new connections, close sessions with 1001
        and let run() return. Any thread, and safe in a signal handler.
        Returns False if the server was not listening."""
        with self._stop_lock:
            if self._ptr is None:
                return False
            rc = self._lib.wschat_server_stop(self._ptr)
        if rc == ENOTLISTENING:
            return False
        check(rc, "wschat_server_stop")
        return True

    @property
    def is_stopped(self):
        return self._ptr is None or bool(
            self._lib.wschat_server_is_stopped(self._ptr))

    def close(self):
        """Free the C server (Busy while it is running or has
        connections). Idempotent; also done when the object is collected
        and by `with`."""
        with self._stop_lock:
            if self._ptr is None:
                return
            if self._thread is not None or self._loop_thread is not None:
                raise Busy(-30102, "wschat_server_free", "still running")
            if self._listening:
                # Listening but never run: its handles close only on its
                # loop, so stop it and let the loop finish the stop.
                self._lib.wschat_server_stop(self._ptr)
                self._lib.wschat_server_run(self._ptr)
                self._listening = False
            check(self._lib.wschat_server_free(self._ptr),
                  "wschat_server_free")
            self._ptr = None
            self._sessions.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self._thread is not None:
            self.stop()
            self.wait()
        self.close()

    def __del__(self):
        try:
            if getattr(self, "_ptr", None) is not None and \
                    self._thread is None and self._loop_thread is None:
                self.close()
        except Exception:
            pass

    # ------------------------------------------------ names and rooms

    @property
    def sessions(self):
        """The open Sessions the Python callbacks track."""
        self._check_thread()
        return list(self._sessions.values())

    def find_session(self, name):
        """The open session with this name (case-insensitive), or None."""
        ptr = self._lib.wschat_server_find_session(self._p(),
                                                   name.encode("utf-8"))
        if not ptr:
            return None
        return self._sessions.get(ptr)

    def room(self, name):
        """The Room with this name, created if needed (InvalidArgument for
        a bad name, LimitExceeded when max_rooms is reached)."""
        room = self._rooms.get(name)
        if room is None:
            room = Room(self, name)
            room._open()
            self._rooms[name] = room
        elif not room._find():
            room._open()
        return room

    def find_room(self, name):
        """The Room with this name if it exists, else None."""
        if not self._lib.wschat_room_find(self._p(), name.encode("utf-8")):
            return None
        return self.room(name)

    @property
    def rooms(self):
        """Every room, in creation order."""
        ptrs = []
        cb = _lib.ROOM_CB(lambda room, arg: ptrs.append(room))
        self._lib.wschat_server_foreach_room(self._p(), cb, None)
        return [self._room_for_ptr(p) for p in ptrs]

    def broadcast(self, room, data, exclude=None):
        """Send to every member of a room (Room or name)."""
        return self._room_arg(room).broadcast(data, exclude)

    # ------------------------------------------------------ statistics

    @property
    def connection_count(self):
        return self._lib.wschat_server_connection_count(self._p())

    def stats(self):
        """The server's counters as a dict (keys: STATS)."""
        ptr = self._p()
        return {name: self._lib.wschat_server_stat(ptr, i)
                for i, name in enumerate(STATS)}

    def closes(self, code):
        """How many sessions ended with this close code."""
        return self._lib.wschat_server_closes(self._p(), code)

    def metrics(self):
        """The counters in the Prometheus text format."""
        ptr = self._p()
        size = 4096
        while True:
            buf = ctypes.create_string_buffer(size)
            n = self._lib.wschat_server_metrics(ptr, buf, size)
            if n < size:
                return buf.value.decode("utf-8")
            size = n + 1

    def __repr__(self):
        return "<wschat.Server %s:%s>" % (self.host, self.port or self._port)


def lib_has(server, name):
    return hasattr(server._lib, name)
