//! `payload`: seed 003's scenarios. C clients each send M public messages of random size
//! in [min, max] bytes; every client receives everyone else's and checks every byte.
//! Reports delivered MB/s and per-message latency.
//!
//! CPU per delivery: a delivery is one message received by one client (each message is
//! delivered to the C - 1 others; the sender gets no copy).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rand::{Rng, SeedableRng};
use serde_json::json;
use tokio::io::AsyncWriteExt;

use crate::common::{Common, login_all, micros_since};
use crate::net::Sources;
use crate::proto::{self, Client, MARK};
use crate::report::{Report, histogram};

/// Options of `payload`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,
    /// Clients.
    #[arg(long, default_value_t = 5)]
    pub clients: usize,
    /// Messages per client.
    #[arg(long, default_value_t = 200)]
    pub messages: u64,
    /// Smallest message, bytes.
    #[arg(long, default_value_t = 10_000)]
    pub min: usize,
    /// Largest message, bytes.
    #[arg(long, default_value_t = 20_000)]
    pub max: usize,
    /// Messages a client may send ahead of what it has received from the others (keeps
    /// every client's backlog on the server bounded, like a reader that keeps up).
    #[arg(long, default_value_t = 8)]
    pub window: u64,
}

/// The alphabet twice: a body is the alphabet repeated from a phase that depends on the
/// sender and the sequence number, so every 26-byte piece of it is one window of this.
const ALPHABET2: &[u8; 52] = b"abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz";

/// Where in the alphabet the body of message `seq` from `sender` starts.
fn phase(sender: u32, seq: u64) -> usize {
    ((u64::from(sender) * 7 + seq * 31) % 26) as usize
}

/// The body's repeating piece, which the receiver can recompute: 26 letters from the
/// message's phase.
fn piece(sender: u32, seq: u64) -> &'static [u8] {
    let p = phase(sender, seq);
    &ALPHABET2[p..p + 26]
}

fn message(sender: u32, seq: u64, micros: u64, size: usize) -> String {
    let head = format!("~B|{sender}|{seq}|{micros}|");
    let mut m = head.into_bytes();
    let piece = piece(sender, seq);
    while m.len() < size {
        let n = (size - m.len()).min(piece.len());
        m.extend_from_slice(&piece[..n]);
    }
    String::from_utf8(m).unwrap_or_default()
}

/// Checks the body after the header; returns the payload length if intact. Compares
/// 26-byte pieces against the expected window (memcmp speed: verifying every byte must
/// not make the generator the bottleneck of a 500 MB/s run).
fn verify(line: &[u8], sender: u32, seq: u64) -> Option<usize> {
    let at = memchr::memmem::find(line, MARK)?;
    let mut bars = memchr::memchr_iter(b'|', &line[at..]);
    let start = at + bars.nth(3)? + 1;
    let end = start + memchr::memchr2(b'"', b'\r', &line[start..]).unwrap_or(line.len() - start);
    let piece = piece(sender, seq);
    line[start..end]
        .chunks(piece.len())
        .all(|c| c == &piece[..c.len()])
        .then_some(end - at)
}

/// What one delivery is, for the CPU per delivery.
const DELIVERY: &str = "one message received by one client";

