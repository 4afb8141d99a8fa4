//! `stress`: seed 000's bot test done properly. B bots for D seconds, each picking at
//! random: `/time`, `/list`, a private message, a public `*` message or a `/shout`.
//! Reports errors and the latency of every reply type (chat protocol only).
//!
//! CPU per delivery: a delivery is one frame received by one client, bot or flooder:
//! a private or public message, a `/shout` and its confirmation, a `/time` or `/list`
//! reply, an error frame. Each is one frame the server wrote for the workload.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use memchr::memmem;
use rand::{Rng, SeedableRng};
use serde_json::json;
use tokio::io::AsyncWriteExt;

use crate::common::{Common, login_all, micros_since};
use crate::net::Sources;
use crate::proto::{self, Client};
use crate::report::{Report, histogram};

/// Options of `stress`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,
    /// Bots.
    #[arg(long, default_value_t = 50)]
    pub bots: usize,
    /// Seconds.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Shortest pause between a bot's actions, in milliseconds.
    #[arg(long, default_value_t = 50)]
    pub think_min_ms: u64,
    /// Longest pause between a bot's actions, in milliseconds. The defaults (50–250 ms,
    /// about 6 actions a second per bot) stay inside the server's default rate limit of 10
    /// messages a second, as a chatting bot should; `--think-min-ms 0 --think-ms 50` is the
    /// flood of earlier runs (needs `server --rate-limit off`).
    #[arg(long, default_value_t = 250)]
    pub think_ms: u64,
    /// Extra clients that flood public messages as fast as they can for the whole run
    /// (reading what comes back, and logging in again under a new name when the server
    /// disconnects them), to see what a flood costs everyone else.
    #[arg(long, default_value_t = 0)]
    pub flooders: usize,
}

const KINDS: [&str; 5] = ["/time", "/list", "private", "public", "/shout"];

/// What one delivery is, for the CPU per delivery.
const DELIVERY: &str = "one frame received by one client (message, shout, reply)";

/// Runs the scenario.
pub async fn run(a: Args) -> anyhow::Result<Report> {
    let c = &a.common;
    if c.proto != proto::Proto::Chat {
        bail!("stress speaks the chat protocol only");
    }
    let sources = Arc::new(Sources::new(c.sources).with_bare_name(c.bare_name));
    let names: Vec<String> = (0..a.bots).map(|i| format!("{}t{i}", c.prefix)).collect();
    let clients = login_all(c, &sources, names.clone(), 16)
        .await
        .context("logging in")?;
    let start = Instant::now();
    let cpu = c.cpu_window();
    let names = Arc::new(names);
    let all_done = Arc::new(tokio::sync::Barrier::new(a.bots));
    let mut tasks = Vec::new();
    for (i, client) in clients.into_iter().enumerate() {
        tasks.push(tokio::spawn(bot(
            client,
            i,
            a.clone(),
            names.clone(),
            start,
            all_done.clone(),
        )));
    }
    let flood_end = start + Duration::from_secs_f64(a.duration);
    let floods: Vec<_> = (0..a.flooders)
        .map(|f| {
            let (c, sources) = (c.clone(), sources.clone());
            tokio::spawn(async move { flood(&c, &sources, f, flood_end).await })
        })
        .collect();
    let mut hists: Vec<_> = KINDS.iter().map(|_| histogram()).collect();
    let (mut errors, mut actions, mut frames) = (0u64, 0u64, 0u64);
    for t in tasks {
        let r = t.await??;
        for (k, hk) in r.hists.iter().enumerate() {
            hists[k].add(hk).ok();
        }
        errors += r.errors;
        actions += r.actions;
        frames += r.frames;
    }
    let mut flooded = FloodStats::default();
    for f in floods {
        let s = f.await??;
        flooded.sent += s.sent;
        flooded.refused += s.refused;
        flooded.disconnected += s.disconnected;
        flooded.frames += s.frames;
    }
    let cpu = cpu.finish();
    let mut report = Report::new(
        "stress",
        json!({"bots": a.bots, "duration_s": a.duration, "think_min_ms": a.think_min_ms, "think_ms": a.think_ms}),
    );
    report.set("actions", actions);
    report.set("error_frames", errors);
    report.set("frames_received", frames + flooded.frames);
    if a.flooders > 0 {
        report.set("flood_sent", flooded.sent);
        report.set("flood_refused", flooded.refused);
        report.set("flood_disconnects", flooded.disconnected);
    }
    report.cpu = Some(cpu.per(frames + flooded.frames, DELIVERY));
    for (k, h) in KINDS.iter().zip(hists) {
        report.latencies.push(((*k).to_string(), h));
    }
    Ok(report)
}

/// What one bot saw and did.
struct BotResult {
    /// Latency per kind of action.
    hists: Vec<hdrhistogram::Histogram<u64>>,
    /// Error frames and timeouts.
    errors: u64,
    /// Actions taken.
    actions: u64,
    /// Frames received.
    frames: u64,
}

/// A reply the bot waits for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reply {
    System,
    Users,
}

