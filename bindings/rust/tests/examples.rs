//! The example programs run as processes: examples/echo.rs, and
//! examples/readme.rs, which must be the README's Rust example verbatim.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use common::{Client, BINARY, TEXT};

/// A built example: cargo test builds examples next to the test
/// binaries' deps/ directory.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap().join("examples");
    let path = dir.join(name);
    assert!(path.exists(), "{} not built", path.display());
    path
}

/// A child process that is killed if a test fails before it ends.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Start it and read its first stdout line.
fn spawn(name: &str, args: &[&str]) -> (Proc, String) {
    let mut child = Command::new(example(name))
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    (Proc(child), line)
}

fn signal(child: &Proc, name: &str) {
    let status = Command::new("kill")
        .args([name, &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn port_after(line: &str, prefix: &str) -> u16 {
    let rest = line
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("unexpected first line {:?}", line));
    rest.trim_end_matches('\n').parse().unwrap()
}

#[test]
fn echo_example_serves_and_stops_on_sigterm() {
    let (mut child, line) = spawn("echo", &["--host", "127.0.0.1", "--port", "0"]);
    let port = port_after(&line, "echo: listening on 127.0.0.1:");
    let mut client = Client::connect(port);
    client.send_text("through the example");
    let frame = client.recv();
    assert_eq!(frame.opcode, TEXT);
    assert_eq!(frame.text(), "through the example");
    client.send(BINARY, &[0, 1, 2, 3, 254, 255]);
    assert_eq!(client.recv().payload, vec![0, 1, 2, 3, 254, 255]);

    signal(&child, "-TERM");
    assert_eq!(client.recv().close().0, 1001);
    client.send_close(1001, "");
    let status = child.0.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{:?}", status);
}

#[test]
fn echo_example_rejects_bad_options() {
    let out = Command::new(example("echo"))
        .args(["--host", "not-an-address", "--port", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "echo: listen: invalid argument (WSCHAT_EINVAL)\n"
    );
}

fn readme_example() -> String {
    let readme = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    let text = std::fs::read_to_string(readme).unwrap();
    let start = text
        .find("<!-- rust-readme-example:")
        .expect("README has no marked Rust example");
    let rest = &text[start..];
    let code = &rest[rest.find("```rust\n").expect("```rust block") + 8..];
    code[..code.find("```").expect("end of the block")].to_string()
}

#[test]
fn readme_example_is_examples_readme_rs() {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/readme.rs");
    assert_eq!(readme_example(), std::fs::read_to_string(file).unwrap());
}

#[test]
fn readme_example_runs_and_echoes_text() {
    let (mut child, line) = spawn("readme", &["0"]);
    let port = port_after(&line, "listening on port ");
    let mut client = Client::connect(port);
    client.send_text("hello from the README");
    assert_eq!(client.recv().text(), "hello from the README");
    let big = "x".repeat(1 << 20); // the example's raised limit
    client.send_text(&big);
    assert_eq!(client.recv().text(), big);
    client.send(BINARY, b"binary is not echoed");
    client.send_text("still open");
    assert_eq!(client.recv().text(), "still open");
    signal(&child, "-KILL");
    child.0.wait().unwrap();
}

/// A real client: Debian's python3-websockets (a `make deps` package)
/// against the Rust echo example.
#[test]
fn echo_example_talks_to_python_websockets() {
    const SCRIPT: &str = r#"
import asyncio, sys
import websockets

async def main(port):
    async with websockets.connect("ws://127.0.0.1:%d/" % port) as ws:
        await ws.send("héllo from python")
        assert await ws.recv() == "héllo from python"
        await ws.send(bytes(range(256)) * 300)
        assert await ws.recv() == bytes(range(256)) * 300
        await ws.close(code=4000, reason="python done")
        assert ws.close_code == 4000, ws.close_code
    print("python client ok")

asyncio.run(asyncio.wait_for(main(int(sys.argv[1])), 20))
"#;
    let (mut child, line) = spawn("echo", &["--port", "0", "--max-message", "200000"]);
    let port = port_after(&line, "echo: listening on 127.0.0.1:");
    // The client is not ours to sanitize: under `make test-asan` the
    // test runs with the sanitizer runtime preloaded, and LeakSanitizer
    // would report the interpreter's own allocations.
    let out = Command::new("/usr/bin/python3")
        .env_remove("LD_PRELOAD")
        .args(["-c", SCRIPT, &port.to_string()])
        .output()
        .expect("/usr/bin/python3 (make deps installs it)");
    signal(&child, "-TERM");
    let status = child.0.wait().unwrap();
    assert!(
        out.status.success(),
        "python client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "python client ok\n");
    assert_eq!(status.code(), Some(0));
}
