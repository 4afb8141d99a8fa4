//! The settings of a running server ([`crate::server::run`]), independent of how they were
//! given ([`crate::cli`] turns flags and environment variables into them).

use std::time::Duration;

use crate::conn::flood::FloodLimit;
use crate::core::presence::PresencePolicy;
use crate::net::limits::Limits;

/// Everything a server needs to know.
#[derive(Debug, Clone)]
pub struct Config {
    /// Largest frame (JSON port) or line (line port) accepted, in bytes.
    pub max_frame: usize,
    /// Bytes that may wait for one client before it is disconnected as not reading
    /// (never less than one maximal frame and the notices around it).
    pub client_queue_bytes: usize,
    /// Bytes all clients' send queues may hold together before those that are behind are
    /// cut off (0: no bound; PROTOCOL.md §6.3).
    pub total_queue_bytes: usize,
    /// A frame (or line) begun must be complete within this, or the connection is closed:
    /// a half-sent frame holds its buffer (PROTOCOL.md §6.2).
    pub frame_timeout: Duration,
    /// After a write to a client, the pause before the next one unless the client spoke
    /// meanwhile (PROTOCOL.md §6.3; `netkit::writer::Pacing::coalesce`).
    pub coalesce: Duration,
    /// A connection that sends no name within this is closed.
    pub login_timeout: Duration,
    /// How long to wait for more bytes of a raw name sent without a terminator.
    pub login_grace: Duration,
    /// Pause after the welcome frame (PROTOCOL.md §2.3).
    pub welcome_gap: Duration,
    /// Flood control per client (PROTOCOL.md §6.7); `None` when off.
    pub flood: Option<FloodLimit>,
    /// TCP keepalive on client connections; `None` when off.
    pub keepalive: Option<Duration>,
    /// Disconnect a client that sends nothing for this long; `None` when off.
    pub idle_timeout: Option<Duration>,
    /// When joins and leaves are announced (PROTOCOL.md §6.6).
    pub presence: PresencePolicy,
    /// Connection limits (0: none).
    pub limits: Limits,
    /// The broker link.
    pub broker: BrokerConfig,
    /// The NATS cluster to run on instead of the broker (`--nats`), if any.
    pub nats: Option<NatsConfig>,
}

/// The shortest `--history-max-age` and `--resume-ttl` on NATS (but 0, no bound): a
/// stream's de-duplication window may not be longer than its age, and the window must
/// cover every retry of a write (`backend::nats::publish::RETRY_FOR`, docs/NATS.md,
/// "Exactly once").
pub const MIN_NATS_AGE: Duration = Duration::from_secs(20);

/// How to run on a NATS cluster (README, "Scaling out").
#[derive(Debug, Clone)]
pub struct NatsConfig {
    /// Its nodes' URLs.
    pub urls: Vec<String>,
    /// Replicas of the stream and buckets when this server makes them (0: three on a
    /// cluster of three nodes or more, else one).
    pub replicas: usize,
    /// Events older than this are removed (PROTOCOL.md §10.7).
    pub max_age: Duration,
    /// At most this many events are kept.
    pub max_events: u64,
    /// A resume token unused this long expires (PROTOCOL.md §10.4).
    pub resume_ttl: Duration,
}

/// How to reach the broker.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Its address (`host:port`).
    pub addr: String,
    /// Where the link token comes from.
    pub token: netkit::token::TokenSource,
    /// Bytes that may wait for the link before clients are held back.
    pub queue_bytes: usize,
    /// Heartbeat interval; three silent intervals mean the broker is gone.
    pub heartbeat: Duration,
    /// Largest link message accepted.
    pub max_frame: usize,
}
