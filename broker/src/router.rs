//! The broker's single routing task.
//!
//! Every server link forwards what it reads into one inbox; this task owns the
//! [`Directory`] and applies the messages one at a time, which is what gives every event
//! its place in the global order (docs/ARCHITECTURE.md, "Who owns which state"; the
//! messages' way through it: "The path of a public message", "The path of a private
//! message"). Outgoing messages are pushed, never awaited, onto each server's byte-bounded
//! queue: a server whose queue overflows is cut off (its users are announced as gone)
//! instead of slowing the others down.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use chat_common::Unroutable;
use chat_common::clock::now_ms;
use chat_common::link::{self, Rejection, ServerId, ToBroker, ToServer};
use netkit::queue::{PushError, QueueTx};
use tokio::sync::{OwnedSemaphorePermit, mpsc};

use crate::directory::{Directory, Journal, Out};
use crate::history::store::Store;
use crate::metrics::BrokerMetrics;

/// Inputs handled into one batch at most before it is stored and sent, even if more are
/// waiting: under a steady stream the inbox is seldom empty (PROTOCOL.md §10.6).
pub(crate) const MAX_BATCH: usize = 256;

/// A batch is stored and sent once its first input is this old (broker time, ms), even if
/// more are waiting: the bound on what batching adds to a message's latency.
pub(crate) const MAX_BATCH_AGE_MS: u64 = 1;

/// How often retention runs, in milliseconds of broker time.
const PRUNE_EVERY_MS: u64 = 60_000;

/// How soon the next retention pass comes when the last one stopped at its chunk: 2,000
/// events every 100 ms removes 20,000 a second, more than any sustained rate of new ones.
const PRUNE_BEHIND_MS: u64 = 100;

/// How often the history file's size is read for the metrics (two pragmas), at most.
const SIZE_EVERY_MS: u64 = 1_000;

/// What the link tasks tell the router.
pub(crate) enum Input {
    /// A server finished its handshake; `queue` feeds its link writer.
    Attach {
        /// The server's id.
        id: ServerId,
        /// Label for logs.
        label: String,
        /// Its outbound queue.
        queue: QueueTx,
    },
    /// A message from a server.
    Message {
        /// The server's id.
        id: ServerId,
        /// The message.
        msg: ToBroker,
        /// Its share of the inbox's byte budget, returned once it is handled.
        permit: OwnedSemaphorePermit,
    },
    /// A server's link is gone.
    Detach {
        /// The server's id.
        id: ServerId,
    },
}

/// Runs until every sender of the inbox is dropped; with a `store`, every event is in the
/// log before it is sent (PROTOCOL.md §10.6).
pub(crate) async fn run(
    mut inbox: mpsc::Receiver<Input>,
    store: Option<Store>,
    metrics: Arc<BrokerMetrics>,
) {
    let mut router = Router::with_metrics(store, metrics);
    while let Some(input) = inbox.recv().await {
        router.handle(input, now_ms(), inbox.is_empty());
    }
}

/// What the routing task owns: the directory, the queue of every attached server and the
/// log. Handling an input never waits, so it is tested without a runtime's worth of
/// sockets.
pub(crate) struct Router {
    dir: Directory,
    queues: HashMap<ServerId, QueueTx>,
    out: Vec<Out>,
    store: Option<Store>,
    /// Inputs handled into the batch not yet stored and sent.
    held: usize,
    /// Broker time of the batch's first input.
    batch_started: u64,
    /// Broker time of the next retention pass.
    prune_due: u64,
    /// What it counts for the metrics (published once per batch).
    metrics: Arc<BrokerMetrics>,
    /// Broker time the history's file size is next read.
    size_due: u64,
}

impl Router {
    /// No server attached yet; with a `store`, ids go on from its last.
    #[cfg(test)]
    pub fn new(store: Option<Store>) -> Router {
        Router::with_metrics(store, Arc::default())
    }

    /// Like [`Router::new`], counting into `metrics`.
    pub fn with_metrics(store: Option<Store>, metrics: Arc<BrokerMetrics>) -> Router {
        metrics.set_history(store.is_some());
        let dir = match &store {
            Some(s) => Directory::with_history(s.last_id()),
            None => Directory::new(),
        };
        Router {
            dir,
            queues: HashMap::new(),
            out: Vec::new(),
            store,
            held: 0,
            batch_started: 0,
            prune_due: 0,
            metrics,
            size_due: 0,
        }
    }

