//! Command-line flags and their environment variables (design §5).

use std::net::SocketAddr;

use clap::Parser;

/// The chat broker: owns the global user directory and the order of messages; front-end
/// servers connect to it.
#[derive(Debug, Clone, Parser)]
#[command(version, about)]
pub struct Args {
    /// Address to listen on for server links. Port 0 picks a free port; the bound address
    /// is printed as `listening on IP:PORT`.
    #[arg(long, env = "CHAT_BROKER_LISTEN", default_value = "127.0.0.1:65430")]
    pub listen: SocketAddr,

    /// Largest link message accepted, in bytes.
    #[arg(long, env = "CHAT_MAX_LINK_FRAME", default_value_t = chat_common::link::DEFAULT_MAX_LINK_FRAME)]
    pub max_link_frame: usize,

    /// Bytes that may wait for one server before it is disconnected as too slow.
    #[arg(long, env = "CHAT_LINK_QUEUE_BYTES", default_value_t = 256 * 1024 * 1024)]
    pub link_queue_bytes: usize,

    /// Bytes of messages read from the servers and waiting to be routed; when they are
    /// used up, the links stop reading until the router catches up.
    #[arg(long, env = "CHAT_INBOX_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub inbox_bytes: usize,

    /// Heartbeat interval of the server links in milliseconds; a link silent for three
    /// intervals is considered dead.
    #[arg(long, env = "CHAT_HEARTBEAT_MS", default_value_t = 500)]
    pub heartbeat_ms: u64,

    /// Shared secret of the broker link (servers must present it). Without it, the token
    /// is read from `--token-file`.
    #[arg(long, env = "CHAT_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// File holding the link token; default `$XDG_CONFIG_HOME/chat/link-token` (else
    /// `~/.config/chat/link-token`). The broker creates it, with a random
    /// token readable only by its owner, if it does not exist.
    #[arg(long, env = "CHAT_TOKEN_FILE")]
    pub token_file: Option<std::path::PathBuf>,
}
