//! The broker binary over its real link port, with a hand-driven "server" on each link:
//! handshake, version check, registration, routing, and a dead link freeing its names.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::BytesMut;
use chat_common::link::{self, LINK_VERSION, LinkDecoder, Rejection, ToBroker, ToServer};
use tokio_util::codec::Decoder;

struct Broker(Child, SocketAddr);

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const TOKEN: &str = "link-test-token";

fn broker() -> Broker {
    broker_with(&[])
}

fn broker_with(extra: &[&str]) -> Broker {
    let mut child = Command::new(env!("CARGO_BIN_EXE_broker"))
        .args(["--listen", "127.0.0.1:0", "--token", TOKEN])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn broker");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read");
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .expect("listening line")
        .parse()
        .expect("addr");
    Broker(child, addr)
}

/// A fake front-end server speaking the link protocol by hand.
struct Link {
    stream: TcpStream,
    buf: BytesMut,
    dec: LinkDecoder<ToServer>,
}

impl Link {
    fn connect(addr: SocketAddr) -> Link {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        Link {
            stream,
            buf: BytesMut::new(),
            dec: LinkDecoder::new(1 << 20),
        }
    }

    fn hello(addr: SocketAddr) -> (Link, u32, Vec<String>) {
        let mut l = Link::connect(addr);
        l.send(&ToBroker::Hello {
            label: "test".into(),
            version: LINK_VERSION,
            token: Some(TOKEN.into()),
        });
        match l.recv() {
            Some(ToServer::Hello { server_id, users }) => (l, server_id, users),
            other => panic!("expected Hello, got {other:?}"),
        }
    }

    fn send(&mut self, msg: &ToBroker) {
        self.stream.write_all(&link::encode(msg)).expect("write");
    }

    /// The next message other than Pong and Stable; `None` when the broker closes the link.
    fn recv(&mut self) -> Option<ToServer> {
        loop {
            match self.recv_any() {
                Some(ToServer::Stable { .. }) => continue,
                other => return other,
            }
        }
    }

