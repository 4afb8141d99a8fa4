//! Opening many client sockets on loopback: each connection gets a source address from
//! 127.0.0.1..127.0.0.N, so the ephemeral ports of one source address never run out.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::net::{TcpSocket, TcpStream};

use crate::proto::{Client, Proto};

/// Hands out source addresses round-robin.
pub struct Sources {
    count: u32,
    next: AtomicU32,
    bare_name: bool,
}

impl Sources {
    /// `count` loopback source addresses (1 = let the kernel choose).
    pub fn new(count: u32) -> Self {
        Sources {
            count: count.clamp(1, 250),
            next: AtomicU32::new(0),
            bare_name: false,
        }
    }

    /// Chat logins send the bare name, with no newline, as the seed clients do.
    pub fn with_bare_name(mut self, bare: bool) -> Self {
        self.bare_name = bare;
        self
    }

    /// Connects to `target` (which must be on loopback) from the next source address.
    pub async fn connect(&self, target: SocketAddr) -> anyhow::Result<TcpStream> {
        if !target.ip().is_loopback() {
            bail!("benchmarks only target loopback addresses, not {target}");
        }
        let socket = TcpSocket::new_v4().context("socket")?;
        if self.count > 1 {
            let i = self.next.fetch_add(1, Ordering::Relaxed) % self.count;
            let ip = Ipv4Addr::new(127, 0, 0, u8::try_from(1 + i).unwrap_or(1));
            socket
                .bind(SocketAddr::V4(SocketAddrV4::new(ip, 0)))
                .context("bind source")?;
        }
        socket
            .connect(target)
            .await
            .with_context(|| format!("connect {target}"))
    }

    /// Connects and logs in (IRC: joins the benchmark channel too if `join`).
    pub async fn login(
        &self,
        target: SocketAddr,
        proto: Proto,
        name: &str,
        timeout: Duration,
        join: bool,
    ) -> anyhow::Result<Client> {
        let stream = tokio::time::timeout(timeout, self.connect(target))
            .await
            .context("connect timed out")??;
        Client::login(stream, proto, name, timeout, join, self.bare_name).await
    }
}
