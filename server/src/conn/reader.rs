//! Buffered, decoded reading of a client socket.
//!
//! Like tokio-util's `FramedRead`, but it starts with bytes that were already read during
//! the login (a name glued to the first frame) and decodes those before waiting for the
//! socket again. `next` is cancel-safe, so it can sit in a `select!`. On plain TCP it waits
//! for readiness before it allocates, so an idle connection holds no read buffer.
//!
//! With a flood budget ([`crate::conn::flood`]) it is also where a client is held back:
//! every byte read is charged, and while the budget is spent nothing more is decoded or
//! read, so the client's own TCP window fills and its sends wait.

use std::future::Future;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::tcp::OwnedReadHalf;
use tokio_util::codec::Decoder;

use crate::conn::flood::Budget;

/// The reading half of a client connection: plain TCP, or TLS.
pub trait ClientRead: AsyncRead + Unpin + Send + 'static {
    /// Resolves when a read may find data, without holding a buffer meanwhile. Streams
    /// that cannot tell (TLS) resolve at once, and the read itself waits.
    fn ready(&self) -> impl Future<Output = std::io::Result<()>> + Send;
}

impl ClientRead for OwnedReadHalf {
    fn ready(&self) -> impl Future<Output = std::io::Result<()>> + Send {
        self.readable()
    }
}

impl<S: AsyncRead + Send + 'static> ClientRead for tokio::io::ReadHalf<S> {
    fn ready(&self) -> impl Future<Output = std::io::Result<()>> + Send {
        std::future::ready(Ok(()))
    }
}

/// Reads at least this much spare room per system call.
const READ_RESERVE: usize = 4096;

/// A socket read half, its buffer and a decoder.
pub struct FrameReader<R, D> {
    rd: R,
    buf: BytesMut,
    decoder: D,
    /// Whether the peer closed, and the bytes read not yet counted.
    read: ReadState,
    budget: Option<Budget>,
    /// A frame begun must be complete within this many milliseconds (0: no limit; a
    /// `u32`, not a `Duration`: every connection carries it).
    frame_timeout_ms: u32,
    /// When the frame at the front of the buffer is due, while one is unfinished.
    due: Option<tokio::time::Instant>,
}

/// Whether the peer closed (the top bit) and how many bytes were read since the metrics
/// last took them (the rest, saturating), in one `u32`: beside `frame_timeout_ms` it fits
/// where a `bool` alone was padded, so counting costs a connection no room (the footprint
/// test counts every byte). A count taken once per item never comes near 2^31.
#[derive(Debug, Default, Clone, Copy)]
struct ReadState(u32);

impl ReadState {
    const EOF: u32 = 1 << 31;

    fn eof(self) -> bool {
        self.0 & Self::EOF != 0
    }

    fn set_eof(&mut self) {
        self.0 |= Self::EOF;
    }

    fn add(&mut self, n: usize) {
        let count = self.0 & !Self::EOF;
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        self.0 = (self.0 & Self::EOF) | count.saturating_add(n).min(!Self::EOF);
    }

    /// The count so far, now zero.
    fn take(&mut self) -> u64 {
        let count = self.0 & !Self::EOF;
        self.0 &= Self::EOF;
        u64::from(count)
    }
}

/// A frame left unfinished past the frame timeout. `next` gives it as the source of an
/// I/O error (the decoders' error type carries I/O errors); [`is_unfinished`] tells it from
/// the socket's own errors, a keepalive's `ETIMEDOUT` included.
#[derive(Debug, thiserror::Error)]
#[error("frame left unfinished")]
struct Unfinished;

fn unfinished() -> std::io::Error {
    std::io::Error::other(Unfinished)
}

/// Whether a read error means a frame was left unfinished past the frame timeout.
pub fn is_unfinished(e: &std::io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<Unfinished>())
}

impl<R: ClientRead, D: Decoder> FrameReader<R, D> {
    /// Reads with `decoder`, starting from `buffered` bytes, paced by `budget` (none:
    /// read as fast as the client sends).
    pub fn new(rd: R, decoder: D, buffered: BytesMut, budget: Option<Budget>) -> Self {
        FrameReader {
            rd,
            buf: buffered,
            decoder,
            read: ReadState::default(),
            budget,
            frame_timeout_ms: 0,
            due: None,
        }
    }

    /// The bytes read from the socket since the last call. The caller adds them to the
    /// server-wide count once per item: a shared counter is not touched per read.
    pub fn take_bytes_read(&mut self) -> u64 {
        self.read.take()
    }

