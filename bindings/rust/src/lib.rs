//! Rust bindings for libwschat, a WebSocket (RFC 6455) and chat-room
//! server library.
//!
//! [`sys`] has the raw declarations of `include/wschat.h`; the rest of
//! this crate is a safe wrapper over them:
//!
//! * [`Server`] owns a `wschat_server` (freed on drop) and its callbacks,
//!   which are closures. It runs its own loop with [`Server::run`].
//! * [`Session`], [`ServerRef`], [`HttpRequest`] and [`RequestHead`] are
//!   borrowed views of library objects. Callbacks receive them by
//!   reference, so they cannot outlive the callback, which is exactly as
//!   long as the library keeps them valid.
//! * [`Room`] names a room of a server; [`Frame`] is a message encoded
//!   once for many sessions (released on drop).
//! * Every fallible call returns [`Result`], whose [`Error`] carries the
//!   library's error code with its symbolic name and message.
//!
//! # Threads
//!
//! A server belongs to the thread that runs its loop, and every library
//! function must be called from that thread, except the few the header
//! marks "any thread". So [`Server`] is neither `Send` nor `Sync`: build it
//! on the thread that will run it. The one operation other threads need,
//! stopping it, goes through a [`StopHandle`], which is `Send`, `Sync` and
//! `Clone`, and stays safe to use after the server is gone.
//!
//! # Panics in callbacks
//!
//! A panic never crosses into C. Each callback runs under
//! `catch_unwind`: a panicking callback has its event dropped (an
//! `on_origin` that panics rejects the handshake), a line goes to stderr,
//! [`Server::callback_panics`] counts it, and the server goes on.
//!
//! ```no_run
//! use wschat::{Message, Server};
//!
//! fn main() -> Result<(), wschat::Error> {
//!     let mut server = Server::new()?;
//!     server.on_message(|session, message| {
//!         let _ = session.send(message);
//!     })?;
//!     server.listen("127.0.0.1", 8080)?;
//!     server.run()
//! }
//! ```

pub mod sys;

use std::any::Any;
use std::cell::{Cell, RefCell, UnsafeCell};
use std::ffi::{CStr, CString};
use std::fmt;
use std::io::Write;
use std::marker::{PhantomData, PhantomPinned};
use std::ops::Deref;
use std::os::raw::{c_char, c_int, c_uint, c_void};
use std::panic::{self, AssertUnwindSafe};
use std::ptr::{self, NonNull};
use std::rc::Rc;
use std::slice;
use std::sync::{Arc, Mutex};

// ----------------------------------------------------------------- errors

/// A libwschat error: one of the library's `WSCHAT_E*` codes, or a libuv
/// error (`-errno`) passed through. Arguments the wrapper rejects before
/// calling the library (a string with a NUL byte) are reported as
/// `WSCHAT_EINVAL`.
///
/// ```
/// let mut server = wschat::Server::new()?;
/// let err = server.set_max_header(10).unwrap_err(); // 256..32768
/// assert_eq!(err.code(), wschat::sys::WSCHAT_EINVAL);
/// assert_eq!(err.name(), "WSCHAT_EINVAL");
/// assert_eq!(err.message(), "invalid argument");
/// assert_eq!(err.to_string(), "invalid argument (WSCHAT_EINVAL)");
/// # Ok::<(), wschat::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Error {
    code: i32,
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// The error with this code (a negative library or libuv value).
    pub fn from_code(code: i32) -> Error {
        Error { code }
    }

    /// The numeric code, e.g. `sys::WSCHAT_EINVAL` (-30100).
    pub fn code(&self) -> i32 {
        self.code
    }

    /// The symbolic name from `wschat_err_name()`, e.g. `"WSCHAT_EINVAL"`
    /// or `"EADDRINUSE"`.
    pub fn name(&self) -> &'static str {
        unsafe { static_str(sys::wschat_err_name(self.code)) }
    }

    /// The message from `wschat_strerror()`, e.g. `"invalid argument"`.
    pub fn message(&self) -> &'static str {
        unsafe { static_str(sys::wschat_strerror(self.code)) }
    }

    fn invalid() -> Error {
        Error::from_code(sys::WSCHAT_EINVAL)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Error({}, {}: {})",
            self.code,
            self.name(),
            self.message()
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message(), self.name())
    }
}

impl std::error::Error for Error {}

/// Turn a C return value into a Result: negative values are errors.
fn check(rc: c_int) -> Result<c_int> {
    if rc < 0 {
        Err(Error::from_code(rc))
    } else {
        Ok(rc)
    }
}

fn c_string(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::invalid())
}

/// A static C string of the library (error names, version), as &str.
unsafe fn static_str(p: *const c_char) -> &'static str {
    borrowed_str(p).unwrap_or("")
}

/// A C string the library keeps alive for at least 'a; None for NULL.
unsafe fn borrowed_str<'a>(p: *const c_char) -> Option<&'a str> {
    if p.is_null() {
        None
    } else {
        Some(CStr::from_ptr(p).to_str().unwrap_or(""))
    }
}

unsafe fn bytes<'a>(data: *const c_char, len: usize) -> &'a [u8] {
    if len == 0 || data.is_null() {
        &[]
    } else {
        slice::from_raw_parts(data as *const u8, len)
    }
}

// --------------------------------------------------------- global state

/// `WSCHAT_VERSION_HEX` of the library actually loaded.
pub fn version() -> u32 {
    unsafe { sys::wschat_version() }
}

/// The loaded library's version, e.g. `"0.1.0"`.
pub fn version_string() -> &'static str {
    unsafe { static_str(sys::wschat_version_string()) }
}

/// Bytes the library currently has allocated, all servers together.
pub fn live_bytes() -> usize {
    unsafe { sys::wschat_live_bytes() }
}

/// Release the library's process-wide state (its allocator choice) once
/// every server is dropped; `WSCHAT_EBUSY` while library memory is still
/// allocated, which a program can report as a leak.
pub fn library_shutdown() -> Result<()> {
    check(unsafe { sys::wschat_library_shutdown() }).map(|_| ())
}

// ------------------------------------------------------- message types

