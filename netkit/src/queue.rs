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
use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;

/// The state behind the queue's lock: the frames, and who to wake.
///
/// The writer and the watcher are woken through wakers kept here rather than a `Notify`
/// and a `CancellationToken`: a push already holds this lock, so waking costs nothing more
/// than taking the waker, and a connection keeps no separate allocation for its kick
/// signal (docs/ARCHITECTURE.md, "Memory per connection").
#[derive(Default)]
struct Frames {
    /// A `VecDeque` allocates nothing until the first push, so the thousands of idle
    /// connections of a large room cost no queue memory.
    frames: VecDeque<Bytes>,
    /// Live [`QueueTx`] handles; at zero the writer drains and stops.
    senders: usize,
    /// The [`QueueRx`] is gone: pushes fail.
    receiver_gone: bool,
    /// Kicked, or the writer failed: the first of them counts.
    kicked: bool,
    /// What to send when kicked.
    last_words: Option<Bytes>,
    /// The writer's waker while it waits (for frames, for a kick, or both).
    writer: Option<Waker>,
    /// Whether a push wakes the writer: it waits for frames (not while it writes, so a
    /// fan-out into a busy queue wakes nobody).
    wants_frames: bool,
    /// The task waiting in [`QueueTx::closed`].
    watcher: Option<Waker>,
}

impl Frames {
    /// Marks the queue kicked (once) and returns whom to wake.
    fn kick(&mut self, last_words: Option<Bytes>) -> [Option<Waker>; 2] {
        if self.kicked {
            return [None, None];
        }
        self.kicked = true;
        self.last_words = last_words;
        [self.writer.take(), self.watcher.take()]
    }
}

fn wake_all(wakers: [Option<Waker>; 2]) {
    for w in wakers.into_iter().flatten() {
        w.wake();
    }
}

/// Stores `cx`'s waker in `slot` unless the same one is there.
fn register(slot: &mut Option<Waker>, cx: &Context<'_>) {
    match slot {
        Some(w) if w.will_wake(cx.waker()) => {}
        _ => *slot = Some(cx.waker().clone()),
    }
}

/// The bytes held by many queues together, with a limit.
///
/// It also counts what passes through its queues, for the metrics (frames queued, bytes
/// written): a push already adds to `held`, so the counters beside it cost one more add on
/// a cache line the push has just taken, and a queue outside any pool counts nothing.
pub struct Pool {
    held: AtomicUsize,
    /// Frames queued, ever.
    frames: AtomicU64,
    /// Bytes written by the queues' writers, ever.
    written: AtomicU64,
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
            frames: AtomicU64::new(0),
            written: AtomicU64::new(0),
            limit,
            floor,
            watched: Mutex::new(HashMap::new()),
        })
    }

    /// A pool that only counts: no limit, so it never sheds (the broker's server links,
    /// whose queues have their own bound and policy).
    pub fn counting() -> Arc<Pool> {
        Pool::new(usize::MAX, usize::MAX)
    }

    /// Bytes held by its queues now.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Acquire)
    }

    /// Frames queued in its queues since it was made.
    pub fn frames_queued(&self) -> u64 {
        self.frames.load(Ordering::Relaxed)
    }

    /// Bytes its queues' writers have written since it was made.
    pub fn bytes_written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
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
    /// The peer sent something since the writer last looked (see [`QueueTx::peer_spoke`]).
    spoke: AtomicBool,
    queued: AtomicUsize,
    limit: usize,
    /// Mirrors `Frames::kicked` for the hot path: every push asks, without the lock.
    closed: AtomicBool,
}

