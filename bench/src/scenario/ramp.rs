//! `ramp`: the breaking-point test. Adds B logged-in clients every I ms until a target, a
//! failure rate or a login-latency bound is reached. Reports the peak of stable
//! connections, login latency percentiles, and (with `--server-pid`) the server's RSS per
//! connection. The clients stay connected and keep reading (answering IRC pings).
//!
//! CPU "per delivery": here the unit of work is a login (connect, name, welcome, join),
//! so the CPU of the whole ramp, holding the peak included, is divided by the logins
//! that succeeded.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;

use crate::common::Common;
use crate::net::Sources;
use crate::proto::Client;
use crate::report::{Report, histogram, rss_kib};

/// Options of `ramp`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,
    /// Clients added per step.
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// Milliseconds between steps.
    #[arg(long, default_value_t = 100)]
    pub interval_ms: u64,
    /// Stop at this many clients.
    #[arg(long, default_value_t = 19_000)]
    pub target: usize,
    /// Stop when more than this fraction of a step's logins fail.
    #[arg(long, default_value_t = 0.05)]
    pub max_failures: f64,
    /// Stop when a step's login p99 exceeds this many milliseconds.
    #[arg(long, default_value_t = 1000.0)]
    pub max_p99_ms: f64,
    /// Run the ramp in this many processes (each with its own 20,000-file limit), each doing
    /// its share of the batch and the target.
    #[arg(long, default_value_t = 1)]
    pub shards: usize,
    /// Seconds to hold the peak before measuring memory and disconnecting.
    #[arg(long, default_value_t = 2.0)]
    pub hold: f64,
    /// IRC: log in without joining the benchmark channel (registration only). Every JOIN is
    /// announced to every member, so a one-channel ramp measures that quadratic broadcast
    /// rather than idle connections (the chat system summarises presence in large rooms).
    #[arg(long)]
    pub no_join: bool,
}

fn total_rss(pids: &[u32]) -> Option<u64> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().map(|p| rss_kib(*p)).sum()
}

/// What one delivery is, for the CPU per delivery.
const DELIVERY: &str = "one login that succeeded";

