//! Both ports end to end in-process: real connection handlers over in-memory pipes
//! (`tokio::io::duplex`), the in-memory backend, and paused time, so timeouts, grace
//! periods and pauses are checked to the millisecond without waiting for them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chat_common::{ErrorCode, FrameKind, ServerFrame};
use clap::Parser;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, DuplexStream};
use tokio::time::Instant;

use crate::backend::fake::FakeBackend;
use crate::chat::Chat;
use crate::cli::Args;
use crate::conn::{flood, json_port, line_port};
use crate::core::event::Event;
use crate::core::frames::DEGRADED;
use crate::core::hub::Hub;
use crate::ctx::Ctx;
use crate::net::limits::Unnamed;

/// The server's end of an in-memory connection.
type ServerRead = tokio::io::ReadHalf<DuplexStream>;
type ServerWrite = tokio::io::WriteHalf<DuplexStream>;

/// A server core with the in-memory backend, and connections into it.
struct TestServer {
    ctx: Ctx<FakeBackend>,
    next_conn: u64,
}

impl TestServer {
    /// A server with these flags (beyond the defaults).
    fn new(flags: &[&str]) -> TestServer {
        let mut argv = vec!["server", "--token", "t"];
        argv.extend_from_slice(flags);
        let cfg = Args::try_parse_from(argv)
            .expect("flags")
            .config(10_000)
            .expect("config");
        let hub = Arc::new(Hub::new("10.9.9.9".into(), cfg.presence));
        let backend = FakeBackend::up(hub.clone());
        TestServer {
            ctx: {
                let login_timeout = cfg.login_timeout;
                Ctx::new(Chat::new(hub, backend, login_timeout), cfg)
            },
            next_conn: 0,
        }
    }

    fn hub(&self) -> &Hub {
        self.ctx.chat.hub()
    }

    fn peer() -> SocketAddr {
        "192.0.2.7:5000".parse().expect("addr")
    }

    /// A new connection served by `port`'s handler over an in-memory pipe.
    fn connect<F, Fut>(&mut self, port: F) -> Client
    where
        F: FnOnce(ServerRead, ServerWrite, SocketAddr, u64, Unnamed, Ctx<FakeBackend>) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        self.next_conn += 1;
        let (near, far) = tokio::io::duplex(1 << 20);
        let (rd, wr) = tokio::io::split(far);
        let unnamed = Unnamed::default();
        tokio::spawn(port(
            rd,
            wr,
            Self::peer(),
            self.next_conn,
            unnamed,
            self.ctx.clone(),
        ));
        Client::new(near)
    }

    /// A new connection to the JSON port.
    fn json(&mut self) -> Client {
        self.connect(json_port::serve)
    }

    /// A new connection to the line port.
    fn line(&mut self) -> Client {
        self.connect(line_port::serve)
    }

    /// A logged-in JSON client (its welcome read).
    async fn login(&mut self, name: &str) -> Client {
        let mut c = self.json();
        c.send(format!("{name}\n").as_bytes()).await;
        let w = c.frame().await.expect("welcome");
        assert_eq!(w.kind, Some(FrameKind::Welcome), "{w:?}");
        c
    }
}

/// The far end of a connection, as a client sees it.
struct Client {
    rd: BufReader<tokio::io::ReadHalf<DuplexStream>>,
    wr: tokio::io::WriteHalf<DuplexStream>,
}

