/*
 * wschat.h - the public interface of libwschat, a WebSocket (RFC 6455)
 * server library on libuv.
 *
 * Model
 *   A wschat_server listens on one TCP address, upgrades HTTP requests to
 *   WebSocket sessions and reports each session's life through callbacks:
 *   on_open, then any number of on_message, then exactly one on_close.
 *   Requests that are not WebSocket upgrades go to an optional plain-HTTP
 *   handler.
 *
 * Threading
 *   A server and its sessions belong to the thread that runs their loop.
 *   Every function here must be called from that thread (in practice: from
 *   inside a callback, or before the loop runs) unless its comment says
 *   "any thread".
 *
 * Errors
 *   Functions return 0 (or a count) on success and a negative error code
 *   on failure. libwschat's own codes are the WSCHAT_E* values below, all
 *   in [-30399, -30000]; other negative values are libuv's (-errno) and pass
 *   through unchanged. wschat_strerror() and wschat_err_name() describe
 *   both. A call that returns an error never invokes its callback.
 *
 * Lifetime
 *   Exactly one on_close follows every on_open. A session may be closed
 *   from inside any callback; its memory is released on a later loop turn,
 *   and the session pointer must not be used after on_close returns.
 *   Pointers passed into a callback are borrowed until it returns.
 */
#ifndef WSCHAT_H
#define WSCHAT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define WSCHAT_EXTERN __attribute__((visibility("default")))
#else
#define WSCHAT_EXTERN
#endif

#define WSCHAT_VERSION_MAJOR 0
#define WSCHAT_VERSION_MINOR 1
#define WSCHAT_VERSION_PATCH 0
#define WSCHAT_VERSION_HEX                                                   \
  ((WSCHAT_VERSION_MAJOR << 16) | (WSCHAT_VERSION_MINOR << 8) |              \
   WSCHAT_VERSION_PATCH)

/* libuv's loop type, declared here so that this header does not require
 * <uv.h>; it is the same struct uv.h defines as uv_loop_t. */
struct uv_loop_s;

/* ------------------------------------------------------------------------
 * Errors
 * ---------------------------------------------------------------------- */

/*
 * The error table: name, value, message. Grouped by hundreds: protocol
 * (-300xx), argument and state (-301xx), limits (-302xx), memory (-303xx).
 */
#define WSCHAT_ERRNO_MAP(XX)                                                 \
  XX(EPROTO, -30000, "WebSocket protocol error")                             \
  XX(EBADUTF8, -30001, "invalid UTF-8 in a text message or close reason")    \
  XX(EBADCLOSE, -30002, "invalid close frame payload or close code")         \
  XX(EHANDSHAKE, -30003, "invalid WebSocket handshake request")              \
  XX(EUNMASKED, -30004, "client frame is not masked")                        \
  XX(EINVAL, -30100, "invalid argument")                                     \
  XX(ECLOSED, -30101, "session is closing or closed")                        \
  XX(EBUSY, -30102, "server is running or still has open connections")      \
  XX(ENOTLISTENING, -30103, "server is not listening")                       \
  XX(ELISTENING, -30104, "server is already listening")                      \
  XX(ETOOBIG, -30200, "message or frame exceeds the configured limit")       \
  XX(EQUEUEFULL, -30201, "session output queue is over its limit")           \
  XX(ETOOMANY, -30202, "too many connections")                               \
  XX(EHEADERS, -30203, "request header block exceeds the configured limit")  \
  XX(ENOMEM, -30300, "out of memory")

typedef enum {
#define WSCHAT_ERR_ENUM_(name, value, msg) WSCHAT_##name = (value),
  WSCHAT_ERRNO_MAP(WSCHAT_ERR_ENUM_)
#undef WSCHAT_ERR_ENUM_
  WSCHAT_ERRNO_MIN_ = -30399
} wschat_errno;

/* Return a static, human-readable message for err: one of ours, a libuv
 * error, or "unknown error" for anything else. Any thread. */
WSCHAT_EXTERN const char *wschat_strerror(int err);

/* Return the static symbolic name of err ("WSCHAT_ETOOBIG", "ECONNRESET",
 * ...), or "UNKNOWN" for anything else. Any thread. */
WSCHAT_EXTERN const char *wschat_err_name(int err);

/* ------------------------------------------------------------------------
 * Version and global state
 * ---------------------------------------------------------------------- */

/* WSCHAT_VERSION_HEX of the library actually loaded. Any thread. */
WSCHAT_EXTERN unsigned int wschat_version(void);

/* "0.1.0" for the library actually loaded. Any thread. */
WSCHAT_EXTERN const char *wschat_version_string(void);

