//! The broker backend against a broker the test drives by hand, over in-memory pipes and
//! with paused time: handshake, heartbeats, acknowledgements, a lost link, reconnecting.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chat_common::FrameKind;
use chat_common::link::{self, LINK_VERSION, LinkDecoder, ToBroker, ToServer};
use futures_util::StreamExt;
use netkit::queue::QueueRx;
use tokio::io::{AsyncWriteExt, DuplexStream, ReadHalf, WriteHalf};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

use crate::backend::broker::connection::BACKOFF_MIN;
use crate::backend::broker::{BrokerBackend, Dial, LinkSettings};
use crate::chat::Chat;
use crate::core::clients::testing::{client, drain};
use crate::core::frames::{BACK, DEGRADED};
use crate::core::hub::Hub;
use crate::core::presence::PresencePolicy;

const BEAT: Duration = Duration::from_millis(500);

/// Links to a broker the test drives by hand.
struct DuplexDial {
    accept: mpsc::UnboundedSender<DuplexStream>,
    dials: Arc<AtomicUsize>,
}

impl Dial for DuplexDial {
    type Read = ReadHalf<DuplexStream>;
    type Write = WriteHalf<DuplexStream>;

    async fn dial(&self) -> io::Result<(Self::Read, Self::Write)> {
        self.dials.fetch_add(1, Ordering::SeqCst);
        let (near, far) = tokio::io::duplex(1 << 16);
        self.accept
            .send(far)
            .map_err(|_| io::Error::from(io::ErrorKind::ConnectionRefused))?;
        Ok(tokio::io::split(near))
    }

    fn describe(&self) -> String {
        "the test's broker".into()
    }
}

/// The broker's end of one link.
struct Peer {
    rd: FramedRead<ReadHalf<DuplexStream>, LinkDecoder<ToBroker>>,
    wr: WriteHalf<DuplexStream>,
}

impl Peer {
    fn new(stream: DuplexStream) -> Peer {
        let (rd, wr) = tokio::io::split(stream);
        Peer {
            rd: FramedRead::new(rd, LinkDecoder::new(1 << 20)),
            wr,
        }
    }

    /// The next message that is not a heartbeat or an acknowledgement.
    async fn recv(&mut self) -> Option<ToBroker> {
        loop {
            match self.rd.next().await? {
                Ok(ToBroker::Ping | ToBroker::Ack { .. }) => continue,
                Ok(m) => return Some(m),
                Err(e) => panic!("bad link message: {e}"),
            }
        }
    }

    async fn send(&mut self, msg: &ToServer) {
        self.wr.write_all(&link::encode(msg)).await.expect("write");
    }

    /// Reads the server's Hello and answers it.
    async fn handshake(&mut self, users: &[&str]) {
        match self.recv().await {
            Some(ToBroker::Hello {
                label,
                version,
                token,
                heartbeat_ms,
            }) => {
                assert_eq!(heartbeat_ms, Some(u64::try_from(BEAT.as_millis()).unwrap()));
                assert_eq!(version, LINK_VERSION);
                assert_eq!(token.as_deref(), Some("tok"));
                assert_eq!(label, "test server");
            }
            other => panic!("expected Hello, got {other:?}"),
        }
        self.send(&ToServer::Hello {
            server_id: 1,
            users: users.iter().map(|u| u.to_string()).collect(),
        })
        .await;
    }
}

struct Setup {
    hub: Arc<Hub>,
    chat: Chat<BrokerBackend>,
    links: mpsc::UnboundedReceiver<DuplexStream>,
    dials: Arc<AtomicUsize>,
    up: watch::Receiver<bool>,
    stop: CancellationToken,
}

