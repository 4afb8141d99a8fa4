//! `fanout`: L listeners, S senders, a rate (or as fast as a bounded window allows) and a
//! message size. Measures deliveries per second and end-to-end latency from the send time
//! embedded in each payload; counts loss, reordering and disconnected listeners.
//!
//! CPU per delivery: a delivery is one message received by one client, a listener or a
//! sender (every message goes to the L listeners and to the S - 1 other senders; neither
//! protocol echoes it to its sender). `delivered` and `deliveries_per_s` count the
//! listeners' only, as before; the senders' are counted for the CPU figures, since the
//! server does that work too.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::common::{Common, login_all, micros_since};
use crate::net::Sources;
use crate::proto::{self, Client, MARK};
use crate::report::{Report, histogram};

/// Options of `fanout`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,
    /// Listening clients.
    #[arg(long, default_value_t = 100)]
    pub listeners: usize,
    /// Sending clients.
    #[arg(long, default_value_t = 10)]
    pub senders: usize,
    /// Messages per second per sender; 0 = as fast as the window allows.
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Payload size in bytes.
    #[arg(long, default_value_t = 100)]
    pub size: usize,
    /// Seconds of sending.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Messages a sender may have in flight (not yet seen by every listener).
    #[arg(long, default_value_t = 2000)]
    pub window: u64,
}

struct Shared {
    start: Instant,
    /// progress[t * senders + s]: highest seq from sender s seen by listener t.
    progress: Vec<AtomicU64>,
    advanced: Vec<Notify>,
    stop: AtomicBool,
    stopped: CancellationToken,
    senders: usize,
    listeners: usize,
    /// Benchmark messages the senders received (from the other senders).
    sender_deliveries: AtomicU64,
}

impl Shared {
    fn min_progress(&self, s: usize) -> u64 {
        (0..self.listeners)
            .map(|t| self.progress[t * self.senders + s].load(Ordering::Acquire))
            .min()
            .unwrap_or(0)
    }
}

struct ListenerResult {
    hist: hdrhistogram::Histogram<u64>,
    delivered: u64,
    reordered: u64,
    disconnected: bool,
    last_us: u64,
}

/// What one delivery is, for the CPU per delivery.
const DELIVERY: &str = "one message received by one client (listener or sender)";

/// Runs the scenario.
pub async fn run(a: Args) -> anyhow::Result<Report> {
    let c = &a.common;
    let sources = Arc::new(Sources::new(c.sources).with_bare_name(c.bare_name));
    let names = (0..a.listeners)
        .map(|i| format!("{}l{i}", c.prefix))
        .collect();
    let listeners = login_all(c, &sources, names, c.login_parallel)
        .await
        .context("logging in listeners")?;
    let names = (0..a.senders)
        .map(|i| format!("{}s{i}", c.prefix))
        .collect();
    let senders = login_all(c, &sources, names, c.login_parallel)
        .await
        .context("logging in senders")?;
    // Let the join notices of the logins drain before measuring.
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Every listener bounds the window: a sender never runs further ahead of the slowest
    // listener than the window, so a listener that keeps reading is never a slow
    // consumer the server should cut off, however the generator schedules its tasks.
    let watched = a.listeners.max(1);
    let shared = Arc::new(Shared {
        start: Instant::now(),
        progress: (0..watched * a.senders)
            .map(|_| AtomicU64::new(0))
            .collect(),
        advanced: (0..a.senders).map(|_| Notify::new()).collect(),
        stop: AtomicBool::new(false),
        stopped: CancellationToken::new(),
        senders: a.senders,
        listeners: watched,
        sender_deliveries: AtomicU64::new(0),
    });
    let cpu = c.cpu_window();

    let mut listener_tasks = Vec::new();
    for (i, client) in listeners.into_iter().enumerate() {
        let shared = shared.clone();
        listener_tasks.push(tokio::spawn(listen(client, shared, i, a.senders)));
    }
    let mut sender_tasks = Vec::new();
    for (s, client) in senders.into_iter().enumerate() {
        let (shared, a) = (shared.clone(), a.clone());
        sender_tasks.push(tokio::spawn(send(client, shared, s, a)));
    }
    let pb = crate::common::bar((a.duration * 10.0) as u64, "sending");
    let send_end = Instant::now() + Duration::from_secs_f64(a.duration);
    while Instant::now() < send_end {
        tokio::time::sleep(Duration::from_millis(100)).await;
        pb.inc(1);
    }
    pb.finish_and_clear();
    let mut sent_total = 0u64;
    let mut sent = vec![0u64; a.senders];
    // The senders stay connected until the end, so their leaving adds no traffic.
    let mut keep = Vec::new();
    for (s, t) in sender_tasks.into_iter().enumerate() {
        let (n, writer) = t.await??;
        sent[s] = n;
        sent_total += n;
        keep.push(writer);
    }
    // Wait for the stragglers: until every listener has everything, then a grace period.
    let drain_deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < drain_deadline
        && (0..a.senders).any(|s| shared.min_progress(s) < sent[s])
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    shared.stop.store(true, Ordering::Release);
    shared.stopped.cancel();
    let cpu = cpu.finish();
    let sender_deliveries = shared.sender_deliveries.load(Ordering::Acquire);
    drop(keep);

    let mut hist = histogram();
    let (mut delivered, mut reordered, mut disconnected, mut last_us) = (0u64, 0u64, 0u64, 0u64);
    for t in listener_tasks {
        let r = t.await?;
        hist.add(&r.hist).ok();
        delivered += r.delivered;
        reordered += r.reordered;
        disconnected += u64::from(r.disconnected);
        last_us = last_us.max(r.last_us);
    }
    let expected = sent_total * a.listeners as u64;
    let elapsed = Duration::from_micros(last_us).as_secs_f64().max(1e-9);
    let mut report = Report::new(
        "fanout",
        json!({"proto": format!("{:?}", c.proto), "listeners": a.listeners, "senders": a.senders, "rate": a.rate, "size": a.size, "duration_s": a.duration, "window": a.window}),
    );
    report.set("sent", sent_total);
    report.set("delivered", delivered);
    report.set("lost", expected.saturating_sub(delivered));
    report.set("reordered", reordered);
    report.set("disconnected_listeners", disconnected);
    report.set("deliveries_per_s", (delivered as f64 / elapsed).round());
    report.set("deliveries_to_senders", sender_deliveries);
    report.cpu = Some(cpu.per(delivered + sender_deliveries, DELIVERY));
    report.latencies.push(("end-to-end".into(), hist));
    Ok(report)
}

