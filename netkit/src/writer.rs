//! The task that drains a [`QueueRx`] into a socket.
//!
//! Frames queued while a write is in progress are written together in the next one
//! (small frames are copied into one buffer, large ones written as they are), so a busy
//! connection costs one system call per batch instead of one per frame.

use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::queue::QueueRx;

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

/// Writes queued frames to `sink` until the queue is drained and closed, kicked, or a write
/// fails; then shuts the sink down. After an error the queue is marked kicked so the
/// producers notice that nobody is listening.
pub async fn run<W: AsyncWrite + Unpin>(rx: QueueRx, sink: W) -> WriterExit {
    run_with_gap(rx, sink, Duration::ZERO).await
}

/// Like [`run`], but the first frame is written alone and followed by a pause of `gap`.
///
/// The class-chat clients parse one JSON object per `recv()`, so their welcome frame must
/// not arrive glued to the next one (PROTOCOL.md §2.3). Frames queued meanwhile wait, they are
/// not lost.
pub async fn run_with_gap<W: AsyncWrite + Unpin>(
    mut rx: QueueRx,
    mut sink: W,
    gap: Duration,
) -> WriterExit {
    let kicked = rx.kicked().clone();
    let mut batch: Vec<Bytes> = Vec::with_capacity(8);
    let mut buf: Vec<u8> = Vec::new();
    if !gap.is_zero() {
        let first = tokio::select! {
            biased;
            _ = kicked.cancelled() => None,
            first = async {
                let mut one = Vec::with_capacity(1);
                (rx.recv_many(&mut one, 1).await > 0).then(|| one.remove(0))
            } => first,
        };
        if let Some(first) = first {
            let len = first.len();
            let written = tokio::select! {
                biased;
                _ = kicked.cancelled() => Ok(()),
                r = sink.write_all(&first) => r,
            };
            rx.release(len);
            if let Err(e) = written {
                return finish(&rx, sink, WriterExit::Io(e)).await;
            }
            tokio::select! {
                _ = kicked.cancelled() => {}
                _ = tokio::time::sleep(gap) => {}
            }
        }
    }
    let exit = loop {
        let n = tokio::select! {
            biased;
            _ = kicked.cancelled() => break WriterExit::Kicked,
            n = rx.recv_many(&mut batch, BATCH_FRAMES) => n,
        };
        if n == 0 {
            break WriterExit::Drained;
        }
        let written = tokio::select! {
            biased;
            _ = kicked.cancelled() => break WriterExit::Kicked,
            r = write_batch(&mut sink, &batch, &mut buf) => r,
        };
        let bytes: usize = batch.iter().map(Bytes::len).sum();
        rx.release(bytes);
        batch.clear();
        if rx.is_empty() {
            // Nothing more to write right now: an idle connection keeps no buffers.
            buf = Vec::new();
            batch = Vec::new();
        }
        if let Err(e) = written {
            break WriterExit::Io(e);
        }
    };
    finish(&rx, sink, exit).await
}

async fn finish<W: AsyncWrite + Unpin>(rx: &QueueRx, mut sink: W, exit: WriterExit) -> WriterExit {
    let kicked = rx.kicked();
    if kicked.is_cancelled() && !matches!(exit, WriterExit::Io(_)) {
        return finish_kicked(rx, sink).await;
    }
    if let WriterExit::Io(_) = &exit {
        rx.fail();
    }
    let _ = tokio::time::timeout(LAST_WORDS_TIMEOUT, sink.shutdown()).await;
    exit
}

async fn finish_kicked<W: AsyncWrite + Unpin>(rx: &QueueRx, mut sink: W) -> WriterExit {
    if let Some(words) = rx.take_last_words() {
        let _ = tokio::time::timeout(LAST_WORDS_TIMEOUT, sink.write_all(&words)).await;
    }
    let _ = tokio::time::timeout(LAST_WORDS_TIMEOUT, sink.shutdown()).await;
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
        let task = tokio::spawn(run_with_gap(rx, client, Duration::from_millis(300)));
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
}