/// Runs the scenario.
pub async fn run(a: Args) -> anyhow::Result<Report> {
    let c = &a.common;
    let sources = Arc::new(Sources::new(c.sources).with_bare_name(c.bare_name));
    let names = (0..a.clients)
        .map(|i| format!("{}p{i}", c.prefix))
        .collect();
    let clients = login_all(c, &sources, names, 16)
        .await
        .context("logging in")?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let start = Instant::now();
    let cpu = c.cpu_window();
    let expected_each = a.messages * (a.clients as u64 - 1);
    // Every message's size, drawn up front, so a receiver also catches a message cut short.
    let sizes: Arc<Vec<Vec<usize>>> = Arc::new(
        (0..a.clients)
            .map(|i| {
                let mut rng = rand::rngs::StdRng::seed_from_u64(i as u64);
                (0..a.messages)
                    .map(|_| rng.random_range(a.min..=a.max.max(a.min)))
                    .collect()
            })
            .collect(),
    );
    let mut tasks = Vec::new();
    for (i, client) in clients.into_iter().enumerate() {
        let (a, sizes) = (a.clone(), sizes.clone());
        tasks.push(tokio::spawn(exchange(
            client,
            i,
            a,
            start,
            expected_each,
            sizes,
        )));
    }
    let (mut hist, mut bytes, mut corrupt, mut got) = (histogram(), 0u64, 0u64, 0u64);
    for t in tasks {
        let r = t.await??;
        hist.add(&r.0).ok();
        bytes += r.1;
        corrupt += r.2;
        got += r.3;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = cpu.finish();
    let mut report = Report::new(
        "payload",
        json!({"proto": format!("{:?}", c.proto), "clients": a.clients, "messages": a.messages, "min": a.min, "max": a.max}),
    );
    report.set("delivered_messages", got);
    report.set(
        "lost",
        (expected_each * a.clients as u64).saturating_sub(got),
    );
    report.set("corrupt", corrupt);
    report.set("delivered_mb", (bytes as f64 / 1e6 * 10.0).round() / 10.0);
    report.set("mb_per_s", (bytes as f64 / 1e6 / elapsed).round());
    report.cpu = Some(cpu.per(got, DELIVERY));
    report.latencies.push(("per message".into(), hist));
    Ok(report)
}

type Outcome = (hdrhistogram::Histogram<u64>, u64, u64, u64);

async fn exchange(
    client: Client,
    i: usize,
    a: Args,
    start: Instant,
    expected: u64,
    sizes: Arc<Vec<Vec<usize>>>,
) -> anyhow::Result<Outcome> {
    let Client {
        mut reader,
        mut writer,
        proto,
        ..
    } = client;
    let me = u32::try_from(i).unwrap_or(u32::MAX);
    let received = Arc::new((
        std::sync::atomic::AtomicU64::new(0),
        tokio::sync::Notify::new(),
    ));
    let progress = received.clone();
    let others = a.clients as u64 - 1;
    let give_up = Instant::now() + Duration::from_secs(60);
    let my_sizes = sizes.clone();
    let sender = tokio::spawn(async move {
        for (seq, size) in (1..=a.messages).zip(my_sizes[i].iter().copied()) {
            // Stay at most `window` messages ahead of the slowest sender we hear from.
            while seq > a.window
                && progress.0.load(std::sync::atomic::Ordering::Acquire) < (seq - a.window) * others
            {
                if Instant::now() > give_up {
                    bail!("client {i}: the others stopped sending");
                }
                let _ =
                    tokio::time::timeout(Duration::from_millis(50), progress.1.notified()).await;
            }
            let m = message(me, seq, micros_since(start), size);
            writer
                .write_all(Client::public(proto, &m).as_bytes())
                .await?;
        }
        anyhow::Ok(writer)
    });
    let (mut hist, mut bytes, mut corrupt, mut got) = (histogram(), 0u64, 0u64, 0u64);
    let deadline = Instant::now() + Duration::from_secs(60);
    while got < expected {
        let left = deadline.saturating_duration_since(Instant::now());
        let n = tokio::time::timeout(
            left,
            reader.next_batch(|line| {
                if let Some(seen) = proto::find_payload(line) {
                    got += 1;
                    let _ = hist.record(micros_since(start).saturating_sub(seen.micros).max(1));
                    let want = usize::try_from(seen.seq)
                        .ok()
                        .and_then(|seq| sizes.get(seen.sender as usize)?.get(seq.checked_sub(1)?));
                    match verify(line, seen.sender, seen.seq) {
                        Some(len) if Some(&len) == want => bytes += len as u64,
                        _ => corrupt += 1,
                    }
                }
            }),
        )
        .await;
        match n {
            Ok(Ok(0)) | Ok(Err(_)) => {
                bail!("client {i}: connection closed after {got} of {expected}")
            }
            Ok(Ok(_)) => {
                received.0.store(got, std::sync::atomic::Ordering::Release);
                received.1.notify_one();
            }
            Err(_) => break, // the rest counts as lost
        }
    }
    // The sender cannot outlive its reader (it would wait for progress forever).
    let sent = tokio::time::timeout(Duration::from_secs(5), sender).await;
    if !matches!(sent, Ok(Ok(Ok(_)))) {
        bail!("client {i}: sending did not finish ({got} of {expected} received)");
    }
    Ok((hist, bytes, corrupt, got))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_verify_and_corruption_is_caught() {
        let m = message(3, 9, 77, 500);
        assert_eq!(m.len(), 500);
        let line = format!(r#"{{"msg":"{m}","type":"chat"}}"#);
        assert_eq!(verify(line.as_bytes(), 3, 9), Some(500));
        let bad = line.replacen("|77|", "|77|Z", 1);
        assert_eq!(verify(bad.as_bytes(), 3, 9), None);
        // One byte changed deep in the body, and a body cut short by a byte.
        let mut deep = line.clone().into_bytes();
        deep[400] = if deep[400] == b'a' { b'b' } else { b'a' };
        assert_eq!(verify(&deep, 3, 9), None);
        let short = line.replacen(&m, &m[..499], 1);
        assert_eq!(verify(short.as_bytes(), 3, 9), Some(499));
        // Another message's body does not pass for this one.
        assert_eq!(verify(line.as_bytes(), 3, 10), None);
    }
}
