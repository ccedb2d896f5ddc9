//! Raw declarations of `include/wschat.h`, one for one.
//!
//! Everything here is `unsafe` to call and follows the C contract
//! described in the header: handles are opaque, pointers passed into
//! callbacks are borrowed until the callback returns, and every function
//! except those marked "any thread" in the header must be called from
//! the thread that runs the server's loop. The safe wrapper in the crate
//! root is built on these alone.

#![allow(non_camel_case_types)]

use std::os::raw::{c_char, c_int, c_uint, c_void};

pub const WSCHAT_VERSION_MAJOR: c_uint = 0;
pub const WSCHAT_VERSION_MINOR: c_uint = 1;
pub const WSCHAT_VERSION_PATCH: c_uint = 0;
pub const WSCHAT_VERSION_HEX: c_uint =
    (WSCHAT_VERSION_MAJOR << 16) | (WSCHAT_VERSION_MINOR << 8) | WSCHAT_VERSION_PATCH;

// ---------------------------------------------------------------- errors

/// `wschat_errno`: the library's own error codes, in [-30399, -30000].
/// Other negative values returned by the library are libuv's (-errno).
pub type wschat_errno = c_int;
pub const WSCHAT_EPROTO: wschat_errno = -30000;
pub const WSCHAT_EBADUTF8: wschat_errno = -30001;
pub const WSCHAT_EBADCLOSE: wschat_errno = -30002;
pub const WSCHAT_EHANDSHAKE: wschat_errno = -30003;
pub const WSCHAT_EUNMASKED: wschat_errno = -30004;
pub const WSCHAT_EINVAL: wschat_errno = -30100;
pub const WSCHAT_ECLOSED: wschat_errno = -30101;
pub const WSCHAT_EBUSY: wschat_errno = -30102;
pub const WSCHAT_ENOTLISTENING: wschat_errno = -30103;
pub const WSCHAT_ELISTENING: wschat_errno = -30104;
pub const WSCHAT_ENOTMEMBER: wschat_errno = -30105;
pub const WSCHAT_EEXIST: wschat_errno = -30106;
pub const WSCHAT_ENAMETAKEN: wschat_errno = -30107;
pub const WSCHAT_ETOOBIG: wschat_errno = -30200;
pub const WSCHAT_EQUEUEFULL: wschat_errno = -30201;
pub const WSCHAT_ETOOMANY: wschat_errno = -30202;
pub const WSCHAT_EHEADERS: wschat_errno = -30203;
pub const WSCHAT_ERATELIMITED: wschat_errno = -30204;
pub const WSCHAT_ENOMEM: wschat_errno = -30300;
pub const WSCHAT_ERRNO_MIN_: wschat_errno = -30399;

// ------------------------------------------------------- handles, enums

/// libuv's `uv_loop_t`, opaque here as in the header.
#[repr(C)]
pub struct uv_loop_s {
    _opaque: [u8; 0],
}

#[repr(C)]
pub struct wschat_server {
    _opaque: [u8; 0],
}

#[repr(C)]
pub struct wschat_session {
    _opaque: [u8; 0],
}

#[repr(C)]
pub struct wschat_http_request {
    _opaque: [u8; 0],
}

#[repr(C)]
pub struct wschat_frame {
    _opaque: [u8; 0],
}

#[repr(C)]
pub struct wschat_room {
    _opaque: [u8; 0],
}

pub type wschat_msg_type = c_int;
pub const WSCHAT_TEXT: wschat_msg_type = 1;
pub const WSCHAT_BINARY: wschat_msg_type = 2;

pub const WSCHAT_CLOSE_NORMAL: c_int = 1000;
pub const WSCHAT_CLOSE_GOING_AWAY: c_int = 1001;
pub const WSCHAT_CLOSE_PROTOCOL_ERROR: c_int = 1002;
pub const WSCHAT_CLOSE_UNSUPPORTED: c_int = 1003;
pub const WSCHAT_CLOSE_NO_STATUS: c_int = 1005;
pub const WSCHAT_CLOSE_ABNORMAL: c_int = 1006;
pub const WSCHAT_CLOSE_INVALID_DATA: c_int = 1007;
pub const WSCHAT_CLOSE_POLICY: c_int = 1008;
pub const WSCHAT_CLOSE_TOO_BIG: c_int = 1009;
pub const WSCHAT_CLOSE_INTERNAL: c_int = 1011;