fn setup() -> Setup {
    let hub = Arc::new(Hub::new(
        "10.0.0.9".into(),
        PresencePolicy {
            limit: 1000,
            budget: 0,
        },
    ));
    let (accept, links) = mpsc::unbounded_channel();
    let dials = Arc::new(AtomicUsize::new(0));
    let settings = LinkSettings {
        label: "test server".into(),
        token: netkit::token::TokenSource::Literal("tok".into()),
        queue_bytes: 1 << 20,
        heartbeat: BEAT,
        max_frame: 1 << 20,
    };
    let stop = CancellationToken::new();
    let dial = DuplexDial {
        accept,
        dials: dials.clone(),
    };
    let (backend, _task, up) = BrokerBackend::start(hub.clone(), dial, settings, stop.clone());
    let chat = Chat::new(hub.clone(), backend, Duration::from_secs(10));
    Setup {
        hub,
        chat,
        links,
        dials,
        up,
        stop,
    }
}

/// Logs `name` in as `conn` through the link, the test's broker accepting it; returns the
/// client's queue (its welcome not yet read).
async fn log_in(s: &Setup, peer: &mut Peer, conn: u64, name: &str) -> QueueRx {
    let (info, rx) = client(name, 1 << 20);
    let chat = s.chat.clone();
    let login = tokio::spawn(async move { chat.login(conn, info).await });
    match peer.recv().await {
        Some(ToBroker::Register {
            conn: c,
            name: n,
            ip,
        }) => {
            assert_eq!((c, n.as_str(), ip.as_str()), (conn, name, "10.0.0.1"))
        }
        other => panic!("expected a registration, got {other:?}"),
    }
    peer.send(&ToServer::Registered {
        conn,
        name: name.into(),
        id: 1,
        ts: 1,
    })
    .await;
    assert_eq!(login.await.ok(), Some(Ok(())), "logged in");
    rx
}