/// A whole WebSocket message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message<'a> {
    /// A text message (always valid UTF-8).
    Text(&'a str),
    /// A binary message.
    Binary(&'a [u8]),
}

impl<'a> Message<'a> {
    /// The payload, whatever the type.
    pub fn as_bytes(&self) -> &'a [u8] {
        match *self {
            Message::Text(t) => t.as_bytes(),
            Message::Binary(b) => b,
        }
    }
}

/// How a session ended, as given to `on_close`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Close<'a> {
    /// The close code: the peer's (1005 when its close frame had none),
    /// the one this side sent, or 1006 when the connection was lost.
    pub code: u16,
    /// The reason that went with the code (possibly empty).
    pub reason: &'a str,
}

/// The situations in which the library closes a session by itself; see
/// [`Server::set_close_code`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// Malformed frame or sequence (default 1002).
    ProtocolError,
    /// Invalid UTF-8 in a text message (default 1007).
    BadUtf8,
    /// Message over max_message (default 1009).
    TooBig,
    /// Output queue over max_queued (default 1008).
    SlowConsumer,
    /// Idle timeout expired (default 1001).
    Idle,
    /// Server stopping (default 1001).
    Shutdown,
    /// Out of memory and the like (default 1011).
    Internal,
}

impl CloseReason {
    fn raw(self) -> sys::wschat_close_reason {
        match self {
            CloseReason::ProtocolError => sys::WSCHAT_CLOSE_ON_PROTOCOL_ERROR,
            CloseReason::BadUtf8 => sys::WSCHAT_CLOSE_ON_BAD_UTF8,
            CloseReason::TooBig => sys::WSCHAT_CLOSE_ON_TOO_BIG,
            CloseReason::SlowConsumer => sys::WSCHAT_CLOSE_ON_SLOW_CONSUMER,
            CloseReason::Idle => sys::WSCHAT_CLOSE_ON_IDLE,
            CloseReason::Shutdown => sys::WSCHAT_CLOSE_ON_SHUTDOWN,
            CloseReason::Internal => sys::WSCHAT_CLOSE_ON_INTERNAL,
        }
    }
}

/// The server's counters; see [`ServerRef::stat`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stat {
    /// Connections open now (handshaking, open, closing).
    Connections,
    /// WebSocket sessions open now.
    Sessions,
    /// Sessions opened since start.
    SessionsTotal,
    /// Rooms now.
    Rooms,
    /// Whole messages received.
    MessagesIn,
    /// Messages queued to sessions.
    MessagesOut,
    /// Bytes read from sockets.
    BytesIn,
    /// Bytes written to sockets.
    BytesOut,
    /// Sessions closed as slow consumers.
    SlowCloses,
    /// Handshakes answered with an error.
    HttpRejects,
    /// Refusals of [`Session::rate_take`].
    RateLimited,
}

impl Stat {
    fn raw(self) -> sys::wschat_stat {
        match self {
            Stat::Connections => sys::WSCHAT_STAT_CONNECTIONS,
            Stat::Sessions => sys::WSCHAT_STAT_SESSIONS,
            Stat::SessionsTotal => sys::WSCHAT_STAT_SESSIONS_TOTAL,
            Stat::Rooms => sys::WSCHAT_STAT_ROOMS,
            Stat::MessagesIn => sys::WSCHAT_STAT_MESSAGES_IN,
            Stat::MessagesOut => sys::WSCHAT_STAT_MESSAGES_OUT,
            Stat::BytesIn => sys::WSCHAT_STAT_BYTES_IN,
            Stat::BytesOut => sys::WSCHAT_STAT_BYTES_OUT,
            Stat::SlowCloses => sys::WSCHAT_STAT_SLOW_CLOSES,
            Stat::HttpRejects => sys::WSCHAT_STAT_HTTP_REJECTS,
            Stat::RateLimited => sys::WSCHAT_STAT_RATE_LIMITED,
        }
    }
}

// ---------------------------------------------------- callback dispatch

