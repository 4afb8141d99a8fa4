//! Process lifecycle: `--help`, environment variables, clean shutdown on SIGTERM, and the
//! broker going away and coming back (PROTOCOL.md §6.4, §6.5; README).

mod support;

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;

/// Runs a command to completion, failing if it takes longer than [`TIMEOUT`].
fn run_bounded(mut cmd: Command) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(cmd.output());
    });
    rx.recv_timeout(TIMEOUT)
        .expect("the command did not finish in time")
        .expect("spawn")
}

/// A process started with environment variables instead of flags; killed when dropped.
struct EnvProc {
    child: Child,
}

impl Drop for EnvProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `name` with no arguments and only `env` added to the environment (the test's own
/// `CHAT_*` variables removed); returns the addresses of its first `count` `listening on`
/// lines.
fn start_with_env(name: &str, env: &[(&str, &str)], count: usize) -> (EnvProc, Vec<SocketAddr>) {
    let mut cmd = Command::new(bin(name));
    for (k, _) in std::env::vars() {
        if k.starts_with("CHAT_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let proc = EnvProc { child };
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut addrs = Vec::new();
    while addrs.len() < count {
        let line = rx
            .recv_timeout(TIMEOUT)
            .unwrap_or_else(|_| panic!("{name} printed no listening line"));
        if let Some((_, addr)) = line.split_once("listening on ") {
            addrs.push(addr.trim().parse().expect("address"));
        }
    }
    (proc, addrs)
}

fn is_system_containing(v: &Value, needle: &str) -> bool {
    v["type"] == "system" && msg(v).to_lowercase().contains(needle)
}

#[test]
fn help_works_on_both_binaries() {
    let mut cmd = Command::new(bin("server"));
    cmd.arg("--help");
    let out = run_bounded(cmd);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--listen",
        "--broker",
        "--text-listen",
        "--max-frame",
        "--client-queue-bytes",
        "--heartbeat-ms",
        "CHAT_BROKER",
        "CHAT_LISTEN",
    ] {
        assert!(text.contains(flag), "server --help lacks {flag}:\n{text}");
    }

    let mut cmd = Command::new(bin("broker"));
    cmd.arg("--help");
    let out = run_bounded(cmd);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in ["--listen", "--heartbeat-ms", "CHAT_BROKER_LISTEN"] {
        assert!(text.contains(flag), "broker --help lacks {flag}:\n{text}");
    }

    // An unknown flag is an error, not silently ignored.
    let mut cmd = Command::new(bin("broker"));
    cmd.arg("--no-such-flag");
    let out = run_bounded(cmd);
    assert_ne!(out.status.code(), Some(0), "{out:?}");
}

#[test]
fn sigterm_to_a_server_says_goodbye_closes_and_exits_zero() {
    let (_b, baddr) = broker(&[]);
    let mut a = server(baddr, &[]);
    let b = server(baddr, &[]);
    let mut bob = JsonClient::login(b.json, "bob");
    let mut alice = JsonClient::login(a.json, "alice");
    let mut carol = JsonClient::login(a.json, "carol");
    let (mut dan, _) = LineClient::login(a.text, "dan");
    await_presence(&mut bob, "join", &["alice", "carol", "dan"], TIMEOUT);

    a.proc.signal(libc::SIGTERM);
    for c in [&mut alice, &mut carol] {
        let frames = c.expect_closed();
        assert!(
            frames
                .iter()
                .any(|f| is_system_containing(f, "shutting down")),
            "{}: no shutdown notice before the close: {frames:?}",
            c.name
        );
    }
    dan.recv_containing("shutting down");
    // Then end of stream: read_line gives nothing, and the raw socket reads EOF at once.
    while dan.recv_within(TIMEOUT).is_some() {}
    dan.stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    let mut byte = [0u8; 1];
    assert!(
        matches!(dan.stream.read(&mut byte), Ok(0)),
        "the line client's connection is not closed"
    );

    assert_eq!(
        a.proc.wait_exit(),
        Some(0),
        "a server stopped by SIGTERM exits 0"
    );
    await_presence(&mut bob, "leave", &["alice", "carol", "dan"], TIMEOUT);
    bob.send("/list", "");
    assert_eq!(users(&bob.recv_type("users")), ["bob"]);
}

#[test]
fn sigterm_to_the_broker_exits_zero() {
    let (mut b, baddr) = broker(&[]);
    let s = server(baddr, &[]);
    let mut alice = JsonClient::login(s.json, "alice");
    b.signal(libc::SIGTERM);
    assert_eq!(
        b.wait_exit(),
        Some(0),
        "a broker stopped by SIGTERM exits 0"
    );
    // The server outlives it and tells its clients.
    alice.recv_until("a degraded notice", |v| is_system_containing(v, "degraded"));
    alice.send("/list", "");
    assert_eq!(users(&alice.recv_type("users")), ["alice"]);
}

#[test]
fn sigterm_to_an_idle_server_exits_zero() {
    let (_b, baddr) = broker(&[]);
    let mut s = server(baddr, &[]);
    s.proc.signal(libc::SIGTERM);
    assert_eq!(s.proc.wait_exit(), Some(0));
}

#[test]
fn broker_killed_and_restarted_on_the_same_port() {
    let (mut b, baddr) = broker(&[]);
    let a = server(baddr, &["--heartbeat-ms", "200"]);
    let bs = server(baddr, &["--heartbeat-ms", "200"]);
    let mut alice = JsonClient::login(a.json, "alice");
    let mut carol = JsonClient::login(a.json, "carol");
    let mut bob = JsonClient::login(bs.json, "bob");
    await_presence(&mut alice, "join", &["carol", "bob"], TIMEOUT);

    b.signal(libc::SIGKILL);
    assert_eq!(b.wait_exit(), None, "killed by the signal");

    // Everyone stays connected and is told the chat is degraded.
    for c in [&mut alice, &mut carol, &mut bob] {
        c.recv_until("a degraded notice", |v| is_system_containing(v, "degraded"));
    }
    // A message sent while the broker is down is not dropped silently.
    alice.send("*", "into the void");
    let e = alice.recv_type("error");
    assert!(
        msg(&e).starts_with("Error") && msg(&e).contains("not delivered"),
        "{e}"
    );
    alice.send("bob", "private into the void");
    let e = alice.recv_type("error");
    assert!(msg(&e).contains("not delivered"), "{e}");

    // The broker comes back on the same port; the servers reconnect with backoff.
    let restarted = Instant::now();
    let (_b2, addrs) = Proc::start("broker", &["--listen", &baddr.to_string()], 1);
    assert_eq!(addrs[0], baddr);
    let back = restarted + Duration::from_secs(7);
    for c in [&mut alice, &mut carol, &mut bob] {
        recv_until_by(c, back, "a 'back' notice", |v| {
            is_system_containing(v, "back")
        });
    }

    // Messages flow again, across servers, in both directions.
    alice.send("*", "after the restart");
    for c in [&mut carol, &mut bob] {
        let m = c.recv_type("chat");
        assert_eq!(msg(&m), "after the restart");
        assert_eq!(m["from"]["name"], "alice");
    }
    bob.send("alice", "welcome back");
    let p = alice.recv_type("private");
    assert_eq!(
        (p["from"]["name"].as_str(), msg(&p)),
        (Some("bob"), "welcome back")
    );
    // The void message was never delivered late.
    carol.send("*", "marker");
    let m = bob.recv_type("chat");
    assert_eq!(msg(&m), "marker", "nothing else arrived in between: {m}");

    // The users were re-registered: their names are still taken.
    let (mut dup, first) = JsonClient::login_raw(bs.json, b"alice");
    assert!(msg(&first).contains("already in use"), "{first}");
    dup.expect_closed();
}

#[test]
fn a_frozen_broker_is_noticed_within_two_seconds_and_recovered_from_when_it_thaws() {
    // Default heartbeats (500 ms): a broker silent for 1.5 s is given up on.
    let (b, baddr) = broker(&[]);
    let a = server(baddr, &[]);
    let bs = server(baddr, &[]);
    let mut alice = JsonClient::login(a.json, "alice");
    let mut bob = JsonClient::login(bs.json, "bob");
    await_presence(&mut alice, "join", &["bob"], TIMEOUT);

    // SIGSTOP: the broker's sockets stay open, it just stops answering.
    b.signal(libc::SIGSTOP);
    let frozen = Instant::now();
    for c in [&mut alice, &mut bob] {
        recv_until_by(
            c,
            frozen + Duration::from_secs(2),
            "a degraded notice",
            |v| is_system_containing(v, "degraded"),
        );
    }
    eprintln!("frozen broker noticed after {:?}", frozen.elapsed());
    // Meanwhile a /shout is answered with an error at once, not left hanging.
    alice.send("/shout", "anyone?");
    let e = alice.recv_type("error");
    assert_eq!(e["code"], "not_delivered", "{e}");
    let (mut late, first) = JsonClient::login_raw(a.json, b"late");
    assert_eq!(first["code"], "unavailable", "{first}");
    late.expect_closed();

    // Thawed, it is recovered from as from a restart.
    b.signal(libc::SIGCONT);
    let thawed = Instant::now();
    for c in [&mut alice, &mut bob] {
        recv_until_by(c, thawed + Duration::from_secs(7), "a 'back' notice", |v| {
            is_system_containing(v, "back")
        });
    }
    // Bob's server says "back" as its link comes up, a moment before the broker has his
    // re-registration: until it has, a shout reaches him (his server delivers it) but is
    // counted for nobody. Shout until he is counted.
    let deadline = thawed + Duration::from_secs(7);
    loop {
        alice.send("/shout", "hello again");
        let m = bob.recv_type("chat");
        assert_eq!(msg(&m), "hello again");
        let c = alice.recv_until("the confirmation", |v| {
            msg(v).starts_with("Message sent to")
        });
        if msg(&c) == "Message sent to 1 user" {
            break;
        }
        assert_eq!(msg(&c), "Message sent to 0 users", "{c}");
        assert!(Instant::now() < deadline, "bob was never counted again");
    }
    drop(b);
}

#[test]
fn a_closed_stdout_never_stops_the_server() {
    let (_b, baddr) = broker(&[]);
    let addr = free_addr();
    let (b, listen) = (baddr.to_string(), addr.to_string());
    let args = [
        "--broker",
        &b,
        "--listen",
        &listen,
        "--text-listen",
        "off",
        "--token",
        TEST_TOKEN,
    ];
    // Nobody will ever read its `listening on` line: printing it must not kill it.
    let mut proc = Proc::start_with_closed_stdout("server", &args);
    let deadline = Instant::now() + TIMEOUT;
    let welcome = loop {
        if let Ok(stream) = std::net::TcpStream::connect(addr) {
            let mut c = JsonClient::from_stream(stream);
            c.send_raw(b"alice\n");
            if let Some(first) = c.recv() {
                break Some(first);
            }
        }
        if Instant::now() > deadline || !proc.is_running() {
            break None;
        }
        std::thread::yield_now();
    };
    assert!(proc.is_running(), "the server exited");
    let welcome = welcome.expect("a welcome");
    assert_eq!(welcome["type"], "welcome", "{welcome}");
}

#[test]
fn a_server_with_the_wrong_link_token_is_refused_and_says_why() {
    let (_b, baddr) = broker(&[]);
    let mut cmd = Command::new(bin("server"));
    cmd.args(["--broker", &baddr.to_string(), "--listen", "127.0.0.1:0"])
        .args(["--text-listen", "off", "--token", "not-the-token"])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    let proc = EnvProc { child };
    let (tx, rx) = mpsc::channel();
    for (out, stream) in [
        ("stdout", Box::new(stdout) as Box<dyn Read + Send>),
        ("stderr", Box::new(stderr)),
    ] {
        let tx = tx.clone();
        thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if tx.send((out, line)).is_err() {
                    break;
                }
            }
        });
    }
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let (out, line) = rx
            .recv_timeout(left)
            .expect("the server should log the broker's refusal");
        assert_ne!(
            out, "stdout",
            "a refused server must not accept clients: {line}"
        );
        if line.contains("refused the link") {
            assert!(line.contains("link token"), "{line}");
            break;
        }
    }
    drop(proc);
    // A server with the right token (testkit's) still joins.
    let s = server(baddr, &[]);
    let _alice = JsonClient::login(s.json, "alice");
}

