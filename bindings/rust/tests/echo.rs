//! The safe wrapper against a live server: echo, close codes, errors,
//! stopping from another thread, panics in callbacks, rooms, HTTP, chat.

mod common;

use std::sync::mpsc;
use std::time::Duration;

use common::{http, Client, Running, BINARY, PING, PONG, TEXT};
use wschat::{sys, Frame, Message, Server, Stat, StopHandle};

const WAIT: Duration = Duration::from_secs(10);

fn echo(server: &mut Server) {
    server
        .on_message(|session, message| {
            session.send(message).unwrap();
        })
        .unwrap();
}

#[test]
fn echoes_text_and_binary() {
    let running = Running::start(echo);
    let mut client = Client::connect(running.port);
    client.send_text("hello from Rust");
    let frame = client.recv();
    assert_eq!(frame.opcode, TEXT);
    assert_eq!(frame.text(), "hello from Rust");

    let binary: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    client.send(BINARY, &binary);
    let frame = client.recv();
    assert_eq!(frame.opcode, BINARY);
    assert_eq!(frame.payload, binary);

    // Control frames are the library's business: a ping gets its pong.
    client.send(PING, b"are you there");
    let frame = client.recv();
    assert_eq!(frame.opcode, PONG);
    assert_eq!(frame.payload, b"are you there");

    let (result, panics) = running.finish();
    assert_eq!(result, Ok(()));
    assert_eq!(panics, 0);
}

#[test]
fn client_close_is_answered_and_reported() {
    let (tx, rx) = mpsc::channel();
    let running = Running::start(move |server| {
        echo(server);
        server
            .on_close(move |session, close| {
                tx.send((session.id(), close.code, close.reason.to_string()))
                    .unwrap();
            })
            .unwrap();
    });
    let mut client = Client::connect(running.port);
    client.send_close(1000, "done here");
    let (code, reason) = client.recv().close();
    assert_eq!(code, 1000);
    assert_eq!(reason, "");
    assert!(client.at_eof());
    assert_eq!(
        rx.recv_timeout(WAIT).unwrap(),
        (1, 1000, "done here".to_string())
    );
}

#[test]
fn server_close_sends_code_and_reason() {
    let (tx, rx) = mpsc::channel();
    let running = Running::start(move |server| {
        server
            .on_message(|session, message| {
                if message == Message::Text("close please") {
                    session.close(4001, "as asked").unwrap();
                    // The session is closing: further sends fail.
                    let err = session.send_text("too late").unwrap_err();
                    assert_eq!(err.code(), sys::WSCHAT_ECLOSED);
                }
            })
            .unwrap();
        server
            .on_close(move |_session, close| {
                tx.send((close.code, close.reason.to_string())).unwrap();
            })
            .unwrap();
    });
    let mut client = Client::connect(running.port);
    client.send_text("close please");
    let (code, reason) = client.recv().close();
    assert_eq!((code, reason.as_str()), (4001, "as asked"));
    client.send_close(4001, "");
    assert_eq!(
        rx.recv_timeout(WAIT).unwrap(),
        (4001, "as asked".to_string())
    );
}