type OpenFn = dyn FnMut(&Session);
type MessageFn = dyn FnMut(&Session, Message<'_>);
type CloseFn = dyn FnMut(&Session, Close<'_>);
type PongFn = dyn FnMut(&Session, &[u8]);
type OriginFn = dyn FnMut(&RequestHead, Option<&str>) -> bool;
type HttpFn = dyn FnMut(&HttpRequest);

/// The closures of one server. Each sits in a RefCell so that an event
/// that arrives while the same closure is running (the library calling
/// back into it from inside a call it made) is detected and dropped
/// instead of aliasing the closure.
#[derive(Default)]
struct Callbacks {
    open: RefCell<Option<Box<OpenFn>>>,
    message: RefCell<Option<Box<MessageFn>>>,
    close: RefCell<Option<Box<CloseFn>>>,
    pong: RefCell<Option<Box<PongFn>>>,
    origin: RefCell<Option<Box<OriginFn>>>,
    http: RefCell<Option<Box<HttpFn>>>,
    panics: Cell<u64>,
}

// The callbacks are found through the server pointer, not the server's
// user data: the built-in chat protocol takes the user data for itself,
// and the origin, HTTP and pong callbacks must keep working beside it.
// Servers are not Send, so every callback of a server runs on the thread
// that created it, where its entry is.
thread_local! {
    static REGISTRY: RefCell<Vec<(usize, Rc<Callbacks>)>> = const { RefCell::new(Vec::new()) };
}

fn lookup(server: *const sys::wschat_server) -> Option<Rc<Callbacks>> {
    REGISTRY
        .try_with(|r| {
            r.borrow()
                .iter()
                .find(|e| e.0 == server as usize)
                .map(|e| e.1.clone())
        })
        .ok()
        .flatten()
}

fn log(args: fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr(), "wschat: {}", args);
}

/// Run the closure in `slot`, if any, with `call`; `default` is the
/// result when there is none, when it is already running, or when it
/// panics.
fn dispatch<F: ?Sized, R>(
    cbs: &Callbacks,
    slot: &RefCell<Option<Box<F>>>,
    what: &str,
    default: R,
    call: impl FnOnce(&mut F) -> R,
) -> R {
    let mut guard = match slot.try_borrow_mut() {
        Ok(g) => g,
        Err(_) => {
            log(format_args!("{} re-entered; event dropped", what));
            return default;
        }
    };
    let f = match guard.as_mut() {
        Some(f) => f,
        None => return default,
    };
    match panic::catch_unwind(AssertUnwindSafe(|| call(&mut **f))) {
        Ok(r) => r,
        Err(_) => {
            cbs.panics.set(cbs.panics.get() + 1);
            log(format_args!(
                "the {} callback panicked; event dropped, server goes on",
                what
            ));
            default
        }
    }
}

/// The outermost frame of every trampoline: nothing unwinds into C.
fn shield<R>(default: R, body: impl FnOnce() -> R) -> R {
    panic::catch_unwind(AssertUnwindSafe(body)).unwrap_or(default)
}

unsafe extern "C" fn open_tramp(s: *mut sys::wschat_session, _ud: *mut c_void) {
    shield((), || {
        if let Some(cbs) = lookup(sys::wschat_session_server(s)) {
            let session = Session::from_ptr(s);
            dispatch(&cbs, &cbs.open, "on_open", (), |f| f(session));
        }
    })
}

unsafe extern "C" fn message_tramp(
    s: *mut sys::wschat_session,
    msg_type: sys::wschat_msg_type,
    data: *const c_char,
    len: usize,
    _ud: *mut c_void,
) {
    shield((), || {
        if let Some(cbs) = lookup(sys::wschat_session_server(s)) {
            let session = Session::from_ptr(s);
            let payload = bytes(data, len);
            let message = match (msg_type, std::str::from_utf8(payload)) {
                (sys::WSCHAT_TEXT, Ok(text)) => Message::Text(text),
                _ => Message::Binary(payload),
            };
            dispatch(&cbs, &cbs.message, "on_message", (), |f| {
                f(session, message)
            });
        }
    })
}

unsafe extern "C" fn close_tramp(
    s: *mut sys::wschat_session,
    code: c_int,
    reason: *const c_char,
    reason_len: usize,
    _ud: *mut c_void,
) {
    shield((), || {
        if let Some(cbs) = lookup(sys::wschat_session_server(s)) {
            let session = Session::from_ptr(s);
            let close = Close {
                code: u16::try_from(code).unwrap_or(0),
                reason: std::str::from_utf8(bytes(reason, reason_len)).unwrap_or(""),
            };
            dispatch(&cbs, &cbs.close, "on_close", (), |f| f(session, close));
        }
    })
}

unsafe extern "C" fn pong_tramp(
    s: *mut sys::wschat_session,
    data: *const c_char,
    len: usize,
    _ud: *mut c_void,
) {
    shield((), || {
        if let Some(cbs) = lookup(sys::wschat_session_server(s)) {
            let session = Session::from_ptr(s);
            let payload = bytes(data, len);
            dispatch(&cbs, &cbs.pong, "on_pong", (), |f| f(session, payload));
        }
    })
}

unsafe extern "C" fn origin_tramp(
    server: *mut sys::wschat_server,
    request: *const sys::wschat_http_request,
    origin: *const c_char,
    _ud: *mut c_void,
) -> c_int {
    shield(0, || match lookup(server) {
        Some(cbs) => {
            let head = RequestHead::from_ptr(request);
            let origin = borrowed_str(origin);
            let ok = dispatch(&cbs, &cbs.origin, "on_origin", false, |f| f(head, origin));
            c_int::from(ok)
        }
        None => 0,
    })
}

unsafe extern "C" fn http_tramp(
    server: *mut sys::wschat_server,
    request: *mut sys::wschat_http_request,
    _ud: *mut c_void,
) {
    shield((), || {
        if let Some(cbs) = lookup(server) {
            let request = HttpRequest::from_ptr(request);
            dispatch(&cbs, &cbs.http, "on_http", (), |f| f(request));
        }
    })
}

/// State of a visit (foreach, history) that calls a Rust closure from C:
/// the first panic stops the visit and is resumed once C has returned.
struct Visit<'f, F: ?Sized> {
    f: &'f mut F,
    panic: Option<Box<dyn Any + Send>>,
}

impl<'f, F: ?Sized> Visit<'f, F> {
    fn new(f: &'f mut F) -> Self {
        Visit { f, panic: None }
    }

    fn call(&mut self, body: impl FnOnce(&mut F)) {
        if self.panic.is_none() {
            let f = &mut *self.f;
            if let Err(p) = panic::catch_unwind(AssertUnwindSafe(|| body(f))) {
                self.panic = Some(p);
            }
        }
    }

    fn finish(self) {
        if let Some(p) = self.panic {
            panic::resume_unwind(p);
        }
    }
}

unsafe extern "C" fn member_tramp<F: FnMut(&Session)>(
    s: *mut sys::wschat_session,
    arg: *mut c_void,
) {
    let visit = &mut *(arg as *mut Visit<'_, F>);
    visit.call(|f| f(Session::from_ptr(s)));
}

unsafe extern "C" fn room_name_tramp(room: *mut sys::wschat_room, arg: *mut c_void) {
    let names = &mut *(arg as *mut Vec<CString>);
    names.push(CStr::from_ptr(sys::wschat_room_name(room)).to_owned());
}

unsafe extern "C" fn history_tramp<F: FnMut(u64, &[u8])>(
    _room: *mut sys::wschat_room,
    id: u64,
    data: *const c_char,
    len: usize,
    arg: *mut c_void,
) {
    let visit = &mut *(arg as *mut Visit<'_, F>);
    visit.call(|f| f(id, bytes(data, len)));
}

// ------------------------------------------------------------- server

/// The server pointer as the stop handles see it: 0 once the server has
/// been freed. Freeing takes the lock, so a stop never races a free.
struct StopShared {
    server: Mutex<usize>,
}

/// Stops a [`Server`] from any thread (`wschat_server_stop()`, the one
/// server function the library allows off the loop thread). Cloning is
/// cheap; a handle outliving its server is harmless.
#[derive(Clone)]
pub struct StopHandle {
    shared: Arc<StopShared>,
}

impl StopHandle {
    /// Ask the server to stop: it stops accepting, closes every session
    /// with 1001, and its [`Server::run`] returns once they are gone.
    /// Returns `WSCHAT_ENOTLISTENING` if the server never listened or has
    /// been dropped; stopping twice is not an error.
    pub fn stop(&self) -> Result<()> {
        let server = self.shared.server.lock().unwrap_or_else(|e| e.into_inner());
        if *server == 0 {
            return Err(Error::from_code(sys::WSCHAT_ENOTLISTENING));
        }
        check(unsafe { sys::wschat_server_stop(*server as *mut sys::wschat_server) }).map(|_| ())
    }
}

impl fmt::Debug for StopHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StopHandle")
    }
}

