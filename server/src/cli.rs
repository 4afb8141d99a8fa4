//! Command-line flags and their environment variables (README, "Running it"; every flag
//! has a `CHAT_*` variable), turned into a [`Config`].

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;

use crate::config::{BrokerConfig, Config, NatsConfig};
use crate::conn::flood::FloodLimit;
use crate::core::presence::PresencePolicy;
use crate::net::limits::Limits;

/// A chat front-end server: accepts clients over TCP (the class-chat JSON protocol, and a
/// line protocol for nc/telnet) and joins them to the chat through the broker.
#[derive(Debug, Clone, Parser)]
#[command(version, about)]
pub struct Args {
    /// Address of the JSON client port. Port 0 picks a free port; the bound address is
    /// printed as `listening on IP:PORT` once the broker link is up.
    #[arg(long, env = "CHAT_LISTEN", default_value = "0.0.0.0:65432")]
    pub listen: SocketAddr,

    /// Address of the broker.
    #[arg(long, env = "CHAT_BROKER", default_value = "127.0.0.1:65430")]
    pub broker: String,

    /// Address of the line port for nc/telnet users, or `off`. Printed as
    /// `text listening on IP:PORT`.
    #[arg(long, env = "CHAT_TEXT_LISTEN", default_value = "0.0.0.0:65433")]
    pub text_listen: Listen,

    /// Address of the JSON port over TLS, or `off`. Needs `--tls-cert` and `--tls-key`, or
    /// `--tls-self-signed`. Printed as `tls listening on IP:PORT`.
    #[arg(long, env = "CHAT_TLS_LISTEN", default_value = "off")]
    pub tls_listen: Listen,

    /// PEM certificate chain for the TLS port; with `--tls-self-signed`, where the
    /// generated certificate is written (default `~/.config/chat/server-cert.pem`).
    #[arg(long, env = "CHAT_TLS_CERT")]
    pub tls_cert: Option<std::path::PathBuf>,

    /// PEM private key for the TLS port.
    #[arg(long, env = "CHAT_TLS_KEY")]
    pub tls_key: Option<std::path::PathBuf>,

    /// Development mode: make a certificate for localhost and the listen address at
    /// startup (clients trust it by using the written certificate as their CA file).
    #[arg(long, env = "CHAT_TLS_SELF_SIGNED")]
    pub tls_self_signed: bool,

    /// Largest frame (JSON port) or line (line port) accepted, in bytes.
    #[arg(long, env = "CHAT_MAX_FRAME", default_value_t = chat_common::DEFAULT_MAX_FRAME)]
    pub max_frame: usize,

    /// Bytes that may wait for one client before it is disconnected as not reading.
    #[arg(long, env = "CHAT_CLIENT_QUEUE_BYTES", default_value_t = 8 * 1024 * 1024)]
    pub client_queue_bytes: usize,

    /// Bytes all clients' send queues may hold together: past it, the clients with the most
    /// waiting (at least 1 MiB each) are disconnected as not reading, fullest first, until
    /// the rest fits (0: no bound).
    #[arg(long, env = "CHAT_TOTAL_QUEUE_BYTES", default_value_t = 256 * 1024 * 1024)]
    pub total_queue_bytes: usize,

    /// A frame or line begun must be complete within this many milliseconds, or the
    /// connection is closed (a half-sent frame holds its buffer).
    #[arg(long, env = "CHAT_FRAME_TIMEOUT_MS", default_value_t = 30_000)]
    pub frame_timeout_ms: u64,

    /// After writing to a client, wait this many milliseconds before the next write, so a
    /// client that only listens gets many frames per system call (0: write at once). The
    /// answer to a client that just sent something is never delayed.
    #[arg(long, env = "CHAT_COALESCE_MS", default_value_t = 3)]
    pub coalesce_ms: u64,

    /// Bytes that may wait for the broker link before clients are held back.
    #[arg(long, env = "CHAT_LINK_QUEUE_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub link_queue_bytes: usize,

    /// A connection that sends no name within this many milliseconds is closed.
    #[arg(long, env = "CHAT_LOGIN_TIMEOUT_MS", default_value_t = 10_000)]
    pub login_timeout_ms: u64,

    /// How long to wait for more bytes of a raw name sent without a terminator.
    #[arg(long, env = "CHAT_LOGIN_GRACE_MS", default_value_t = 50)]
    pub login_grace_ms: u64,

    /// Pause after the welcome frame, so old clients that parse one JSON object per
    /// `recv()` never get it glued to the next frame.
    #[arg(long, env = "CHAT_WELCOME_GAP_MS", default_value_t = 50)]
    pub welcome_gap_ms: u64,

