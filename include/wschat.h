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
#define WSCHAT_VERSION_HEX                                                     \
  ((WSCHAT_VERSION_MAJOR << 16) | (WSCHAT_VERSION_MINOR << 8) |                \
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
#define WSCHAT_ERRNO_MAP(XX)                                                   \
  XX(EPROTO, -30000, "WebSocket protocol error")                               \
  XX(EBADUTF8, -30001, "invalid UTF-8 in a text message or close reason")      \
  XX(EBADCLOSE, -30002, "invalid close frame payload or close code")           \
  XX(EHANDSHAKE, -30003, "invalid WebSocket handshake request")                \
  XX(EUNMASKED, -30004, "client frame is not masked")                          \
  XX(EINVAL, -30100, "invalid argument")                                       \
  XX(ECLOSED, -30101, "session is closing or closed")                          \
  XX(EBUSY, -30102, "server is running or still has open connections")         \
  XX(ENOTLISTENING, -30103, "server is not listening")                         \
  XX(ELISTENING, -30104, "server is already listening")                        \
  XX(ENOTMEMBER, -30105, "session is not a member of the room")                \
  XX(EEXIST, -30106, "session is already a member of the room")                \
  XX(ENAMETAKEN, -30107, "name is taken")                                      \
  XX(ETOOBIG, -30200, "message or frame exceeds the configured limit")         \
  XX(EQUEUEFULL, -30201, "session output queue is over its limit")             \
  XX(ETOOMANY, -30202, "too many connections or rooms")                        \
  XX(EHEADERS, -30203, "request header block exceeds the configured limit")    \
  XX(ERATELIMITED, -30204, "rate limit exceeded")                              \
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
 * servers together (the built-in chat protocol's buffers included; the
 * JSON objects it parses and builds for a moment come from jansson's own
 * allocator, which is process-wide and so left to the application). Any
 * thread. */
WSCHAT_EXTERN size_t wschat_live_bytes(void);

/*
 * Release the process-wide state libwschat holds, at exit or before
 * unloading it, after every server has been freed (and every frame
 * released). That state is the allocator: the default (the C library's)
 * is restored, so that wschat_replace_allocator() may be called again.
 * Servers keep their buffer pools and caches themselves, and
 * wschat_server_free() releases them; OpenSSL (used for the handshake's
 * SHA-1) frees its own global state when the process exits and its
 * per-thread state when a thread ends, and is left alone here, since the
 * application may use it too. libuv, jansson and http-parser hold no
 * global memory on libwschat's behalf.
 *
 * Returns 0, or WSCHAT_EBUSY, changing nothing, while libwschat memory
 * is still allocated (wschat_live_bytes() says how much): a server not
 * freed or a frame not released, which a program can report as a leak.
 * The library may be used again after it returns. From one thread, with
 * no other libwschat call running.
 */
WSCHAT_EXTERN int wschat_library_shutdown(void);

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
  WSCHAT_CLOSE_ON_BAD_UTF8,      /* 1007: invalid UTF-8 in a text message */
  WSCHAT_CLOSE_ON_TOO_BIG,       /* 1009: message over max_message */
  WSCHAT_CLOSE_ON_SLOW_CONSUMER, /* 1008: output queue over max_queued */
  WSCHAT_CLOSE_ON_IDLE,          /* 1001: idle timeout expired */
  WSCHAT_CLOSE_ON_SHUTDOWN,      /* 1001: server stopping */
  WSCHAT_CLOSE_ON_INTERNAL,      /* 1011: out of memory and the like */
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
typedef void (*wschat_message_cb)(wschat_session *session, wschat_msg_type type,
                                  const char *data, size_t len, void *userdata);

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
 * server answer 403 Forbidden. The request's headers can be read with
 * wschat_http_header() (e.g. Host, to allow same-origin clients); it
 * cannot be answered from here.
 */
typedef int (*wschat_origin_cb)(wschat_server *server,
                                const wschat_http_request *request,
                                const char *origin, void *userdata);

/*
 * A request that is not a WebSocket upgrade arrived. Answer it with
 * wschat_http_respond() before returning; a request left unanswered gets
 * 404 Not Found. The request is borrowed until the callback returns.
 * Without a handler, such requests get 426 Upgrade Required (404 when a
 * path is set and the request is for another one).
 */
typedef void (*wschat_http_cb)(wschat_server *server,
                               wschat_http_request *request, void *userdata);

/*
 * The server cannot take new connections: err is UV_EMFILE or UV_ENFILE
 * when the process or the system is out of file descriptors, or another
 * libuv error accept(2) returned. Called once per burst: for the first
 * failure after connections were being accepted normally, not for each
 * connection refused while it lasts. Connections arriving meanwhile are
 * shed (accepted into a descriptor kept in reserve and closed at once,
 * so the listener neither spins nor leaves them hanging); sessions
 * already open are not affected. For logging: the server recovers by
 * itself once descriptors are freed.
 */
typedef void (*wschat_accept_error_cb)(wschat_server *server, int err,
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
WSCHAT_EXTERN void wschat_server_on_close(wschat_server *s, wschat_close_cb cb);
WSCHAT_EXTERN void wschat_server_on_pong(wschat_server *s, wschat_pong_cb cb);
WSCHAT_EXTERN void wschat_server_on_origin(wschat_server *s,
                                           wschat_origin_cb cb);
WSCHAT_EXTERN void wschat_server_on_http(wschat_server *s, wschat_http_cb cb);
WSCHAT_EXTERN void wschat_server_on_accept_error(wschat_server *s,
                                                 wschat_accept_error_cb cb);

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
WSCHAT_EXTERN int wschat_server_set_max_header(wschat_server *s, size_t bytes);

/* Most header lines in a request; more gets 431. Default 64; 1..1024. */
WSCHAT_EXTERN int wschat_server_set_max_header_count(wschat_server *s,
                                                     unsigned count);

/* Most simultaneous connections (handshaking, open or closing); one more
 * is answered 503 Service Unavailable and closed. Default 10000;
 * 1..10000000. */
WSCHAT_EXTERN int wschat_server_set_max_connections(wschat_server *s,
                                                    unsigned count);

/* Most simultaneous connections from one client address (IPv4, or IPv6;
 * an IPv4-mapped IPv6 address counts as its IPv4 address). One more is
 * answered 503 Service Unavailable ("too many connections from this
 * address") and closed; the count drops when a connection's socket
 * closes. Default 0, no per-address limit: behind a reverse proxy every
 * client has the proxy's address, so a default limit would cap the whole
 * server. Set it when clients connect directly. 0..10000000. */
WSCHAT_EXTERN int wschat_server_set_max_per_ip(wschat_server *s,
                                               unsigned count);

/* Bytes of output a session may have left unsent at the end of a loop
 * turn, after the socket took what it could; more closes the session with
 * WSCHAT_CLOSE_ON_SLOW_CONSUMER (1008), dropping the unsent rest. Keep it
 * well above the largest message sessions are sent, or one large message
 * to a healthy reader can pass it. Default 1048576; 1024..2^62. */
WSCHAT_EXTERN int wschat_server_set_max_queued(wschat_server *s,
                                               uint64_t bytes);

/* The max_queued setting in force. */
WSCHAT_EXTERN uint64_t wschat_server_get_max_queued(const wschat_server *s);

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
WSCHAT_EXTERN int wschat_server_set_idle_timeout(wschat_server *s, unsigned ms);

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
WSCHAT_EXTERN int wschat_session_ping(wschat_session *session, const void *data,
                                      size_t len);

/* Session user data (NULL until set). */
WSCHAT_EXTERN void wschat_session_set_userdata(wschat_session *session,
                                               void *userdata);
WSCHAT_EXTERN void *wschat_session_get_userdata(const wschat_session *session);

/* The server the session belongs to. */
WSCHAT_EXTERN wschat_server *
wschat_session_server(const wschat_session *session);

/* A number unique among this server's sessions, counting up from 1. */
WSCHAT_EXTERN uint64_t wschat_session_id(const wschat_session *session);

/* The selected subprotocol, or NULL if none. Valid for the session's
 * life. */
WSCHAT_EXTERN const char *
wschat_session_subprotocol(const wschat_session *session);

/* The request path the session was opened on (without the query). Valid
 * for the session's life. */
WSCHAT_EXTERN const char *wschat_session_path(const wschat_session *session);

/* The peer's address as "ip:port" (IPv6 as "[ip]:port") into buf.
 * Returns the length written, or WSCHAT_EINVAL if buf is too small (48
 * bytes always suffice), or a libuv error. */
WSCHAT_EXTERN int wschat_session_peer(const wschat_session *session, char *buf,
                                      size_t size);

/* Bytes queued for this session and not yet written to the socket. */
WSCHAT_EXTERN uint64_t wschat_session_queued(const wschat_session *session);

/* ------------------------------------------------------------------------
 * Plain HTTP requests: inside a wschat_http_cb (read and answer), or a
 * wschat_origin_cb (read only)
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
 * lines, or NULL), then the body (omitted for HEAD). A 405 gets
 * "Allow: GET" unless extra_headers has an Allow line. The connection is
 * closed after the response is sent. The body is copied.
 *
 * Returns 0, WSCHAT_EINVAL (status outside 100-599, or a second response),
 * or WSCHAT_ENOMEM.
 */
WSCHAT_EXTERN int wschat_http_respond(wschat_http_request *req, int status,
                                      const char *content_type,
                                      const char *extra_headers,
                                      const void *body, size_t len);

/* ------------------------------------------------------------------------
 * Shared frames: encode once, send to many
 * ---------------------------------------------------------------------- */

typedef struct wschat_frame wschat_frame;

/*
 * Encode a message once into a refcounted frame that any number of
 * sessions can send without a copy (wschat_session_send_frame(),
 * wschat_room_broadcast()). The data is copied. *out gets the frame,
 * with one reference the caller must release.
 *
 * Returns 0, WSCHAT_EINVAL (bad type, NULL out), WSCHAT_EBADUTF8 (text
 * that is not UTF-8), or WSCHAT_ENOMEM.
 */
WSCHAT_EXTERN int wschat_frame_new(wschat_msg_type type, const void *data,
                                   size_t len, wschat_frame **out);

/* Drop the caller's reference; the memory goes when the last queued copy
 * has been written. NULL is ignored. */
WSCHAT_EXTERN void wschat_frame_release(wschat_frame *frame);

/* Queue the frame on one session (a reference, not a copy). Returns 0 or
 * WSCHAT_ECLOSED, WSCHAT_ENOMEM. */
WSCHAT_EXTERN int wschat_session_send_frame(wschat_session *session,
                                            wschat_frame *frame);

/* ------------------------------------------------------------------------
 * Names
 * ---------------------------------------------------------------------- */

/* The session's name: "user<N>" from on_open on (N counts up from 1 per
 * server, skipping names taken by renames), or what
 * wschat_session_set_name() gave it. "" before on_open. */
WSCHAT_EXTERN const char *wschat_session_name(const wschat_session *session);

/*
 * Rename a session. A name is 1-32 bytes of [A-Za-z0-9_.-], unique among
 * the server's open sessions compared case-insensitively (a session may
 * change the case of its own name).
 *
 * Returns 0, WSCHAT_EINVAL (not a valid name), WSCHAT_ENAMETAKEN, or
 * WSCHAT_ECLOSED.
 */
WSCHAT_EXTERN int wschat_session_set_name(wschat_session *session,
                                          const char *name);

/* The open session with this name (case-insensitive), or NULL. */
WSCHAT_EXTERN wschat_session *wschat_server_find_session(wschat_server *s,
                                                         const char *name);

/* ------------------------------------------------------------------------
 * Rooms
 * ---------------------------------------------------------------------- */

typedef struct wschat_room wschat_room;

/*
 * Find the room with this name (1-64 bytes of [A-Za-z0-9_.-], compared
 * exactly), creating it if it does not exist. Rooms live until the server
 * is freed, with their history, except that an empty room may be removed
 * to make space when max_rooms is reached.
 *
 * Returns 0 with *out set, WSCHAT_EINVAL (invalid name), WSCHAT_ETOOMANY
 * (max_rooms reached and no room is empty), or WSCHAT_ENOMEM.
 */
WSCHAT_EXTERN int wschat_room_open(wschat_server *s, const char *name,
                                   wschat_room **out);

/* The room with this name, or NULL. Does not create it. */
WSCHAT_EXTERN wschat_room *wschat_room_find(wschat_server *s, const char *name);

/* Most rooms a server keeps. Default 10000; 1..1000000. */
WSCHAT_EXTERN int wschat_server_set_max_rooms(wschat_server *s, unsigned count);

/* Messages each room's history keeps (the oldest go first). Default 1000;
 * 0..1000000. Applies to rooms created after the call. */
WSCHAT_EXTERN int wschat_server_set_history(wschat_server *s, unsigned count);

/* The room's name; valid as long as the room. */
WSCHAT_EXTERN const char *wschat_room_name(const wschat_room *room);

/* Members now (sessions that joined and have not left or closed). */
WSCHAT_EXTERN unsigned wschat_room_member_count(const wschat_room *room);

/* Rooms the server keeps now, empty ones included. */
WSCHAT_EXTERN unsigned wschat_server_room_count(const wschat_server *s);

/* Room user data (NULL until set). The library never touches it; a room
 * removed to make space (see wschat_room_open()) is always empty. */
WSCHAT_EXTERN void wschat_room_set_userdata(wschat_room *room, void *ud);
WSCHAT_EXTERN void *wschat_room_get_userdata(const wschat_room *room);

/* Add an open session to the room (a session may be in many rooms).
 * Returns 0, WSCHAT_EEXIST, WSCHAT_ECLOSED, or WSCHAT_ENOMEM. */
WSCHAT_EXTERN int wschat_room_join(wschat_room *room, wschat_session *session);

/* Remove a session from the room. Sessions leave all their rooms by
 * themselves just after their on_close. Returns 0 or
 * WSCHAT_ENOTMEMBER. */
WSCHAT_EXTERN int wschat_room_leave(wschat_room *room, wschat_session *session);

/* Nonzero if the session is a member of the room (0 for NULL
 * arguments). */
WSCHAT_EXTERN int wschat_room_is_member(const wschat_room *room,
                                        const wschat_session *session);

typedef void (*wschat_member_cb)(wschat_session *session, void *arg);
typedef void (*wschat_room_cb)(wschat_room *room, void *arg);

/* Visit the room's members in the order they joined. The callback may
 * send, close, join and leave (a member that leaves before its turn is
 * skipped; one that joins during the visit is not visited). */
WSCHAT_EXTERN void wschat_room_foreach_member(wschat_room *room,
                                              wschat_member_cb cb, void *arg);

/* Visit every room of the server, in creation order. The callback must
 * not create rooms. */
WSCHAT_EXTERN void wschat_server_foreach_room(wschat_server *s,
                                              wschat_room_cb cb, void *arg);

/* Visit the rooms a session is in, in the order it joined them. */
WSCHAT_EXTERN void wschat_session_foreach_room(wschat_session *session,
                                               wschat_room_cb cb, void *arg);

/*
 * Queue the frame on every member of the room except `except` (may be
 * NULL): one shared buffer, no per-member copy; each member's output
 * leaves in its end-of-turn write. Members whose unsent output then passes
 * max_queued are closed with 1008 at the end of the turn; the others are
 * not slowed. Returns the number of members it was queued for.
 */
WSCHAT_EXTERN int wschat_room_broadcast(wschat_room *room, wschat_frame *frame,
                                        const wschat_session *except);

/* ------------------------------------------------------------------------
 * History
 * ---------------------------------------------------------------------- */

/*
 * Store a copy of a message (any bytes: the application's own format) in
 * the room's history under the next id, dropping the oldest past the
 * history size. Ids count up by one per room from 1, so the id a message
 * will get is wschat_room_last_id() + 1 (useful when the stored text must
 * contain its own id). Returns 0 with *id
 * set (id may be NULL), or WSCHAT_ENOMEM. With a history size of 0 the id
 * is still assigned and nothing is stored.
 */
WSCHAT_EXTERN int wschat_room_history_add(wschat_room *room, const void *data,
                                          size_t len, uint64_t *id);

/* The newest id assigned (0 before the first), and the oldest id still
 * stored (0 when nothing is). */
WSCHAT_EXTERN uint64_t wschat_room_last_id(const wschat_room *room);
WSCHAT_EXTERN uint64_t wschat_room_first_id(const wschat_room *room);

typedef void (*wschat_history_cb)(wschat_room *room, uint64_t id,
                                  const char *data, size_t len, void *arg);

/*
 * Visit the newest `limit` stored messages whose id is greater than
 * `after` and, when `before` is not 0, less than `before`; oldest first.
 * Returns how many were visited, and sets *more (if not NULL) to 1 when
 * older stored messages in that range were left out by the limit.
 */
WSCHAT_EXTERN unsigned wschat_room_history(wschat_room *room, uint64_t after,
                                           uint64_t before, unsigned limit,
                                           wschat_history_cb cb, void *arg,
                                           int *more);

/* ------------------------------------------------------------------------
 * Rate limiting
 * ---------------------------------------------------------------------- */

/* A token bucket per session: `per_second` tokens a second, holding at
 * most `burst`. per_second 0 turns limiting off. Default 20 and 40;
 * per_second 0..1000000, burst 1..1000000. */
WSCHAT_EXTERN int wschat_server_set_rate(wschat_server *s, unsigned per_second,
                                         unsigned burst);

/* The rate limit in force: per_second (0 when off) and burst; either
 * pointer may be NULL. */
WSCHAT_EXTERN void wschat_server_get_rate(const wschat_server *s,
                                          unsigned *per_second,
                                          unsigned *burst);

/* Take one token for an action the application limits. Returns 0, or
 * WSCHAT_ERATELIMITED when the bucket is empty (nothing is taken). */
WSCHAT_EXTERN int wschat_session_rate_take(wschat_session *session);

/* ------------------------------------------------------------------------
 * Statistics
 * ---------------------------------------------------------------------- */

typedef enum {
  WSCHAT_STAT_CONNECTIONS = 0, /* open now (handshaking, open, closing) */
  WSCHAT_STAT_SESSIONS,        /* WebSocket sessions open now */
  WSCHAT_STAT_SESSIONS_TOTAL,  /* sessions opened since start */
  WSCHAT_STAT_ROOMS,           /* rooms now */
  WSCHAT_STAT_MESSAGES_IN,     /* whole messages received */
  WSCHAT_STAT_MESSAGES_OUT,    /* messages queued to sessions */
  WSCHAT_STAT_BYTES_IN,        /* bytes read from sockets */
  WSCHAT_STAT_BYTES_OUT,       /* bytes written to sockets */
  WSCHAT_STAT_SLOW_CLOSES,     /* sessions closed as slow consumers */
  WSCHAT_STAT_HTTP_REJECTS,    /* handshakes answered with an error */
  WSCHAT_STAT_RATE_LIMITED,    /* wschat_session_rate_take() refusals */
  WSCHAT_STAT_COUNT_
} wschat_stat;

/* The current value of a counter; 0 for an unknown one. */
WSCHAT_EXTERN uint64_t wschat_server_stat(const wschat_server *s,
                                          wschat_stat which);

/* How many sessions ended with this close code (as given to on_close):
 * codes 1000-1015 individually; any other code counts under 0. */
WSCHAT_EXTERN uint64_t wschat_server_closes(const wschat_server *s, int code);

/*
 * Write the counters in the Prometheus text exposition format
 * (wschat_connections, wschat_rooms, wschat_messages_in_total, ...,
 * wschat_closes_total{code="1000"}, ...) into buf, NUL-terminated.
 * Returns the length the whole text needs (excluding the NUL), like
 * snprintf: when that is >= size the output was cut.
 */
WSCHAT_EXTERN int wschat_server_metrics(const wschat_server *s, char *buf,
                                        size_t size);

/* ------------------------------------------------------------------------
 * The built-in chat protocol (wschatd's, described in wschat-protocol(7))
 * ---------------------------------------------------------------------- */

/*
 * Make this server speak the chat protocol: the text dialect (no
 * subprotocol) and the JSON dialect (subprotocol "wschat.v1.json"). It
 * is built only on the public API above: it registers on_open, on_message
 * and on_close, the subprotocol list, and uses the server's user data, so
 * the application must not set those afterwards. Call before listening.
 *
 * Returns 0, WSCHAT_EBUSY if the server is listening, or WSCHAT_ENOMEM.
 */
WSCHAT_EXTERN int wschat_chat_enable(wschat_server *s);

/* Largest chat text in bytes (a longer one gets the "too_long" error).
 * Default 4096; 1..1048576. Returns WSCHAT_EINVAL if chat is not
 * enabled. */
WSCHAT_EXTERN int wschat_chat_set_max_text(wschat_server *s, size_t bytes);

/* Presence limit: in a room with more than `members` members, "joined"
 * and "left" go only to the member who joined or left, not to the whole
 * room, and a "members" reply (and the text dialect's /who) lists only
 * the first `members` members in join order (sorted), with "count" (the
 * room's size) and "complete": false. This keeps a room's fill-up and
 * mass disconnect linear instead of quadratic. Default 1000; 0 announces
 * every arrival and departure to every member however large the room.
 * Returns WSCHAT_EINVAL if chat is not enabled. */
WSCHAT_EXTERN int wschat_chat_set_presence_limit(wschat_server *s,
                                                 unsigned members);

/* The "server" string of the welcome message. Default
 * "libwschat/<version>". Copied. Returns 0, WSCHAT_EINVAL (NULL, not
 * UTF-8, or chat not enabled), or WSCHAT_ENOMEM. */
WSCHAT_EXTERN int wschat_chat_set_server_name(wschat_server *s,
                                              const char *name);

#ifdef __cplusplus
}
#endif
#endif /* WSCHAT_H */
