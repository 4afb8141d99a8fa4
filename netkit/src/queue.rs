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
//!
//! Queues may share a [`Pool`]: a bound on what all of them hold together (a server's
//! memory for its clients). When a push takes the pool past its limit, the pool *sheds*:
//! it marks the queues holding the most (largest first, each holding at least
//! [`Pool::floor`] bytes; only those are watched, so the pool costs a queue that keeps up
//! nothing) until what is left is under the limit, and the next push to a
//! marked queue fails as if it were full, so its owner is cut off as not reading with the
//! usual last words. Readers that keep up hold little and are never chosen while a
//! non-reader holds more; a fan-out that briefly passes the limit with small queues cuts
//! nobody.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use bytes::Bytes;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// The frames themselves. A `VecDeque` allocates nothing until the first push, so the
/// thousands of idle connections of a large room cost no queue memory.
#[derive(Default)]
struct Frames {
    frames: VecDeque<Bytes>,
    /// Live [`QueueTx`] handles; at zero the writer drains and stops.
    senders: usize,
    /// The [`QueueRx`] is gone: pushes fail.
    receiver_gone: bool,
}

/// The bytes held by many queues together, with a limit.
pub struct Pool {
    held: AtomicUsize,
    limit: usize,
    floor: usize,
    /// The queues that have held at least `floor` bytes, by address: the only ones that
    /// can be shed. A queue that keeps up is never here, so the pool costs it nothing.
    watched: Mutex<HashMap<usize, Weak<Shared>>>,
}

impl Pool {
    /// A pool of `limit` bytes, that sheds queues holding at least `floor` bytes.
    pub fn new(limit: usize, floor: usize) -> Arc<Pool> {
        Arc::new(Pool {
            held: AtomicUsize::new(0),
            limit,
            floor,
            watched: Mutex::new(HashMap::new()),
        })
    }

    /// Bytes held by its queues now.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Acquire)
    }

    fn watched(&self) -> MutexGuard<'_, HashMap<usize, Weak<Shared>>> {
        self.watched.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Marks the fullest queues until the rest fits the limit (see the module docs).
    /// Rare: only when the limit is passed, and then it looks at the watched queues once.
    fn shed(&self) {
        let mut live: Vec<(usize, Arc<Shared>)> = self
            .watched()
            .values()
            .filter_map(Weak::upgrade)
            .map(|q| (q.queued.load(Ordering::Acquire), q))
            .collect();
        // Queues already marked are as good as released.
        let marked: usize = live
            .iter()
            .filter(|(_, q)| q.shed.load(Ordering::Acquire))
            .map(|(n, _)| n)
            .sum();
        let mut kept = self.held().saturating_sub(marked);
        live.sort_unstable_by_key(|(n, _)| std::cmp::Reverse(*n));
        for (n, q) in live {
            if kept <= self.limit || n < self.floor {
                break;
            }
            if !q.shed.swap(true, Ordering::AcqRel) {
                kept = kept.saturating_sub(n);
            }
        }
    }
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("held", &self.held())
            .field("limit", &self.limit)
            .finish()
    }
}

struct Shared {
    frames: Mutex<Frames>,
    /// The pool it counts in.
    pool: Option<Arc<Pool>>,
    /// Chosen by the pool to go: the next push fails as full.
    shed: AtomicBool,
    /// In its pool's watched set (it once held the pool's floor).
    watched: AtomicBool,
    /// Wakes the writer; a permit is kept if it is not waiting, so no wake-up is lost.
    ready: Notify,
    queued: AtomicUsize,
    limit: usize,
    kicked: CancellationToken,
    /// Mirrors `kicked` for the hot path: `CancellationToken::is_cancelled` takes a lock,
    /// and every push asks (it was 2 % of a fan-out's CPU).
    closed: AtomicBool,
    last_words: Mutex<Option<Bytes>>,
}

impl Shared {
    fn frames(&self) -> MutexGuard<'_, Frames> {
        self.frames.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The producing side; cheap to clone.
pub struct QueueTx {
    shared: Arc<Shared>,
}

/// The consuming side, drained by [`crate::writer::run`].
pub struct QueueRx {
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
    channel_in(limit, None)
}

/// Like [`channel`], counted in `pool` too.
pub fn channel_in(limit: usize, pool: Option<Arc<Pool>>) -> (QueueTx, QueueRx) {
    let shared = Arc::new(Shared {
        pool,
        shed: AtomicBool::new(false),
        watched: AtomicBool::new(false),
        frames: Mutex::new(Frames {
            senders: 1,
            ..Frames::default()
        }),
        ready: Notify::new(),
        queued: AtomicUsize::new(0),
        limit,
        kicked: CancellationToken::new(),
        closed: AtomicBool::new(false),
        last_words: Mutex::new(None),
    });
    (
        QueueTx {
            shared: shared.clone(),
        },
        QueueRx { shared },
    )
}

impl std::fmt::Debug for QueueTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueTx")
            .field("queued", &self.queued_bytes())
            .field("limit", &self.shared.limit)
            .field("kicked", &self.is_kicked())
            .finish()
    }
}