/// A WebSocket server with its own loop. Not `Send`: create it on the
/// thread that runs it, and use a [`StopHandle`] from other threads.
/// Dropping it frees the library's server, first stopping it and letting
/// its sessions close if it is still listening.
///
/// Server dereferences to [`ServerRef`], which has the methods also
/// available inside callbacks (through [`Session::server`]).
pub struct Server {
    raw: NonNull<sys::wschat_server>,
    callbacks: Rc<Callbacks>,
    stop: Arc<StopShared>,
    chat: bool,
    running: Cell<bool>,
}

impl Server {
    /// Create a server (`wschat_server_new(NULL)`: the server owns its
    /// loop). Fails only with `WSCHAT_ENOMEM`.
    pub fn new() -> Result<Server> {
        let raw = NonNull::new(unsafe { sys::wschat_server_new(ptr::null_mut()) })
            .ok_or_else(|| Error::from_code(sys::WSCHAT_ENOMEM))?;
        let callbacks = Rc::new(Callbacks::default());
        REGISTRY.with(|r| {
            r.borrow_mut()
                .push((raw.as_ptr() as usize, callbacks.clone()))
        });
        Ok(Server {
            raw,
            callbacks,
            stop: Arc::new(StopShared {
                server: Mutex::new(raw.as_ptr() as usize),
            }),
            chat: false,
            running: Cell::new(false),
        })
    }

    /// The library's handle, for calls through [`sys`]. It stays owned
    /// by this Server.
    pub fn as_ptr(&self) -> *mut sys::wschat_server {
        self.raw.as_ptr()
    }

    fn raw(&self) -> *mut sys::wschat_server {
        self.raw.as_ptr()
    }

