//! The line port (design §3) against the real binaries: what an `nc`/`telnet` user sees.

mod support;

use std::io::Write;
use std::time::Duration;

use support::*;

/// `[HH:MM] rest`: checks the time prefix and returns the rest.
fn body(line: &str) -> &str {
    let b = line.as_bytes();
    assert!(
        b.len() > 8 && b[0] == b'[' && b[3] == b':' && b[6] == b']' && b[7] == b' ',
        "no [HH:MM] prefix: {line:?}"
    );
    &line[8..]
}

#[test]
fn prompt_welcome_and_public_messages_across_ports() {
    let (_b, s) = system();
    let (mut alice, welcome) = LineClient::login(s.text, "alice");
    assert!(
        body(&welcome).starts_with("-- Welcome alice!"),
        "{welcome:?}"
    );
    let mut json = JsonClient::login(s.json, "bob");
    assert_eq!(body(&alice.recv_containing("bob joined")), "* bob joined");
    let (mut carol, _) = LineClient::login(s.text, "carol");

    alice.send("hello from the terminal");
    let chat = json.recv_type("chat");
    assert_eq!(chat["from"]["name"], "alice");
    assert_eq!(chat["from"]["ip"], "127.0.0.1");
    assert_eq!(msg(&chat), "hello from the terminal");
    assert_eq!(
        body(&carol.recv_containing("hello")),
        "alice: hello from the terminal"
    );

    json.send("*", "hi terminal people");
    assert_eq!(
        body(&alice.recv_containing("terminal people")),
        "bob: hi terminal people"
    );
    assert_eq!(
        body(&carol.recv_containing("terminal people")),
        "bob: hi terminal people"
    );
}

#[test]
fn every_private_message_form_works_both_ways() {
    let (_b, s) = system();
    let (mut alice, _) = LineClient::login(s.text, "alice");
    let (mut carol, _) = LineClient::login(s.text, "carol");
    let mut bob = JsonClient::login(s.json, "bob");
    for (i, form) in ["@bob one", "/msg bob two", "!msg bob three"]
        .iter()
        .enumerate()
    {
        alice.send(form);
        let p = bob.recv_type("private");
        assert_eq!(p["from"]["name"], "alice", "{form}");
        assert_eq!(msg(&p), ["one", "two", "three"][i]);
    }
    alice.send("@carol psst");
    assert_eq!(
        body(&carol.recv_containing("psst")),
        "(private) alice: psst"
    );
    bob.send("alice", "back at you");
    assert_eq!(
        body(&alice.recv_containing("back at you")),
        "(private) bob: back at you"
    );
    alice.send("@nobody hello?");
    assert!(
        body(&alice.recv_containing("nobody")).starts_with("! Error: user 'nobody' is not online")
    );
}

#[test]
fn list_who_time_help_and_unknown_commands() {
    let (_b, s) = system();
    let (mut alice, _) = LineClient::login(s.text, "alice");
    let _bob = JsonClient::login(s.json, "bob");
    alice.recv_containing("bob joined");
    for cmd in ["/list", "/who", "!who"] {
        alice.send(cmd);
        assert_eq!(
            body(&alice.recv_containing("Users online")),
            "-- Users online (2): alice, bob",
            "{cmd}"
        );
    }
    alice.send("/time");
    let t = alice.recv().expect("time line");
    let hhmmss = body(&t).trim_start_matches("-- ");
    assert!(
        hhmmss.len() == 8 && hhmmss.as_bytes()[2] == b':' && hhmmss.as_bytes()[5] == b':',
        "{t:?}"
    );
    alice.send("/help");
    let first = alice.recv_containing("Commands:");
    assert!(body(&first).starts_with("-- "));
    alice.recv_containing("@nick text");
    alice.send("/frobnicate now");
    assert!(
        body(&alice.recv_containing("frobnicate"))
            .starts_with("! Error: unknown command /frobnicate")
    );
}

#[test]
fn every_quit_form_closes_and_others_see_the_leave() {
    let (_b, s) = system();
    let mut watcher = JsonClient::login(s.json, "watcher");
    for (i, quit) in ["\\q", "/quit", "!logout"].iter().enumerate() {
        let name = format!("quitter{i}");
        let (mut c, _) = LineClient::login(s.text, &name);
        watcher.recv_until("the join", |v| {
            v["type"] == "join" && v["user"] == name.as_str()
        });
        c.send(quit);
        assert!(c.recv_containing("Goodbye").contains(&name));
        assert_eq!(c.recv_within(TIMEOUT), None, "{quit} closes the connection");
        let leave = watcher.recv_until("the leave", |v| v["type"] == "leave");
        assert_eq!(leave["user"], name.as_str(), "{quit}");
    }
}

#[test]
fn bad_and_taken_nicknames_are_asked_again() {
    let (_b, s) = system();
    let _alice = JsonClient::login(s.json, "alice");
    let mut c = LineClient::connect(s.text);
    c.send("two words");
    assert!(c.recv_containing("Error").contains("invalid nickname"));
    assert!(c.read_prompt().contains("nickname"));
    c.send("alice");
    assert!(c.recv_containing("Error").contains("already in use"));
    assert!(c.read_prompt().contains("nickname"));
    c.send("alice2");
    assert!(body(&c.recv_containing("Welcome")).contains("Welcome alice2"));
}

#[test]
fn text_from_others_cannot_inject_lines_or_escapes() {
    let (_b, s) = system();
    let (mut line, _) = LineClient::login(s.text, "reader");
    let mut eve = JsonClient::login(s.json, "eve");
    line.recv_containing("eve joined");
    eve.send("*", "hi\r\n[00:00] * admin left\x1b[2J");
    let got = line.recv_containing("hi");
    assert!(!got.contains('\x1b'), "{got:?}");
    assert!(
        got.contains("admin left"),
        "the text stays on the same line: {got:?}"
    );
    eve.send("*", "next");
    assert_eq!(
        body(&line.recv().expect("a line")),
        "eve: next",
        "no extra line was injected"
    );
}

#[test]
fn invalid_utf8_is_refused_and_the_connection_stays() {
    let (_b, s) = system();
    let (mut c, _) = LineClient::login(s.text, "alice");
    c.stream.write_all(b"\xc3\x28 oops\r\n").expect("write");
    assert!(c.recv_containing("Error").contains("UTF-8"));
    c.send("/list");
    assert!(c.recv_containing("Users online").contains("alice"));
}

#[test]
fn an_overlong_line_closes_with_an_error() {
    let (_b, addr) = broker(&[]);
    let s = server(addr, &["--max-frame", "1000"]);
    let (mut c, _) = LineClient::login(s.text, "alice");
    c.send(&"x".repeat(2000));
    assert!(
        c.recv_containing("Error")
            .contains("larger than 1000 bytes")
    );
    assert_eq!(c.recv_within(Duration::from_secs(5)), None);
}