    /// Above this many users online, joins and leaves are summarised every few seconds
    /// instead of announced one by one to everyone (0: always announce).
    #[arg(long, env = "CHAT_PRESENCE_LIMIT", default_value_t = 1000)]
    pub presence_limit: usize,

    /// Frames per second that join and leave notices may cost in a room under the limit
    /// (each notice costs one frame per local client); a burst beyond it is told as one
    /// `users` frame with the whole list a second later (0: no budget).
    #[arg(long, env = "CHAT_PRESENCE_BUDGET", default_value_t = 20_000)]
    pub presence_budget: u64,

    /// Heartbeat interval on the broker link in milliseconds; three missed beats mean the
    /// broker is gone.
    #[arg(long, env = "CHAT_HEARTBEAT_MS", default_value_t = 500)]
    pub heartbeat_ms: u64,

    /// TCP keepalive on client connections: after this many milliseconds of silence the
    /// kernel probes the peer three times, a third of that apart, so a client whose machine
    /// vanished without closing (power cut, cable, NAT timeout) is dropped after about twice
    /// this; unacknowledged data times out after the same time. Healthy but quiet clients
    /// answer the probes and stay. 0: off.
    #[arg(long, env = "CHAT_KEEPALIVE_MS", default_value_t = 60_000)]
    pub keepalive_ms: u64,

    /// Disconnect a logged-in client that sends nothing at all for this many milliseconds.
    /// Off by default (0): the class-chat clients send nothing while their user is quiet.
    #[arg(long, env = "CHAT_IDLE_TIMEOUT_MS", default_value_t = 0)]
    pub idle_timeout_ms: u64,

    /// Connections the server accepts in total; more are refused with an error frame.
    /// 0: the open-file limit less 100 (kept for the broker link and the listeners).
    #[arg(long, env = "CHAT_MAX_CONNS", default_value_t = 0)]
    pub max_conns: usize,

    /// Connections from one IP address (a whole class behind one NAT address must fit);
    /// 0: no limit. Loopback is exempt unless `--limit-loopback`.
    #[arg(long, env = "CHAT_MAX_CONNS_PER_IP", default_value_t = 256)]
    pub max_conns_per_ip: usize,

    /// Connections from one IP address that have not logged in yet (each lasts at most the
    /// login timeout), so one machine behind a shared address cannot take the others'
    /// places; 0: no limit. Loopback is exempt unless `--limit-loopback`.
    #[arg(long, env = "CHAT_MAX_UNNAMED_PER_IP", default_value_t = 32)]
    pub max_unnamed_per_ip: usize,

    /// Hold loopback addresses to the per-address limits too (by default they are exempt:
    /// load tests and local proxies connect from 127.0.0.1).
    #[arg(long, env = "CHAT_LIMIT_LOOPBACK")]
    pub limit_loopback: bool,

    /// Flood control: bytes of cost per second a client may spend on average, or `off`.
    /// A message costs its encoded frame times the users it reaches, a command its answer,
    /// every item at least 256 bytes; a client over its budget is read later, never
    /// refused (PROTOCOL.md §6.7).
    #[arg(long, env = "CHAT_FLOOD_RATE", default_value = "4194304")]
    pub flood_rate: FloodSetting,

    /// Bytes of cost a client may spend at once after a pause (the seeds' paste tests, 5 ×
    /// 200 messages of 10–20 KB sent as fast as they can, fit in it).
    #[arg(long, env = "CHAT_FLOOD_BURST", default_value_t = 32 * 1024 * 1024)]
    pub flood_burst: u64,

    /// Worker threads: 0 = one per CPU core; 1 = everything on one thread (no cross-thread
    /// wake-ups, the cheapest per message when the server shares a small machine).
    #[arg(long, env = "CHAT_THREADS", default_value_t = 0)]
    pub threads: usize,

    /// Shared secret of the broker link (servers must present it). Without it, the token
    /// is read from `--token-file`.
    #[arg(long, env = "CHAT_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// File holding the link token; default `$XDG_CONFIG_HOME/chat/link-token` (else
    /// `~/.config/chat/link-token`). Read again at every connection
    /// attempt, so a server started before the broker finds the file the broker creates.
    #[arg(long, env = "CHAT_TOKEN_FILE")]
    pub token_file: Option<std::path::PathBuf>,

    /// Run on a NATS cluster with JetStream instead of the broker: `nats://host:port` of
    /// one or more of its nodes, comma-separated (the others are learnt from the cluster).
    /// `--broker` and the link token are then not used (README, "Scaling out").
    #[arg(long, env = "CHAT_NATS", value_delimiter = ',')]
    pub nats: Vec<String>,