impl Shared {
    fn frames(&self) -> MutexGuard<'_, Frames> {
        self.frames.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn kick(&self, last_words: Option<Bytes>) {
        let wake = {
            let mut f = self.frames();
            let wake = f.kick(last_words);
            self.closed.store(true, Ordering::Release);
            wake
        };
        wake_all(wake);
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

/// What the writer finds when it looks for work.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// This many frames were moved into its batch.
    Frames(usize),
    /// Every producer is gone and nothing is left.
    End,
    /// The queue was kicked.
    Kicked,
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
        spoke: AtomicBool::new(false),
        frames: Mutex::new(Frames {
            senders: 1,
            ..Frames::default()
        }),
        queued: AtomicUsize::new(0),
        limit,
        closed: AtomicBool::new(false),
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
        let wake = {
            let mut f = self.shared.frames();
            f.senders -= 1;
            if f.senders == 0 {
                f.writer.take()
            } else {
                None
            }
        };
        if let Some(w) = wake {
            w.wake();
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
        let mut over_pool = false;
        let wake = {
            let mut f = self.shared.frames();
            if f.receiver_gone || f.kicked {
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
            // Counted in the pool before the writer can see the frame: it releases the
            // bytes once written, and a release before this add would take the pool's
            // count below zero for a moment (an overflow seen in `hostile.rs`).
            if let Some(pool) = &self.shared.pool {
                let before = pool.held.fetch_add(len, Ordering::AcqRel);
                over_pool = before.saturating_add(len) > pool.limit;
                pool.frames.fetch_add(1, Ordering::Relaxed);
            }
            f.frames.push_back(frame);
            if let Some(pool) = &self.shared.pool
                && before + len >= pool.floor
                && !self.shared.watched.swap(true, Ordering::AcqRel)
            {
                let weak = Arc::downgrade(&self.shared);
                pool.watched()
                    .insert(Arc::as_ptr(&self.shared) as usize, weak);
            }
            if f.wants_frames {
                f.wants_frames = false;
                f.writer.take()
            } else {
                None
            }
        };
        if over_pool && let Some(pool) = &self.shared.pool {
            pool.shed();
        }
        if let Some(w) = wake {
            w.wake();
        }
        Ok(())
    }

    /// Tells the writer to drop the backlog, write `last_words` if the socket takes them
    /// at once, and close. Only the first kick counts.
    pub fn kick(&self, last_words: Option<Bytes>) {
        self.shared.kick(last_words);
    }

    /// Whether the queue was kicked.
    pub fn is_kicked(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }

    /// Whether its pool chose this queue to go (PROTOCOL.md §6.3): a push that fails as
    /// [`PushError::Full`] then failed for the pool's bound, not the queue's own.
    pub fn was_shed(&self) -> bool {
        self.shared.shed.load(Ordering::Acquire)
    }

    /// Bytes queued and not yet written.
    pub fn queued_bytes(&self) -> usize {
        self.shared.queued.load(Ordering::Acquire)
    }

    /// Tells the writer that the peer just sent something, so what is queued next is
    /// likely its answer: the writer writes it without coalescing (see
    /// [`crate::writer::Pacing::coalesce`]). Cheap: one atomic store.
    pub fn peer_spoke(&self) {
        self.shared.spoke.store(true, Ordering::Release);
    }

    /// Resolves when the queue is kicked (or the writer ended on an error). One task at a
    /// time may wait here: the connection that owns the queue.
    pub async fn closed(&self) {
        poll_fn(|cx| {
            let mut f = self.shared.frames();
            if f.kicked {
                return Poll::Ready(());
            }
            register(&mut f.watcher, cx);
            Poll::Pending
        })
        .await
    }
}

impl QueueRx {
    /// Moves up to `limit` frames into `out`; without frames, waits for one, the end (every
    /// producer gone) or a kick, whichever comes first.
    pub(crate) fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
        out: &mut Vec<Bytes>,
        limit: usize,
    ) -> Poll<Next> {
        let mut f = self.shared.frames();
        if f.kicked {
            return Poll::Ready(Next::Kicked);
        }
        if !f.frames.is_empty() {
            let n = f.frames.len().min(limit.max(1));
            out.extend(f.frames.drain(..n));
            if f.frames.is_empty() && f.frames.capacity() > 64 {
                // A burst is over: give its memory back.
                f.frames = VecDeque::new();
            }
            f.wants_frames = false;
            return Poll::Ready(Next::Frames(n));
        }
        if f.senders == 0 {
            return Poll::Ready(Next::End);
        }
        register(&mut f.writer, cx);
        f.wants_frames = true;
        Poll::Pending
    }

    /// Moves up to `limit` frames that are queued now into `out`, without waiting.
    pub(crate) fn take(&mut self, out: &mut Vec<Bytes>, limit: usize) -> usize {
        let mut f = self.shared.frames();
        let n = f.frames.len().min(limit);
        out.extend(f.frames.drain(..n));
        n
    }

    /// Waits for frames as [`QueueRx::poll_next`] does.
    pub(crate) async fn next(&mut self, out: &mut Vec<Bytes>, limit: usize) -> Next {
        poll_fn(|cx| self.poll_next(cx, out, limit)).await
    }

    /// Resolves when the queue is kicked; pushes do not wake it.
    pub(crate) async fn kicked(&self) {
        self.stopped(false).await
    }

    /// Resolves when the queue is kicked or every producer is gone; pushes do not wake it.
    pub(crate) async fn kicked_or_ended(&self) {
        self.stopped(true).await
    }

    async fn stopped(&self, or_ended: bool) {
        poll_fn(|cx| {
            let mut f = self.shared.frames();
            if f.kicked || or_ended && f.senders == 0 {
                return Poll::Ready(());
            }
            register(&mut f.writer, cx);
            Poll::Pending
        })
        .await
    }

    /// Whether the peer sent something since the last call (see [`QueueTx::peer_spoke`]).
    pub(crate) fn take_spoke(&self) -> bool {
        self.shared.spoke.swap(false, Ordering::AcqRel)
    }

    /// Takes the oldest queued frame, if any, without waiting, and counts it as written
    /// (for consumers that are not sockets: tests, in-process peers).
    pub fn try_pop(&mut self) -> Option<Bytes> {
        let frame = self.shared.frames().frames.pop_front()?;
        self.release(frame.len());
        self.wrote(frame.len());
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

    /// Counts `n` bytes as written to the peer (in the pool's total, if any).
    pub(crate) fn wrote(&self, n: usize) {
        if let Some(pool) = &self.shared.pool {
            let n = u64::try_from(n).unwrap_or(u64::MAX);
            pool.written.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// The writer failed: pushes fail from now on, and whoever waits for the close hears
    /// it. There are no last words.
    pub(crate) fn fail(&self) {
        self.shared.kick(None);
    }

    /// The frame to send when kicked, if any.
    pub fn take_last_words(&self) -> Option<Bytes> {
        self.shared.frames().last_words.take()
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
        block_on_ready(rx.next(&mut got, 1));
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
        assert_eq!(rx.next(&mut got, 10).await, Next::Frames(2));
        assert_eq!(got, [Bytes::from_static(b"a"), Bytes::from_static(b"b")]);
        assert_eq!(rx.next(&mut got, 10).await, Next::End, "no producer left");
    }

    #[tokio::test]
    async fn a_waiting_consumer_is_woken_by_a_push() {
        let (tx, mut rx) = channel(100);
        let task = tokio::spawn(async move {
            let mut got = Vec::new();
            rx.next(&mut got, 10).await;
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
        assert!(slower.was_shed() && !slow.was_shed() && !quick.was_shed());
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

    #[test]
    fn the_pools_count_never_goes_below_zero_while_a_consumer_keeps_up() {
        // A consumer that releases each frame as soon as it sees it, on another thread:
        // the pool must have counted the frame before then (a debug build panics on the
        // overflow the wrong order gave, as `hostile.rs` once did).
        let pool = Pool::new(usize::MAX, 1 << 30);
        let (tx, mut rx) = channel_in(1 << 30, Some(pool.clone()));
        let consumer = std::thread::spawn(move || {
            let mut got = 0;
            while got < 200_000 {
                if rx.try_pop().is_some() {
                    got += 1;
                }
            }
        });
        for _ in 0..200_000 {
            tx.push(Bytes::from_static(b"x")).unwrap();
            assert!(pool.held() <= 200_000, "{}", pool.held());
        }
        consumer.join().unwrap();
        assert_eq!(pool.held(), 0);
    }

    #[tokio::test]
    async fn a_pool_counts_the_frames_queued_and_the_bytes_written() {
        use tokio::io::AsyncReadExt;
        let pool = Pool::counting();
        let (tx, rx) = channel_in(1 << 20, Some(pool.clone()));
        let (sink, mut far) = tokio::io::duplex(1 << 16);
        let writer = tokio::spawn(crate::writer::run(rx, sink));
        for _ in 0..3 {
            tx.push(Bytes::from_static(b"hello")).unwrap();
        }
        drop(tx);
        let mut got = Vec::new();
        far.read_to_end(&mut got).await.unwrap();
        assert!(matches!(
            writer.await,
            Ok(crate::writer::WriterExit::Drained)
        ));
        assert_eq!(got.len(), 15);
        assert_eq!((pool.frames_queued(), pool.bytes_written()), (3, 15));
        assert_eq!(pool.held(), 0);
        // A queue outside any pool counts nowhere, and costs nothing for it.
        let (tx, mut rx) = channel(10);
        tx.push(Bytes::from_static(b"x")).unwrap();
        assert!(rx.try_pop().is_some());
        assert_eq!(pool.frames_queued(), 3);
    }
}