pub type wschat_close_reason = c_int;
pub const WSCHAT_CLOSE_ON_PROTOCOL_ERROR: wschat_close_reason = 0;
pub const WSCHAT_CLOSE_ON_BAD_UTF8: wschat_close_reason = 1;
pub const WSCHAT_CLOSE_ON_TOO_BIG: wschat_close_reason = 2;
pub const WSCHAT_CLOSE_ON_SLOW_CONSUMER: wschat_close_reason = 3;
pub const WSCHAT_CLOSE_ON_IDLE: wschat_close_reason = 4;
pub const WSCHAT_CLOSE_ON_SHUTDOWN: wschat_close_reason = 5;
pub const WSCHAT_CLOSE_ON_INTERNAL: wschat_close_reason = 6;
pub const WSCHAT_CLOSE_ON_COUNT_: wschat_close_reason = 7;

pub type wschat_stat = c_int;
pub const WSCHAT_STAT_CONNECTIONS: wschat_stat = 0;
pub const WSCHAT_STAT_SESSIONS: wschat_stat = 1;
pub const WSCHAT_STAT_SESSIONS_TOTAL: wschat_stat = 2;
pub const WSCHAT_STAT_ROOMS: wschat_stat = 3;
pub const WSCHAT_STAT_MESSAGES_IN: wschat_stat = 4;
pub const WSCHAT_STAT_MESSAGES_OUT: wschat_stat = 5;
pub const WSCHAT_STAT_BYTES_IN: wschat_stat = 6;
pub const WSCHAT_STAT_BYTES_OUT: wschat_stat = 7;
pub const WSCHAT_STAT_SLOW_CLOSES: wschat_stat = 8;
pub const WSCHAT_STAT_HTTP_REJECTS: wschat_stat = 9;
pub const WSCHAT_STAT_RATE_LIMITED: wschat_stat = 10;
pub const WSCHAT_STAT_COUNT_: wschat_stat = 11;

// ------------------------------------------------------------ callbacks

pub type wschat_malloc_func = Option<unsafe extern "C" fn(size: usize) -> *mut c_void>;
pub type wschat_realloc_func =
    Option<unsafe extern "C" fn(ptr: *mut c_void, size: usize) -> *mut c_void>;
pub type wschat_free_func = Option<unsafe extern "C" fn(ptr: *mut c_void)>;

pub type wschat_open_cb =
    Option<unsafe extern "C" fn(session: *mut wschat_session, userdata: *mut c_void)>;
pub type wschat_message_cb = Option<
    unsafe extern "C" fn(
        session: *mut wschat_session,
        msg_type: wschat_msg_type,
        data: *const c_char,
        len: usize,
        userdata: *mut c_void,
    ),
>;
pub type wschat_close_cb = Option<
    unsafe extern "C" fn(
        session: *mut wschat_session,
        code: c_int,
        reason: *const c_char,
        reason_len: usize,
        userdata: *mut c_void,
    ),
>;
pub type wschat_pong_cb = Option<
    unsafe extern "C" fn(
        session: *mut wschat_session,
        data: *const c_char,
        len: usize,
        userdata: *mut c_void,
    ),
>;
pub type wschat_origin_cb = Option<
    unsafe extern "C" fn(
        server: *mut wschat_server,
        request: *const wschat_http_request,
        origin: *const c_char,
        userdata: *mut c_void,
    ) -> c_int,
>;
pub type wschat_http_cb = Option<
    unsafe extern "C" fn(
        server: *mut wschat_server,
        request: *mut wschat_http_request,
        userdata: *mut c_void,
    ),
>;
pub type wschat_accept_error_cb =
    Option<unsafe extern "C" fn(server: *mut wschat_server, err: c_int, userdata: *mut c_void)>;
pub type wschat_member_cb =
    Option<unsafe extern "C" fn(session: *mut wschat_session, arg: *mut c_void)>;
pub type wschat_room_cb = Option<unsafe extern "C" fn(room: *mut wschat_room, arg: *mut c_void)>;
pub type wschat_history_cb = Option<
    unsafe extern "C" fn(
        room: *mut wschat_room,
        id: u64,
        data: *const c_char,
        len: usize,
        arg: *mut c_void,
    ),
>;

