//! `testkit::nats` against the real nats-server: readiness means a replicated stream can
//! be created at once, and what was stored survives a killed node, a killed leader, every
//! node killed, and a stopped node. Skipped (with a notice) where nats-server is missing.
//! Bounded in time: every wait of the cluster has a deadline.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testkit::nats::{self, NatsCluster};

/// Whether to skip: nats-server is not installed.
fn skip(test: &str) -> bool {
    if nats::available() {
        return false;
    }
    eprintln!("{test}: skipped, nats-server is not installed (apt-get install nats-server)");
    true
}

/// A JetStream API call (or a publish into a stream) on `url`; its JSON reply, which must
/// not be an error.
fn js(url: &str, subject: &str, body: Value) -> Value {
    let reply = nats::request(url, subject, body.to_string().as_bytes())
        .unwrap_or_else(|e| panic!("{subject} on {url}: {e}"));
    let v: Value = serde_json::from_slice(&reply)
        .unwrap_or_else(|e| panic!("{subject}: a reply that is not JSON ({e}): {reply:?}"));
    assert!(v.get("error").is_none(), "{subject} on {url}: {v}");
    v
}

/// Publishes `text` into `S` once the stream has a leader: while its raft group elects one
/// (after its leader was killed) nothing subscribes to its subjects, so the server answers
/// "no responders" at once, and nothing was stored; any other failure panics.
fn publish_when_led(url: &str, text: &str) -> u64 {
    let deadline = Instant::now() + nats::READY_TIMEOUT;
    loop {
        match nats::request(url, "s.chat", json!({ "msg": text }).to_string().as_bytes()) {
            Err(e) if e.starts_with("no responders") && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("publish on {url}: {e}"),
            Ok(_) => return messages(url),
        }
    }
}

/// Creates stream `S` on subjects `s.>`, with `replicas`, in files.
fn create_stream(url: &str, replicas: usize) {
    let config =
        json!({"name": "S", "subjects": ["s.>"], "num_replicas": replicas, "storage": "file"});
    let v = js(url, "$JS.API.STREAM.CREATE.S", config);
    assert_eq!(v["config"]["num_replicas"], replicas, "{v}");
}

/// Publishes `text` into `S` and waits for the stream's acknowledgement. Until the
/// stream's own raft group has elected a leader (seconds after the cluster's meta leader,
/// on 2.9.10), a publish gets "no responders" at once, and nothing was stored: it is
/// tried again, within a deadline.
fn publish(url: &str, text: &str) -> u64 {
    let deadline = Instant::now() + nats::READY_TIMEOUT;
    let reply = loop {
        match nats::request(url, "s.chat", json!({ "msg": text }).to_string().as_bytes()) {
            Err(e) if e.contains("no responders") && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100));
            }
            r => break r.unwrap_or_else(|e| panic!("s.chat on {url}: {e}")),
        }
    };
    let ack: Value = serde_json::from_slice(&reply).expect("an ack in JSON");
    assert!(ack.get("error").is_none(), "s.chat on {url}: {ack}");
    assert_eq!(ack["stream"], "S", "{ack}");
    ack["seq"].as_u64().expect("an ack's seq")
}

/// How many messages `S` holds, asked of `url`.
fn messages(url: &str) -> u64 {
    let info = js(url, "$JS.API.STREAM.INFO.S", json!({}));
    info["state"]["messages"].as_u64().expect("state.messages")
}

/// The index of the node that leads stream `S`'s raft group (nodes are named `n0`...).
fn stream_leader(url: &str) -> usize {
    let info = js(url, "$JS.API.STREAM.INFO.S", json!({}));
    let name = info["cluster"]["leader"].as_str().expect("cluster.leader");
    name.trim_start_matches('n')
        .parse()
        .expect("a node name n<i>")
}

#[test]
fn one_node_serves_jetstream_and_keeps_its_store_across_a_restart() {
    if skip("one_node") {
        return;
    }
    let t = Instant::now();
    let mut c = NatsCluster::start(1);
    let started = t.elapsed();
    let url = c.url(0);
    assert_eq!(c.urls(), vec![url.clone()]);
    assert_eq!(c.urls_joined(), url);
    assert!(url.starts_with("nats://127.0.0.1:"), "{url}");
    assert!(c.monitor_url(0).starts_with("http://127.0.0.1:"));
    create_stream(&url, 1);
    assert_eq!(publish(&url, "one"), 1);

    c.kill(0);
    assert!(
        nats::request(&url, "s.chat", b"{}").is_err(),
        "a killed node answers"
    );
    c.restart(0);
    assert_eq!(c.url(0), url, "restarted on the same port");
    assert_eq!(messages(&url), 1, "the store survives the restart");
    eprintln!("one node: started in {started:?}, all in {:?}", t.elapsed());
}

#[test]
fn three_nodes_replicate_and_survive_a_killed_leader() {
    if skip("three_nodes_killed_leader") {
        return;
    }
    let t = Instant::now();
    let mut c = NatsCluster::start(3);
    let started = t.elapsed();
    let urls = c.urls();
    assert_eq!(urls.len(), 3);
    assert_eq!(c.urls_joined(), urls.join(","));
    // Ready means ready: an R3 stream is created at once, through any node.
    create_stream(&urls[1], 3);
    assert_eq!(publish(&urls[2], "before"), 1);

    let leader = c.wait_meta_leader();
    c.kill(leader);
    let t_kill = Instant::now();
    let next = c.wait_meta_leader();
    let election = t_kill.elapsed();
    assert_ne!(next, leader, "a killed node still leads");
    let other = (0..3).find(|&i| i != leader).expect("a live node");
    assert_eq!(
        publish_when_led(&urls[other], "during"),
        2,
        "two of three store"
    );

    c.restart(leader);
    c.wait_ready();
    assert_eq!(
        messages(&urls[leader]),
        2,
        "the restarted node serves the stream"
    );
    eprintln!(
        "three nodes: started in {started:?}, new leader {election:?} after the kill, all in {:?}",
        t.elapsed()
    );
}

#[test]
fn three_nodes_come_back_from_losing_quorum_from_kill_all_and_from_sigstop() {
    if skip("three_nodes_kill_all") {
        return;
    }
    let t = Instant::now();
    let mut c = NatsCluster::start(3);
    let urls = c.urls();
    create_stream(&urls[0], 3);
    assert_eq!(publish(&urls[0], "first"), 1);

    // Two of three gone: no quorum. Restarting one restores it (the partial restart:
    // routes and JetStream health, not every peer).
    c.kill(1);
    c.kill(2);
    c.restart(1);
    assert_eq!(publish(&urls[1], "quorum again"), 2);
    c.restart(2);

    let t_all = Instant::now();
    c.kill_all();
    c.restart_all();
    let back = t_all.elapsed();
    assert_eq!(c.urls(), urls, "the same ports after restart_all");
    assert_eq!(messages(&urls[2]), 2, "the stores survive kill_all");

    // A stopped node answers nothing, but two of three keep storing. Not the stream's
    // leader: its followers would wait out an election timeout (seconds) before storing
    // again, which is the backend's failover to test, not this kit's.
    let leader = stream_leader(&urls[0]);
    let stopped = (leader + 1) % 3;
    c.stop_node(stopped);
    assert_eq!(publish(&urls[leader], "while one is stopped"), 3);
    c.cont_node(stopped);
    c.wait_ready();
    eprintln!(
        "three nodes: back from kill_all in {back:?}, all in {:?}",
        t.elapsed()
    );
}