    /// The next message other than Pong; `None` when the broker closes the link.
    fn recv_any(&mut self) -> Option<ToServer> {
        loop {
            match self.dec.decode(&mut self.buf).expect("valid link message") {
                Some(ToServer::Pong) => continue,
                Some(m) => return Some(m),
                None => {}
            }
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk).expect("read (timed out?)");
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

#[test]
fn help_lists_the_flags() {
    let out = Command::new(env!("CARGO_BIN_EXE_broker"))
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

#[test]
fn a_wrong_version_is_rejected() {
    let b = broker();
    let mut l = Link::connect(b.1);
    l.send(&ToBroker::Hello {
        label: "old".into(),
        version: LINK_VERSION + 1,
        token: None,
    });
    assert_eq!(
        l.recv(),
        Some(ToServer::Rejected {
            reason: Rejection::Version {
                got: LINK_VERSION + 1,
                expected: LINK_VERSION
            }
        })
    );
    assert_eq!(l.recv(), None, "the link is closed after the rejection");
}

#[test]
fn a_link_without_the_right_token_is_rejected() {
    let b = broker();
    for token in [None, Some("guess".to_string()), Some(format!("{TOKEN}x"))] {
        let mut l = Link::connect(b.1);
        l.send(&ToBroker::Hello {
            label: "intruder".into(),
            version: LINK_VERSION,
            token: token.clone(),
        });
        match l.recv() {
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
        assert_eq!(l.recv(), None, "the link is closed after the rejection");
    }
    // A registration glued to a bad Hello gets nowhere either.
    let mut l = Link::connect(b.1);
    let mut bytes = link::encode(&ToBroker::Hello {
        label: "intruder".into(),
        version: LINK_VERSION,
        token: None,
    })
    .to_vec();
    bytes.extend_from_slice(&link::encode(&ToBroker::Register {
        conn: 1,
        name: "mallory".into(),
        ip: "10.0.0.66".into(),
    }));
    l.stream.write_all(&bytes).expect("write");
    assert!(matches!(l.recv(), Some(ToServer::Rejected { .. })));
    assert_eq!(l.recv(), None);
    // The right token still works, and nobody got in through the refused links.
    let (_l, id, users) = Link::hello(b.1);
    assert!(id > 0);
    assert!(users.is_empty(), "mallory was not registered: {users:?}");
}

#[test]
fn garbage_instead_of_hello_is_rejected() {
    let b = broker();
    let mut l = Link::connect(b.1);
    l.stream
        .write_all(&[0, 0, 0, 5, b'h', b'e', b'l', b'l', b'o'])
        .expect("write");
    assert!(matches!(l.recv(), Some(ToServer::Rejected { .. })));
}

#[test]
fn registration_routing_and_a_dead_link() {
    let b = broker();
    let (mut a, a_id, users) = Link::hello(b.1);
    assert!(users.is_empty());
    let (mut c, _, _) = Link::hello(b.1);

    a.send(&ToBroker::Register {
        conn: 1,
        name: "alice".into(),
        ip: "10.1.1.1".into(),
    });
    assert!(
        matches!(a.recv(), Some(ToServer::Registered { conn: 1, ref name, .. }) if name == "alice")
    );
    assert!(matches!(c.recv(), Some(ToServer::Joined { ref name, .. }) if name == "alice"));
    c.send(&ToBroker::Register {
        conn: 7,
        name: "alice".into(),
        ip: "10.2.2.2".into(),
    });
    assert!(matches!(c.recv(), Some(ToServer::Refused { conn: 7, .. })));
    c.send(&ToBroker::Register {
        conn: 7,
        name: "bob".into(),
        ip: "10.2.2.2".into(),
    });
    assert!(matches!(
        c.recv(),
        Some(ToServer::Registered { conn: 7, .. })
    ));
    assert!(matches!(a.recv(), Some(ToServer::Joined { ref name, .. }) if name == "bob"));

    a.send(&ToBroker::Public {
        conn: 1,
        req: 42,
        msg: "hi".into(),
    });
    for l in [&mut a, &mut c] {
        match l.recv() {
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
    });
    let private = a.recv();
    assert!(
        matches!(private, Some(ToServer::Private { to_conn: 1, ref msg, .. }) if msg == "psst"),
        "{private:?}"
    );
    // The sender's server learns the message's id, and that it is stable once the
    // recipient's server (and every other) acknowledged it.
    let id = private.and_then(|p| p.id()).expect("an id");
    assert_eq!(c.recv(), Some(ToServer::Routed { req: 1, id }));
    a.send(&ToBroker::Ack { upto: id });
    c.send(&ToBroker::Ack { upto: id });
    loop {
        match c.recv_any() {
            Some(ToServer::Stable { upto }) if upto >= id => break,
            Some(ToServer::Stable { .. }) => {}
            other => panic!("expected Stable, got {other:?}"),
        }
    }

    // Server A's link dies: alice leaves, and her name is free at once.
    drop(a);
    assert!(matches!(c.recv(), Some(ToServer::Left { ref name, .. }) if name == "alice"));
    c.send(&ToBroker::Register {
        conn: 8,
        name: "alice".into(),
        ip: "10.2.2.2".into(),
    });
    assert!(matches!(
        c.recv(),
        Some(ToServer::Registered { conn: 8, .. })
    ));
}

#[test]
fn a_server_that_stops_reading_is_cut_off_by_its_bounded_queue() {
    // 64 KiB of queue per server link: a server that stops reading overflows it quickly.
    let b = broker_with(&["--link-queue-bytes", "65536"]);
    let (mut stuck, _, _) = Link::hello(b.1);
    stuck.send(&ToBroker::Register {
        conn: 1,
        name: "ghost".into(),
        ip: "10.0.0.1".into(),
    });
    assert!(matches!(stuck.recv(), Some(ToServer::Registered { .. })));
    let (mut talker, _, _) = Link::hello(b.1);
    talker.send(&ToBroker::Register {
        conn: 1,
        name: "talker".into(),
        ip: "10.0.0.2".into(),
    });
    // From now on `stuck` never reads. The talker floods public messages, 20 (20 KB, well
    // inside its own queue) at a time, reading what comes back so it keeps up, until the
    // broker announces the ghost's departure.
    let text = "z".repeat(1000);
    let mut sent = 0u64;
    let mut ghost_left = false;
    talker.stream.set_nonblocking(false).expect("blocking");
    while !ghost_left {
        assert!(
            sent < 200_000,
            "the stuck server was never cut off ({sent} sent)"
        );
        for _ in 0..20 {
            sent += 1;
            talker.send(&ToBroker::Public {
                conn: 1,
                req: sent,
                msg: text.clone(),
            });
        }
        // Drain what the broker sent back for those 20 messages.
        let mut echoes = 0;
        while echoes < 20 {
            match talker.recv() {
                Some(ToServer::Public { .. }) => echoes += 1,
                Some(ToServer::Left { name, .. }) if name == "ghost" => ghost_left = true,
                Some(ToServer::Registered { .. } | ToServer::Joined { .. }) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    // Nothing else happened to the talker: it is still served.
    talker.send(&ToBroker::Public {
        conn: 1,
        req: 0,
        msg: "still here".into(),
    });
    loop {
        match talker.recv() {
            Some(ToServer::Public { msg, .. }) if msg == "still here" => break,
            Some(_) => {}
            None => panic!("the talker was cut off too"),
        }
    }
    // The stuck server's link was closed, after a Rejected saying why if it fit.
    stuck
        .stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut last = None;
    while let Some(m) = stuck.recv() {
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
