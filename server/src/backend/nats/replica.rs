//! Every server's copy of who is online everywhere, built by applying the stream in
//! sequence order (docs/NATS.md, "One order"). Pure, like the broker's `directory.rs`: the
//! same stream gives every server the same replica, so what one server decides from it
//! (is the recipient online at this event? did this join win its name?) every server
//! decides the same way, and the result is this server's share of the core's events.

use std::collections::{HashMap, HashSet};

use chat_common::link::ConnId;
use chat_common::name::{NameTable, Taken};
use chat_common::{Refusal, Sender, Unroutable};

use super::wire::{Holder, Wire};
use crate::core::event::{Event, Own};

/// One user online, as its server and connection know it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Online {
    name: String,
    ip: String,
    chain: String,
}

/// What applying one stream event means for this server.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// The core's events, in order.
    pub events: Vec<Event>,
    /// This server's own incarnation was declared gone: its users are no longer online.
    pub gone_self: bool,
}

/// The replica.
#[derive(Debug, Default)]
pub struct Replica {
    /// Who holds each name (no two that clash): its server and connection.
    names: NameTable<(String, ConnId)>,
    /// Each server's users by connection: a message's sender is found without folding its
    /// name or allocating a key (this is on the way of every message).
    servers: HashMap<String, HashMap<ConnId, Online>>,
    /// Incarnations declared gone: what they write later is ignored.
    gone: HashSet<String>,
}

/// Where a private message goes, as the sender's server stamps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// The name as its holder typed it.
    pub name: String,
    /// Its server.
    pub srv: String,
    /// Its connection.
    pub conn: ConnId,
    /// Its session chain.
    pub chain: String,
}

impl Replica {
    /// An empty replica.
    pub fn new() -> Replica {
        Replica::default()
    }

    /// A replica of what the names bucket holds (read when a server comes up, before it
    /// applies the stream from the sequence read just before).
    pub fn from_holders(holders: impl IntoIterator<Item = Holder>) -> Replica {
        let mut r = Replica::new();
        for h in holders {
            // Entries that clash cannot both have been created; if a damaged bucket has
            // them, the first read holds the name, as in the stream.
            let _ = r.insert(h.name, h.srv, h.conn, h.ip, h.chain);
        }
        r
    }

    fn insert(
        &mut self,
        name: String,
        srv: String,
        conn: ConnId,
        ip: String,
        chain: String,
    ) -> Result<(), Taken> {
        if self.online(&srv, conn).is_some() {
            return Ok(());
        }
        self.names.insert(name.clone(), (srv.clone(), conn))?;
        self.servers
            .entry(srv)
            .or_default()
            .insert(conn, Online { name, ip, chain });
        Ok(())
    }

    fn online(&self, srv: &str, conn: ConnId) -> Option<&Online> {
        self.servers.get(srv)?.get(&conn)
    }

    fn remove(&mut self, srv: &str, conn: ConnId) -> Option<Online> {
        let users = self.servers.get_mut(srv)?;
        let online = users.remove(&conn)?;
        if users.is_empty() {
            self.servers.remove(srv);
        }
        self.names.remove(&online.name);
        Some(online)
    }

    /// Everyone online, as typed.
    pub fn users(&self) -> Vec<String> {
        self.names.names().map(str::to_string).collect()
    }

    /// How many are online.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether nobody is online.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Whether `srv` was declared gone.
    pub fn is_gone(&self, srv: &str) -> bool {
        self.gone.contains(srv)
    }

    /// The servers that hold users now, but `me`.
    pub fn servers(&self, me: &str) -> HashSet<String> {
        self.servers.keys().filter(|s| *s != me).cloned().collect()
    }

    /// The leaves that free what `srv` holds (written by whoever finds it gone).
    pub fn leaves_of(&self, srv: &str) -> Vec<Wire> {
        let Some(users) = self.servers.get(srv) else {
            return Vec::new();
        };
        users
            .iter()
            .map(|(conn, u)| Wire::Leave {
                name: u.name.clone(),
                ip: u.ip.clone(),
                srv: srv.to_string(),
                conn: *conn,
            })
            .collect()
    }