#[tokio::test(start_paused = true)]
async fn the_handshake_brings_the_service_up_with_the_brokers_users() {
    let mut s = setup();
    let mut peer = Peer::new(s.links.recv().await.expect("a dial"));
    assert!(!s.hub.is_up());
    let metrics = s.hub.backend_metrics();
    assert_eq!((metrics.name(), metrics.is_up()), ("broker", false));
    peer.handshake(&["zoe"]).await;
    s.up.wait_for(|u| *u).await.expect("up");
    assert!(s.hub.is_up());
    assert!(metrics.is_up(), "the backend says so in its metrics");
    assert_eq!(&*s.hub.users(), ["zoe"]);
    peer.send(&ToServer::Joined {
        name: "amy".into(),
        id: 7,
        ts: 1,
    })
    .await;
    // The server acknowledges what it applied.
    loop {
        match peer.rd.next().await {
            Some(Ok(ToBroker::Ack { upto })) => {
                assert_eq!(upto, 7);
                break;
            }
            Some(Ok(ToBroker::Ping)) => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(&*s.hub.users(), ["amy", "zoe"]);
    // And keeps the link alive with a beat every interval, which the broker answers.
    let t0 = Instant::now();
    for _ in 0..5 {
        assert!(matches!(peer.rd.next().await, Some(Ok(ToBroker::Ping))));
        peer.send(&ToServer::Pong).await;
    }
    assert!(t0.elapsed() <= BEAT * 5, "{:?}", t0.elapsed());
    assert!(s.hub.is_up(), "an answering broker is never given up on");
    s.stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn a_login_goes_through_the_link_and_its_answer_comes_back() {
    let mut s = setup();
    let mut peer = Peer::new(s.links.recv().await.expect("a dial"));
    peer.handshake(&[]).await;
    s.up.wait_for(|u| *u).await.expect("up");
    let mut rx = log_in(&s, &mut peer, 1, "al").await;
    assert_eq!(drain(&mut rx)[0].kind, Some(FrameKind::Welcome));
    let round_trips = || s.hub.backend_metrics().round_trip().count();
    assert_eq!(round_trips(), 1, "the login, until Registered");
    s.chat
        .publish(1, "hi".into(), true, None)
        .await
        .expect("open");
    match peer.recv().await {
        Some(ToBroker::Public { conn, req, msg }) => {
            assert_eq!((conn, msg.as_str()), (1, "hi"));
            assert_eq!(req, 1);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(round_trips(), 1, "not back yet");
    peer.send(&ToServer::Public {
        id: 2,
        ts: 2,
        from: chat_common::Sender {
            name: "al".into(),
            ip: "10.0.0.1".into(),
        },
        msg: "hi".into(),
        origin: chat_common::link::Origin {
            server: 1,
            conn: 1,
            req: 1,
        },
        recipients: 0,
    })
    .await;
    // Its confirmation is queued when the hub applies it; so is the round trip counted.
    tokio::time::timeout(Duration::from_secs(5), async {
        while round_trips() < 2 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the message came back");
    s.stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn a_lost_link_degrades_the_chat_then_it_reconnects_and_registers_its_clients_again() {
    let mut s = setup();
    let mut peer = Peer::new(s.links.recv().await.expect("a dial"));
    peer.handshake(&[]).await;
    s.up.wait_for(|u| *u).await.expect("up");
    let mut rx = log_in(&s, &mut peer, 1, "al").await;
    s.chat
        .publish(1, "in flight".into(), false, None)
        .await
        .expect("open");
    peer.recv().await.expect("Public");
    drain(&mut rx);

    // The broker goes away.
    drop(peer);
    let mut next = Peer::new(s.links.recv().await.expect("a second dial"));
    assert!(!s.hub.backend_metrics().is_up(), "down in the metrics too");
    let got: Vec<(Option<chat_common::ErrorCode>, String)> = drain(&mut rx)
        .into_iter()
        .map(|f| (f.code, f.msg))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                Some(chat_common::ErrorCode::NotDelivered),
                "Error: message \"in flight\" not delivered: the chat service is unavailable right now; try again shortly".into()
            ),
            (None, DEGRADED.into()),
        ]
    );
    assert!(!s.hub.is_up());
    assert_eq!(
        s.chat
            .publish(1, "meanwhile".into(), false, None)
            .await
            .err()
            .map(|e| e.code()),
        Some(chat_common::ErrorCode::NotDelivered)
    );

    next.handshake(&[]).await;
    match next.recv().await {
        Some(ToBroker::Register { conn, name, .. }) => {
            assert_eq!((conn, name.as_str()), (1, "al"))
        }
        other => panic!("expected the client registered again, got {other:?}"),
    }
    assert_eq!(
        drain(&mut rx).last().map(|f| f.msg.clone()).as_deref(),
        Some(BACK)
    );
    assert_eq!(s.dials.load(Ordering::SeqCst), 2);
    s.stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn a_broker_that_never_says_hello_is_given_up_on_after_three_beats_and_retried() {
    let mut s = setup();
    let t0 = Instant::now();
    let mut mute = Peer::new(s.links.recv().await.expect("a dial"));
    assert!(matches!(mute.recv().await, Some(ToBroker::Hello { .. })));
    let _second = s.links.recv().await.expect("a retry");
    // Three silent beats, then the first backoff.
    assert_eq!(t0.elapsed(), BEAT * 3 + BACKOFF_MIN);
    assert!(!s.hub.is_up());
    s.stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn a_broker_that_goes_silent_is_given_up_on_after_three_beats() {
    let mut s = setup();
    let mut peer = Peer::new(s.links.recv().await.expect("a dial"));
    peer.handshake(&[]).await;
    s.up.wait_for(|u| *u).await.expect("up");
    let mut rx = log_in(&s, &mut peer, 1, "al").await;
    drain(&mut rx);
    // The broker stops answering (a SIGSTOPped process): the link stays open, nothing comes.
    let silent_since = Instant::now();
    let degraded = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if drain(&mut rx).iter().any(|f| f.msg == DEGRADED) {
                return silent_since.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the clients are told the chat is degraded");
    assert!(
        degraded <= BEAT * 3 + Duration::from_millis(20),
        "{degraded:?}"
    );
    assert!(!s.hub.is_up());
    // The server keeps trying: a new link is dialled.
    let _next = s.links.recv().await.expect("a retry");
    drop(peer);
    s.stop.cancel();
}