async fn bot(
    client: Client,
    i: usize,
    a: Args,
    names: Arc<Vec<String>>,
    start: Instant,
    all_done: Arc<tokio::sync::Barrier>,
) -> anyhow::Result<BotResult> {
    let Client {
        mut reader,
        mut writer,
        ..
    } = client;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    // The reader times every message where it arrives and passes replies to the bot.
    let read = tokio::spawn(async move {
        let mut hists: Vec<_> = KINDS.iter().map(|_| histogram()).collect();
        let (mut errors, mut frames) = (0u64, 0u64);
        loop {
            let n = reader
                .next_batch(|line| {
                    frames += 1;
                    if memmem::find(line, b"\"type\":\"error\"").is_some() {
                        errors += 1;
                    }
                    if let Some(seen) = proto::find_payload(line) {
                        let k = if memmem::find(line, b"\"type\":\"private\"").is_some() {
                            2
                        } else {
                            3
                        };
                        let _ =
                            hists[k].record(micros_since(start).saturating_sub(seen.micros).max(1));
                    } else if memmem::find(line, b"\"type\":\"system\"").is_some() {
                        let _ = tx.send(Reply::System);
                    } else if memmem::find(line, b"\"type\":\"users\"").is_some() {
                        let _ = tx.send(Reply::Users);
                    }
                })
                .await
                .unwrap_or(0);
            if n == 0 {
                return (hists, errors, frames);
            }
        }
    });
    let mut rng = rand::rngs::StdRng::seed_from_u64(1000 + i as u64);
    let mut replies: Vec<_> = KINDS.iter().map(|_| histogram()).collect();
    let (mut timeouts, mut actions, mut seq) = (0u64, 0u64, 0u64);
    let end = start + Duration::from_secs_f64(a.duration);
    let me = u32::try_from(i).unwrap_or(u32::MAX);
    while Instant::now() < end {
        let kind = rng.random_range(0..KINDS.len());
        seq += 1;
        let sent = micros_since(start);
        let p = proto::payload(me, seq, sent, 64);
        let (frame, wants) = match KINDS[kind] {
            "private" => (
                Client::private(
                    proto::Proto::Chat,
                    &names[rng.random_range(0..names.len())],
                    &p,
                ),
                None,
            ),
            "public" => (Client::public(proto::Proto::Chat, &p), None),
            "/shout" => (
                format!("{{\"to\":\"/shout\",\"msg\":\"{p}\"}}"),
                Some(Reply::System),
            ),
            "/list" => (
                "{\"to\":\"/list\",\"msg\":\"\"}".to_string(),
                Some(Reply::Users),
            ),
            cmd => (
                format!("{{\"to\":\"{cmd}\",\"msg\":\"\"}}"),
                Some(Reply::System),
            ),
        };
        writer.write_all(frame.as_bytes()).await?;
        actions += 1;
        if let Some(want) = wants {
            let wait = async {
                while let Some(r) = rx.recv().await {
                    if r == want {
                        return true;
                    }
                }
                false
            };
            match tokio::time::timeout(Duration::from_secs(10), wait).await {
                Ok(true) => {
                    let _ = replies[kind].record(micros_since(start).saturating_sub(sent).max(1));
                }
                Ok(false) => bail!("bot {i}: connection closed"),
                Err(_) => timeouts += 1,
            }
        }
        let (lo, hi) = (a.think_min_ms.min(a.think_ms), a.think_ms);
        if hi > 0 {
            tokio::time::sleep(Duration::from_millis(rng.random_range(lo..=hi))).await;
        }
    }
    // Nobody leaves before everyone is done (a private message to a bot that left would
    // be an error); then let the last deliveries arrive, close, and collect.
    all_done.wait().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = writer.shutdown().await;
    let (mut hists, errors, frames) = tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .context("reader did not stop")??;
    for (k, h) in replies.iter().enumerate() {
        hists[k].add(h).ok();
    }
    Ok(BotResult {
        hists,
        errors: errors + timeouts,
        actions,
        frames,
    })
}

/// What the flooders did.
#[derive(Default)]
struct FloodStats {
    sent: u64,
    refused: u64,
    disconnected: u64,
    /// Frames the flooders received (others' messages, refusals).
    frames: u64,
}

/// Floods public messages until `end`, 100 frames per write, draining replies; when the
/// server disconnects it, logs in again under the next name.
async fn flood(
    c: &Common,
    sources: &Arc<Sources>,
    f: usize,
    end: Instant,
) -> anyhow::Result<FloodStats> {
    let mut stats = FloodStats::default();
    let batch: String = (0..100)
        .map(|_| Client::public(proto::Proto::Chat, "flood flood flood flood flood"))
        .collect();
    for life in 0.. {
        if Instant::now() >= end {
            break;
        }
        let name = format!("{}f{f}x{life}", c.prefix);
        let client = sources
            .login(c.addr, c.proto, &name, c.login_timeout(), true)
            .await?;
        let Client {
            mut reader,
            mut writer,
            ..
        } = client;
        // (refused, frames received), counted by the drain.
        let counts = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
        let counted = counts.clone();
        let drain = tokio::spawn(async move {
            while reader
                .next_batch(|line| {
                    if memmem::find(line, b"rate limit exceeded").is_some() {
                        counted[0].fetch_add(1, Ordering::Relaxed);
                    }
                    counted[1].fetch_add(1, Ordering::Relaxed);
                })
                .await
                .unwrap_or(0)
                > 0
            {}
        });
        let mut cut_off = false;
        while Instant::now() < end {
            if writer.write_all(batch.as_bytes()).await.is_err() || drain.is_finished() {
                cut_off = true;
                break;
            }
            stats.sent += 100;
            tokio::task::yield_now().await;
        }
        drop(writer);
        let _ = tokio::time::timeout(Duration::from_secs(2), drain).await;
        stats.refused += counts[0].load(Ordering::Relaxed);
        stats.frames += counts[1].load(Ordering::Relaxed);
        stats.disconnected += u64::from(cut_off);
    }
    Ok(stats)
}