    /// A handle that stops this server from any thread.
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle {
            shared: self.stop.clone(),
        }
    }

    /// How many times a callback of this server has panicked.
    pub fn callback_panics(&self) -> u64 {
        self.callbacks.panics.get()
    }

    fn chat_check(&self) -> Result<()> {
        if self.chat {
            // The chat protocol owns on_open, on_message and on_close.
            Err(Error::from_code(sys::WSCHAT_EBUSY))
        } else {
            Ok(())
        }
    }

    /// Call `f` when a session has completed its handshake. Fails with
    /// `WSCHAT_EBUSY` once the chat protocol is enabled.
    pub fn on_open<F: FnMut(&Session) + 'static>(&mut self, f: F) -> Result<()> {
        self.chat_check()?;
        *self.callbacks.open.borrow_mut() = Some(Box::new(f));
        unsafe { sys::wschat_server_on_open(self.raw(), Some(open_tramp)) };
        Ok(())
    }

    /// Call `f` for every whole message. Fails with `WSCHAT_EBUSY` once
    /// the chat protocol is enabled.
    pub fn on_message<F: FnMut(&Session, Message<'_>) + 'static>(&mut self, f: F) -> Result<()> {
        self.chat_check()?;
        *self.callbacks.message.borrow_mut() = Some(Box::new(f));
        unsafe { sys::wschat_server_on_message(self.raw(), Some(message_tramp)) };
        Ok(())
    }

    /// Call `f` once when a session ends; the session may still be read
    /// but not used after `f` returns. Fails with `WSCHAT_EBUSY` once the
    /// chat protocol is enabled.
    pub fn on_close<F: FnMut(&Session, Close<'_>) + 'static>(&mut self, f: F) -> Result<()> {
        self.chat_check()?;
        *self.callbacks.close.borrow_mut() = Some(Box::new(f));
        unsafe { sys::wschat_server_on_close(self.raw(), Some(close_tramp)) };
        Ok(())
    }

    /// Call `f` when a pong arrives.
    pub fn on_pong<F: FnMut(&Session, &[u8]) + 'static>(&mut self, f: F) {
        *self.callbacks.pong.borrow_mut() = Some(Box::new(f));
        unsafe { sys::wschat_server_on_pong(self.raw(), Some(pong_tramp)) };
    }

    /// Decide whether a handshake with this Origin (None when the request
    /// had none) may proceed; `false` answers it 403 Forbidden.
    pub fn on_origin<F: FnMut(&RequestHead, Option<&str>) -> bool + 'static>(&mut self, f: F) {
        *self.callbacks.origin.borrow_mut() = Some(Box::new(f));
        unsafe { sys::wschat_server_on_origin(self.raw(), Some(origin_tramp)) };
    }

    /// Answer requests that are not WebSocket upgrades (with
    /// [`HttpRequest::respond`]; unanswered ones get 404).
    pub fn on_http<F: FnMut(&HttpRequest) + 'static>(&mut self, f: F) {
        *self.callbacks.http.borrow_mut() = Some(Box::new(f));
        unsafe { sys::wschat_server_on_http(self.raw(), Some(http_tramp)) };
    }

    /// Largest message accepted, in bytes (default 65536).
    pub fn set_max_message(&mut self, bytes: u64) -> Result<()> {
        check(unsafe { sys::wschat_server_set_max_message(self.raw(), bytes) }).map(|_| ())
    }

    /// Largest HTTP request head, in bytes (default 8192; 256..32768).
    pub fn set_max_header(&mut self, bytes: usize) -> Result<()> {
        check(unsafe { sys::wschat_server_set_max_header(self.raw(), bytes) }).map(|_| ())
    }

    /// Most header lines in a request (default 64; 1..1024).
    pub fn set_max_header_count(&mut self, count: u32) -> Result<()> {
        check(unsafe { sys::wschat_server_set_max_header_count(self.raw(), count as c_uint) })
            .map(|_| ())
    }

    /// Most simultaneous connections (default 10000).
    pub fn set_max_connections(&mut self, count: u32) -> Result<()> {
        check(unsafe { sys::wschat_server_set_max_connections(self.raw(), count as c_uint) })
            .map(|_| ())
    }

    /// Most simultaneous connections from one client address (0, the
    /// default, means no limit); past it a connection gets HTTP 503.
    pub fn set_max_per_ip(&mut self, count: u32) -> Result<()> {
        check(unsafe { sys::wschat_server_set_max_per_ip(self.raw(), count as c_uint) })
            .map(|_| ())
    }

    /// Unsent output a session may have at the end of a loop turn before
    /// it is closed as a slow consumer (default 1 MiB).
    pub fn set_max_queued(&mut self, bytes: u64) -> Result<()> {
        check(unsafe { sys::wschat_server_set_max_queued(self.raw(), bytes) }).map(|_| ())
    }

    /// Milliseconds from accept to a complete request head (default 10000).
    pub fn set_handshake_timeout(&mut self, ms: u32) -> Result<()> {
        check(unsafe { sys::wschat_server_set_handshake_timeout(self.raw(), ms as c_uint) })
            .map(|_| ())
    }

    /// Milliseconds a closing connection may take (default 5000).
    pub fn set_close_timeout(&mut self, ms: u32) -> Result<()> {
        check(unsafe { sys::wschat_server_set_close_timeout(self.raw(), ms as c_uint) }).map(|_| ())
    }

    /// Close sessions idle this many milliseconds with 1001 (0: off).
    pub fn set_idle_timeout(&mut self, ms: u32) -> Result<()> {
        check(unsafe { sys::wschat_server_set_idle_timeout(self.raw(), ms as c_uint) }).map(|_| ())
    }

    /// Ping sessions idle this many milliseconds (0: off).
    pub fn set_ping_interval(&mut self, ms: u32) -> Result<()> {
        check(unsafe { sys::wschat_server_set_ping_interval(self.raw(), ms as c_uint) }).map(|_| ())
    }

    /// Accept upgrades only on this path (must start with '/').
    pub fn set_path(&mut self, path: &str) -> Result<()> {
        let path = c_string(path)?;
        check(unsafe { sys::wschat_server_set_path(self.raw(), path.as_ptr()) }).map(|_| ())
    }

    /// The subprotocols this server speaks, in preference order of the
    /// client.
    pub fn set_subprotocols(&mut self, names: &[&str]) -> Result<()> {
        let owned = names
            .iter()
            .map(|n| c_string(n))
            .collect::<Result<Vec<CString>>>()?;
        let ptrs: Vec<*const c_char> = owned.iter().map(|n| n.as_ptr()).collect();
        check(unsafe { sys::wschat_server_set_subprotocols(self.raw(), ptrs.as_ptr(), ptrs.len()) })
            .map(|_| ())
    }

    /// The close code the library sends in the given situation.
    pub fn set_close_code(&mut self, reason: CloseReason, code: u16) -> Result<()> {
        check(unsafe {
            sys::wschat_server_set_close_code(self.raw(), reason.raw(), c_int::from(code))
        })
        .map(|_| ())
    }

    /// Most rooms the server keeps (default 10000).
    pub fn set_max_rooms(&mut self, count: u32) -> Result<()> {
        check(unsafe { sys::wschat_server_set_max_rooms(self.raw(), count as c_uint) }).map(|_| ())
    }

    /// Messages each room's history keeps (default 1000).
    pub fn set_history(&mut self, count: u32) -> Result<()> {
        check(unsafe { sys::wschat_server_set_history(self.raw(), count as c_uint) }).map(|_| ())
    }

    /// Per-session token bucket for [`Session::rate_take`] (default 20/s,
    /// burst 40; 0 per second turns it off).
    pub fn set_rate(&mut self, per_second: u32, burst: u32) -> Result<()> {
        check(unsafe {
            sys::wschat_server_set_rate(self.raw(), per_second as c_uint, burst as c_uint)
        })
        .map(|_| ())
    }

    /// Speak the built-in chat protocol (wschat-protocol(7)). It takes
    /// over on_open, on_message and on_close (closures set for them are
    /// dropped, and setting them later fails); on_pong, on_origin and
    /// on_http stay the application's. Call before [`Server::listen`].
    pub fn enable_chat(&mut self) -> Result<()> {
        check(unsafe { sys::wschat_chat_enable(self.raw()) })?;
        self.chat = true;
        *self.callbacks.open.borrow_mut() = None;
        *self.callbacks.message.borrow_mut() = None;
        *self.callbacks.close.borrow_mut() = None;
        Ok(())
    }

    /// Largest chat text in bytes (chat enabled only).
    pub fn set_chat_max_text(&mut self, bytes: usize) -> Result<()> {
        check(unsafe { sys::wschat_chat_set_max_text(self.raw(), bytes) }).map(|_| ())
    }

    /// Room size above which presence is announced only to the member
    /// concerned (chat enabled only; 0: always to everyone).
    pub fn set_chat_presence_limit(&mut self, members: u32) -> Result<()> {
        check(unsafe { sys::wschat_chat_set_presence_limit(self.raw(), members as c_uint) })
            .map(|_| ())
    }

    /// The "server" string of the chat welcome message (chat enabled only).
    pub fn set_chat_server_name(&mut self, name: &str) -> Result<()> {
        let name = c_string(name)?;
        check(unsafe { sys::wschat_chat_set_server_name(self.raw(), name.as_ptr()) }).map(|_| ())
    }

    /// Bind to `host` (an IPv4 or IPv6 literal) and `port` (0: any free
    /// port, see [`ServerRef::port`]) and start accepting.
    pub fn listen(&mut self, host: &str, port: u16) -> Result<()> {
        let host = c_string(host)?;
        check(unsafe { sys::wschat_server_listen(self.raw(), host.as_ptr(), c_int::from(port)) })
            .map(|_| ())
    }

    /// Run the server's loop, calling the callbacks, until a stop (from a
    /// [`StopHandle`] or [`ServerRef::stop`]) has completed.
    pub fn run(&mut self) -> Result<()> {
        self.running.set(true);
        let rc = unsafe { sys::wschat_server_run(self.raw()) };
        self.running.set(false);
        check(rc).map(|_| ())
    }
}

impl Deref for Server {
    type Target = ServerRef;

