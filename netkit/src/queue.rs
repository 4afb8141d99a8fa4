//! An outbound queue bounded by the bytes it holds.
//!
//! Producers never wait: [`QueueTx::push`] either queues the frame at once or fails with
//! [`PushError::Full`], so a fan-out loop over thousands of clients is never held up by one
//! that stopped reading. The owner of a full queue is then [kicked](QueueTx::kick): its
//! writer gives up on the backlog, sends a last frame saying why (best effort) and closes,
//! like an IRC server's "SendQ exceeded".
//!
//! Bytes count as queued until the writer has written them, so the bound covers everything
//! the process holds for that peer.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

struct Shared {
    queued: AtomicUsize,
    limit: usize,
    kicked: CancellationToken,
    last_words: Mutex<Option<Bytes>>,
}

/// The producing side; cheap to clone.
#[derive(Clone)]
pub struct QueueTx {
    tx: mpsc::UnboundedSender<Bytes>,
    shared: Arc<Shared>,
}

/// The consuming side, drained by [`crate::writer::run`].
pub struct QueueRx {
    pub(crate) rx: mpsc::UnboundedReceiver<Bytes>,
    shared: Arc<Shared>,
}

/// Why a frame was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushError {
    /// Queuing it would exceed the byte limit: the consumer is too slow.
    Full,
    /// The consumer is gone (closed or kicked).
    Closed,
}

/// A queue holding at most `limit` bytes (a single frame larger than the limit is still
/// accepted into an empty queue, so a legal frame always gets through).
pub fn channel(limit: usize) -> (QueueTx, QueueRx) {
    let (tx, rx) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        queued: AtomicUsize::new(0),
        limit,
        kicked: CancellationToken::new(),
        last_words: Mutex::new(None),
    });
    (
        QueueTx {
            tx,
            shared: shared.clone(),
        },
        QueueRx { rx, shared },
    )
}

impl QueueTx {
    /// Queues `frame` without waiting.
    pub fn push(&self, frame: Bytes) -> Result<(), PushError> {
        if self.shared.kicked.is_cancelled() {
            return Err(PushError::Closed);
        }
        let len = frame.len();
        let before = self.shared.queued.fetch_add(len, Ordering::AcqRel);
        if before > 0 && before + len > self.shared.limit {
            self.shared.queued.fetch_sub(len, Ordering::AcqRel);
            return Err(PushError::Full);
        }
        self.tx.send(frame).map_err(|_| {
            self.shared.queued.fetch_sub(len, Ordering::AcqRel);
            PushError::Closed
        })
    }

    /// Tells the writer to drop the backlog, write `last_words` if the socket takes them
    /// at once, and close. Only the first kick counts.
    pub fn kick(&self, last_words: Option<Bytes>) {
        if let Ok(mut slot) = self.shared.last_words.lock() {
            if self.shared.kicked.is_cancelled() {
                return;
            }
            *slot = last_words;
        }
        self.shared.kicked.cancel();
    }

    /// Whether the queue was kicked.
    pub fn is_kicked(&self) -> bool {
        self.shared.kicked.is_cancelled()
    }

    /// Bytes queued and not yet written.
    pub fn queued_bytes(&self) -> usize {
        self.shared.queued.load(Ordering::Acquire)
    }

    /// Resolves when the queue is kicked (or the writer ended on an error).
    pub async fn closed(&self) {
        self.shared.kicked.cancelled().await
    }
}

impl QueueRx {
    /// Marks `n` bytes as written.
    pub(crate) fn release(&self, n: usize) {
        self.shared.queued.fetch_sub(n, Ordering::AcqRel);
    }

    /// The kick signal.
    pub(crate) fn kicked(&self) -> &CancellationToken {
        &self.shared.kicked
    }

    /// The frame to send when kicked, if any.
    pub(crate) fn take_last_words(&self) -> Option<Bytes> {
        self.shared
            .last_words
            .lock()
            .ok()
            .and_then(|mut s| s.take())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_fails_when_full_and_counts_bytes() {
        let (tx, mut rx) = channel(10);
        assert_eq!(tx.push(Bytes::from_static(b"123456")), Ok(()));
        assert_eq!(tx.push(Bytes::from_static(b"12345")), Err(PushError::Full));
        assert_eq!(tx.push(Bytes::from_static(b"1234")), Ok(()));
        assert_eq!(tx.queued_bytes(), 10);
        let first = rx.rx.try_recv().unwrap();
        rx.release(first.len());
        assert_eq!(tx.queued_bytes(), 4);
    }

    #[test]
    fn an_oversized_frame_fits_an_empty_queue() {
        let (tx, _rx) = channel(4);
        assert_eq!(tx.push(Bytes::from_static(b"123456")), Ok(()));
        assert_eq!(tx.push(Bytes::from_static(b"1")), Err(PushError::Full));
    }

    #[test]
    fn kick_closes_and_keeps_the_first_last_words() {
        let (tx, rx) = channel(4);
        tx.kick(Some(Bytes::from_static(b"first")));
        tx.kick(Some(Bytes::from_static(b"second")));
        assert!(tx.is_kicked());
        assert_eq!(tx.push(Bytes::from_static(b"x")), Err(PushError::Closed));
        assert_eq!(rx.take_last_words().as_deref(), Some(&b"first"[..]));
    }

    #[test]
    fn push_to_a_dropped_consumer_is_closed() {
        let (tx, rx) = channel(4);
        drop(rx);
        assert_eq!(tx.push(Bytes::from_static(b"x")), Err(PushError::Closed));
        assert_eq!(tx.queued_bytes(), 0);
    }
}
