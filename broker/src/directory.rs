//! The broker's state: who is online where, and the global sequence of events.
//!
//! This is pure logic: every call takes a message and returns the link messages to send,
//! already encoded, so a broadcast is serialized once and the same bytes go to every
//! server. The I/O around it lives in [`crate::router`].

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;
use chat_common::Sender;
use chat_common::link::{self, ConnId, Origin, ServerId, ToBroker, ToServer};

/// A link message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Out {
    /// To one server.
    To(ServerId, Bytes),
    /// To every server.
    All(Bytes),
    /// To every server but one.
    AllBut(ServerId, Bytes),
}

struct User {
    server: ServerId,
    conn: ConnId,
    ip: String,
}

#[derive(Default)]
struct Server {
    label: String,
    /// Names registered through this server, by connection.
    conns: HashMap<ConnId, String>,
    /// Ids of the messages sent to this server that it has not acknowledged yet, in order.
    unacked: VecDeque<u64>,
}

/// A message waiting for its servers' acknowledgements before it is confirmed to its
/// sender's server.
struct Pending {
    origin: ServerId,
    conn: ConnId,
    req: u64,
    /// Servers that have yet to acknowledge it.
    waiting: u32,
}

/// The global user directory and event sequence.
#[derive(Default)]
pub struct Directory {
    users: HashMap<String, User>,
    servers: HashMap<ServerId, Server>,
    seq: u64,
    /// Messages not yet confirmed to their senders, by id.
    pending: HashMap<u64, Pending>,
}

impl Directory {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of users online.
    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    /// Number of servers attached.
    pub fn server_count(&self) -> usize {
        self.servers.len()
    }

