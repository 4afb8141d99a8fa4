//! Buffered, decoded reading of a client socket.
//!
//! Like tokio-util's `FramedRead`, but it starts with bytes that were already read during
//! the login (a name glued to the first frame) and decodes those before waiting for the
//! socket again. `next` is cancel-safe, so it can sit in a `select!`. On plain TCP it waits
//! for readiness before it allocates, so an idle connection holds no read buffer.

use std::future::Future;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::tcp::OwnedReadHalf;
use tokio_util::codec::Decoder;

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
    eof: bool,
}

impl<R: ClientRead, D: Decoder> FrameReader<R, D> {
    /// Reads with `decoder`, starting from `buffered` bytes.
    pub fn new(rd: R, decoder: D, buffered: BytesMut) -> Self {
        FrameReader {
            rd,
            buf: buffered,
            decoder,
            eof: false,
        }
    }

    /// The next decoded item; `None` once the peer closed and nothing is left.
    pub async fn next(&mut self) -> Option<Result<D::Item, D::Error>> {
        loop {
            if self.eof {
                return self.decoder.decode_eof(&mut self.buf).transpose();
            }
            match self.decoder.decode(&mut self.buf) {
                Ok(Some(item)) => return Some(Ok(item)),
                Ok(None) => {}
                Err(e) => return Some(Err(e)),
            }
            if self.buf.is_empty() {
                // Idle connections hold no read buffer: thousands of them wait here.
                self.buf = BytesMut::new();
            }
            if let Err(e) = self.rd.ready().await {
                return Some(Err(e.into()));
            }
            if self.buf.capacity() - self.buf.len() < READ_RESERVE / 4 {
                self.buf.reserve(READ_RESERVE);
            }
            // `read_buf` rather than `try_read_buf`: a read that returns less than the room
            // it was given proves the socket drained, and tokio then clears the readiness
            // itself, which saves the extra `recv` that would only say EAGAIN (one system
            // call per message for a client sending one frame at a time).
            match self.rd.read_buf(&mut self.buf).await {
                Ok(0) => self.eof = true,
                Ok(_) => {}
                Err(e) => return Some(Err(e.into())),
            }
        }
    }
}
