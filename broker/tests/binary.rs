//! The `broker` binary itself, started by testkit: its flags, the `listening on` line
//! scripts and tests read, and a clean exit on SIGTERM. Everything else is tested
//! in-process (`tests/link.rs`).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;

use bytes::BytesMut;
use chat_common::link::{self, LINK_VERSION, LinkDecoder, ToBroker, ToServer};
use tokio_util::codec::Decoder;

#[test]
fn help_lists_the_flags() {
    let out = Command::new(testkit::bin("broker"))
        .arg("--help")
        .output()
        .expect("run");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--listen",
        "--link-queue-bytes",
        "--heartbeat-ms",
        "CHAT_BROKER_LISTEN",
    ] {
        assert!(text.contains(flag), "--help lacks {flag}:\n{text}");
    }
}

/// The next link message on a blocking socket; `None` when the broker closes it.
fn next(stream: &mut TcpStream, buf: &mut BytesMut) -> Option<ToServer> {
    let mut dec = LinkDecoder::<ToServer>::new(1 << 20);
    loop {
        if let Some(m) = dec.decode(buf).expect("valid link message") {
            return Some(m);
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).expect("read (timed out?)");
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[test]
fn the_binary_prints_its_address_serves_links_and_exits_cleanly_on_sigterm() {
    // testkit reads the `listening on` line and gives the binary its test token.
    let (mut proc, addr) = testkit::broker(&["--heartbeat-ms", "10000"]);
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(testkit::TIMEOUT))
        .expect("timeout");
    let hello = ToBroker::Hello {
        label: "test".into(),
        version: LINK_VERSION,
        token: Some(testkit::TEST_TOKEN.into()),
        heartbeat_ms: None,
    };
    stream.write_all(&link::encode(&hello)).expect("write");
    let mut buf = BytesMut::new();
    assert!(
        matches!(next(&mut stream, &mut buf), Some(ToServer::Hello { ref users, .. }) if users.is_empty())
    );
    proc.signal(libc::SIGTERM);
    loop {
        match next(&mut stream, &mut buf) {
            None => break,
            Some(ToServer::Stable { .. } | ToServer::Pong) => {}
            other => panic!("expected the link to close, got {other:?}"),
        }
    }
    assert_eq!(proc.wait_exit(), Some(0), "a clean exit");
}

/// A valid link handshake with the broker at `addr`, within the test timeout.
fn handshake(addr: std::net::SocketAddr) -> Option<ToServer> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(testkit::TIMEOUT)).ok()?;
    let hello = ToBroker::Hello {
        label: "test".into(),
        version: LINK_VERSION,
        token: Some(testkit::TEST_TOKEN.into()),
        heartbeat_ms: None,
    };
    stream.write_all(&link::encode(&hello)).ok()?;
    let (mut buf, mut dec) = (BytesMut::new(), LinkDecoder::<ToServer>::new(1 << 20));
    loop {
        if let Some(m) = dec.decode(&mut buf).ok()? {
            return Some(m);
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// A broker process that is killed when the test ends, passed or failed.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_stderr_nobody_reads_never_stops_the_broker() {
    use std::io::BufRead;
    use std::process::Stdio;
    // stderr is a pipe this test never reads: once its buffer (64 KiB) is full, a logger
    // that waits for room would stop the broker for good.
    let mut child = Command::new(testkit::bin("broker"))
        .args(["--listen", "127.0.0.1:0", "--token", testkit::TEST_TOKEN])
        .args(["--history", "off"])
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let _stderr_never_read = child.stderr.take();
    let stdout = child.stdout.take();
    let _child = Killed(child);
    let mut line = String::new();
    std::io::BufReader::new(stdout.expect("stdout"))
        .read_line(&mut line)
        .expect("read");
    let addr: std::net::SocketAddr = line
        .trim()
        .strip_prefix("listening on ")
        .expect("the listening line")
        .parse()
        .expect("address");
    // Every refused link is logged: 1,000 of them write far more than the pipe holds. (A
    // wrong version, which is answered at once; a wrong token is answered after a pause.)
    for i in 0..1000 {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(testkit::TIMEOUT)).expect("timeout");
        let hello = ToBroker::Hello {
            label: format!("intruder {i}"),
            version: LINK_VERSION + 1,
            token: None,
            heartbeat_ms: None,
        };
        s.write_all(&link::encode(&hello)).expect("write");
        let mut buf = BytesMut::new();
        assert!(
            matches!(next(&mut s, &mut buf), Some(ToServer::Rejected { .. })),
            "try {i}: the broker stopped answering"
        );
    }
    assert!(
        matches!(handshake(addr), Some(ToServer::Hello { .. })),
        "a real server still gets in"
    );
}

#[test]
fn a_closed_stdout_never_stops_the_broker() {
    let addr = testkit::free_addr();
    let listen = addr.to_string();
    let args = ["--listen", &listen, "--token", testkit::TEST_TOKEN];
    let mut proc = testkit::Proc::start_with_closed_stdout("broker", &args);
    let deadline = std::time::Instant::now() + testkit::TIMEOUT;
    let answer = loop {
        if let Some(a) = handshake(addr) {
            break Some(a);
        }
        if std::time::Instant::now() > deadline || !proc.is_running() {
            break None;
        }
        std::thread::yield_now();
    };
    assert!(proc.is_running(), "the broker exited");
    assert!(matches!(answer, Some(ToServer::Hello { .. })), "{answer:?}");
}

/// Starts the broker on `dir` and returns its exit status and what it printed on stderr.
fn start_on(dir: &std::path::Path) -> (Option<i32>, String) {
    let out = Command::new(testkit::bin("broker"))
        .args(["--listen", "127.0.0.1:0", "--token", testkit::TEST_TOKEN])
        .arg("--data-dir")
        .arg(dir)
        .output()
        .expect("run");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_damaged_history_or_one_in_use_stops_the_broker_with_the_file_named() {
    let dir = tempfile::tempdir().expect("a directory");
    let file = dir.path().join("history.sqlite3");
    let notes = b"not a database at all, and nobody's to replace".repeat(50);
    std::fs::write(&file, &notes).expect("write");
    let (code, err) = start_on(dir.path());
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("history.sqlite3") && err.contains("damaged"),
        "{err}"
    );
    assert_eq!(std::fs::read(&file).expect("read"), notes, "left as it was");

    // A second broker on the directory of a running one.
    let shared = tempfile::tempdir().expect("a directory");
    let path = shared.path().to_str().expect("utf-8");
    let (_first, _) = testkit::Proc::start(
        "broker",
        &["--listen", "127.0.0.1:0", "--data-dir", path],
        1,
    );
    let (code, err) = start_on(shared.path());
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("in use by another broker"), "{err}");
}
