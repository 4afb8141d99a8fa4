//! The core of one server: its clients, its replica of the user list, its presence policy
//! and its open requests, behind one lock, and the thin dispatcher that applies the chat
//! service's [`Event`]s to them.
//!
//! Each part lives in its own file and knows nothing of the others; this file only routes
//! an event to the parts it concerns and turns their answers into frames. The lock is a
//! `std::sync::Mutex` held for in-memory work only (never across an `.await` or a socket
//! call): a fan-out pushes shared bytes onto byte-bounded queues and moves on.
//!
//! Who calls what (docs/ARCHITECTURE.md, "Who owns which state"): sessions call
//! `begin_login`, `leave`, `open_request`; the backend calls `apply` and `presence_tick`.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use chat_common::frame::Service;
use chat_common::link::ConnId;
use chat_common::{ChatError, Refusal};
use tokio::sync::oneshot;

use crate::core::clients::{ClientInfo, Clients, LoginResult};
use crate::core::event::{Event, FollowUp, Own};
use crate::core::frames;
use crate::core::presence::{Presence, PresencePolicy, Summary};
use crate::core::requests::{Asker, Label, ReqId, Requests};
use crate::core::roster::Roster;
use crate::core::stats::{BackendMetrics, Stats};

struct State {
    clients: Clients,
    /// Everyone online on every server, kept current by the service's events.
    users: Roster,
    presence: Presence,
    requests: Requests,
    /// Whether the service is reachable.
    up: bool,
    /// Resume tokens that came for logins whose `Registered` is next (PROTOCOL.md §10.4):
    /// held only for that moment, not for the connection's life.
    tokens: std::collections::HashMap<ConnId, String>,
}

/// The shared state of one server process.
pub struct Hub {
    state: Mutex<State>,
    server_ip: String,
    /// The counters (outside the lock: counting never takes it).
    stats: Arc<Stats>,
}

impl Hub {
    /// A hub with no clients, the service not yet reachable. `server_ip` goes into `from`
    /// of the frames the server makes.
    pub fn new(server_ip: String, presence: PresencePolicy) -> Self {
        let clients = Clients::new(server_ip.clone());
        let stats = clients.stats().clone();
        Hub {
            stats,
            state: Mutex::new(State {
                clients,
                users: Roster::default(),
                presence: Presence::new(presence),
                requests: Requests::new(),
                up: false,
                tokens: std::collections::HashMap::new(),
            }),
            server_ip,
        }
    }

    /// The IP stamped on server-generated frames.
    pub fn server_ip(&self) -> &str {
        &self.server_ip
    }