#[test]
fn bad_options_are_errors_with_code_name_and_message() {
    let mut server = Server::new().unwrap();
    let err = server.set_max_header(10).unwrap_err();
    assert_eq!(err.code(), sys::WSCHAT_EINVAL);
    assert_eq!(err.code(), -30100);
    assert_eq!(err.name(), "WSCHAT_EINVAL");
    assert_eq!(err.message(), "invalid argument");
    assert_eq!(err.to_string(), "invalid argument (WSCHAT_EINVAL)");
    assert_eq!(
        format!("{:?}", err),
        "Error(-30100, WSCHAT_EINVAL: invalid argument)"
    );
    let boxed: Box<dyn std::error::Error> = Box::new(err);
    assert_eq!(boxed.to_string(), "invalid argument (WSCHAT_EINVAL)");

    assert_eq!(
        server.set_path("no-slash").unwrap_err().code(),
        sys::WSCHAT_EINVAL
    );
    assert_eq!(
        server.set_path("/a\0b").unwrap_err().code(),
        sys::WSCHAT_EINVAL
    );
    assert_eq!(
        server.set_subprotocols(&["bad name"]).unwrap_err().name(),
        "WSCHAT_EINVAL"
    );
    assert_eq!(
        server
            .set_close_code(wschat::CloseReason::Idle, 1005)
            .unwrap_err()
            .code(),
        sys::WSCHAT_EINVAL
    );
    assert_eq!(server.set_max_header(8192), Ok(()));
    assert_eq!(server.set_max_per_ip(10), Ok(()));
    assert_eq!(
        server.set_max_per_ip(10_000_001).unwrap_err().code(),
        sys::WSCHAT_EINVAL
    );
    assert_eq!(
        server.set_chat_max_text(100).unwrap_err().code(),
        sys::WSCHAT_EINVAL,
        "chat setters need chat enabled"
    );

    let err = server.port().unwrap_err();
    assert_eq!(err.name(), "WSCHAT_ENOTLISTENING");
    assert_eq!(err.message(), "server is not listening");
    assert_eq!(server.run().unwrap_err().code(), sys::WSCHAT_ENOTLISTENING);
    assert_eq!(
        server.stop_handle().stop().unwrap_err().code(),
        sys::WSCHAT_ENOTLISTENING
    );

    assert_eq!(
        server.listen("localhost", 0).unwrap_err().code(),
        sys::WSCHAT_EINVAL,
        "only address literals"
    );
    server.listen("127.0.0.1", 0).unwrap();
    assert_eq!(
        server.listen("127.0.0.1", 0).unwrap_err().name(),
        "WSCHAT_ELISTENING"
    );

    // A libuv error passes through with its own name.
    let port = server.port().unwrap();
    let mut other = Server::new().unwrap();
    let err = other.listen("127.0.0.1", port).unwrap_err();
    assert_eq!(err.name(), "EADDRINUSE");
    assert!(err.code() < 0 && err.code() > -30000, "{:?}", err);
    // Dropping a listening server that never ran stops and frees it.
}

fn assert_send_sync_clone<T: Send + Sync + Clone + 'static>() {}

#[test]
fn stop_handle_stops_from_another_thread() {
    assert_send_sync_clone::<StopHandle>();
    let (tx, rx) = mpsc::channel();
    let running = Running::start(move |server| {
        echo(server);
        server
            .on_close(move |_session, close| tx.send(close.code).unwrap())
            .unwrap();
    });
    let mut client = Client::connect(running.port);
    client.send_text("before the stop");
    assert_eq!(client.recv().text(), "before the stop");

    let stop = running.stop.clone();
    std::thread::spawn(move || stop.stop().unwrap())
        .join()
        .unwrap();
    let (code, _) = client.recv().close();
    assert_eq!(code, 1001);
    client.send_close(1001, "");
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), 1001);

    let stop = running.stop.clone();
    let (result, _) = running.finish();
    assert_eq!(result, Ok(()));
    // The server is gone: the handle says so instead of touching it.
    assert_eq!(stop.stop().unwrap_err().code(), sys::WSCHAT_ENOTLISTENING);
}

#[test]
fn panicking_callback_drops_the_event_not_the_server() {
    let running = Running::start(|server| {
        server
            .on_message(|session, message| {
                if message == Message::Text("panic") {
                    panic!("a callback that panics");
                }
                session.send(message).unwrap();
            })
            .unwrap();
    });
    let mut client = Client::connect(running.port);
    client.send_text("panic");
    client.send_text("still here");
    assert_eq!(client.recv().text(), "still here");
    let (result, panics) = running.finish();
    assert_eq!(result, Ok(()));
    assert_eq!(panics, 1);
}

