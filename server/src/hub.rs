//! The server's shared state: its local clients, its replica of the global user list, the
//! broker link, and the requests waiting for the broker's answer.
//!
//! One `std::sync::Mutex` guards it. It is only held for in-memory work (never across an
//! `.await` or a socket call): a fan-out pushes the same `Bytes` onto each client's
//! byte-bounded queue and moves on, so one slow client costs the others nothing.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;
use chat_common::ServerFrame;
use chat_common::link::{ConnId, ServerId, ToBroker, ToServer};
use netkit::queue::{PushError, QueueTx};
use tokio::sync::oneshot;

use crate::broker_link::LinkTx;
use crate::frames::{self, Encoded, Format};

/// What a login waits for: `Ok` once the welcome is queued, or the reason it failed.
pub type LoginResult = Result<(), String>;

enum ClientState {
    /// Registration sent to the broker; receives nothing yet.
    Pending(oneshot::Sender<LoginResult>),
    /// Logged in: receives broadcasts.
    Active,
}

struct Client {
    name: String,
    ip: String,
    format: Format,
    out: QueueTx,
    state: ClientState,
}

struct Link {
    server_id: ServerId,
    tx: LinkTx,
}

/// A message sent to the broker and not yet confirmed delivered.
struct Request {
    conn: ConnId,
    /// `/shout`: tell the sender how many users the message reached.
    confirm: bool,
    /// The broker has sent it out (a public message came back to us): if the link drops
    /// now, some servers may have it and others not.
    sent_out: bool,
    /// The start of the text, so an error says which message it is about.
    excerpt: String,
}

impl Request {
    /// The error its sender gets when the link drops before the broker confirmed it.
    fn lost(&self) -> String {
        if self.sent_out {
            format!(
                "message {} may not have reached everyone: the connection to the chat service was lost",
                self.excerpt
            )
        } else {
            not_delivered(&self.excerpt, UNAVAILABLE)
        }
    }
}

/// Characters of a message quoted in an error about it.
const EXCERPT_CHARS: usize = 40;

