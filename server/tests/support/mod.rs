//! Test harness: starts the real `broker` and `server` binaries on ephemeral ports and
//! talks to them over real TCP, like any client would.
//!
//! Every wait has a deadline; nothing sleeps in place of a condition.

#![allow(dead_code)] // each test file uses a different part of the harness

pub mod netns;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub use testkit::*;

/// One line from `reader`, or `None` on EOF, error or after `timeout`.
fn read_line_within(
    stream: &TcpStream,
    reader: &mut BufReader<TcpStream>,
    timeout: Duration,
) -> Option<String> {
    stream.set_read_timeout(Some(timeout)).expect("timeout");
    let mut line = String::new();
    match reader.read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line),
    }
}

/// A client of the JSON port, reading one frame per line (the server ends each with `\n`).
pub struct JsonClient {
    pub stream: TcpStream,
    reader: BufReader<TcpStream>,
    pub name: String,
}

impl JsonClient {
    /// Connects without logging in.
    pub fn connect(addr: SocketAddr) -> JsonClient {
        JsonClient::from_stream(TcpStream::connect(addr).expect("connect"))
    }

    /// Wraps a connected stream (not logged in).
    pub fn from_stream(stream: TcpStream) -> JsonClient {
        stream.set_nodelay(true).expect("nodelay");
        let reader = BufReader::new(stream.try_clone().expect("clone"));
        JsonClient {
            stream,
            reader,
            name: String::new(),
        }
    }

    /// Connects and sends the raw name the way the seed clients do; returns the client and
    /// its first frame.
    pub fn login_raw(addr: SocketAddr, raw: &[u8]) -> (JsonClient, Value) {
        let mut c = JsonClient::connect(addr);
        c.stream.write_all(raw).expect("write");
        c.name = String::from_utf8_lossy(raw).trim().to_string();
        let first = c.recv().expect("a first frame");
        (c, first)
    }

    /// Logs in as `name` and checks the welcome.
    pub fn login(addr: SocketAddr, name: &str) -> JsonClient {
        let (c, welcome) = JsonClient::login_raw(addr, name.as_bytes());
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        assert!(
            welcome["msg"]
                .as_str()
                .unwrap_or("")
                .contains(&format!("Welcome {name}")),
            "{welcome}"
        );
        c
    }

    /// Sends raw bytes.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Sends a frame the way the class-chat clients build it.
    pub fn send(&mut self, to: &str, msg: &str) {
        let frame = json!({"from": {"name": self.name, "ip": "0.0.0.0"}, "to": to, "msg": msg});
        self.send_raw(frame.to_string().as_bytes());
    }

    /// The next frame, or `None` on EOF or after `timeout`.
    pub fn recv_within(&mut self, timeout: Duration) -> Option<Value> {
        let line = read_line_within(&self.stream, &mut self.reader, timeout)?;
        Some(serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad frame {line:?}: {e}")))
    }

    /// The next frame within [`TIMEOUT`].
    pub fn recv(&mut self) -> Option<Value> {
        self.recv_within(TIMEOUT)
    }

    /// Skips frames until one satisfies `pred`; panics after [`TIMEOUT`].
    pub fn recv_until(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "{}: timed out waiting for {what}",
                self.name
            );
            match self.recv_within(left) {
                Some(v) if pred(&v) => return v,
                Some(_) => {}
                None => panic!("{}: connection ended while waiting for {what}", self.name),
            }
        }
    }

    /// Waits for a frame of `type` `kind`.
    pub fn recv_type(&mut self, kind: &str) -> Value {
        self.recv_until(kind, |v| v["type"] == kind)
    }

    /// Asserts the server closes the connection (after any frames) within [`TIMEOUT`];
    /// returns the frames received before the close.
    pub fn expect_closed(&mut self) -> Vec<Value> {
        let deadline = Instant::now() + TIMEOUT;
        let mut frames = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "{}: connection not closed in time",
                self.name
            );
            self.stream.set_read_timeout(Some(left)).expect("timeout");
            let mut line = String::new();
            match self.reader.read_line(&mut line) {
                Ok(0) => return frames,
                Ok(_) => frames.push(serde_json::from_str(&line).unwrap_or(Value::String(line))),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return frames,
                Err(e) => panic!("{}: waiting for close: {e}", self.name),
            }
        }
    }

    /// Asserts that nothing arrives within `quiet`.
    pub fn expect_silence(&mut self, quiet: Duration) {
        if let Some(v) = self.recv_within(quiet) {
            panic!("{}: expected nothing, got {v}", self.name);
        }
    }

    /// Half-closes the write side.
    pub fn shutdown_write(&self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }
}