/// Runs the scenario.
pub async fn run(a: Args) -> anyhow::Result<Report> {
    if a.shards > 1 {
        return run_sharded(a).await;
    }
    let c = &a.common;
    let nofile = netkit::fdlimit::raise_nofile();
    let sources = Arc::new(Sources::new(c.sources).with_bare_name(c.bare_name));
    let targets: Vec<std::net::SocketAddr> = std::iter::once(c.addr)
        .chain(c.also_addr.iter().copied())
        .collect();
    let rss_before = total_rss(&c.server_pid);
    let start = Instant::now();
    let cpu = c.cpu_window();
    let (stop_tx, stop_rx) = watch::channel(false);
    let alive = Arc::new(AtomicU64::new(0));
    let dropped = Arc::new(AtomicU64::new(0));
    let mut all = histogram();
    let mut curve = Vec::new();
    let (mut ok, mut failed) = (0usize, 0u64);
    let mut stop_reason = "target reached".to_string();
    let pb = crate::common::bar(a.target as u64, "clients");
    let mut step = 0usize;
    while ok < a.target {
        let step_start = Instant::now();
        let n = a.batch.min(a.target - ok);
        let mut logins = Vec::with_capacity(n);
        for k in 0..n {
            let i = step * a.batch + k;
            let name = format!("{}c{i}", c.prefix);
            let (s, addr, proto, t, join) = (
                sources.clone(),
                targets[i % targets.len()],
                c.proto,
                c.login_timeout(),
                !a.no_join,
            );
            logins.push(tokio::spawn(async move {
                let t0 = Instant::now();
                let r = s.login(addr, proto, &name, t, join).await;
                (r, t0.elapsed())
            }));
        }
        let mut step_hist = histogram();
        let mut step_failed = 0u64;
        for l in logins {
            match l.await {
                Ok((Ok(client), took)) => {
                    let _ = step_hist
                        .record(u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1));
                    alive.fetch_add(1, Ordering::Relaxed);
                    tokio::spawn(idle(
                        client,
                        stop_rx.clone(),
                        alive.clone(),
                        dropped.clone(),
                    ));
                    ok += 1;
                }
                _ => step_failed += 1,
            }
        }
        failed += step_failed;
        all.add(&step_hist).ok();
        let p99 = step_hist.value_at_quantile(0.99) as f64 / 1000.0;
        curve.push((
            start.elapsed().as_secs_f64(),
            alive.load(Ordering::Relaxed),
            p99,
        ));
        pb.set_position(ok as u64);
        step += 1;
        if step_failed as f64 > a.max_failures * n as f64 {
            stop_reason = format!("{step_failed} of {n} logins failed in one step");
            break;
        }
        if p99 > a.max_p99_ms {
            stop_reason = format!("login p99 {p99:.1} ms over the bound");
            break;
        }
        let next = step_start + Duration::from_millis(a.interval_ms);
        tokio::time::sleep_until(next.into()).await;
    }
    pb.finish_and_clear();
    // For a parent running shards: this shard is at its peak.
    println!("ramp-peak {}", alive.load(Ordering::Relaxed));
    tokio::time::sleep(Duration::from_secs_f64(a.hold)).await;
    let stable = alive.load(Ordering::Relaxed);
    let rss_after = total_rss(&c.server_pid);
    let cpu = cpu.finish();
    let _ = stop_tx.send(true);

    let mut report = Report::new(
        "ramp",
        json!({"proto": format!("{:?}", c.proto), "batch": a.batch, "interval_ms": a.interval_ms, "target": a.target, "sources": c.sources, "servers": targets.len(), "no_join": a.no_join}),
    );
    report.set("peak_stable_connections", stable);
    report.set("logins_ok", ok as u64);
    report.set("logins_failed", failed);
    report.set("dropped_after_login", dropped.load(Ordering::Relaxed));
    report.set("stopped_because", stop_reason);
    report.set(
        "seconds",
        (start.elapsed().as_secs_f64() * 10.0).round() / 10.0,
    );
    report.set("tool_open_file_limit", nofile);
    if let (Some(before), Some(after)) = (rss_before, rss_after) {
        report.set("server_rss_kib", after);
        if stable > 0 {
            report.set(
                "server_rss_kib_per_conn",
                ((after.saturating_sub(before)) as f64 / stable as f64 * 100.0).round() / 100.0,
            );
        }
    }
    report.cpu = Some(cpu.per(ok as u64, DELIVERY));
    report.latencies.push(("login".into(), all));
    if let Some(path) = &c.plot {
        crate::plot::ramp(path, "ramp: logged-in clients and login p99", &curve)?;
    }
    Ok(report)
}