    fn next_id(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// A server completed its handshake: it gets its id and the users online.
    pub fn attach(&mut self, id: ServerId, label: String, out: &mut Vec<Out>) {
        let users = self.users.keys().cloned().collect();
        self.servers.insert(
            id,
            Server {
                label,
                ..Server::default()
            },
        );
        out.push(Out::To(
            id,
            link::encode(&ToServer::Hello {
                server_id: id,
                users,
            }),
        ));
    }

    /// A server's link is gone: its users leave, and everyone else is told.
    pub fn detach(&mut self, id: ServerId, now: u64, out: &mut Vec<Out>) {
        let Some(mut server) = self.servers.remove(&id) else {
            return;
        };
        // Its users are gone, so what it never acknowledged has no recipient left there.
        for msg in std::mem::take(&mut server.unacked) {
            self.acknowledged(msg, out);
        }
        if !server.conns.is_empty() {
            tracing::info!(server = %server.label, users = server.conns.len(), "server gone; its users leave");
        }
        let mut names: Vec<String> = server.conns.into_values().collect();
        names.sort();
        for name in names {
            self.users.remove(&name);
            self.announce_left(name, now, out);
        }
    }

    fn announce_left(&mut self, name: String, ts: u64, out: &mut Vec<Out>) {
        let id = self.next_id();
        out.push(Out::All(link::encode(&ToServer::Left { name, id, ts })));
    }

    fn sender(&self, server: ServerId, conn: ConnId) -> Option<Sender> {
        let name = self.servers.get(&server)?.conns.get(&conn)?;
        let ip = self
            .users
            .get(name)
            .map(|u| u.ip.clone())
            .unwrap_or_default();
        Some(Sender {
            name: name.clone(),
            ip,
        })
    }

    /// Handles one message from server `from`.
    pub fn handle(&mut self, from: ServerId, msg: ToBroker, now: u64, out: &mut Vec<Out>) {
        if !self.servers.contains_key(&from) {
            return;
        }
        match msg {
            ToBroker::Hello { .. } => {
                tracing::warn!(server = from, "second Hello on a link ignored");
            }
            ToBroker::Ping => out.push(Out::To(from, link::encode(&ToServer::Pong))),
            ToBroker::Ack { upto } => self.ack(from, upto, out),
            ToBroker::Register { conn, name, ip } => self.register(from, conn, name, ip, now, out),
            ToBroker::Unregister { conn } => {
                let removed = self
                    .servers
                    .get_mut(&from)
                    .and_then(|s| s.conns.remove(&conn));
                if let Some(name) = removed {
                    self.users.remove(&name);
                    self.announce_left(name, now, out);
                }
            }
            ToBroker::Public { conn, req, msg } => {
                let Some(sender) = self.sender(from, conn) else {
                    return not_logged_in(from, conn, req, out);
                };
                let id = self.next_id();
                let recipients =
                    u32::try_from(self.users.len().saturating_sub(1)).unwrap_or(u32::MAX);
                let event = ToServer::Public {
                    id,
                    ts: now,
                    from: sender,
                    msg,
                    origin: Origin {
                        server: from,
                        conn,
                        req,
                    },
                    recipients,
                };
                out.push(Out::All(link::encode(&event)));
                let servers: Vec<ServerId> = self.servers.keys().copied().collect();
                self.expect_acks(id, &servers, (from, conn, req));
            }
            ToBroker::Private { conn, req, to, msg } => {
                let Some(sender) = self.sender(from, conn) else {
                    return not_logged_in(from, conn, req, out);
                };
                let Some(target) = self.users.get(&to) else {
                    let reason = format!("user '{to}' is not online");
                    out.push(Out::To(
                        from,
                        link::encode(&ToServer::Undeliverable { conn, req, reason }),
                    ));
                    return;
                };
                let (server, to_conn) = (target.server, target.conn);
                let id = self.next_id();
                let event = ToServer::Private {
                    id,
                    ts: now,
                    from: sender,
                    to_conn,
                    to,
                    msg,
                };
                out.push(Out::To(server, link::encode(&event)));
                self.expect_acks(id, &[server], (from, conn, req));
            }
        }
    }

    /// Message `id` went to `servers`; it is confirmed to its origin once they all
    /// acknowledge it (or are gone).
    fn expect_acks(
        &mut self,
        id: u64,
        servers: &[ServerId],
        (origin, conn, req): (ServerId, ConnId, u64),
    ) {
        let mut waiting = 0;
        for s in servers {
            if let Some(server) = self.servers.get_mut(s) {
                server.unacked.push_back(id);
                waiting += 1;
            }
        }
        self.pending.insert(
            id,
            Pending {
                origin,
                conn,
                req,
                waiting,
            },
        );
    }

    /// Server `from` has applied every event up to `upto`.
    fn ack(&mut self, from: ServerId, upto: u64, out: &mut Vec<Out>) {
        let mut done = Vec::new();
        if let Some(server) = self.servers.get_mut(&from) {
            while server.unacked.front().is_some_and(|id| *id <= upto) {
                done.extend(server.unacked.pop_front());
            }
        }
        for id in done {
            self.acknowledged(id, out);
        }
    }

    /// One more server has message `id`: confirm it to its origin if it was the last.
    fn acknowledged(&mut self, id: u64, out: &mut Vec<Out>) {
        let Some(p) = self.pending.get_mut(&id) else {
            return;
        };
        p.waiting = p.waiting.saturating_sub(1);
        if p.waiting > 0 {
            return;
        }
        if let Some(p) = self.pending.remove(&id)
            && self.servers.contains_key(&p.origin)
        {
            out.push(Out::To(
                p.origin,
                link::encode(&ToServer::Delivered {
                    conn: p.conn,
                    req: p.req,
                }),
            ));
        }
    }

    /// Messages waiting for acknowledgements (for tests and logs).
    pub fn unconfirmed(&self) -> usize {
        self.pending.len()
    }

    fn register(
        &mut self,
        from: ServerId,
        conn: ConnId,
        name: String,
        ip: String,
        now: u64,
        out: &mut Vec<Out>,
    ) {
        let refuse = |reason: String, out: &mut Vec<Out>| {
            out.push(Out::To(
                from,
                link::encode(&ToServer::Refused { conn, reason }),
            ));
        };
        if let Err(e) = chat_common::name::validate_name(&name) {
            return refuse(format!("invalid name: {e}"), out);
        }
        if self.users.contains_key(&name) {
            return refuse(format!("the name '{name}' is already in use"), out);
        }
        let Some(server) = self.servers.get_mut(&from) else {
            return;
        };
        if server.conns.contains_key(&conn) {
            return refuse("this connection is already logged in".to_string(), out);
        }
        server.conns.insert(conn, name.clone());
        self.users.insert(
            name.clone(),
            User {
                server: from,
                conn,
                ip,
            },
        );
        let id = self.next_id();
        out.push(Out::To(
            from,
            link::encode(&ToServer::Registered {
                conn,
                name: name.clone(),
                id,
                ts: now,
            }),
        ));
        out.push(Out::AllBut(
            from,
            link::encode(&ToServer::Joined { name, id, ts: now }),
        ));
    }
}

fn not_logged_in(from: ServerId, conn: ConnId, req: u64, out: &mut Vec<Out>) {
    let reason = "you are not logged in".to_string();
    out.push(Out::To(
        from,
        link::encode(&ToServer::Undeliverable { conn, req, reason }),
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use chat_common::link::LinkDecoder;
    use tokio_util::codec::Decoder;

    fn decode(b: &Bytes) -> ToServer {
        LinkDecoder::<ToServer>::new(1 << 20)
            .decode(&mut BytesMut::from(&b[..]))
            .unwrap()
            .unwrap()
    }

    /// What each server receives, decoded, given the servers attached.
    fn deliveries(out: &[Out], servers: &[ServerId]) -> Vec<(ServerId, ToServer)> {
        let mut v = Vec::new();
        for o in out {
            match o {
                Out::To(s, b) => v.push((*s, decode(b))),
                Out::All(b) => v.extend(servers.iter().map(|s| (*s, decode(b)))),
                Out::AllBut(x, b) => {
                    v.extend(servers.iter().filter(|s| *s != x).map(|s| (*s, decode(b))))
                }
            }
        }
        v
    }

    fn two_servers() -> Directory {
        let mut d = Directory::new();
        let mut out = Vec::new();
        d.attach(1, "a".into(), &mut out);
        d.attach(2, "b".into(), &mut out);
        d
    }

    fn reg(
        d: &mut Directory,
        server: ServerId,
        conn: ConnId,
        name: &str,
    ) -> Vec<(ServerId, ToServer)> {
        let mut out = Vec::new();
        d.handle(
            server,
            ToBroker::Register {
                conn,
                name: name.into(),
                ip: "10.0.0.1".into(),
            },
            7,
            &mut out,
        );
        deliveries(&out, &[1, 2])
    }

    #[test]
    fn attach_sends_hello_with_users() {
        let mut d = two_servers();
        reg(&mut d, 1, 10, "alice");
        let mut out = Vec::new();
        d.attach(3, "c".into(), &mut out);
        assert_eq!(
            deliveries(&out, &[]),
            vec![(
                3,
                ToServer::Hello {
                    server_id: 3,
                    users: vec!["alice".into()]
                }
            )]
        );
    }

    #[test]
    fn register_tells_origin_and_others() {
        let mut d = two_servers();
        let got = reg(&mut d, 1, 10, "alice");
        assert_eq!(
            got,
            vec![
                (
                    1,
                    ToServer::Registered {
                        conn: 10,
                        name: "alice".into(),
                        id: 1,
                        ts: 7
                    }
                ),
                (
                    2,
                    ToServer::Joined {
                        name: "alice".into(),
                        id: 1,
                        ts: 7
                    }
                ),
            ]
        );
    }

    #[test]
    fn names_are_unique_across_servers() {
        let mut d = two_servers();
        reg(&mut d, 1, 10, "alice");
        let got = reg(&mut d, 2, 10, "alice");
        assert!(
            matches!(&got[..], [(2, ToServer::Refused { conn: 10, reason })] if reason.contains("already in use"))
        );
        assert_eq!(d.user_count(), 1);
    }

    #[test]
    fn invalid_names_are_refused_even_from_a_server() {
        let mut d = two_servers();
        let got = reg(&mut d, 1, 10, "SERVER");
        assert!(matches!(&got[..], [(1, ToServer::Refused { .. })]));
    }

    #[test]
    fn public_messages_get_increasing_ids_and_reach_every_server_once() {
        let mut d = two_servers();
        reg(&mut d, 1, 10, "alice");
        reg(&mut d, 2, 20, "bob");
        let mut out = Vec::new();
        d.handle(
            1,
            ToBroker::Public {
                conn: 10,
                req: 5,
                msg: "hi".into(),
            },
            9,
            &mut out,
        );
        d.handle(
            2,
            ToBroker::Public {
                conn: 20,
                req: 6,
                msg: "yo".into(),
            },
            9,
            &mut out,
        );
        assert_eq!(out.len(), 2, "one encoded copy per message");
        let got = deliveries(&out, &[1, 2]);
        let ids: Vec<_> = got
            .iter()
            .map(|(s, m)| match m {
                ToServer::Public {
                    id,
                    recipients,
                    origin,
                    ..
                } => {
                    assert_eq!(*recipients, 1);
                    assert!(origin.req == 5 || origin.req == 6);
                    (*s, *id)
                }
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(ids, vec![(1, 3), (2, 3), (1, 4), (2, 4)]);
    }

    #[test]
    fn private_goes_to_the_recipient_server_and_is_acknowledged() {
        let mut d = two_servers();
        reg(&mut d, 1, 10, "alice");
        reg(&mut d, 2, 20, "bob");
        let mut out = Vec::new();
        d.handle(
            1,
            ToBroker::Private {
                conn: 10,
                req: 1,
                to: "bob".into(),
                msg: "psst".into(),
            },
            9,
            &mut out,
        );
        let got = deliveries(&out, &[1, 2]);
        assert!(
            matches!(&got[0], (2, ToServer::Private { to_conn: 20, from, msg, .. }) if from.name == "alice" && from.ip == "10.0.0.1" && msg == "psst")
        );
        assert_eq!(
            got.len(),
            1,
            "no confirmation before bob's server acknowledges"
        );
        let id = got[0].1.id().expect("an id");
        let mut out = Vec::new();
        d.handle(1, ToBroker::Ack { upto: id }, 9, &mut out);
        assert!(
            out.is_empty(),
            "the sender's server acknowledging is not enough"
        );
        d.handle(2, ToBroker::Ack { upto: id }, 9, &mut out);
        assert_eq!(
            deliveries(&out, &[1, 2]),
            vec![(1, ToServer::Delivered { conn: 10, req: 1 })]
        );
        assert_eq!(d.unconfirmed(), 0);
        let mut out = Vec::new();
        d.handle(
            1,
            ToBroker::Private {
                conn: 10,
                req: 2,
                to: "zed".into(),
                msg: "?".into(),
            },
            9,
            &mut out,
        );
        assert!(matches!(
            &deliveries(&out, &[1, 2])[..],
            [(1, ToServer::Undeliverable { req: 2, .. })]
        ));
    }

    #[test]
    fn messages_from_unknown_connections_are_refused_not_dropped() {
        let mut d = two_servers();
        let mut out = Vec::new();
        d.handle(
            1,
            ToBroker::Public {
                conn: 99,
                req: 3,
                msg: "x".into(),
            },
            9,
            &mut out,
        );
        assert!(matches!(
            &deliveries(&out, &[1, 2])[..],
            [(
                1,
                ToServer::Undeliverable {
                    conn: 99,
                    req: 3,
                    ..
                }
            )]
        ));
    }

    #[test]
    fn unregister_and_detach_announce_leaves() {
        let mut d = two_servers();
        reg(&mut d, 1, 10, "alice");
        reg(&mut d, 1, 11, "carol");
        reg(&mut d, 2, 20, "bob");
        let mut out = Vec::new();
        d.handle(2, ToBroker::Unregister { conn: 20 }, 9, &mut out);
        assert!(
            matches!(&deliveries(&out, &[1, 2])[..], [(1, ToServer::Left { name: a, .. }), (2, ToServer::Left { name: b, .. })] if a == "bob" && b == "bob")
        );
        let mut out = Vec::new();
        d.detach(1, 9, &mut out);
        let left: Vec<_> = deliveries(&out, &[2])
            .into_iter()
            .map(|(_, m)| match m {
                ToServer::Left { name, .. } => name,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(left, ["alice", "carol"]);
        assert_eq!(d.user_count(), 0);
        assert_eq!(d.server_count(), 1);
        // The names are free again at once.
        assert!(matches!(
            &reg(&mut d, 2, 21, "alice")[..],
            [(2, ToServer::Registered { .. }), ..]
        ));
    }

    #[test]
    fn ping_is_answered() {
        let mut d = two_servers();
        let mut out = Vec::new();
        d.handle(2, ToBroker::Ping, 0, &mut out);
        assert_eq!(deliveries(&out, &[1, 2]), vec![(2, ToServer::Pong)]);
    }

    fn public(d: &mut Directory, from: ServerId, conn: ConnId, req: u64) -> u64 {
        let mut out = Vec::new();
        d.handle(
            from,
            ToBroker::Public {
                conn,
                req,
                msg: "m".into(),
            },
            1,
            &mut out,
        );
        deliveries(&out, &[1, 2])[0].1.id().expect("id")
    }

    #[test]
    fn a_public_message_is_confirmed_once_every_server_acknowledged_it() {
        let mut d = two_servers();
        reg(&mut d, 1, 10, "alice");
        reg(&mut d, 2, 20, "bob");
        let m1 = public(&mut d, 1, 10, 1);
        let m2 = public(&mut d, 1, 10, 2);
        let mut out = Vec::new();
        // Server 2 acknowledges both at once, server 1 one at a time.
        d.handle(2, ToBroker::Ack { upto: m2 }, 1, &mut out);
        assert!(out.is_empty());
        d.handle(1, ToBroker::Ack { upto: m1 }, 1, &mut out);
        assert_eq!(
            deliveries(&out, &[1, 2]),
            vec![(1, ToServer::Delivered { conn: 10, req: 1 })]
        );
        let mut out = Vec::new();
        d.handle(1, ToBroker::Ack { upto: m2 }, 1, &mut out);
        assert_eq!(
            deliveries(&out, &[1, 2]),
            vec![(1, ToServer::Delivered { conn: 10, req: 2 })]
        );
        // A repeated or stale acknowledgement changes nothing.
        let mut out = Vec::new();
        d.handle(1, ToBroker::Ack { upto: m2 }, 1, &mut out);
        d.handle(2, ToBroker::Ack { upto: 1 }, 1, &mut out);
        assert!(out.is_empty());
        assert_eq!(d.unconfirmed(), 0);
    }

    #[test]
    fn a_server_that_goes_away_no_longer_holds_confirmations_back() {
        let mut d = two_servers();
        reg(&mut d, 1, 10, "alice");
        reg(&mut d, 2, 20, "bob");
        let m = public(&mut d, 1, 10, 7);
        let mut out = Vec::new();
        d.handle(1, ToBroker::Ack { upto: m }, 1, &mut out);
        assert!(out.is_empty());
        d.detach(2, 1, &mut out);
        let got = deliveries(&out, &[1]);
        assert!(
            got.contains(&(1, ToServer::Delivered { conn: 10, req: 7 })),
            "{got:?}"
        );
        // And when the origin is the one that goes, nobody is told and nothing stays.
        reg(&mut d, 1, 11, "carol");
        let m = public(&mut d, 1, 11, 8);
        assert!(m > 0);
        let mut out = Vec::new();
        d.detach(1, 1, &mut out);
        assert_eq!(d.unconfirmed(), 0);
        assert!(
            !deliveries(&out, &[])
                .iter()
                .any(|(_, e)| matches!(e, ToServer::Delivered { .. }))
        );
    }
}
