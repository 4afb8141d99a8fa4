//! The line port (PROTOCOL.md §7) against a broker and server in-process: what an `nc`/`telnet` user sees.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::time::{Duration, Instant};

use support::*;
use testkit::inproc::{broker, server, system};

/// Splits `[HH:MM] rest` into minutes since midnight and `rest`, checking that the prefix
/// is a real wall-clock time.
fn stamped(line: &str) -> (u32, &str) {
    let b = line.as_bytes();
    assert!(
        b.len() > 8 && b[0] == b'[' && b[3] == b':' && b[6] == b']' && b[7] == b' ',
        "no [HH:MM] prefix: {line:?}"
    );
    let num = |s: &str| -> u32 {
        assert!(
            s.len() == 2 && s.bytes().all(|c| c.is_ascii_digit()),
            "not two digits in {line:?}"
        );
        s.parse().expect("digits")
    };
    let (h, m) = (num(&line[1..3]), num(&line[4..6]));
    assert!(h < 24 && m < 60, "not a time of day: {line:?}");
    (h * 60 + m, &line[8..])
}

/// `[HH:MM] rest`: checks the time prefix and returns the rest.
fn body(line: &str) -> &str {
    stamped(line).1
}

/// Reads lines until the server closes the connection; fails if it is still open after
/// [`TIMEOUT`]. Returns the lines read before the close.
fn expect_closed(c: &mut LineClient) -> Vec<String> {
    let deadline = Instant::now() + TIMEOUT;
    let mut lines = Vec::new();
    // `recv_within` answers `None` both at EOF and on a timeout; the raw read after it
    // tells them apart (its buffer is empty once `read_line` has returned 0).
    while let Some(l) = c.recv_within(deadline.saturating_duration_since(Instant::now())) {
        lines.push(l);
    }
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(200));
    c.stream.set_read_timeout(Some(left)).expect("timeout");
    let mut byte = [0u8; 1];
    match c.stream.read(&mut byte) {
        Ok(0) => lines,
        Err(e) if e.kind() == ErrorKind::ConnectionReset => lines,
        Ok(_) => panic!("unexpected data after {lines:?}"),
        Err(e) => panic!("connection still open after {lines:?}: {e}"),
    }
}

