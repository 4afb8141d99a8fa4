//! How to reach the broker: TCP in production, an in-memory pipe in tests.

use std::future::Future;
use std::io;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// How to reach the broker: TCP in production, an in-memory pipe in tests.
pub trait Dial: Send + Sync + 'static {
    /// The reading half of a link.
    type Read: AsyncRead + Unpin + Send + 'static;
    /// The writing half of a link.
    type Write: AsyncWrite + Unpin + Send + 'static;
    /// Opens a new link.
    fn dial(&self) -> impl Future<Output = io::Result<(Self::Read, Self::Write)>> + Send;
    /// Where it goes, for logs.
    fn describe(&self) -> String;
}

/// The broker at a TCP address (`host:port`).
#[derive(Debug, Clone)]
pub struct TcpDial(pub String);

impl Dial for TcpDial {
    type Read = OwnedReadHalf;
    type Write = OwnedWriteHalf;

    async fn dial(&self) -> io::Result<(OwnedReadHalf, OwnedWriteHalf)> {
        let socket = TcpStream::connect(&self.0).await?;
        socket.set_nodelay(true)?;
        Ok(socket.into_split())
    }

    fn describe(&self) -> String {
        self.0.clone()
    }
}
