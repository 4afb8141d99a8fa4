//! The heap one idle, logged-in connection costs the server, counted by a counting
//! allocator: a server in this process (the broker in its own, so only the server's
//! allocations count), N clients logged in, the live heap before and after. The live
//! allocations are also sorted by size, which is how BENCHMARKS.md ("Memory per
//! connection") names what each byte is for. The bound fails a change that makes every
//! connection larger.

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use support::*;

/// Allocation sizes counted one by one; larger ones share the last slot.
const SIZES: usize = 4097;

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static BY_SIZE: [AtomicIsize; SIZES] = [const { AtomicIsize::new(0) }; SIZES];

fn slot(size: usize) -> usize {
    size.min(SIZES - 1)
}

// SAFETY: every call is passed on to the system allocator unchanged; the counters are only
// atomics updated beside it.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        BY_SIZE[slot(layout.size())].fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc` is the system allocator's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        BY_SIZE[slot(layout.size())].fetch_sub(1, Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        BY_SIZE[slot(layout.size())].fetch_sub(1, Ordering::Relaxed);
        BY_SIZE[slot(new_size)].fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract for `realloc` is the system allocator's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn snapshot() -> (isize, Vec<isize>) {
    let by_size = BY_SIZE.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    (LIVE.load(Ordering::Relaxed), by_size)
}

/// Waits until the live heap stops changing (the servers' tasks went idle), with a
/// deadline; returns the snapshot.
fn settled() -> (isize, Vec<isize>) {
    let deadline = Instant::now() + TIMEOUT;
    let mut last = snapshot();
    let mut steady = 0;
    while steady < 5 {
        assert!(Instant::now() < deadline, "the heap never settled");
        std::thread::sleep(Duration::from_millis(20));
        let now = snapshot();
        if now.0 == last.0 {
            steady += 1;
        } else {
            steady = 0;
        }
        last = now;
    }
    last
}

/// Logs in with a bare socket that allocates nothing itself (a `JsonClient`'s read buffer
/// would count), reading the welcome byte by byte up to its newline.
fn login(addr: std::net::SocketAddr, name: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    s.write_all(format!("{name}\n").as_bytes()).expect("write");
    let mut first = [0u8; 9];
    s.read_exact(&mut first).expect("a first frame");
    assert_eq!(&first, br#"{"from":{"#, "a frame");
    let mut byte = [0u8; 1];
    let mut seen = Vec::with_capacity(0);
    while byte[0] != b'\n' {
        s.read_exact(&mut byte).expect("the rest of the welcome");
        if seen.len() < 64 {
            seen.push(byte[0]);
        }
    }
    assert!(
        !String::from_utf8_lossy(&seen).contains("error"),
        "refused: {seen:?}"
    );
    s
}

#[test]
fn an_idle_connection_costs_a_bounded_heap() {
    const N: usize = 1000;
    let (_broker, addr) = broker(&[]);
    // A large room, as in the 19,000-client ramp: joins are counted, not announced.
    let s = testkit::inproc::server(
        addr,
        &[
            "--presence-limit",
            "10",
            "--welcome-gap-ms",
            "0",
            "--max-conns-per-ip",
            "0",
        ],
    );
    let _warm = login(s.json, "warm");
    let (before, sizes_before) = settled();
    let clients: Vec<TcpStream> = (0..N).map(|i| login(s.json, &format!("u{i:03}"))).collect();
    let (after, sizes_after) = settled();
    let per_conn = (after - before) as f64 / N as f64;
    eprintln!("heap per idle connection: {per_conn:.0} bytes ({N} connections)");
    eprintln!("live allocations per connection, by size (bytes x count):");
    for (size, (a, b)) in sizes_after.iter().zip(&sizes_before).enumerate() {
        let per = (a - b) as f64 / N as f64;
        if per.abs() >= 0.05 {
            let shown = if size == SIZES - 1 {
                format!(">{}", SIZES - 2)
            } else {
                size.to_string()
            };
            eprintln!("  {shown:>6} x {per:.2}");
        }
    }
    assert!(
        per_conn < 3300.0,
        "an idle connection costs {per_conn:.0} bytes of heap"
    );
    drop(clients);
}
