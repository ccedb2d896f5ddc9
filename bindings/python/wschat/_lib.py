"""Finding and loading libwschat, and the ctypes prototypes of its API.

Every function the package calls is declared here with its argtypes and
restype; handles (server, session, room, frame, request) are opaque and
travel as c_void_p.
"""

import ctypes
import ctypes.util
import glob
import os
import threading

from ctypes import (CFUNCTYPE, POINTER, c_char_p, c_int, c_size_t, c_uint,
                    c_uint64, c_void_p)

SONAME = "libwschat.so.0"
_PKG_DIR = os.path.dirname(os.path.abspath(__file__))
# bindings/python/wschat -> the repository root.
_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(_PKG_DIR)))

# Callback types, as in include/wschat.h (the user pointer is unused: the
# Python side binds its state in closures).
OPEN_CB = CFUNCTYPE(None, c_void_p, c_void_p)
MESSAGE_CB = CFUNCTYPE(None, c_void_p, c_int, c_void_p, c_size_t, c_void_p)
CLOSE_CB = CFUNCTYPE(None, c_void_p, c_int, c_void_p, c_size_t, c_void_p)
PONG_CB = CFUNCTYPE(None, c_void_p, c_void_p, c_size_t, c_void_p)
ORIGIN_CB = CFUNCTYPE(c_int, c_void_p, c_void_p, c_char_p, c_void_p)
HTTP_CB = CFUNCTYPE(None, c_void_p, c_void_p, c_void_p)
MEMBER_CB = CFUNCTYPE(None, c_void_p, c_void_p)
ROOM_CB = CFUNCTYPE(None, c_void_p, c_void_p)
HISTORY_CB = CFUNCTYPE(None, c_void_p, c_uint64, c_void_p, c_size_t, c_void_p)
ACCEPT_ERROR_CB = CFUNCTYPE(None, c_void_p, c_int, c_void_p)

_vp = c_void_p
# name: (restype, argtypes). Functions marked optional may be missing from
# an older library; the package then reports them as unsupported.
_PROTOTYPES = {
    "wschat_strerror": (c_char_p, [c_int]),
    "wschat_err_name": (c_char_p, [c_int]),
    "wschat_version": (c_uint, []),
    "wschat_version_string": (c_char_p, []),
    "wschat_live_bytes": (c_size_t, []),
    "wschat_library_shutdown": (c_int, []),
    "wschat_server_new": (_vp, [_vp]),
    "wschat_server_free": (c_int, [_vp]),
    "wschat_server_on_open": (None, [_vp, OPEN_CB]),
    "wschat_server_on_message": (None, [_vp, MESSAGE_CB]),
    "wschat_server_on_close": (None, [_vp, CLOSE_CB]),
    "wschat_server_on_pong": (None, [_vp, PONG_CB]),
    "wschat_server_on_origin": (None, [_vp, ORIGIN_CB]),
    "wschat_server_on_http": (None, [_vp, HTTP_CB]),
    "wschat_server_on_accept_error": (None, [_vp, ACCEPT_ERROR_CB]),
    "wschat_server_set_max_message": (c_int, [_vp, c_uint64]),
    "wschat_server_set_max_header": (c_int, [_vp, c_size_t]),
    "wschat_server_set_max_header_count": (c_int, [_vp, c_uint]),
    "wschat_server_set_max_connections": (c_int, [_vp, c_uint]),
    "wschat_server_set_max_per_ip": (c_int, [_vp, c_uint]),
    "wschat_server_set_max_queued": (c_int, [_vp, c_uint64]),
    "wschat_server_get_max_queued": (c_uint64, [_vp]),
    "wschat_server_set_handshake_timeout": (c_int, [_vp, c_uint]),
    "wschat_server_set_close_timeout": (c_int, [_vp, c_uint]),
    "wschat_server_set_idle_timeout": (c_int, [_vp, c_uint]),
    "wschat_server_set_ping_interval": (c_int, [_vp, c_uint]),
    "wschat_server_set_path": (c_int, [_vp, c_char_p]),
    "wschat_server_set_subprotocols": (c_int,
                                       [_vp, POINTER(c_char_p), c_size_t]),
    "wschat_server_set_close_code": (c_int, [_vp, c_int, c_int]),
    "wschat_server_listen": (c_int, [_vp, c_char_p, c_int]),
    "wschat_server_port": (c_int, [_vp]),
    "wschat_server_run": (c_int, [_vp]),
    "wschat_server_stop": (c_int, [_vp]),
    "wschat_server_is_stopped": (c_int, [_vp]),
    "wschat_server_connection_count": (c_uint, [_vp]),
    "wschat_session_send_text": (c_int, [_vp, c_char_p, c_size_t]),
    "wschat_session_send_binary": (c_int, [_vp, c_char_p, c_size_t]),
    "wschat_session_close": (c_int, [_vp, c_int, c_char_p]),
    "wschat_session_ping": (c_int, [_vp, c_char_p, c_size_t]),
    "wschat_session_id": (c_uint64, [_vp]),
    "wschat_session_subprotocol": (c_char_p, [_vp]),
    "wschat_session_path": (c_char_p, [_vp]),
    "wschat_session_peer": (c_int, [_vp, c_char_p, c_size_t]),
    "wschat_session_queued": (c_uint64, [_vp]),
    "wschat_http_method": (c_char_p, [_vp]),
    "wschat_http_path": (c_char_p, [_vp]),
    "wschat_http_query": (c_char_p, [_vp]),
    "wschat_http_header": (c_char_p, [_vp, c_char_p]),
    "wschat_http_respond": (c_int, [_vp, c_int, c_char_p, c_char_p,
                                    c_char_p, c_size_t]),
    "wschat_frame_new": (c_int, [c_int, c_char_p, c_size_t, POINTER(_vp)]),
    "wschat_frame_release": (None, [_vp]),
    "wschat_session_send_frame": (c_int, [_vp, _vp]),
    "wschat_session_name": (c_char_p, [_vp]),
    "wschat_session_set_name": (c_int, [_vp, c_char_p]),
    "wschat_server_find_session": (_vp, [_vp, c_char_p]),
    "wschat_room_open": (c_int, [_vp, c_char_p, POINTER(_vp)]),
    "wschat_room_find": (_vp, [_vp, c_char_p]),
    "wschat_server_set_max_rooms": (c_int, [_vp, c_uint]),
    "wschat_server_set_history": (c_int, [_vp, c_uint]),
    "wschat_room_name": (c_char_p, [_vp]),
    "wschat_room_member_count": (c_uint, [_vp]),
    "wschat_server_room_count": (c_uint, [_vp]),
    "wschat_room_join": (c_int, [_vp, _vp]),
    "wschat_room_leave": (c_int, [_vp, _vp]),
    "wschat_room_is_member": (c_int, [_vp, _vp]),
    "wschat_room_foreach_member": (None, [_vp, MEMBER_CB, _vp]),
    "wschat_server_foreach_room": (None, [_vp, ROOM_CB, _vp]),
    "wschat_session_foreach_room": (None, [_vp, ROOM_CB, _vp]),
    "wschat_room_broadcast": (c_int, [_vp, _vp, _vp]),
    "wschat_room_history_add": (c_int, [_vp, c_char_p, c_size_t,
                                        POINTER(c_uint64)]),
    "wschat_room_last_id": (c_uint64, [_vp]),
    "wschat_room_first_id": (c_uint64, [_vp]),
    "wschat_room_history": (c_uint, [_vp, c_uint64, c_uint64, c_uint,
                                     HISTORY_CB, _vp, POINTER(c_int)]),
    "wschat_server_set_rate": (c_int, [_vp, c_uint, c_uint]),
    "wschat_server_get_rate": (None, [_vp, POINTER(c_uint),
                                      POINTER(c_uint)]),
    "wschat_session_rate_take": (c_int, [_vp]),
    "wschat_server_stat": (c_uint64, [_vp, c_int]),
    "wschat_server_closes": (c_uint64, [_vp, c_int]),
    "wschat_server_metrics": (c_int, [_vp, c_char_p, c_size_t]),
    "wschat_chat_enable": (c_int, [_vp]),
    "wschat_chat_set_max_text": (c_int, [_vp, c_size_t]),
    "wschat_chat_set_presence_limit": (c_int, [_vp, c_uint]),
    "wschat_chat_set_server_name": (c_int, [_vp, c_char_p]),
}
_OPTIONAL = {"wschat_chat_set_presence_limit", "wschat_server_on_accept_error",
             "wschat_server_set_max_per_ip"}


