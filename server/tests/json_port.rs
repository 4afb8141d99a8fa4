//! The JSON port against the real binaries: login, welcome, commands, routing, errors
//! (design §2).

mod support;

use std::time::Duration;

use support::*;

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
