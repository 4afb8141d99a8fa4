//! A second backend, for tests: a chat service for one server, in memory, answering at
//! once. Every session and command test runs against it unchanged, which is what proves
//! the seam: nothing above [`crate::backend::Backend`] knows which service it talks to.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use chat_common::link::ConnId;
use chat_common::name::{NameTable, Taken};
use chat_common::{Refusal, Sender, Unroutable};

use crate::backend::{Backend, Unavailable};
use crate::core::event::{Event, Own};
use crate::core::hub::Hub;
use crate::core::requests::ReqId;

#[derive(Default)]
struct Directory {
    /// Who has which name (no two that clash, like the broker: PROTOCOL.md §2.2).
    names: NameTable<ConnId>,
    /// Each registered connection's name and address.
    by_conn: HashMap<ConnId, Sender>,
    seq: u64,
}

impl Directory {
    /// The sender of `conn`'s messages, if it is registered.
    fn sender(&self, conn: ConnId) -> Option<Sender> {
        self.by_conn.get(&conn).cloned()
    }

    /// The next event id.
    fn next_id(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }
}

/// The in-memory service. Its events go to `hub` before the call returns.
pub struct FakeBackend {
    hub: Arc<Hub>,
    dir: Mutex<Directory>,
}

impl FakeBackend {
    /// A service with nobody online, reachable: `hub` hears `Up` at once.
    pub fn up(hub: Arc<Hub>) -> FakeBackend {
        hub.apply(Event::Up { users: vec![] });
        FakeBackend {
            hub,
            dir: Mutex::default(),
        }
    }

    fn dir(&self) -> std::sync::MutexGuard<'_, Directory> {
        self.dir.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn reachable(&self) -> Result<(), Unavailable> {
        if self.hub.is_up() {
            Ok(())
        } else {
            Err(Unavailable)
        }
    }

    fn ts() -> u64 {
        chat_common::clock::now_ms()
    }

    fn apply(&self, events: Vec<Event>) {
        for e in events {
            self.hub.apply(e);
        }
    }
}

impl Backend for FakeBackend {
    fn register(
        &self,
        conn: ConnId,
        name: &str,
        ip: &str,
    ) -> impl Future<Output = Result<(), Unavailable>> + Send {
        let result = self.reachable().map(|()| {
            let mut d = self.dir();
            let event = match d.names.insert(name.into(), conn) {
                Err(Taken { holder }) => Event::Refused {
                    conn,
                    reason: Refusal::NameTaken { name: holder },
                },
                Ok(()) => {
                    let sender = Sender {
                        name: name.into(),
                        ip: ip.into(),
                    };
                    d.by_conn.insert(conn, sender);
                    Event::Registered {
                        conn,
                        name: name.into(),
                        id: d.next_id(),
                        ts: Self::ts(),
                    }
                }
            };
            drop(d);
            self.apply(vec![event]);
        });
        std::future::ready(result)
    }

    fn unregister(&self, conn: ConnId) -> impl Future<Output = ()> + Send {
        let mut d = self.dir();
        if let Some(Sender { name, .. }) = d.by_conn.remove(&conn) {
            d.names.remove(&name);
            let id = d.next_id();
            drop(d);
            self.apply(vec![Event::Left {
                name,
                id,
                ts: Self::ts(),
            }]);
        }
        std::future::ready(())
    }

    fn publish(
        &self,
        conn: ConnId,
        req: ReqId,
        text: String,
    ) -> impl Future<Output = Result<(), Unavailable>> + Send {
        let result = self.reachable().map(|()| {
            let mut d = self.dir();
            let events = match d.sender(conn) {
                None => vec![Event::Undeliverable {
                    req,
                    reason: Unroutable::NotLoggedIn,
                }],
                Some(from) => {
                    let id = d.next_id();
                    let recipients = u32::try_from(d.names.len() - 1).unwrap_or(u32::MAX);
                    vec![
                        Event::Public {
                            id,
                            ts: Self::ts(),
                            from,
                            msg: text,
                            own: Some(Own { conn, req }),
                            recipients,
                        },
                        Event::Stable { upto: id },
                    ]
                }
            };
            drop(d);
            self.apply(events);
        });
        std::future::ready(result)
    }

    fn send_private(
        &self,
        conn: ConnId,
        req: ReqId,
        to: String,
        text: String,
    ) -> impl Future<Output = Result<(), Unavailable>> + Send {
        let result = self.reachable().map(|()| {
            let mut d = self.dir();
            // The one holder of any look-alike of `to`, under its own name (PROTOCOL.md §4.1).
            let target = d.names.holder(&to).map(|(name, c)| (*c, name.to_string()));
            let events = match (d.sender(conn), target) {
                (None, _) => vec![Event::Undeliverable {
                    req,
                    reason: Unroutable::NotLoggedIn,
                }],
                (Some(_), None) => vec![Event::Undeliverable {
                    req,
                    reason: Unroutable::NotOnline { to },
                }],
                (Some(from), Some((to_conn, to))) => {
                    let id = d.next_id();
                    vec![
                        Event::Private {
                            id,
                            ts: Self::ts(),
                            from,
                            to_conn,
                            to,
                            msg: text,
                        },
                        Event::Routed { req, id },
                        Event::Stable { upto: id },
                    ]
                }
            };
            drop(d);
            self.apply(events);
        });
        std::future::ready(result)
    }

    fn resume(
        &self,
        conn: ConnId,
        _token: String,
    ) -> impl Future<Output = Result<(), Unavailable>> + Send {
        // No sessions without a log.
        let result = self
            .reachable()
            .map(|()| self.apply(vec![Event::ResumeFailed { conn }]));
        std::future::ready(result)
    }

    fn history(
        &self,
        conn: ConnId,
        _query: chat_common::history::Query,
        _chat_only: bool,
    ) -> impl Future<Output = Result<(), Unavailable>> + Send {
        // The fake keeps no log: it answers as a broker with `--history off` does.
        let result = self
            .reachable()
            .map(|()| self.apply(vec![Event::HistoryOff { conn }]));
        std::future::ready(result)
    }
}
