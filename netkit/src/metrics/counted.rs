//! A reader that counts the bytes it reads into a [`Counter`]: the bytes a link or a
//! connection received, for its process's metrics, at one atomic add per read.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};

use crate::metrics::Counter;

/// `inner`, with every byte read from it added to a counter.
#[derive(Debug)]
pub struct CountedRead<R> {
    inner: R,
    counter: Arc<Counter>,
}

impl<R> CountedRead<R> {
    /// Reads from `inner`, counting into `counter`.
    pub fn new(inner: R, counter: Arc<Counter>) -> Self {
        CountedRead { inner, counter }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for CountedRead<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = buf.filled().len().saturating_sub(before);
        if n > 0 {
            self.counter.add(u64::try_from(n).unwrap_or(u64::MAX));
        }
        polled
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn every_byte_read_is_counted() {
        let (mut near, far) = tokio::io::duplex(64);
        let counter = Arc::new(Counter::new());
        let mut rd = CountedRead::new(far, counter.clone());
        near.write_all(b"hello world").await.unwrap();
        drop(near);
        let mut got = String::new();
        rd.read_to_string(&mut got).await.unwrap();
        assert_eq!((got.as_str(), counter.get()), ("hello world", 11));
    }
}
