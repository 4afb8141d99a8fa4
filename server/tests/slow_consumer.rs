//! A client that never reads is cut off with a reason once its bounded queue fills; the
//! clients that do read lose nothing and stay connected (PROTOCOL.md §6.3, like IRC's "SendQ exceeded").

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::FromRawFd;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;

/// The whole test must finish within this.
const BUDGET: Duration = Duration::from_secs(20);
/// Public messages sent, at most, before the non-reader must have been cut off (~1 KB each).
const MAX_MESSAGES: usize = 40_000;
/// How far the sender may run ahead of the slowest reader, in messages. Kept so that what
/// is in flight towards a reader (~27 KB) is well below its queue bound, so the readers
/// are never cut off however the machine schedules their threads. (Well below, not just
/// below: the writer releases queued bytes per batch once the whole batch is written, so
/// up to one batch already read by the client still counts against its bound.)
const WINDOW: usize = 24;
/// Messages sent after the non-reader was cut off, to check the chat goes on.
const AFTER: usize = 50;

/// A TCP connection whose receive buffer is as small as the kernel allows, so that a peer
/// that does not read stops absorbing data early.
fn connect_with_small_rcvbuf(addr: SocketAddr) -> TcpStream {
    let SocketAddr::V4(v4) = addr else {
        panic!("IPv4 expected: {addr}")
    };
    // SAFETY: plain socket calls on a descriptor we create and own; every pointer passed
    // points to a live local of the size given.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket failed");
        let size: libc::c_int = 4096;
        let rc = libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&raw const size).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
        assert_eq!(rc, 0, "setsockopt(SO_RCVBUF) failed");
        let sin = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: v4.port().to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from_ne_bytes(v4.ip().octets()),
            },
            sin_zero: [0; 8],
        };
        let rc = libc::connect(
            fd,
            (&raw const sin).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        assert_eq!(rc, 0, "connect failed: {}", std::io::Error::last_os_error());
        TcpStream::from_raw_fd(fd)
    }
}

/// What the readers report to the sender.
#[derive(Default)]
struct Progress {
    /// Chat messages received, per reader.
    counts: Vec<usize>,
    /// A reader saw the non-reader leave.
    lazy_left: bool,
    /// A reader failed (its message says how); the sender stops.
    failed: Option<String>,
}

type Shared = Arc<(Mutex<Progress>, Condvar)>;

/// What a reader ends with.
struct ReaderReport {
    name: String,
    /// Indexes of the chat messages received, in order.
    received: Vec<usize>,
    /// Frames of type error received (there must be none).
    errors: Vec<Value>,
    client: JsonClient,
}

fn update(shared: &Shared, f: impl FnOnce(&mut Progress)) {
    let (lock, cv) = &**shared;
    f(&mut lock.lock().unwrap_or_else(|e| e.into_inner()));
    cv.notify_all();
}

/// Reads until the `END` message, recording the chat indexes and reporting progress.
fn reader(mut c: JsonClient, slot: usize, shared: Shared, deadline: Instant) -> ReaderReport {
    let mut received = Vec::new();
    let mut errors = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let frame = if left.is_zero() {
            None
        } else {
            c.recv_within(left)
        };
        let Some(f) = frame else {
            let why = format!(
                "{}: connection ended or timed out after {} messages",
                c.name,
                received.len()
            );
            update(&shared, |p| p.failed = Some(why.clone()));
            panic!("{why}");
        };
        match f["type"].as_str() {
            Some("chat") => {
                let text = msg(&f);
                if text == "END" {
                    break;
                }
                let (idx, _) = text.split_once(' ').expect("message format");
                let idx: usize = idx.trim_start_matches('n').parse().expect("index");
                received.push(idx);
                let n = received.len();
                update(&shared, |p| p.counts[slot] = n);
            }
            Some("leave") if f["user"] == "lazy" => update(&shared, |p| p.lazy_left = true),
            Some("error") => errors.push(f),
            _ => {}
        }
    }
    ReaderReport {
        name: c.name.clone(),
        received,
        errors,
        client: c,
    }
}