#[test]
fn broker_listen_address_from_the_environment() {
    let (_b, addrs) = start_with_env(
        "broker",
        &[
            ("CHAT_BROKER_LISTEN", "127.0.0.1:0"),
            ("CHAT_TOKEN", TEST_TOKEN),
        ],
        1,
    );
    let baddr = addrs[0];
    assert!(baddr.ip().is_loopback() && baddr.port() != 0, "{baddr}");
    // It really is a working broker.
    let s = server(baddr, &[]);
    let _alice = JsonClient::login(s.json, "alice");
}

#[test]
fn server_addresses_from_the_environment() {
    let (_b, baddr) = broker(&[]);
    let broker_addr = baddr.to_string();
    let (_s, addrs) = start_with_env(
        "server",
        &[
            ("CHAT_BROKER", broker_addr.as_str()),
            ("CHAT_LISTEN", "127.0.0.1:0"),
            ("CHAT_TEXT_LISTEN", "127.0.0.1:0"),
            ("CHAT_TOKEN", TEST_TOKEN),
        ],
        2,
    );
    assert!(
        addrs.iter().all(|a| a.ip().is_loopback() && a.port() != 0),
        "{addrs:?}"
    );
    let mut alice = JsonClient::login(addrs[0], "alice");
    let (_bob, _) = LineClient::login(addrs[1], "bob");
    alice.recv_until("bob's join", |v| v["type"] == "join" && v["user"] == "bob");
}