/// Runs `shards` copies of this ramp as child processes, each with 1/shards of the batch
/// and the target and its own name prefix, measures the servers' memory once every shard
/// is at its peak, and adds the shards' figures up.
async fn run_sharded(a: Args) -> anyhow::Result<Report> {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let c = &a.common;
    let rss_before = total_rss(&c.server_pid);
    // The shards' own CPU is added from their reports; this window gives the wall time,
    // the servers' and brokers' CPU, and the little this parent uses.
    let window = c.cpu_window();
    let exe = std::env::current_exe()?;
    let mut children = Vec::new();
    for i in 0..a.shards {
        let mut cmd = tokio::process::Command::new(&exe);
        cmd.arg("ramp")
            .args(["--addr", &c.addr.to_string()])
            .args([
                "--proto",
                if c.proto == crate::proto::Proto::Chat {
                    "chat"
                } else {
                    "irc"
                },
            ])
            .args(["--sources", &c.sources.to_string()])
            .args(["--prefix", &format!("{}{i}x", c.prefix)])
            .args(["--login-timeout", &c.login_timeout.to_string()])
            .args(["--batch", &a.batch.div_ceil(a.shards).to_string()])
            .args(["--interval-ms", &a.interval_ms.to_string()])
            .args(["--target", &a.target.div_ceil(a.shards).to_string()])
            .args(["--max-failures", &a.max_failures.to_string()])
            .args(["--max-p99-ms", &a.max_p99_ms.to_string()])
            .args(["--hold", &(a.hold + 3.0).to_string()])
            .args(a.no_join.then_some("--no-join"))
            .arg("--json")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true);
        for extra in &c.also_addr {
            cmd.args(["--also-addr", &extra.to_string()]);
        }
        let mut child = cmd.spawn()?;
        let out = child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
        children.push((child, BufReader::new(out).lines()));
    }
    // Wait for every shard's peak, measure, then collect the reports.
    for (_, lines) in children.iter_mut() {
        while let Some(line) = lines.next_line().await? {
            if line.starts_with("ramp-peak ") {
                break;
            }
        }
    }
    let rss_peak = total_rss(&c.server_pid);
    let mut report = Report::new(
        "ramp",
        json!({"proto": format!("{:?}", c.proto), "batch": a.batch, "interval_ms": a.interval_ms, "target": a.target, "sources": c.sources, "servers": 1 + c.also_addr.len(), "shards": a.shards}),
    );
    let (mut stable, mut ok, mut failed, mut dropped, mut worst_p99, mut shards_cpu_s) =
        (0u64, 0u64, 0u64, 0u64, 0f64, 0f64);
    let mut reasons = Vec::new();
    for (mut child, mut lines) in children {
        let mut last = None;
        while let Some(line) = lines.next_line().await? {
            if line.starts_with('{') {
                last = Some(line);
            }
        }
        child.wait().await?;
        let v: serde_json::Value = serde_json::from_str(
            &last.ok_or_else(|| anyhow::anyhow!("a shard printed no result"))?,
        )?;
        let f = &v["figures"];
        stable += f["peak_stable_connections"].as_u64().unwrap_or(0);
        ok += f["logins_ok"].as_u64().unwrap_or(0);
        failed += f["logins_failed"].as_u64().unwrap_or(0);
        dropped += f["dropped_after_login"].as_u64().unwrap_or(0);
        shards_cpu_s += f["tool_cpu_s"].as_f64().unwrap_or(0.0);
        worst_p99 = worst_p99.max(v["latency"]["login"]["p99_ms"].as_f64().unwrap_or(0.0));
        reasons.push(f["stopped_because"].as_str().unwrap_or("").to_string());
    }
    report.set("peak_stable_connections", stable);
    report.set("logins_ok", ok);
    report.set("logins_failed", failed);
    report.set("dropped_after_login", dropped);
    report.set("login_p99_ms_worst_shard", worst_p99);
    report.set("stopped_because", reasons.join("; "));
    let mut used = window.finish();
    used.tool_s += shards_cpu_s;
    report.cpu = Some(used.per(ok, DELIVERY));
    if let (Some(before), Some(after)) = (rss_before, rss_peak) {
        report.set("server_rss_kib", after);
        if stable > 0 {
            report.set(
                "server_rss_kib_per_conn",
                ((after.saturating_sub(before)) as f64 / stable as f64 * 100.0).round() / 100.0,
            );
        }
    }
    Ok(report)
}

/// Keeps a client connected and reading until told to stop.
async fn idle(
    mut client: Client,
    mut stop: watch::Receiver<bool>,
    alive: Arc<AtomicU64>,
    dropped: Arc<AtomicU64>,
) {
    let mut pongs = Vec::new();
    loop {
        tokio::select! {
            n = client.reader.next_batch(|line| {
                if let Some(p) = Client::pong_for(line) {
                    pongs.push(p);
                }
            }) => {
                if !matches!(n, Ok(k) if k > 0) {
                    alive.fetch_sub(1, Ordering::Relaxed);
                    dropped.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                for p in pongs.drain(..) {
                    let _ = client.writer.write_all(&p).await;
                }
            }
            _ = stop.changed() => return,
        }
    }
}
