//! The task that drains a [`QueueRx`] into a socket.
//!
//! Frames queued while a write is in progress are written together in the next one
//! (small frames are copied into one buffer, large ones written as they are), so a busy
//! connection costs one system call per batch instead of one per frame.
//!
//! A client's writer may also *coalesce* ([`Pacing::coalesce`]): after a write it waits a
//! few milliseconds before the next, so that a connection that only listens to a busy room
//! gets many frames per system call rather than a few. On loopback and on real networks
//! alike, most of a fan-out's CPU is the kernel's cost per `send` (BENCHMARKS.md, issue
//! 11), so fewer, larger writes are what makes a delivery cheap. A frame that finds the
//! writer idle is written at once, and so is the answer to a peer that just sent something
//! ([`crate::queue::QueueTx::peer_spoke`]): coalescing delays only frames that arrive in a
//! stream, by at most the pause.

use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use crate::queue::{Next, QueueRx};

/// Frames popped from the queue per batch.
const BATCH_FRAMES: usize = 256;
/// Small frames are gathered into a buffer of up to this many bytes per write.
const COALESCE_BYTES: usize = 64 * 1024;
/// How long the last words of a kicked peer may take to write.
const LAST_WORDS_TIMEOUT: Duration = Duration::from_millis(200);

/// How a writer ended.
#[derive(Debug)]
pub enum WriterExit {
    /// Every producer was dropped and everything queued was written.
    Drained,
    /// The queue was kicked.
    Kicked,
    /// Writing failed (the peer is gone).
    Io(std::io::Error),
}

/// When a writer writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pacing {
    /// The first frame is written alone and followed by a pause this long (zero: none).
    ///
    /// The class-chat clients parse one JSON object per `recv()`, so their welcome frame
    /// must not arrive glued to the next one (PROTOCOL.md §2.3). Frames queued meanwhile
    /// wait, they are not lost.
    pub first_gap: Duration,
    /// After a write, wait this long before the next one, unless the peer sent something
    /// meanwhile (zero: write as soon as frames are queued). See the module docs.
    pub coalesce: Duration,
}

/// Writes queued frames to `sink` as soon as they are queued, until the queue is drained
/// and closed, kicked, or a write fails; then shuts the sink down. After an error the
/// queue is marked kicked so the producers notice that nobody is listening.
pub async fn run<W: AsyncWrite + Unpin>(rx: QueueRx, sink: W) -> WriterExit {
    run_paced(rx, sink, Pacing::default()).await
}

/// Like [`run`], writing when `pacing` says.
pub async fn run_paced<W: AsyncWrite + Unpin>(
    mut rx: QueueRx,
    mut sink: W,
    pacing: Pacing,
) -> WriterExit {
    let mut batch: Vec<Bytes> = Vec::new();
    let mut buf: Vec<u8> = Vec::new();
    // The pacing as milliseconds: every connection's writer carries it.
    let ms = |d: Duration| u32::try_from(d.as_millis()).unwrap_or(u32::MAX);
    let (mut gap_ms, coalesce_ms) = (ms(pacing.first_gap), ms(pacing.coalesce));
    let mut first = gap_ms > 0;
    // No write before this: (when, whether the peer's speaking lifts it).
    let mut hold: Option<(Instant, bool)> = None;
    let exit = loop {
        let limit = if first { 1 } else { BATCH_FRAMES };
        match rx.next(&mut batch, limit).await {
            Next::Frames(_) => {}
            Next::End => break WriterExit::Drained,
            Next::Kicked => break WriterExit::Kicked,
        }
        // Frames that come after a quiet spell are written at once; only those that come
        // within the pause after a write wait for its end, and take what came meanwhile.
        // So an idle connection arms no timer, and a busy one one per write.
        if let Some((until, liftable)) = hold.take()
            && !(liftable && rx.take_spoke())
            && Instant::now() < until
        {
            // A kick or the last producer's going ends the pause: neither waits for it.
            tokio::select! {
                biased;
                _ = rx.kicked_or_ended() => {}
                _ = tokio::time::sleep_until(until) => {}
            }
            let room = BATCH_FRAMES.saturating_sub(batch.len());
            rx.take(&mut batch, room);
        }
        let written = tokio::select! {
            biased;
            _ = rx.kicked() => break WriterExit::Kicked,
            r = write_batch(&mut sink, &batch, &mut buf) => r,
        };
        let bytes: usize = batch.iter().map(Bytes::len).sum();
        rx.release(bytes);
        if written.is_ok() {
            rx.wrote(bytes);
        }
        batch.clear();
        let drained = rx.is_empty();
        if drained {
            // Nothing more to write right now: an idle connection keeps no buffers.
            buf = Vec::new();
            batch = Vec::new();
        }
        if let Err(e) = written {
            break WriterExit::Io(e);
        }
        if std::mem::take(&mut first) {
            let gap = Duration::from_millis(std::mem::take(&mut gap_ms).into());
            hold = Some((Instant::now() + gap, false));
        } else if coalesce_ms > 0 && drained {
            // Only a write that emptied the queue pauses the next: what is still queued
            // (a backlog, the rest of a long answer) is already a batch, and goes now.
            let pause = Duration::from_millis(coalesce_ms.into());
            hold = Some((Instant::now() + pause, true));
        }
    };
    drop((batch, buf));
    // Boxed: the end runs once, and inline its timeouts would widen every writer's future.
    Box::pin(finish(&rx, sink, exit)).await
}

