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

use bytes::Bytes;
use chat_common::clock::now_ms;
use chat_common::link::{self, Rejection, ServerId, ToBroker, ToServer};
use netkit::queue::{PushError, QueueTx};
use tokio::sync::{OwnedSemaphorePermit, mpsc};

use crate::directory::{Directory, Out};

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

/// Runs until every sender of the inbox is dropped.
pub(crate) async fn run(mut inbox: mpsc::Receiver<Input>) {
    let mut router = Router::new();
    while let Some(input) = inbox.recv().await {
        router.handle(input, now_ms(), inbox.is_empty());
    }
}

/// What the routing task owns: the directory and the queue of every attached server.
/// Handling an input never waits, so it is tested without a runtime's worth of sockets.
pub(crate) struct Router {
    dir: Directory,
    queues: HashMap<ServerId, QueueTx>,
    out: Vec<Out>,
}

impl Router {
    /// No server attached yet.
    pub fn new() -> Router {
        Router {
            dir: Directory::new(),
            queues: HashMap::new(),
            out: Vec::new(),
        }
    }

    /// Applies one input at broker time `now` and delivers what it produced. `drained` says
    /// no input is waiting after this one: the moment to tell the servers how far everyone
    /// has got (once per batch, not once per message).
    pub fn handle(&mut self, input: Input, now: u64, drained: bool) {
        let Router { dir, queues, out } = self;
        match input {
            Input::Attach { id, label, queue } => {
                tracing::info!(server = id, %label, "server attached");
                queues.insert(id, queue);
                dir.attach(id, label, out);
            }
            Input::Message { id, msg, permit } => {
                dir.handle(id, msg, now, out);
                drop(permit);
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
        if drained {
            dir.stable_update(out);
        }
        flush(dir, queues, out, now);
    }
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
        let mut r = Router::new();
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
}
