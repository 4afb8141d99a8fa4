//! Command-line flags and their environment variables (the broker's place among the
//! processes: docs/ARCHITECTURE.md, "Processes"; the limits and the heartbeat of the link
//! they set: "The broker link").

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use broker::Config;
use broker::config::{
    DEFAULT_HEARTBEAT_MS, DEFAULT_INBOX_BYTES, DEFAULT_LINK_QUEUE_BYTES, DEFAULT_PRE_AUTH_LIMIT,
};
use broker::history::store::Retention;
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
    #[arg(long, env = "CHAT_LINK_QUEUE_BYTES", default_value_t = DEFAULT_LINK_QUEUE_BYTES)]
    pub link_queue_bytes: usize,

    /// Bytes of messages read from the servers and waiting to be routed; when they are
    /// used up, the links stop reading until the router catches up.
    #[arg(long, env = "CHAT_INBOX_BYTES", default_value_t = DEFAULT_INBOX_BYTES)]
    pub inbox_bytes: usize,

    /// Heartbeat interval of the server links in milliseconds; a link silent for three
    /// intervals is considered dead.
    #[arg(long, env = "CHAT_HEARTBEAT_MS", default_value_t = DEFAULT_HEARTBEAT_MS)]
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

    /// Links that have not yet shown the token, at most; more are closed at once.
    #[arg(long, env = "CHAT_PRE_AUTH_LIMIT", default_value_t = DEFAULT_PRE_AUTH_LIMIT)]
    pub pre_auth_limit: usize,

    /// Links in all, at most; more are closed at once. 0: the open-file limit less 100.
    #[arg(long, env = "CHAT_MAX_LINKS", default_value_t = 0)]
    pub max_links: usize,

    /// Keep the history (`on`) or not (`off`: no log, ids start at 1 at every start).
    #[arg(long, env = "CHAT_HISTORY", default_value = "on", value_parser = ["on", "off"])]
    pub history: String,

    /// Where the history lives (created if missing); default `$XDG_DATA_HOME/chat`, else
    /// `~/.local/share/chat`.
    #[arg(long, env = "CHAT_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// Events older than this are removed: a number with `s`, `m`, `h` or `d` (0: kept
    /// whatever their age).
    #[arg(long, env = "CHAT_HISTORY_MAX_AGE", default_value = "30d", value_parser = chat_common::clock::parse_age)]
    pub history_max_age: Duration,

    /// At most this many events are kept, the newest (0: no bound).
    #[arg(long, env = "CHAT_HISTORY_MAX_EVENTS", default_value_t = 1_000_000)]
    pub history_max_events: u64,

    /// A resume token unused for this long expires (same units as --history-max-age).
    #[arg(long, env = "CHAT_RESUME_TTL", default_value = "7d", value_parser = chat_common::clock::parse_age)]
    pub resume_ttl: Duration,

    /// Caps the history file at this many 4 KiB pages (0: no cap); past it writes fail as
    /// on a full disk. For tests of that path.
    #[arg(long, hide = true, default_value_t = 0)]
    pub history_max_pages: u64,

    /// Address of the metrics endpoint for operators (`GET /metrics`, Prometheus text
    /// format), or `off`. Port 0 picks a free port; printed as `metrics listening on
    /// IP:PORT`, after the link listener's line.
    #[arg(long, env = "CHAT_METRICS_LISTEN", default_value = "off")]
    pub metrics_listen: Listen,
}

pub use netkit::listen::Listen;

/// The history settings the flags give.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryFlags {
    /// The data directory.
    pub dir: PathBuf,
    /// The retention.
    pub retention: Retention,
    /// A cap on the file, in pages (0: none).
    pub max_pages: u64,
}

impl Args {
    /// Where and how to keep the history; `None` with `--history off`, or when no data
    /// directory is given and no home is known.
    pub fn history(&self) -> Result<Option<HistoryFlags>, String> {
        if self.history == "off" {
            return Ok(None);
        }
        let dir = match &self.data_dir {
            Some(d) => d.clone(),
            None => data_dir()
                .ok_or("no data directory: set --data-dir (or HOME), or run with --history off")?,
        };
        Ok(Some(HistoryFlags {
            dir,
            retention: Retention {
                max_age: (!self.history_max_age.is_zero()).then_some(self.history_max_age),
                max_events: (self.history_max_events > 0).then_some(self.history_max_events),
            },
            max_pages: self.history_max_pages,
        }))
    }
}

/// The chat's data folder: `$XDG_DATA_HOME/chat`, else `$HOME/.local/share/chat`.
fn data_dir() -> Option<PathBuf> {
    let var = |k| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let data = var("XDG_DATA_HOME").or_else(|| var("HOME").map(|h| h.join(".local/share")))?;
    Some(data.join("chat"))
}