    /// Whether `(srv, conn)` is online.
    pub fn is_online(&self, srv: &str, conn: ConnId) -> bool {
        self.online(srv, conn).is_some()
    }

    /// Who `to` designates now (PROTOCOL.md §2.2: same name, else a look-alike).
    pub fn recipient(&self, to: &str) -> Option<Recipient> {
        let (name, (srv, conn)) = self.names.holder(to)?;
        let online = self.online(srv, *conn)?;
        Some(Recipient {
            name: name.to_string(),
            srv: srv.clone(),
            conn: *conn,
            chain: online.chain.clone(),
        })
    }

    /// The name of `(srv, conn)` if it is online and its server not gone.
    fn sender(&self, srv: &str, conn: ConnId) -> Option<String> {
        if self.gone.contains(srv) {
            return None;
        }
        self.online(srv, conn).map(|o| o.name.clone())
    }

    /// Applies event `id` (service time `ts`) as server `me`.
    pub fn apply(&mut self, id: u64, ts: u64, wire: Wire, me: &str) -> Applied {
        let mut out = Applied::default();
        let ours = |srv: &str| srv == me;
        match wire {
            Wire::Join {
                name,
                ip,
                srv,
                conn,
                chain,
            } => {
                if self.gone.contains(&srv) || self.is_online(&srv, conn) {
                    return out;
                }
                let own = ours(&srv);
                match self.insert(name.clone(), srv, conn, ip, chain) {
                    Ok(()) if own => out.events.push(Event::Registered { conn, name, id, ts }),
                    Ok(()) => out.events.push(Event::Joined { name, id, ts }),
                    // Two joins of clashing names reached the stream (a stale KV entry was
                    // taken over meanwhile): the first in the order holds it, everywhere.
                    Err(Taken { holder }) if own => out.events.push(Event::Refused {
                        conn,
                        reason: Refusal::NameTaken { name: holder },
                    }),
                    Err(_) => {}
                }
            }
            Wire::Leave { srv, conn, .. } => {
                if let Some(online) = self.remove(&srv, conn) {
                    let name = online.name;
                    out.events.push(Event::Left { name, id, ts });
                }
            }
            Wire::Gone { srv } => {
                out.gone_self = ours(&srv);
                self.gone.insert(srv);
            }
            Wire::Chat {
                srv,
                conn,
                ip,
                req,
                msg,
                ..
            } => {
                let own = ours(&srv).then_some(Own { conn, req });
                match self.sender(&srv, conn) {
                    Some(name) => out.events.push(Event::Public {
                        id,
                        ts,
                        from: Sender { name, ip },
                        msg,
                        own,
                        recipients: u32::try_from(self.len().saturating_sub(1)).unwrap_or(u32::MAX),
                    }),
                    None if own.is_some() => out.events.push(Event::Undeliverable {
                        req,
                        reason: Unroutable::NotLoggedIn,
                    }),
                    None => {}
                }
            }
            Wire::Private {
                srv,
                conn,
                ip,
                req,
                to,
                to_srv,
                to_conn,
                msg,
                ..
            } => {
                let own = ours(&srv);
                let Some(name) = self.sender(&srv, conn) else {
                    if own {
                        out.events.push(Event::Undeliverable {
                            req,
                            reason: Unroutable::NotLoggedIn,
                        });
                    }
                    return out;
                };
                // Still the same holder at this point of the order?
                let holder = self.online(&to_srv, to_conn).is_some_and(|o| o.name == to);
                if !holder {
                    if own {
                        out.events.push(Event::Undeliverable {
                            req,
                            reason: Unroutable::NotOnline { to },
                        });
                    }
                    return out;
                }
                if ours(&to_srv) {
                    out.events.push(Event::Private {
                        id,
                        ts,
                        from: Sender { name, ip },
                        to_conn,
                        to,
                        msg,
                    });
                }
                if own {
                    out.events.push(Event::Routed { req, id });
                }
            }
            Wire::Chain { srv, conn, chain } => {
                let Some(online) = self.servers.get_mut(&srv).and_then(|u| u.get_mut(&conn)) else {
                    return out;
                };
                online.chain = chain;
                if ours(&srv) {
                    out.events.push(Event::Resumed { conn });
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn join(name: &str, srv: &str, conn: ConnId) -> Wire {
        Wire::Join {
            name: name.into(),
            ip: "10.0.0.1".into(),
            srv: srv.into(),
            conn,
            chain: format!("chain-{name}"),
        }
    }

    fn chat(srv: &str, conn: ConnId, req: u64) -> Wire {
        Wire::Chat {
            name: "whoever".into(),
            srv: srv.into(),
            conn,
            ip: "10.0.0.1".into(),
            req,
            msg: "hi".into(),
        }
    }

    fn private(srv: &str, conn: ConnId, to: &str, to_srv: &str, to_conn: ConnId) -> Wire {
        Wire::Private {
            name: "whoever".into(),
            srv: srv.into(),
            conn,
            ip: "10.0.0.1".into(),
            req: 7,
            chain: "c".into(),
            to: to.into(),
            to_srv: to_srv.into(),
            to_conn,
            to_chain: "d".into(),
            msg: "psst".into(),
        }
    }

    fn leave(srv: &str, conn: ConnId) -> Wire {
        Wire::Leave {
            name: "whoever".into(),
            ip: "i".into(),
            srv: srv.into(),
            conn,
        }
    }

    #[test]
    fn a_join_is_registered_on_its_server_and_joined_elsewhere() {
        let (mut a, mut b) = (Replica::new(), Replica::new());
        let ea = a.apply(1, 5, join("alice", "A", 3), "A").events;
        let eb = b.apply(1, 5, join("alice", "A", 3), "B").events;
        assert_eq!(
            ea,
            vec![Event::Registered {
                conn: 3,
                name: "alice".into(),
                id: 1,
                ts: 5
            }]
        );
        assert_eq!(
            eb,
            vec![Event::Joined {
                name: "alice".into(),
                id: 1,
                ts: 5
            }]
        );
        // Applying it again (a snapshot already had it) changes nothing.
        assert!(b.apply(2, 5, join("alice", "A", 3), "B").events.is_empty());
        assert_eq!(b.users(), vec!["alice".to_string()]);
    }

    #[test]
    fn the_first_of_two_clashing_joins_wins_everywhere() {
        let mut a = Replica::new();
        a.apply(1, 0, join("Teacher", "B", 1), "A");
        let got = a.apply(2, 0, join("teacher", "A", 2), "A").events;
        assert_eq!(
            got,
            vec![Event::Refused {
                conn: 2,
                reason: Refusal::NameTaken {
                    name: "Teacher".into()
                }
            }]
        );
        assert_eq!(a.len(), 1);
    }

    #[test]
    fn public_messages_are_stamped_from_the_replica_and_own_ones_marked() {
        let mut a = Replica::new();
        a.apply(1, 0, join("alice", "A", 3), "A");
        a.apply(2, 0, join("bob", "B", 4), "A");
        match &a.apply(3, 9, chat("A", 3, 11), "A").events[..] {
            [
                Event::Public {
                    id: 3,
                    from,
                    own: Some(Own { conn: 3, req: 11 }),
                    recipients: 1,
                    ..
                },
            ] => assert_eq!(from.name, "alice"),
            other => panic!("{other:?}"),
        }
        match &a.apply(4, 9, chat("B", 4, 1), "A").events[..] {
            [
                Event::Public {
                    own: None, from, ..
                },
            ] => assert_eq!(from.name, "bob"),
            other => panic!("{other:?}"),
        }
        // A sender that is not online: its own server tells it, the others ignore it.
        assert_eq!(
            a.apply(5, 9, chat("A", 99, 12), "A").events,
            vec![Event::Undeliverable {
                req: 12,
                reason: Unroutable::NotLoggedIn
            }]
        );
        assert!(a.apply(6, 9, chat("B", 99, 12), "A").events.is_empty());
    }

    #[test]
    fn a_private_message_goes_to_its_holder_and_is_routed_for_its_sender() {
        let (mut a, mut b) = (Replica::new(), Replica::new());
        for r in [&mut a, &mut b] {
            r.apply(1, 0, join("alice", "A", 3), "x");
            r.apply(2, 0, join("bob", "B", 4), "x");
        }
        let msg = private("A", 3, "bob", "B", 4);
        assert_eq!(
            a.apply(3, 0, msg.clone(), "A").events,
            vec![Event::Routed { req: 7, id: 3 }]
        );
        match &b.apply(3, 0, msg, "B").events[..] {
            [
                Event::Private {
                    to_conn: 4,
                    to,
                    from,
                    ..
                },
            ] => {
                assert_eq!((to.as_str(), from.name.as_str()), ("bob", "alice"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_recipient_that_left_before_the_message_in_the_order_gets_nothing() {
        let mut b = Replica::new();
        b.apply(1, 0, join("alice", "A", 3), "B");
        b.apply(2, 0, join("bob", "B", 4), "B");
        b.apply(3, 0, leave("B", 4), "B");
        // bob's name is taken again, by someone else, before the message.
        b.apply(4, 0, join("bob", "C", 9), "B");
        let msg = private("A", 3, "bob", "B", 4);
        assert!(b.apply(5, 0, msg.clone(), "B").events.is_empty());
        assert_eq!(
            b.apply(5, 0, msg, "A").events,
            vec![Event::Undeliverable {
                req: 7,
                reason: Unroutable::NotOnline { to: "bob".into() }
            }]
        );
    }

    #[test]
    fn a_gone_server_is_ignored_after_and_learns_it_was_declared_gone() {
        let mut a = Replica::new();
        a.apply(1, 0, join("carol", "C", 1), "A");
        let applied = a.apply(2, 0, Wire::Gone { srv: "C".into() }, "C");
        assert!(applied.gone_self);
        assert!(!a.apply(2, 0, Wire::Gone { srv: "C".into() }, "A").gone_self);
        // What it writes after its Gone counts for nothing...
        assert!(a.apply(3, 0, join("dave", "C", 2), "A").events.is_empty());
        assert!(a.apply(4, 0, chat("C", 1, 1), "A").events.is_empty());
        // ...and its users' leaves, written by whoever found it gone, free the names.
        let leaves = a.leaves_of("C");
        assert_eq!(
            leaves,
            vec![Wire::Leave {
                name: "carol".into(),
                ip: "10.0.0.1".into(),
                srv: "C".into(),
                conn: 1
            }]
        );
        let left = a.apply(5, 0, leaves[0].clone(), "A");
        assert_eq!(
            left.events,
            vec![Event::Left {
                name: "carol".into(),
                id: 5,
                ts: 0
            }]
        );
        assert!(a.is_empty() && a.servers("A").is_empty());
    }

    #[test]
    fn a_resumed_chain_is_stamped_on_later_private_messages() {
        let mut a = Replica::new();
        a.apply(1, 0, join("alice", "A", 3), "A");
        assert_eq!(
            a.recipient("ALICE").map(|r| r.chain),
            Some("chain-alice".into())
        );
        let got = a.apply(
            2,
            0,
            Wire::Chain {
                srv: "A".into(),
                conn: 3,
                chain: "old".into(),
            },
            "A",
        );
        assert_eq!(got.events, vec![Event::Resumed { conn: 3 }]);
        assert_eq!(a.recipient("alice").map(|r| r.chain), Some("old".into()));
    }

    #[test]
    fn a_snapshot_then_the_stream_agrees_with_the_stream_alone() {
        let holders = [Holder {
            name: "alice".into(),
            srv: "A".into(),
            conn: 3,
            ip: "i".into(),
            chain: "c".into(),
        }];
        let mut r = Replica::from_holders(holders);
        // The join the snapshot already had, then a leave after it.
        assert!(r.apply(1, 0, join("alice", "A", 3), "B").events.is_empty());
        assert_eq!(r.apply(2, 0, leave("A", 3), "B").events.len(), 1);
        assert!(r.is_empty());
    }
}