#[test]
fn rooms_broadcast_and_history() {
    let running = Running::start(|server| {
        server
            .on_open(|session| {
                session
                    .server()
                    .room("lobby")
                    .unwrap()
                    .join(session)
                    .unwrap();
            })
            .unwrap();
        server
            .on_message(|session, message| {
                let server = session.server();
                let lobby = server.find_room("lobby").unwrap();
                let text = match message {
                    Message::Text(t) => t,
                    Message::Binary(_) => return,
                };
                if text == "who" {
                    let mut names = Vec::new();
                    lobby.for_each_member(|m| names.push(m.name()));
                    let reply = format!(
                        "{} in {}; me {} #{}; history {}..{}",
                        names.join(","),
                        lobby.name(),
                        session.name(),
                        session.id(),
                        lobby.first_id(),
                        lobby.last_id()
                    );
                    session.send_text(&reply).unwrap();
                    return;
                }
                lobby.history_add(text.as_bytes()).unwrap();
                let frame = Frame::text(text).unwrap();
                let n = lobby.broadcast(&frame, Some(session));
                session.send_text(&format!("sent to {}", n)).unwrap();
            })
            .unwrap();
    });
    let mut a = Client::connect(running.port);
    a.send_text("who");
    assert_eq!(a.recv().text(), "user1 in lobby; me user1 #1; history 0..0");
    let mut b = Client::connect(running.port);
    b.send_text("who");
    assert_eq!(
        b.recv().text(),
        "user1,user2 in lobby; me user2 #2; history 0..0"
    );
    a.send_text("hi all");
    assert_eq!(a.recv().text(), "sent to 1");
    assert_eq!(b.recv().text(), "hi all");
    b.send_text("who");
    assert_eq!(
        b.recv().text(),
        "user1,user2 in lobby; me user2 #2; history 1..1"
    );
}