typedef void *(*wschat_malloc_func)(size_t size);
typedef void *(*wschat_realloc_func)(void *ptr, size_t size);
typedef void (*wschat_free_func)(void *ptr);

/*
 * Replace the allocator libwschat uses for all of its own memory (libuv's
 * and the other dependencies' allocations are not affected). Call it
 * before any other libwschat function, from one thread. All three
 * functions are required.
 *
 * Returns 0, or WSCHAT_EINVAL if a function is NULL, or WSCHAT_EBUSY if
 * libwschat memory is currently allocated (the allocator cannot change
 * while blocks from the old one are live).
 */
WSCHAT_EXTERN int wschat_replace_allocator(wschat_malloc_func malloc_fn,
                                           wschat_realloc_func realloc_fn,
                                           wschat_free_func free_fn);

/* Bytes currently allocated by libwschat through its allocator, all
 * servers together. Any thread. */
WSCHAT_EXTERN size_t wschat_live_bytes(void);

/* ------------------------------------------------------------------------
 * Handles, message types, close codes
 * ---------------------------------------------------------------------- */

typedef struct wschat_server wschat_server;
typedef struct wschat_session wschat_session;
typedef struct wschat_http_request wschat_http_request;

typedef enum {
  WSCHAT_TEXT = 1,  /* opcode 0x1: payload is valid UTF-8 */
  WSCHAT_BINARY = 2 /* opcode 0x2 */
} wschat_msg_type;

/* Close codes of RFC 6455 section 7.4.1 that the library uses. 1005, 1006
 * and 1015 are only ever reported to on_close, never sent. */
enum {
  WSCHAT_CLOSE_NORMAL = 1000,
  WSCHAT_CLOSE_GOING_AWAY = 1001,
  WSCHAT_CLOSE_PROTOCOL_ERROR = 1002,
  WSCHAT_CLOSE_UNSUPPORTED = 1003,
  WSCHAT_CLOSE_NO_STATUS = 1005,
  WSCHAT_CLOSE_ABNORMAL = 1006,
  WSCHAT_CLOSE_INVALID_DATA = 1007,
  WSCHAT_CLOSE_POLICY = 1008,
  WSCHAT_CLOSE_TOO_BIG = 1009,
  WSCHAT_CLOSE_INTERNAL = 1011
};

/*
 * The situations in which the library itself closes a session. The close
 * code sent for each is configurable with wschat_server_set_close_code();
 * the default is given beside each.
 */
typedef enum {
  WSCHAT_CLOSE_ON_PROTOCOL_ERROR = 0, /* 1002: malformed frame or sequence */
  WSCHAT_CLOSE_ON_BAD_UTF8,           /* 1007: invalid UTF-8 in a text message */
  WSCHAT_CLOSE_ON_TOO_BIG,            /* 1009: message over max_message */
  WSCHAT_CLOSE_ON_SLOW_CONSUMER,      /* 1008: output queue over max_queued */
  WSCHAT_CLOSE_ON_IDLE,               /* 1001: idle timeout expired */
  WSCHAT_CLOSE_ON_SHUTDOWN,           /* 1001: server stopping */
  WSCHAT_CLOSE_ON_INTERNAL,           /* 1011: out of memory and the like */
  WSCHAT_CLOSE_ON_COUNT_
} wschat_close_reason;

/* ------------------------------------------------------------------------
 * Callbacks
 * ---------------------------------------------------------------------- */

/* A session completed its handshake. `userdata` is the server's. */
typedef void (*wschat_open_cb)(wschat_session *session, void *userdata);

/*
 * A whole message arrived (fragments already reassembled). For
 * WSCHAT_TEXT, data is valid UTF-8. data is not NUL-terminated and is
 * borrowed until the callback returns.
 */
typedef void (*wschat_message_cb)(wschat_session *session,
                                  wschat_msg_type type, const char *data,
                                  size_t len, void *userdata);

/*
 * The session ended. `code` is the close code of the peer's close frame if
 * the peer closed first (1005 if its frame had no code), the code the
 * library or the application sent if this side closed first, or 1006 if
 * the connection was lost without a close frame. reason (reason_len
 * bytes, valid UTF-8, not NUL-terminated) goes with that code. The
 * session may not be used after this returns.
 */
typedef void (*wschat_close_cb)(wschat_session *session, int code,
                                const char *reason, size_t reason_len,
                                void *userdata);

/* A pong arrived (answer to wschat_session_ping(), or unsolicited). */
typedef void (*wschat_pong_cb)(wschat_session *session, const char *data,
                               size_t len, void *userdata);