async fn finish<W: AsyncWrite + Unpin>(rx: &QueueRx, sink: W, exit: WriterExit) -> WriterExit {
    match exit {
        WriterExit::Io(e) => {
            rx.fail();
            shut_down(sink).await;
            WriterExit::Io(e)
        }
        // A kick that came as the last producer went still gets its last words.
        _ if rx.is_kicked() => finish_kicked(rx, sink).await,
        exit => {
            shut_down(sink).await;
            exit
        }
    }
}

async fn shut_down<W: AsyncWrite + Unpin>(mut sink: W) {
    let _ = tokio::time::timeout(LAST_WORDS_TIMEOUT, sink.shutdown()).await;
}

async fn finish_kicked<W: AsyncWrite + Unpin>(rx: &QueueRx, mut sink: W) -> WriterExit {
    if let Some(words) = rx.take_last_words() {
        let _ = tokio::time::timeout(LAST_WORDS_TIMEOUT, sink.write_all(&words)).await;
    }
    shut_down(sink).await;
    WriterExit::Kicked
}

/// Writes `batch` in as few calls as possible, using `buf` to gather small frames.
pub async fn write_batch<W: AsyncWrite + Unpin>(
    sink: &mut W,
    batch: &[Bytes],
    buf: &mut Vec<u8>,
) -> std::io::Result<()> {
    if let [single] = batch {
        return sink.write_all(single).await;
    }
    buf.clear();
    for frame in batch {
        if !buf.is_empty() && buf.len() + frame.len() > COALESCE_BYTES {
            sink.write_all(buf).await?;
            buf.clear();
        }
        if frame.len() >= COALESCE_BYTES {
            sink.write_all(frame).await?;
        } else {
            buf.extend_from_slice(frame);
        }
    }
    if !buf.is_empty() {
        sink.write_all(buf).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::channel;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn writes_everything_in_order_then_drains() {
        let (tx, rx) = channel(1 << 20);
        let (client, mut server) = tokio::io::duplex(1 << 20);
        for i in 0..1000 {
            tx.push(Bytes::from(format!("{i}\n"))).unwrap();
        }
        tx.push(Bytes::from(vec![b'x'; 100_000])).unwrap();
        drop(tx);
        let exit = run(rx, client).await;
        assert!(matches!(exit, WriterExit::Drained));
        let mut out = Vec::new();
        server.read_to_end(&mut out).await.unwrap();
        let expected: Vec<u8> = (0..1000)
            .flat_map(|i| format!("{i}\n").into_bytes())
            .chain(std::iter::repeat_n(b'x', 100_000))
            .collect();
        assert_eq!(out, expected);
    }

    #[tokio::test]
    async fn kick_interrupts_a_blocked_write_and_releases_the_task() {
        let (tx, rx) = channel(1 << 20);
        // A peer that never reads: the duplex buffer fills after 64 bytes.
        let (client, _server) = tokio::io::duplex(64);
        tx.push(Bytes::from(vec![b'y'; 10_000])).unwrap();
        let task = tokio::spawn(run(rx, client));
        tx.kick(Some(Bytes::from_static(b"bye\n")));
        let exit = tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap();
        assert!(matches!(exit, WriterExit::Kicked));
    }

    #[tokio::test]
    async fn gap_separates_the_first_frame_from_the_rest() {
        let (tx, rx) = channel(1 << 20);
        let (client, mut server) = tokio::io::duplex(1 << 16);
        tx.push(Bytes::from_static(b"welcome\n")).unwrap();
        tx.push(Bytes::from_static(b"next\n")).unwrap();
        let pacing = Pacing {
            first_gap: Duration::from_millis(300),
            coalesce: Duration::ZERO,
        };
        let task = tokio::spawn(run_paced(rx, client, pacing));
        let mut first = vec![0u8; 64];
        let n = server.read(&mut first).await.unwrap();
        assert_eq!(
            &first[..n],
            b"welcome\n",
            "the first read holds the first frame alone"
        );
        drop(tx);
        let mut rest = Vec::new();
        server.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"next\n");
        assert!(matches!(task.await.unwrap(), WriterExit::Drained));
    }

    #[tokio::test]
    async fn write_error_marks_the_queue_kicked() {
        let (tx, rx) = channel(1 << 20);
        let (client, server) = tokio::io::duplex(64);
        drop(server);
        tx.push(Bytes::from_static(b"hello")).unwrap();
        let exit = run(rx, client).await;
        assert!(matches!(exit, WriterExit::Io(_)));
        assert!(tx.is_kicked());
    }

    /// A writer that coalesces by 3 ms, its queue, and the reading end of its socket.
    fn coalescing() -> (
        crate::queue::QueueTx,
        tokio::io::DuplexStream,
        tokio::task::JoinHandle<WriterExit>,
    ) {
        let (tx, rx) = channel(1 << 20);
        let (client, server) = tokio::io::duplex(1 << 16);
        let pacing = Pacing {
            first_gap: Duration::ZERO,
            coalesce: Duration::from_millis(3),
        };
        (tx, server, tokio::spawn(run_paced(rx, client, pacing)))
    }

    async fn read_some(server: &mut tokio::io::DuplexStream) -> String {
        let mut buf = vec![0u8; 256];
        let n = server.read(&mut buf).await.unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[tokio::test(start_paused = true)]
    async fn frames_in_a_stream_wait_for_the_pause_and_go_out_together() {
        let (tx, mut server, _task) = coalescing();
        let t0 = tokio::time::Instant::now();
        tx.push(Bytes::from_static(b"a")).unwrap();
        assert_eq!(
            read_some(&mut server).await,
            "a",
            "an idle writer writes at once"
        );
        assert_eq!(t0.elapsed(), Duration::ZERO);
        tokio::time::sleep(Duration::from_millis(1)).await;
        tx.push(Bytes::from_static(b"b")).unwrap();
        tokio::time::sleep(Duration::from_millis(1)).await;
        tx.push(Bytes::from_static(b"c")).unwrap();
        assert_eq!(
            read_some(&mut server).await,
            "bc",
            "one write at the pause's end"
        );
        assert_eq!(t0.elapsed(), Duration::from_millis(3));
        // After a quiet spell longer than the pause, a frame goes out at once again.
        tokio::time::sleep(Duration::from_millis(10)).await;
        let t1 = tokio::time::Instant::now();
        tx.push(Bytes::from_static(b"d")).unwrap();
        assert_eq!(read_some(&mut server).await, "d");
        assert_eq!(t1.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn the_answer_to_a_peer_that_spoke_is_not_held() {
        let (tx, mut server, _task) = coalescing();
        tx.push(Bytes::from_static(b"a")).unwrap();
        assert_eq!(read_some(&mut server).await, "a");
        tokio::time::sleep(Duration::from_millis(1)).await;
        let t1 = tokio::time::Instant::now();
        tx.peer_spoke();
        tx.push(Bytes::from_static(b"answer")).unwrap();
        assert_eq!(read_some(&mut server).await, "answer");
        assert_eq!(t1.elapsed(), Duration::ZERO, "not held for the pause");
    }

    #[tokio::test(start_paused = true)]
    async fn a_kick_or_the_end_does_not_wait_for_the_pause() {
        let (tx, mut server, task) = coalescing();
        tx.push(Bytes::from_static(b"a")).unwrap();
        assert_eq!(read_some(&mut server).await, "a");
        let t0 = tokio::time::Instant::now();
        tx.push(Bytes::from_static(b"b")).unwrap();
        drop(tx);
        let mut rest = Vec::new();
        server.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"b", "what was queued is still written");
        assert!(matches!(task.await.unwrap(), WriterExit::Drained));
        assert_eq!(
            t0.elapsed(),
            Duration::ZERO,
            "the last producer's going ends the pause"
        );

        let (tx, mut server, task) = coalescing();
        tx.push(Bytes::from_static(b"a")).unwrap();
        assert_eq!(read_some(&mut server).await, "a");
        let t0 = tokio::time::Instant::now();
        tx.push(Bytes::from_static(b"never")).unwrap();
        tx.kick(Some(Bytes::from_static(b"bye")));
        assert!(matches!(task.await.unwrap(), WriterExit::Kicked));
        assert_eq!(t0.elapsed(), Duration::ZERO, "a kick ends the pause");
        let mut rest = Vec::new();
        server.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"bye", "the backlog is dropped, the last words sent");
    }

    #[tokio::test(start_paused = true)]
    async fn what_is_still_queued_after_a_write_is_not_held() {
        let (tx, mut server, _task) = coalescing();
        // More than one write's worth: 300 frames (a write takes 256).
        for _ in 0..300 {
            tx.push(Bytes::from_static(b"f")).unwrap();
        }
        let t0 = tokio::time::Instant::now();
        let mut got = 0;
        while got < 300 {
            got += read_some(&mut server).await.len();
        }
        assert_eq!(
            t0.elapsed(),
            Duration::ZERO,
            "the rest went at once, not after the pause"
        );
    }
}