extern "C" {
    // Errors, version, global state.
    pub fn wschat_strerror(err: c_int) -> *const c_char;
    pub fn wschat_err_name(err: c_int) -> *const c_char;
    pub fn wschat_version() -> c_uint;
    pub fn wschat_version_string() -> *const c_char;
    pub fn wschat_replace_allocator(
        malloc_fn: wschat_malloc_func,
        realloc_fn: wschat_realloc_func,
        free_fn: wschat_free_func,
    ) -> c_int;
    pub fn wschat_live_bytes() -> usize;
    pub fn wschat_library_shutdown() -> c_int;

    // Server.
    pub fn wschat_server_new(loop_: *mut uv_loop_s) -> *mut wschat_server;
    pub fn wschat_server_free(server: *mut wschat_server) -> c_int;
    pub fn wschat_server_set_userdata(server: *mut wschat_server, userdata: *mut c_void);
    pub fn wschat_server_get_userdata(server: *const wschat_server) -> *mut c_void;
    pub fn wschat_server_on_open(s: *mut wschat_server, cb: wschat_open_cb);
    pub fn wschat_server_on_message(s: *mut wschat_server, cb: wschat_message_cb);
    pub fn wschat_server_on_close(s: *mut wschat_server, cb: wschat_close_cb);
    pub fn wschat_server_on_pong(s: *mut wschat_server, cb: wschat_pong_cb);
    pub fn wschat_server_on_origin(s: *mut wschat_server, cb: wschat_origin_cb);
    pub fn wschat_server_on_http(s: *mut wschat_server, cb: wschat_http_cb);
    pub fn wschat_server_on_accept_error(s: *mut wschat_server, cb: wschat_accept_error_cb);
    pub fn wschat_server_set_max_message(s: *mut wschat_server, bytes: u64) -> c_int;
    pub fn wschat_server_set_max_header(s: *mut wschat_server, bytes: usize) -> c_int;
    pub fn wschat_server_set_max_header_count(s: *mut wschat_server, count: c_uint) -> c_int;
    pub fn wschat_server_set_max_connections(s: *mut wschat_server, count: c_uint) -> c_int;
    pub fn wschat_server_set_max_per_ip(s: *mut wschat_server, count: c_uint) -> c_int;
    pub fn wschat_server_set_max_queued(s: *mut wschat_server, bytes: u64) -> c_int;
    pub fn wschat_server_get_max_queued(s: *const wschat_server) -> u64;
    pub fn wschat_server_set_handshake_timeout(s: *mut wschat_server, ms: c_uint) -> c_int;
    pub fn wschat_server_set_close_timeout(s: *mut wschat_server, ms: c_uint) -> c_int;
    pub fn wschat_server_set_idle_timeout(s: *mut wschat_server, ms: c_uint) -> c_int;
    pub fn wschat_server_set_ping_interval(s: *mut wschat_server, ms: c_uint) -> c_int;
    pub fn wschat_server_set_path(s: *mut wschat_server, path: *const c_char) -> c_int;
    pub fn wschat_server_set_subprotocols(
        s: *mut wschat_server,
        names: *const *const c_char,
        count: usize,
    ) -> c_int;
    pub fn wschat_server_set_close_code(
        s: *mut wschat_server,
        reason: wschat_close_reason,
        code: c_int,
    ) -> c_int;
    pub fn wschat_server_listen(s: *mut wschat_server, host: *const c_char, port: c_int) -> c_int;
    pub fn wschat_server_port(s: *const wschat_server) -> c_int;
    pub fn wschat_server_loop(s: *mut wschat_server) -> *mut uv_loop_s;
    pub fn wschat_server_run(s: *mut wschat_server) -> c_int;
    pub fn wschat_server_stop(s: *mut wschat_server) -> c_int;
    pub fn wschat_server_is_stopped(s: *const wschat_server) -> c_int;
    pub fn wschat_server_connection_count(s: *const wschat_server) -> c_uint;

    // Sessions.
    pub fn wschat_session_send_text(
        session: *mut wschat_session,
        data: *const c_char,
        len: usize,
    ) -> c_int;
    pub fn wschat_session_send_binary(
        session: *mut wschat_session,
        data: *const c_void,
        len: usize,
    ) -> c_int;
    pub fn wschat_session_close(
        session: *mut wschat_session,
        code: c_int,
        reason: *const c_char,
    ) -> c_int;
    pub fn wschat_session_ping(
        session: *mut wschat_session,
        data: *const c_void,
        len: usize,
    ) -> c_int;
    pub fn wschat_session_set_userdata(session: *mut wschat_session, userdata: *mut c_void);
    pub fn wschat_session_get_userdata(session: *const wschat_session) -> *mut c_void;
    pub fn wschat_session_server(session: *const wschat_session) -> *mut wschat_server;
    pub fn wschat_session_id(session: *const wschat_session) -> u64;
    pub fn wschat_session_subprotocol(session: *const wschat_session) -> *const c_char;
    pub fn wschat_session_path(session: *const wschat_session) -> *const c_char;
    pub fn wschat_session_peer(
        session: *const wschat_session,
        buf: *mut c_char,
        size: usize,
    ) -> c_int;
    pub fn wschat_session_queued(session: *const wschat_session) -> u64;

    // Plain HTTP requests.
    pub fn wschat_http_method(req: *const wschat_http_request) -> *const c_char;
    pub fn wschat_http_path(req: *const wschat_http_request) -> *const c_char;
    pub fn wschat_http_query(req: *const wschat_http_request) -> *const c_char;
    pub fn wschat_http_header(
        req: *const wschat_http_request,
        name: *const c_char,
    ) -> *const c_char;
    pub fn wschat_http_respond(
        req: *mut wschat_http_request,
        status: c_int,
        content_type: *const c_char,
        extra_headers: *const c_char,
        body: *const c_void,
        len: usize,
    ) -> c_int;

    // Shared frames.
    pub fn wschat_frame_new(
        msg_type: wschat_msg_type,
        data: *const c_void,
        len: usize,
        out: *mut *mut wschat_frame,
    ) -> c_int;
    pub fn wschat_frame_release(frame: *mut wschat_frame);
    pub fn wschat_session_send_frame(
        session: *mut wschat_session,
        frame: *mut wschat_frame,
    ) -> c_int;

    // Names.
    pub fn wschat_session_name(session: *const wschat_session) -> *const c_char;
    pub fn wschat_session_set_name(session: *mut wschat_session, name: *const c_char) -> c_int;
    pub fn wschat_server_find_session(
        s: *mut wschat_server,
        name: *const c_char,
    ) -> *mut wschat_session;

    // Rooms.
    pub fn wschat_room_open(
        s: *mut wschat_server,
        name: *const c_char,
        out: *mut *mut wschat_room,
    ) -> c_int;
    pub fn wschat_room_find(s: *mut wschat_server, name: *const c_char) -> *mut wschat_room;
    pub fn wschat_server_set_max_rooms(s: *mut wschat_server, count: c_uint) -> c_int;
    pub fn wschat_server_set_history(s: *mut wschat_server, count: c_uint) -> c_int;
    pub fn wschat_room_name(room: *const wschat_room) -> *const c_char;
    pub fn wschat_room_member_count(room: *const wschat_room) -> c_uint;
    pub fn wschat_server_room_count(s: *const wschat_server) -> c_uint;
    pub fn wschat_room_set_userdata(room: *mut wschat_room, ud: *mut c_void);
    pub fn wschat_room_get_userdata(room: *const wschat_room) -> *mut c_void;
    pub fn wschat_room_join(room: *mut wschat_room, session: *mut wschat_session) -> c_int;
    pub fn wschat_room_leave(room: *mut wschat_room, session: *mut wschat_session) -> c_int;
    pub fn wschat_room_is_member(room: *const wschat_room, session: *const wschat_session)
        -> c_int;
    pub fn wschat_room_foreach_member(
        room: *mut wschat_room,
        cb: wschat_member_cb,
        arg: *mut c_void,
    );
    pub fn wschat_server_foreach_room(s: *mut wschat_server, cb: wschat_room_cb, arg: *mut c_void);
    pub fn wschat_session_foreach_room(
        session: *mut wschat_session,
        cb: wschat_room_cb,
        arg: *mut c_void,
    );
    pub fn wschat_room_broadcast(
        room: *mut wschat_room,
        frame: *mut wschat_frame,
        except: *const wschat_session,
    ) -> c_int;

    // History.
    pub fn wschat_room_history_add(
        room: *mut wschat_room,
        data: *const c_void,
        len: usize,
        id: *mut u64,
    ) -> c_int;
    pub fn wschat_room_last_id(room: *const wschat_room) -> u64;
    pub fn wschat_room_first_id(room: *const wschat_room) -> u64;
    pub fn wschat_room_history(
        room: *mut wschat_room,
        after: u64,
        before: u64,
        limit: c_uint,
        cb: wschat_history_cb,
        arg: *mut c_void,
        more: *mut c_int,
    ) -> c_uint;

    // Rate limiting.
    pub fn wschat_server_set_rate(
        s: *mut wschat_server,
        per_second: c_uint,
        burst: c_uint,
    ) -> c_int;
    pub fn wschat_server_get_rate(
        s: *const wschat_server,
        per_second: *mut c_uint,
        burst: *mut c_uint,
    );
    pub fn wschat_session_rate_take(session: *mut wschat_session) -> c_int;

    // Statistics.
    pub fn wschat_server_stat(s: *const wschat_server, which: wschat_stat) -> u64;
    pub fn wschat_server_closes(s: *const wschat_server, code: c_int) -> u64;
    pub fn wschat_server_metrics(s: *const wschat_server, buf: *mut c_char, size: usize) -> c_int;

    // The built-in chat protocol.
    pub fn wschat_chat_enable(s: *mut wschat_server) -> c_int;
    pub fn wschat_chat_set_max_text(s: *mut wschat_server, bytes: usize) -> c_int;
    pub fn wschat_chat_set_presence_limit(s: *mut wschat_server, members: c_uint) -> c_int;
    pub fn wschat_chat_set_server_name(s: *mut wschat_server, name: *const c_char) -> c_int;
}
