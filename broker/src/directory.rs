//! The broker's state: who is online where, and the global sequence of events
//! (docs/ARCHITECTURE.md, "Who owns which state"; what clients see of that order:
//! PROTOCOL.md §5.2).
//!
//! This is pure logic: every call takes a message and returns the link messages to send,
//! already encoded, so a broadcast is serialized once and the same bytes go to every
//! server. The I/O around it lives in the broker's routing task.

use std::collections::{HashMap, VecDeque};
use std::ops::Range;

use bytes::Bytes;
use chat_common::link::{self, ConnId, Origin, ServerId, ToBroker, ToServer};
use chat_common::name::{NameTable, Taken};
use chat_common::{Refusal, Sender, Unroutable};

use crate::history::record::{Kind, Record};

/// A link message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Out {
    /// To one server.
    To(ServerId, Bytes),
    /// To every server.
    All(Bytes),
    /// To every server but one.
    AllBut(ServerId, Bytes),
    /// Nothing: a message taken back because its batch could not be stored.
    Withdrawn,
}

/// A message ordered in the current batch, so that the router can take it back when the
/// batch cannot be stored (PROTOCOL.md §10.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ordered {
    /// Its id.
    pub id: u64,
    /// The server it came from.
    pub from: ServerId,
    /// The sender's connection there.
    pub conn: ConnId,
    /// The sender's request.
    pub req: u64,
    /// Where its link messages are in the batch's output.
    pub outs: Range<usize>,
}

/// A login the directory accepted in the current batch: it needs a session chain, whose
/// token goes to its server just before the `Registered` at `out` (PROTOCOL.md §10.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLogin {
    /// The server.
    pub server: ServerId,
    /// The connection there.
    pub conn: ConnId,
    /// The name.
    pub name: String,
    /// Where its `Registered` is in the batch's output.
    pub out: usize,
}

/// What the directory ordered since the journal was last taken: the records for the log
/// and the messages among them.
#[derive(Debug, Default)]
pub struct Journal {
    /// Every event, in order.
    pub records: Vec<Record>,
    /// The public and private messages among them.
    pub messages: Vec<Ordered>,
    /// The logins accepted, waiting for their session chain.
    pub logins: Vec<NewLogin>,
}

/// Where a user is connected.
struct User {
    server: ServerId,
    conn: ConnId,
}

#[derive(Default)]
struct Server {
    label: String,
    /// The users registered through this server, by connection: their names as they typed
    /// them and their addresses, stamped on their messages.
    conns: HashMap<ConnId, Sender>,
    /// Ids of the messages sent to this server that it has not acknowledged yet, in order.
    unacked: VecDeque<u64>,
}

/// The global user directory and event sequence.
#[derive(Default)]
pub struct Directory {
    /// Who is online, by name: no two names that clash (PROTOCOL.md §2.2).
    users: NameTable<User>,
    servers: HashMap<ServerId, Server>,
    seq: u64,
    /// Events given an id, by kind (plain integers: only the router's task touches them).
    ordered: [u64; Kind::ALL.len()],
    /// The id of the last public or private message.
    last_msg: u64,
    /// The last [`ToServer::Stable`] sent.
    stable_sent: u64,
    /// With a history: what was ordered since the router last took it.
    journal: Option<Journal>,
    /// The session chain of each registered connection (PROTOCOL.md §10.3).
    chains: HashMap<(ServerId, ConnId), u64>,
}