/// The start of `text`, quoted, to name a message in an error.
pub fn excerpt(text: &str) -> String {
    let mut chars = text.chars();
    let head: String = chars
        .by_ref()
        .take(EXCERPT_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let more = if chars.next().is_some() { "…" } else { "" };
    format!("\"{head}{more}\"")
}

/// "message "…" not delivered: why".
pub fn not_delivered(excerpt: &str, why: impl std::fmt::Display) -> String {
    format!("message {excerpt} not delivered: {why}")
}

/// Joins and leaves not announced one by one, summed for the next summary, and what the
/// ones that were announced cost since the last summary.
#[derive(Default)]
struct PresenceTally {
    joined: u64,
    left: u64,
    /// Frames queued for individual join and leave notices since the last tick.
    spent: u64,
    /// Ticks since the last large-room summary.
    ticks: u32,
}

/// Every how many presence ticks a large room hears its summary.
const LARGE_SUMMARY_TICKS: u32 = 5;

#[derive(Default)]
struct State {
    presence: PresenceTally,
    clients: HashMap<ConnId, Client>,
    users: BTreeSet<String>,
    link: Option<Link>,
    requests: HashMap<u64, Request>,
    /// Requests the broker has sent out, with their event ids, in id order: each is
    /// delivered once the broker says that id is stable.
    sent: VecDeque<(u64, u64)>,
    next_req: u64,
}

/// Shared state of one server process.
pub struct Hub {
    state: Mutex<State>,
    server_ip: String,
    presence: PresencePolicy,
}

/// When joins and leaves are announced one by one, and when they are summarised.
#[derive(Debug, Clone, Copy)]
pub struct PresencePolicy {
    /// Above this many users online (0: no limit) the room is "large": joins and leaves
    /// are never announced one by one, since that costs every client a frame per login
    /// (quadratic work during a ramp); a count goes out every few seconds instead, and
    /// welcomes carry the count rather than every name.
    pub limit: usize,
    /// Frames per presence tick (a second) that individual notices may cost in a small
    /// room (0: no budget). A burst beyond it (hundreds of logins in a second) is told in
    /// one `users` frame with the whole list at the next tick instead, which keeps every
    /// client's user list exact at a fraction of the cost.
    pub budget: u64,
}

/// Text of the error a client gets when the broker link is down.
pub const UNAVAILABLE: &str = "the chat service is unavailable right now; try again shortly";

impl Hub {
    /// A hub with no clients and no link. `server_ip` goes into `from` of server frames;
    /// `presence` says how joins and leaves are told (see [`Hub::presence_tick`]).
    pub fn new(server_ip: String, presence: PresencePolicy) -> Self {
        Hub {
            state: Mutex::new(State::default()),
            server_ip,
            presence,
        }
    }

    /// The IP stamped on server-generated frames.
    pub fn server_ip(&self) -> &str {
        &self.server_ip
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock would be a bug; keep serving with the data as is
        // rather than taking every connection down with it.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn is_large(&self, st: &State) -> bool {
        self.presence.limit > 0 && st.users.len() > self.presence.limit
    }

    /// Announces a join or leave to every local client but `except`, or only counts it
    /// for the next summary when the room is large or this tick's budget is spent.
    fn announce_presence(
        &self,
        st: &mut State,
        name: &str,
        joined: bool,
        (id, ts): (u64, u64),
        except: Option<ConnId>,
    ) {
        // One frame per local client but the one excluded (pending logins count too:
        // close enough, and never an underestimate).
        let cost = st
            .clients
            .len()
            .saturating_sub(usize::from(except.is_some())) as u64;
        let tally = &st.presence;
        // Once something was only counted this tick, the rest of the tick is too, so
        // nobody sees a notice that the coming list would contradict.
        let over_budget = self.presence.budget > 0
            && (tally.joined + tally.left > 0 || tally.spent + cost > self.presence.budget);
        if self.is_large(st) || over_budget {
            let tally = &mut st.presence;
            if joined {
                tally.joined += 1;
            } else {
                tally.left += 1;
            }
            return;
        }
        st.presence.spent += cost;
        let notice = frames::presence(&self.server_ip, name, joined, id, ts);
        self.broadcast(st, &notice, except);
    }

    /// Called every second by the link task: tells everyone about the joins and leaves
    /// that were only counted. A large room gets the count (every few ticks); a small
    /// room after a burst gets one `users` frame with the whole list, which clients that
    /// keep a user list take as the new list.
    pub fn presence_tick(&self) {
        let mut st = self.lock();
        let large = self.is_large(&st);
        let tally = &mut st.presence;
        tally.spent = 0;
        tally.ticks = tally.ticks.saturating_add(1);
        let (joined, left) = (tally.joined, tally.left);
        if joined + left == 0 || (large && tally.ticks < LARGE_SUMMARY_TICKS) {
            return;
        }
        *tally = PresenceTally::default();
        let online = st.users.len();
        let f = if large {
            frames::system(
                &self.server_ip,
                chat_common::EVERYONE,
                format!(
                    "{online} users online ({joined} joined, {left} left recently; send /list to see who)"
                ),
            )
        } else {
            let names: Vec<String> = st.users.iter().cloned().collect();
            frames::presence_burst(&self.server_ip, joined, left, names)
        };
        self.broadcast(&st, &f, None);
    }

    /// Users online across all servers, sorted.
    pub fn users(&self) -> Vec<String> {
        self.lock().users.iter().cloned().collect()
    }

    /// Number of local clients (logged in or logging in).
    pub fn local_clients(&self) -> usize {
        self.lock().clients.len()
    }

    /// Starts a login: records the client as pending and returns what to wait on and the
    /// link to send the registration through.
    pub fn begin_login(
        &self,
        conn: ConnId,
        name: &str,
        ip: &str,
        format: Format,
        out: QueueTx,
    ) -> Result<(oneshot::Receiver<LoginResult>, LinkTx), String> {
        let mut st = self.lock();
        let Some(link) = &st.link else {
            return Err(UNAVAILABLE.to_string());
        };
        let link = link.tx.clone();
        let (done_tx, done_rx) = oneshot::channel();
        st.clients.insert(
            conn,
            Client {
                name: name.to_string(),
                ip: ip.to_string(),
                format,
                out,
                state: ClientState::Pending(done_tx),
            },
        );
        Ok((done_rx, link))
    }

    /// Removes a client. Returns the link to send `Unregister` through when the broker
    /// knows the client (or may: a pending registration can still succeed, and then the
    /// broker's answer finds no client and is undone).
    pub fn leave(&self, conn: ConnId) -> Option<LinkTx> {
        let mut st = self.lock();
        let client = st.clients.remove(&conn)?;
        match client.state {
            ClientState::Active => st.link.as_ref().map(|l| l.tx.clone()),
            ClientState::Pending(_) => None,
        }
    }

    /// Reserves a request number for message `text` that `conn` sends to the broker. It
    /// stays open until the broker confirms that every server it went to has it; if the
    /// link drops first, the sender is told.
    pub fn start_request(
        &self,
        conn: ConnId,
        confirm: bool,
        text: &str,
    ) -> Result<(u64, LinkTx), String> {
        let excerpt = excerpt(text);
        let mut st = self.lock();
        let Some(link) = &st.link else {
            return Err(not_delivered(&excerpt, UNAVAILABLE));
        };
        let link = link.tx.clone();
        st.next_req += 1;
        let req = st.next_req;
        st.requests.insert(
            req,
            Request {
                conn,
                confirm,
                sent_out: false,
                excerpt,
            },
        );
        Ok((req, link))
    }

    /// The request could not be sent: tell its sender, unless someone already did.
    pub fn fail_request(&self, req: u64) {
        let mut st = self.lock();
        if let Some(r) = st.requests.remove(&req) {
            self.send_error(&st, r.conn, not_delivered(&r.excerpt, UNAVAILABLE));
        }
    }

    /// Queues a frame for one client in its format; a client that cannot take it is kicked.
    pub fn send_to(&self, conn: ConnId, frame: &ServerFrame) {
        let st = self.lock();
        if let Some(c) = st.clients.get(&conn) {
            self.push(c, frames::encode(frame, c.format));
        }
    }

    fn send_error(&self, st: &State, conn: ConnId, msg: impl std::fmt::Display) {
        if let Some(c) = st.clients.get(&conn) {
            let f = frames::error(&self.server_ip, &c.name, msg);
            self.push(c, frames::encode(&f, c.format));
        }
    }

    fn push(&self, c: &Client, bytes: Bytes) {
        match c.out.push(bytes) {
            Ok(()) | Err(PushError::Closed) => {}
            Err(PushError::Full) => {
                tracing::warn!(user = %c.name, queued = c.out.queued_bytes(), "disconnecting a client that does not read (send queue exceeded)");
                let f = frames::error(
                    &self.server_ip,
                    &c.name,
                    "disconnected: you are not reading your messages (send queue exceeded)",
                );
                c.out.kick(Some(frames::encode(&f, c.format)));
            }
        }
    }

    /// Sends a frame to every logged-in local client but `except`, serialized once per
    /// format.
    fn broadcast(&self, st: &State, frame: &ServerFrame, except: Option<ConnId>) {
        let mut enc = Encoded::new(frame);
        for (conn, c) in &st.clients {
            if Some(*conn) == except || !matches!(c.state, ClientState::Active) {
                continue;
            }
            self.push(c, enc.get(c.format));
        }
    }

    /// Tells every logged-in local client something (shutdown, link trouble).
    pub fn notify_all(&self, msg: &str) {
        let st = self.lock();
        let f = frames::system(&self.server_ip, chat_common::EVERYONE, msg);
        self.broadcast(&st, &f, None);
    }

    /// The link is up: remember it, take the broker's user list, and return the
    /// registrations of the clients that were logged in before (after a broker restart).
    pub fn link_up(&self, server_id: ServerId, users: Vec<String>, tx: LinkTx) -> Vec<ToBroker> {
        let mut st = self.lock();
        st.link = Some(Link { server_id, tx });
        st.users = users.into_iter().collect();
        st.clients
            .iter()
            .filter(|(_, c)| matches!(c.state, ClientState::Active))
            .map(|(conn, c)| ToBroker::Register {
                conn: *conn,
                name: c.name.clone(),
                ip: c.ip.clone(),
            })
            .collect()
    }

    /// Forgets the link without telling anyone (the server is stopping).
    pub fn detach_link(&self) {
        self.lock().link = None;
    }

    /// The link is gone: pending logins fail, unanswered messages are reported to their
    /// senders as not delivered, and everyone is told the chat is degraded.
    pub fn link_down(&self) {
        let mut st = self.lock();
        if st.link.take().is_none() {
            return;
        }
        let pending: Vec<ConnId> = st
            .clients
            .iter()
            .filter(|(_, c)| matches!(c.state, ClientState::Pending(_)))
            .map(|(conn, _)| *conn)
            .collect();
        for conn in pending {
            if let Some(Client {
                state: ClientState::Pending(done),
                ..
            }) = st.clients.remove(&conn)
            {
                let _ = done.send(Err(UNAVAILABLE.to_string()));
            }
        }
        st.sent.clear();
        let requests = std::mem::take(&mut st.requests);
        let mut reqs: Vec<_> = requests.into_iter().collect();
        reqs.sort_by_key(|(req, _)| *req);
        for (_, r) in reqs {
            self.send_error(&st, r.conn, r.lost());
        }
        let f = frames::system(
            &self.server_ip,
            chat_common::EVERYONE,
            "The chat service is degraded: the connection to the broker was lost. Reconnecting...",
        );
        self.broadcast(&st, &f, None);
    }

    /// Applies one event from the broker. Returns messages to send back (undoing a
    /// registration whose client already left).
    pub fn apply(&self, event: ToServer) -> Option<ToBroker> {
        let mut st = self.lock();
        let my_id = st.link.as_ref().map(|l| l.server_id);
        match event {
            ToServer::Registered { conn, name, id, ts } => {
                st.users.insert(name.clone());
                let large = self.is_large(&st);
                // In a large room the welcome carries the count, not every name: the list
                // is what `/list` is for.
                let users = if large {
                    None
                } else {
                    Some(st.users.iter().cloned().collect())
                };
                let online = st.users.len();
                let Some(client) = st.clients.get_mut(&conn) else {
                    return Some(ToBroker::Unregister { conn });
                };
                match std::mem::replace(&mut client.state, ClientState::Active) {
                    ClientState::Pending(done) => {
                        // The welcome goes first, before the client can see any broadcast.
                        let welcome = frames::welcome(&self.server_ip, &name, users, online);
                        let _ = client.out.push(frames::encode(&welcome, client.format));
                        let _ = done.send(Ok(()));
                        self.announce_presence(&mut st, &name, true, (id, ts), Some(conn));
                    }
                    // Re-registered after a broker restart: nothing changes locally.
                    ClientState::Active => {}
                }
            }
            ToServer::Refused { conn, reason } => match st
                .clients
                .get(&conn)
                .map(|c| matches!(c.state, ClientState::Pending(_)))
            {
                Some(true) => {
                    if let Some(Client {
                        state: ClientState::Pending(done),
                        ..
                    }) = st.clients.remove(&conn)
                    {
                        let _ = done.send(Err(reason.to_string()));
                    }
                }
                Some(false) => {
                    // A re-registration after a broker restart found the name taken.
                    if let Some(c) = st.clients.get(&conn) {
                        let f = frames::error(
                            &self.server_ip,
                            &c.name,
                            format!(
                                "{reason}; you were logged out while the chat service was down"
                            ),
                        );
                        c.out.kick(Some(frames::encode(&f, c.format)));
                    }
                }
                None => {}
            },
            ToServer::Joined { name, id, ts } => {
                st.users.insert(name.clone());
                self.announce_presence(&mut st, &name, true, (id, ts), None);
            }
            ToServer::Left { name, id, ts } => {
                // Judged by the size before the leave, like the join was.
                let was_large = self.is_large(&st);
                st.users.remove(&name);
                if was_large {
                    st.presence.left += 1;
                } else {
                    self.announce_presence(&mut st, &name, false, (id, ts), None);
                }
            }
            ToServer::Public {
                id,
                ts,
                from,
                msg,
                origin,
                recipients,
            } => {
                let mine = Some(origin.server) == my_id;
                let frame = frames::chat(from, msg, id, ts);
                self.broadcast(&st, &frame, mine.then_some(origin.conn));
                // Our own message is out; it stays open until its id is stable.
                let mut confirm_to = None;
                if mine && let Some(r) = st.requests.get_mut(&origin.req) {
                    r.sent_out = true;
                    confirm_to = std::mem::take(&mut r.confirm).then_some(r.conn);
                    st.sent.push_back((id, origin.req));
                }
                if let Some(conn) = confirm_to
                    && let Some(c) = st.clients.get(&conn)
                {
                    let s = if recipients == 1 { "" } else { "s" };
                    let f = frames::system(
                        &self.server_ip,
                        &c.name,
                        format!("Message sent to {recipients} user{s}"),
                    );
                    self.push(c, frames::encode(&f, c.format));
                }
            }
            ToServer::Private {
                id,
                ts,
                from,
                to_conn,
                to,
                msg,
            } => {
                if let Some(c) = st.clients.get(&to_conn) {
                    let f = frames::private(from, to, msg, id, ts);
                    self.push(c, frames::encode(&f, c.format));
                } else {
                    tracing::debug!(%to, "private message for a client that just left");
                }
            }
            ToServer::Routed { req, id } => {
                if let Some(r) = st.requests.get_mut(&req) {
                    r.sent_out = true;
                    st.sent.push_back((id, req));
                }
            }
            ToServer::Stable { upto } => {
                while let Some((id, req)) = st.sent.front().copied()
                    && id <= upto
                {
                    st.sent.pop_front();
                    st.requests.remove(&req);
                }
            }
            ToServer::Undeliverable { req, reason, .. } => {
                if let Some(r) = st.requests.remove(&req) {
                    // The reason comes first: it names the recipient ("user 'zed' is
                    // not online").
                    let why = format!("{reason} (message {})", r.excerpt);
                    self.send_error(&st, r.conn, why);
                }
            }
            ToServer::Hello { .. } | ToServer::Pong => {}
            ToServer::Rejected { reason } => {
                tracing::error!("the broker rejected this server: {reason}")
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_excerpt_quotes_the_start_of_a_message_on_one_line() {
        assert_eq!(excerpt("hi"), "\"hi\"");
        assert_eq!(excerpt(""), "\"\"");
        assert_eq!(excerpt("a\nb\tc"), "\"a b c\"", "no control characters");
        let long = "é".repeat(50);
        assert_eq!(excerpt(&long), format!("\"{}…\"", "é".repeat(40)));
        assert_eq!(excerpt(&"x".repeat(40)), format!("\"{}\"", "x".repeat(40)));
        assert_eq!(
            not_delivered("\"hi\"", "down"),
            "message \"hi\" not delivered: down"
        );
    }
}