impl Client {
    fn new(stream: DuplexStream) -> Client {
        let (rd, wr) = tokio::io::split(stream);
        Client {
            rd: BufReader::new(rd),
            wr,
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.wr.write_all(bytes).await.expect("write");
    }

    async fn frame_to(&mut self, to: &str, msg: &str) {
        let f = serde_json::json!({"from": {"name": "x", "ip": "x"}, "to": to, "msg": msg});
        self.send(f.to_string().as_bytes()).await;
    }

    /// The next line the server writes, `None` once it closed.
    async fn line(&mut self) -> Option<String> {
        let mut line = String::new();
        match self.rd.read_line(&mut line).await {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(line),
        }
    }

    /// The next frame, `None` once the server closed.
    async fn frame(&mut self) -> Option<ServerFrame> {
        let line = self.line().await?;
        Some(ServerFrame::parse(line.as_bytes()).expect("a frame"))
    }

    /// Reads what the server wrote without a newline (the line port's prompt).
    async fn read_exact(&mut self, n: usize) -> String {
        let mut buf = vec![0; n];
        self.rd.read_exact(&mut buf).await.expect("read");
        String::from_utf8(buf).expect("utf-8")
    }

    /// Whether the server closed the connection (after whatever is still buffered).
    async fn closed(&mut self) -> bool {
        let mut rest = Vec::new();
        self.rd.read_to_end(&mut rest).await.is_ok()
    }
}

#[tokio::test(start_paused = true)]
async fn a_bare_name_written_in_one_piece_is_taken_at_once() {
    let mut s = TestServer::new(&[]);
    let mut c = s.json();
    let t0 = Instant::now();
    c.send(b"alice").await;
    let w = c.frame().await.expect("welcome");
    assert_eq!(w.kind, Some(FrameKind::Welcome));
    assert!(w.msg.contains("Welcome alice"), "{}", w.msg);
    assert_eq!(w.users.as_deref(), Some(&["alice".to_string()][..]));
    // The seed clients send the bare name in one write and wait for the welcome: it is
    // taken at once, not after the whole grace period (was 50 ms).
    assert_eq!(t0.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn a_bare_name_typed_a_byte_at_a_time_waits_for_the_grace_period() {
    let mut s = TestServer::new(&[]);
    let mut c = s.json();
    let t0 = Instant::now();
    for b in b"alice" {
        c.send(&[*b]).await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let w = c.frame().await.expect("welcome");
    assert!(w.msg.contains("Welcome alice"), "{}", w.msg);
    // The last byte came at 40 ms; the grace (50 ms) runs from there.
    assert_eq!(t0.elapsed(), Duration::from_millis(90));
}

#[tokio::test(start_paused = true)]
async fn a_name_with_a_newline_is_taken_at_once() {
    let mut s = TestServer::new(&[]);
    let mut c = s.json();
    let t0 = Instant::now();
    c.send(b"alice\n").await;
    assert_eq!(
        c.frame().await.expect("welcome").kind,
        Some(FrameKind::Welcome)
    );
    assert_eq!(t0.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn no_name_within_the_login_timeout_is_an_error_then_close() {
    let mut s = TestServer::new(&["--login-timeout-ms", "10000"]);
    let mut c = s.json();
    let t0 = Instant::now();
    let e = c.frame().await.expect("an error frame");
    assert_eq!(t0.elapsed(), Duration::from_secs(10));
    assert_eq!(e.code, Some(ErrorCode::LoginTimeout));
    assert_eq!(e.msg, "Error: no name received within 10 s");
    assert!(c.closed().await);
    assert_eq!(s.hub().local_clients(), 0);
}

#[tokio::test(start_paused = true)]
async fn nothing_is_glued_to_the_welcome() {
    let mut s = TestServer::new(&["--welcome-gap-ms", "50"]);
    let mut c = s.json();
    c.send(br#"alice{"to":"/time"}"#).await;
    let t0 = Instant::now();
    let w = c.frame().await.expect("welcome");
    assert_eq!(w.kind, Some(FrameKind::Welcome));
    let welcome_at = t0.elapsed();
    let time = c.frame().await.expect("the /time answer");
    assert_eq!(time.kind, Some(FrameKind::System));
    assert_eq!(
        t0.elapsed() - welcome_at,
        Duration::from_millis(50),
        "the next frame waits out the gap"
    );
}

#[tokio::test(start_paused = true)]
async fn refusals_carry_their_codes() {
    let mut s = TestServer::new(&[]);
    let _alice = s.login("alice").await;
    for (raw, code, text) in [
        (
            &b"alice\n"[..],
            ErrorCode::NameTaken,
            "Error: the name 'alice' is already in use",
        ),
        (
            b"SERVER\n",
            ErrorCode::NameInvalid,
            "Error: invalid name: the name \"SERVER\" is reserved",
        ),
        (
            b"a b\n",
            ErrorCode::NameInvalid,
            "Error: invalid name: the name contains ' '; use letters, digits and punctuation without spaces",
        ),
    ] {
        let mut c = s.json();
        c.send(raw).await;
        let e = c.frame().await.expect("refusal");
        assert_eq!((e.code, e.msg.as_str()), (Some(code), text));
        assert!(c.closed().await, "closed after a refusal");
    }
}

#[tokio::test(start_paused = true)]
async fn every_error_frame_after_login_has_a_code() {
    let mut s = TestServer::new(&[]);
    let mut c = s.login("alice").await;
    let cases: [(&[u8], ErrorCode); 6] = [
        (br#"{"to":"/nope","msg":""}"#, ErrorCode::UnknownCommand),
        (br#"{"to":"","msg":"x"}"#, ErrorCode::NoRecipient),
        (
            br#"{"to":"zed","msg":"are you there?"}"#,
            ErrorCode::NotOnline,
        ),
        (br#"{"to":"Everyone","msg":"hb"}"#, ErrorCode::NotOnline),
        (b"junk\n", ErrorCode::BadFrame),
        (br#"{"to":5}"#, ErrorCode::BadFrame),
    ];
    for (raw, code) in cases {
        c.send(raw).await;
        let e = c.frame().await.expect("an error");
        assert_eq!(e.kind, Some(FrameKind::Error), "{e:?}");
        assert_eq!(e.code, Some(code), "{}", String::from_utf8_lossy(raw));
        assert!(e.msg.starts_with("Error: "), "{}", e.msg);
    }
    c.frame_to("Everyone", "hb").await;
    assert_eq!(
        c.frame().await.expect("error").msg,
        "Error: user 'Everyone' is not online (to talk to everyone, send to /shout or *)"
    );
}

#[tokio::test(start_paused = true)]
async fn a_shout_reaches_the_others_and_is_confirmed() {
    let mut s = TestServer::new(&[]);
    let mut alice = s.login("alice").await;
    let mut bob = s.login("bob").await;
    assert_eq!(
        alice.frame().await.expect("join").kind,
        Some(FrameKind::Join)
    );
    alice.frame_to("/shout", "hello all").await;
    let got = bob.frame().await.expect("the message");
    assert_eq!(
        (got.kind, got.msg.as_str(), got.from.name.as_str()),
        (Some(FrameKind::Chat), "hello all", "alice")
    );
    assert_eq!(
        got.from.ip, "192.0.2.7",
        "stamped with the real peer address"
    );
    assert_eq!(
        alice.frame().await.expect("confirmation").msg,
        "Message sent to 1 user"
    );
    bob.frame_to("alice", "psst").await;
    let p = alice.frame().await.expect("private");
    assert_eq!((p.kind, p.msg.as_str()), (Some(FrameKind::Private), "psst"));
    assert_eq!(
        s.hub().open_requests(),
        0,
        "everything delivered and closed"
    );
}

#[tokio::test(start_paused = true)]
async fn fifty_frames_in_one_write_are_all_carried_out_at_once() {
    // The defaults (before: 20 answered, 30 "rate limit exceeded").
    let mut s = TestServer::new(&[]);
    let mut c = s.login("alice").await;
    let t0 = Instant::now();
    let burst: String = (0..50).map(|_| r#"{"to":"/time"}"#).collect();
    c.send(burst.as_bytes()).await;
    for i in 0..50 {
        let f = c.frame().await.expect("a frame");
        assert_eq!(
            (f.kind, f.code),
            (Some(FrameKind::System), None),
            "answer {i}: {f:?}"
        );
    }
    // Only the pause after the welcome (PROTOCOL.md §2.3), no wait for a budget.
    assert!(
        t0.elapsed() <= Duration::from_millis(50),
        "{:?}",
        t0.elapsed()
    );
}

/// Public messages of `size` bytes as frames, `n` of them in one string.
fn publics(n: usize, size: usize) -> String {
    (0..n)
        .map(|i| {
            let text = format!("{i:04}{}", "x".repeat(size - 4));
            serde_json::json!({"to": "*", "msg": text}).to_string()
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_flooder_is_slowed_to_its_budget_and_loses_nothing() {
    let (rate, burst) = (10_000.0, 20_000.0);
    let mut s = TestServer::new(&["--flood-rate", "10000", "--flood-burst", "20000"]);
    let mut alice = s.login("alice").await;
    let mut bob = s.login("bob").await;
    alice.frame().await.expect("bob's join");
    let flood = publics(100, 1000);
    let t0 = Instant::now();
    alice.send(flood.as_bytes()).await;
    for i in 0..100 {
        let f = bob.frame().await.expect("a message");
        assert_eq!(f.kind, Some(FrameKind::Chat), "{f:?}");
        assert!(
            f.msg.starts_with(&format!("{i:04}")),
            "in order, none lost: {i}"
        );
    }
    // Each message costs what was read for it and its frame to the one other user.
    let per_message = flood.len() as f64 / 100.0 + (flood::FRAME_OVERHEAD + 5 + 1000) as f64;
    let expected = (100.0 * per_message - burst) / rate;
    let took = t0.elapsed().as_secs_f64();
    assert!(
        took > 0.85 * expected && took < 1.05 * expected,
        "held back {took:.2} s, budget says {expected:.2} s"
    );
    // Nothing was refused: the flooder got no error frame either.
    bob.frame_to("alice", "done?").await;
    let f = alice.frame().await.expect("a frame");
    assert_eq!(
        (f.kind, f.msg.as_str()),
        (Some(FrameKind::Private), "done?")
    );
}

#[tokio::test(start_paused = true)]
async fn blank_lines_cost_something_too() {
    // 100 items a second: 300 blank lines are three seconds of budget, not free.
    let mut s = TestServer::new(&["--flood-rate", "25600", "--flood-burst", "25600"]);
    let mut c = s.line();
    c.read_exact(line_port::PROMPT.len()).await;
    c.send(b"carol\r\n").await;
    c.line().await.expect("welcome");
    let t0 = Instant::now();
    c.send("\r\n".repeat(300).as_bytes()).await;
    c.send(b"/time\r\n").await;
    let answer = c.line().await.expect("the time");
    assert!(answer.contains("-- "), "{answer}");
    let took = t0.elapsed().as_secs_f64();
    assert!((1.8..2.3).contains(&took), "held back {took:.2} s");
}

#[tokio::test(start_paused = true)]
async fn a_frame_left_unfinished_is_cut_off_after_the_frame_timeout() {
    let mut s = TestServer::new(&[]);
    let mut bob = s.login("bob").await;
    let mut alice = s.login("alice").await;
    bob.frame().await.expect("alice's join");
    // A frame sent in pieces over 25 s is complete in time and delivered.
    let t0 = Instant::now();
    for piece in [r#"{"to":"*","#, r#""msg":"slow "#, r#"but whole"}"#] {
        alice.send(piece.as_bytes()).await;
        tokio::time::sleep(Duration::from_secs(12)).await;
    }
    assert_eq!(bob.frame().await.expect("chat").msg, "slow but whole");
    // One never finished (before: it held its buffer for as long as the connection).
    let t1 = Instant::now();
    alice.send(br#"{"to":"*","msg":"never end"#).await;
    let e = alice.frame().await.expect("the reason");
    assert_eq!(e.code, Some(ErrorCode::Unfinished), "{e:?}");
    assert_eq!(
        e.msg,
        "Error: disconnected: a frame was left unfinished for 30 s"
    );
    assert_eq!(t1.elapsed(), Duration::from_secs(30));
    assert!(alice.closed().await);
    assert!(t0.elapsed() < Duration::from_secs(70));
}

#[tokio::test(start_paused = true)]
async fn past_the_server_wide_bound_only_clients_that_are_behind_are_cut_off() {
    // Three clients that never read, 5 MB sent to each: 8 MiB each would fit their own
    // queues (before: 12 MB held for them for good); the server-wide 3 MB does not.
    let mut s = TestServer::new(&["--total-queue-bytes", "3000000"]);
    let mut bob = s.login("bob").await;
    let mut idle = Vec::new();
    for i in 0..3 {
        idle.push(s.login(&format!("idle{i}")).await);
    }
    let mut alice = s.login("alice").await;
    for _ in 0..4 {
        bob.frame().await.expect("a join");
    }
    // Bob reads each message as it comes; the idle ones never do.
    let mut left = Vec::new();
    for i in 0..100 {
        alice.send(publics(1, 50_000).as_bytes()).await;
        loop {
            let f = bob.frame().await.expect("a message");
            match f.kind {
                Some(FrameKind::Chat) => break,
                // The idle ones leave as they are cut off.
                Some(FrameKind::Leave) => left.extend(f.user),
                _ => panic!("bob reads on, message {i}: {f:?}"),
            }
        }
    }
    // The clients that were cut off give their bytes back (their writers give up on the
    // backlog): what is left for bob and alice fits the bound.
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.ctx.pool.held() > 3_000_000 {
        assert!(
            Instant::now() < deadline,
            "still held: {}",
            s.ctx.pool.held()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    left.sort();
    assert_eq!(
        left,
        ["idle0", "idle1", "idle2"],
        "every non-reader was cut off"
    );
    for mut c in idle {
        // Their pipes are full, so the reason may not fit; the connection is closed.
        while c.line().await.is_some() {}
    }
}

#[tokio::test(start_paused = true)]
async fn an_idle_client_is_disconnected_after_the_idle_timeout() {
    let mut s = TestServer::new(&["--idle-timeout-ms", "2000"]);
    let mut c = s.login("alice").await;
    let t0 = Instant::now();
    let e = c.frame().await.expect("the reason");
    assert_eq!(t0.elapsed(), Duration::from_secs(2));
    assert_eq!(e.code, Some(ErrorCode::Idle));
    assert_eq!(e.msg, "Error: disconnected: nothing received for 2 s");
    assert!(c.closed().await);
}

#[tokio::test(start_paused = true)]
async fn without_the_service_logins_are_refused_and_messages_not_delivered() {
    let mut s = TestServer::new(&[]);
    let mut alice = s.login("alice").await;
    s.hub().apply(Event::Down);
    assert_eq!(alice.frame().await.expect("notice").msg, DEGRADED);
    alice.frame_to("*", "see you at 5").await;
    let e = alice.frame().await.expect("error");
    assert_eq!(e.code, Some(ErrorCode::NotDelivered));
    assert_eq!(
        e.msg,
        "Error: message \"see you at 5\" not delivered: the chat service is unavailable right now; try again shortly"
    );
    let mut late = s.json();
    late.send(b"newbie\n").await;
    let r = late.frame().await.expect("refusal");
    assert_eq!(r.code, Some(ErrorCode::Unavailable));
    let mut nc = s.line();
    nc.read_exact(line_port::PROMPT.len()).await;
    nc.send(b"newbie\n").await;
    assert_eq!(
        nc.line().await.as_deref(),
        Some("Error: the chat service is unavailable right now; try again shortly\r\n")
    );
    assert!(nc.closed().await, "the line port gives up at once");
}

#[tokio::test(start_paused = true)]
async fn the_line_port_prompts_until_a_good_name_and_gives_up_after_five() {
    let mut s = TestServer::new(&[]);
    let _gina = s.login("gina").await;
    let mut c = s.line();
    assert_eq!(
        c.read_exact(line_port::PROMPT.len()).await,
        line_port::PROMPT
    );
    c.send(b"gina\n").await;
    assert_eq!(
        c.line().await.as_deref(),
        Some("Error: the name 'gina' is already in use\r\n")
    );
    c.read_exact(line_port::PROMPT.len()).await;
    // A terminal that sends a bare CR for Enter logs in too.
    c.send(b"hank\r").await;
    let w = c.line().await.expect("welcome");
    assert!(
        w.contains("-- Welcome hank! Users online (2): gina, hank."),
        "{w:?}"
    );

    let mut bad = s.line();
    bad.read_exact(line_port::PROMPT.len()).await;
    for _ in 0..5 {
        bad.send(b"a b\n").await;
        let e = bad.line().await.expect("error");
        let e = e.trim_start_matches(line_port::PROMPT);
        assert!(
            e.starts_with("Error: invalid nickname: the name contains ' '"),
            "{e:?}"
        );
    }
    let rest = bad.line().await.expect("prompts and the goodbye");
    assert!(rest.ends_with("Too many attempts. Bye.\r\n"), "{rest:?}");
    assert!(bad.closed().await);
}

#[tokio::test(start_paused = true)]
async fn the_line_port_speaks_the_typed_dialect_of_the_command_table() {
    let mut s = TestServer::new(&[]);
    let mut gina = s.login("gina").await;
    let mut c = s.line();
    c.read_exact(line_port::PROMPT.len()).await;
    c.send(b"hank\n").await;
    c.line().await.expect("welcome");
    assert_eq!(
        gina.frame().await.expect("join").kind,
        Some(FrameKind::Join)
    );
    for (typed, want) in [
        ("!msg gina hi", Some("hi")),
        ("@gina there", Some("there")),
        ("//shrug", None),
    ] {
        c.send(format!("{typed}\n").as_bytes()).await;
        let f = gina.frame().await.expect("delivered");
        match want {
            Some(text) => assert_eq!((f.kind, f.msg.as_str()), (Some(FrameKind::Private), text)),
            None => assert_eq!((f.kind, f.msg.as_str()), (Some(FrameKind::Chat), "/shrug")),
        }
    }
    c.send(b"/shout loud\n").await;
    assert_eq!(gina.frame().await.expect("shout").msg, "loud");
    assert!(
        c.line()
            .await
            .expect("confirmation")
            .ends_with("-- Message sent to 1 user\r\n")
    );
    c.send(b"/nope\n").await;
    assert!(
        c.line()
            .await
            .expect("error")
            .ends_with("! Error: unknown command /nope; type /help for the commands\r\n")
    );
    c.send(b"/help\n").await;
    let mut help = Vec::new();
    // Up to its last row, a public message that starts with a slash.
    while help.last().is_none_or(|l: &String| !l.contains("//text")) {
        help.push(c.line().await.expect("help line"));
    }
    assert!(help[0].ends_with("-- Commands:\r\n"), "{help:?}");
    assert!(
        help.iter()
            .any(|l| l.contains("/quit                leave (also \\q, !logout)"))
    );
    c.send(b"\\q\n").await;
    assert!(
        c.line()
            .await
            .expect("goodbye")
            .ends_with("-- Goodbye hank!\r\n")
    );
    assert!(c.closed().await);
    let left = gina.frame().await.expect("leave");
    assert_eq!(
        (left.kind, left.user.as_deref()),
        (Some(FrameKind::Leave), Some("hank"))
    );
}

#[tokio::test(start_paused = true)]
async fn shutdown_says_goodbye_and_frees_the_names() {
    let mut s = TestServer::new(&[]);
    let mut alice = s.login("alice").await;
    s.ctx.shutdown.cancel();
    let bye = alice.frame().await.expect("goodbye");
    assert_eq!(bye.msg, "The server is shutting down. Goodbye!");
    assert!(alice.closed().await);
    assert!(s.hub().users().is_empty(), "alice left the chat");
}

#[tokio::test(start_paused = true)]
async fn the_line_ports_login_timeout_counts_from_the_connection_not_from_each_try() {
    let mut s = TestServer::new(&["--login-timeout-ms", "10000"]);
    let mut c = s.line();
    let t0 = Instant::now();
    c.read_exact(line_port::PROMPT.len()).await;
    // A wrong nickname every 4 s would have kept a login open for 5 × 10 s before.
    for _ in 0..3 {
        c.send(b"a b\n").await;
        let e = c.line().await.expect("an error line");
        assert!(e.contains("invalid nickname"), "{e:?}");
        tokio::time::sleep(Duration::from_secs(4)).await;
    }
    let mut rest = String::new();
    while let Some(line) = c.line().await {
        rest.push_str(&line);
    }
    assert!(
        rest.contains("no nickname received within 10 s. Bye."),
        "{rest:?}"
    );
    assert_eq!(
        t0.elapsed(),
        Duration::from_secs(12),
        "the 10 s deadline, seen at the next wake-up"
    );
}