    fn deref(&self) -> &ServerRef {
        unsafe { ServerRef::from_ptr(self.raw()) }
    }
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("port", &self.port().ok())
            .finish()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let raw = self.raw();
        if self.running.get() {
            // Dropped from inside one of its own callbacks (through a
            // reference cycle): the loop still uses it, so it is leaked.
            log(format_args!("server dropped while running; leaked"));
            return;
        }
        let mut shared = self.stop.server.lock().unwrap_or_else(|e| e.into_inner());
        let mut rc = unsafe { sys::wschat_server_free(raw) };
        if rc == sys::WSCHAT_EBUSY {
            // Listening and never stopped (or not run to the end): stop
            // it and let its sessions close, callbacks included.
            drop(shared);
            unsafe {
                sys::wschat_server_stop(raw);
                sys::wschat_server_run(raw);
            }
            shared = self.stop.server.lock().unwrap_or_else(|e| e.into_inner());
            rc = unsafe { sys::wschat_server_free(raw) };
        }
        if rc != 0 {
            log(format_args!(
                "server could not be freed: {}; leaked",
                Error::from_code(rc)
            ));
            return;
        }
        *shared = 0;
        drop(shared);
        let _ = REGISTRY.try_with(|r| r.borrow_mut().retain(|e| e.0 != raw as usize));
    }
}

/// Declare an opaque type that is only ever used by reference to a library
/// object: zero-sized, interior-mutable (the library changes the object
/// behind it), neither Send nor Sync, not Unpin.
macro_rules! opaque {
    ($(#[$doc:meta])* $name:ident, $raw:ty) => {
        $(#[$doc])*
        #[repr(C)]
        pub struct $name {
            _cell: UnsafeCell<[u8; 0]>,
            _marker: PhantomData<(*mut u8, PhantomPinned)>,
        }

        impl $name {
            unsafe fn from_ptr<'a>(p: *const $raw) -> &'a $name {
                &*(p as *const $name)
            }

            fn raw(&self) -> *mut $raw {
                self as *const $name as *mut $raw
            }
        }
    };
}

opaque!(
    /// A server seen from inside its callbacks (through
    /// [`Session::server`]) or through a [`Server`].
    ServerRef,
    sys::wschat_server
);

impl ServerRef {
    /// The port the server listens on, or `WSCHAT_ENOTLISTENING`.
    pub fn port(&self) -> Result<u16> {
        let port = check(unsafe { sys::wschat_server_port(self.raw()) })?;
        Ok(port as u16)
    }

    /// Stop the server, as [`StopHandle::stop`] does.
    pub fn stop(&self) -> Result<()> {
        check(unsafe { sys::wschat_server_stop(self.raw()) }).map(|_| ())
    }

    /// True once a stop has completed and every handle is closed.
    pub fn is_stopped(&self) -> bool {
        unsafe { sys::wschat_server_is_stopped(self.raw()) != 0 }
    }

    /// Connections handshaking, open or closing.
    pub fn connection_count(&self) -> u32 {
        unsafe { sys::wschat_server_connection_count(self.raw()) }
    }

    /// The max_queued setting in force.
    pub fn max_queued(&self) -> u64 {
        unsafe { sys::wschat_server_get_max_queued(self.raw()) }
    }

    /// The rate limit in force: (per_second, burst).
    pub fn rate(&self) -> (u32, u32) {
        let (mut per_second, mut burst) = (0, 0);
        unsafe { sys::wschat_server_get_rate(self.raw(), &mut per_second, &mut burst) };
        (per_second, burst)
    }

    /// The current value of a counter.
    pub fn stat(&self, which: Stat) -> u64 {
        unsafe { sys::wschat_server_stat(self.raw(), which.raw()) }
    }

    /// How many sessions ended with this close code.
    pub fn closes(&self, code: u16) -> u64 {
        unsafe { sys::wschat_server_closes(self.raw(), c_int::from(code)) }
    }

    /// The counters in the Prometheus text format.
    pub fn metrics(&self) -> String {
        let need = unsafe { sys::wschat_server_metrics(self.raw(), ptr::null_mut(), 0) };
        let mut buf = vec![0u8; need.max(0) as usize + 1];
        let n = unsafe {
            sys::wschat_server_metrics(self.raw(), buf.as_mut_ptr() as *mut c_char, buf.len())
        };
        buf.truncate((n.max(0) as usize).min(buf.len() - 1));
        String::from_utf8_lossy(&buf).into_owned()
    }

    /// The open session with this name (case-insensitive).
    pub fn find_session(&self, name: &str) -> Option<&Session> {
        let name = c_string(name).ok()?;
        let s = unsafe { sys::wschat_server_find_session(self.raw(), name.as_ptr()) };
        if s.is_null() {
            None
        } else {
            Some(unsafe { Session::from_ptr(s) })
        }
    }

    /// The room with this name, created if it does not exist (name: 1-64
    /// bytes of `[A-Za-z0-9_.-]`).
    pub fn room(&self, name: &str) -> Result<Room<'_>> {
        let room = Room {
            server: self,
            name: c_string(name)?,
        };
        room.open()?;
        Ok(room)
    }

    /// The room with this name, if it exists.
    pub fn find_room(&self, name: &str) -> Option<Room<'_>> {
        let room = Room {
            server: self,
            name: c_string(name).ok()?,
        };
        if room.find().is_null() {
            None
        } else {
            Some(room)
        }
    }

    /// Every room of the server, in creation order.
    pub fn rooms(&self) -> Vec<Room<'_>> {
        let mut names: Vec<CString> = Vec::new();
        unsafe {
            sys::wschat_server_foreach_room(
                self.raw(),
                Some(room_name_tramp),
                &mut names as *mut Vec<CString> as *mut c_void,
            )
        };
        names
            .into_iter()
            .map(|name| Room { server: self, name })
            .collect()
    }

    /// Rooms the server keeps now.
    pub fn room_count(&self) -> u32 {
        unsafe { sys::wschat_server_room_count(self.raw()) }
    }
}

opaque!(
    /// A WebSocket session, valid for the callback it was given to.
    Session,
    sys::wschat_session
);

