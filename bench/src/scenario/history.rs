//! `history`: how fast the broker answers `/history` (PROTOCOL.md §10.2). First, with
//! `--fill N`, one client puts N public messages into the log (as fast as the server takes
//! them, waiting at the end until the last is in the history); then C clients each ask
//! the query Q times, one at a time, and every answer is timed from the request to its
//! end frame.
//!
//! CPU per delivery: one delivery is one answered query.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::common::{Common, login_all, micros_since};
use crate::net::Sources;
use crate::proto::Client;
use crate::report::{Report, histogram};

/// Options of `history`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,
    /// Public messages to put into the log first (0: use what it holds).
    #[arg(long, default_value_t = 0)]
    pub fill: u64,
    /// Payload size of the filling messages, in bytes.
    #[arg(long, default_value_t = 64)]
    pub size: usize,
    /// Clients asking at once.
    #[arg(long, default_value_t = 1)]
    pub clients: usize,
    /// Queries per client.
    #[arg(long, default_value_t = 200)]
    pub queries: u64,
    /// The query (`msg` of the `/history` frame).
    #[arg(long, default_value = "latest 500")]
    pub query: String,
}

const DELIVERY: &str = "one history query answered (up to its end frame)";

fn history_frame(q: &str) -> String {
    json!({"from": {"name": "", "ip": ""}, "to": "/history", "msg": q}).to_string()
}

/// What one answer held.
struct Answer {
    /// The end frame.
    end: Value,
    /// Events before it.
    events: u64,
    /// Whether an event contained the needle asked for.
    found: bool,
}

/// Sends `q` and reads up to its end frame, looking for `needle` in the events.
async fn ask(client: &mut Client, q: &str, needle: &[u8]) -> anyhow::Result<Answer> {
    client.writer.write_all(history_frame(q).as_bytes()).await?;
    let mut end = None;
    let (mut events, mut found) = (0, false);
    while end.is_none() {
        let n = client
            .reader
            .next_batch(|line| {
                if memchr::memmem::find(line, b"\"history\":true").is_some() {
                    events += 1;
                    found |= !needle.is_empty() && memchr::memmem::find(line, needle).is_some();
                } else if memchr::memmem::find(line, b"\"type\":\"history\"").is_some() {
                    end = serde_json::from_slice::<Value>(line).ok();
                }
            })
            .await?;
        if n == 0 {
            bail!("{}: connection closed", client.name);
        }
    }
    Ok(Answer {
        end: end.unwrap_or(Value::Null),
        events,
        found,
    })
}

/// Fills the log with `n` public messages from `client`, then waits until the last one
/// is answered by the history (the log has it).
async fn fill(client: &mut Client, n: u64, size: usize) -> anyhow::Result<()> {
    let pad = "x".repeat(size.saturating_sub(16));
    let mut batch = String::new();
    for i in 0..n {
        let frame =
            json!({"from": {"name": "", "ip": ""}, "to": "*", "msg": format!("fill {i} {pad}")});
        batch.push_str(&frame.to_string());
        if batch.len() > 64 * 1024 || i + 1 == n {
            client.writer.write_all(batch.as_bytes()).await?;
            batch.clear();
            // Read what came back meanwhile (nothing is echoed for `*`, but keep the
            // socket drained of notices).
            let _ = tokio::time::timeout(Duration::ZERO, client.reader.next_batch(|_| {})).await;
        }
    }
    // The log has everything once the last one is in the history: ask until it is.
    let last = format!("fill {} ", n - 1);
    let deadline = Instant::now() + Duration::from_secs(600);
    while !ask(client, "latest 1", last.as_bytes()).await?.found {
        if Instant::now() > deadline {
            bail!("the log never got the last filling message");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Runs the scenario.
pub async fn run(a: Args) -> anyhow::Result<Report> {
    let c = &a.common;
    let sources = Arc::new(Sources::new(c.sources).with_bare_name(c.bare_name));
    let fill_start = Instant::now();
    if a.fill > 0 {
        let filler = vec![format!("{}filler", c.prefix)];
        let mut filler = login_all(c, &sources, filler, 1)
            .await
            .context("logging the filler in")?;
        let mut filler = filler.pop().context("the filler")?;
        fill(&mut filler, a.fill, a.size)
            .await
            .context("filling the log")?;
    }
    let fill_secs = fill_start.elapsed().as_secs_f64();
    // The askers come after the filling: they would not have read a million messages.
    let names = (0..a.clients)
        .map(|i| format!("{}h{i}", c.prefix))
        .collect();
    let clients = login_all(c, &sources, names, c.login_parallel)
        .await
        .context("logging in")?;
    let start = Instant::now();
    let cpu = c.cpu_window();
    let mut tasks = Vec::new();
    for mut client in clients {
        let (q, n) = (a.query.clone(), a.queries);
        tasks.push(tokio::spawn(async move {
            let mut hist = histogram();
            let mut events = 0u64;
            let mut last_end = Value::Null;
            for _ in 0..n {
                let t0 = micros_since(start);
                let answer = ask(&mut client, &q, b"").await?;
                let _ = hist.record(micros_since(start).saturating_sub(t0).max(1));
                events += answer.events;
                last_end = answer.end;
            }
            anyhow::Ok((hist, events, last_end))
        }));
    }
    let mut hist = histogram();
    let mut events = 0;
    let mut end = Value::Null;
    for t in tasks {
        let (h, e, last) = t.await??;
        hist.add(&h).ok();
        events += e;
        end = last;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = cpu.finish();
    let mut report = Report::new(
        "history",
        json!({"fill": a.fill, "size": a.size, "clients": a.clients, "queries": a.queries, "query": a.query}),
    );
    report.set("fill_s", (fill_secs * 100.0).round() / 100.0);
    report.set("queries_answered", hist.len());
    report.set("queries_per_s", (hist.len() as f64 / elapsed).round());
    report.set("events_per_answer", events / hist.len().max(1));
    report.set("last_end_frame_count", end["count"].as_u64().unwrap_or(0));
    report.cpu = Some(cpu.per(hist.len(), DELIVERY));
    report.latencies.push(("query".into(), hist));
    Ok(report)
}
