//! Options every scenario shares, and helpers to log many clients in.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use tokio::task::JoinSet;

use crate::cpu::Window;
use crate::net::Sources;
use crate::procstat::{self, ProcStatError};
use crate::proto::{Client, Proto};

/// Options of every scenario.
#[derive(Debug, Clone, clap::Args)]
pub struct Common {
    /// Server address (loopback only).
    #[arg(long, default_value = "127.0.0.1:65432")]
    pub addr: SocketAddr,
    /// More servers of the same chat (repeatable): clients are spread round-robin over
    /// `--addr` and these, so messages cross between servers.
    #[arg(long)]
    pub also_addr: Vec<SocketAddr>,
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
    /// Log in the way the seed clients do: the bare name, with no newline (the server must
    /// tell when it has ended).
    #[arg(long)]
    pub bare_name: bool,
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
    /// PID of a server under test (repeatable; for an IRC peer, its daemon): its CPU time
    /// in the measured window is reported per delivery, and `ramp` also reports its memory
    /// per connection.
    #[arg(long, value_name = "PID")]
    pub server_pid: Vec<u32>,
    /// PID of a broker (repeatable): its CPU time in the measured window is reported per
    /// delivery.
    #[arg(long, value_name = "PID")]
    pub broker_pid: Vec<u32>,
}

impl Common {
    /// The server of the `i`th client: round-robin over `--addr` and `--also-addr`.
    pub fn spread(&self, i: usize) -> SocketAddr {
        match i % (1 + self.also_addr.len()) {
            0 => self.addr,
            k => self.also_addr[k - 1],
        }
    }

    /// Starts the CPU window of the tool and of the given servers and brokers.
    pub fn cpu_window(&self) -> Window {
        Window::start(&self.server_pid, &self.broker_pid)
    }

    /// Fails unless every given pid is a running process whose stat can be read, so that
    /// a mistyped pid stops the run before it starts rather than after.
    pub fn check_pids(&self) -> Result<(), ProcStatError> {
        for &pid in self.server_pid.iter().chain(&self.broker_pid) {
            procstat::read(pid)?;
        }
        Ok(())
    }

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
            let addr = c.spread(i);
            let (s, proto, t) = (sources.clone(), c.proto, c.login_timeout());
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        common: Common,
    }

    #[test]
    fn pid_flags_repeat_and_default_to_none() {
        let c = Cli::try_parse_from(["t"]).map(|c| c.common);
        assert!(matches!(&c, Ok(c) if c.server_pid.is_empty() && c.broker_pid.is_empty()));
        let args = [
            "t",
            "--server-pid",
            "10",
            "--server-pid",
            "11",
            "--broker-pid",
            "9",
        ];
        let c = Cli::try_parse_from(args).map(|c| c.common);
        assert!(matches!(&c, Ok(c) if c.server_pid == [10, 11] && c.broker_pid == [9]));
    }

    #[test]
    fn a_pid_that_is_not_running_is_refused_up_front() {
        let c = Cli::try_parse_from(["t", "--broker-pid", &u32::MAX.to_string()]);
        assert!(c.is_ok_and(|c| c.common.check_pids().is_err()));
        let me = std::process::id().to_string();
        let c = Cli::try_parse_from(["t", "--server-pid", &me]);
        assert!(c.is_ok_and(|c| c.common.check_pids().is_ok()));
    }
}