impl Session {
    /// Queue a text message (copied; never blocks).
    pub fn send_text(&self, text: &str) -> Result<()> {
        check(unsafe {
            sys::wschat_session_send_text(self.raw(), text.as_ptr() as *const c_char, text.len())
        })
        .map(|_| ())
    }

    /// Queue a binary message (copied; never blocks).
    pub fn send_binary(&self, data: &[u8]) -> Result<()> {
        check(unsafe {
            sys::wschat_session_send_binary(self.raw(), data.as_ptr() as *const c_void, data.len())
        })
        .map(|_| ())
    }

    /// Queue a message of either type.
    pub fn send(&self, message: Message<'_>) -> Result<()> {
        match message {
            Message::Text(t) => self.send_text(t),
            Message::Binary(b) => self.send_binary(b),
        }
    }

    /// Queue a shared frame (a reference, not a copy).
    pub fn send_frame(&self, frame: &Frame) -> Result<()> {
        check(unsafe { sys::wschat_session_send_frame(self.raw(), frame.raw.as_ptr()) }).map(|_| ())
    }

    /// Start the close handshake with `code` (1000-1003, 1007-1014,
    /// 3000-4999, or 0 for a close frame without a code) and `reason` (at
    /// most 123 bytes).
    pub fn close(&self, code: u16, reason: &str) -> Result<()> {
        let reason = c_string(reason)?;
        check(unsafe { sys::wschat_session_close(self.raw(), c_int::from(code), reason.as_ptr()) })
            .map(|_| ())
    }

    /// Send a ping with up to 125 bytes of payload.
    pub fn ping(&self, data: &[u8]) -> Result<()> {
        check(unsafe {
            sys::wschat_session_ping(self.raw(), data.as_ptr() as *const c_void, data.len())
        })
        .map(|_| ())
    }

    /// A number unique among the server's sessions, from 1.
    pub fn id(&self) -> u64 {
        unsafe { sys::wschat_session_id(self.raw()) }
    }

    /// The session's name (`user<N>` unless renamed).
    pub fn name(&self) -> String {
        unsafe { borrowed_str(sys::wschat_session_name(self.raw())) }
            .unwrap_or("")
            .to_owned()
    }

    /// Rename the session (1-32 bytes of `[A-Za-z0-9_.-]`, unique).
    pub fn set_name(&self, name: &str) -> Result<()> {
        let name = c_string(name)?;
        check(unsafe { sys::wschat_session_set_name(self.raw(), name.as_ptr()) }).map(|_| ())
    }

    /// The request path the session was opened on.
    pub fn path(&self) -> &str {
        unsafe { borrowed_str(sys::wschat_session_path(self.raw())) }.unwrap_or("")
    }

    /// The selected subprotocol, if any.
    pub fn subprotocol(&self) -> Option<&str> {
        unsafe { borrowed_str(sys::wschat_session_subprotocol(self.raw())) }
    }

    /// The peer's address, `ip:port` or `[ip]:port`.
    pub fn peer(&self) -> Result<String> {
        let mut buf = [0u8; 64];
        let n = check(unsafe {
            sys::wschat_session_peer(self.raw(), buf.as_mut_ptr() as *mut c_char, buf.len())
        })?;
        Ok(String::from_utf8_lossy(&buf[..n as usize]).into_owned())
    }

    /// Bytes queued and not yet written to the socket.
    pub fn queued(&self) -> u64 {
        unsafe { sys::wschat_session_queued(self.raw()) }
    }

    /// Take one token of the session's rate limit, or
    /// `WSCHAT_ERATELIMITED`.
    pub fn rate_take(&self) -> Result<()> {
        check(unsafe { sys::wschat_session_rate_take(self.raw()) }).map(|_| ())
    }

    /// The server the session belongs to.
    pub fn server(&self) -> &ServerRef {
        unsafe { ServerRef::from_ptr(sys::wschat_session_server(self.raw())) }
    }

    /// The rooms the session is in, in the order it joined them.
    pub fn rooms(&self) -> Vec<Room<'_>> {
        let mut names: Vec<CString> = Vec::new();
        unsafe {
            sys::wschat_session_foreach_room(
                self.raw(),
                Some(room_name_tramp),
                &mut names as *mut Vec<CString> as *mut c_void,
            )
        };
        let server = self.server();
        names
            .into_iter()
            .map(|name| Room { server, name })
            .collect()
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id())
            .field("name", &self.name())
            .finish()
    }
}

/// A room of a server, addressed by name. The library may remove an
/// empty room to make space for a new one, so a Room looks its room up
/// for each call: operations that add to a room (join, history_add)
/// create it again if it was removed, and the others see it empty.
pub struct Room<'a> {
    server: &'a ServerRef,
    name: CString,
}

impl<'a> Room<'a> {
    fn open(&self) -> Result<*mut sys::wschat_room> {
        let mut room = ptr::null_mut();
        check(unsafe { sys::wschat_room_open(self.server.raw(), self.name.as_ptr(), &mut room) })?;
        Ok(room)
    }

    fn find(&self) -> *mut sys::wschat_room {
        unsafe { sys::wschat_room_find(self.server.raw(), self.name.as_ptr()) }
    }

    /// The room's name.
    pub fn name(&self) -> &str {
        self.name.to_str().unwrap_or("")
    }

    /// Add an open session (`WSCHAT_EEXIST` if already a member).
    pub fn join(&self, session: &Session) -> Result<()> {
        let room = self.open()?;
        check(unsafe { sys::wschat_room_join(room, session.raw()) }).map(|_| ())
    }

    /// Remove a session (`WSCHAT_ENOTMEMBER` if it is not a member).
    pub fn leave(&self, session: &Session) -> Result<()> {
        let room = self.find();
        if room.is_null() {
            return Err(Error::from_code(sys::WSCHAT_ENOTMEMBER));
        }
        check(unsafe { sys::wschat_room_leave(room, session.raw()) }).map(|_| ())
    }

    /// Whether the session is a member.
    pub fn is_member(&self, session: &Session) -> bool {
        unsafe { sys::wschat_room_is_member(self.find(), session.raw()) != 0 }
    }

    /// Members now.
    pub fn member_count(&self) -> u32 {
        let room = self.find();
        if room.is_null() {
            0
        } else {
            unsafe { sys::wschat_room_member_count(room) }
        }
    }

