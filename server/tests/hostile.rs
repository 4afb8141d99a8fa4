//! Hostile or careless clients against the real binaries: flooding (rate limits), and
//! what happens to everyone else meanwhile.

mod support;

use serde_json::{Value, json};
use support::*;
use testkit::inproc::{broker, server, system};

/// `n` public frames glued together in one write, numbered from 0.
fn flood(c: &mut JsonClient, n: usize) {
    let mut bytes = Vec::new();
    for i in 0..n {
        let f = json!({"from": {"name": c.name, "ip": "x"}, "to": "*", "msg": format!("f{i}")});
        bytes.extend_from_slice(f.to_string().as_bytes());
    }
    c.send_raw(&bytes);
}

fn is_rate_error(v: &Value) -> bool {
    v["type"] == "error" && msg(v).contains("rate limit exceeded")
}

#[test]
fn messages_over_the_rate_are_refused_with_an_error_and_the_client_stays() {
    let (_b, addr) = broker(&[]);
    // One token a second after a burst of 5: a flood of 12 in one write lets 5 through.
    let s = server(addr, &["--rate-limit", "1", "--rate-burst", "5"]);
    let mut alice = JsonClient::login(s.json, "alice");
    let mut bob = JsonClient::login(s.json, "bob");
    alice.recv_type("join");
    flood(&mut alice, 12);
    for i in 0..5 {
        assert_eq!(msg(&bob.recv_type("chat")), format!("f{i}"));
    }
    for _ in 0..7 {
        let e = alice.recv_until("a rate error", |v| v["type"] == "error");
        assert!(is_rate_error(&e), "{e}");
        assert!(msg(&e).contains("not delivered"), "{e}");
    }
    // Nothing else got through, and alice is still connected: bob's message reaches her.
    bob.send("*", "still there?");
    assert_eq!(msg(&alice.recv_type("chat")), "still there?");
    let next = bob.recv_within(std::time::Duration::from_millis(300));
    assert!(next.is_none(), "a refused message was delivered: {next:?}");
}

#[test]
fn a_client_that_keeps_flooding_is_disconnected_and_leaves() {
    let (_b, addr) = broker(&[]);
    let s = server(
        addr,
        &[
            "--rate-limit",
            "1",
            "--rate-burst",
            "2",
            "--rate-kick-after",
            "5",
        ],
    );
    let mut bob = JsonClient::login(s.json, "bob");
    let mut mallory = JsonClient::login(s.json, "mallory");
    bob.recv_type("join");
    flood(&mut mallory, 50);
    let frames = mallory.expect_closed();
    let refused = frames.iter().filter(|v| is_rate_error(v)).count();
    assert_eq!(refused, 4, "four refusals, then the kick: {frames:?}");
    let last = frames.last().expect("a last frame");
    assert!(
        msg(last).contains("disconnected: too many messages"),
        "{last}"
    );
    // Bob got the two messages within the burst, then mallory's leave, nothing more.
    assert_eq!(msg(&bob.recv_type("chat")), "f0");
    assert_eq!(msg(&bob.recv_type("chat")), "f1");
    let next = bob.recv_until("mallory's leave", |v| {
        v["type"] == "leave" || v["type"] == "chat"
    });
    assert_eq!(next["type"], "leave", "{next}");
    assert_eq!(next["user"], "mallory");
    // Her name is free again.
    let _mallory2 = JsonClient::login(s.json, "mallory");
}

#[test]
fn the_line_port_is_rate_limited_too() {
    let (_b, addr) = broker(&[]);
    let s = server(addr, &["--rate-limit", "1", "--rate-burst", "3"]);
    let mut bob = JsonClient::login(s.json, "bob");
    let (mut carol, _) = LineClient::login(s.text, "carol");
    bob.recv_type("join");
    let lines: String = (0..6).map(|i| format!("line{i}\r\n")).collect();
    use std::io::Write;
    carol.stream.write_all(lines.as_bytes()).expect("write");
    for i in 0..3 {
        assert_eq!(msg(&bob.recv_type("chat")), format!("line{i}"));
    }
    for _ in 0..3 {
        carol.recv_containing("rate limit exceeded");
    }
}

#[test]
fn rate_limit_off_lets_a_burst_through() {
    let (_b, addr) = broker(&[]);
    let s = server(addr, &["--rate-limit", "off"]);
    let mut alice = JsonClient::login(s.json, "alice");
    let mut bob = JsonClient::login(s.json, "bob");
    alice.recv_type("join");
    flood(&mut alice, 500);
    for i in 0..500 {
        assert_eq!(msg(&bob.recv_type("chat")), format!("f{i}"));
    }
}

