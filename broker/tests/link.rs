//! The broker library in-process, with a hand-driven "server" on each link.
//!
//! Over real TCP (`broker::run` on a listener bound to `127.0.0.1:0`): handshake, version
//! and token checks, registration, routing, a dead link freeing its names, a server cut
//! off by its bounded queue, and shutdown. Over `tokio::io::duplex` with paused time
//! ([`broker::Broker::serve_link`]): the timeouts counted in heartbeats, which take no real
//! time at all.

use std::net::SocketAddr;
use std::time::Duration;

use broker::{Broker, Config};
use bytes::BytesMut;
use chat_common::link::{self, LINK_VERSION, LinkDecoder, Rejection, ToBroker, ToServer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::codec::Decoder;

const TOKEN: &str = "link-test-token";

/// How long any single expectation may take (on the paused clock, for the duplex tests).
const TIMEOUT: Duration = Duration::from_secs(10);

/// A broker serving TCP links on an ephemeral port of this runtime; it shuts down when
/// `stop` is sent or dropped.
struct TcpBroker {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

async fn broker() -> TcpBroker {
    broker_with(Config::new(TOKEN)).await
}

async fn broker_with(config: Config) -> TcpBroker {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(broker::run(config, listener, async {
        let _ = stopped.await;
    }));
    TcpBroker { addr, stop, task }
}

/// A fake front-end server speaking the link protocol by hand, over TCP or any stream.
struct Link<S = TcpStream> {
    stream: S,
    buf: BytesMut,
    dec: LinkDecoder<ToServer>,
}

fn hello() -> ToBroker {
    ToBroker::Hello {
        label: "test".into(),
        version: LINK_VERSION,
        token: Some(TOKEN.into()),
        heartbeat_ms: None,
    }
}

fn register(conn: u64, name: &str, ip: &str) -> ToBroker {
    ToBroker::Register {
        conn,
        name: name.into(),
        ip: ip.into(),
    }
}

impl Link<TcpStream> {
    async fn connect(addr: SocketAddr) -> Link {
        Link::over(TcpStream::connect(addr).await.expect("connect"))
    }

    async fn hello(addr: SocketAddr) -> (Link, u32, Vec<String>) {
        Link::connect(addr).await.handshake().await
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Link<S> {
    fn over(stream: S) -> Link<S> {
        Link {
            stream,
            buf: BytesMut::new(),
            dec: LinkDecoder::new(1 << 20),
        }
    }

    /// Sends a valid `Hello` and expects the broker's.
    async fn handshake(mut self) -> (Link<S>, u32, Vec<String>) {
        self.send(&hello()).await;
        match self.recv().await {
            Some(ToServer::Hello { server_id, users }) => (self, server_id, users),
            other => panic!("expected Hello, got {other:?}"),
        }
    }

    async fn send(&mut self, msg: &ToBroker) {
        self.send_bytes(&link::encode(msg)).await;
    }

    async fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    /// The next message, whatever it is, if one comes before `deadline`; `Ok(None)` when
    /// the broker closes the link.
    async fn next_before(&mut self, deadline: Instant) -> Result<Option<ToServer>, ()> {
        loop {
            if let Some(m) = self.dec.decode(&mut self.buf).expect("valid link message") {
                return Ok(Some(m));
            }
            match tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buf)).await {
                Err(_) => return Err(()),
                Ok(read) => {
                    if read.expect("read") == 0 {
                        return Ok(None);
                    }
                }
            }
        }
    }

    /// The next message other than Pong and Stable, if one comes within `limit`.
    async fn recv_within(&mut self, limit: Duration) -> Result<Option<ToServer>, ()> {
        let deadline = Instant::now() + limit;
        loop {
            match self.next_before(deadline).await? {
                Some(ToServer::Pong | ToServer::Stable { .. }) => continue,
                other => return Ok(other),
            }
        }
    }

    /// The next message, Pong and Stable included; `None` when the broker closes the link.
    async fn next(&mut self) -> Option<ToServer> {
        let deadline = Instant::now() + TIMEOUT;
        self.next_before(deadline)
            .await
            .unwrap_or_else(|()| panic!("no message within {TIMEOUT:?}"))
    }

    /// The next message other than Pong and Stable; `None` when the broker closes the link.
    async fn recv(&mut self) -> Option<ToServer> {
        loop {
            match self.recv_any().await {
                Some(ToServer::Stable { .. }) => continue,
                other => return other,
            }
        }
    }

    /// The next message other than Pong; `None` when the broker closes the link.
    async fn recv_any(&mut self) -> Option<ToServer> {
        loop {
            match self.next().await {
                Some(ToServer::Pong) => continue,
                other => return other,
            }
        }
    }
}

// --- Over TCP -------------------------------------------------------------------------

#[tokio::test]
async fn a_wrong_version_is_rejected() {
    let b = broker().await;
    let mut l = Link::connect(b.addr).await;
    l.send(&ToBroker::Hello {
        label: "old".into(),
        version: LINK_VERSION + 1,
        token: None,
        heartbeat_ms: None,
    })
    .await;
    assert_eq!(
        l.recv().await,
        Some(ToServer::Rejected {
            reason: Rejection::Version {
                got: LINK_VERSION + 1,
                expected: LINK_VERSION
            }
        })
    );
    assert_eq!(
        l.recv().await,
        None,
        "the link is closed after the rejection"
    );
}

#[tokio::test]
async fn a_link_without_the_right_token_is_rejected() {
    // The pause before each rejection is tested on the paused clock below.
    let mut config = Config::new(TOKEN);
    config.reject_delay = Duration::ZERO;
    let b = broker_with(config).await;
    for token in [None, Some("guess".to_string()), Some(format!("{TOKEN}x"))] {
        let mut l = Link::connect(b.addr).await;
        l.send(&ToBroker::Hello {
            label: "intruder".into(),
            version: LINK_VERSION,
            token: token.clone(),
            heartbeat_ms: None,
        })
        .await;
        match l.recv().await {
            Some(ToServer::Rejected { reason }) => {
                assert_eq!(
                    reason,
                    Rejection::Token {
                        given: token.is_some()
                    },
                    "{token:?}"
                );
                assert!(reason.to_string().contains("link token"), "{reason}");
            }
            other => panic!("{token:?}: expected a rejection, got {other:?}"),
        }
        assert_eq!(
            l.recv().await,
            None,
            "the link is closed after the rejection"
        );
    }
    // A registration glued to a bad Hello gets nowhere either.
    let mut l = Link::connect(b.addr).await;
    let mut bytes = link::encode(&ToBroker::Hello {
        label: "intruder".into(),
        version: LINK_VERSION,
        token: None,
        heartbeat_ms: None,
    })
    .to_vec();
    bytes.extend_from_slice(&link::encode(&register(1, "mallory", "10.0.0.66")));
    l.send_bytes(&bytes).await;
    assert!(matches!(l.recv().await, Some(ToServer::Rejected { .. })));
    assert_eq!(l.recv().await, None);
    // The right token still works, and nobody got in through the refused links.
    let (_l, id, users) = Link::hello(b.addr).await;
    assert!(id > 0);
    assert!(users.is_empty(), "mallory was not registered: {users:?}");
}

#[tokio::test]
async fn garbage_instead_of_hello_is_rejected() {
    let b = broker().await;
    let mut l = Link::connect(b.addr).await;
    l.send_bytes(&[0, 0, 0, 5, b'h', b'e', b'l', b'l', b'o'])
        .await;
    assert!(matches!(l.recv().await, Some(ToServer::Rejected { .. })));
}

#[tokio::test]
async fn registration_routing_and_a_dead_link() {
    let b = broker().await;
    let (mut a, a_id, users) = Link::hello(b.addr).await;
    assert!(users.is_empty());
    let (mut c, _, _) = Link::hello(b.addr).await;

    a.send(&register(1, "alice", "10.1.1.1")).await;
    assert!(
        matches!(a.recv().await, Some(ToServer::Registered { conn: 1, ref name, .. }) if name == "alice")
    );
    assert!(matches!(c.recv().await, Some(ToServer::Joined { ref name, .. }) if name == "alice"));
    c.send(&register(7, "alice", "10.2.2.2")).await;
    assert!(matches!(
        c.recv().await,
        Some(ToServer::Refused { conn: 7, .. })
    ));
    c.send(&register(7, "bob", "10.2.2.2")).await;
    assert!(matches!(
        c.recv().await,
        Some(ToServer::Registered { conn: 7, .. })
    ));
    assert!(matches!(a.recv().await, Some(ToServer::Joined { ref name, .. }) if name == "bob"));

    a.send(&ToBroker::Public {
        conn: 1,
        req: 42,
        msg: "hi".into(),
    })
    .await;
    for l in [&mut a, &mut c] {
        match l.recv().await {
            Some(ToServer::Public {
                from,
                msg,
                origin,
                recipients,
                ..
            }) => {
                assert_eq!(
                    (from.name.as_str(), from.ip.as_str(), msg.as_str()),
                    ("alice", "10.1.1.1", "hi")
                );
                assert_eq!(
                    (origin.server, origin.conn, origin.req, recipients),
                    (a_id, 1, 42, 1)
                );
            }
            other => panic!("expected Public, got {other:?}"),
        }
    }
    c.send(&ToBroker::Private {
        conn: 7,
        req: 1,
        to: "alice".into(),
        msg: "psst".into(),
    })
    .await;
    let private = a.recv().await;
    assert!(
        matches!(private, Some(ToServer::Private { to_conn: 1, ref msg, .. }) if msg == "psst"),
        "{private:?}"
    );
    // The sender's server learns the message's id, and that it is stable once the
    // recipient's server (and every other) acknowledged it.
    let id = private.and_then(|p| p.id()).expect("an id");
    assert_eq!(c.recv().await, Some(ToServer::Routed { req: 1, id }));
    a.send(&ToBroker::Ack { upto: id }).await;
    c.send(&ToBroker::Ack { upto: id }).await;
    loop {
        match c.recv_any().await {
            Some(ToServer::Stable { upto }) if upto >= id => break,
            Some(ToServer::Stable { .. }) => {}
            other => panic!("expected Stable, got {other:?}"),
        }
    }

    // Server A's link dies: alice leaves, and her name is free at once.
    drop(a);
    assert!(matches!(c.recv().await, Some(ToServer::Left { ref name, .. }) if name == "alice"));
    c.send(&register(8, "alice", "10.2.2.2")).await;
    assert!(matches!(
        c.recv().await,
        Some(ToServer::Registered { conn: 8, .. })
    ));
}

#[tokio::test]
async fn a_server_that_stops_reading_is_cut_off_by_its_bounded_queue() {
    // 64 KiB of queue per server link: a server that stops reading overflows it quickly.
    let mut config = Config::new(TOKEN);
    config.link_queue_bytes = 65536;
    let b = broker_with(config).await;
    let (mut stuck, _, _) = Link::hello(b.addr).await;
    stuck.send(&register(1, "ghost", "10.0.0.1")).await;
    assert!(matches!(
        stuck.recv().await,
        Some(ToServer::Registered { .. })
    ));
    let (mut talker, _, _) = Link::hello(b.addr).await;
    talker.send(&register(1, "talker", "10.0.0.2")).await;
    // From now on `stuck` never reads. The talker floods public messages, 20 (20 KB, well
    // inside its own queue) at a time, reading what comes back so it keeps up, until the
    // broker announces the ghost's departure.
    let text = "z".repeat(1000);
    let mut sent = 0u64;
    let mut ghost_left = false;
    while !ghost_left {
        assert!(
            sent < 200_000,
            "the stuck server was never cut off ({sent} sent)"
        );
        for _ in 0..20 {
            sent += 1;
            talker
                .send(&ToBroker::Public {
                    conn: 1,
                    req: sent,
                    msg: text.clone(),
                })
                .await;
        }
        // Drain what the broker sent back for those 20 messages.
        let mut echoes = 0;
        while echoes < 20 {
            match talker.recv().await {
                Some(ToServer::Public { .. }) => echoes += 1,
                Some(ToServer::Left { name, .. }) if name == "ghost" => ghost_left = true,
                Some(ToServer::Registered { .. } | ToServer::Joined { .. }) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    // Nothing else happened to the talker: it is still served.
    talker
        .send(&ToBroker::Public {
            conn: 1,
            req: 0,
            msg: "still here".into(),
        })
        .await;
    loop {
        match talker.recv().await {
            Some(ToServer::Public { msg, .. }) if msg == "still here" => break,
            Some(_) => {}
            None => panic!("the talker was cut off too"),
        }
    }
    // The stuck server's link was closed, after a Rejected saying why if it fit.
    let mut last = None;
    while let Some(m) = stuck.recv().await {
        last = Some(m);
    }
    if let Some(ToServer::Rejected { reason }) = &last {
        assert_eq!(*reason, Rejection::QueueExceeded);
        assert!(
            reason.to_string().contains("link queue exceeded"),
            "{reason}"
        );
    }
    let last: String = format!("{last:?}").chars().take(60).collect();
    eprintln!("stuck server cut off after {sent} messages of 1 KB; its last message: {last}");
}

#[tokio::test]
async fn run_returns_once_shutdown_resolves_and_closes_every_link() {
    let b = broker().await;
    let (mut a, _, _) = Link::hello(b.addr).await;
    a.send(&register(1, "alice", "10.0.0.1")).await;
    assert!(matches!(a.recv().await, Some(ToServer::Registered { .. })));
    let (mut c, _, users) = Link::hello(b.addr).await;
    assert_eq!(users, ["alice"]);
    b.stop.send(()).expect("run is still running");
    tokio::time::timeout(TIMEOUT, b.task)
        .await
        .expect("run returned in time")
        .expect("run did not panic");
    assert_eq!(a.recv().await, None);
    assert_eq!(
        c.recv().await,
        None,
        "closed, and alice not announced as gone"
    );
}

// --- Over in-memory streams, on the paused clock ---------------------------------------

/// A link to `broker` over an in-memory stream.
fn duplex(broker: &Broker) -> Link<DuplexStream> {
    let (ours, theirs) = tokio::io::duplex(64 * 1024);
    broker.serve_link(theirs);
    Link::over(ours)
}

#[tokio::test(start_paused = true)]
async fn a_link_without_hello_is_rejected_after_three_heartbeats() {
    let config = Config::new(TOKEN);
    let beat = config.heartbeat;
    let broker = Broker::start(config);
    let start = Instant::now();
    let mut l = duplex(&broker);
    assert_eq!(
        l.recv_within(3 * beat - Duration::from_millis(1)).await,
        Err(()),
        "nothing before three heartbeats"
    );
    assert_eq!(
        l.recv().await,
        Some(ToServer::Rejected {
            reason: Rejection::HelloTimeout
        })
    );
    let waited = start.elapsed();
    assert!(
        waited >= 3 * beat && waited < 4 * beat,
        "rejected after {waited:?}"
    );
    assert_eq!(l.recv().await, None, "closed after the rejection");
    broker.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_link_silent_after_its_hello_is_closed_after_three_heartbeats_and_its_users_leave() {
    let config = Config::new(TOKEN);
    let beat = config.heartbeat;
    let broker = Broker::start(config);
    let (mut silent, _, _) = duplex(&broker).handshake().await;
    let (mut alive, _, _) = duplex(&broker).handshake().await;
    silent.send(&register(1, "alice", "10.0.0.1")).await;
    assert!(matches!(
        silent.recv().await,
        Some(ToServer::Registered { .. })
    ));
    assert!(
        matches!(alive.recv().await, Some(ToServer::Joined { ref name, .. }) if name == "alice")
    );
    // From now on `silent` sends nothing; `alive` pings once a heartbeat.
    let since = Instant::now();
    loop {
        assert!(
            since.elapsed() < 4 * beat,
            "the silent link was never closed"
        );
        alive.send(&ToBroker::Ping).await;
        match alive.recv_within(beat).await {
            Err(()) => {}
            Ok(Some(ToServer::Left { name, .. })) if name == "alice" => break,
            other => panic!("expected alice to leave, got {other:?}"),
        }
    }
    let waited = since.elapsed();
    assert!(
        waited >= 3 * beat && waited < 4 * beat,
        "closed after {waited:?}"
    );
    assert_eq!(silent.recv().await, None, "the silent link is closed");
    // The other link, which kept pinging, is still served.
    alive.send(&register(2, "alice", "10.0.0.2")).await;
    assert!(matches!(
        alive.recv().await,
        Some(ToServer::Registered { conn: 2, .. })
    ));
    broker.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_server_with_a_slower_heartbeat_gets_three_of_its_own_beats() {
    let config = Config::new(TOKEN);
    let beat = config.heartbeat;
    let slower = beat * 4;
    let broker = Broker::start(config);
    let mut l = duplex(&broker);
    l.send(&ToBroker::Hello {
        label: "slow".into(),
        version: LINK_VERSION,
        token: Some(TOKEN.into()),
        heartbeat_ms: Some(u64::try_from(slower.as_millis()).expect("ms")),
    })
    .await;
    assert!(matches!(l.recv().await, Some(ToServer::Hello { .. })));
    let since = Instant::now();
    assert_eq!(
        l.recv_within(3 * slower - Duration::from_millis(1)).await,
        Err(()),
        "still open well past three of the broker's own heartbeats"
    );
    assert_eq!(l.recv().await, None, "closed after three of the server's");
    let waited = since.elapsed();
    assert!(
        waited >= 3 * slower && waited < 4 * slower,
        "closed after {waited:?}"
    );
    broker.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn pings_are_answered_and_keep_a_link_open() {
    let config = Config::new(TOKEN);
    let beat = config.heartbeat;
    let broker = Broker::start(config);
    let (mut l, _, _) = duplex(&broker).handshake().await;
    let start = Instant::now();
    for _ in 0..10 {
        tokio::time::advance(beat).await;
        l.send(&ToBroker::Ping).await;
        assert_eq!(l.next().await, Some(ToServer::Pong));
    }
    assert!(
        start.elapsed() >= 10 * beat,
        "well past three heartbeats: {:?}",
        start.elapsed()
    );
    l.send(&register(1, "alice", "10.0.0.1")).await;
    assert!(matches!(l.recv().await, Some(ToServer::Registered { .. })));
    broker.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_first_message_other_than_hello_is_rejected() {
    let broker = Broker::start(Config::new(TOKEN));
    let mut l = duplex(&broker);
    l.send(&register(1, "mallory", "10.0.0.66")).await;
    assert_eq!(
        l.recv().await,
        Some(ToServer::Rejected {
            reason: Rejection::ExpectedHello
        })
    );
    assert_eq!(l.recv().await, None);
    let mut l = duplex(&broker);
    l.send_bytes(&[0, 0, 0, 5, b'h', b'e', b'l', b'l', b'o'])
        .await;
    assert_eq!(
        l.recv().await,
        Some(ToServer::Rejected {
            reason: Rejection::Malformed
        })
    );
    assert_eq!(l.recv().await, None);
    broker.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn shutdown_closes_every_link_without_announcing_its_users_as_gone() {
    let broker = Broker::start(Config::new(TOKEN));
    let (mut a, _, _) = duplex(&broker).handshake().await;
    let (mut b, _, _) = duplex(&broker).handshake().await;
    a.send(&register(1, "alice", "10.0.0.1")).await;
    assert!(matches!(a.recv().await, Some(ToServer::Registered { .. })));
    assert!(matches!(b.recv().await, Some(ToServer::Joined { .. })));
    let start = Instant::now();
    broker.shutdown().await;
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "shutdown waited {:?}",
        start.elapsed()
    );
    assert_eq!(a.recv().await, None);
    assert_eq!(b.recv().await, None, "alice was not announced as gone");
}

#[tokio::test(start_paused = true)]
async fn dropping_the_broker_closes_its_links() {
    let broker = Broker::start(Config::new(TOKEN));
    let (mut l, _, _) = duplex(&broker).handshake().await;
    drop(broker);
    assert_eq!(l.recv().await, None);
}

// --- Before the token is checked (PROTOCOL.md has no part in it: the link is ours) ----

#[tokio::test(start_paused = true)]
async fn a_first_message_larger_than_a_few_kib_is_refused_without_waiting_for_it() {
    let broker = Broker::start(Config::new(TOKEN));
    let mut l = duplex(&broker);
    // A length prefix announcing 16 MiB, and the first 4 KiB of it.
    let mut bytes = (16u32 * 1024 * 1024 - 1).to_be_bytes().to_vec();
    bytes.extend(std::iter::repeat_n(b'x', 4096));
    l.send_bytes(&bytes).await;
    assert_eq!(
        l.recv_within(Duration::from_millis(10)).await,
        Ok(Some(ToServer::Rejected {
            reason: Rejection::TooLarge {
                limit: broker::config::PRE_AUTH_MAX_FRAME
            }
        })),
        "refused at once, not after the rest or a timeout"
    );
    assert_eq!(l.recv().await, None);
    // A first message that fits is read as usual: a real server still gets in.
    let (_ok, id, _) = duplex(&broker).handshake().await;
    assert!(id > 0);
    broker.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_wrong_token_is_answered_only_after_a_pause() {
    let broker = Broker::start(Config::new(TOKEN));
    for _ in 0..3 {
        let mut l = duplex(&broker);
        let start = Instant::now();
        l.send(&ToBroker::Hello {
            label: "guess".into(),
            version: LINK_VERSION,
            token: Some("guess".into()),
            heartbeat_ms: None,
        })
        .await;
        assert!(matches!(l.recv().await, Some(ToServer::Rejected { .. })));
        assert!(
            start.elapsed() >= broker::config::REJECT_DELAY,
            "answered after {:?}",
            start.elapsed()
        );
    }
    broker.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn links_that_have_not_said_hello_yet_are_capped() {
    let mut config = Config::new(TOKEN);
    config.pre_auth_limit = 4;
    let broker = Broker::start(config);
    let mut quiet: Vec<_> = (0..4).map(|_| duplex(&broker)).collect();
    let mut one_too_many = duplex(&broker);
    assert_eq!(
        one_too_many.recv_within(Duration::from_millis(10)).await,
        Ok(None),
        "closed at once"
    );
    for l in &mut quiet {
        assert_eq!(
            l.recv_within(Duration::from_millis(10)).await,
            Err(()),
            "still waiting"
        );
    }
    // Once they time out, their places are free again.
    for l in &mut quiet {
        assert!(matches!(l.recv().await, Some(ToServer::Rejected { .. })));
    }
    let (_ok, id, _) = duplex(&broker).handshake().await;
    assert!(id > 0);
    broker.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn links_are_capped_in_total() {
    let mut config = Config::new(TOKEN);
    config.max_links = 2;
    let broker = Broker::start(config);
    let (_a, _, _) = duplex(&broker).handshake().await;
    let (_b, _, _) = duplex(&broker).handshake().await;
    let mut third = duplex(&broker);
    assert_eq!(third.recv_within(Duration::from_millis(10)).await, Ok(None));
    drop(_a);
    // The place of a link that closed is free again (once the broker has seen it close).
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let mut l = duplex(&broker);
        // Refused, the stream is closed at once and the write may fail: try again.
        let sent = l.stream.write_all(&link::encode(&hello())).await.is_ok();
        if sent
            && let Ok(Some(ToServer::Hello { .. })) = l.recv_within(Duration::from_millis(10)).await
        {
            break;
        }
        assert!(Instant::now() < deadline, "the place never came free");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    broker.shutdown().await;
}
