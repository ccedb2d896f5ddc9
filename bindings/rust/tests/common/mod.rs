//! What the tests share: a minimal WebSocket client on std::net (RFC 6455
//! handshake with a fixed key, masked frames) and a server running on a
//! thread of its own.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use wschat::{Server, StopHandle};

/// RFC 6455's sample key and the Sec-WebSocket-Accept it must produce.
pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
pub const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
pub const PONG: u8 = 0xA;

const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

pub struct Client {
    reader: BufReader<TcpStream>,
    stream: TcpStream,
    /// The handshake response head, status line first.
    pub response: String,
}

pub struct Frame {
    pub opcode: u8,
    pub payload: Vec<u8>,
}

impl Frame {
    pub fn text(&self) -> String {
        assert_eq!(self.opcode, TEXT, "expected a text frame");
        String::from_utf8(self.payload.clone()).expect("UTF-8")
    }

    /// (code, reason) of a close frame.
    pub fn close(&self) -> (u16, String) {
        assert_eq!(self.opcode, CLOSE, "expected a close frame");
        assert!(self.payload.len() >= 2, "close frame without a code");
        let code = u16::from_be_bytes([self.payload[0], self.payload[1]]);
        (code, String::from_utf8(self.payload[2..].to_vec()).unwrap())
    }
}

fn open(port: u16) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

impl Client {
    /// Upgrade on "/"; panics unless the answer is 101 with the right
    /// accept value.
    pub fn connect(port: u16) -> Client {
        let client = Client::handshake(port, "/", "");
        assert!(
            client.response.starts_with("HTTP/1.1 101 "),
            "{}",
            client.response
        );
        let accept = header(&client.response, "Sec-WebSocket-Accept");
        assert_eq!(accept.as_deref(), Some(ACCEPT), "{}", client.response);
        client
    }

    /// Send an upgrade request with `extra` header lines and read the
    /// response head, whatever its status.
    pub fn handshake(port: u16, path: &str, extra: &str) -> Client {
        let mut stream = open(port);
        write!(
            stream,
            "GET {} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: {}\r\n\
             Sec-WebSocket-Version: 13\r\n{}\r\n",
            path, port, KEY, extra
        )
        .unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut response = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                break;
            }
            response.push_str(&line);
        }
        Client {
            reader,
            stream,
            response,
        }
    }

    pub fn send(&mut self, opcode: u8, payload: &[u8]) {
        let mut frame = vec![0x80 | opcode];
        let len = payload.len();
        if len < 126 {
            frame.push(0x80 | len as u8);
        } else if len < 65536 {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(len as u64).to_be_bytes());
        }
        frame.extend_from_slice(&MASK);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
        self.stream.write_all(&frame).unwrap();
    }

    pub fn send_text(&mut self, text: &str) {
        self.send(TEXT, text.as_bytes());
    }

    pub fn send_close(&mut self, code: u16, reason: &str) {
        let mut payload = code.to_be_bytes().to_vec();
        payload.extend_from_slice(reason.as_bytes());
        self.send(CLOSE, &payload);
    }

    /// The next frame from the server (which must not mask).
    pub fn recv(&mut self) -> Frame {
        let mut head = [0u8; 2];
        self.reader.read_exact(&mut head).expect("frame header");
        assert_eq!(head[1] & 0x80, 0, "server frames are not masked");
        assert_eq!(head[0] & 0x80, 0x80, "expected a final frame");
        let len = match head[1] & 0x7f {
            126 => {
                let mut b = [0u8; 2];
                self.reader.read_exact(&mut b).unwrap();
                u64::from(u16::from_be_bytes(b))
            }
            127 => {
                let mut b = [0u8; 8];
                self.reader.read_exact(&mut b).unwrap();
                u64::from_be_bytes(b)
            }
            n => u64::from(n),
        };
        let mut payload = vec![0u8; len as usize];
        self.reader.read_exact(&mut payload).unwrap();
        Frame {
            opcode: head[0] & 0x0f,
            payload,
        }
    }

    /// True when the server has closed the TCP connection.
    pub fn at_eof(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.reader.read(&mut b), Ok(0))
    }
}

/// The value of a header in a response head.
pub fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|line| {
        let (n, v) = line.split_once(':')?;
        if n.eq_ignore_ascii_case(name) {
            Some(v.trim().to_string())
        } else {
            None
        }
    })
}

/// A plain HTTP/1.1 request; the whole response, read to EOF.
pub fn http(port: u16, request_head: &str) -> String {
    let mut stream = open(port);
    stream.write_all(request_head.as_bytes()).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    String::from_utf8_lossy(&response).into_owned()
}

/// A server on its own thread, listening on 127.0.0.1 with a free port.
pub struct Running {
    pub port: u16,
    pub stop: StopHandle,
    thread: Option<thread::JoinHandle<(wschat::Result<()>, u64)>>,
}

impl Running {
    /// Build the server on its thread with `setup`, listen and run it.
    pub fn start<F: FnOnce(&mut Server) + Send + 'static>(setup: F) -> Running {
        let (tx, rx) = mpsc::channel();
        let thread = thread::spawn(move || {
            let mut server = Server::new().expect("server");
            setup(&mut server);
            server.listen("127.0.0.1", 0).expect("listen");
            tx.send((server.port().unwrap(), server.stop_handle()))
                .unwrap();
            let result = server.run();
            (result, server.callback_panics())
        });
        let (port, stop) = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("server started");
        Running {
            port,
            stop,
            thread: Some(thread),
        }
    }

    /// Stop through the StopHandle and wait: run()'s result and how many
    /// callbacks panicked. A server whose stop has already completed
    /// answers WSCHAT_ENOTLISTENING.
    pub fn finish(mut self) -> (wschat::Result<()>, u64) {
        if let Err(e) = self.stop.stop() {
            assert_eq!(e.code(), wschat::sys::WSCHAT_ENOTLISTENING, "stop: {:?}", e);
        }
        self.thread.take().unwrap().join().expect("server thread")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = self.stop.stop();
            let _ = thread.join();
        }
    }
}
