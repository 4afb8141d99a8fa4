//! `rtt`: N users each send M messages to themselves, one at a time, through the whole
//! routing path (server, broker, server back), and time each round trip (seed 004's
//! benchmark, done with HDR histograms).
//!
//! CPU per delivery: one round trip is one delivery. The message is routed once
//! (client, server, broker, server, client) and received by one client, the sender
//! itself; a private message is neither echoed nor confirmed (PROTOCOL.md 4.1), and an IRC
//! PRIVMSG to oneself is also received once.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use serde_json::json;
use tokio::io::AsyncWriteExt;

use crate::common::{Common, login_all, micros_since};
use crate::net::Sources;
use crate::proto::{self, Client};
use crate::report::{Report, histogram};

/// Options of `rtt`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,
    /// Users.
    #[arg(long, default_value_t = 10)]
    pub users: usize,
    /// Messages per user.
    #[arg(long, default_value_t = 5)]
    pub messages: u64,
    /// Payload size in bytes.
    #[arg(long, default_value_t = 64)]
    pub size: usize,
}

/// What one delivery is, for the CPU per delivery.
const DELIVERY: &str = "one round trip (a message received by its sender)";

/// Runs the scenario.
pub async fn run(a: Args) -> anyhow::Result<Report> {
    let c = &a.common;
    let sources = Arc::new(Sources::new(c.sources).with_bare_name(c.bare_name));
    let names = (0..a.users).map(|i| format!("{}r{i}", c.prefix)).collect();
    let clients = login_all(c, &sources, names, c.login_parallel)
        .await
        .context("logging in")?;
    // Past the server's pause after each welcome, and the join notices.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let start = Instant::now();
    let cpu = c.cpu_window();
    let mut tasks = Vec::new();
    for (i, client) in clients.into_iter().enumerate() {
        let a = a.clone();
        tasks.push(tokio::spawn(round_trips(client, i, a, start)));
    }
    let mut hist = histogram();
    for t in tasks {
        hist.add(&t.await??).ok();
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = cpu.finish();
    let mut report = Report::new(
        "rtt",
        json!({"proto": format!("{:?}", c.proto), "users": a.users, "messages": a.messages, "size": a.size}),
    );
    report.set("round_trips", hist.len());
    report.set("round_trips_per_s", (hist.len() as f64 / elapsed).round());
    report.set("avg_ms", (hist.mean() / 1000.0 * 1000.0).round() / 1000.0);
    report.cpu = Some(cpu.per(hist.len(), DELIVERY));
    report.latencies.push(("round trip".into(), hist));
    Ok(report)
}

async fn round_trips(
    mut client: Client,
    i: usize,
    a: Args,
    start: Instant,
) -> anyhow::Result<hdrhistogram::Histogram<u64>> {
    let mut hist = histogram();
    let me = u32::try_from(i).unwrap_or(u32::MAX);
    for seq in 1..=a.messages {
        let sent_at = micros_since(start);
        let p = proto::payload(me, seq, sent_at, a.size);
        let name = client.name.clone();
        client
            .writer
            .write_all(Client::private(client.proto, &name, &p).as_bytes())
            .await?;
        let mut got = false;
        let mut pongs = Vec::new();
        while !got {
            let n = client
                .reader
                .next_batch(|line| {
                    if let Some(seen) = proto::find_payload(line) {
                        if seen.sender == me && seen.seq == seq {
                            got = true;
                        }
                    } else if let Some(p) = Client::pong_for(line) {
                        pongs.push(p);
                    }
                })
                .await?;
            if n == 0 {
                bail!("{}: connection closed", client.name);
            }
            for p in pongs.drain(..) {
                client.writer.write_all(&p).await?;
            }
        }
        let _ = hist.record(micros_since(start).saturating_sub(sent_at).max(1));
    }
    Ok(hist)
}
