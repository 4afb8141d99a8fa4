//! What every connection handler gets.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::chat::Chat;
use crate::config::Config;

/// The context of every connection: the chat service, the settings, and the shutdown
/// signal.
pub struct Ctx<B> {
    /// The chat service.
    pub chat: Chat<B>,
    /// Settings.
    pub cfg: Arc<Config>,
    /// Cancelled when the server shuts down.
    pub shutdown: CancellationToken,
}

impl<B> Clone for Ctx<B> {
    fn clone(&self) -> Self {
        Ctx {
            chat: self.chat.clone(),
            cfg: self.cfg.clone(),
            shutdown: self.shutdown.clone(),
        }
    }
}
