//! What every connection handler gets.

use std::sync::Arc;

use netkit::queue::Pool;
use tokio_util::sync::CancellationToken;

use crate::chat::Chat;
use crate::config::Config;

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

    /// A full flood budget for a new connection, if flood control is on (PROTOCOL.md §6.7).
    pub fn budget(&self) -> Option<crate::conn::flood::Budget> {
        self.cfg
            .flood
            .map(|limit| crate::conn::flood::Budget::new(limit, tokio::time::Instant::now()))
    }
}