#[test]
fn a_bad_rate_setting_is_refused_at_startup() {
    let out = std::process::Command::new(bin("server"))
        .args(["--rate-limit", "fast"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("'off'"), "{err}");
}

/// Connects from a chosen loopback address (127.0.0.0/8 is all ours on Linux).
fn connect_from(source: [u8; 4], addr: std::net::SocketAddr) -> JsonClient {
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    socket
        .bind(&std::net::SocketAddr::from((source, 0)).into())
        .expect("bind source");
    socket.connect(&addr.into()).expect("connect");
    JsonClient::from_stream(socket.into())
}

fn refused_with(c: &mut JsonClient, needle: &str) {
    let frames = c.expect_closed();
    let first = frames.first().unwrap_or_else(|| panic!("no refusal frame"));
    assert_eq!(first["type"], "error", "{first}");
    assert!(msg(first).contains(needle), "{first}");
    assert_eq!(frames.len(), 1, "just the refusal: {frames:?}");
}

#[test]
fn connections_over_the_per_address_limit_are_refused_politely() {
    let (_b, addr) = broker(&[]);
    let s = server(addr, &["--max-conns-per-ip", "2"]);
    let _a = JsonClient::login(s.json, "a");
    let b = JsonClient::login(s.json, "b");
    // The third from 127.0.0.1 is refused, before it even sends a name, and on the line
    // port too (the limit counts both ports).
    let mut third = JsonClient::connect(s.json);
    refused_with(&mut third, "too many connections from 127.0.0.1 (2)");
    let mut line = LineClient::connect_raw(s.text);
    let first = line.recv().expect("a refusal line");
    assert!(
        first.contains("too many connections from 127.0.0.1"),
        "{first}"
    );
    assert!(line.recv().is_none(), "closed after the refusal");
    // Another address is not affected.
    let mut other = connect_from([127, 0, 0, 2], s.json);
    other.send_raw(b"c");
    assert_eq!(other.recv().expect("welcome")["type"], "welcome");
    // A place comes free when a client leaves.
    drop(b);
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        let (mut c, first) = JsonClient::login_raw(s.json, b"d");
        if first["type"] == "welcome" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "b's place never came free: {first}"
        );
        c.expect_closed();
    }
}

#[test]
fn connections_over_the_total_limit_are_refused_politely() {
    let (_b, addr) = broker(&[]);
    let s = server(addr, &["--max-conns", "2", "--max-conns-per-ip", "0"]);
    let _a = JsonClient::login(s.json, "a");
    let _b2 = connect_from([127, 0, 0, 3], s.json);
    let mut third = connect_from([127, 0, 0, 4], s.json);
    refused_with(&mut third, "the server is full (2 connections)");
}

#[test]
fn an_idle_timeout_drops_silent_clients_only_and_frees_their_names() {
    let (_b, addr) = broker(&[]);
    let s = server(addr, &["--idle-timeout-ms", "500"]);
    let mut alice = JsonClient::login(s.json, "alice");
    let mut bob = JsonClient::login(s.json, "bob");
    // Bob keeps talking (a /time every 100 ms) while alice says nothing.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let talker = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut answers = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                bob.send("/time", "");
                bob.recv_until("the time", |v| v["type"] == "system");
                answers += 1;
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            (bob, answers)
        })
    };
    let frames = alice.expect_closed();
    let last = frames.last().expect("a reason");
    assert!(
        msg(last).contains("disconnected: nothing received for 0.5 s"),
        "{last}"
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut bob, answers) = talker.join().expect("talker");
    assert!(answers >= 3, "bob kept talking: {answers}");
    let leave = bob.recv_type("leave");
    assert_eq!(leave["user"], "alice");
    let _alice2 = JsonClient::login(s.json, "alice");
}

/// Writes `bytes` one at a time with `gap` between them (what irctest's buffering tests do).
fn trickle(stream: &mut std::net::TcpStream, bytes: &[u8], gap: std::time::Duration) {
    use std::io::Write;
    for b in bytes {
        stream.write_all(&[*b]).expect("write");
        std::thread::sleep(gap);
    }
}

#[test]
fn byte_by_byte_senders_work_on_both_ports() {
    let (_b, s) = system();
    let mut bob = JsonClient::login(s.json, "bob");
    let ms = std::time::Duration::from_millis;

    // JSON port: a terminated name within the login grace, then a frame whose UTF-8
    // characters are split across writes, with gaps far longer than the grace.
    let mut alice = JsonClient::connect(s.json);
    trickle(&mut alice.stream, b"alice\n", ms(10));
    let welcome = alice.recv().expect("welcome");
    assert!(msg(&welcome).contains("Welcome alice!"), "{welcome}");
    bob.recv_type("join");
    let frame = r#"{"to":"*","msg":"hé été ✓"}"#;
    trickle(&mut alice.stream, frame.as_bytes(), ms(3));
    assert_eq!(msg(&bob.recv_type("chat")), "hé été ✓");

    // Line port: the nickname and a line, a byte at a time.
    let mut carol = LineClient::connect(s.text);
    trickle(&mut carol.stream, b"carol\r\n", ms(30));
    carol.recv_containing("Welcome carol");
    trickle(&mut carol.stream, "ça va\r\n".as_bytes(), ms(30));
    assert_eq!(msg(&bob.recv_type("chat")), "ça va");
}