#[test]
fn a_client_that_never_reads_is_disconnected_and_the_others_lose_nothing() {
    let started = Instant::now();
    let deadline = started + BUDGET;
    let (_b, baddr) = broker(&[]);
    // The queue is the larger of the two bounds (the frame limit plus 64 KiB), ~68 KiB here.
    let s = server(
        baddr,
        // The sender sends as fast as the readers read: no rate limit.
        &[
            "--client-queue-bytes",
            "65536",
            "--max-frame",
            "4096",
            "--flood-rate",
            "off",
        ],
    );

    // The non-reader: reads its welcome, then nothing ever again.
    let mut lazy = connect_with_small_rcvbuf(s.json);
    lazy.write_all(b"lazy").expect("write");
    lazy.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    let mut lazy_reader = BufReader::new(lazy.try_clone().expect("clone"));
    let mut welcome = String::new();
    lazy_reader.read_line(&mut welcome).expect("welcome");
    assert!(welcome.contains("Welcome lazy"), "{welcome}");

    let readers = vec![
        JsonClient::login(s.json, "reader1"),
        JsonClient::login(s.json, "reader2"),
    ];
    let mut sender = JsonClient::login(s.json, "sender");

    let shared: Shared = Arc::new((
        Mutex::new(Progress {
            counts: vec![0; readers.len()],
            ..Progress::default()
        }),
        Condvar::new(),
    ));
    let handles: Vec<_> = readers
        .into_iter()
        .enumerate()
        .map(|(slot, c)| {
            let shared = shared.clone();
            thread::spawn(move || reader(c, slot, shared, deadline))
        })
        .collect();

    // Send ~1 KB public messages, paced by the slowest reader, until the non-reader has been
    // cut off; then some more, then END.
    let pad = "x".repeat(1000);
    let mut sent = 0usize;
    let mut extra_after_leave = None;
    loop {
        let (lock, cv) = &*shared;
        let mut p = lock.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(why) = &p.failed {
                panic!("a reader failed: {why}");
            }
            let slowest = p.counts.iter().copied().min().unwrap_or(0);
            if sent - slowest <= WINDOW {
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "timed out: sent {sent}, readers at {:?}",
                p.counts
            );
            p = cv
                .wait_timeout(p, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        if p.lazy_left && extra_after_leave.is_none() {
            extra_after_leave = Some(sent + AFTER);
        }
        drop(p);
        if extra_after_leave == Some(sent) {
            break;
        }
        assert!(
            sent < MAX_MESSAGES,
            "the non-reader was not disconnected after {sent} messages (~{} MB)",
            sent * pad.len() / 1_000_000
        );
        sender.send("*", &format!("n{sent} {pad}"));
        sent += 1;
    }
    sender.send("*", "END");

    let reports: Vec<ReaderReport> = handles
        .into_iter()
        .map(|h| h.join().expect("reader thread"))
        .collect();
    let expected: Vec<usize> = (0..sent).collect();
    for r in &reports {
        assert!(
            r.received == expected,
            "{}: received {} of {sent} messages, first gap at {:?}",
            r.name,
            r.received.len(),
            r.received.iter().enumerate().find(|(i, n)| i != *n)
        );
        assert!(r.errors.is_empty(), "{}: {:?}", r.name, r.errors);
    }

    // The non-reader's connection was closed by the server (after whatever the kernel
    // buffers still held for it).
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        assert!(Instant::now() < deadline, "the non-reader was never closed");
        match lazy_reader.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the non-reader's connection is still open: {e}"),
        }
    }

    // Its name is free again, and the readers are still connected and served.
    let mut lazy2 = JsonClient::login(s.json, "lazy");
    let mut clients: Vec<JsonClient> = reports.into_iter().map(|r| r.client).collect();
    for c in &mut clients {
        c.send("/list", "");
        let l = c.recv_type("users");
        assert_eq!(users(&l), ["lazy", "reader1", "reader2", "sender"], "{l}");
    }
    lazy2.send("/list", "");
    assert_eq!(
        users(&lazy2.recv_type("users")),
        ["lazy", "reader1", "reader2", "sender"]
    );
    assert!(started.elapsed() < BUDGET, "took {:?}", started.elapsed());
}

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS")
}

#[test]
fn megabytes_broadcast_past_a_non_reader_keep_server_memory_bounded() {
    const MESSAGES: usize = 24_000; // ~24 MB of 1 KB public messages
    let deadline = Instant::now() + Duration::from_secs(60);
    let (_b, baddr) = broker(&[]);
    // The default 8 MiB send queue per client; no rate limit for the sender.
    let s = server(baddr, &["--flood-rate", "off"]);
    let pid = s.proc.child.id();

    let mut lazy = connect_with_small_rcvbuf(s.json);
    lazy.write_all(b"lazy").expect("write");
    let mut reader = JsonClient::login(s.json, "reader");
    let mut sender = JsonClient::login(s.json, "sender");
    reader.recv_type("join");
    let before = rss_kib(pid);

    // The reader counts what it gets; the sender stays at most 200 messages ahead of it.
    let got = Arc::new((Mutex::new(0usize), Condvar::new()));
    let counter = {
        let got = got.clone();
        thread::spawn(move || {
            loop {
                let v = reader.recv_type("chat");
                let (n, cv) = &*got;
                *n.lock().unwrap_or_else(|e| e.into_inner()) += 1;
                cv.notify_all();
                if msg(&v) == "END" {
                    return reader;
                }
            }
        })
    };
    let pad = "y".repeat(1000);
    let mut peak = before;
    for i in 0..MESSAGES {
        let (n, cv) = &*got;
        let mut seen = n.lock().unwrap_or_else(|e| e.into_inner());
        while i > *seen + 200 {
            assert!(Instant::now() < deadline, "the reader stalled at {}", *seen);
            seen = cv
                .wait_timeout(seen, Duration::from_millis(100))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        drop(seen);
        sender.send("*", &format!("{i} {pad}"));
        if i % 1000 == 0 {
            peak = peak.max(rss_kib(pid));
        }
    }
    sender.send("*", "END");
    let reader = counter.join().expect("reader");
    peak = peak.max(rss_kib(pid));
    let growth_mib = peak.saturating_sub(before) / 1024;
    eprintln!("~24 MB broadcast; server RSS {before} KiB before, peak {peak} KiB");
    // The non-reader holds at most its 8 MiB queue; allocator slack and the other
    // clients' buffers stay well under the rest of the bound.
    assert!(
        growth_mib < 32,
        "server memory grew by {growth_mib} MiB while ~24 MB were broadcast"
    );
    // The non-reader was cut off (its socket ends after what the kernel still held).
    lazy.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        assert!(Instant::now() < deadline, "the non-reader was never closed");
        match lazy.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the non-reader's connection is still open: {e}"),
        }
    }
    drop(reader);
}