    /// Closes the connection (an error of [`is_unfinished`]) when a frame begun is not
    /// complete within `timeout`: a half-sent frame holds its buffer, and 250 clients each
    /// holding an unfinished 1 MB frame kept 242 MiB for good (PROTOCOL.md §6.2).
    pub fn with_frame_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.frame_timeout_ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
        self
    }

    /// Whether the client has a flood budget (flood control is on).
    pub fn is_paced(&self) -> bool {
        self.budget.is_some()
    }

    /// Charges `cost` bytes of work to the client's budget (what its last item makes the
    /// server send).
    pub fn charge(&mut self, cost: u64) {
        if let Some(b) = self.budget.as_mut() {
            b.charge(cost, tokio::time::Instant::now());
        }
    }

    /// Whether the client is being held back for its budget now (it is not idle then,
    /// only unread).
    pub fn held_back(&mut self) -> bool {
        self.budget
            .as_mut()
            .is_some_and(|b| b.delay(tokio::time::Instant::now()).is_some())
    }

    /// Waits until the budget allows reading on (at once without a budget). Cancel-safe.
    /// The timer is boxed: it is rare, and inline it would make every connection's task
    /// larger (PROTOCOL.md §6.7; the footprint test counts it).
    async fn paced(&mut self) {
        while let Some(wait) = self
            .budget
            .as_mut()
            .and_then(|b| b.delay(tokio::time::Instant::now()))
        {
            Box::pin(tokio::time::sleep(wait)).await;
        }
    }

    /// The next decoded item; `None` once the peer closed and nothing is left.
    pub async fn next(&mut self) -> Option<Result<D::Item, D::Error>> {
        loop {
            self.paced().await;
            if self.read.eof() {
                return self.decoder.decode_eof(&mut self.buf).transpose();
            }
            match self.decoder.decode(&mut self.buf) {
                Ok(Some(item)) => {
                    self.due = None;
                    return Some(Ok(item));
                }
                Ok(None) => {}
                Err(e) => return Some(Err(e)),
            }
            if self.buf.is_empty() {
                // Idle connections hold no read buffer: thousands of them wait here.
                self.buf = BytesMut::new();
                self.due = None;
            } else if self.due.is_none() {
                self.due = (self.frame_timeout_ms > 0).then(|| {
                    let after = std::time::Duration::from_millis(self.frame_timeout_ms.into());
                    tokio::time::Instant::now() + after
                });
            }
            // The deadline's timer is boxed for the same reason as `paced`'s.
            let ready = match self.due {
                Some(due) => match Box::pin(tokio::time::timeout_at(due, self.rd.ready())).await {
                    Ok(ready) => ready,
                    Err(_) => return Some(Err(unfinished().into())),
                },
                None => self.rd.ready().await,
            };
            if let Err(e) = ready {
                return Some(Err(e.into()));
            }
            if self.buf.capacity() - self.buf.len() < READ_RESERVE / 4 {
                self.buf.reserve(READ_RESERVE);
            }
            // `read_buf` rather than `try_read_buf`: a read that returns less than the room
            // it was given proves the socket drained, and tokio then clears the readiness
            // itself, which saves the extra `recv` that would only say EAGAIN (one system
            // call per message for a client sending one frame at a time).
            let read = match self.due {
                // TLS streams are "ready" at once and wait in the read: bound it too.
                Some(due) => match Box::pin(tokio::time::timeout_at(
                    due,
                    self.rd.read_buf(&mut self.buf),
                ))
                .await
                {
                    Ok(read) => read,
                    Err(_) => return Some(Err(unfinished().into())),
                },
                None => self.rd.read_buf(&mut self.buf).await,
            };
            match read {
                Ok(0) => self.read.set_eof(),
                Ok(n) => {
                    self.read.add(n);
                    self.charge(u64::try_from(n).unwrap_or(u64::MAX));
                }
                Err(e) => return Some(Err(e.into())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_read_state_keeps_the_end_and_the_count_apart() {
        let mut r = ReadState::default();
        r.add(10);
        r.add(5);
        assert!(!r.eof());
        r.set_eof();
        assert!(r.eof());
        assert_eq!(r.take(), 15);
        assert_eq!(r.take(), 0);
        assert!(r.eof(), "taking the count keeps the end");
        r.add(usize::MAX);
        assert_eq!(
            r.take(),
            u64::from(u32::MAX >> 1),
            "saturates below the flag"
        );
        assert!(r.eof());
    }

    #[test]
    fn only_the_frame_timeout_reads_as_unfinished() {
        assert!(is_unfinished(&unfinished()));
        // A keepalive or TCP_USER_TIMEOUT failure is the socket's own error.
        let keepalive = std::io::Error::from(std::io::ErrorKind::TimedOut);
        assert!(!is_unfinished(&keepalive));
        assert!(!is_unfinished(&std::io::Error::other("something else")));
    }
}
