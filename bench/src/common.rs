//! Options every scenario shares, and helpers to log many clients in.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use tokio::task::JoinSet;

use crate::net::Sources;
use crate::proto::{Client, Proto};

/// Options of every scenario.
#[derive(Debug, Clone, clap::Args)]
pub struct Common {
    /// Server address (loopback only).
    #[arg(long, default_value = "127.0.0.1:65432")]
    pub addr: SocketAddr,
    /// Protocol of the server under test.
    #[arg(long, value_enum, default_value = "chat")]
    pub proto: Proto,
    /// Also print the results as one JSON line.
    #[arg(long)]
    pub json: bool,
    /// Write a PNG plot of the results here.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Spread client sockets over this many source addresses 127.0.0.1..127.0.0.N.
    #[arg(long, default_value_t = 1)]
    pub sources: u32,
    /// Prefix of the generated user names (make it unique per run on a shared server).
    #[arg(long, default_value = "b")]
    pub prefix: String,
    /// Seconds a login may take.
    #[arg(long, default_value_t = 10.0)]
    pub login_timeout: f64,
    /// Logins in flight at once (ngircd's listen backlog is 10; inspircd answers
    /// registrations once a second, so it wants many at once).
    #[arg(long, default_value_t = 64)]
    pub login_parallel: usize,
}

impl Common {
    /// The login timeout.
    pub fn login_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.login_timeout)
    }
}

/// A progress bar with a message.
pub fn bar(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    pb
}

/// Logs in `names`, at most `parallel` at a time; fails on the first error.
pub async fn login_all(
    c: &Common,
    sources: &Arc<Sources>,
    names: Vec<String>,
    parallel: usize,
) -> anyhow::Result<Vec<Client>> {
    let pb = bar(names.len() as u64, "login");
    let mut out: Vec<Option<Client>> = (0..names.len()).map(|_| None).collect();
    let mut set = JoinSet::new();
    let mut pending = names.into_iter().enumerate();
    loop {
        while set.len() < parallel.max(1) {
            let Some((i, name)) = pending.next() else {
                break;
            };
            let (s, addr, proto, t) = (sources.clone(), c.addr, c.proto, c.login_timeout());
            set.spawn(async move { (i, s.login(addr, proto, &name, t, true).await) });
        }
        let Some(done) = set.join_next().await else {
            break;
        };
        let (i, client) = done?;
        out[i] = Some(client?);
        pb.inc(1);
    }
    pb.finish_and_clear();
    Ok(out.into_iter().flatten().collect())
}

/// Microseconds since `start`.
pub fn micros_since(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX)
}
