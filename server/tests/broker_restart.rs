//! The broker is killed (SIGKILL) and restarted while a sender keeps sending public and
//! private messages across two servers. Every message must reach every recipient exactly
//! once, or its sender must get an error frame naming it; nobody may see a duplicate; and
//! both listeners must see the public messages in the same order.
//!
//! "Recipient" means a user online in the chat when the broker ordered the message: while
//! a server has not re-joined the restarted broker, its users are not in the chat (they
//! were told it is degraded), which the test reads from the listener on the other server
//! (the join of the re-registered user is ordered like every message).

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;

const BEAT: [&str; 2] = ["--heartbeat-ms", "200"];

/// Reads frames until `until` matches one (inclusive) or the deadline passes.
fn collect(mut c: JsonClient, deadline: Instant, until: impl Fn(&Value) -> bool) -> Vec<Value> {
    let mut got = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "{}: did not see the end in time", c.name);
        let Some(v) = c.recv_within(left) else {
            panic!(
                "{}: connection ended early after {} frames",
                c.name,
                got.len()
            );
        };
        let end = until(&v);
        got.push(v);
        if end {
            return got;
        }
    }
}

/// The quoted message an error frame names (`message "p12" ...` / `(message "q3")`).
fn named_message(e: &Value) -> Option<String> {
    let m = msg(e);
    let at = m.find("message \"")? + "message \"".len();
    let len = m[at..].find('"')?;
    Some(m[at..at + len].to_string())
}