    /// With `--nats`: replicas of the stream and buckets when this server creates them
    /// (0: three on a cluster of three nodes or more, else one).
    #[arg(long, env = "CHAT_NATS_REPLICAS", default_value_t = 0)]
    pub nats_replicas: usize,

    /// With `--nats`: events older than this are removed (`90s`, `15m`, `12h`, `30d`; 0:
    /// whatever their age), set when the stream is created.
    #[arg(long, env = "CHAT_HISTORY_MAX_AGE", default_value = "30d", value_parser = chat_common::clock::parse_age)]
    pub history_max_age: Duration,

    /// With `--nats`: at most this many events are kept (0: no bound).
    #[arg(long, env = "CHAT_HISTORY_MAX_EVENTS", default_value_t = 1_000_000)]
    pub history_max_events: u64,

    /// With `--nats`: a resume token unused this long expires.
    #[arg(long, env = "CHAT_RESUME_TTL", default_value = "7d", value_parser = chat_common::clock::parse_age)]
    pub resume_ttl: Duration,

    /// Address of the metrics endpoint for operators (`GET /metrics`, Prometheus text
    /// format), or `off`. Port 0 picks a free port; printed as `metrics listening on
    /// IP:PORT`, after the other listeners.
    #[arg(long, env = "CHAT_METRICS_LISTEN", default_value = "off")]
    pub metrics_listen: Listen,
}

pub use netkit::listen::Listen;

/// The largest `--max-frame`: the broker's default link limit less room for the envelope
/// of a message (sender, ids); a broker with a larger `--max-link-frame` is not assumed.
pub const MAX_FRAME_LIMIT: usize = chat_common::link::DEFAULT_MAX_LINK_FRAME - 64 * 1024;

/// Flags that cannot make a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The token could not be found.
    #[error(transparent)]
    Token(#[from] netkit::token::TokenError),
    /// An age on NATS shorter than its writes are retried.
    #[error(
        "{flag} {age:?} is shorter than a write to NATS is retried: 0 (no bound) or at least {min:?}"
    )]
    NatsAge {
        /// `--history-max-age` or `--resume-ttl`.
        flag: &'static str,
        /// What was asked.
        age: Duration,
        /// The shortest allowed.
        min: Duration,
    },
    /// `--max-frame` beyond what the broker link carries.
    #[error("--max-frame {max_frame} is larger than the broker link carries (at most {limit})")]
    MaxFrame {
        /// What was asked.
        max_frame: usize,
        /// The largest allowed.
        limit: usize,
    },
}

/// The `--flood-rate` value: bytes per second, or `off`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FloodSetting {
    /// So many bytes of cost per second.
    PerSecond(f64),
    /// No flood control (benchmarks, trusted networks).
    Off,
}

impl std::str::FromStr for FloodSetting {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.eq_ignore_ascii_case("off") {
            return Ok(FloodSetting::Off);
        }
        match s.parse::<f64>() {
            Ok(r) if r.is_finite() && r > 0.0 => Ok(FloodSetting::PerSecond(r)),
            _ => Err(format!(
                "expected bytes per second (a positive number) or 'off', not '{s}'"
            )),
        }
    }
}