#[test]
fn the_broker_creates_the_token_file_and_a_server_reads_it() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("chat-token-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let file = dir.join("chat").join("link-token");
    let file_s = file.to_str().expect("utf-8 path").to_string();
    let (_b, addrs) = start_with_env(
        "broker",
        &[
            ("CHAT_BROKER_LISTEN", "127.0.0.1:0"),
            ("CHAT_TOKEN_FILE", &file_s),
        ],
        1,
    );
    let token = std::fs::read_to_string(&file).expect("the broker wrote the token file");
    assert_eq!(token.trim().len(), 64, "{token:?}");
    let mode = std::fs::metadata(&file).expect("meta").permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "only the owner may read the token");
    let broker_addr = addrs[0].to_string();
    let (_s, saddrs) = start_with_env(
        "server",
        &[
            ("CHAT_BROKER", broker_addr.as_str()),
            ("CHAT_LISTEN", "127.0.0.1:0"),
            ("CHAT_TEXT_LISTEN", "off"),
            ("CHAT_TOKEN_FILE", &file_s),
        ],
        1,
    );
    let _alice = JsonClient::login(saddrs[0], "alice");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_name_taken_while_the_broker_was_down_logs_the_late_owner_out_with_a_reason() {
    let beat = ["--heartbeat-ms", "200"];
    let (mut b, baddr) = broker(&beat);
    let a = server(baddr, &beat);
    let bs = server(baddr, &beat);
    let mut alice = JsonClient::login(a.json, "alice");
    let _bob = JsonClient::login(bs.json, "bob");

    // Server A is frozen across the broker's restart, so B re-joins first...
    a.proc.signal(libc::SIGSTOP);
    b.signal(libc::SIGKILL);
    assert_eq!(b.wait_exit(), None);
    let (_b2, addrs) = Proc::start(
        "broker",
        &["--listen", &baddr.to_string(), beat[0], beat[1]],
        1,
    );
    assert_eq!(addrs[0], baddr);
    // ...and someone else takes the name "alice" there.
    let deadline = Instant::now() + TIMEOUT;
    let _impostor = loop {
        let (mut c, first) = JsonClient::login_raw(bs.json, b"alice");
        if first["type"] == "welcome" {
            break c;
        }
        assert!(Instant::now() < deadline, "B never came back: {first}");
        c.expect_closed();
        thread::sleep(Duration::from_millis(50));
    };
    // A thaws, reconnects, tries to re-register its alice, and tells her why she is out.
    a.proc.signal(libc::SIGCONT);
    let frames = alice.expect_closed();
    let last = frames.last().expect("a reason");
    assert_eq!(last["type"], "error", "{last}");
    assert!(
        msg(last).contains("already in use")
            && msg(last).contains("while the chat service was down"),
        "{last}"
    );
}
