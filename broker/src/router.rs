//! The broker's single routing task.
//!
//! Every server link forwards what it reads into one inbox; this task owns the
//! [`Directory`] and applies the messages one at a time, which is what gives every event
//! its place in the global order. Outgoing messages are pushed, never awaited, onto each
//! server's byte-bounded queue: a server whose queue overflows is cut off (its users are
//! announced as gone) instead of slowing the others down.

use std::collections::HashMap;

use bytes::Bytes;
use chat_common::clock::now_ms;
use chat_common::link::{self, Rejection, ServerId, ToBroker, ToServer};
use netkit::queue::{PushError, QueueTx};
use tokio::sync::{OwnedSemaphorePermit, mpsc};

use crate::directory::{Directory, Out};

/// What the link tasks tell the router.
pub enum Input {
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
pub async fn run(mut inbox: mpsc::Receiver<Input>) {
    let mut dir = Directory::new();
    let mut queues: HashMap<ServerId, QueueTx> = HashMap::new();
    let mut out = Vec::new();
    while let Some(input) = inbox.recv().await {
        let now = now_ms();
        match input {
            Input::Attach { id, label, queue } => {
                tracing::info!(server = id, %label, "server attached");
                queues.insert(id, queue);
                dir.attach(id, label, &mut out);
            }
            Input::Message { id, msg, permit } => {
                dir.handle(id, msg, now, &mut out);
                drop(permit);
            }
            Input::Detach { id } => {
                if queues.remove(&id).is_some() {
                    tracing::info!(server = id, "server detached");
                }
                dir.detach(id, now, &mut out);
                tracing::info!(
                    servers = dir.server_count(),
                    users = dir.user_count(),
                    "directory after detach"
                );
            }
        }
        // Once the inbox is drained, tell the servers how far everyone has got.
        if inbox.is_empty() {
            dir.stable_update(&mut out);
        }
        flush(&mut dir, &mut queues, &mut out, now);
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