/// Logs `name` in on `addr`, retrying while the server's link to the broker is down.
fn login_when_up(addr: std::net::SocketAddr, name: &str, deadline: Instant) -> JsonClient {
    loop {
        let (mut c, first) = JsonClient::login_raw(addr, name.as_bytes());
        if first["type"] == "welcome" {
            return c;
        }
        assert!(
            Instant::now() < deadline,
            "{name}: never got back in: {first}"
        );
        c.expect_closed();
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn broker_killed_and_restarted_under_traffic_loses_nothing_silently() {
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut broker_proc, baddr) = broker(&BEAT);
    let mut args = BEAT.to_vec();
    args.extend(["--flood-rate", "off"]);
    let a = server(baddr, &args);
    let b = server(baddr, &args);
    let la = JsonClient::login(a.json, "la");
    let mut lb = JsonClient::login(b.json, "lb");
    let s = JsonClient::login(a.json, "s");
    await_presence(&mut lb, "join", &["s"], TIMEOUT);

    // Listeners and the sender's own reader run in threads; the sender writes from here.
    let la_frames =
        thread::spawn(move || collect(la, deadline, |v| v["type"] == "chat" && msg(v) == "END-P"));
    let lb_frames = thread::spawn(move || {
        collect(lb, deadline, |v| {
            v["type"] == "private" && msg(v) == "END-Q"
        })
    });
    let mut s_writer = JsonClient::from_stream(s.stream.try_clone().expect("clone"));
    s_writer.name = "s".into();
    let s_frames = thread::spawn(move || {
        collect(s, deadline, |v| {
            v["type"] == "error" && msg(v).contains("\"STOP\"")
        })
    });

    let sent = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let (sent, stop) = (sent.clone(), stop.clone());
        thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::Acquire) {
                s_writer.send("*", &format!("p{i}"));
                s_writer.send("lb", &format!("q{i}"));
                i += 1;
                sent.store(i, Ordering::Release);
                thread::sleep(Duration::from_millis(2));
            }
            s_writer
        })
    };
    let wait_sent = |n: usize| {
        while sent.load(Ordering::Acquire) < n {
            assert!(Instant::now() < deadline, "the sender stalled");
            thread::sleep(Duration::from_millis(5));
        }
    };

    wait_sent(100);
    broker_proc.signal(libc::SIGKILL);
    assert_eq!(broker_proc.wait_exit(), None);
    let killed_at = sent.load(Ordering::Acquire);
    wait_sent(killed_at + 50); // sent while the broker is down
    let (_broker2, addrs) = Proc::start(
        "broker",
        &["--listen", &baddr.to_string(), BEAT[0], BEAT[1]],
        1,
    );
    assert_eq!(addrs[0], baddr);
    // Both servers are back once each lets a new user in.
    let _pa = login_when_up(a.json, "probe_a", deadline);
    let _pb = login_when_up(b.json, "probe_b", deadline);
    let back_at = sent.load(Ordering::Acquire);
    wait_sent(back_at + 100); // and traffic after the restart
    stop.store(true, Ordering::Release);
    let mut s_writer = sender.join().expect("sender");
    let total = sent.load(Ordering::Acquire);
    s_writer.send("*", "END-P");
    s_writer.send("lb", "END-Q");
    // A private message to nobody: its error, in order after everything else, ends s's reader.
    s_writer.send("nobody_here", "STOP");

    let la = la_frames.join().expect("la");
    let lb = lb_frames.join().expect("lb");
    let errors: HashSet<String> = s_frames
        .join()
        .expect("s")
        .iter()
        .filter(|v| v["type"] == "error")
        .filter_map(named_message)
        .collect();

    // No duplicates anywhere.
    for (who, frames) in [("la", &la), ("lb", &lb)] {
        let mut seen = HashSet::new();
        for f in frames
            .iter()
            .filter(|f| f["type"] == "chat" || f["type"] == "private")
        {
            assert!(
                seen.insert(msg(f).to_string()),
                "{who} got {} twice",
                msg(f)
            );
        }
    }
    // Which public messages lb was not a recipient of: those la saw after the broker died
    // and before lb re-joined the chat (in la's stream, ordered like everything else).
    let mut not_for_lb = HashSet::new();
    let mut degraded = false;
    for f in &la {
        if f["type"] == "system" && msg(f).contains("degraded") {
            degraded = true;
        } else if degraded && f["type"] == "join" && f["user"] == "lb" {
            degraded = false;
        } else if degraded && f["type"] == "chat" {
            not_for_lb.insert(msg(f).to_string());
        }
    }
    let texts = |frames: &[Value], kind: &str| -> Vec<String> {
        frames
            .iter()
            .filter(|f| f["type"] == kind)
            .map(|f| msg(f).to_string())
            .collect()
    };
    let la_pub = texts(&la, "chat");
    let lb_pub = texts(&lb, "chat");
    let lb_priv: HashSet<String> = texts(&lb, "private").into_iter().collect();
    let la_set: HashSet<&String> = la_pub.iter().collect();
    let lb_set: HashSet<&String> = lb_pub.iter().collect();
    let (mut failed, mut delivered_after) = (0, 0);
    for i in 0..total {
        let (p, q) = (format!("p{i}"), format!("q{i}"));
        if errors.contains(&p) {
            failed += 1;
        } else {
            assert!(la_set.contains(&p), "{p}: no error, yet la never got it");
            assert!(
                lb_set.contains(&p) || not_for_lb.contains(&p),
                "{p}: no error, yet lb (in the chat) never got it"
            );
            if i >= back_at {
                delivered_after += 1;
            }
        }
        if !errors.contains(&q) {
            assert!(lb_priv.contains(&q), "{q}: no error, yet lb never got it");
        }
    }
    // One order: the public messages both saw come in the same order, and each sender's in
    // the order sent.
    let common_la: Vec<&String> = la_pub.iter().filter(|m| lb_set.contains(m)).collect();
    let common_lb: Vec<&String> = lb_pub.iter().filter(|m| la_set.contains(m)).collect();
    assert_eq!(common_la, common_lb, "la and lb saw different orders");
    let index: HashMap<&String, usize> = la_pub.iter().enumerate().map(|(k, m)| (m, k)).collect();
    let mut last = None;
    for i in 0..total {
        if let Some(k) = index.get(&format!("p{i}")) {
            assert!(last.is_none_or(|l| l < *k), "p{i} arrived out of order");
            last = Some(*k);
        }
    }
    // The outage was real, and the chat recovered.
    assert!(
        failed >= 40,
        "messages sent while the broker was down get errors: {failed}"
    );
    assert!(delivered_after >= 90, "delivery resumed: {delivered_after}");
    eprintln!(
        "sent {total} public + {total} private; {failed} public and {} private reported not delivered; {} public not for lb",
        (0..total)
            .filter(|i| errors.contains(&format!("q{i}")))
            .count(),
        not_for_lb.len()
    );
}