impl Args {
    /// The settings these flags give. `nofile` is the open-file limit, which the default
    /// total connection limit stays below.
    pub fn config(&self, nofile: u64) -> Result<Config, ConfigError> {
        // A message of `--max-frame` bytes (encoded) travels to the broker in one link
        // message, which the broker refuses past its own limit by dropping the whole link.
        if self.max_frame > MAX_FRAME_LIMIT {
            return Err(ConfigError::MaxFrame {
                max_frame: self.max_frame,
                limit: MAX_FRAME_LIMIT,
            });
        }
        if !self.nats.is_empty() {
            for (flag, age) in [
                ("--history-max-age", self.history_max_age),
                ("--resume-ttl", self.resume_ttl),
            ] {
                if !age.is_zero() && age < crate::config::MIN_NATS_AGE {
                    let min = crate::config::MIN_NATS_AGE;
                    return Err(ConfigError::NatsAge { flag, age, min });
                }
            }
        }
        let token =
            netkit::token::TokenSource::from_flags(self.token.clone(), self.token_file.clone())?;
        let total = match self.max_conns {
            0 => usize::try_from(nofile.saturating_sub(100)).unwrap_or(usize::MAX),
            n => n,
        };
        Ok(Config {
            max_frame: self.max_frame,
            // A queue must at least hold one maximal frame plus the notices around it.
            client_queue_bytes: self.client_queue_bytes.max(self.max_frame + 64 * 1024),
            total_queue_bytes: self.total_queue_bytes,
            frame_timeout: Duration::from_millis(self.frame_timeout_ms.max(1)),
            coalesce: Duration::from_millis(self.coalesce_ms),
            login_timeout: Duration::from_millis(self.login_timeout_ms),
            login_grace: Duration::from_millis(self.login_grace_ms),
            welcome_gap: Duration::from_millis(self.welcome_gap_ms),
            keepalive: (self.keepalive_ms > 0).then(|| Duration::from_millis(self.keepalive_ms)),
            idle_timeout: (self.idle_timeout_ms > 0)
                .then(|| Duration::from_millis(self.idle_timeout_ms)),
            flood: match self.flood_rate {
                FloodSetting::Off => None,
                // Budgets need no more than f32's seven digits.
                FloodSetting::PerSecond(rate) => Some(FloodLimit {
                    rate: rate as f32,
                    burst: self.flood_burst as f32,
                }),
            },
            presence: PresencePolicy {
                limit: self.presence_limit,
                budget: self.presence_budget,
            },
            limits: Limits {
                total,
                per_ip: self.max_conns_per_ip,
                unnamed_per_ip: self.max_unnamed_per_ip,
                limit_loopback: self.limit_loopback,
            },
            broker: BrokerConfig {
                addr: self.broker.clone(),
                token,
                queue_bytes: self.link_queue_bytes,
                heartbeat: Duration::from_millis(self.heartbeat_ms.max(1)),
                max_frame: chat_common::link::DEFAULT_MAX_LINK_FRAME.max(self.max_frame + 4096),
            },
            nats: (!self.nats.is_empty()).then(|| NatsConfig {
                urls: self.nats.clone(),
                replicas: self.nats_replicas,
                max_age: self.history_max_age,
                max_events: self.history_max_events,
                resume_ttl: self.resume_ttl,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let a = Args::try_parse_from(["server", "--token", "t"]).unwrap();
        assert_eq!(a.text_listen, Listen::On("0.0.0.0:65433".parse().unwrap()));
        assert_eq!(a.tls_listen, Listen::Off);
        let c = a.config(1000).unwrap();
        assert_eq!(c.limits.total, 900);
        assert_eq!(c.limits.per_ip, 256);
        assert_eq!(c.flood.map(|f| f.burst), Some(32.0 * 1024.0 * 1024.0));
        assert_eq!(c.flood.map(|f| f.rate), Some(4.0 * 1024.0 * 1024.0));
        assert_eq!(c.login_timeout, Duration::from_secs(10));
        let a = Args::try_parse_from([
            "server",
            "--token",
            "t",
            "--text-listen",
            "off",
            "--flood-rate",
            "off",
            "--max-conns",
            "5",
            "--client-queue-bytes",
            "1",
        ])
        .unwrap();
        assert_eq!(a.text_listen, Listen::Off);
        let c = a.config(1000).unwrap();
        assert!(c.flood.is_none());
        assert_eq!(c.limits.total, 5);
        assert_eq!(
            c.client_queue_bytes,
            c.max_frame + 64 * 1024,
            "never below a frame"
        );
        assert!(Args::try_parse_from(["server", "--flood-rate", "-1"]).is_err());
        assert_eq!(a.metrics_listen, Listen::Off, "metrics are off by default");
        let m = Args::try_parse_from(["server", "--metrics-listen", "127.0.0.1:0"]).unwrap();
        assert_eq!(m.metrics_listen, Listen::On("127.0.0.1:0".parse().unwrap()));
        assert!(Args::try_parse_from(["server", "--text-listen", "nowhere"]).is_err());
    }

    #[test]
    fn ages_on_nats_are_never_shorter_than_a_write_is_retried() {
        let with = |extra: &[&str]| {
            let mut argv = vec!["server", "--token", "t"];
            argv.extend_from_slice(extra);
            Args::try_parse_from(argv).unwrap().config(1000)
        };
        let nats = ["--nats", "nats://127.0.0.1:4222"];
        for flag in ["--history-max-age", "--resume-ttl"] {
            let short = with(&[&nats[..], &[flag, "5s"]].concat());
            assert!(
                matches!(short, Err(ConfigError::NatsAge { flag: f, .. }) if f == flag),
                "{flag}: {short:?}"
            );
            assert!(
                with(&[&nats[..], &[flag, "20s"]].concat()).is_ok(),
                "{flag}"
            );
            assert!(
                with(&[&nats[..], &[flag, "0"]].concat()).is_ok(),
                "{flag}: no bound"
            );
            // The broker's own history has no such window.
            assert!(with(&[flag, "5s"]).is_ok(), "{flag} without --nats");
        }
    }
}
