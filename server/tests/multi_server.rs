//! One broker, two servers: the user directory, routing and the global order are shared
//! across servers (docs/ARCHITECTURE.md, "Processes"; PROTOCOL.md §6.4).

mod support;

use std::collections::HashMap;
use std::thread;
use std::time::{Duration, Instant};

use support::*;
use testkit::inproc;
use testkit::service::{Kind, Service};

testkit::on_both_backends!(
    names_are_unique_across_servers,
    private_messages_cross_servers_both_ways_with_the_sender_stamped,
    list_on_either_server_shows_users_of_both,
    public_messages_have_one_global_order_on_every_server,
    join_and_leave_notices_reach_both_servers,
    a_killed_server_s_users_leave_and_their_names_are_free_at_once,
    a_frozen_server_is_cut_off_and_rejoins_when_it_thaws,
);

/// The service of `kind` and two servers on it, with `extra` server flags.
fn two_servers_with(kind: Kind, extra: &[&str]) -> (Service, inproc::Server, inproc::Server) {
    let service = Service::start(kind, false);
    let a = service.server(extra);
    let b = service.server(extra);
    (service, a, b)
}

/// The service of `kind` and two servers on it.
fn two_servers(kind: Kind) -> (Service, inproc::Server, inproc::Server) {
    two_servers_with(kind, &[])
}

fn names_are_unique_across_servers(kind: Kind) {
    let (_b, a, b) = two_servers(kind);
    let mut alice = JsonClient::login(a.json, "alice");

    let (mut dup, first) = JsonClient::login_raw(b.json, b"alice");
    assert!(msg(&first).starts_with("Error"), "{first}");
    assert!(msg(&first).contains("already in use"), "{first}");
    dup.expect_closed();

    // And the other way round.
    let mut bob = JsonClient::login(b.json, "bob");
    let (mut dup, first) = JsonClient::login_raw(a.json, b"bob");
    assert!(msg(&first).starts_with("Error"), "{first}");
    assert!(msg(&first).contains("already in use"), "{first}");
    dup.expect_closed();

    // The refused attempts took nothing: the list holds exactly the two originals.
    alice.recv_until("bob's join", |v| v["type"] == "join" && v["user"] == "bob");
    alice.send("/list", "");
    assert_eq!(users(&alice.recv_type("users")), ["alice", "bob"]);

    // A name freed on one server can be taken on the other once its leave is announced.
    alice.send("/quit", "");
    alice.expect_closed();
    await_presence(&mut bob, "leave", &["alice"], TIMEOUT);
    let _alice_on_b = JsonClient::login(b.json, "alice");
}

