//! The client registry of one server, and the fan-out to it.
//!
//! Every local client is here from the moment it asks for a name: *pending* until the
//! chat service answers (it receives nothing meanwhile), then *active*. A fan-out pushes
//! the same encoded bytes onto every active client's byte-bounded queue and moves on; a
//! client whose queue is full is kicked with a reason instead of slowing the others
//! (PROTOCOL.md §6.3). Queues are in memory, so all of this is tested without sockets.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use chat_common::link::ConnId;
use chat_common::{ChatError, Refusal, ServerFrame};
use netkit::queue::{PushError, QueueTx};
use tokio::sync::oneshot;

use crate::core::frames::{self, Encoded, Format};
use crate::core::requests::Asker;
use crate::core::stats::{Disconnect, Stats};

/// What a login waits for: `Ok` once its welcome is queued.
pub type LoginResult = Result<(), Refusal>;

/// Who a client is and where its frames go.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    /// The name it asked for.
    pub name: String,
    /// Its peer IP, stamped on what it sends.
    pub ip: String,
    /// Its port's format.
    pub format: Format,
    /// Its outbound queue.
    pub out: QueueTx,
}

#[derive(Debug)]
enum Status {
    /// Waiting for the service's answer, asked for at this moment (the round trip).
    Pending(oneshot::Sender<LoginResult>, Instant),
    /// Logged in: receives broadcasts.
    Active,
}

#[derive(Debug)]
struct Client {
    info: ClientInfo,
    status: Status,
}

/// The local clients.
#[derive(Debug)]
pub struct Clients {
    map: HashMap<ConnId, Client>,
    /// The address stamped on the frames the server makes itself.
    server_ip: String,
    /// Where the clients cut off as not reading are counted.
    stats: Arc<Stats>,
}

/// Queues `bytes` for one client; a client that cannot take them is kicked with a reason,
/// and counted in `stats`.
pub fn deliver(
    out: &QueueTx,
    name: &str,
    format: Format,
    bytes: Bytes,
    server_ip: &str,
    stats: &Stats,
) {
    match out.push(bytes) {
        Ok(()) | Err(PushError::Closed) => {}
        Err(PushError::Full) => {
            stats.disconnected(if out.was_shed() {
                Disconnect::TotalQueue
            } else {
                Disconnect::SendQueue
            });
            tracing::warn!(user = %name, queued = out.queued_bytes(), "disconnecting a client that does not read (send queue exceeded)");
            let f = frames::error(server_ip, name, &ChatError::SendQueueExceeded);
            out.kick(Some(frames::encode(&f, format)));
        }
    }
}

impl Clients {
    /// No clients; `server_ip` goes into `from` of the frames the server makes.
    pub fn new(server_ip: String) -> Self {
        Clients {
            map: HashMap::new(),
            server_ip,
            stats: Arc::default(),
        }
    }

    /// Where these clients are counted (shared with the hub, which owns them).
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// Local clients, pending ones included.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// A client asked for a name at `asked`; `done` hears the answer.
    pub fn add_pending(
        &mut self,
        conn: ConnId,
        info: ClientInfo,
        done: oneshot::Sender<LoginResult>,
        asked: Instant,
    ) {
        self.map.insert(
            conn,
            Client {
                info,
                status: Status::Pending(done, asked),
            },
        );
    }

    /// When `conn` asked for its name, while it waits for the answer.
    pub fn pending_since(&self, conn: ConnId) -> Option<Instant> {
        match self.map.get(&conn)?.status {
            Status::Pending(_, asked) => Some(asked),
            Status::Active => None,
        }
    }

    /// Whether `conn` is here at all.
    pub fn contains(&self, conn: ConnId) -> bool {
        self.map.contains_key(&conn)
    }

    /// Removes a client; returns whether it was logged in (the service knows it).
    pub fn remove(&mut self, conn: ConnId) -> Option<bool> {
        self.map
            .remove(&conn)
            .map(|c| matches!(c.status, Status::Active))
    }

    /// The service accepted `conn`'s name: its welcome goes first, then it is active and
    /// its login hears success. Returns `false` if it was already active (a re-registration
    /// after the service came back), when nothing changes.
    pub fn activate(&mut self, conn: ConnId, welcome: &ServerFrame) -> bool {
        let Some(c) = self.map.get_mut(&conn) else {
            return false;
        };
        match std::mem::replace(&mut c.status, Status::Active) {
            Status::Pending(done, _) => {
                // Nothing else can be queued before it: the client was pending.
                deliver(
                    &c.info.out,
                    &c.info.name,
                    c.info.format,
                    frames::encode(welcome, c.info.format),
                    &self.server_ip,
                    &self.stats,
                );
                let _ = done.send(Ok(()));
                true
            }
            Status::Active => false,
        }
    }