/*
 * Decide whether a handshake with this Origin header (NULL when the
 * request had none) may proceed. Return nonzero to accept; zero makes the
 * server answer 403 Forbidden.
 */
typedef int (*wschat_origin_cb)(wschat_server *server, const char *origin,
                                void *userdata);

/*
 * A request that is not a WebSocket upgrade arrived. Answer it with
 * wschat_http_respond() before returning; a request left unanswered gets
 * 404 Not Found. The request is borrowed until the callback returns.
 * Without a handler, such requests get 426 Upgrade Required (404 when a
 * path is set and the request is for another one).
 */
typedef void (*wschat_http_cb)(wschat_server *server,
                               wschat_http_request *request,
                               void *userdata);

/* ------------------------------------------------------------------------
 * Server
 * ---------------------------------------------------------------------- */

/*
 * Create a server that will run on `loop`, which the caller owns and
 * runs. Pass NULL to let wschat_server_run() create and own a loop.
 * Also makes SIGPIPE ignored if its disposition was the default, so that
 * a peer that resets its connection never kills the process.
 *
 * Returns the server, or NULL when out of memory.
 */
WSCHAT_EXTERN wschat_server *wschat_server_new(struct uv_loop_s *loop);

/*
 * Free a server that is not listening and has no sessions left: never
 * started, or stopped and its loop run until wschat_server_run() returned
 * (or, on a caller's loop, until wschat_server_is_stopped() is true).
 *
 * Returns 0, or WSCHAT_EBUSY (nothing freed) while handles remain open.
 * NULL is accepted and ignored.
 */
WSCHAT_EXTERN int wschat_server_free(wschat_server *server);

/* Server user data, passed as the last argument of every callback. */
WSCHAT_EXTERN void wschat_server_set_userdata(wschat_server *server,
                                              void *userdata);
WSCHAT_EXTERN void *wschat_server_get_userdata(const wschat_server *server);

/* Register callbacks; NULL unregisters. May be called at any time from the
 * loop thread; the change applies to the next event. */
WSCHAT_EXTERN void wschat_server_on_open(wschat_server *s, wschat_open_cb cb);
WSCHAT_EXTERN void wschat_server_on_message(wschat_server *s,
                                            wschat_message_cb cb);
WSCHAT_EXTERN void wschat_server_on_close(wschat_server *s,
                                          wschat_close_cb cb);
WSCHAT_EXTERN void wschat_server_on_pong(wschat_server *s, wschat_pong_cb cb);
WSCHAT_EXTERN void wschat_server_on_origin(wschat_server *s,
                                           wschat_origin_cb cb);
WSCHAT_EXTERN void wschat_server_on_http(wschat_server *s, wschat_http_cb cb);

/*
 * Options. Each setter returns 0 or WSCHAT_EINVAL for a value out of its
 * range (or a NULL server); the default and the range are given beside
 * each. Settings apply to connections accepted after the call (timeouts:
 * at the next sweep). Timeouts are in milliseconds, and 0 turns an
 * optional timer off. Loop thread only.
 */

/* Largest message (after reassembly) accepted, in bytes; a larger one is
 * closed with WSCHAT_CLOSE_ON_TOO_BIG (1009) as soon as a frame header
 * announces it, before its payload is buffered. Default 65536; 1..2^63. */
WSCHAT_EXTERN int wschat_server_set_max_message(wschat_server *s,
                                                uint64_t bytes);

/* Largest HTTP request head (request line and headers) accepted, in bytes;
 * more gets 431 (or 414 when the request target alone is over it).
 * Default 8192; 256..32768. */
WSCHAT_EXTERN int wschat_server_set_max_header(wschat_server *s,
                                               size_t bytes);

/* Most header lines in a request; more gets 431. Default 64; 1..1024. */
WSCHAT_EXTERN int wschat_server_set_max_header_count(wschat_server *s,
                                                     unsigned count);

/* Most simultaneous connections (handshaking, open or closing); one more
 * is answered 503 Service Unavailable and closed. Default 10000;
 * 1..10000000. */
WSCHAT_EXTERN int wschat_server_set_max_connections(wschat_server *s,
                                                    unsigned count);

/* Bytes of output a session may have left unsent at the end of a loop
 * turn, after the socket took what it could; more closes the session with
 * WSCHAT_CLOSE_ON_SLOW_CONSUMER (1008), dropping the unsent rest. Default
 * 1048576; 1024..2^62. */
WSCHAT_EXTERN int wschat_server_set_max_queued(wschat_server *s,
                                               uint64_t bytes);

/* Time from accept to a complete request head. Default 10000; 1..3600000
 * (this one cannot be turned off). */
