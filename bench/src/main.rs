//! `chat-bench`: a load generator for the chat system (JSON protocol) and, for comparison,
//! IRC servers. Every run prints a table, optionally a JSON line (`--json`) and a PNG plot
//! (`--plot FILE`); every run is bounded in count and time and targets loopback only.

mod common;
mod cpu;
mod echo;
mod net;
mod plot;
mod procstat;
mod proto;
mod report;
mod scenario;

use clap::{Parser, Subcommand};

/// Load generator for the chat system and IRC peers.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
    /// Tokio worker threads of the load generator (it shares the machine with the server).
    #[arg(long, global = true, default_value_t = 1)]
    threads: usize,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Seed 000's bot test: bots doing a random mix of commands and messages.
    Stress(scenario::stress::Args),
    /// Breaking point: add clients in steps until a target or a failure bound.
    Ramp(scenario::ramp::Args),
    /// N users x M messages, one round trip at a time.
    Rtt(scenario::rtt::Args),
    /// Seed 003's large-message scenarios, every byte verified.
    Payload(scenario::payload::Args),
    /// L listeners, S senders: deliveries per second and end-to-end latency.
    Fanout(scenario::fanout::Args),
    /// `/history` queries answered per second and their latency, after filling the log.
    History(scenario::history::Args),
    /// A reference responder for `rtt`: echoes every frame back, doing the least work
    /// any server could; `rtt` against it measures the machine's ceiling.
    Echo(echo::Args),
}

impl Cmd {
    /// The options every scenario shares (the echo responder has none).
    fn common(&self) -> Option<&common::Common> {
        match self {
            Cmd::Stress(a) => Some(&a.common),
            Cmd::Ramp(a) => Some(&a.common),
            Cmd::Rtt(a) => Some(&a.common),
            Cmd::Payload(a) => Some(&a.common),
            Cmd::Fanout(a) => Some(&a.common),
            Cmd::History(a) => Some(&a.common),
            Cmd::Echo(_) => None,
        }
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(c) = cli.cmd.common() {
        c.check_pids()?;
    }
    // Thousands of sockets: the hard open-file limit, and the file table grown once now,
    // before the runtime's threads exist (see netkit::fdlimit).
    netkit::fdlimit::prepare();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.threads.max(1))
        .enable_all()
        .build()?;
    rt.block_on(async {
        let (report, common) = match cli.cmd {
            Cmd::Echo(a) => return echo::run(a).await,
            Cmd::Stress(a) => (scenario::stress::run(a.clone()).await?, a.common),
            Cmd::Ramp(a) => (scenario::ramp::run(a.clone()).await?, a.common),
            Cmd::Rtt(a) => (scenario::rtt::run(a.clone()).await?, a.common),
            Cmd::Payload(a) => (scenario::payload::run(a.clone()).await?, a.common),
            Cmd::Fanout(a) => (scenario::fanout::run(a.clone()).await?, a.common),
            Cmd::History(a) => (scenario::history::run(a.clone()).await?, a.common),
        };
        report.print(common.json);
        if let Some(path) = &common.plot
            && report.scenario != "ramp"
        {
            let series: Vec<(String, &hdrhistogram::Histogram<u64>)> = report
                .latencies
                .iter()
                .filter(|(_, h)| !h.is_empty())
                .map(|(n, h)| (n.clone(), h))
                .collect();
            plot::latency(path, &format!("{} latency", report.scenario), &series)?;
        }
        anyhow::Ok(())
    })
}