    /// The service refused `conn`'s name. A pending login hears why and is removed; an
    /// active client (re-registered after the service came back, and someone took its
    /// name meanwhile) is logged out with a reason.
    pub fn refuse(&mut self, conn: ConnId, reason: Refusal) {
        match self
            .map
            .get(&conn)
            .map(|c| matches!(c.status, Status::Active))
        {
            Some(false) => {
                if let Some(Client {
                    status: Status::Pending(done, _),
                    ..
                }) = self.map.remove(&conn)
                {
                    let _ = done.send(Err(reason));
                }
            }
            Some(true) => {
                if let Some(c) = self.map.get(&conn) {
                    let f =
                        frames::error(&self.server_ip, &c.info.name, &ChatError::LoggedOut(reason));
                    c.info.out.kick(Some(frames::encode(&f, c.info.format)));
                }
            }
            None => {}
        }
    }

    /// Every pending login fails with `reason` (the service was lost).
    pub fn fail_pending(&mut self, reason: &Refusal) {
        let pending: Vec<ConnId> = self
            .map
            .iter()
            .filter(|(_, c)| matches!(c.status, Status::Pending(..)))
            .map(|(conn, _)| *conn)
            .collect();
        for conn in pending {
            if let Some(Client {
                status: Status::Pending(done, _),
                ..
            }) = self.map.remove(&conn)
            {
                let _ = done.send(Err(reason.clone()));
            }
        }
    }

    /// The logged-in clients, to register again with a service that came back.
    pub fn active(&self) -> impl Iterator<Item = (ConnId, &ClientInfo)> {
        self.map
            .iter()
            .filter(|(_, c)| matches!(c.status, Status::Active))
            .map(|(conn, c)| (*conn, &c.info))
    }

    /// Queues a frame for one client, in its format.
    pub fn send(&self, conn: ConnId, frame: &ServerFrame) {
        if let Some(c) = self.map.get(&conn) {
            self.push(c, frames::encode(frame, c.info.format));
        }
    }

    /// Queues `frames` for one client as one buffer (they arrive together anyway).
    pub fn send_all(&self, conn: ConnId, page: impl IntoIterator<Item = ServerFrame>) {
        if let Some(c) = self.map.get(&conn) {
            let mut buf = Vec::new();
            for f in page {
                frames::encode_into(&f, c.info.format, &mut buf);
            }
            self.push(c, Bytes::from(buf));
        }
    }

    fn push(&self, c: &Client, bytes: Bytes) {
        let info = &c.info;
        let (ip, stats) = (&self.server_ip, &self.stats);
        deliver(&info.out, &info.name, info.format, bytes, ip, stats);
    }

    /// Queues the error that answers `asker`'s message, with its label.
    pub fn send_answer_error(&self, asker: Asker, err: &ChatError) {
        if let Some(name) = self.name(asker.conn) {
            let mut f = frames::error(&self.server_ip, name, err);
            f.label = asker.label.map(String::from);
            self.send(asker.conn, &f);
        }
    }

    /// Queues an error for one client (`to` is its name).
    pub fn send_error(&self, conn: ConnId, err: &ChatError) {
        self.send_answer_error(Asker { conn, label: None }, err);
    }

    /// The name of a client.
    pub fn name(&self, conn: ConnId) -> Option<&str> {
        self.map.get(&conn).map(|c| c.info.name.as_str())
    }

    /// Sends a frame to every active client but `except`, serialized once per format.
    pub fn broadcast(&self, frame: &ServerFrame, except: Option<ConnId>) {
        let mut enc = Encoded::new(frame);
        for (conn, c) in &self.map {
            if Some(*conn) == except || !matches!(c.status, Status::Active) {
                continue;
            }
            deliver(
                &c.info.out,
                &c.info.name,
                c.info.format,
                enc.get(c.info.format),
                &self.server_ip,
                &self.stats,
            );
        }
    }
}

/// Clients whose queues a test reads without a socket.
#[cfg(test)]
pub(crate) mod testing {
    use chat_common::ServerFrame;
    use netkit::queue::{self, QueueRx};

    use super::ClientInfo;
    use crate::core::frames::Format;

    /// A JSON client from 10.0.0.1 with a queue of `limit` bytes, and that queue's far end.
    pub(crate) fn client(name: &str, limit: usize) -> (ClientInfo, QueueRx) {
        let (out, rx) = queue::channel(limit);
        let info = ClientInfo {
            name: name.into(),
            ip: "10.0.0.1".into(),
            format: Format::Json,
            out,
        };
        (info, rx)
    }