    /// Applies one input at broker time `now`. `drained` says no input is waiting after
    /// this one: the moment to store the batch, tell the servers how far everyone has got
    /// (once per batch, not once per message) and send it; so is a batch of
    /// [`MAX_BATCH`] inputs, or one whose first input is [`MAX_BATCH_AGE_MS`] old. Without
    /// a log every input is sent at once.
    pub fn handle(&mut self, input: Input, now: u64, drained: bool) {
        if self.held == 0 {
            self.batch_started = now;
        }
        self.apply(input, now);
        self.held += 1;
        if drained
            || self.store.is_none()
            || self.held >= MAX_BATCH
            || now.saturating_sub(self.batch_started) >= MAX_BATCH_AGE_MS
        {
            self.finish_batch(now, drained);
        }
    }

    fn apply(&mut self, input: Input, now: u64) {
        let Router {
            dir, queues, out, ..
        } = self;
        match input {
            Input::Attach { id, label, queue } => {
                tracing::info!(server = id, %label, "server attached");
                queues.insert(id, queue);
                dir.attach(id, label, out);
            }
            Input::Message {
                id,
                msg:
                    ToBroker::History {
                        conn,
                        query,
                        chat_only,
                    },
                permit,
            } => {
                drop(permit);
                if dir.is_registered(id, conn) {
                    let viewer = dir.chain(id, conn);
                    let asked = Instant::now();
                    let answer =
                        history_answer(self.store.as_ref(), conn, &query, viewer, chat_only);
                    self.metrics.history_queries.inc();
                    self.metrics.history_query_time.observe(asked.elapsed());
                    out.push(Out::To(id, link::encode(&answer)));
                }
            }
            Input::Message {
                id,
                msg: ToBroker::Resume { conn, token },
                permit,
            } => {
                drop(permit);
                let answer = resume(self.store.as_mut(), dir, id, conn, &token, now);
                out.push(Out::To(id, link::encode(&answer)));
            }
            Input::Message { id, msg, permit } => {
                dir.handle(id, msg, now, out);
                drop(permit);
                if let Some(store) = self.store.as_mut() {
                    open_sessions(store, dir, out, now);
                }
            }
            Input::Detach { id } => {
                if queues.remove(&id).is_some() {
                    tracing::info!(server = id, "server detached");
                }
                dir.detach(id, now, out);
                tracing::info!(
                    servers = dir.server_count(),
                    users = dir.user_count(),
                    "directory after detach"
                );
            }
        }
    }

    /// Stores what the batch ordered, then sends it.
    fn finish_batch(&mut self, now: u64, drained: bool) {
        self.held = 0;
        let journal = self.dir.take_journal();
        if let Some(store) = &mut self.store {
            if let Err(e) = store.append(&journal.records) {
                tracing::error!(
                    "history: the batch could not be stored ({e}); its messages are refused"
                );
                self.metrics.history_write_failures.inc();
                withdraw(&mut self.dir, &mut self.out, journal);
            }
            if now >= self.prune_due {
                self.prune_due = now + PRUNE_EVERY_MS;
                match store.prune(now) {
                    Ok(p) => {
                        if p.behind {
                            self.prune_due = now + PRUNE_BEHIND_MS;
                        }
                        if p.removed > 0 {
                            tracing::debug!(removed = p.removed, "history: retention");
                        }
                    }
                    Err(e) => tracing::warn!("history: retention failed: {e}"),
                }
                if let Err(e) = store.expire_sessions(now) {
                    tracing::warn!("history: expiring sessions failed: {e}");
                }
            }
            let m = &self.metrics;
            m.history_events
                .set(i64::try_from(store.kept()).unwrap_or(i64::MAX));
            if now >= self.size_due {
                self.size_due = now + SIZE_EVERY_MS;
                if let Ok(bytes) = store.file_bytes() {
                    m.history_file_bytes
                        .set(i64::try_from(bytes).unwrap_or(i64::MAX));
                }
            }
        }
        self.metrics.mirror_events(self.dir.ordered());
        if drained {
            self.dir.stable_update(&mut self.out);
        }
        flush(&mut self.dir, &mut self.queues, &mut self.out, now);
    }
}