fn private_messages_cross_servers_both_ways_with_the_sender_stamped(kind: Kind) {
    let (_b, a, b) = two_servers(kind);
    let mut alice = JsonClient::login(a.json, "alice");
    let mut bob = JsonClient::login(b.json, "bob");

    // A -> B, with a spoofed `from`.
    alice.send_raw(br#"{"from":{"name":"SERVER","ip":"6.6.6.6"},"to":"bob","msg":"from A"}"#);
    let p = bob.recv_type("private");
    assert_eq!(p["from"]["name"], "alice", "{p}");
    assert_eq!(p["from"]["ip"], "127.0.0.1", "{p}");
    assert_eq!(p["to"], "bob");
    assert_eq!(msg(&p), "from A");
    assert!(
        p["id"].as_u64().is_some() && p["ts"].as_u64().is_some(),
        "{p}"
    );

    // B -> A, claiming to be alice.
    bob.send_raw(br#"{"from":{"name":"alice","ip":"1.2.3.4"},"to":"alice","msg":"from B"}"#);
    let p = alice.recv_type("private");
    assert_eq!(p["from"]["name"], "bob", "{p}");
    assert_eq!(p["from"]["ip"], "127.0.0.1", "{p}");
    assert_eq!(p["to"], "alice");
    assert_eq!(msg(&p), "from B");

    // A private message reaches only its recipient: a third user on B sees nothing.
    let mut carol = JsonClient::login(b.json, "carol");
    alice.recv_until("carol's join", |v| {
        v["type"] == "join" && v["user"] == "carol"
    });
    alice.send("bob", "just for bob");
    assert_eq!(msg(&bob.recv_type("private")), "just for bob");
    carol.expect_silence(Duration::from_millis(300));

    // Unknown users are reported to the sender, whichever server asks.
    alice.send("nobody", "hello?");
    let e = alice.recv_type("error");
    assert!(
        msg(&e).starts_with("Error") && msg(&e).contains("nobody"),
        "{e}"
    );
}

fn list_on_either_server_shows_users_of_both(kind: Kind) {
    let (_b, a, b) = two_servers(kind);
    let mut alice = JsonClient::login(a.json, "alice");
    let mut bob = JsonClient::login(b.json, "bob");
    let mut carol = JsonClient::login(a.json, "carol");
    let (mut dave, welcome) = JsonClient::login_raw(b.json, b"dave");
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    assert_eq!(
        users(&welcome),
        ["alice", "bob", "carol", "dave"],
        "the welcome lists users of both servers: {welcome}"
    );
    // Each server's replica has caught up once its clients saw the joins.
    await_presence(&mut alice, "join", &["bob", "carol", "dave"], TIMEOUT);
    await_presence(&mut bob, "join", &["carol", "dave"], TIMEOUT);

    for c in [&mut alice, &mut bob, &mut carol, &mut dave] {
        c.send("/list", "");
        let l = c.recv_type("users");
        assert_eq!(
            users(&l),
            ["alice", "bob", "carol", "dave"],
            "{}: {l}",
            c.name
        );
        assert!(msg(&l).contains("alice, bob, carol, dave"), "{l}");
    }

    // A departure on B is reflected on A.
    dave.send("/quit", "");
    dave.expect_closed();
    await_presence(&mut alice, "leave", &["dave"], TIMEOUT);
    alice.send("/list", "");
    assert_eq!(users(&alice.recv_type("users")), ["alice", "bob", "carol"]);
    await_presence(&mut bob, "leave", &["dave"], TIMEOUT);
    bob.send("/list", "");
    assert_eq!(users(&bob.recv_type("users")), ["alice", "bob", "carol"]);
}

/// One received public message: (id, sender, text).
type Chat = (u64, String, String);

/// Reads `n` chat frames (other frames are skipped).
fn collect_chats(c: &mut JsonClient, n: usize, deadline: Instant) -> Vec<Chat> {
    let mut got = Vec::with_capacity(n);
    while got.len() < n {
        let f = recv_until_by(c, deadline, &format!("chat #{}", got.len() + 1), |v| {
            v["type"] == "chat"
        });
        assert_eq!(f["to"], "Everyone", "{f}");
        let id = f["id"]
            .as_u64()
            .unwrap_or_else(|| panic!("chat without id: {f}"));
        got.push((
            id,
            f["from"]["name"].as_str().unwrap_or_default().to_string(),
            msg(&f).to_string(),
        ));
    }
    got
}

fn public_messages_have_one_global_order_on_every_server(kind: Kind) {
    const PER_SENDER: usize = 50;
    // Each sender bursts 50 messages: past the default rate limit, which is not under test.
    let (_b, a, b) = two_servers_with(kind, &["--flood-rate", "off"]);
    // Listeners first, so they are logged in before anything is sent.
    let listeners = vec![
        JsonClient::login(a.json, "la1"),
        JsonClient::login(a.json, "la2"),
        JsonClient::login(b.json, "lb1"),
        JsonClient::login(b.json, "lb2"),
    ];
    let senders = vec![
        JsonClient::login(a.json, "s1"),
        JsonClient::login(b.json, "s2"),
        JsonClient::login(a.json, "s3"),
    ];
    let n_senders = senders.len();
    let total = PER_SENDER * n_senders;
    let deadline = Instant::now() + Duration::from_secs(30);

    let listen: Vec<_> = listeners
        .into_iter()
        .map(|mut c| {
            thread::spawn(move || (c.name.clone(), collect_chats(&mut c, total, deadline)))
        })
        .collect();
    let send: Vec<_> = senders
        .into_iter()
        .map(|mut c| {
            thread::spawn(move || {
                for i in 0..PER_SENDER {
                    // Mix the two public forms.
                    let to = if i % 3 == 0 { "/shout" } else { "*" };
                    let text = format!("{}#{i}", c.name);
                    c.send(to, &text);
                }
                c
            })
        })
        .collect();
    let senders: Vec<JsonClient> = send
        .into_iter()
        .map(|h| h.join().expect("sender"))
        .collect();
    let seqs: Vec<(String, Vec<Chat>)> = listen
        .into_iter()
        .map(|h| h.join().expect("listener"))
        .collect();

    let (first_name, reference) = &seqs[0];
    for (name, seq) in &seqs[1..] {
        assert_eq!(
            seq, reference,
            "{name} saw a different sequence than {first_name}"
        );
    }
    // Ids strictly increase.
    for w in reference.windows(2) {
        assert!(
            w[0].0 < w[1].0,
            "ids not increasing: {:?} then {:?}",
            w[0],
            w[1]
        );
    }
    // Every message is there exactly once, stamped with its real sender, in its sender's order.
    let mut next: HashMap<String, usize> = HashMap::new();
    for (_, from, text) in reference {
        let (who, i) = text.split_once('#').expect("text format");
        assert_eq!(who, from, "stamped sender matches the author of {text}");
        let i: usize = i.parse().expect("index");
        let expected = next.entry(from.clone()).or_insert(0);
        assert_eq!(i, *expected, "{from}'s messages reordered or lost");
        *expected += 1;
    }
    assert_eq!(next.len(), n_senders);
    assert!(next.values().all(|n| *n == PER_SENDER), "{next:?}");

    // The senders see everyone else's messages in the same global order, without their own.
    let deadline = Instant::now() + TIMEOUT;
    for mut s in senders {
        let got = collect_chats(&mut s, total - PER_SENDER, deadline);
        let expected: Vec<Chat> = reference
            .iter()
            .filter(|(_, from, _)| *from != s.name)
            .cloned()
            .collect();
        assert_eq!(got, expected, "{} saw a different order", s.name);
    }
}

fn join_and_leave_notices_reach_both_servers(kind: Kind) {
    let (_b, a, b) = two_servers(kind);
    let mut alice = JsonClient::login(a.json, "alice");
    let mut bob = JsonClient::login(b.json, "bob");
    await_presence(&mut alice, "join", &["bob"], TIMEOUT);

    let mut carol = JsonClient::login(a.json, "carol");
    await_presence(&mut alice, "join", &["carol"], TIMEOUT);
    await_presence(&mut bob, "join", &["carol"], TIMEOUT);

    let dave = JsonClient::login(b.json, "dave");
    await_presence(&mut alice, "join", &["dave"], TIMEOUT);
    await_presence(&mut bob, "join", &["dave"], TIMEOUT);
    await_presence(&mut carol, "join", &["dave"], TIMEOUT);

    // A clean /quit on A and an abrupt disconnect on B are both announced everywhere.
    carol.send("/quit", "");
    carol.expect_closed();
    await_presence(&mut alice, "leave", &["carol"], TIMEOUT);
    await_presence(&mut bob, "leave", &["carol"], TIMEOUT);
    drop(dave);
    await_presence(&mut alice, "leave", &["dave"], TIMEOUT);
    await_presence(&mut bob, "leave", &["dave"], TIMEOUT);
}

fn a_killed_server_s_users_leave_and_their_names_are_free_at_once(kind: Kind) {
    // SIGKILL needs processes.
    let service = Service::start(kind, true);
    let mut a = service.server_proc(&[]);
    let b = service.server_proc(&[]);
    let mut bob = JsonClient::login(b.json, "bob");
    let _alice = JsonClient::login(a.json, "alice");
    let _carol = JsonClient::login(a.json, "carol");
    await_presence(&mut bob, "join", &["alice", "carol"], TIMEOUT);

    a.proc.signal(libc::SIGKILL);
    let killed = Instant::now();
    assert_eq!(a.proc.wait_exit(), None, "killed by the signal");
    // The bound: the broker notices within 2 s (here: the link's EOF, at once); a NATS
    // cluster within 5 s (the dead server's beats stop: README, "Scaling out").
    await_presence(
        &mut bob,
        "leave",
        &["alice", "carol"],
        service.death_bound(),
    );
    eprintln!("leaves seen {:?} after the kill", killed.elapsed());

    bob.send("/list", "");
    assert_eq!(users(&bob.recv_type("users")), ["bob"]);
    let _alice2 = JsonClient::login(b.json, "alice");
    let _carol2 = JsonClient::login(b.json, "carol");
    await_presence(&mut bob, "join", &["alice", "carol"], TIMEOUT);
    bob.send("/list", "");
    assert_eq!(users(&bob.recv_type("users")), ["alice", "bob", "carol"]);
}

fn a_frozen_server_is_cut_off_and_rejoins_when_it_thaws(kind: Kind) {
    // On the broker, 300 ms heartbeats: a link silent for 900 ms is dead. SIGSTOP needs
    // processes.
    let beat = ["--heartbeat-ms", "300"];
    let service = match kind {
        Kind::Broker => {
            let (p, addr) = testkit::broker(&beat);
            Service::BrokerProc(p, addr)
        }
        _ => Service::start(kind, true),
    };
    let a = service.server_proc(&beat);
    let b = service.server_proc(&beat);
    let mut bob = JsonClient::login(b.json, "bob");
    let mut alice = JsonClient::login(a.json, "alice");
    await_presence(&mut bob, "join", &["alice"], TIMEOUT);

    // SIGSTOP: no FIN, no RST, just silence, like a hung process or a pulled cable.
    a.proc.signal(libc::SIGSTOP);
    let frozen = Instant::now();
    await_presence(&mut bob, "leave", &["alice"], service.death_bound());
    eprintln!("frozen server cut off after {:?}", frozen.elapsed());
    bob.send("/list", "");
    assert_eq!(users(&bob.recv_type("users")), ["bob"]);

    // Thawed, the server finds its link dead, reconnects and re-registers alice, who
    // stayed connected all along.
    a.proc.signal(libc::SIGCONT);
    await_presence(&mut bob, "join", &["alice"], TIMEOUT);
    told_back_and_heard(&mut alice, &mut bob);
}