    /// The frames queued so far, parsed.
    pub(crate) fn drain(rx: &mut QueueRx) -> Vec<ServerFrame> {
        std::iter::from_fn(|| rx.try_pop())
            .map(|b| ServerFrame::parse(&b).expect("a frame"))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{client, drain};
    use super::*;
    use chat_common::{ErrorCode, FrameKind};

    fn welcome(name: &str) -> ServerFrame {
        frames::welcome("ip", name, Some(vec![name.into()]), 1)
    }

    #[test]
    fn a_pending_client_hears_nothing_until_its_welcome() {
        let mut cs = Clients::new("ip".into());
        let (info, mut rx) = client("al", 1 << 20);
        let (done, mut answer) = oneshot::channel();
        let asked = Instant::now();
        cs.add_pending(1, info, done, asked);
        assert_eq!(cs.pending_since(1), Some(asked), "for the round trip");
        cs.broadcast(&frames::system("ip", "Everyone", "early"), None);
        assert!(
            drain(&mut rx).is_empty(),
            "pending clients get no broadcast"
        );
        assert!(cs.activate(1, &welcome("al")));
        assert_eq!(answer.try_recv(), Ok(Ok(())));
        assert_eq!(cs.pending_since(1), None, "answered");
        cs.broadcast(&frames::system("ip", "Everyone", "late"), None);
        let got: Vec<String> = drain(&mut rx).into_iter().map(|f| f.msg).collect();
        assert_eq!(got.len(), 2);
        assert!(got[0].starts_with("Welcome al"), "the welcome is first");
        assert_eq!(got[1], "late");
        assert!(
            !cs.activate(1, &welcome("al")),
            "a second Registered changes nothing"
        );
        assert!(drain(&mut rx).is_empty());
    }

    #[test]
    fn a_refused_login_hears_why_and_is_gone() {
        let mut cs = Clients::new("ip".into());
        let (info, _rx) = client("al", 1 << 20);
        let (done, mut answer) = oneshot::channel();
        cs.add_pending(1, info, done, Instant::now());
        cs.refuse(1, Refusal::NameTaken { name: "al".into() });
        assert_eq!(
            answer.try_recv(),
            Ok(Err(Refusal::NameTaken { name: "al".into() }))
        );
        assert!(!cs.contains(1));
    }

    #[test]
    fn an_active_client_whose_name_was_taken_meanwhile_is_logged_out() {
        let mut cs = Clients::new("ip".into());
        let (info, mut rx) = client("al", 1 << 20);
        let (done, _answer) = oneshot::channel();
        cs.add_pending(1, info, done, Instant::now());
        cs.activate(1, &welcome("al"));
        drain(&mut rx);
        cs.refuse(1, Refusal::NameTaken { name: "al".into() });
        assert!(rx.is_kicked());
        let last = rx.take_last_words().expect("a reason");
        let f = ServerFrame::parse(&last).unwrap();
        assert_eq!(f.code, Some(ErrorCode::NameTaken));
        assert!(
            f.msg
                .ends_with("you were logged out while the chat service was down")
        );
    }

    #[test]
    fn losing_the_service_fails_every_pending_login_and_keeps_the_active_ones() {
        let mut cs = Clients::new("ip".into());
        let (a, _ra) = client("a", 1 << 20);
        let (b, _rb) = client("b", 1 << 20);
        let (da, _) = oneshot::channel();
        let (db, mut answer_b) = oneshot::channel();
        cs.add_pending(1, a, da, Instant::now());
        cs.activate(1, &welcome("a"));
        cs.add_pending(2, b, db, Instant::now());
        cs.fail_pending(&Refusal::Unavailable);
        assert_eq!(answer_b.try_recv(), Ok(Err(Refusal::Unavailable)));
        assert_eq!(cs.len(), 1);
        let active: Vec<(ConnId, String)> = cs.active().map(|(c, i)| (c, i.name.clone())).collect();
        assert_eq!(active, vec![(1, "a".to_string())]);
        assert_eq!(cs.remove(1), Some(true));
        assert_eq!(cs.remove(1), None);
    }

    #[test]
    fn a_broadcast_skips_the_sender_and_kicks_only_the_client_that_does_not_read() {
        let mut cs = Clients::new("ip".into());
        let (a, mut ra) = client("a", 1 << 20);
        let (b, mut rb) = client("b", 1 << 20);
        let (slow, mut rslow) = client("slow", 300);
        for (conn, info, name) in [(1, a, "a"), (2, b, "b"), (3, slow, "slow")] {
            let (d, _) = oneshot::channel();
            cs.add_pending(conn, info, d, Instant::now());
            cs.activate(conn, &welcome(name));
        }
        for rx in [&mut ra, &mut rb, &mut rslow] {
            drain(rx);
        }
        let f = frames::chat(
            chat_common::Sender {
                name: "a".into(),
                ip: "x".into(),
            },
            "x".repeat(200),
            1,
            1,
        );
        cs.broadcast(&f, Some(1));
        cs.broadcast(&f, Some(1));
        assert!(
            drain(&mut ra).is_empty(),
            "the sender does not get its own message"
        );
        assert_eq!(drain(&mut rb).len(), 2);
        assert!(rslow.is_kicked(), "its queue overflowed");
        let last = ServerFrame::parse(&rslow.take_last_words().unwrap()).unwrap();
        assert_eq!(last.kind, Some(FrameKind::Error));
        assert_eq!(last.code, Some(ErrorCode::SendQueueExceeded));
        assert!(!rb.is_kicked());
        assert_eq!(
            cs.stats().disconnects(Disconnect::SendQueue),
            1,
            "counted once"
        );
        assert_eq!(cs.stats().disconnects(Disconnect::TotalQueue), 0);
    }
}