impl Args {
    /// The broker's settings given by these flags, with the link token read from wherever
    /// they say; `nofile` is the open-file limit, which the default `--max-links` stays below.
    pub fn config(&self, token: String, nofile: u64) -> Config {
        let max_links = match self.max_links {
            0 => usize::try_from(nofile.saturating_sub(100))
                .unwrap_or(usize::MAX)
                .max(1),
            n => n,
        };
        Config {
            max_link_frame: self.max_link_frame,
            link_queue_bytes: self.link_queue_bytes,
            inbox_bytes: self.inbox_bytes,
            heartbeat: Duration::from_millis(self.heartbeat_ms.max(1)),
            token,
            pre_auth_limit: self.pre_auth_limit.max(1),
            max_links,
            reject_delay: broker::config::REJECT_DELAY,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default clap shows for a flag (read from the command, so the environment of the
    /// test does not matter).
    fn default_of(id: &str) -> String {
        use clap::CommandFactory;
        let cmd = Args::command();
        let arg = cmd
            .get_arguments()
            .find(|a| a.get_id() == id)
            .unwrap_or_else(|| panic!("no flag {id}"));
        arg.get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn the_defaults_of_the_flags_are_those_of_the_library() {
        let lib = Config::new("t");
        let flags = Args::try_parse_from([
            "broker",
            "--max-link-frame",
            &default_of("max_link_frame"),
            "--link-queue-bytes",
            &default_of("link_queue_bytes"),
            "--inbox-bytes",
            &default_of("inbox_bytes"),
            "--heartbeat-ms",
            &default_of("heartbeat_ms"),
            "--pre-auth-limit",
            &default_of("pre_auth_limit"),
        ])
        .expect("parse");
        // The library's default link cap stands for an unknown open-file limit.
        let nofile = lib.max_links as u64 + 100;
        assert_eq!(flags.config("t".into(), nofile), lib);
    }

    #[test]
    fn history_flags() {
        let args = Args::try_parse_from([
            "broker",
            "--data-dir",
            "/tmp/x",
            "--history-max-age",
            "12h",
            "--history-max-events",
            "0",
        ])
        .expect("parse");
        let h = args.history().expect("ok").expect("on");
        assert_eq!(h.dir, PathBuf::from("/tmp/x"));
        assert_eq!(
            h.retention,
            Retention {
                max_age: Some(Duration::from_secs(12 * 3600)),
                max_events: None
            }
        );
        let off = Args::try_parse_from(["broker", "--history", "off"]).expect("parse");
        assert_eq!(off.history(), Ok(None));
        assert_eq!(chat_common::clock::parse_age("0"), Ok(Duration::ZERO));
        assert_eq!(
            chat_common::clock::parse_age("90s"),
            Ok(Duration::from_secs(90))
        );
        assert_eq!(
            chat_common::clock::parse_age("30d"),
            Ok(Duration::from_secs(30 * 86_400))
        );
        assert!(
            chat_common::clock::parse_age("5").is_err(),
            "a unit is needed"
        );
        assert!(chat_common::clock::parse_age("5w").is_err());
        assert!(chat_common::clock::parse_age("").is_err());
        assert!(Args::try_parse_from(["broker", "--history", "maybe"]).is_err());
    }

    #[test]
    fn metrics_are_off_unless_an_address_is_given() {
        let none = Args::try_parse_from(["broker"]).expect("parse");
        assert_eq!(none.metrics_listen, Listen::Off);
        let on =
            Args::try_parse_from(["broker", "--metrics-listen", "127.0.0.1:0"]).expect("parse");
        assert_eq!(
            on.metrics_listen,
            Listen::On("127.0.0.1:0".parse().expect("addr"))
        );
        assert!(Args::try_parse_from(["broker", "--metrics-listen", "yes"]).is_err());
    }

    #[test]
    fn the_flags_reach_the_config() {
        let args = Args::try_parse_from([
            "broker",
            "--link-queue-bytes",
            "65536",
            "--inbox-bytes",
            "1000",
            "--heartbeat-ms",
            "0",
            "--max-link-frame",
            "4096",
            "--pre-auth-limit",
            "7",
        ])
        .expect("parse");
        let c = args.config("tok".into(), 20_000);
        assert_eq!((c.pre_auth_limit, c.max_links), (7, 19_900));
        let capped = Args::try_parse_from(["broker", "--max-links", "3"]).expect("parse");
        assert_eq!(capped.config("t".into(), 20_000).max_links, 3);
        assert_eq!(
            (c.link_queue_bytes, c.inbox_bytes, c.max_link_frame),
            (65536, 1000, 4096)
        );
        assert_eq!(
            c.heartbeat,
            Duration::from_millis(1),
            "a zero heartbeat is 1 ms"
        );
        assert_eq!(c.token, "tok");
    }
}