    /// The server's counters (README, "Metrics").
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The handle any backend reports its state through (its name, up or down, what is
    /// queued to its service); the hub adds the round trips it sees.
    pub fn backend_metrics(&self) -> &BackendMetrics {
        &self.stats.backend
    }

    /// Counts the round trip of a request opened at `opened` (if it was ours and not yet
    /// answered). Measured here, in the core, for every backend alike: the request's entry
    /// is already at hand under the lock, so timing it costs two clock reads and no map of
    /// its own, where a backend would need one (with its lock) per request in flight.
    fn round_trip(&self, opened: Option<Instant>) {
        if let Some(at) = opened {
            self.stats.backend.observe_round_trip(at.elapsed());
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock would be a bug; keep serving with the data as is
        // rather than taking every connection down with it.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Users online across all servers, sorted; shared, not copied (`/list` asks often).
    pub fn users(&self) -> Arc<[String]> {
        self.lock().users.list()
    }

    /// Users online, and the bytes their names take in a `/list` answer: what the flood
    /// budget charges for a message to everyone and for `/list` (PROTOCOL.md §6.7).
    pub fn audience(&self) -> (usize, usize) {
        let st = self.lock();
        (st.users.len(), st.users.encoded_len())
    }

    /// Users online across all servers, from this server's replica.
    pub fn users_online(&self) -> usize {
        self.lock().users.len()
    }

    /// Local clients, logged in or logging in.
    pub fn local_clients(&self) -> usize {
        self.lock().clients.len()
    }

    /// Open requests (sent, not yet confirmed delivered).
    pub fn open_requests(&self) -> usize {
        self.lock().requests.len()
    }

    /// Whether the chat service is reachable.
    pub fn is_up(&self) -> bool {
        self.lock().up
    }

    /// Starts a login: the client is pending (it receives nothing) until the service
    /// answers. Refused at once when the service is unreachable.
    pub fn begin_login(
        &self,
        conn: ConnId,
        info: ClientInfo,
    ) -> Result<oneshot::Receiver<LoginResult>, Refusal> {
        let mut st = self.lock();
        if !st.up {
            return Err(Refusal::Unavailable);
        }
        let (done, answer) = oneshot::channel();
        st.clients.add_pending(conn, info, done, Instant::now());
        Ok(answer)
    }

    /// Removes a client. Returns whether the service must be told (it was logged in; a
    /// registration still pending is undone when its answer finds no client).
    pub fn leave(&self, conn: ConnId) -> bool {
        let mut st = self.lock();
        st.clients.remove(conn).unwrap_or(false) && st.up
    }

    /// Opens a request for message `text` from `conn`, to hand to the backend. Fails at
    /// once, with the error for its sender, when the service is unreachable.
    pub fn open_request(
        &self,
        conn: ConnId,
        confirm: bool,
        text: &str,
        label: Label,
    ) -> Result<ReqId, ChatError> {
        let mut st = self.lock();
        if !st.up {
            return Err(ChatError::NotDelivered {
                excerpt: chat_common::error::Excerpt::of(text),
            });
        }
        Ok(st.requests.open(conn, confirm, text, label, Instant::now()))
    }

    /// The backend could not take request `req`: its sender is told, unless it was already.
    pub fn fail_request(&self, req: ReqId) {
        let mut st = self.lock();
        if let Some((asker, err)) = st.requests.cancel(req) {
            st.clients.send_answer_error(asker, &err);
        }
    }

    /// A second has passed: the joins and leaves that were only counted are told.
    pub fn presence_tick(&self) {
        let mut st = self.lock();
        let online = st.users.len();
        let frame = match st.presence.tick(online) {
            None => return,
            Some(Summary::Large {
                online,
                joined,
                left,
            }) => frames::large_room(&self.server_ip, online, joined, left),
            Some(Summary::Burst { joined, left }) => {
                let names = st.users.list().to_vec();
                frames::presence_burst(&self.server_ip, joined, left, names)
            }
        };
        st.clients.broadcast(&frame, None);
    }

    /// Applies one event of the chat service; returns what the backend must do next.
    pub fn apply(&self, event: Event) -> Vec<FollowUp> {
        let mut st = self.lock();
        let st = &mut *st;
        match event {
            Event::Up { users } => return self.service_up(st, users),
            Event::Down => self.service_down(st),
            Event::Detached => st.up = false,
            Event::Registered { conn, name, id, ts } => {
                self.round_trip(st.clients.pending_since(conn));
                // Taken first: a client that left meanwhile must not leave its token here.
                let resume = st.tokens.remove(&conn);
                // The name is online until the service says it left, even if its client
                // already went (its registration is undone below).
                st.users.insert(name.clone());
                if !st.clients.contains(conn) {
                    return vec![FollowUp::Unregister { conn }];
                }
                // In a large room the welcome carries the count, not every name: the
                // list is what `/list` is for.
                let online = st.users.len();
                let users = (!st.presence.is_large(online)).then(|| st.users.list().to_vec());
                let mut welcome = frames::welcome(&self.server_ip, &name, users, online);
                welcome.resume = resume;
                if st.clients.activate(conn, &welcome) {
                    self.presence(st, &name, true, (id, ts), Some(conn));
                }
            }
            Event::Refused { conn, reason } => {
                self.round_trip(st.clients.pending_since(conn));
                st.clients.refuse(conn, reason);
            }
            Event::Joined { name, id, ts } => {
                st.users.insert(name.clone());
                self.presence(st, &name, true, (id, ts), None);
            }
            Event::Left { name, id, ts } => {
                // Judged by the size before the leave, like the join was.
                let online = st.users.len();
                st.users.remove(&name);
                self.presence_judged(st, &name, false, (id, ts), None, online);
            }
            Event::Public {
                id,
                ts,
                from,
                msg,
                own,
                recipients,
            } => {
                let frame = frames::chat(from, msg, id, ts);
                st.clients.broadcast(&frame, own.map(|o| o.conn));
                if let Some(Own { req, .. }) = own {
                    self.round_trip(st.requests.answered(req));
                    if let Some(asker) = st.requests.sent_out(req, id) {
                        self.confirm(st, asker, recipients, id);
                    }
                }
            }
            Event::Private {
                id,
                ts,
                from,
                to_conn,
                to,
                msg,
            } => {
                if st.clients.contains(to_conn) {
                    st.clients
                        .send(to_conn, &frames::private(from, to, msg, id, ts));
                } else {
                    tracing::debug!(%to, "private message for a client that just left");
                }
            }
            Event::Routed { req, id } => {
                self.round_trip(st.requests.answered(req));
                // A private message: confirmed only when labelled (PROTOCOL.md §3.4).
                if let Some(asker) = st.requests.sent_out(req, id) {
                    self.confirm(st, asker, 1, id);
                }
            }
            Event::Stable { upto } => st.requests.stable(upto),
            Event::History {
                conn,
                epoch,
                events,
                more,
                gap,
            } => {
                let count = u32::try_from(events.len()).unwrap_or(u32::MAX);
                if let Some(name) = st.clients.name(conn) {
                    let ip = &self.server_ip;
                    let end = frames::history_end(ip, name, epoch, count, more, gap);
                    let page = events.into_iter().map(|e| frames::replayed(ip, e));
                    st.clients.send_all(conn, page.chain([end]));
                }
            }
            Event::HistoryOff { conn } => st.clients.send_error(conn, &ChatError::HistoryOff),
            Event::Session { conn, token } => {
                st.tokens.insert(conn, token);
            }
            Event::Resumed { conn } => {
                if let Some(name) = st.clients.name(conn) {
                    let f = frames::system(
                        &self.server_ip,
                        name,
                        "Session resumed: /history shows its private messages too.",
                    );
                    st.clients.send(conn, &f);
                }
            }
            Event::ResumeFailed { conn } => st.clients.send_error(conn, &ChatError::ResumeFailed),
            Event::Undeliverable { req, reason } => {
                self.round_trip(st.requests.answered(req));
                if let Some((asker, err)) = st.requests.undeliverable(req, reason) {
                    st.clients.send_answer_error(asker, &err);
                }
            }
        }
        Vec::new()
    }

    /// Tells `asker` its message went out as event `id`, to `recipients` users.
    fn confirm(&self, st: &State, asker: Asker, recipients: u32, id: u64) {
        if let Some(name) = st.clients.name(asker.conn) {
            let f = frames::sent_to(&self.server_ip, name, recipients, id, asker.label);
            st.clients.send(asker.conn, &f);
        }
    }

    /// The service is reachable: take its user list, and register again the clients that
    /// were logged in before (it restarted, or this is a new link to it).
    fn service_up(&self, st: &mut State, users: Vec<String>) -> Vec<FollowUp> {
        st.up = true;
        st.users.replace(users);
        let again: Vec<FollowUp> = st
            .clients
            .active()
            .map(|(conn, info)| FollowUp::Register {
                conn,
                name: info.name.clone(),
                ip: info.ip.clone(),
            })
            .collect();
        again
    }

    /// Tells every client the service is back. The backend calls it once the clients'
    /// registrations are on the new link, not before: a client that hears it and speaks at
    /// once must reach the service after its own registration, or it would be refused as
    /// not logged in (PROTOCOL.md §6.4).
    pub fn announce_back(&self) {
        let st = self.lock();
        st.clients
            .broadcast(&frames::service(&self.server_ip, Service::Up), None);
    }

    /// The service is lost: pending logins fail, every open request is reported to its
    /// sender, and everyone is told the chat is degraded.
    fn service_down(&self, st: &mut State) {
        // A token whose `Registered` never came is for a login that just failed.
        st.tokens.clear();
        if !std::mem::take(&mut st.up) {
            return;
        }
        st.clients.fail_pending(&Refusal::Unavailable);
        for (asker, err) in st.requests.service_lost() {
            st.clients.send_answer_error(asker, &err);
        }
        st.clients
            .broadcast(&frames::service(&self.server_ip, Service::Down), None);
    }

    fn presence(
        &self,
        st: &mut State,
        name: &str,
        joined: bool,
        at: (u64, u64),
        except: Option<ConnId>,
    ) {
        let online = st.users.len();
        self.presence_judged(st, name, joined, at, except, online);
    }

    /// Announces a join or leave to every local client but `except`, unless the presence
    /// policy says to only count it.
    fn presence_judged(
        &self,
        st: &mut State,
        name: &str,
        joined: bool,
        (id, ts): (u64, u64),
        except: Option<ConnId>,
        online: usize,
    ) {
        // One frame per local client but the one excluded (pending logins count too:
        // close enough, and never an underestimate).
        let cost = st
            .clients
            .len()
            .saturating_sub(usize::from(except.is_some())) as u64;
        if st.presence.on_change(joined, online, cost) {
            let notice = frames::presence(&self.server_ip, name, joined, id, ts);
            st.clients.broadcast(&notice, except);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::clients::testing::{client, drain};
    use crate::core::frames::{BACK, DEGRADED};
    use chat_common::{ErrorCode, FrameKind, Sender, Unroutable};
    use netkit::queue::QueueRx;

    fn hub() -> Hub {
        Hub::new(
            "10.0.0.9".into(),
            PresencePolicy {
                limit: 1000,
                budget: 0,
            },
        )
    }

    /// Logs `name` in as `conn` on a hub whose service is up; returns its queue.
    fn login(h: &Hub, conn: ConnId, name: &str, id: u64) -> QueueRx {
        let (i, mut rx) = client(name, 1 << 20);
        let mut answer = h.begin_login(conn, i).expect("up");
        h.apply(Event::Registered {
            conn,
            name: name.into(),
            id,
            ts: 1,
        });
        assert_eq!(answer.try_recv(), Ok(Ok(())));
        let first = drain(&mut rx);
        assert_eq!(first[0].kind, Some(FrameKind::Welcome));
        rx
    }

    fn sender(name: &str) -> Sender {
        Sender {
            name: name.into(),
            ip: "10.0.0.1".into(),
        }
    }

    #[test]
    fn the_welcome_carries_the_resume_token_that_came_just_before_it() {
        let h = hub();
        h.apply(Event::Up { users: vec![] });
        let (i, mut rx) = client("al", 1 << 20);
        let _answer = h.begin_login(1, i).expect("up");
        h.apply(Event::Session {
            conn: 1,
            token: "t0k3n".into(),
        });
        h.apply(Event::Registered {
            conn: 1,
            name: "al".into(),
            id: 1,
            ts: 1,
        });
        let welcome = &drain(&mut rx)[0];
        assert_eq!(welcome.kind, Some(FrameKind::Welcome));
        assert_eq!(welcome.resume.as_deref(), Some("t0k3n"));
        // The next login of that connection number gets no stale token.
        assert!(
            h.state
                .lock()
                .map(|st| st.tokens.is_empty())
                .unwrap_or(false)
        );
    }

    #[test]
    fn logins_are_refused_until_the_service_is_up() {
        let h = hub();
        let (i, _rx) = client("al", 1 << 20);
        assert_eq!(h.begin_login(1, i).err(), Some(Refusal::Unavailable));
        assert!(
            h.apply(Event::Up {
                users: vec!["bo".into()]
            })
            .is_empty()
        );
        let _al = login(&h, 1, "al", 1);
        assert_eq!(&*h.users(), ["al", "bo"]);
    }

    #[test]
    fn a_public_message_reaches_everyone_but_its_sender_who_gets_the_confirmation() {
        let h = hub();
        h.apply(Event::Up { users: vec![] });
        let mut al = login(&h, 1, "al", 1);
        let mut bo = login(&h, 2, "bo", 2);
        assert_eq!(
            drain(&mut al)[0].kind,
            Some(FrameKind::Join),
            "al sees bo join"
        );
        let req = h.open_request(1, true, "hello", None).expect("up");
        h.apply(Event::Public {
            id: 3,
            ts: 5,
            from: sender("al"),
            msg: "hello".into(),
            own: Some(Own { conn: 1, req }),
            recipients: 1,
        });
        let to_bo = drain(&mut bo);
        assert_eq!(
            (to_bo.len(), to_bo[0].msg.as_str(), to_bo[0].id),
            (1, "hello", Some(3))
        );
        let to_al = drain(&mut al);
        assert_eq!(to_al.len(), 1);
        assert_eq!(to_al[0].msg, "Message sent to 1 user");
        assert_eq!(h.open_requests(), 1, "out, not yet stable");
        h.apply(Event::Stable { upto: 3 });
        assert_eq!(h.open_requests(), 0);
        assert_eq!(
            h.backend_metrics().round_trip().count(),
            3,
            "two logins and the message, each timed until its answer"
        );
    }

    #[test]
    fn every_answer_of_the_service_ends_one_round_trip_and_only_one() {
        let h = hub();
        h.apply(Event::Up { users: vec![] });
        let (i, _rx) = client("al", 1 << 20);
        let _answer = h.begin_login(1, i).expect("up");
        let refused = Refusal::NameTaken { name: "al".into() };
        h.apply(Event::Refused {
            conn: 1,
            reason: refused.clone(),
        });
        h.apply(Event::Refused {
            conn: 1,
            reason: refused,
        });
        let rt = || h.backend_metrics().round_trip().count();
        assert_eq!(rt(), 1, "a refusal ends the login's round trip");
        let _al = login(&h, 2, "al", 1);
        h.apply(Event::Registered {
            conn: 2,
            name: "al".into(),
            id: 1,
            ts: 1,
        });
        assert_eq!(rt(), 2, "a second Registered is no new round trip");
        let private = h.open_request(2, false, "psst", None).expect("up");
        let lost = h.open_request(2, false, "gone", None).expect("up");
        h.apply(Event::Routed {
            req: private,
            id: 2,
        });
        h.apply(Event::Routed {
            req: private,
            id: 2,
        });
        h.apply(Event::Undeliverable {
            req: lost,
            reason: Unroutable::NotLoggedIn,
        });
        assert_eq!(rt(), 4);
        // Someone else's message is not ours to time.
        h.apply(Event::Public {
            id: 3,
            ts: 5,
            from: sender("zed"),
            msg: "hi".into(),
            own: None,
            recipients: 1,
        });
        assert_eq!(rt(), 4);
    }

    #[test]
    fn losing_the_service_reports_open_requests_fails_pending_logins_and_tells_everyone() {
        let h = hub();
        h.apply(Event::Up { users: vec![] });
        let mut al = login(&h, 1, "al", 1);
        let (pending, _prx) = client("late", 1 << 20);
        let mut answer = h.begin_login(2, pending).expect("up");
        let sent = h.open_request(1, false, "one", None).unwrap();
        let _unsent = h.open_request(1, false, "two", None).unwrap();
        h.apply(Event::Routed { req: sent, id: 9 });
        h.apply(Event::Down);
        assert_eq!(answer.try_recv(), Ok(Err(Refusal::Unavailable)));
        let got: Vec<(Option<ErrorCode>, Option<Service>, String)> = drain(&mut al)
            .into_iter()
            .map(|f| (f.code, f.service, f.msg))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    Some(ErrorCode::Lost),
                    None,
                    "Error: message \"one\" may not have reached everyone: the connection to the chat service was lost".into()
                ),
                (
                    Some(ErrorCode::NotDelivered),
                    None,
                    "Error: message \"two\" not delivered: the chat service is unavailable right now; try again shortly".into()
                ),
                (None, Some(Service::Down), DEGRADED.into()),
            ]
        );
        h.apply(Event::Down);
        assert!(drain(&mut al).is_empty(), "told once");
        assert_eq!(
            h.open_request(1, false, "three", None)
                .err()
                .map(|e| e.code()),
            Some(ErrorCode::NotDelivered)
        );
        // Back: the logged-in client is registered again and told.
        let again = h.apply(Event::Up { users: vec![] });
        assert_eq!(
            again,
            vec![FollowUp::Register {
                conn: 1,
                name: "al".into(),
                ip: "10.0.0.1".into()
            }]
        );
        assert!(
            drain(&mut al).is_empty(),
            "not told before the backend has registered it again"
        );
        h.announce_back();
        let back = drain(&mut al).remove(0);
        assert_eq!((back.msg.as_str(), back.service), (BACK, Some(Service::Up)));
    }

    #[test]
    fn a_registration_whose_client_left_is_undone() {
        let h = hub();
        h.apply(Event::Up { users: vec![] });
        let (i, _rx) = client("al", 1 << 20);
        let _answer = h.begin_login(1, i).unwrap();
        assert!(
            !h.leave(1),
            "a pending client is not known to the service yet"
        );
        let follow = h.apply(Event::Registered {
            conn: 1,
            name: "al".into(),
            id: 1,
            ts: 1,
        });
        assert_eq!(follow, vec![FollowUp::Unregister { conn: 1 }]);
        assert_eq!(h.local_clients(), 0);
    }

    #[test]
    fn a_private_message_and_an_undeliverable_one() {
        let h = hub();
        h.apply(Event::Up { users: vec![] });
        let mut al = login(&h, 1, "al", 1);
        h.apply(Event::Private {
            id: 2,
            ts: 1,
            from: sender("bo"),
            to_conn: 1,
            to: "al".into(),
            msg: "psst".into(),
        });
        let f = drain(&mut al);
        assert_eq!(
            (f[0].kind, f[0].msg.as_str()),
            (Some(FrameKind::Private), "psst")
        );
        let req = h.open_request(1, false, "are you there?", None).unwrap();
        h.apply(Event::Undeliverable {
            req,
            reason: Unroutable::NotOnline { to: "zed".into() },
        });
        let f = drain(&mut al);
        assert_eq!(f[0].code, Some(ErrorCode::NotOnline));
        assert_eq!(
            f[0].msg,
            "Error: user 'zed' is not online (message \"are you there?\")"
        );
        assert_eq!(h.open_requests(), 0);
    }

    #[test]
    fn a_burst_of_joins_past_the_budget_is_told_as_one_list() {
        let h = Hub::new(
            "ip".into(),
            PresencePolicy {
                limit: 1000,
                budget: 2,
            },
        );
        h.apply(Event::Up { users: vec![] });
        let mut al = login(&h, 1, "al", 1);
        for (n, name) in ["b", "c", "d", "e"].iter().enumerate() {
            h.apply(Event::Joined {
                name: (*name).into(),
                id: 2 + n as u64,
                ts: 1,
            });
        }
        let joins = drain(&mut al);
        assert_eq!(joins.len(), 2, "two notices fit the budget of 2 frames");
        h.presence_tick();
        let list = drain(&mut al);
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].kind, Some(FrameKind::Users));
        assert_eq!(
            list[0].users.as_deref(),
            Some(&["al", "b", "c", "d", "e"].map(String::from)[..])
        );
    }
}