impl Directory {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty directory whose ids go on after `last_id` (the log's last), keeping a
    /// journal of what it orders for the log (PROTOCOL.md §10.1).
    pub fn with_history(last_id: u64) -> Self {
        Directory {
            seq: last_id,
            last_msg: last_id,
            stable_sent: last_id,
            journal: Some(Journal::default()),
            ..Self::default()
        }
    }

    /// What was ordered since the last call (empty without a history).
    pub fn take_journal(&mut self) -> Journal {
        self.journal
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// The logins accepted since the last call, waiting for their session chain.
    pub fn take_logins(&mut self) -> Vec<NewLogin> {
        self.journal
            .as_mut()
            .map(|j| std::mem::take(&mut j.logins))
            .unwrap_or_default()
    }

    /// Puts `conn` of `server` in session chain `chain` (a new login's, or the one it
    /// resumed): private messages it sends and receives are logged for that chain.
    pub fn set_chain(&mut self, server: ServerId, conn: ConnId, chain: u64) {
        if self.is_registered(server, conn) {
            self.chains.insert((server, conn), chain);
        }
    }

    /// The session chain of `conn` of `server`, if it has one.
    pub fn chain(&self, server: ServerId, conn: ConnId) -> Option<u64> {
        self.chains.get(&(server, conn)).copied()
    }

    /// The name `conn` of `server` is registered under.
    pub fn name_of(&self, server: ServerId, conn: ConnId) -> Option<&str> {
        let s = self.servers.get(&server)?;
        s.conns.get(&conn).map(|c| c.name.as_str())
    }

    /// Takes back messages of a batch that could not be stored: no server is waiting for
    /// their acknowledgement any more.
    pub fn withdraw(&mut self, ids: &[u64]) {
        for server in self.servers.values_mut() {
            server.unacked.retain(|id| !ids.contains(id));
        }
    }

    /// Callers build the record only when there is a journal: without a history, logging
    /// costs no allocation.
    fn log(&mut self, record: Record) {
        if let Some(j) = &mut self.journal {
            j.records.push(record);
        }
    }

    fn log_message(
        &mut self,
        record: Record,
        from: ServerId,
        conn: ConnId,
        req: u64,
        outs: Range<usize>,
    ) {
        if let Some(j) = &mut self.journal {
            let id = record.id;
            j.records.push(record);
            j.messages.push(Ordered {
                id,
                from,
                conn,
                req,
                outs,
            });
        }
    }

    /// Number of users online.
    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    /// Number of servers attached.
    pub fn server_count(&self) -> usize {
        self.servers.len()
    }

    /// Events ordered since this directory was made, by kind (`Kind::index`): for the
    /// metrics, which the router publishes once per batch.
    pub fn ordered(&self) -> [u64; Kind::ALL.len()] {
        self.ordered
    }

    fn next_id(&mut self, kind: Kind) -> u64 {
        self.ordered[kind.index()] += 1;
        self.seq += 1;
        self.seq
    }

    /// A server completed its handshake: it gets its id and the users online.
    pub fn attach(&mut self, id: ServerId, label: String, out: &mut Vec<Out>) {
        let users = self.users.names().map(str::to_string).collect();
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

    /// A server's link is gone: its users leave, and everyone else is told (what clients
    /// see of it: PROTOCOL.md §6.4).
    pub fn detach(&mut self, id: ServerId, now: u64, out: &mut Vec<Out>) {
        let Some(mut server) = self.servers.remove(&id) else {
            return;
        };
        // Its users are gone: what it never acknowledged no longer holds anything back.
        server.unacked.clear();
        self.chains.retain(|(s, _), _| *s != id);
        if !server.conns.is_empty() {
            tracing::info!(server = %server.label, users = server.conns.len(), "server gone; its users leave");
        }
        let mut gone: Vec<Sender> = server.conns.into_values().collect();
        gone.sort_by(|a, b| a.name.cmp(&b.name));
        for sender in gone {
            self.users.remove(&sender.name);
            self.announce_left(sender, now, out);
        }
    }

    fn announce_left(&mut self, sender: Sender, ts: u64, out: &mut Vec<Out>) {
        let id = self.next_id(Kind::Leave);
        if self.journal.is_some() {
            self.log(Record::new(
                Kind::Leave,
                id,
                ts,
                sender.clone(),
                String::new(),
            ));
        }
        let name = sender.name;
        out.push(Out::All(link::encode(&ToServer::Left { name, id, ts })));
    }

    /// Whether `conn` of `server` is a registered user.
    pub fn is_registered(&self, server: ServerId, conn: ConnId) -> bool {
        self.servers
            .get(&server)
            .is_some_and(|s| s.conns.contains_key(&conn))
    }

    fn sender(&self, server: ServerId, conn: ConnId) -> Option<Sender> {
        self.servers.get(&server)?.conns.get(&conn).cloned()
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
            // Answered by the router from the log, which the directory does not hold.
            ToBroker::History { .. } | ToBroker::Resume { .. } => {}
            ToBroker::Ack { upto } => self.ack(from, upto),
            ToBroker::Register { conn, name, ip } => self.register(from, conn, name, ip, now, out),
            ToBroker::Unregister { conn } => {
                let removed = self
                    .servers
                    .get_mut(&from)
                    .and_then(|s| s.conns.remove(&conn));
                if let Some(sender) = removed {
                    self.chains.remove(&(from, conn));
                    self.users.remove(&sender.name);
                    self.announce_left(sender, now, out);
                }
            }
            ToBroker::Public { conn, req, msg } => {
                let Some(sender) = self.sender(from, conn) else {
                    return not_logged_in(from, conn, req, out);
                };
                let id = self.next_id(Kind::Chat);
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
                let start = out.len();
                out.push(Out::All(link::encode(&event)));
                for server in self.servers.values_mut() {
                    server.unacked.push_back(id);
                }
                self.last_msg = id;
                if self.journal.is_some()
                    && let ToServer::Public {
                        from: sender, msg, ..
                    } = event
                {
                    let record = Record::new(Kind::Chat, id, now, sender, msg);
                    self.log_message(record, from, conn, req, start..out.len());
                }
            }
            ToBroker::Private { conn, req, to, msg } => {
                let Some(sender) = self.sender(from, conn) else {
                    return not_logged_in(from, conn, req, out);
                };
                // Any look-alike of a name reaches its one holder, under the name it typed
                // (PROTOCOL.md §4.1).
                let Some((holder, target)) = self.users.holder(&to) else {
                    let reason = Unroutable::NotOnline { to };
                    out.push(Out::To(
                        from,
                        link::encode(&ToServer::Undeliverable { conn, req, reason }),
                    ));
                    return;
                };
                let (server, to_conn, to) = (target.server, target.conn, holder.to_string());
                let chains = (self.chain(from, conn), self.chain(server, to_conn));
                let id = self.next_id(Kind::Private);
                let event = ToServer::Private {
                    id,
                    ts: now,
                    from: sender,
                    to_conn,
                    to,
                    msg,
                };
                let start = out.len();
                out.push(Out::To(server, link::encode(&event)));
                if let Some(s) = self.servers.get_mut(&server) {
                    s.unacked.push_back(id);
                }
                self.last_msg = id;
                out.push(Out::To(from, link::encode(&ToServer::Routed { req, id })));
                if self.journal.is_some()
                    && let ToServer::Private {
                        from: sender,
                        to,
                        msg,
                        ..
                    } = event
                {
                    // Readable in the history by these two chains only (PROTOCOL.md §10.3).
                    let record = Record {
                        kind: Kind::Private,
                        to_name: Some(to),
                        from_chain: chains.0,
                        to_chain: chains.1,
                        ..Record::new(Kind::Chat, id, now, sender, msg)
                    };
                    self.log_message(record, from, conn, req, start..out.len());
                }
            }
        }
    }

    /// Server `from` has applied every event up to `upto`.
    fn ack(&mut self, from: ServerId, upto: u64) {
        if let Some(server) = self.servers.get_mut(&from) {
            while server.unacked.front().is_some_and(|id| *id <= upto) {
                server.unacked.pop_front();
            }
        }
    }

    /// The highest message id every attached server has applied: just below the oldest
    /// message any of them has not acknowledged.
    pub fn stable(&self) -> u64 {
        self.servers
            .values()
            .filter_map(|s| s.unacked.front())
            .min()
            .map_or(self.last_msg, |oldest| oldest - 1)
    }

    /// A [`ToServer::Stable`] for every server if the stable id advanced since the last one
    /// (the router calls this when its inbox is drained, so once per batch).
    pub fn stable_update(&mut self, out: &mut Vec<Out>) {
        let stable = self.stable();
        if stable > self.stable_sent {
            self.stable_sent = stable;
            out.push(Out::All(link::encode(&ToServer::Stable { upto: stable })));
        }
    }

    /// Connection `conn` of server `from` asks for `name`: it gets it unless the name breaks
    /// the rules or someone online has a name that clashes with it, which the refusal names
    /// (PROTOCOL.md §2.2, the refusals: §2.4).
    fn register(
        &mut self,
        from: ServerId,
        conn: ConnId,
        name: String,
        ip: String,
        now: u64,
        out: &mut Vec<Out>,
    ) {
        let refuse = |reason: Refusal, out: &mut Vec<Out>| {
            out.push(Out::To(
                from,
                link::encode(&ToServer::Refused { conn, reason }),
            ));
        };
        if let Err(e) = chat_common::name::validate_name(&name) {
            return refuse(Refusal::from(e), out);
        }
        let Some(server) = self.servers.get_mut(&from) else {
            return;
        };
        if server.conns.contains_key(&conn) {
            return refuse(Refusal::AlreadyLoggedIn, out);
        }
        let user = User { server: from, conn };
        if let Err(Taken { holder }) = self.users.insert(name.clone(), user) {
            return refuse(Refusal::NameTaken { name: holder }, out);
        }
        let sender = Sender {
            name: name.clone(),
            ip,
        };
        // Copied only for the log, when there is one.
        let joined = self.journal.is_some().then(|| sender.clone());
        server.conns.insert(conn, sender);
        let id = self.next_id(Kind::Join);
        if let Some(j) = &mut self.journal {
            j.logins.push(NewLogin {
                server: from,
                conn,
                name: name.clone(),
                out: out.len(),
            });
        }
        if let Some(sender) = joined {
            self.log(Record::new(Kind::Join, id, now, sender, String::new()));
        }
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
    let reason = Unroutable::NotLoggedIn;
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
                Out::Withdrawn => {}
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
            matches!(&got[..], [(2, ToServer::Refused { conn: 10, reason: Refusal::NameTaken { name } })] if name == "alice")
        );
        assert_eq!(d.user_count(), 1);
    }

    /// A look-alike of an online name (PROTOCOL.md §2.2) is refused, naming the holder.
    #[test]
    fn a_look_alike_of_an_online_name_is_taken() {
        let mut d = two_servers();
        reg(&mut d, 1, 10, "Teacher");
        for (conn, name) in [(20, "teacher"), (21, "TEACHER"), (22, "T\u{435}acher")] {
            let got = reg(&mut d, 2, conn, name);
            assert!(
                matches!(&got[..], [(2, ToServer::Refused { reason: Refusal::NameTaken { name }, .. })] if name == "Teacher"),
                "{name:?}: {got:?}"
            );
        }
        assert_eq!(d.user_count(), 1);
        // Look-alikes of reserved words are refused as reserved, not taken.
        let got = reg(&mut d, 2, 23, "\u{405}\u{415}RV\u{415}R");
        assert!(
            matches!(
                &got[..],
                [(
                    2,
                    ToServer::Refused {
                        reason: Refusal::NameInvalid { .. },
                        ..
                    }
                )]
            ),
            "{got:?}"
        );
    }

    /// A private message addressed by any look-alike reaches the one holder, under the
    /// name it typed (PROTOCOL.md §4.1).
    #[test]
    fn a_private_message_to_a_look_alike_reaches_the_holder() {
        let mut d = two_servers();
        reg(&mut d, 1, 10, "Teacher");
        reg(&mut d, 2, 20, "pupil");
        for (req, to) in [(1, "teacher"), (2, "T\u{435}acher"), (3, "Teacher")] {
            let mut out = Vec::new();
            d.handle(
                2,
                ToBroker::Private {
                    conn: 20,
                    req,
                    to: to.into(),
                    msg: "homework".into(),
                },
                9,
                &mut out,
            );
            let got = deliveries(&out, &[1, 2]);
            assert!(
                matches!(&got[0], (1, ToServer::Private { to_conn: 10, to, from, .. }) if to == "Teacher" && from.name == "pupil"),
                "{to:?}: {got:?}"
            );
            assert!(matches!(got[1], (2, ToServer::Routed { .. })), "{got:?}");
        }
    }

    #[test]
    fn after_the_holder_leaves_a_look_alike_can_log_in() {
        let mut d = two_servers();
        reg(&mut d, 1, 10, "Teacher");
        d.handle(1, ToBroker::Unregister { conn: 10 }, 9, &mut Vec::new());
        let got = reg(&mut d, 2, 20, "teacher");
        assert!(
            matches!(&got[..], [(2, ToServer::Registered { name, .. }), ..] if name == "teacher"),
            "{got:?}"
        );
        // And after the holder's server goes away.
        d.detach(2, 9, &mut Vec::new());
        let got = reg(&mut d, 1, 11, "TEACHER");
        assert!(
            matches!(&got[..], [(1, ToServer::Registered { name, .. }), ..] if name == "TEACHER"),
            "{got:?}"
        );
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
        let id = got[0].1.id().expect("an id");
        assert_eq!(
            got[1],
            (1, ToServer::Routed { req: 1, id }),
            "the sender's server learns the id"
        );
        assert!(
            d.stable() < id,
            "not stable before bob's server acknowledges"
        );
        d.handle(2, ToBroker::Ack { upto: id }, 9, &mut Vec::new());
        assert_eq!(d.stable(), id);
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
    fn the_events_ordered_are_counted_by_kind() {
        let mut d = two_servers();
        reg(&mut d, 1, 10, "alice");
        reg(&mut d, 2, 20, "bob");
        reg(&mut d, 2, 21, "alice"); // taken: refused, no event
        public(&mut d, 1, 10, 1);
        public(&mut d, 2, 20, 2);
        let mut out = Vec::new();
        let psst = ToBroker::Private {
            conn: 10,
            req: 3,
            to: "bob".into(),
            msg: "psst".into(),
        };
        d.handle(1, psst, 1, &mut out);
        d.handle(2, ToBroker::Unregister { conn: 20 }, 9, &mut out);
        assert_eq!(d.ordered(), [2, 1, 2, 1], "chat, private, join, leave");
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

    fn stables(out: &[Out]) -> Vec<u64> {
        deliveries(out, &[1])
            .into_iter()
            .filter_map(|(_, e)| match e {
                ToServer::Stable { upto } => Some(upto),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn the_stable_id_waits_for_the_slowest_server_and_is_sent_when_it_advances() {
        let mut d = two_servers();
        reg(&mut d, 1, 10, "alice");
        reg(&mut d, 2, 20, "bob");
        let m1 = public(&mut d, 1, 10, 1);
        let m2 = public(&mut d, 1, 10, 2);
        assert!(d.stable() < m1, "nobody acknowledged the messages yet");
        let mut out = Vec::new();
        d.stable_update(&mut out);
        assert!(stables(&out).iter().all(|s| *s < m1), "{:?}", stables(&out));
        // Server 2 acknowledges both, server 1 only the first.
        d.handle(2, ToBroker::Ack { upto: m2 }, 1, &mut Vec::new());
        d.handle(1, ToBroker::Ack { upto: m1 }, 1, &mut Vec::new());
        assert_eq!(d.stable(), m1);
        let mut out = Vec::new();
        d.stable_update(&mut out);
        assert_eq!(stables(&out), [m1]);
        let mut out = Vec::new();
        d.stable_update(&mut out);
        assert!(stables(&out).is_empty(), "sent only when it advances");
        d.handle(1, ToBroker::Ack { upto: m2 }, 1, &mut Vec::new());
        assert_eq!(d.stable(), m2);
        // Stale or repeated acknowledgements change nothing.
        d.handle(2, ToBroker::Ack { upto: 1 }, 1, &mut Vec::new());
        assert_eq!(d.stable(), m2);
    }

    #[test]
    fn a_server_that_goes_away_no_longer_holds_the_stable_id_back() {
        let mut d = two_servers();
        reg(&mut d, 1, 10, "alice");
        reg(&mut d, 2, 20, "bob");
        let m = public(&mut d, 1, 10, 7);
        d.handle(1, ToBroker::Ack { upto: m }, 1, &mut Vec::new());
        assert!(d.stable() < m, "server 2 holds it back");
        let mut out = Vec::new();
        d.detach(2, 1, &mut out);
        assert!(d.stable() >= m, "not any more");
    }
}
