//! The sending side of the broker link: a queue bounded in bytes.
//!
//! A sender takes permits for its message's size from a semaphore and the writer returns
//! them once the bytes are on the socket. A sender that finds the budget spent waits,
//! which holds back the client it is serving (and, through TCP, that client's sender)
//! instead of growing memory.

use std::sync::Arc;

use bytes::Bytes;
use chat_common::link::{self, ToBroker};
use tokio::io::AsyncWrite;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError, mpsc};

use crate::backend::Unavailable;

/// The sending side of one link, cheap to clone.
#[derive(Clone)]
pub struct LinkTx {
    tx: mpsc::UnboundedSender<Queued>,
    budget: Arc<Semaphore>,
    max_permits: u32,
}

/// A message waiting for the link writer, holding its share of the byte budget.
pub struct Queued {
    bytes: Bytes,
    _permit: OwnedSemaphorePermit,
}

impl LinkTx {
    /// A link queue of at most `bytes` bytes (a larger single message still passes, alone).
    pub fn channel(bytes: usize) -> (LinkTx, mpsc::UnboundedReceiver<Queued>) {
        let max_permits = u32::try_from(bytes.clamp(1, Semaphore::MAX_PERMITS)).unwrap_or(u32::MAX);
        let (tx, rx) = mpsc::unbounded_channel();
        let budget = Arc::new(Semaphore::new(max_permits as usize));
        (
            LinkTx {
                tx,
                budget,
                max_permits,
            },
            rx,
        )
    }

    /// Bytes queued for the broker and not yet written (for the metrics).
    pub fn queued_bytes(&self) -> u64 {
        let free = self.budget.available_permits();
        u64::try_from((self.max_permits as usize).saturating_sub(free)).unwrap_or(u64::MAX)
    }

    fn permits(&self, bytes: &Bytes) -> u32 {
        u32::try_from(bytes.len())
            .unwrap_or(u32::MAX)
            .clamp(1, self.max_permits)
    }

    /// Queues a message for the broker, waiting while the link is congested (that wait is
    /// the backpressure on the client that sent it). Fails if the link is gone.
    pub async fn send(&self, msg: &ToBroker) -> Result<(), Unavailable> {
        self.send_bytes(link::encode(msg)).await
    }

    /// Queues an encoded message (see [`LinkTx::send`]).
    pub async fn send_bytes(&self, bytes: Bytes) -> Result<(), Unavailable> {
        let n = self.permits(&bytes);
        let permit = match self.budget.clone().try_acquire_many_owned(n) {
            Ok(permit) => permit,
            Err(TryAcquireError::Closed) => return Err(Unavailable),
            // Congested: wait for room. Boxed, so the state of a wait that is rarely needed
            // does not make every sender's future (part of every connection's task) larger.
            Err(TryAcquireError::NoPermits) => Box::pin(self.budget.clone().acquire_many_owned(n))
                .await
                .map_err(|_| Unavailable)?,
        };
        self.tx
            .send(Queued {
                bytes,
                _permit: permit,
            })
            .map_err(|_| Unavailable)
    }

    /// Queues a message only if the budget allows it now (heartbeats, and replies from the
    /// link reader, which must never wait).
    pub fn try_send(&self, msg: &ToBroker) -> bool {
        let bytes = link::encode(msg);
        let n = self.permits(&bytes);
        match self.budget.clone().try_acquire_many_owned(n) {
            Ok(permit) => self
                .tx
                .send(Queued {
                    bytes,
                    _permit: permit,
                })
                .is_ok(),
            Err(_) => false,
        }
    }
}

/// Writes queued link messages, several per system call when they pile up, until every
/// sender is gone or a write fails.
pub async fn write_loop<W: AsyncWrite + Unpin>(
    mut rx: mpsc::UnboundedReceiver<Queued>,
    mut sink: W,
) {
    let mut queued = Vec::with_capacity(64);
    let mut batch: Vec<Bytes> = Vec::with_capacity(64);
    let mut buf = Vec::new();
    while rx.recv_many(&mut queued, 256).await > 0 {
        batch.extend(queued.iter().map(|q| q.bytes.clone()));
        if let Err(e) = netkit::writer::write_batch(&mut sink, &batch, &mut buf).await {
            tracing::warn!("writing to the broker failed: {e}");
            return;
        }
        batch.clear();
        // Dropping the messages returns their bytes to the budget.
        queued.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_budget_refuses_a_try_and_holds_a_send_until_the_writer_drains() {
        let (tx, mut rx) = LinkTx::channel(64);
        let big = ToBroker::Public {
            conn: 1,
            req: 1,
            msg: "x".repeat(40),
        };
        assert_eq!(tx.queued_bytes(), 0);
        assert!(tx.try_send(&big), "fits the empty budget");
        assert!(tx.queued_bytes() > 40, "{}", tx.queued_bytes());
        assert!(!tx.try_send(&big), "the budget is spent");
        let tx2 = tx.clone();
        let waiting = tokio::spawn(async move { tx2.send(&big).await });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "the sender waits for room");
        drop(rx.recv().await);
        assert_eq!(waiting.await.ok(), Some(Ok(())));
        drop(rx);
        assert_eq!(
            tx.send(&ToBroker::Ping).await,
            Err(Unavailable),
            "link gone"
        );
    }
}