/// A client of the line port.
pub struct LineClient {
    pub stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl LineClient {
    /// Connects and reads the nickname prompt.
    pub fn connect(addr: SocketAddr) -> LineClient {
        let mut c = LineClient::connect_raw(addr);
        let prompt = c.read_prompt();
        assert!(prompt.contains("nickname"), "{prompt:?}");
        c
    }

    /// Connects without reading anything.
    pub fn connect_raw(addr: SocketAddr) -> LineClient {
        let stream = TcpStream::connect(addr).expect("connect");
        let reader = BufReader::new(stream.try_clone().expect("clone"));
        LineClient { stream, reader }
    }

    /// Connects and logs in as `name`; returns the client and the welcome line.
    pub fn login(addr: SocketAddr, name: &str) -> (LineClient, String) {
        let mut c = LineClient::connect(addr);
        c.send(name);
        let welcome = c.recv().expect("welcome line");
        assert!(welcome.contains(&format!("Welcome {name}")), "{welcome:?}");
        (c, welcome)
    }

    /// Reads the prompt, which has no newline: everything up to `: `.
    pub fn read_prompt(&mut self) -> String {
        self.stream
            .set_read_timeout(Some(TIMEOUT))
            .expect("timeout");
        let mut got = Vec::new();
        let mut byte = [0u8; 1];
        while !got.ends_with(b": ") {
            match self.reader.read(&mut byte) {
                Ok(1) => got.push(byte[0]),
                _ => break,
            }
        }
        String::from_utf8_lossy(&got).into_owned()
    }

    /// Sends one line.
    pub fn send(&mut self, line: &str) {
        self.stream
            .write_all(format!("{line}\r\n").as_bytes())
            .expect("write");
    }

    /// The next line without its `\r\n`, or `None` on EOF / timeout.
    pub fn recv_within(&mut self, timeout: Duration) -> Option<String> {
        let line = read_line_within(&self.stream, &mut self.reader, timeout)?;
        Some(line.trim_end_matches(['\r', '\n']).to_string())
    }

    /// The next line within [`TIMEOUT`].
    pub fn recv(&mut self) -> Option<String> {
        self.recv_within(TIMEOUT)
    }

    /// Skips lines until one contains `needle`.
    pub fn recv_containing(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "timed out waiting for a line containing {needle:?}"
            );
            match self.recv_within(left) {
                Some(l) if l.contains(needle) => return l,
                Some(_) => {}
                None => panic!("connection ended while waiting for {needle:?}"),
            }
        }
    }
}

/// The `msg` of a frame as text.
pub fn msg(v: &Value) -> &str {
    v["msg"].as_str().unwrap_or("")
}

/// The `users` field of a frame as names.
pub fn users(v: &Value) -> Vec<String> {
    v["users"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|u| u.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Skips frames until one satisfies `pred`, failing once `deadline` has passed.
pub fn recv_until_by(
    c: &mut JsonClient,
    deadline: Instant,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "{}: timed out waiting for {what}", c.name);
        match c.recv_within(left) {
            Some(v) if pred(&v) => return v,
            Some(_) => {}
            None => panic!(
                "{}: connection ended (or timed out) waiting for {what}",
                c.name
            ),
        }
    }
}

/// After her server came back to the chat (a broker restart, a thaw, a healed
/// partition): `alice`, who stayed connected, is told it is back, and `bob`, on another
/// server, hears her privately.
pub fn told_back_and_heard(alice: &mut JsonClient, bob: &mut JsonClient) {
    alice.recv_until("the 'back' notice", |v| {
        v["type"] == "system" && msg(v).contains("back")
    });
    alice.send(&bob.name.clone(), "still here");
    let p = bob.recv_type("private");
    assert_eq!(
        (p["from"]["name"].as_str(), msg(&p)),
        (Some(alice.name.as_str()), "still here")
    );
}

/// Waits until `c` has seen `kind` (join/leave) notices for every name in `names`.
pub fn await_presence(c: &mut JsonClient, kind: &str, names: &[&str], within: Duration) {
    let deadline = Instant::now() + within;
    let mut missing: BTreeSet<String> = names.iter().map(|s| s.to_string()).collect();
    while !missing.is_empty() {
        let f = recv_until_by(c, deadline, &format!("{kind} of {missing:?}"), |v| {
            v["type"] == kind
        });
        let user = f["user"].as_str().unwrap_or_default().to_string();
        assert!(
            f["from"]["name"] == "SERVER" && f["to"] == "Everyone",
            "presence notices come from SERVER to Everyone: {f}"
        );
        assert!(msg(&f).contains(&user), "the text names the user: {f}");
        missing.remove(&user);
    }
}