#[test]
fn http_handler_and_origin_check() {
    let running = Running::start(|server| {
        echo(server);
        server.on_http(|request| {
            if request.path() == "/hello" {
                let body = format!("hello {}", request.query());
                request
                    .respond(
                        200,
                        Some("text/plain"),
                        Some("X-Test: yes\r\n"),
                        body.as_bytes(),
                    )
                    .unwrap();
                assert_eq!(
                    request.respond(200, None, None, b"").unwrap_err().code(),
                    sys::WSCHAT_EINVAL,
                    "a second response"
                );
            }
        });
        server.on_origin(|request, origin| {
            assert_eq!(request.method(), "GET");
            assert!(request.header("sec-websocket-key").is_some());
            origin.map_or(true, |o| o == "http://good.example")
        });
    });
    let response = http(
        running.port,
        "GET /hello?name=x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    );
    assert!(response.starts_with("HTTP/1.1 200 "), "{}", response);
    assert_eq!(
        common::header(&response, "Content-Type").as_deref(),
        Some("text/plain")
    );
    assert_eq!(common::header(&response, "X-Test").as_deref(), Some("yes"));
    assert!(response.ends_with("\r\n\r\nhello name=x"), "{}", response);

    let response = http(
        running.port,
        "GET /other HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    );
    assert!(response.starts_with("HTTP/1.1 404 "), "{}", response);

    let bad = Client::handshake(running.port, "/", "Origin: http://evil.example\r\n");
    assert!(
        bad.response.starts_with("HTTP/1.1 403 "),
        "{}",
        bad.response
    );
    let mut good = Client::handshake(running.port, "/", "Origin: http://good.example\r\n");
    assert!(
        good.response.starts_with("HTTP/1.1 101 "),
        "{}",
        good.response
    );
    good.send_text("allowed");
    assert_eq!(good.recv().text(), "allowed");
}

#[test]
fn chat_protocol_can_be_enabled() {
    let running = Running::start(|server| {
        server.enable_chat().unwrap();
        assert_eq!(
            server.on_message(|_, _| {}).unwrap_err().code(),
            sys::WSCHAT_EBUSY,
            "chat owns on_message"
        );
        server.set_chat_max_text(16).unwrap();
        server.set_chat_server_name("rust-test/1").unwrap();
    });
    let mut client = Client::connect(running.port);
    client.send_text("hello chat");
    let mut seen = Vec::new();
    loop {
        let text = client.recv().text();
        if text == "user1 said: hello chat" {
            break;
        }
        seen.push(text);
        assert!(seen.len() < 5, "no chat echo; got {:?}", seen);
    }
    client.send_text("this text is longer than sixteen bytes");
    let reply = client.recv().text();
    assert!(reply.starts_with("* error"), "{}", reply);
    client.send_close(1000, "");
    assert_eq!(client.recv().close().0, 1000);
}

#[test]
fn stats_and_metrics() {
    let (tx, rx) = mpsc::channel();
    let running = Running::start(move |server| {
        server
            .on_message(move |session, message| {
                let server = session.server();
                session.send(message).unwrap();
                tx.send((
                    server.stat(Stat::MessagesIn),
                    server.stat(Stat::Sessions),
                    server.connection_count(),
                    server.metrics(),
                    session.peer().unwrap(),
                    session.path().to_string(),
                ))
                .unwrap();
            })
            .unwrap();
    });
    let mut client = Client::handshake(running.port, "/some/path?q=1", "");
    assert!(client.response.starts_with("HTTP/1.1 101 "));
    client.send_text("count me");
    assert_eq!(client.recv().text(), "count me");
    let (messages_in, sessions, connections, metrics, peer, path) = rx.recv_timeout(WAIT).unwrap();
    assert_eq!((messages_in, sessions, connections), (1, 1, 1));
    assert!(
        metrics.contains("wschat_messages_in_total 1\n"),
        "{}",
        metrics
    );
    assert!(peer.starts_with("127.0.0.1:"), "{}", peer);
    assert_eq!(path, "/some/path");
    assert_eq!(wschat::version(), sys::WSCHAT_VERSION_HEX);
    assert_eq!(wschat::version_string(), "0.1.0");
}

#[test]
fn ping_pong_and_names() {
    let running = Running::start(|server| {
        server
            .on_open(|session| session.ping(b"heartbeat").unwrap())
            .unwrap();
        server.on_pong(|session, data| {
            let reply = format!("pong {}", String::from_utf8_lossy(data));
            session.send_text(&reply).unwrap();
        });
        server
            .on_message(|session, message| {
                let text = match message {
                    Message::Text(t) => t,
                    Message::Binary(_) => return,
                };
                let reply = if let Some(name) = text.strip_prefix("nick ") {
                    match session.set_name(name) {
                        Ok(()) => format!("now {}", session.name()),
                        Err(e) => e.name().to_string(),
                    }
                } else if let Some(name) = text.strip_prefix("find ") {
                    match session.server().find_session(name) {
                        Some(found) => format!("found #{}", found.id()),
                        None => "nobody".to_string(),
                    }
                } else {
                    return;
                };
                session.send_text(&reply).unwrap();
            })
            .unwrap();
    });
    let mut a = Client::connect(running.port);
    let ping = a.recv();
    assert_eq!(
        (ping.opcode, ping.payload.as_slice()),
        (PING, &b"heartbeat"[..])
    );
    a.send(PONG, b"heartbeat");
    assert_eq!(a.recv().text(), "pong heartbeat");

    a.send_text("nick alice");
    assert_eq!(a.recv().text(), "now alice");
    let mut b = Client::connect(running.port);
    assert_eq!(b.recv().opcode, PING);
    b.send_text("nick ALICE");
    assert_eq!(b.recv().text(), "WSCHAT_ENAMETAKEN");
    b.send_text("nick bad name");
    assert_eq!(b.recv().text(), "WSCHAT_EINVAL");
    b.send_text("find Alice");
    assert_eq!(b.recv().text(), "found #1");
    b.send_text("find carol");
    assert_eq!(b.recv().text(), "nobody");
}