WSCHAT_EXTERN int wschat_server_set_handshake_timeout(wschat_server *s,
                                                      unsigned ms);

/* Time a closing connection may take: waiting for the peer's close frame
 * after ours, and for the peer to close TCP after our FIN. Default 5000;
 * 1..3600000. */
WSCHAT_EXTERN int wschat_server_set_close_timeout(wschat_server *s,
                                                  unsigned ms);

/* Close a session that received nothing for this long with
 * WSCHAT_CLOSE_ON_IDLE (1001). Default 0 (off); 0..86400000. */
WSCHAT_EXTERN int wschat_server_set_idle_timeout(wschat_server *s,
                                                 unsigned ms);

/* Send a ping to a session that received nothing for this long, so that
 * a live peer's pong keeps it from the idle timeout. Default 0 (off);
 * 0..86400000. */
WSCHAT_EXTERN int wschat_server_set_ping_interval(wschat_server *s,
                                                  unsigned ms);

/* Accept WebSocket upgrades only for this request path (the part of the
 * target before any '?'); other paths get 404. NULL (the default)
 * accepts every path. The string is copied. Returns WSCHAT_EINVAL for a
 * path that does not start with '/', WSCHAT_EBUSY once the server is
 * listening, or WSCHAT_ENOMEM. */
WSCHAT_EXTERN int wschat_server_set_path(wschat_server *s, const char *path);

/* The subprotocols this server speaks. During the handshake the first of
 * the client's Sec-WebSocket-Protocol values (in the client's order) that
 * is in this list is selected; if none is, the session opens without a
 * subprotocol. The strings are copied. Returns WSCHAT_EINVAL for an empty
 * or non-token name, WSCHAT_EBUSY once the server is listening, or
 * WSCHAT_ENOMEM. */
WSCHAT_EXTERN int wschat_server_set_subprotocols(wschat_server *s,
                                                 const char *const *names,
                                                 size_t count);

/* The close code the library sends in the given situation. Codes
 * 1000-1003, 1007-1014 and 3000-4999 are accepted; others get
 * WSCHAT_EINVAL. */
WSCHAT_EXTERN int wschat_server_set_close_code(wschat_server *s,
                                               wschat_close_reason reason,
                                               int code);

/*
 * Bind to host:port and start accepting on the server's loop. host is an
 * IPv4 or IPv6 literal ("127.0.0.1", "::1", "0.0.0.0", "::"); port 0
 * lets the system pick a port, which wschat_server_port() then returns.
 *
 * Returns 0, WSCHAT_EINVAL for a host that is not an address literal,
 * WSCHAT_ELISTENING if already listening, or a libuv error (UV_EADDRINUSE,
 * UV_EACCES, ...).
 */
WSCHAT_EXTERN int wschat_server_listen(wschat_server *s, const char *host,
                                       int port);

/* The port the server listens on (useful after listening on port 0), or
 * WSCHAT_ENOTLISTENING. */
WSCHAT_EXTERN int wschat_server_port(const wschat_server *s);

/* The loop the server runs on: the caller's, or the one
 * wschat_server_run() owns (created on first use of this or run). NULL
 * only when out of memory. */
WSCHAT_EXTERN struct uv_loop_s *wschat_server_loop(wschat_server *s);

/*
 * Run the server's loop until wschat_server_stop() has completed. For
 * callers (and bindings) that do not want to manage a uv_loop_t. Call
 * wschat_server_listen() first.
 *
 * Returns 0, WSCHAT_ENOTLISTENING, or a libuv error.
 */
WSCHAT_EXTERN int wschat_server_run(wschat_server *s);

/*
 * Stop the server: stop accepting, close every open session with
 * WSCHAT_CLOSE_ON_SHUTDOWN (1001), drop handshaking ones, give each
 * session at most 1 s (or the close timeout, if shorter) to finish, then
 * close the server's own handles so that its loop can end. Sessions get their
 * on_close as usual. Any thread, and async-signal-safe once the server is
 * listening (it only calls uv_async_send()).
 *
 * Returns 0, or WSCHAT_ENOTLISTENING if the server never listened.
 */
WSCHAT_EXTERN int wschat_server_stop(wschat_server *s);

/* Nonzero once a stop has completed and every handle is closed, so that
 * wschat_server_free() will succeed. */
WSCHAT_EXTERN int wschat_server_is_stopped(const wschat_server *s);

/* Connections currently handshaking, open or closing. */
WSCHAT_EXTERN unsigned wschat_server_connection_count(const wschat_server *s);

/* ------------------------------------------------------------------------
 * Sessions
 * ---------------------------------------------------------------------- */