    /// Visit the members in join order; `f` may send, close, join and
    /// leave. A panic in `f` ends the visit and is resumed here.
    pub fn for_each_member<F: FnMut(&Session)>(&self, mut f: F) {
        let room = self.find();
        if room.is_null() {
            return;
        }
        let mut visit = Visit::new(&mut f);
        unsafe {
            sys::wschat_room_foreach_member(
                room,
                Some(member_tramp::<F>),
                &mut visit as *mut Visit<'_, F> as *mut c_void,
            )
        };
        visit.finish();
    }

    /// Queue `frame` on every member except `except`; returns how many
    /// members it was queued for.
    pub fn broadcast(&self, frame: &Frame, except: Option<&Session>) -> usize {
        let room = self.find();
        if room.is_null() {
            return 0;
        }
        let except = except.map_or(ptr::null(), |s| s.raw() as *const sys::wschat_session);
        let n = unsafe { sys::wschat_room_broadcast(room, frame.raw.as_ptr(), except) };
        n.max(0) as usize
    }

    /// Store a copy of `data` in the room's history; returns its id.
    pub fn history_add(&self, data: &[u8]) -> Result<u64> {
        let room = self.open()?;
        let mut id = 0u64;
        check(unsafe {
            sys::wschat_room_history_add(room, data.as_ptr() as *const c_void, data.len(), &mut id)
        })?;
        Ok(id)
    }

    /// The newest id assigned (0 before the first).
    pub fn last_id(&self) -> u64 {
        let room = self.find();
        if room.is_null() {
            0
        } else {
            unsafe { sys::wschat_room_last_id(room) }
        }
    }

    /// The oldest id still stored (0 when nothing is).
    pub fn first_id(&self) -> u64 {
        let room = self.find();
        if room.is_null() {
            0
        } else {
            unsafe { sys::wschat_room_first_id(room) }
        }
    }

    /// Visit the newest `limit` stored messages with `after < id` (and
    /// `id < before` unless `before` is 0), oldest first. Returns how many
    /// were visited and whether older ones in the range were left out.
    pub fn history<F: FnMut(u64, &[u8])>(
        &self,
        after: u64,
        before: u64,
        limit: u32,
        mut f: F,
    ) -> (u32, bool) {
        let room = self.find();
        if room.is_null() {
            return (0, false);
        }
        let mut more: c_int = 0;
        let mut visit = Visit::new(&mut f);
        let n = unsafe {
            sys::wschat_room_history(
                room,
                after,
                before,
                limit as c_uint,
                Some(history_tramp::<F>),
                &mut visit as *mut Visit<'_, F> as *mut c_void,
                &mut more,
            )
        };
        visit.finish();
        (n, more != 0)
    }
}

impl fmt::Debug for Room<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Room").field("name", &self.name()).finish()
    }
}

opaque!(
    /// The head of an HTTP request, read-only (in `on_origin`).
    RequestHead,
    sys::wschat_http_request
);

impl RequestHead {
    /// "GET", "HEAD", ...
    pub fn method(&self) -> &str {
        unsafe { borrowed_str(sys::wschat_http_method(self.raw())) }.unwrap_or("")
    }

    /// The request target's path, without the query.
    pub fn path(&self) -> &str {
        unsafe { borrowed_str(sys::wschat_http_path(self.raw())) }.unwrap_or("")
    }

    /// The query string without the '?' ("" if none).
    pub fn query(&self) -> &str {
        unsafe { borrowed_str(sys::wschat_http_query(self.raw())) }.unwrap_or("")
    }

    /// The value of the first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = c_string(name).ok()?;
        unsafe { borrowed_str(sys::wschat_http_header(self.raw(), name.as_ptr())) }
    }
}

opaque!(
    /// A plain HTTP request, to be answered in `on_http`.
    HttpRequest,
    sys::wschat_http_request
);

impl HttpRequest {
    /// Answer the request (once): status, optional Content-Type, optional
    /// extra header lines ("Name: value\r\n" each), body.
    pub fn respond(
        &self,
        status: u16,
        content_type: Option<&str>,
        extra_headers: Option<&str>,
        body: &[u8],
    ) -> Result<()> {
        let content_type = content_type.map(c_string).transpose()?;
        let extra_headers = extra_headers.map(c_string).transpose()?;
        check(unsafe {
            sys::wschat_http_respond(
                self.raw(),
                c_int::from(status),
                content_type.as_ref().map_or(ptr::null(), |c| c.as_ptr()),
                extra_headers.as_ref().map_or(ptr::null(), |c| c.as_ptr()),
                body.as_ptr() as *const c_void,
                body.len(),
            )
        })
        .map(|_| ())
    }
}

impl Deref for HttpRequest {
    type Target = RequestHead;

    fn deref(&self) -> &RequestHead {
        unsafe { RequestHead::from_ptr(self.raw()) }
    }
}

/// A message encoded once, to send to many sessions without copies
/// ([`Session::send_frame`], [`Room::broadcast`]). Dropping it releases
/// this reference; copies still queued stay alive until written.
pub struct Frame {
    raw: NonNull<sys::wschat_frame>,
    _not_send: PhantomData<*mut u8>,
}

impl Frame {
    fn new(msg_type: sys::wschat_msg_type, data: &[u8]) -> Result<Frame> {
        let mut out = ptr::null_mut();
        check(unsafe {
            sys::wschat_frame_new(
                msg_type,
                data.as_ptr() as *const c_void,
                data.len(),
                &mut out,
            )
        })?;
        let raw = NonNull::new(out).ok_or_else(|| Error::from_code(sys::WSCHAT_ENOMEM))?;
        Ok(Frame {
            raw,
            _not_send: PhantomData,
        })
    }

    /// A text frame.
    pub fn text(text: &str) -> Result<Frame> {
        Frame::new(sys::WSCHAT_TEXT, text.as_bytes())
    }

    /// A binary frame.
    pub fn binary(data: &[u8]) -> Result<Frame> {
        Frame::new(sys::WSCHAT_BINARY, data)
    }
}

impl Drop for Frame {
    fn drop(&mut self) {
        unsafe { sys::wschat_frame_release(self.raw.as_ptr()) }
    }
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Frame")
    }
}
