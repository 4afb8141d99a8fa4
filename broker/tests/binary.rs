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
