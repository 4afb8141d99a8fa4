//! The settings of a broker, independent of how they are given (the binary reads them from
//! its flags, a test writes them down).

use std::fmt;
use std::time::Duration;

/// Default of `--link-queue-bytes`: bytes that may wait for one server.
pub const DEFAULT_LINK_QUEUE_BYTES: usize = 256 * 1024 * 1024;

/// Default of `--inbox-bytes`: bytes read from all servers and not yet routed.
pub const DEFAULT_INBOX_BYTES: usize = 64 * 1024 * 1024;

/// Default of `--heartbeat-ms`.
pub const DEFAULT_HEARTBEAT_MS: u64 = 500;

/// A link silent for this many heartbeats is dead, and a link that sends no `Hello` within
/// this many is refused.
pub const HEARTBEATS_BEFORE_TIMEOUT: u32 = 3;

/// Largest first message of a link: a `Hello` is a few hundred bytes, and nothing bigger is
/// read from a peer before it has shown the token.
pub const PRE_AUTH_MAX_FRAME: usize = 4 * 1024;

/// Default of [`Config::reject_delay`]: guessing the token costs a second per try and per
/// place among [`Config::pre_auth_limit`] (before: ~10,000 tries a second).
pub const REJECT_DELAY: Duration = Duration::from_secs(1);

/// Default of `--pre-auth-limit`.
pub const DEFAULT_PRE_AUTH_LIMIT: usize = 64;

/// Default of `--max-links` when the open-file limit is not known.
pub const DEFAULT_MAX_LINKS: usize = 1024;

/// The longest a link may take to send its `Hello`, whatever the heartbeat.
pub const MAX_HELLO_TIMEOUT: Duration = Duration::from_secs(5);

/// Settings of a broker (what the flags give), independent of clap.
///
/// Its `Debug` output leaves the token out, so a logged `Config` gives no secret away.
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    /// Largest link message accepted from a server, in bytes.
    pub max_link_frame: usize,
    /// Bytes that may wait in one server's outbound queue before the server is cut off as
    /// too slow ([`Rejection::QueueExceeded`](chat_common::link::Rejection::QueueExceeded)).
    pub link_queue_bytes: usize,
    /// Bytes of messages read from the servers and waiting to be routed; when they are used
    /// up, the links stop reading until the router catches up.
    pub inbox_bytes: usize,
    /// Heartbeat interval of the links: a link silent for
    /// [`HEARTBEATS_BEFORE_TIMEOUT`] intervals is dead.
    pub heartbeat: Duration,
    /// The link token servers must present in their `Hello`.
    pub token: String,
    /// Links that have not yet shown the token, at most; more are closed at once (so peers
    /// that never say `Hello` cannot hold the broker's memory or file descriptors).
    pub pre_auth_limit: usize,
    /// Links in all, at most (below the open-file limit); more are closed at once.
    pub max_links: usize,
    /// How long a link that showed a wrong token waits for its rejection, holding its
    /// pre-auth place.
    pub reject_delay: Duration,
}

impl Config {
    /// The defaults of the flags, with this token.
    pub fn new(token: impl Into<String>) -> Config {
        Config {
            max_link_frame: chat_common::link::DEFAULT_MAX_LINK_FRAME,
            link_queue_bytes: DEFAULT_LINK_QUEUE_BYTES,
            inbox_bytes: DEFAULT_INBOX_BYTES,
            heartbeat: Duration::from_millis(DEFAULT_HEARTBEAT_MS),
            token: token.into(),
            pre_auth_limit: DEFAULT_PRE_AUTH_LIMIT,
            max_links: DEFAULT_MAX_LINKS,
            reject_delay: REJECT_DELAY,
        }
    }

    /// How long a link may stay silent (before its `Hello` or after) before it is dropped:
    /// [`HEARTBEATS_BEFORE_TIMEOUT`] heartbeats, and never zero.
    pub fn idle_timeout(&self) -> Duration {
        self.heartbeat.max(Duration::from_millis(1)) * HEARTBEATS_BEFORE_TIMEOUT
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("max_link_frame", &self.max_link_frame)
            .field("link_queue_bytes", &self.link_queue_bytes)
            .field("inbox_bytes", &self.inbox_bytes)
            .field("heartbeat", &self.heartbeat)
            .field("token", &"<hidden>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_token() {
        let text = format!("{:?}", Config::new("s3cret"));
        assert!(!text.contains("s3cret"), "{text}");
        assert!(text.contains("heartbeat"), "{text}");
    }

    #[test]
    fn the_idle_timeout_is_three_heartbeats_and_never_zero() {
        let mut c = Config::new("t");
        assert_eq!(c.idle_timeout(), Duration::from_millis(1500));
        c.heartbeat = Duration::ZERO;
        assert_eq!(c.idle_timeout(), Duration::from_millis(3));
    }
}
