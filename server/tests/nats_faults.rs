//! The NATS backend on a real three-node JetStream cluster with everything replicated
//! three times (README, "Scaling out"): a node killed under traffic, and the whole cluster
//! lost and back. Skipped, with a notice, where nats-server is not installed.

mod support;

use std::collections::{BTreeMap, HashSet};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::*;
use testkit::nats::NatsCluster;

/// Long enough for a JetStream leader election (4–9 s on nats-server 2.9) and retries.
const FAULT_TIMEOUT: Duration = Duration::from_secs(45);

/// A server on the cluster, told only `url`: it must find the other nodes by itself.
fn server_on(url: &str) -> testkit::Server {
    testkit::server(free_addr(), &["--nats", url, "--flood-rate", "off"])
}

fn send_labelled(c: &mut JsonClient, to: &str, m: &str, label: &str) {
    let frame = json!({"to": to, "msg": m, "label": label});
    c.send_raw(format!("{frame}\n").as_bytes());
}

/// What one sender learnt: confirmed label -> id, and the labels refused.
#[derive(Default)]
struct Sent {
    confirmed: BTreeMap<String, u64>,
    refused: Vec<String>,
}

/// Sends `n` labelled public messages, one every `pace`, reading the answers as they come;
/// then waits for every answer.
fn send_all(c: &mut JsonClient, prefix: &str, n: usize, pace: Duration) -> Sent {
    let mut sent = Sent::default();
    let answer = |c: &mut JsonClient, sent: &mut Sent, within: Duration| -> bool {
        let Some(f) = c.recv_within(within) else {
            return false;
        };
        if let Some(label) = f["label"].as_str() {
            match (f["type"].as_str(), f["id"].as_u64()) {
                (Some("system"), Some(id)) => {
                    sent.confirmed.insert(label.to_string(), id);
                }
                (Some("error"), _) => sent.refused.push(label.to_string()),
                _ => {}
            }
        }
        true
    };
    for i in 0..n {
        send_labelled(c, "*", &format!("{prefix}{i}"), &format!("{prefix}{i}"));
        let until = Instant::now() + pace;
        while Instant::now() < until {
            if !answer(c, &mut sent, until - Instant::now()) {
                break;
            }
        }
    }
    let deadline = Instant::now() + FAULT_TIMEOUT;
    while sent.confirmed.len() + sent.refused.len() < n {
        assert!(
            Instant::now() < deadline,
            "{prefix}: {} of {n} answered",
            sent.confirmed.len() + sent.refused.len()
        );
        answer(c, &mut sent, Duration::from_millis(500));
    }
    sent
}

/// Reads chat frames until `want` ids were seen or the stream goes quiet at the end;
/// returns every id seen, in order (duplicates kept, to be found).
fn collect_ids(c: &mut JsonClient, want: &HashSet<u64>, deadline: Instant) -> Vec<u64> {
    let mut seen = Vec::new();
    let mut missing = want.clone();
    while !missing.is_empty() && Instant::now() < deadline {
        let Some(f) = c.recv_within(Duration::from_millis(500)) else {
            continue;
        };
        if f["type"] == "chat"
            && let Some(id) = f["id"].as_u64()
        {
            missing.remove(&id);
            seen.push(id);
        }
    }
    // Anything else still on its way (a duplicate would be) arrives within a moment.
    while let Some(f) = c.recv_within(Duration::from_millis(500)) {
        if f["type"] == "chat"
            && let Some(id) = f["id"].as_u64()
        {
            seen.push(id);
        }
    }
    seen
}