def candidates():
    """The paths tried, in order, before the system loader: $WSCHAT_LIBRARY,
    a library next to the package, $BUILD/lib, the repository's lib/."""
    paths = []
    env = os.environ.get("WSCHAT_LIBRARY")
    if env:
        paths.append(env)
    paths.extend(sorted(glob.glob(os.path.join(_PKG_DIR, "libwschat.so*"))))
    build = os.environ.get("BUILD")
    if build:
        if not os.path.isabs(build):
            build = os.path.join(_REPO_ROOT, build)
        paths.append(os.path.join(build, "lib", SONAME))
    paths.append(os.path.join(_REPO_ROOT, "lib", SONAME))
    return paths


class Library:
    """The loaded shared library: `cdll` has every prototype set, `path`
    says which file it came from."""

    def __init__(self, path):
        self.path = path
        self.cdll = ctypes.CDLL(path)
        for name, (restype, argtypes) in _PROTOTYPES.items():
            try:
                fn = getattr(self.cdll, name)
            except AttributeError:
                if name in _OPTIONAL:
                    continue
                raise OSError("%s: %s is missing (library too old?)"
                              % (path, name)) from None
            fn.restype = restype
            fn.argtypes = argtypes
        major = self.cdll.wschat_version() >> 16
        if major != 0:
            raise OSError("%s: libwschat major version %d, this package "
                          "needs 0" % (path, major))

    def has(self, name):
        return hasattr(self.cdll, name)


_lock = threading.Lock()
_library = None


def load(path=None):
    """Load libwschat (once per process) and return the Library.

    With `path`, load exactly that file. Otherwise try, in order:
    $WSCHAT_LIBRARY, libwschat.so* next to the package, $BUILD/lib and the
    repository's lib/ (for a source tree), then the system loader. A second
    call returns the library already loaded; asking for a different path
    then raises OSError.
    """
    global _library
    with _lock:
        if _library is not None:
            if path is not None and (os.path.realpath(path) !=
                                     os.path.realpath(_library.path)):
                raise OSError("libwschat is already loaded from %s"
                              % _library.path)
            return _library
        if path is not None:
            _library = Library(path)
            return _library
        env = os.environ.get("WSCHAT_LIBRARY")
        if env:
            # An explicit choice is never silently replaced by another.
            _library = Library(env)
            return _library
        for p in candidates():
            if os.path.exists(p):
                _library = Library(p)
                return _library
        name = ctypes.util.find_library("wschat") or SONAME
        try:
            _library = Library(name)
        except OSError as e:
            raise OSError("libwschat not found (tried %s and %s): set "
                          "WSCHAT_LIBRARY to its path"
                          % (", ".join(candidates()), name)) from e
        return _library


def lib():
    """The prototyped CDLL, loading the library on first use."""
    return (_library or load()).cdll