#[test]
fn prompt_welcome_and_public_messages_across_ports() {
    let (_b, s) = system();
    // The prompt itself is checked by `LineClient::connect`.
    let (mut alice, welcome) = LineClient::login(s.text, "alice");
    let w = body(&welcome);
    assert!(w.starts_with("-- Welcome alice!"), "{welcome:?}");
    assert!(w.contains("Users online (1): alice"), "{welcome:?}");
    let mut json = JsonClient::login(s.json, "bob");
    assert_eq!(body(&alice.recv_containing("bob joined")), "* bob joined");
    let (mut carol, welcome) = LineClient::login(s.text, "carol");
    assert!(
        body(&welcome).contains("Users online (3): alice, bob, carol"),
        "{welcome:?}"
    );
    assert_eq!(
        body(&alice.recv_containing("carol joined")),
        "* carol joined"
    );

    alice.send("hello from the terminal");
    let chat = json.recv_type("chat");
    assert_eq!(chat["from"]["name"], "alice");
    assert_eq!(chat["from"]["ip"], "127.0.0.1");
    assert_eq!(chat["to"], "Everyone");
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
    let forms = ["@{} one", "/msg {} two", "!msg {} three"];
    let texts = ["one", "two", "three"];

    // Line user to JSON user: a `private` frame stamped with the sender.
    for (form, text) in forms.iter().zip(texts) {
        alice.send(&form.replace("{}", "bob"));
        let p = bob.recv_type("private");
        assert_eq!(p["from"]["name"], "alice", "{form}");
        assert_eq!(p["from"]["ip"], "127.0.0.1", "{form}");
        assert_eq!(p["to"], "bob", "{form}");
        assert_eq!(msg(&p), text, "{form}");
    }
    // Line user to line user.
    for (form, text) in forms.iter().zip(texts) {
        alice.send(&form.replace("{}", "carol"));
        assert_eq!(
            body(&carol.recv_containing("(private)")),
            format!("(private) alice: {text}"),
            "{form}"
        );
    }
    // Nobody else saw the private messages: the next thing from alice that carol sees
    // is her public line (messages from one sender are not reordered).
    alice.send("now for everyone");
    assert_eq!(
        body(&carol.recv_containing("alice")),
        "alice: now for everyone"
    );
    let next = bob.recv_until("a chat or private frame", |v| {
        v["type"] == "chat" || v["type"] == "private"
    });
    assert_eq!(
        next["type"], "chat",
        "bob got someone else's private: {next}"
    );
    assert_eq!(msg(&next), "now for everyone");

    // JSON user to line user.
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
    let mut bob = JsonClient::login(s.json, "bob");
    let (mut carol, _) = LineClient::login(s.text, "carol");
    alice.recv_containing("carol joined");
    for cmd in ["/list", "/who", "!who"] {
        alice.send(cmd);
        assert_eq!(
            body(&alice.recv_containing("Users online")),
            "-- Users online (3): alice, bob, carol",
            "{cmd}"
        );
    }

    alice.send("/time");
    let t = alice.recv().expect("time line");
    let (prefix_minutes, rest) = stamped(&t);
    let hhmmss = rest.strip_prefix("-- ").unwrap_or_else(|| panic!("{t:?}"));
    let b = hhmmss.as_bytes();
    assert!(
        b.len() == 8
            && b[2] == b':'
            && b[5] == b':'
            && [0, 1, 3, 4, 6, 7].iter().all(|&i| b[i].is_ascii_digit()),
        "not HH:MM:SS: {t:?}"
    );
    let (h, m, sec): (u32, u32, u32) = (
        hhmmss[0..2].parse().expect("hh"),
        hhmmss[3..5].parse().expect("mm"),
        hhmmss[6..8].parse().expect("ss"),
    );
    assert!(h < 24 && m < 60 && sec < 60, "{t:?}");
    // The answer and the line's own stamp are the same clock (a minute may tick between).
    let drift = (prefix_minutes + 1440 - (h * 60 + m)) % 1440;
    assert!(
        drift <= 1,
        "the time {hhmmss} disagrees with the stamp of {t:?}"
    );

    alice.send("/help");
    let first = alice.recv().expect("help");
    assert!(body(&first).starts_with("-- Commands:"), "{first:?}");
    for needle in ["@nick text", "/list", "/time", "/help", "/quit"] {
        let l = alice.recv_containing(needle);
        assert!(body(&l).starts_with("-- "), "{l:?}");
    }

    alice.send("/frobnicate now");
    assert!(
        body(&alice.recv_containing("frobnicate"))
            .starts_with("! Error: unknown command /frobnicate"),
    );
    // It was not broadcast: the next message others get from alice is the one after it.
    alice.send("after the typo");
    let chat = bob.recv_type("chat");
    assert_eq!(msg(&chat), "after the typo", "{chat}");
    assert_eq!(
        body(&carol.recv_containing("alice:")),
        "alice: after the typo"
    );
}

#[test]
fn every_quit_form_closes_and_others_see_the_leave() {
    let (_b, s) = system();
    let mut watcher = JsonClient::login(s.json, "watcher");
    let (mut line_watcher, _) = LineClient::login(s.text, "lurker");
    for (i, quit) in ["\\q", "/quit", "!logout"].iter().enumerate() {
        let name = format!("quitter{i}");
        let (mut c, _) = LineClient::login(s.text, &name);
        watcher.recv_until("the join", |v| {
            v["type"] == "join" && v["user"] == name.as_str()
        });
        assert_eq!(
            body(&line_watcher.recv_containing(&name)),
            format!("* {name} joined")
        );
        c.send(quit);
        let last = expect_closed(&mut c);
        assert!(
            last.iter()
                .any(|l| body(l) == format!("-- Goodbye {name}!")),
            "{quit}: {last:?}"
        );
        let leave = watcher.recv_until("the leave", |v| v["type"] == "leave");
        assert_eq!(leave["user"], name.as_str(), "{quit}");
        assert_eq!(
            body(&line_watcher.recv_containing(&name)),
            format!("* {name} left"),
            "{quit}"
        );
    }
    line_watcher.send("/who");
    assert_eq!(
        body(&line_watcher.recv_containing("Users online")),
        "-- Users online (2): lurker, watcher"
    );
}

#[test]
fn a_vanished_line_client_is_announced_as_left() {
    let (_b, s) = system();
    let (mut watcher, _) = LineClient::login(s.text, "watcher");
    let (gone, _) = LineClient::login(s.text, "gone");
    assert_eq!(body(&watcher.recv_containing("gone")), "* gone joined");
    drop(gone);
    assert_eq!(body(&watcher.recv_containing("gone")), "* gone left");
}

