//! echo - a WebSocket server that sends every text and binary message
//! back unchanged, on any path: examples/echo.c written with the Rust
//! bindings.
//!
//!   echo [--host ADDR] [--port PORT] [--max-message BYTES] [PORT]
//!
//! It listens on 127.0.0.1:8080 unless told otherwise (port 0 picks a free
//! one), prints one line "echo: listening on HOST:PORT" when ready, and on
//! SIGINT or SIGTERM closes every session with 1001 and exits 0.

use std::os::raw::c_int;
use std::process::exit;
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};

use wschat::{sys, Server};

// The server for the signal handler. wschat_server_stop() is
// async-signal-safe once the server listens; the pointer is cleared before
// the server is freed (on the main thread, where the handler runs: this
// program starts no other thread).
static SERVER: AtomicPtr<sys::wschat_server> = AtomicPtr::new(ptr::null_mut());

extern "C" {
    fn signal(signum: c_int, handler: extern "C" fn(c_int)) -> usize;
}
const SIGINT: c_int = 2;
const SIGTERM: c_int = 15;

extern "C" fn on_signal(_signum: c_int) {
    let server = SERVER.load(Ordering::SeqCst);
    if !server.is_null() {
        unsafe { sys::wschat_server_stop(server) };
    }
}

fn usage() -> ! {
    eprintln!("usage: echo [--host ADDR] [--port PORT] [--max-message BYTES] [PORT]");
    exit(2);
}

fn fail(what: &str, err: wschat::Error) -> ! {
    eprintln!("echo: {}: {}", what, err);
    exit(2);
}

fn number(flag: &str, arg: Option<String>) -> u64 {
    let arg = arg.unwrap_or_else(|| usage());
    arg.parse().unwrap_or_else(|_| {
        eprintln!("echo: {}: invalid value '{}'", flag, arg);
        exit(2)
    })
}

fn main() {
    let mut host = String::from("127.0.0.1");
    let mut port = 8080u64;
    let mut max_message = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--host" => host = args.next().unwrap_or_else(|| usage()),
            "--port" => port = number("--port", args.next()),
            "--max-message" => max_message = Some(number("--max-message", args.next())),
            "--help" => {
                println!("usage: echo [--host ADDR] [--port PORT] [--max-message BYTES] [PORT]");
                return;
            }
            _ if !arg.starts_with('-') => port = number("PORT", Some(arg)),
            _ => usage(),
        }
    }
    let port = u16::try_from(port).unwrap_or_else(|_| {
        eprintln!("echo: port {} out of range", port);
        exit(2)
    });

    let mut server = Server::new().unwrap_or_else(|e| fail("server", e));
    if let Some(bytes) = max_message {
        server
            .set_max_message(bytes)
            .unwrap_or_else(|e| fail("--max-message", e));
        // An echo sends back what it receives: its output limit must hold
        // the largest message.
        let queued = bytes.saturating_mul(2).saturating_add(1 << 20);
        if queued > server.max_queued() {
            server
                .set_max_queued(queued)
                .unwrap_or_else(|e| fail("--max-queued", e));
        }
    }
    server
        .on_message(|session, message| {
            let _ = session.send(message);
        })
        .unwrap_or_else(|e| fail("on_message", e));
    server
        .listen(&host, port)
        .unwrap_or_else(|e| fail("listen", e));

    SERVER.store(server.as_ptr(), Ordering::SeqCst);
    unsafe {
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
    }
    let port = server.port().unwrap_or_else(|e| fail("port", e));
    if host.contains(':') {
        println!("echo: listening on [{}]:{}", host, port);
    } else {
        println!("echo: listening on {}:{}", host, port);
    }

    let result = server.run();
    SERVER.store(ptr::null_mut(), Ordering::SeqCst);
    if let Err(e) = result {
        fail("run", e);
    }
}
