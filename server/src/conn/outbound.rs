//! The sending half of a connection: its byte-bounded queue and the task that writes it to
//! the socket.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use netkit::queue::{self, Pool, QueueTx};
use netkit::writer::{Pacing, WriterExit};
use tokio::io::AsyncWrite;
use tokio::task::JoinHandle;

/// How long a closing connection may take to flush: a peer that does not read cannot keep
/// the task alive.
const FINISH_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection's queue and writer task.
pub struct Outbound {
    /// The queue (the hub holds a clone once the client logs in).
    pub queue: QueueTx,
    writer: JoinHandle<WriterExit>,
}

impl Outbound {
    /// Starts the writer task for `wr`, with a queue of `limit` bytes counted in `pool`
    /// (the server-wide bound), writing when `pacing` says (see [`Pacing`]).
    pub fn start<W>(wr: W, limit: usize, pacing: Pacing, pool: Option<Arc<Pool>>) -> Self
    where
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let (queue, rx) = queue::channel_in(limit, pool);
        let writer = tokio::spawn(netkit::writer::run_paced(rx, wr, pacing));
        Outbound { queue, writer }
    }

    /// Queues raw bytes (the line port's prompt, frames before login). They answer what
    /// the client just did, so they are written without coalescing.
    pub fn push_raw(&self, bytes: Bytes) {
        self.queue.peer_spoke();
        let _ = self.queue.push(bytes);
    }

    /// Lets the writer flush what is queued, then closes the socket, bounded in time.
    pub async fn finish(self) {
        let Outbound { queue, mut writer } = self;
        drop(queue);
        if tokio::time::timeout(FINISH_TIMEOUT, &mut writer)
            .await
            .is_err()
        {
            writer.abort();
        }
    }
}
