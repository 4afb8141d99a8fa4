//! The JSON port against a broker and server in-process: login, welcome, commands, routing, errors
//! (PROTOCOL.md §2–§4).

mod support;

use std::time::Duration;

use support::*;
use testkit::inproc::{broker, server, system};

#[test]
fn raw_name_login_gets_a_welcome_with_the_user_list() {
    let (_b, s) = system();
    let _alice = JsonClient::login(s.json, "alice");
    let (mut bob, welcome) = JsonClient::login_raw(s.json, b"bob");
    assert_eq!(welcome["type"], "welcome");
    assert_eq!(welcome["from"]["name"], "SERVER");
    assert_eq!(welcome["to"], "bob");
    assert_eq!(users(&welcome), ["alice", "bob"]);
    assert!(msg(&welcome).starts_with("Welcome bob"), "{welcome}");
    // Nothing unasked follows the welcome.
    bob.expect_silence(Duration::from_millis(300));
}

#[test]
fn name_with_newline_and_name_glued_to_the_first_frame() {
    let (_b, s) = system();
    let (_c, w) = JsonClient::login_raw(s.json, b"carol\r\n");
    assert_eq!(w["type"], "welcome", "{w}");
    let (mut d, w) = JsonClient::login_raw(
        s.json,
        br#"dave{"from":{"name":"dave","ip":"x"},"to":"/list","msg":""}"#,
    );
    assert_eq!(w["type"], "welcome", "the welcome comes first: {w}");
    let list = d.recv_type("users");
    assert_eq!(users(&list), ["carol", "dave"]);
}

#[test]
fn join_notices_reach_others_but_not_the_joiner() {
    let (_b, s) = system();
    let mut alice = JsonClient::login(s.json, "alice");
    let mut bob = JsonClient::login(s.json, "bob");
    let join = alice.recv_type("join");
    assert_eq!(join["user"], "bob");
    assert!(
        join["id"].as_u64().is_some() && join["ts"].as_u64().is_some(),
        "{join}"
    );
    bob.expect_silence(Duration::from_millis(200));
}

#[test]
fn duplicate_name_is_refused_and_closed() {
    let (_b, s) = system();
    let _alice = JsonClient::login(s.json, "alice");
    let (mut dup, first) = JsonClient::login_raw(s.json, b"alice");
    assert!(msg(&first).starts_with("Error"), "{first}");
    assert!(msg(&first).contains("already in use"), "{first}");
    assert_eq!(first["type"], "error");
    dup.expect_closed();
}

#[test]
fn invalid_names_are_refused_and_closed() {
    let (_b, s) = system();
    let long = "x".repeat(33);
    let cases: Vec<&[u8]> = vec![
        b"\n",
        b"SERVER",
        b"server",
        b"Everyone",
        b"/list",
        b"!who",
        b"@bob",
        b"\\q",
        b"a b",
        b"tab\there",
        long.as_bytes(),
        b"\xff\xfe",
    ];
    for raw in cases {
        let (mut c, first) = JsonClient::login_raw(s.json, raw);
        assert!(msg(&first).starts_with("Error"), "{raw:?}: {first}");
        c.expect_closed();
    }
    // The refused names did not take a slot: a valid login still works.
    let _ok = JsonClient::login(s.json, "valid");
}

#[test]
fn login_timeout_closes_a_silent_connection() {
    let (_b, addr) = broker(&[]);
    let s = server(addr, &["--login-timeout-ms", "300"]);
    let mut silent = JsonClient::connect(s.json);
    let frames = silent.expect_closed();
    assert!(
        frames.iter().any(|f| msg(f).starts_with("Error")),
        "{frames:?}"
    );
}