#[test]
fn bad_and_taken_nicknames_are_asked_again() {
    let (_b, s) = system();
    let mut json = JsonClient::login(s.json, "alice");
    let mut c = LineClient::connect(s.text);
    // Five attempts are allowed: three bad names, a taken one, then a good one.
    for bad in ["two words", "SERVER", "/slash"] {
        c.send(bad);
        let e = c.recv().expect("an answer");
        assert!(e.starts_with("Error: invalid nickname"), "{bad}: {e:?}");
        assert!(c.read_prompt().contains("nickname"), "{bad}");
    }
    c.send("alice");
    let e = c.recv().expect("an answer");
    assert!(
        e.starts_with("Error") && e.contains("already in use"),
        "{e:?}"
    );
    assert!(c.read_prompt().contains("nickname"));
    c.send("alice2");
    let welcome = c.recv_containing("Welcome");
    assert!(
        body(&welcome).starts_with("-- Welcome alice2!"),
        "{welcome:?}"
    );
    // Only the accepted name joined.
    let join = json.recv_type("join");
    assert_eq!(join["user"], "alice2", "{join}");
    json.send("/list", "");
    let list = json.recv_type("users");
    assert_eq!(users(&list), ["alice", "alice2"]);
}

#[test]
fn invalid_utf8_nickname_is_asked_again() {
    let (_b, s) = system();
    let mut c = LineClient::connect(s.text);
    c.stream.write_all(b"\xc3\x28bob\r\n").expect("write");
    let e = c.recv().expect("an answer");
    assert!(e.starts_with("Error") && e.contains("UTF-8"), "{e:?}");
    assert!(c.read_prompt().contains("nickname"));
    c.send("bob");
    assert!(body(&c.recv_containing("Welcome")).starts_with("-- Welcome bob!"));
}

#[test]
fn too_many_bad_nicknames_close_the_connection() {
    let (_b, s) = system();
    let mut c = LineClient::connect(s.text);
    for _ in 0..4 {
        c.send("no good");
        assert!(
            c.recv()
                .expect("error")
                .starts_with("Error: invalid nickname")
        );
        assert!(c.read_prompt().contains("nickname"));
    }
    c.send("no good");
    let last = expect_closed(&mut c);
    assert!(
        last.iter().any(|l| l.contains("Too many attempts")),
        "{last:?}"
    );
}

#[test]
fn text_from_others_cannot_inject_lines_or_escapes() {
    let (_b, s) = system();
    let (mut line, _) = LineClient::login(s.text, "reader");
    let mut eve = JsonClient::login(s.json, "eve");
    line.recv_containing("eve joined");
    eve.send("*", "hi\r\n[00:00] * x left\x1b[2J");
    let got = line.recv_containing("eve: ");
    let b = body(&got);
    assert!(b.starts_with("eve: hi"), "{got:?}");
    assert!(
        !got.contains('\x1b'),
        "an escape reached the terminal: {got:?}"
    );
    assert!(
        !got.contains('\r'),
        "a carriage return reached the terminal: {got:?}"
    );
    assert!(
        b.contains("[00:00] * x left"),
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
    let mut bob = JsonClient::login(s.json, "bob");
    c.recv_containing("bob joined");
    c.stream.write_all(b"\xc3\x28 oops\r\n").expect("write");
    let e = c.recv_containing("Error");
    assert!(
        body(&e).starts_with("! Error") && e.contains("UTF-8"),
        "{e:?}"
    );
    c.send("/list");
    assert!(c.recv_containing("Users online").contains("alice"));
    // Nothing of the bad line was broadcast; the next good line is.
    c.send("still here");
    assert_eq!(msg(&bob.recv_type("chat")), "still here");
}

#[test]
fn an_overlong_line_closes_with_an_error() {
    let (_b, addr) = broker(&[]);
    let s = server(addr, &["--max-frame", "1000"]);
    let mut watcher = JsonClient::login(s.json, "watcher");
    let (mut c, _) = LineClient::login(s.text, "alice");
    // A line at the limit is fine.
    c.send(&"y".repeat(1000));
    assert_eq!(msg(&watcher.recv_type("chat")).len(), 1000);
    c.send(&"x".repeat(2000));
    let last = expect_closed(&mut c);
    assert!(
        last.iter()
            .any(|l| l.contains("Error") && l.contains("larger than 1000 bytes")),
        "{last:?}"
    );
    let leave = watcher.recv_type("leave");
    assert_eq!(leave["user"], "alice");
    watcher.send("/list", "");
    assert_eq!(users(&watcher.recv_type("users")), ["watcher"]);
}