async fn listen(
    mut client: Client,
    shared: Arc<Shared>,
    t: usize,
    senders: usize,
) -> ListenerResult {
    let mut r = ListenerResult {
        hist: histogram(),
        delivered: 0,
        reordered: 0,
        disconnected: false,
        last_us: 0,
    };
    let mut last_seq = vec![0u64; senders];
    let mut pongs: Vec<Vec<u8>> = Vec::new();
    loop {
        // No timer per read: the stop notification wakes an idle listener.
        let batch = tokio::select! {
            b = client.reader.next_batch(|line| {
                if let Some(seen) = proto::find_payload(line) {
                    let now = micros_since(shared.start);
                    let _ = r.hist.record(now.saturating_sub(seen.micros).max(1));
                    r.delivered += 1;
                    r.last_us = now;
                    let s = seen.sender as usize;
                    if s < senders {
                        if seen.seq < last_seq[s] {
                            r.reordered += 1;
                        }
                        last_seq[s] = last_seq[s].max(seen.seq);
                    }
                } else if let Some(p) = Client::pong_for(line) {
                    pongs.push(p);
                }
            }) => b,
            _ = shared.stopped.cancelled() => return r,
        };
        match batch {
            Ok(0) | Err(_) => {
                if !shared.stop.load(Ordering::Acquire) {
                    r.disconnected = true;
                }
                return r;
            }
            Ok(_) => {}
        }
        for p in pongs.drain(..) {
            let _ = client.writer.write_all(&p).await;
        }
        for (s, seq) in last_seq.iter().enumerate() {
            let slot = &shared.progress[t * senders + s];
            if slot.load(Ordering::Relaxed) < *seq {
                slot.store(*seq, Ordering::Release);
                shared.advanced[s].notify_one();
            }
        }
        if shared.stop.load(Ordering::Acquire) {
            return r;
        }
    }
}

/// Sends until the duration is over; returns how many messages were sent, and the socket.
async fn send(
    client: Client,
    shared: Arc<Shared>,
    s: usize,
    a: Args,
) -> anyhow::Result<(u64, OwnedWriteHalf)> {
    let Client {
        mut reader,
        mut writer,
        proto,
        ..
    } = client;
    // Senders receive the others' messages too: drain them, counting the deliveries.
    let counter = shared.clone();
    tokio::spawn(async move {
        let mark = memchr::memmem::Finder::new(MARK);
        loop {
            let mut got = 0;
            let n = reader
                .next_batch(|line| got += u64::from(mark.find(line).is_some()))
                .await
                .unwrap_or(0);
            counter.sender_deliveries.fetch_add(got, Ordering::Release);
            if n == 0 {
                return;
            }
        }
    });
    let end = Instant::now() + Duration::from_secs_f64(a.duration);
    let mut seq = 0u64;
    let mut buf = Vec::with_capacity(64 * 1024);
    let interval = (a.rate > 0.0).then(|| Duration::from_secs_f64(1.0 / a.rate));
    let mut next_at = Instant::now();
    let sender = u32::try_from(s).unwrap_or(u32::MAX);
    while Instant::now() < end {
        let burst = match interval {
            Some(iv) => {
                tokio::time::sleep_until(next_at.into()).await;
                next_at += iv;
                1
            }
            None => {
                let room = a.window.saturating_sub(seq - shared.min_progress(s));
                if room == 0 {
                    let _ = tokio::time::timeout(
                        Duration::from_millis(20),
                        shared.advanced[s].notified(),
                    )
                    .await;
                    continue;
                }
                room.min(64)
            }
        };
        buf.clear();
        for _ in 0..burst {
            seq += 1;
            let p = proto::payload(sender, seq, micros_since(shared.start), a.size);
            buf.extend_from_slice(Client::public(proto, &p).as_bytes());
        }
        writer.write_all(&buf).await?;
    }
    Ok((seq, writer))
}
