"""WschatError and its subclasses: the library's negative error codes as
exceptions.

Every failing call raises a WschatError whose `code` is the negative value
the C function returned, `name` is wschat_err_name(code) ("WSCHAT_EINVAL",
"EADDRINUSE", ...) and `message` is wschat_strerror(code). The library's
own codes get a subclass each (NameTaken, SessionClosed, ...); libuv's
codes are plain WschatError.
"""

from . import _lib

# The library's codes (WSCHAT_ERRNO_MAP in include/wschat.h).
EPROTO = -30000
EBADUTF8 = -30001
EBADCLOSE = -30002
EHANDSHAKE = -30003
EUNMASKED = -30004
EINVAL = -30100
ECLOSED = -30101
EBUSY = -30102
ENOTLISTENING = -30103
ELISTENING = -30104
ENOTMEMBER = -30105
EEXIST = -30106
ENAMETAKEN = -30107
ETOOBIG = -30200
EQUEUEFULL = -30201
ETOOMANY = -30202
EHEADERS = -30203
ERATELIMITED = -30204
ENOMEM = -30300


def strerror(code):
    """wschat_strerror(code): the message for a library or libuv code."""
    return _lib.lib().wschat_strerror(code).decode("utf-8", "replace")


def err_name(code):
    """wschat_err_name(code): "WSCHAT_ETOOBIG", "ECONNRESET", ... or
    "UNKNOWN"."""
    return _lib.lib().wschat_err_name(code).decode("utf-8", "replace")


class WschatError(Exception):
    """A libwschat call failed.

    code: the negative error code; name: its symbolic name; message: its
    description; call: the C function that failed (or None); detail: more
    context from the binding (or None).
    """

    def __init__(self, code, call=None, detail=None):
        self.code = code
        self.name = err_name(code)
        self.message = strerror(code)
        self.call = call
        self.detail = detail
        text = "%s: %s" % (self.name, self.message)
        if detail:
            text += " (%s)" % detail
        if call:
            text = "%s: %s" % (call, text)
        super().__init__(text)


class ProtocolError(WschatError):
    """WSCHAT_EPROTO, EBADCLOSE, EHANDSHAKE, EUNMASKED."""


class BadUTF8(ProtocolError, ValueError):
    """WSCHAT_EBADUTF8: text or a close reason that is not UTF-8."""


class InvalidArgument(WschatError, ValueError):
    """WSCHAT_EINVAL: a value out of range, a bad name, a bad close code."""


class SessionClosed(WschatError):
    """WSCHAT_ECLOSED: the session is closing or closed."""


class Busy(WschatError):
    """WSCHAT_EBUSY: not possible while listening or with open sessions."""


class NotListening(WschatError):
    """WSCHAT_ENOTLISTENING."""


class AlreadyListening(WschatError):
    """WSCHAT_ELISTENING."""


class NotMember(WschatError):
    """WSCHAT_ENOTMEMBER: the session is not in the room."""


class AlreadyMember(WschatError):
    """WSCHAT_EEXIST: the session is already in the room."""


class NameTaken(WschatError):
    """WSCHAT_ENAMETAKEN: another session has this name."""


class LimitExceeded(WschatError):
    """WSCHAT_ETOOBIG, EQUEUEFULL, ETOOMANY, EHEADERS."""


class RateLimited(WschatError):
    """WSCHAT_ERATELIMITED."""


class OutOfMemory(WschatError, MemoryError):
    """WSCHAT_ENOMEM."""


_CLASSES = {
    EPROTO: ProtocolError,
    EBADUTF8: BadUTF8,
    EBADCLOSE: ProtocolError,
    EHANDSHAKE: ProtocolError,
    EUNMASKED: ProtocolError,
    EINVAL: InvalidArgument,
    ECLOSED: SessionClosed,
    EBUSY: Busy,
    ENOTLISTENING: NotListening,
    ELISTENING: AlreadyListening,
    ENOTMEMBER: NotMember,
    EEXIST: AlreadyMember,
    ENAMETAKEN: NameTaken,
    ETOOBIG: LimitExceeded,
    EQUEUEFULL: LimitExceeded,
    ETOOMANY: LimitExceeded,
    EHEADERS: LimitExceeded,
    ERATELIMITED: RateLimited,
    ENOMEM: OutOfMemory,
}


def error(code, call=None, detail=None):
    """The exception for a negative code: the subclass for the library's
    own codes, WschatError for libuv's."""
    return _CLASSES.get(code, WschatError)(code, call, detail)


def check(rc, call, detail=None):
    """Return rc, or raise the exception for it when it is negative."""
    if rc < 0:
        raise error(rc, call, detail)
    return rc