/// Gives each login the directory just accepted a session chain, and its server the token
/// just before the `Registered` that makes its welcome (PROTOCOL.md §10.4). Without a
/// session (the write failed) the login still goes through, with no resume token.
fn open_sessions(store: &mut Store, dir: &mut Directory, out: &mut Vec<Out>, now: u64) {
    let mut inserted = 0;
    for login in dir.take_logins() {
        match store.new_session(&login.name, now, store.resume_ttl()) {
            Ok((token, chain)) => {
                dir.set_chain(login.server, login.conn, chain);
                let conn = login.conn;
                let session = link::encode(&ToServer::Session { conn, token });
                out.insert(login.out + inserted, Out::To(login.server, session));
                inserted += 1;
            }
            Err(e) => tracing::warn!("history: no session for a login: {e}"),
        }
    }
}

/// `conn` of `server` asks to join the chain of `token` (PROTOCOL.md §10.4).
fn resume(
    store: Option<&mut Store>,
    dir: &mut Directory,
    server: ServerId,
    conn: chat_common::link::ConnId,
    token: &str,
    now: u64,
) -> ToServer {
    let failed = ToServer::ResumeFailed { conn };
    let (Some(store), Some(name)) = (store, dir.name_of(server, conn)) else {
        return failed;
    };
    let ttl = store.resume_ttl();
    match store.resume(token, name, now, ttl) {
        Ok(Some(chain)) => {
            dir.set_chain(server, conn, chain);
            ToServer::Resumed { conn }
        }
        Ok(None) => failed,
        Err(e) => {
            tracing::warn!("history: a resume failed: {e}");
            failed
        }
    }
}

/// The answer to a history query of `conn` (PROTOCOL.md §10.2): what the log holds up to
/// the last stored batch, with the private messages of the asker's session chain `viewer`.
fn history_answer(
    store: Option<&Store>,
    conn: chat_common::link::ConnId,
    query: &chat_common::history::Query,
    viewer: Option<u64>,
    chat_only: bool,
) -> ToServer {
    let Some(store) = store else {
        return ToServer::HistoryOff { conn };
    };
    match store.query_kinds(query, viewer, chat_only) {
        Ok(mut page) => {
            // Newest first for `latest` and `before`, oldest first for `after`: the end
            // nearest the anchor is kept.
            let keep_newest = !matches!(query.anchor, chat_common::history::Anchor::After(_));
            let cut = chat_common::history::keep_within_bytes(
                &mut page.events,
                chat_common::history::MAX_ANSWER_BYTES,
                keep_newest,
                |e| e.msg.len(),
            );
            ToServer::History {
                conn,
                epoch: store.epoch().to_string(),
                events: page.events.into_iter().map(Into::into).collect(),
                more: page.more || cut,
                gap: page.gap,
            }
        }
        Err(e) => {
            tracing::error!("history: a query failed: {e}");
            ToServer::HistoryOff { conn }
        }
    }
}

/// The batch could not be stored: its messages go to nobody, and their senders are told
/// (PROTOCOL.md §10.6). Joins and leaves still go out, or the servers' lists would drift.
fn withdraw(dir: &mut Directory, out: &mut Vec<Out>, journal: Journal) {
    let ids: Vec<u64> = journal.messages.iter().map(|m| m.id).collect();
    for m in journal.messages {
        for o in &mut out[m.outs] {
            *o = Out::Withdrawn;
        }
        let reason = Unroutable::NotStored;
        let (conn, req) = (m.conn, m.req);
        out.push(Out::To(
            m.from,
            link::encode(&ToServer::Undeliverable { conn, req, reason }),
        ));
    }
    dir.withdraw(&ids);
}

/// Delivers `out`. Delivering can cut off slow servers, whose departure produces more
/// output, so it goes on until nothing is left.
fn flush(
    dir: &mut Directory,
    queues: &mut HashMap<ServerId, QueueTx>,
    out: &mut Vec<Out>,
    now: u64,
) {
    while !out.is_empty() {
        let batch = std::mem::take(out);
        let mut slow = Vec::new();
        for o in batch {
            match o {
                Out::To(id, bytes) => deliver(queues, id, bytes, &mut slow),
                Out::All(bytes) => {
                    for id in queues.keys() {
                        deliver(queues, *id, bytes.clone(), &mut slow);
                    }
                }
                Out::AllBut(skip, bytes) => {
                    for id in queues.keys().filter(|id| **id != skip) {
                        deliver(queues, *id, bytes.clone(), &mut slow);
                    }
                }
                Out::Withdrawn => {}
            }
        }
        slow.sort_unstable();
        slow.dedup();
        for id in slow {
            if let Some(q) = queues.remove(&id) {
                tracing::warn!(
                    server = id,
                    queued = q.queued_bytes(),
                    "server link queue exceeded; disconnecting the server"
                );
                let reason = Rejection::QueueExceeded;
                q.kick(Some(link::encode(&ToServer::Rejected { reason })));
            }
            dir.detach(id, now, out);
        }
    }
}