/*
 * Queue a text message (valid UTF-8, sent as one frame). The data is
 * copied; the call never blocks. Output leaves in one vectored write at
 * the end of the loop turn.
 *
 * Returns 0, WSCHAT_EBADUTF8, WSCHAT_ECLOSED once the session is closing,
 * or WSCHAT_ENOMEM. Passing the max_queued limit is not an error of this
 * call: it is judged at the end of the turn (see
 * wschat_server_set_max_queued()).
 */
WSCHAT_EXTERN int wschat_session_send_text(wschat_session *session,
                                           const char *data, size_t len);

/* As wschat_session_send_text(), for a binary message (no UTF-8 check). */
WSCHAT_EXTERN int wschat_session_send_binary(wschat_session *session,
                                             const void *data, size_t len);

/*
 * Start the close handshake: send a close frame with `code` and `reason`
 * (at most 123 bytes of UTF-8), wait up to the close timeout for the
 * peer's close, then close the TCP connection. on_close follows with this
 * code. Further sends fail with WSCHAT_ECLOSED. Safe from any callback.
 *
 * code is 1000-1003, 1007-1014 or 3000-4999, or 0 to send a close frame
 * with no code (the peer then sees 1005).
 *
 * Returns 0, WSCHAT_EINVAL (bad code, reason too long), WSCHAT_EBADUTF8,
 * or WSCHAT_ECLOSED if already closing.
 */
WSCHAT_EXTERN int wschat_session_close(wschat_session *session, int code,
                                       const char *reason);

/* Send a ping with up to 125 bytes of payload. The answer arrives at the
 * on_pong callback. Returns 0, WSCHAT_EINVAL, or WSCHAT_ECLOSED. */
WSCHAT_EXTERN int wschat_session_ping(wschat_session *session,
                                      const void *data, size_t len);

/* Session user data (NULL until set). */
WSCHAT_EXTERN void wschat_session_set_userdata(wschat_session *session,
                                               void *userdata);
WSCHAT_EXTERN void *wschat_session_get_userdata(
    const wschat_session *session);

/* The server the session belongs to. */
WSCHAT_EXTERN wschat_server *wschat_session_server(
    const wschat_session *session);

/* A number unique among this server's sessions, counting up from 1. */
WSCHAT_EXTERN uint64_t wschat_session_id(const wschat_session *session);

/* The selected subprotocol, or NULL if none. Valid for the session's
 * life. */
WSCHAT_EXTERN const char *wschat_session_subprotocol(
    const wschat_session *session);

/* The request path the session was opened on (without the query). Valid
 * for the session's life. */
WSCHAT_EXTERN const char *wschat_session_path(const wschat_session *session);

/* The peer's address as "ip:port" (IPv6 as "[ip]:port") into buf.
 * Returns the length written, or WSCHAT_EINVAL if buf is too small (48
 * bytes always suffice), or a libuv error. */
WSCHAT_EXTERN int wschat_session_peer(const wschat_session *session,
                                      char *buf, size_t size);

/* Bytes queued for this session and not yet written to the socket. */
WSCHAT_EXTERN uint64_t wschat_session_queued(const wschat_session *session);

/* ------------------------------------------------------------------------
 * Plain HTTP requests (inside a wschat_http_cb only)
 * ---------------------------------------------------------------------- */

/* "GET", "HEAD", ... */
WSCHAT_EXTERN const char *wschat_http_method(const wschat_http_request *req);

/* The request target's path, without the query ("/index.html"). */
WSCHAT_EXTERN const char *wschat_http_path(const wschat_http_request *req);

/* The query string without the '?', or "" if there was none. */
WSCHAT_EXTERN const char *wschat_http_query(const wschat_http_request *req);

/* The value of the first header named `name` (case-insensitive), or NULL. */
WSCHAT_EXTERN const char *wschat_http_header(const wschat_http_request *req,
                                             const char *name);

/*
 * Answer the request: status line, Content-Type (if non-NULL),
 * Content-Length, `extra_headers` (zero or more complete "Name: value\r\n"
 * lines, or NULL), then the body (omitted for HEAD). The connection is
 * closed after the response is sent. The body is copied.
 *
 * Returns 0, WSCHAT_EINVAL (status outside 100-599, or a second response),
 * or WSCHAT_ENOMEM.
 */
WSCHAT_EXTERN int wschat_http_respond(wschat_http_request *req, int status,
                                      const char *content_type,
                                      const char *extra_headers,
                                      const void *body, size_t len);

#ifdef __cplusplus
}
#endif
#endif /* WSCHAT_H */