/// The node that leads the event stream (nodes are named `n0`, `n1`, `n2`).
fn stream_leader(cluster: &NatsCluster) -> usize {
    let deadline = Instant::now() + FAULT_TIMEOUT;
    loop {
        let reply = testkit::nats::request(&cluster.url(0), "$JS.API.STREAM.INFO.CHAT_EVENTS", b"");
        let leader = reply
            .ok()
            .and_then(|r| serde_json::from_slice::<Value>(&r).ok())
            .and_then(|v| v["cluster"]["leader"].as_str().map(str::to_string))
            .and_then(|l| l.strip_prefix('n').and_then(|i| i.parse().ok()));
        if let Some(i) = leader {
            return i;
        }
        assert!(Instant::now() < deadline, "the stream has no leader");
        thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_killed_node_under_traffic_loses_no_confirmed_message_and_delivers_each_once() {
    if testkit::nats::skip() {
        return;
    }
    let mut cluster = NatsCluster::start(3);
    // A first server makes the stream; then A is put on the node that leads it, the one
    // that will die: the worst case, its connection and the stream's leader at once.
    let first = server_on(&cluster.url(0));
    let leader = stream_leader(&cluster);
    let a = server_on(&cluster.url(leader));
    let b = server_on(&cluster.url((leader + 1) % 3));
    drop(first);
    let mut listeners = vec![
        JsonClient::login(a.json, "la"),
        JsonClient::login(b.json, "lb"),
    ];
    let mut s1 = JsonClient::login(a.json, "s1");
    let mut s2 = JsonClient::login(b.json, "s2");
    for l in &mut listeners {
        await_presence(l, "join", &["s1", "s2"], FAULT_TIMEOUT);
    }

    const N: usize = 60;
    let pace = Duration::from_millis(50);
    let t1 = thread::spawn(move || (send_all(&mut s1, "a", N, pace), s1));
    let t2 = thread::spawn(move || (send_all(&mut s2, "b", N, pace), s2));
    // A third of the way in, server A's only node dies, and with it the stream's leader.
    thread::sleep(pace * (N as u32 / 3));
    cluster.kill(leader);
    let (sent1, _s1) = t1.join().expect("sender 1");
    let (sent2, _s2) = t2.join().expect("sender 2");

    let confirmed: HashSet<u64> = sent1
        .confirmed
        .values()
        .chain(sent2.confirmed.values())
        .copied()
        .collect();
    eprintln!(
        "confirmed {} of {}, refused {:?} {:?}",
        confirmed.len(),
        2 * N,
        sent1.refused,
        sent2.refused
    );
    assert!(
        confirmed.len() >= N,
        "most messages got through the failover"
    );
    let deadline = Instant::now() + FAULT_TIMEOUT;
    let mut orders = Vec::new();
    for l in &mut listeners {
        let seen = collect_ids(l, &confirmed, deadline);
        let unique: HashSet<u64> = seen.iter().copied().collect();
        assert_eq!(unique.len(), seen.len(), "{}: a message came twice", l.name);
        let lost: Vec<_> = confirmed.difference(&unique).collect();
        assert!(
            lost.is_empty(),
            "{}: confirmed but never delivered: {lost:?}",
            l.name
        );
        assert!(
            seen.windows(2).all(|w| w[0] < w[1]),
            "{}: out of order",
            l.name
        );
        orders.push(seen);
    }
    assert_eq!(
        orders[0], orders[1],
        "both servers delivered the same sequence"
    );
    // Nobody was disconnected: the listeners still talk.
    for l in &mut listeners {
        l.send("/list", "");
        assert_eq!(users(&l.recv_type("users")).len(), 4);
    }
}

#[test]
fn a_whole_cluster_outage_is_told_refused_and_recovered_like_a_broker_outage() {
    if testkit::nats::skip() {
        return;
    }
    let mut cluster = NatsCluster::start(3);
    let a = server_on(&cluster.urls_joined());
    let mut alice = JsonClient::login(a.json, "alice");
    let mut bob = JsonClient::login(a.json, "bob");
    await_presence(&mut alice, "join", &["bob"], FAULT_TIMEOUT);

    cluster.kill_all();
    let down = alice.recv_until("the degraded notice", |v| v["service"] == "down");
    assert_eq!(down["type"], "system", "{down}");
    alice.send("*", "into the void");
    let e = alice.recv_type("error");
    assert_eq!(e["code"], "not_delivered", "{e}");

    cluster.restart_all();
    let deadline = Instant::now() + FAULT_TIMEOUT;
    let back = recv_until_by(&mut alice, deadline, "the back notice", |v: &Value| {
        v["service"] == "up"
    });
    assert_eq!(back["type"], "system", "{back}");
    // Both are registered again and talk; what was refused never arrives.
    recv_until_by(&mut bob, deadline, "bob's back notice", |v: &Value| {
        v["service"] == "up"
    });
    alice.send("bob", "we are back");
    loop {
        let f = bob.recv().expect("a frame");
        assert_ne!(msg(&f), "into the void", "a refused message arrived: {f}");
        if f["type"] == "private" {
            assert_eq!(msg(&f), "we are back");
            break;
        }
    }
}