fn deliver(
    queues: &HashMap<ServerId, QueueTx>,
    id: ServerId,
    bytes: Bytes,
    slow: &mut Vec<ServerId>,
) {
    if let Some(q) = queues.get(&id) {
        match q.push(bytes) {
            Ok(()) => {}
            Err(PushError::Full) => slow.push(id),
            // The link is closing; its Detach is on the way.
            Err(PushError::Closed) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::BytesMut;
    use chat_common::link::LinkDecoder;
    use netkit::queue::{self, QueueRx};
    use tokio::io::AsyncReadExt;
    use tokio::sync::Semaphore;
    use tokio_util::codec::Decoder;

    use super::*;

    fn message(id: ServerId, msg: ToBroker) -> Input {
        let budget = Arc::new(Semaphore::new(1));
        let permit = budget.try_acquire_owned().expect("a fresh permit");
        Input::Message { id, msg, permit }
    }

    fn register(conn: u64, name: &str) -> ToBroker {
        ToBroker::Register {
            conn,
            name: name.into(),
            ip: "10.0.0.1".into(),
        }
    }

    fn public(req: u64, msg: &str) -> ToBroker {
        ToBroker::Public {
            conn: 1,
            req,
            msg: msg.into(),
        }
    }

    /// What a link writer draining `rx` puts on the wire, decoded, once the queue is done
    /// with (kicked, or every producer dropped).
    async fn written(rx: QueueRx) -> Vec<ToServer> {
        let (sink, mut peer) = tokio::io::duplex(1 << 16);
        let writer = tokio::spawn(netkit::writer::run(rx, sink));
        let mut bytes = Vec::new();
        peer.read_to_end(&mut bytes).await.expect("read");
        writer.await.expect("writer");
        let mut buf = BytesMut::from(&bytes[..]);
        let mut dec = LinkDecoder::<ToServer>::new(1 << 20);
        let mut got = Vec::new();
        while let Some(m) = dec.decode(&mut buf).expect("valid link message") {
            got.push(m);
        }
        assert!(buf.is_empty(), "a partial message at the end");
        got
    }

    #[tokio::test]
    async fn a_server_whose_queue_overflows_is_cut_off_and_its_users_leave() {
        let mut r = Router::new(None);
        // Room for the handshake and a registration, not for a flood of 100-byte messages.
        let (slow, slow_rx) = queue::channel(1024);
        let (ok, ok_rx) = queue::channel(1 << 20);
        let watch = slow.clone();
        r.handle(
            Input::Attach {
                id: 1,
                label: "slow".into(),
                queue: slow,
            },
            1,
            true,
        );
        r.handle(
            Input::Attach {
                id: 2,
                label: "ok".into(),
                queue: ok,
            },
            1,
            true,
        );
        r.handle(message(1, register(1, "ghost")), 1, true);
        r.handle(message(2, register(1, "talker")), 1, true);
        // Nobody drains the slow server's queue.
        let text = "z".repeat(100);
        let mut sent = 0;
        while !watch.is_kicked() {
            assert!(sent < 100, "the slow server was never cut off");
            sent += 1;
            r.handle(message(2, public(sent, &text)), 1, false);
        }
        drop(watch);
        assert!(sent > 1, "cut off at once: the test's queue is too small");
        // Its backlog is dropped; all it is sent is the reason.
        assert_eq!(
            written(slow_rx).await,
            [ToServer::Rejected {
                reason: Rejection::QueueExceeded
            }]
        );

        // The other server is still served, and was told the ghost left right after the
        // message that overflowed the queue.
        r.handle(message(2, public(0, "after")), 1, true);
        drop(r);
        let got: Vec<_> = written(ok_rx)
            .await
            .into_iter()
            .filter(|m| !matches!(m, ToServer::Stable { .. }))
            .collect();
        let publics: Vec<_> = got
            .iter()
            .filter_map(|m| match m {
                ToServer::Public {
                    origin, recipients, ..
                } => Some((origin.req, *recipients)),
                _ => None,
            })
            .collect();
        let expected: Vec<_> = (1..=sent).map(|req| (req, 1)).chain([(0, 0)]).collect();
        assert_eq!(
            publics, expected,
            "every message reached it; the last one counts no ghost"
        );
        let left = got
            .iter()
            .position(|m| matches!(m, ToServer::Left { name, .. } if name == "ghost"))
            .expect("the ghost's departure");
        assert!(
            matches!(&got[left - 1], ToServer::Public { origin, .. } if origin.req == sent),
            "{:?}",
            &got[left - 1]
        );
        assert_eq!(
            got.iter()
                .filter(|m| matches!(m, ToServer::Left { .. }))
                .count(),
            1
        );
    }

    fn attach(r: &mut Router, id: ServerId) -> QueueRx {
        let (q, rx) = queue::channel(1 << 20);
        let label = format!("s{id}");
        r.handle(
            Input::Attach {
                id,
                label,
                queue: q,
            },
            1,
            true,
        );
        rx
    }

    fn keep_all() -> Store {
        use crate::history::store::Retention;
        Store::in_memory(Retention {
            max_age: None,
            max_events: None,
        })
        .expect("a log")
    }

    /// Drops the router (so the queues end) and returns what each server was sent, without
    /// the handshake and the stability notices.
    async fn sent(r: Router, rxs: Vec<QueueRx>) -> Vec<Vec<ToServer>> {
        drop(r);
        let mut all = Vec::new();
        for rx in rxs {
            let got = written(rx)
                .await
                .into_iter()
                .filter(|m| !matches!(m, ToServer::Stable { .. } | ToServer::Hello { .. }))
                .collect();
            all.push(got);
        }
        all
    }

    #[tokio::test]
    async fn with_a_log_a_batch_is_stored_before_any_of_it_is_sent_and_ids_go_on() {
        let mut store = keep_all();
        store.append(&[]).expect("nothing");
        let mut r = Router::new(Some(store));
        let rx1 = attach(&mut r, 1);
        let rx2 = attach(&mut r, 2);
        // The same millisecond: the batch is young enough to wait for the rest.
        r.handle(message(1, register(1, "alice")), 5, false);
        r.handle(message(1, public(7, "hello")), 5, false);
        // The session's token, the registration, the join, the message.
        assert_eq!(r.out.len(), 4, "held while the inbox is not empty");
        assert_eq!(
            r.store.as_ref().map(Store::last_id),
            Some(0),
            "not stored yet"
        );
        r.handle(message(2, register(1, "bob")), 5, true);
        assert!(r.out.is_empty(), "sent once drained");
        let store = r.store.as_ref().expect("the log");
        assert_eq!(store.last_id(), 3);
        let page = store
            .query(&chat_common::history::Query::latest(10), None)
            .expect("read");
        let kinds: Vec<_> = page.events.iter().map(|e| (e.id, e.kind)).collect();
        use crate::history::record::Kind;
        assert_eq!(kinds, [(1, Kind::Join), (2, Kind::Chat), (3, Kind::Join)]);
        assert_eq!(page.events[1].msg, "hello");
        // An old batch goes even while more is waiting.
        r.handle(message(1, public(8, "a")), 10, false);
        assert!(!r.out.is_empty(), "held");
        r.handle(message(1, public(9, "b")), 10 + MAX_BATCH_AGE_MS, false);
        assert!(r.out.is_empty(), "sent when its first input is old enough");
        let got = sent(r, vec![rx1, rx2]).await;
        assert!(
            got[1]
                .iter()
                .any(|m| matches!(m, ToServer::Public { id: 2, .. }))
        );

        // A broker started on that log goes on from its last id.
        let mut again = keep_all();
        again
            .append(&[crate::history::record::Record {
                id: 41,
                ts: 1,
                kind: Kind::Chat,
                from_name: "x".into(),
                from_ip: "y".into(),
                to_name: None,
                msg: String::new(),
                from_chain: None,
                to_chain: None,
            }])
            .expect("stored");
        let mut r = Router::new(Some(again));
        let rx = attach(&mut r, 1);
        r.handle(message(1, register(1, "carol")), 1, true);
        let got = sent(r, vec![rx]).await;
        assert!(
            matches!(
                &got[0][..2],
                [
                    ToServer::Session { conn: 1, .. },
                    ToServer::Registered { id: 42, .. }
                ]
            ),
            "the token comes just before the registration: {:?}",
            got[0]
        );
    }

    #[tokio::test]
    async fn a_batch_that_cannot_be_stored_is_refused_to_its_senders_and_sent_to_nobody() {
        let mut store = keep_all();
        // No page more than the schema's (SQLite keeps the cap at the file's size): a
        // message that needs pages of its own cannot be written.
        store.limit_pages(1).expect("a cap");
        let mut r = Router::new(Some(store));
        let rx1 = attach(&mut r, 1);
        let rx2 = attach(&mut r, 2);
        r.handle(message(1, register(1, "alice")), 1, false);
        r.handle(message(2, register(1, "bob")), 1, false);
        let long = "x".repeat(20_000);
        r.handle(message(1, public(9, &long)), 1, true);
        assert_eq!(r.dir.stable(), 3, "a withdrawn message holds nobody back");
        assert_eq!(r.metrics.history_write_failures.get(), 1);
        use crate::history::record::Kind;
        assert_eq!(r.metrics.events(Kind::Join), 2, "ordered, and published");
        assert_eq!(
            r.metrics.events(Kind::Chat),
            1,
            "given an id, though not stored"
        );
        let got = sent(r, vec![rx1, rx2]).await;
        assert!(
            got[0].contains(&ToServer::Undeliverable {
                conn: 1,
                req: 9,
                reason: Unroutable::NotStored
            }),
            "{:?}",
            got[0]
        );
        for server in &got {
            assert!(
                !server.iter().any(|m| matches!(m, ToServer::Public { .. })),
                "{server:?}"
            );
        }
        assert!(
            got[1]
                .iter()
                .any(|m| matches!(m, ToServer::Joined { name, .. } if name == "alice")),
            "joins still go out: {:?}",
            got[1]
        );
    }

    #[tokio::test]
    async fn history_queries_are_counted_and_timed_and_the_log_measured() {
        let mut r = Router::new(Some(keep_all()));
        let _rx = attach(&mut r, 1);
        r.handle(message(1, register(1, "alice")), 1, true);
        let query = chat_common::history::parse_query("latest 5").expect("a query");
        let ask = ToBroker::History {
            conn: 1,
            query,
            chat_only: false,
        };
        r.handle(message(1, ask), 2, true);
        let m = &r.metrics;
        assert!(m.has_history());
        assert_eq!(m.history_queries.get(), 1);
        assert_eq!(m.history_query_time.count(), 1);
        assert_eq!(m.history_events.get(), 1, "the join");
        assert!(m.history_file_bytes.get() > 0);
        assert!(!Router::new(None).metrics.has_history());
    }

    #[tokio::test]
    async fn a_retention_backlog_is_removed_in_chunks_soon_after_each_other() {
        use crate::history::record::{Kind, Record};
        use crate::history::store::{PRUNE_CHUNK, Retention};
        let mut store = Store::in_memory(Retention {
            max_age: None,
            max_events: Some(1),
        })
        .expect("a log");
        let n = 2 * PRUNE_CHUNK + 1;
        let old: Vec<Record> = (1..=n)
            .map(|id| {
                let from = chat_common::Sender {
                    name: "old".into(),
                    ip: "10.0.0.9".into(),
                };
                Record::new(Kind::Chat, id, id, from, "old".into())
            })
            .collect();
        store.append(&old).expect("stored");
        let mut r = Router::new(Some(store));
        let _rx = attach(&mut r, 1);
        let first = |r: &Router| {
            let q = chat_common::history::parse_query("after 0 1").expect("a query");
            let store = r.store.as_ref().expect("a log");
            store.query(&q, None).expect("a query").events[0].id
        };
        // `attach` handled its input at broker time 1.
        assert_eq!(
            first(&r),
            PRUNE_CHUNK + 1,
            "a first chunk at the first batch"
        );
        r.handle(message(1, ToBroker::Ping), PRUNE_BEHIND_MS, true);
        assert_eq!(first(&r), PRUNE_CHUNK + 1, "not yet");
        r.handle(message(1, ToBroker::Ping), 1 + PRUNE_BEHIND_MS, true);
        assert_eq!(first(&r), 2 * PRUNE_CHUNK + 1, "the second soon after");
        r.handle(message(1, ToBroker::Ping), 1 + 2 * PRUNE_BEHIND_MS, true);
        assert_eq!(first(&r), 2 * PRUNE_CHUNK + 1, "the newest one stays");
    }
}
