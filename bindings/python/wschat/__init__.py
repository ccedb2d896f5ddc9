"""wschat - Python bindings for libwschat (ctypes, standard library only).

    import wschat

    server = wschat.Server(port=8080)

    @server.on_message
    def echo(session, data):
        session.send(data)

    server.run()   # until Ctrl-C, SIGTERM or server.stop()

The shared library is found through $WSCHAT_LIBRARY, next to this package,
$BUILD/lib or the source tree's lib/, then the system loader; see
load_library().
"""

from ._lib import load as _load
from .errors import (AlreadyListening, AlreadyMember, BadUTF8, Busy,
                     InvalidArgument, LimitExceeded, NameTaken, NotListening,
                     NotMember, OutOfMemory, ProtocolError, RateLimited,
                     SessionClosed, WschatError, check, err_name, strerror)
from .server import (OPTIONS, STATS, CloseCode, CloseReason, Request, Room,
                     Server, Session)

__all__ = [
    "Server", "Session", "Room", "Request", "CloseCode", "CloseReason",
    "OPTIONS", "STATS", "WschatError", "ProtocolError", "BadUTF8",
    "InvalidArgument", "SessionClosed", "Busy", "NotListening",
    "AlreadyListening", "NotMember", "AlreadyMember", "NameTaken",
    "LimitExceeded", "RateLimited", "OutOfMemory", "strerror", "err_name",
    "load_library", "library_path", "version", "version_string",
    "live_bytes", "library_shutdown",
]


def load_library(path=None):
    """Load libwschat now (from `path` if given) and return its path. Other
    functions load it on first use by the default search."""
    return _load(path).path


def library_path():
    """The file the loaded library came from (loading it if needed)."""
    return _load().path


def version():
    """wschat_version(): (major << 16) | (minor << 8) | patch."""
    return _load().cdll.wschat_version()


def version_string():
    """wschat_version_string() of the loaded library, e.g. "0.1.0"."""
    return _load().cdll.wschat_version_string().decode("ascii")


def live_bytes():
    """Bytes libwschat holds now, all servers together."""
    return _load().cdll.wschat_live_bytes()


def library_shutdown():
    """wschat_library_shutdown(): give back the library's process-wide
    state once every Server is closed. Raises Busy while library memory is
    still allocated (a server not closed: a leak a program can report)."""
    check(_load().cdll.wschat_library_shutdown(), "wschat_library_shutdown")
