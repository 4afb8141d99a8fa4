//! What every connection handler gets.

use std::sync::Arc;

use std::time::Duration;

use bytes::BytesMut;
use netkit::queue::Pool;
use netkit::writer::Pacing;
use tokio::io::AsyncWrite;
use tokio_util::codec::Decoder;
use tokio_util::sync::CancellationToken;

use crate::chat::Chat;
use crate::config::Config;
use crate::conn::flood::Budget;
use crate::conn::outbound::Outbound;
use crate::conn::reader::{ClientRead, FrameReader};
use crate::core::stats::Stats;

/// The context of every connection: the chat service, the settings, the memory all
/// clients' queues share, and the shutdown signal.
pub struct Ctx<B> {
    /// The chat service.
    pub chat: Chat<B>,
    /// Settings.
    pub cfg: Arc<Config>,
    /// What every client's send queue counts in (PROTOCOL.md §6.3): the server-wide bound.
    pub pool: Arc<Pool>,
    /// Cancelled when the server shuts down.
    pub shutdown: CancellationToken,
}

/// When all clients' queues together pass `--total-queue-bytes`, the fullest are cut off
/// as not reading, but never one with less than this waiting (PROTOCOL.md §6.3).
pub const SHED_FLOOR: usize = 1024 * 1024;

impl<B> Clone for Ctx<B> {
    fn clone(&self) -> Self {
        Ctx {
            chat: self.chat.clone(),
            cfg: self.cfg.clone(),
            pool: self.pool.clone(),
            shutdown: self.shutdown.clone(),
        }
    }
}

impl<B> Ctx<B> {
    /// The server's counters (README, "Metrics"), reached through the hub: a method, not a
    /// field, so that no connection's task keeps a pointer to them across its waits.
    pub fn stats(&self) -> &Stats {
        self.chat.hub().stats()
    }

    /// The context of a server with these settings.
    pub fn new(chat: Chat<B>, cfg: Config) -> Self {
        let limit = match cfg.total_queue_bytes {
            0 => usize::MAX,
            n => n,
        };
        Ctx {
            chat,
            pool: Pool::new(limit, SHED_FLOOR),
            cfg: Arc::new(cfg),
            shutdown: CancellationToken::new(),
        }
    }

    /// A new connection's send queue, counted in the server-wide pool (PROTOCOL.md §6.3),
    /// and its writer; `gap` is the pause after the first frame (§2.3). The writer
    /// coalesces by `--coalesce-ms` (§6.3, docs/ARCHITECTURE.md "Writing to a client").
    pub fn outbound<W>(&self, wr: W, gap: Duration) -> Outbound
    where
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let pool = Some(self.pool.clone());
        let pacing = Pacing {
            first_gap: gap,
            coalesce: self.cfg.coalesce,
        };
        Outbound::start(wr, self.cfg.client_queue_bytes, pacing, pool)
    }

    /// A new connection's reader with `decoder`, from `buffered` bytes: paced by a full
    /// flood budget if flood control is on (§6.7), a frame begun bounded by the frame
    /// timeout (§6.2).
    pub fn reader<R: ClientRead, D: Decoder>(
        &self,
        rd: R,
        decoder: D,
        buffered: BytesMut,
    ) -> FrameReader<R, D> {
        let budget = self
            .cfg
            .flood
            .map(|limit| Budget::new(limit, tokio::time::Instant::now()));
        FrameReader::new(rd, decoder, buffered, budget).with_frame_timeout(self.cfg.frame_timeout)
    }
}