#[test]
fn sender_is_stamped_by_the_server() {
    let (_b, s) = system();
    let mut alice = JsonClient::login(s.json, "alice");
    let mut bob = JsonClient::login(s.json, "bob");
    alice.recv_type("join");
    // Alice claims to be SERVER and then bob: the server ignores `from`.
    alice.send_raw(br#"{"from":{"name":"SERVER","ip":"6.6.6.6"},"to":"bob","msg":"trust me"}"#);
    alice.send_raw(br#"{"from":{"name":"bob","ip":"6.6.6.6"},"to":"*","msg":"i am bob"}"#);
    let p = bob.recv_type("private");
    assert_eq!(p["from"]["name"], "alice");
    assert_eq!(p["from"]["ip"], "127.0.0.1");
    assert_eq!(p["to"], "bob");
    assert_eq!(msg(&p), "trust me");
    let c = bob.recv_type("chat");
    assert_eq!(c["from"]["name"], "alice");
    assert_eq!(c["to"], "Everyone");
}

#[test]
fn shout_is_confirmed_star_is_not_and_neither_echoes() {
    let (_b, s) = system();
    let mut alice = JsonClient::login(s.json, "alice");
    let mut bob = JsonClient::login(s.json, "bob");
    let mut carol = JsonClient::login(s.json, "carol");
    alice.recv_until("carol's join", |v| v["user"] == "carol");
    bob.recv_type("join");
    alice.send("/shout", "@bob look");
    let confirm = alice.recv_type("system");
    assert_eq!(msg(&confirm), "Message sent to 2 users");
    for c in [&mut bob, &mut carol] {
        let m = c.recv_type("chat");
        assert_eq!(
            msg(&m),
            "@bob look",
            "public text is never parsed for commands"
        );
        assert!(m["id"].as_u64().is_some());
    }
    alice.send("*", "quiet");
    assert_eq!(msg(&bob.recv_type("chat")), "quiet");
    assert_eq!(msg(&carol.recv_type("chat")), "quiet");
    // No echo and no confirmation for `*`.
    alice.expect_silence(Duration::from_millis(300));
}

#[test]
fn private_messages_and_unknown_recipients() {
    let (_b, s) = system();
    let mut alice = JsonClient::login(s.json, "alice");
    let mut bob = JsonClient::login(s.json, "bob");
    let mut carol = JsonClient::login(s.json, "carol");
    alice.send("bob", "psst");
    let p = bob.recv_type("private");
    assert_eq!(
        (p["from"]["name"].as_str(), msg(&p)),
        (Some("alice"), "psst")
    );
    alice.send("zed", "anyone?");
    let e = alice.recv_type("error");
    assert!(
        msg(&e).starts_with("Error") && msg(&e).contains("zed"),
        "{e}"
    );
    // Sending *to* Everyone is not a broadcast (the seeds' heartbeats do this).
    alice.send("Everyone", "heartbeat");
    let e = alice.recv_type("error");
    assert!(msg(&e).contains("Everyone"), "{e}");
    carol.expect_silence(Duration::from_millis(300));
}

#[test]
fn list_time_help_standard() {
    let (_b, s) = system();
    let mut alice = JsonClient::login(s.json, "alice");
    let _bob = JsonClient::login(s.json, "bob");
    alice.recv_type("join");
    alice.send("/list", "");
    let l = alice.recv_type("users");
    assert_eq!(users(&l), ["alice", "bob"]);
    assert!(msg(&l).contains("alice, bob"), "{l}");
    alice.send("/time", "");
    let t = alice.recv_type("system");
    let text = msg(&t);
    assert!(
        text.len() == 8 && text.as_bytes()[2] == b':' && text.as_bytes()[5] == b':',
        "HH:MM:SS expected: {t}"
    );
    alice.send("/help", "");
    let h = alice.recv_type("system");
    for cmd in ["/list", "/time", "/shout", "/standard", "/quit"] {
        assert!(msg(&h).contains(cmd), "help lacks {cmd}: {h}");
    }
    alice.send("/standard", "");
    let st = alice.recv_type("system");
    assert!(
        msg(&st).contains("\"from\"")
            && msg(&st).contains("\"to\"")
            && msg(&st).contains("\"msg\""),
        "{st}"
    );
    alice.send("/bogus", "");
    assert!(msg(&alice.recv_type("error")).contains("/bogus"));
}

#[test]
fn quit_says_goodbye_closes_and_others_see_the_leave() {
    let (_b, s) = system();
    let mut alice = JsonClient::login(s.json, "alice");
    let mut bob = JsonClient::login(s.json, "bob");
    alice.recv_type("join");
    bob.send("/quit", "");
    let frames = bob.expect_closed();
    assert!(
        frames.iter().any(|f| msg(f).contains("Goodbye")),
        "{frames:?}"
    );
    let leave = alice.recv_type("leave");
    assert_eq!(leave["user"], "bob");
    // The name is free again.
    let _bob2 = JsonClient::login(s.json, "bob");
}

#[test]
fn a_stream_of_back_to_back_objects_is_parsed_in_order() {
    let (_b, addr) = broker(&[]);
    // 100 frames in one burst: far over the default rate limit, which is not under test.
    let s = server(addr, &["--flood-rate", "off"]);
    let mut alice = JsonClient::login(s.json, "alice");
    let mut bob = JsonClient::login(s.json, "bob");
    alice.recv_type("join");
    let mut burst = Vec::new();
    for i in 0..100 {
        let sep: &[u8] = match i % 3 {
            0 => b"",
            1 => b"\n",
            _ => b" \r\n\t",
        };
        burst.extend_from_slice(
            format!(r#"{{"from":{{"name":"alice","ip":"x"}},"to":"*","msg":"m{i} {{}}[]\"q\""}}"#)
                .as_bytes(),
        );
        burst.extend_from_slice(sep);
    }
    // Split the burst at awkward places across writes.
    for chunk in burst.chunks(7) {
        alice.send_raw(chunk);
    }
    let mut last_id = 0;
    for i in 0..100 {
        let m = bob.recv_type("chat");
        assert_eq!(msg(&m), format!("m{i} {{}}[]\"q\""));
        let id = m["id"].as_u64().unwrap_or(0);
        assert!(id > last_id, "ids increase");
        last_id = id;
    }
}

#[test]
fn bad_frames_get_errors_and_the_connection_stays() {
    let (_b, s) = system();
    let mut alice = JsonClient::login(s.json, "alice");
    alice.send_raw(br#"{"to": nope}"#);
    assert!(msg(&alice.recv_type("error")).contains("not valid JSON"));
    alice.send_raw(b"{\"to\":\"/list\",\"msg\":\"\xff\xfe\"}");
    assert!(msg(&alice.recv_type("error")).contains("UTF-8"));
    alice.send_raw(br#"{"to": 42, "msg": []}"#);
    assert!(msg(&alice.recv_type("error")).contains("schema"));
    alice.send_raw(b"just some text\n");
    assert!(msg(&alice.recv_type("error")).contains("JSON object"));
    alice.send("/list", "");
    assert_eq!(users(&alice.recv_type("users")), ["alice"]);
}

#[test]
fn oversized_frame_gets_an_error_and_closes() {
    let (_b, addr) = broker(&[]);
    let s = server(addr, &["--max-frame", "2000"]);
    let mut alice = JsonClient::login(s.json, "alice");
    let mut bob = JsonClient::login(s.json, "bob");
    alice.send("*", &"y".repeat(1500));
    assert_eq!(
        msg(&bob.recv_type("chat")).len(),
        1500,
        "a frame under the limit passes"
    );
    alice.send("*", &"x".repeat(5000));
    let frames = alice.expect_closed();
    assert!(
        frames
            .iter()
            .any(|f| msg(f).starts_with("Error") && msg(f).contains("2000")),
        "{frames:?}"
    );
    let leave = bob.recv_type("leave");
    assert_eq!(leave["user"], "alice");
}

#[test]
fn large_payloads_arrive_intact() {
    let (_b, s) = system();
    let mut alice = JsonClient::login(s.json, "alice");
    let mut bob = JsonClient::login(s.json, "bob");
    alice.recv_type("join");
    let body: String = (0..50_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    for _ in 0..5 {
        alice.send("bob", &body);
        alice.send("*", &body);
    }
    for _ in 0..5 {
        assert_eq!(msg(&bob.recv_type("private")), body);
        assert_eq!(msg(&bob.recv_type("chat")), body);
    }
}

#[test]
fn a_large_room_summarises_presence_instead_of_announcing_every_join() {
    let (_b, addr) = broker(&[]);
    let s = server(addr, &["--presence-limit", "2"]);
    let mut alice = JsonClient::login(s.json, "alice");
    let _bob = JsonClient::login(s.json, "bob");
    assert_eq!(
        alice.recv_type("join")["user"],
        "bob",
        "small room: joins are announced"
    );
    let (mut carol, welcome) = JsonClient::login_raw(s.json, b"carol");
    assert_eq!(welcome["type"], "welcome");
    assert!(
        welcome.get("users").is_none(),
        "a large room's welcome carries the count: {welcome}"
    );
    assert!(msg(&welcome).contains("3 users online"), "{welcome}");
    // No join frame for carol; a summary comes instead (every 5 s).
    let summary = alice.recv_until("the presence summary", |v| {
        v["type"] == "join" || msg(v).contains("users online")
    });
    assert_eq!(summary["type"], "system", "{summary}");
    assert!(
        msg(&summary).contains("3 users online (1 joined, 0 left"),
        "{summary}"
    );
    carol.send("/list", "");
    assert_eq!(users(&carol.recv_type("users")), ["alice", "bob", "carol"]);
}

#[test]
fn a_burst_of_joins_past_the_budget_is_told_as_one_list() {
    let (_b, addr) = broker(&[]);
    // Budget 2 frames per second: bob's join (1 frame, to alice) fits, carol's (2 more)
    // does not, so carol and dave are told as one `users` frame a second later.
    let s = server(addr, &["--presence-budget", "2"]);
    let mut alice = JsonClient::login(s.json, "alice");
    let _bob = JsonClient::login(s.json, "bob");
    assert_eq!(alice.recv_type("join")["user"], "bob");
    let _carol = JsonClient::login(s.json, "carol");
    let _dave = JsonClient::login(s.json, "dave");
    let list = alice.recv_until("the list after the burst", |v| {
        v["type"] == "join" || v["type"] == "users"
    });
    assert_eq!(
        list["type"], "users",
        "no join frame past the budget: {list}"
    );
    assert_eq!(users(&list), ["alice", "bob", "carol", "dave"]);
    assert!(
        msg(&list).starts_with("2 joined and 0 left just now"),
        "{list}"
    );
    assert_eq!(list["to"], "Everyone");
}

/// Sends `{"to":TO,"msg":MSG,"label":LABEL}`.
fn send_labelled(c: &mut JsonClient, to: &str, m: &str, label: &str) {
    let frame = serde_json::json!({"to": to, "msg": m, "label": label});
    c.send_raw(format!("{frame}\n").as_bytes());
}

#[test]
fn a_labelled_message_is_confirmed_with_its_label_and_id_and_so_is_its_error() {
    let (_b, s) = system();
    let mut alice = JsonClient::login(s.json, "alice");
    let mut bob = JsonClient::login(s.json, "bob");
    alice.recv_type("join");

    // A private message: unlabelled, no answer (PROTOCOL.md §4.1); labelled, a confirmation.
    alice.send("bob", "plain");
    send_labelled(&mut alice, "bob", "psst", "p1");
    let plain = bob.recv_type("private");
    assert_eq!(plain.get("label"), None, "a recipient never sees a label");
    let psst = bob.recv_type("private");
    assert_eq!(psst.get("label"), None, "{psst}");
    let ok = alice.recv().expect("the confirmation");
    assert_eq!(
        (
            ok["type"].as_str(),
            msg(&ok),
            ok["label"].as_str(),
            &ok["id"]
        ),
        (
            Some("system"),
            "Message sent to 1 user",
            Some("p1"),
            &psst["id"]
        ),
        "the first answer is the labelled one's: {ok}"
    );

    // Public, both ways: the confirmation names the id everyone else got.
    send_labelled(&mut alice, "*", "hello", "s1");
    let hello = bob.recv_type("chat");
    let ok = alice.recv().expect("a confirmation");
    assert_eq!(
        (ok["label"].as_str(), &ok["id"]),
        (Some("s1"), &hello["id"]),
        "{ok}"
    );
    alice.send("/shout", "unlabelled shout");
    let shout = bob.recv_type("chat");
    let ok = alice.recv().expect("a confirmation");
    assert_eq!((ok.get("label"), &ok["id"]), (None, &shout["id"]), "{ok}");

    // A failure carries the label: at once (a name nobody can have) or from the broker.
    send_labelled(&mut alice, "Everyone", "x", "e1");
    let e = alice.recv_type("error");
    assert_eq!(
        (e["code"].as_str(), e["label"].as_str()),
        (Some("not_online"), Some("e1")),
        "{e}"
    );
    send_labelled(&mut alice, "zed", "are you there?", "z1");
    let e = alice.recv_type("error");
    assert_eq!(
        (e["code"].as_str(), e["label"].as_str()),
        (Some("not_online"), Some("z1")),
        "{e}"
    );
    let long = "x".repeat(chat_common::frame::MAX_LABEL + 1);
    send_labelled(&mut alice, "bob", "never sent", &long);
    let e = alice.recv_type("error");
    assert_eq!(e.get("label"), None, "a bad label is not echoed: {e}");

    // Any command's answer carries it.
    send_labelled(&mut alice, "/list", "", "l1");
    let list = alice.recv_type("users");
    assert_eq!(list["label"], "l1");
    alice.send("/time", "");
    assert_eq!(
        alice.recv_type("system").get("label"),
        None,
        "only that answer"
    );
    bob.expect_silence(Duration::from_millis(100));
}