impl Clone for QueueTx {
    fn clone(&self) -> Self {
        self.shared.frames().senders += 1;
        QueueTx {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for QueueTx {
    fn drop(&mut self) {
        let last = {
            let mut f = self.shared.frames();
            f.senders -= 1;
            f.senders == 0
        };
        if last {
            self.shared.ready.notify_one();
        }
    }
}

impl Drop for QueueRx {
    fn drop(&mut self) {
        let mut f = self.shared.frames();
        f.receiver_gone = true;
        let dropped: usize = f.frames.drain(..).map(|b| b.len()).sum();
        self.shared.queued.fetch_sub(dropped, Ordering::AcqRel);
        if let Some(pool) = &self.shared.pool {
            pool.held.fetch_sub(dropped, Ordering::AcqRel);
            if self.shared.watched.load(Ordering::Acquire) {
                pool.watched().remove(&(Arc::as_ptr(&self.shared) as usize));
            }
        }
    }
}

impl QueueTx {
    /// Queues `frame` without waiting.
    pub fn push(&self, frame: Bytes) -> Result<(), PushError> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(PushError::Closed);
        }
        let len = frame.len();
        {
            let mut f = self.shared.frames();
            if f.receiver_gone {
                return Err(PushError::Closed);
            }
            let before = self.shared.queued.load(Ordering::Acquire);
            if before > 0 && before + len > self.shared.limit {
                return Err(PushError::Full);
            }
            if self.shared.shed.load(Ordering::Acquire) {
                return Err(PushError::Full);
            }
            self.shared.queued.fetch_add(len, Ordering::AcqRel);
            f.frames.push_back(frame);
            if let Some(pool) = &self.shared.pool
                && before + len >= pool.floor
                && !self.shared.watched.swap(true, Ordering::AcqRel)
            {
                let weak = Arc::downgrade(&self.shared);
                pool.watched()
                    .insert(Arc::as_ptr(&self.shared) as usize, weak);
            }
        }
        if let Some(pool) = &self.shared.pool
            && pool.held.fetch_add(len, Ordering::AcqRel) + len > pool.limit
        {
            pool.shed();
        }
        self.shared.ready.notify_one();
        Ok(())
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
        self.shared.closed.store(true, Ordering::Release);
        self.shared.kicked.cancel();
    }

    /// Whether the queue was kicked.
    pub fn is_kicked(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
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
    /// Moves up to `limit` frames into `out`, waiting for at least one. Returns 0 once
    /// every producer is gone and the queue is empty.
    pub(crate) async fn recv_many(&mut self, out: &mut Vec<Bytes>, limit: usize) -> usize {
        loop {
            {
                let mut f = self.shared.frames();
                if !f.frames.is_empty() {
                    let n = f.frames.len().min(limit.max(1));
                    out.extend(f.frames.drain(..n));
                    if f.frames.is_empty() && f.frames.capacity() > 64 {
                        // A burst is over: give its memory back.
                        f.frames = VecDeque::new();
                    }
                    return n;
                }
                if f.senders == 0 {
                    return 0;
                }
            }
            self.shared.ready.notified().await;
        }
    }

    /// Takes the oldest queued frame, if any, without waiting, and counts it as written
    /// (for consumers that are not sockets: tests, in-process peers).
    pub fn try_pop(&mut self) -> Option<Bytes> {
        let frame = self.shared.frames().frames.pop_front()?;
        self.release(frame.len());
        Some(frame)
    }

    /// Whether the queue was kicked.
    pub fn is_kicked(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }

    /// Whether nothing is queued right now.
    pub(crate) fn is_empty(&self) -> bool {
        self.shared.frames().frames.is_empty()
    }

    /// Marks `n` bytes as written.
    pub(crate) fn release(&self, n: usize) {
        self.shared.queued.fetch_sub(n, Ordering::AcqRel);
        if let Some(pool) = &self.shared.pool {
            pool.held.fetch_sub(n, Ordering::AcqRel);
        }
    }

    /// The kick signal.
    pub(crate) fn kicked(&self) -> &CancellationToken {
        &self.shared.kicked
    }

    /// The writer failed: pushes fail from now on, and whoever waits for the close hears it.
    pub(crate) fn fail(&self) {
        self.shared.closed.store(true, Ordering::Release);
        self.shared.kicked.cancel();
    }

    /// The frame to send when kicked, if any.
    pub fn take_last_words(&self) -> Option<Bytes> {
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

    /// Polls a future that is known to be ready.
    fn block_on_ready<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    #[test]
    fn push_fails_when_full_and_counts_bytes() {
        let (tx, mut rx) = channel(10);
        assert_eq!(tx.push(Bytes::from_static(b"123456")), Ok(()));
        assert_eq!(tx.push(Bytes::from_static(b"12345")), Err(PushError::Full));
        assert_eq!(tx.push(Bytes::from_static(b"1234")), Ok(()));
        assert_eq!(tx.queued_bytes(), 10);
        let mut got = Vec::new();
        block_on_ready(rx.recv_many(&mut got, 1));
        rx.release(got[0].len());
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

    #[tokio::test]
    async fn the_consumer_drains_then_sees_the_end() {
        let (tx, mut rx) = channel(100);
        let tx2 = tx.clone();
        tx.push(Bytes::from_static(b"a")).unwrap();
        tx2.push(Bytes::from_static(b"b")).unwrap();
        drop(tx);
        drop(tx2);
        let mut got = Vec::new();
        assert_eq!(rx.recv_many(&mut got, 10).await, 2);
        assert_eq!(got, [Bytes::from_static(b"a"), Bytes::from_static(b"b")]);
        assert_eq!(rx.recv_many(&mut got, 10).await, 0, "no producer left");
    }

    #[tokio::test]
    async fn a_waiting_consumer_is_woken_by_a_push() {
        let (tx, mut rx) = channel(100);
        let task = tokio::spawn(async move {
            let mut got = Vec::new();
            rx.recv_many(&mut got, 10).await;
            got
        });
        tokio::task::yield_now().await;
        tx.push(Bytes::from_static(b"x")).unwrap();
        assert_eq!(task.await.unwrap(), [Bytes::from_static(b"x")]);
    }

    #[test]
    fn try_pop_takes_what_is_queued_and_frees_its_bytes() {
        let (tx, mut rx) = channel(100);
        assert_eq!(rx.try_pop(), None);
        tx.push(Bytes::from_static(b"ab")).unwrap();
        tx.push(Bytes::from_static(b"c")).unwrap();
        assert_eq!(rx.try_pop().as_deref(), Some(&b"ab"[..]));
        assert_eq!(tx.queued_bytes(), 1);
        assert_eq!(rx.try_pop().as_deref(), Some(&b"c"[..]));
        assert_eq!(rx.try_pop(), None);
        assert_eq!(tx.queued_bytes(), 0);
        assert!(!rx.is_kicked());
        tx.kick(None);
        assert!(rx.is_kicked());
    }

    #[test]
    fn push_to_a_dropped_consumer_is_closed() {
        let (tx, rx) = channel(4);
        drop(rx);
        assert_eq!(tx.push(Bytes::from_static(b"x")), Err(PushError::Closed));
        assert_eq!(tx.queued_bytes(), 0);
    }

    #[test]
    fn past_the_pool_the_fullest_queues_are_shed_and_readers_that_keep_up_are_not() {
        let pool = Pool::new(100, 20);
        let (slow, slow_rx) = channel_in(1000, Some(pool.clone()));
        let (slower, slower_rx) = channel_in(1000, Some(pool.clone()));
        let (quick, mut quick_rx) = channel_in(1000, Some(pool.clone()));
        let frame = |n: usize| Bytes::from(vec![0u8; n]);
        // Two non-readers fill the pool; a reader holds a little.
        slower.push(frame(60)).unwrap();
        slow.push(frame(30)).unwrap();
        quick.push(frame(10)).unwrap();
        assert_eq!(pool.held(), 100, "at the limit, nobody shed");
        // Past it: the fullest goes, and that is enough.
        slow.push(frame(5)).unwrap();
        assert_eq!(
            slower.push(frame(1)),
            Err(PushError::Full),
            "the fullest is shed"
        );
        assert_eq!(slow.push(frame(1)), Ok(()), "the rest fits without it");
        quick.push(frame(10)).unwrap();
        assert_eq!(quick_rx.try_pop().as_deref().map(<[u8]>::len), Some(10));
        // Queues under the floor are never shed, however far over the pool is.
        drop(slower_rx);
        let _small: Vec<_> = (0..20)
            .map(|_| {
                let (tx, rx) = channel_in(1000, Some(pool.clone()));
                tx.push(frame(19)).unwrap();
                (tx, rx)
            })
            .collect();
        assert!(pool.held() > 100);
        assert_eq!(quick.push(frame(1)), Ok(()));
        // What a queue held goes back to the pool when it is dropped.
        drop(slow_rx);
        drop(quick_rx);
        assert_eq!(pool.held(), 20 * 19);
    }
}
