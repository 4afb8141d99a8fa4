//! The client's state layer, driven by events and user actions, without a window or socket.

use std::time::{Duration, Instant};

use chat_common::command::{Dialect, help};
use chat_common::{ClientFrame, ErrorCode, FrameKind, Sender, ServerFrame};
use gui_client::state::{
    Action, ChatState, ConnectForm, Delivery, GHOST_RETRIES, LineKind, NetEvent, Phase,
    TlsSettings, error_code,
};

fn form(name: &str) -> ConnectForm {
    ConnectForm {
        host: "127.0.0.1".into(),
        port: "65432".into(),
        name: name.into(),
        ..ConnectForm::default()
    }
}

fn frame(kind: FrameKind, from: &str, msg: &str) -> ServerFrame {
    let mut f = ServerFrame::new(
        Sender {
            name: from.into(),
            ip: "127.0.0.1".into(),
        },
        "alice",
        msg,
        kind,
    );
    f.ts = Some(1_700_000_000_000);
    f
}

/// An error frame of a server that sends codes, with the given text.
fn coded(code: ErrorCode, msg: &str) -> ServerFrame {
    let mut f = frame(FrameKind::Error, "SERVER", msg);
    f.code = Some(code);
    f
}

fn welcome(users: &[&str]) -> ServerFrame {
    let mut f = frame(FrameKind::Welcome, "SERVER", "Welcome alice!");
    f.users = Some(users.iter().map(|s| s.to_string()).collect());
    f
}

/// A state logged in as alice on connection 1.
fn online() -> ChatState {
    let mut s = ChatState::new(form("alice"), 1000);
    let actions = s.connect_clicked();
    assert_eq!(
        actions,
        vec![Action::Connect {
            conn: 1,
            addr: "127.0.0.1:65432".into(),
            name: "alice".into(),
            tls: None,
        }]
    );
    let after = s.on_event(
        NetEvent::Frame {
            conn: 1,
            frame: welcome(&["bob", "alice"]),
        },
        Instant::now(),
    );
    assert_eq!(
        after,
        vec![Action::Send {
            conn: 1,
            frame: ClientFrame::new("/history", "latest 50"),
        }],
        "the room's last messages are asked for, nothing else"
    );
    s
}

/// A line of the message list: kind, who, text.
type Shown = (LineKind, String, String);

fn last(s: &ChatState) -> Shown {
    let l = s.active_conversation().lines.back().expect("a line");
    (l.kind, l.who.clone(), l.text.clone())
}

#[test]
fn welcome_opens_the_chat_with_focus_and_users() {
    let s = online();
    assert_eq!(s.phase, Phase::Online { conn: 1 });
    assert!(s.in_chat && s.focus_input && s.is_online());
    assert_eq!(s.users.iter().collect::<Vec<_>>(), ["alice", "bob"]);
    assert_eq!(last(&s).0, LineKind::System);
    assert_eq!(
        s.status(Instant::now()),
        "Connected as alice to 127.0.0.1:65432"
    );
}

#[test]
fn a_welcome_without_the_user_list_asks_for_it() {
    let mut s = ChatState::new(form("alice"), 10);
    s.connect_clicked();
    let mut w = frame(
        FrameKind::Welcome,
        "SERVER",
        "Welcome alice! 5000 users online",
    );
    w.users = None;
    let actions = s.on_event(NetEvent::Frame { conn: 1, frame: w }, Instant::now());
    assert_eq!(
        actions,
        vec![
            Action::Send {
                conn: 1,
                frame: ClientFrame::new("/list", ""),
            },
            Action::Send {
                conn: 1,
                frame: ClientFrame::new("/history", "latest 50"),
            }
        ]
    );
    assert!(s.is_online());
    assert_eq!(s.users.iter().collect::<Vec<_>>(), ["alice"]);
}

#[test]
fn every_server_frame_type_lands_where_it_should() {
    let mut s = online();
    let now = Instant::now();
    let ev =
        |s: &mut ChatState, f: ServerFrame| s.on_event(NetEvent::Frame { conn: 1, frame: f }, now);

    ev(&mut s, frame(FrameKind::Chat, "bob", "hi"));
    assert_eq!(last(&s), (LineKind::Chat, "bob".into(), "hi".into()));
    ev(&mut s, frame(FrameKind::Private, "bob", "psst"));
    assert_eq!(
        last(&s),
        (LineKind::Chat, "bob".into(), "hi".into()),
        "not in the room"
    );
    let with_bob = s
        .conversation_with("Bob")
        .expect("a conversation with bob opened");
    let l = with_bob.lines.back().expect("the message");
    assert_eq!((l.kind, l.text.as_str()), (LineKind::PrivateIn, "psst"));
    assert_eq!(with_bob.unread, 1, "unread: it is not the one shown");
    assert_eq!(s.room().unread, 0, "the room is shown and followed");
    assert_eq!(s.window_title(), "(1) Chat");

    let mut join = frame(FrameKind::Join, "SERVER", "carol joined the chat");
    join.user = Some("carol".into());
    ev(&mut s, join);
    assert!(s.users.contains("carol"));
    assert_eq!(last(&s).0, LineKind::Join);
    let mut leave = frame(FrameKind::Leave, "SERVER", "bob left the chat");
    leave.user = Some("bob".into());
    ev(&mut s, leave);
    assert!(!s.users.contains("bob"));
    assert_eq!(last(&s).0, LineKind::Leave);

    let mut list = frame(FrameKind::Users, "SERVER", "Users online (2): alice, zed");
    list.users = Some(vec!["alice".into(), "zed".into()]);
    ev(&mut s, list);
    assert_eq!(s.users.iter().collect::<Vec<_>>(), ["alice", "zed"]);
    assert_eq!(last(&s).0, LineKind::System);

    ev(
        &mut s,
        frame(FrameKind::System, "SERVER", "Message sent to 2 users"),
    );
    assert_eq!(last(&s).0, LineKind::System);
    ev(
        &mut s,
        frame(FrameKind::Error, "SERVER", "Error: user 'x' is not online"),
    );
    assert_eq!(last(&s).0, LineKind::Error);
    ev(&mut s, frame(FrameKind::Other, "SERVER", "something new"));
    assert_eq!(last(&s).0, LineKind::System);
    // An old server without `type`: an "Error..." text still shows as an error.
    let mut untyped = frame(FrameKind::System, "SERVER", "Error: nope");
    untyped.kind = None;
    ev(&mut s, untyped);
    assert_eq!(last(&s).0, LineKind::Error);
    // A code decides, whatever the text; a typed frame's text is never read.
    ev(&mut s, coded(ErrorCode::NotDelivered, "all is well"));
    assert_eq!(
        last(&s),
        (LineKind::Error, "SERVER".into(), "all is well".into())
    );
    let mut coded_system = frame(FrameKind::System, "SERVER", "fine");
    coded_system.code = Some(ErrorCode::Lost);
    ev(&mut s, coded_system);
    assert_eq!(last(&s).0, LineKind::Error);
    ev(
        &mut s,
        frame(FrameKind::System, "SERVER", "Error-free since 1999"),
    );
    assert_eq!(last(&s).0, LineKind::System);
    assert!(
        s.active_conversation()
            .lines
            .iter()
            .all(|l| l.time.len() == 5),
        "HH:MM on every line"
    );
}

#[test]
fn typed_input_becomes_frames_and_own_lines() {
    let mut s = online();
    s.input = "hello all".into();
    assert_eq!(
        s.submit(),
        vec![Action::Send {
            conn: 1,
            frame: ClientFrame {
                to: "*".into(),
                msg: "hello all".into(),
                label: Some("m1".into()),
            }
        }]
    );
    assert_eq!(
        last(&s),
        (LineKind::Own, "alice".into(), "hello all".into())
    );
    assert!(s.input.is_empty() && s.focus_input);
    assert_eq!(
        s.active_conversation()
            .lines
            .back()
            .and_then(|l| l.delivery.clone()),
        Some(Delivery::Pending { label: "m1".into() }),
        "pending until the server confirms it"
    );

    s.input = "@bob psst".into();
    assert_eq!(
        s.submit(),
        vec![Action::Send {
            conn: 1,
            frame: ClientFrame {
                to: "bob".into(),
                msg: "psst".into(),
                label: Some("m2".into()),
            }
        }]
    );
    assert_eq!(
        s.active_conversation().title,
        "bob",
        "the conversation with bob opens"
    );
    assert_eq!(
        last(&s),
        (LineKind::PrivateOut, "bob".into(), "psst".into())
    );
    s.input = "no @ needed here".into();
    assert!(
        matches!(&s.submit()[..], [Action::Send { frame, .. }] if frame.to == "bob"),
        "plain text in bob's conversation goes to bob"
    );
    s.select(0);

    s.input = "/msg carol yo".into();
    assert!(
        matches!(&s.submit()[..], [Action::Send { frame, .. }] if frame.to == "carol" && frame.msg == "yo")
    );
    // (`/help` is answered locally now: see `help_shows_the_typed_commands_locally`.)
    for cmd in ["/list", "/time", "/standard"] {
        s.input = cmd.into();
        let lines = s.active_conversation().lines.len();
        assert!(matches!(&s.submit()[..], [Action::Send { frame, .. }] if frame.to == cmd));
        assert_eq!(
            s.active_conversation().lines.len(),
            lines,
            "commands add no local line"
        );
    }

    s.input = "/bogus".into();
    assert!(s.submit().is_empty());
    assert_eq!(last(&s).0, LineKind::Error);
    assert_eq!(s.input, "/bogus", "a mistake is kept for editing");
}

/// What submitting `line` while online sends, and the last line it shows (if it adds one,
/// in whichever conversation it goes to).
fn submitted(line: &str) -> (Vec<(String, String)>, Option<Shown>) {
    let mut s = online();
    let before: usize = s.conversations.iter().map(|c| c.lines.len()).sum();
    s.input = line.into();
    let sent = s
        .submit()
        .into_iter()
        .filter_map(|a| match a {
            Action::Send { frame, .. } => Some((frame.to, frame.msg)),
            _ => None,
        })
        .collect();
    let after: usize = s.conversations.iter().map(|c| c.lines.len()).sum();
    let shown = (after > before).then(|| last(&s));
    (sent, shown)
}

fn one(to: &str, msg: &str) -> Vec<(String, String)> {
    vec![(to.into(), msg.into())]
}

#[test]
fn typed_lines_speak_the_line_port_dialect() {
    // (Moved from the old `command.rs` unit tests, plus the words the line port always had.)
    let own = |t: &str| Some((LineKind::Own, "alice".to_string(), t.to_string()));
    let out = |to: &str, t: &str| Some((LineKind::PrivateOut, to.to_string(), t.to_string()));
    for (line, sends, shows) in [
        ("hello all", one("*", "hello all"), own("hello all")),
        (
            "@bob hi there",
            one("bob", "hi there"),
            out("bob", "hi there"),
        ),
        ("/msg bob  hi", one("bob", "hi"), out("bob", "hi")),
        ("!msg bob hi", one("bob", "hi"), out("bob", "hi")),
        ("//shrug", one("*", "/shrug"), own("/shrug")),
        // `/shout`: confirmed by the server ("Message sent to N users"), shown once here.
        ("/shout hey all", one("/shout", "hey all"), own("hey all")),
        // `@` without a name is not a private message: public, as on the line port.
        ("@ hi", one("*", "@ hi"), own("@ hi")),
        ("@", one("*", "@"), own("@")),
        ("!hello", one("*", "!hello"), own("!hello")),
        // Leading spaces are kept, trailing ones dropped (as on the line port).
        (
            "  keep  inner  ",
            one("*", "  keep  inner"),
            own("  keep  inner"),
        ),
        ("/list", one("/list", ""), None),
        ("/who", one("/list", ""), None),
        ("!who", one("/list", ""), None),
        ("/time", one("/time", ""), None),
        ("/standard", one("/standard", ""), None),
    ] {
        assert_eq!(submitted(line), (sends, shows), "{line:?}");
    }
    for quit in ["/quit", "\\q", "!logout"] {
        let (sent, shown) = submitted(quit);
        assert_eq!(sent, one("/quit", ""), "{quit}");
        assert_eq!(
            shown,
            Some((LineKind::System, String::new(), "You left the chat.".into()))
        );
    }
}

#[test]
fn typed_mistakes_send_nothing_and_say_why() {
    for (line, why) in [
        ("@bob", "usage: @nick text"),
        ("/msg", "usage: /msg nick text"),
        ("/msg bob", "usage: /msg nick text"),
        ("!msg bob  ", "usage: !msg nick text"),
        ("/shout", "usage: /shout text"),
        (
            "/frobnicate",
            "unknown command /frobnicate; type /help for the commands",
        ),
        (
            "/LIST",
            "unknown command /LIST; type /help for the commands",
        ),
    ] {
        let mut s = online();
        s.input = line.into();
        assert!(s.submit().is_empty(), "{line:?}");
        assert_eq!(last(&s), (LineKind::Error, String::new(), why.into()));
        assert_eq!(s.input, line, "kept for editing");
    }
    for blank in ["", "   "] {
        let mut s = online();
        let lines = s.active_conversation().lines.len();
        s.input = blank.into();
        assert!(s.submit().is_empty());
        assert_eq!(
            s.active_conversation().lines.len(),
            lines,
            "a blank line shows nothing"
        );
    }
}

#[test]
fn help_shows_the_typed_commands_locally() {
    let mut s = online();
    let before = s.active_conversation().lines.len();
    s.input = "/help".into();
    assert!(s.submit().is_empty(), "the server is not asked");
    let shown: Vec<_> = s.active_conversation().lines.iter().skip(before).collect();
    let want = help(Dialect::Typed);
    assert_eq!(
        shown.iter().map(|l| l.text.as_str()).collect::<Vec<_>>(),
        want.lines().collect::<Vec<_>>(),
        "one line per row of the table"
    );
    assert!(shown.iter().all(|l| l.kind == LineKind::System));
    assert!(s.input.is_empty() && s.focus_input);
    assert!(want.contains("@nick text") && want.contains("!msg nick text"));

    // Offline too: nothing needs the server.
    s.disconnect_clicked();
    s.input = "/help".into();
    assert!(s.submit().is_empty());
    assert_eq!(last(&s).2, want.lines().last().unwrap_or_default());
}

#[test]
fn quit_sends_the_command_closes_and_does_not_reconnect() {
    let mut s = online();
    s.input = "/quit".into();
    let actions = s.submit();
    assert_eq!(
        actions,
        vec![
            Action::Send {
                conn: 1,
                frame: ClientFrame {
                    to: "/quit".into(),
                    msg: String::new(),
                    label: None,
                }
            },
            Action::Close { conn: 1 }
        ]
    );
    assert_eq!(s.phase, Phase::Idle);
    assert!(
        s.on_event(
            NetEvent::Closed {
                conn: 1,
                reason: "eof".into()
            },
            Instant::now()
        )
        .is_empty()
    );
    assert_eq!(s.phase, Phase::Idle);
}

/// Feeds frame `f` on connection `conn`.
fn feed(s: &mut ChatState, conn: u64, f: ServerFrame) -> Vec<Action> {
    s.on_event(NetEvent::Frame { conn, frame: f }, Instant::now())
}

/// A live event with an id.
fn event(kind: FrameKind, from: &str, msg: &str, id: u64) -> ServerFrame {
    let mut f = frame(kind, from, msg);
    f.id = Some(id);
    if kind == FrameKind::Chat {
        f.to = "Everyone".into();
    }
    f
}

/// The same event replayed from the history.
fn replayed(kind: FrameKind, from: &str, msg: &str, id: u64) -> ServerFrame {
    let mut f = event(kind, from, msg, id);
    f.history = Some(true);
    f
}

/// The end frame of a history answer.
fn end(count: u32, more: bool, gap: bool) -> ServerFrame {
    let mut f = frame(FrameKind::History, "SERVER", "History");
    f.epoch = Some("e1".into());
    (f.count, f.more, f.gap) = (Some(count), Some(more), Some(gap));
    f
}

/// A confirmation (or, with `code`, an error) answering label `label`.
fn answer(label: &str, id: Option<u64>, code: Option<ErrorCode>) -> ServerFrame {
    let mut f = match code {
        Some(code) => coded(code, "Error: user 'zed' is not online (message \"hi\")"),
        None => frame(FrameKind::System, "SERVER", "Message sent to 1 user"),
    };
    f.id = id;
    f.label = Some(label.into());
    f
}

/// Connection `conn` drops (a reset) at `at`.
fn lose(s: &mut ChatState, conn: u64, at: Instant) -> Vec<Action> {
    let reason = "reset".into();
    s.on_event(NetEvent::Closed { conn, reason }, at)
}

/// Loses connection 1 and comes back on connection 2 with `w` as the welcome; returns what
/// the state does after the welcome.
fn reconnect(s: &mut ChatState, w: ServerFrame) -> Vec<Action> {
    let t0 = Instant::now();
    lose(s, 1, t0);
    let connect = s.tick(t0 + Duration::from_secs(60));
    assert!(
        matches!(connect[..], [Action::Connect { conn: 2, .. }]),
        "{connect:?}"
    );
    s.on_event(
        NetEvent::Frame { conn: 2, frame: w },
        t0 + Duration::from_secs(60),
    )
}

fn sent(actions: &[Action]) -> Vec<(String, String, Option<String>)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send { frame, .. } => {
                Some((frame.to.clone(), frame.msg.clone(), frame.label.clone()))
            }
            _ => None,
        })
        .collect()
}

fn delivery(s: &ChatState, text: &str) -> Option<Delivery> {
    s.conversations
        .iter()
        .flat_map(|c| c.lines.iter())
        .find(|l| l.text == text)
        .and_then(|l| l.delivery.clone())
}

#[test]
fn a_message_typed_while_offline_is_queued_and_sent_after_the_reconnect() {
    let mut s = online();
    lose(&mut s, 1, Instant::now());
    s.input = "anyone?".into();
    assert!(s.submit().is_empty(), "nothing can be sent now");
    assert_eq!(last(&s), (LineKind::Own, "alice".into(), "anyone?".into()));
    assert_eq!(
        delivery(&s, "anyone?"),
        Some(Delivery::Queued { label: "m1".into() })
    );
    let after = reconnect(&mut s, welcome(&["alice"]));
    assert_eq!(
        sent(&after),
        [("*".into(), "anyone?".into(), Some("m1".into()))]
    );
    assert_eq!(
        delivery(&s, "anyone?"),
        Some(Delivery::Pending { label: "m1".into() })
    );
    feed(&mut s, 2, answer("m1", Some(40), None));
    assert_eq!(delivery(&s, "anyone?"), Some(Delivery::Sent));
}

#[test]
fn queued_messages_fail_visibly_when_the_user_disconnects() {
    let mut s = online();
    lose(&mut s, 1, Instant::now());
    s.input = "later".into();
    s.submit();
    s.disconnect_clicked();
    assert!(matches!(
        delivery(&s, "later"),
        Some(Delivery::Failed { .. })
    ));
}

#[test]
fn my_messages_are_settled_by_their_labels_and_a_failed_one_can_be_retried() {
    let mut s = online();
    for text in ["one", "@zed hi", "three"] {
        s.input = text.into();
        s.submit();
        s.select(0);
    }
    // The answers come in any order; each names its message.
    assert!(feed(&mut s, 1, answer("m3", Some(12), None)).is_empty());
    feed(&mut s, 1, answer("m2", None, Some(ErrorCode::NotOnline)));
    assert_eq!(delivery(&s, "three"), Some(Delivery::Sent));
    assert_eq!(
        delivery(&s, "one"),
        Some(Delivery::Pending { label: "m1".into() })
    );
    let zed = s.conversation_with("zed").expect("zed's conversation");
    assert_eq!(
        zed.lines.back().and_then(|l| l.delivery.clone()),
        Some(Delivery::Failed {
            reason: "user 'zed' is not online (message \"hi\")".into()
        }),
        "failed where it was shown, with the reason, and no separate error line"
    );
    assert_eq!(zed.lines.len(), 1);
    let room_lines = s.room().lines.len();
    assert!(
        !s.room()
            .lines
            .iter()
            .any(|l| l.text.contains("Message sent")),
        "confirmations are not shown as lines"
    );
    // Retry: sent again with a new label, in place.
    let z = s
        .conversations
        .iter()
        .position(|c| c.title == "zed")
        .expect("zed");
    let again = s.retry(z, 0);
    assert_eq!(
        sent(&again),
        [("zed".into(), "hi".into(), Some("m4".into()))]
    );
    assert_eq!(s.conversations[z].lines.len(), 1);
    assert_eq!(s.retry(z, 0), vec![], "only a failed one");
    assert_eq!(s.room().lines.len(), room_lines);
    // The connection goes with "one" unanswered: it is failed, not silently kept.
    lose(&mut s, 1, Instant::now());
    assert!(matches!(delivery(&s, "one"), Some(Delivery::Failed { .. })));
}

#[test]
fn a_reconnect_resumes_the_session_and_fills_exactly_the_gap() {
    let mut s = ChatState::new(form("alice"), 1000);
    s.connect_clicked();
    let mut w = welcome(&["alice", "bob"]);
    w.resume = Some("T1".into());
    feed(&mut s, 1, w);
    // The first answer: the room's last two.
    feed(&mut s, 1, replayed(FrameKind::Chat, "bob", "old", 9));
    feed(&mut s, 1, replayed(FrameKind::Chat, "alice", "mine", 10));
    feed(&mut s, 1, end(2, false, false));
    assert_eq!(s.room().unread, 0, "history is not news");
    let mine = s
        .room()
        .lines
        .iter()
        .find(|l| l.text == "mine")
        .expect("mine");
    assert_eq!(mine.kind, LineKind::Own, "my own message from the history");
    assert_eq!(
        s.room().lines.back().map(|l| l.kind),
        Some(LineKind::System),
        "the history above the welcome"
    );
    feed(&mut s, 1, event(FrameKind::Chat, "bob", "live", 11));

    let mut w2 = welcome(&["alice", "bob"]);
    w2.resume = Some("T2".into());
    let after = reconnect(&mut s, w2);
    assert_eq!(
        sent(&after),
        [
            ("/resume".into(), "T1".into(), None),
            ("/history".into(), "after 11 500".into(), None),
        ],
        "the first session's token, then what came after the last id seen"
    );
    // A live event overtakes the answer; the answer repeats it, and brings what was missed.
    feed(&mut s, 2, event(FrameKind::Chat, "carol", "overtaking", 14));
    feed(&mut s, 2, replayed(FrameKind::Chat, "bob", "missed 1", 12));
    let mut private = replayed(FrameKind::Private, "bob", "missed privately", 13);
    private.to = "alice".into();
    feed(&mut s, 2, private);
    feed(
        &mut s,
        2,
        replayed(FrameKind::Chat, "carol", "overtaking", 14),
    );
    let more = feed(&mut s, 2, end(3, true, false));
    assert_eq!(
        sent(&more),
        [("/history".into(), "after 14 500".into(), None)],
        "more: the next page"
    );
    feed(&mut s, 2, end(0, false, false));
    let room: Vec<&str> = s
        .room()
        .lines
        .iter()
        .filter(|l| l.id.is_some() || l.kind == LineKind::Away)
        .map(|l| l.text.as_str())
        .collect();
    assert_eq!(
        room,
        [
            "old",
            "mine",
            "live",
            "2 messages while you were away",
            "missed 1",
            "overtaking"
        ],
        "in id order, each once, the marker where the missed ones begin"
    );
    let bob = s.conversation_with("bob").expect("bob's conversation");
    assert_eq!(
        bob.lines.back().map(|l| l.text.as_str()),
        Some("missed privately")
    );
    assert_eq!(bob.unread, 1, "missed private messages are unread");
}

#[test]
fn a_gap_the_server_reports_is_said() {
    let mut s = online();
    feed(&mut s, 1, end(0, false, false));
    feed(&mut s, 1, event(FrameKind::Chat, "bob", "x", 5));
    let after = reconnect(&mut s, welcome(&["alice"]));
    assert_eq!(
        sent(&after),
        [("/history".into(), "after 5 500".into(), None)]
    );
    feed(&mut s, 2, end(0, false, true));
    assert!(
        s.room()
            .lines
            .iter()
            .any(|l| l.text.contains("no longer kept")),
        "{:?}",
        s.room().lines
    );
}

#[test]
fn scrolling_to_the_top_loads_older_pages_one_at_a_time() {
    let mut s = online();
    feed(&mut s, 1, replayed(FrameKind::Chat, "bob", "b", 20));
    feed(&mut s, 1, end(1, true, false));
    let older = s.load_older();
    assert_eq!(
        sent(&older),
        [("/history".into(), "before 20 50".into(), None)]
    );
    assert!(s.load_older().is_empty(), "one page at a time");
    feed(&mut s, 1, replayed(FrameKind::Chat, "bob", "a", 7));
    feed(&mut s, 1, end(1, false, false));
    let texts: Vec<&str> = s
        .room()
        .lines
        .iter()
        .filter(|l| l.id.is_some())
        .map(|l| l.text.as_str())
        .collect();
    assert_eq!(texts, ["a", "b"]);
    assert!(s.load_older().is_empty(), "nothing older");
}

#[test]
fn mentions_are_marked_and_unseen_ones_ask_for_attention() {
    let mut s = online();
    s.set_window_focused(false);
    feed(
        &mut s,
        1,
        event(FrameKind::Chat, "bob", "hey Alice, look", 3),
    );
    let l = s.room().lines.back().expect("a line");
    assert!(l.mention);
    assert_eq!((s.room().unread, s.room().mentions), (1, 1));
    assert!(s.attention.take().is_some_and(|a| a.contains("look")));
    feed(
        &mut s,
        1,
        event(FrameKind::Chat, "bob", "malice is not a mention", 4),
    );
    assert!(!s.room().lines.back().expect("a line").mention);
    assert!(s.attention.is_none());
    s.set_window_focused(true);
    assert_eq!(s.room().unread, 0, "read once the window is back");
    assert!(gui_client::state::mentions("@alice!", "alice"));
    assert!(!gui_client::state::mentions("alicex", "alice"));
}

#[test]
fn up_recalls_what_was_typed_and_tab_completes_names() {
    let mut s = online();
    for text in ["first", "second"] {
        s.input = text.into();
        s.submit();
    }
    s.recall_previous();
    assert_eq!(s.input, "second");
    s.recall_previous();
    assert_eq!(s.input, "first");
    s.recall_next();
    assert_eq!(s.input, "second");
    s.recall_next();
    assert_eq!(s.input, "");
    s.input = "bo".into();
    s.complete_name();
    assert_eq!(s.input, "bob: ");
    s.input = "ask @B".into();
    s.complete_name();
    assert_eq!(s.input, "ask @bob ");
    s.input = "al".into();
    s.complete_name();
    assert_eq!(s.input, "al", "not myself");
}

#[test]
fn clicking_a_user_opens_the_conversation_with_them() {
    let mut s = online();
    s.focus_input = false;
    s.user_clicked("bob");
    assert_eq!(s.active_conversation().title, "bob");
    assert!(s.focus_input && s.input.is_empty());
    s.user_clicked("alice");
    assert_eq!(s.active_conversation().title, "bob", "not with myself");
    s.user_clicked("Bob");
    assert_eq!(s.conversations.len(), 2, "one conversation per person");
}

#[test]
fn a_lost_connection_reconnects_with_backoff_and_keeps_history() {
    let mut s = online();
    let t0 = Instant::now();
    let history = s.active_conversation().lines.len();
    assert!(
        s.on_event(
            NetEvent::Closed {
                conn: 1,
                reason: "reset".into()
            },
            t0
        )
        .is_empty()
    );
    let Phase::Waiting { until } = s.phase else {
        panic!("{:?}", s.phase)
    };
    assert!(s.status(t0).contains("reconnecting"), "{}", s.status(t0));
    assert!(
        s.active_conversation().lines.len() > history,
        "the drop is announced, history kept"
    );
    assert!(s.tick(t0).is_empty(), "not due yet");
    let first_delay = until - t0;

    // The attempt fails: the next delay is longer.
    let actions = s.tick(until);
    assert_eq!(
        actions,
        vec![Action::Connect {
            conn: 2,
            addr: "127.0.0.1:65432".into(),
            name: "alice".into(),
            tls: None,
        }]
    );
    s.on_event(
        NetEvent::ConnectFailed {
            conn: 2,
            reason: "refused".into(),
        },
        until,
    );
    let Phase::Waiting { until: until2 } = s.phase else {
        panic!("{:?}", s.phase)
    };
    assert!(until2 - until > first_delay);

    // Events of an abandoned connection are ignored.
    assert!(
        s.on_event(
            NetEvent::Frame {
                conn: 1,
                frame: frame(FrameKind::Chat, "x", "late")
            },
            until2
        )
        .is_empty()
    );
    assert_ne!(last(&s).2, "late");

    assert!(matches!(
        &s.tick(until2)[..],
        [Action::Connect { conn: 3, .. }]
    ));
    s.on_event(
        NetEvent::Frame {
            conn: 3,
            frame: welcome(&["alice"]),
        },
        until2,
    );
    assert_eq!(s.phase, Phase::Online { conn: 3 });
    assert!(
        s.active_conversation()
            .lines
            .iter()
            .any(|l| l.text.starts_with("Reconnected"))
    );
    // Back online, the backoff starts over.
    s.on_event(
        NetEvent::Closed {
            conn: 3,
            reason: "x".into(),
        },
        until2,
    );
    let Phase::Waiting { until: until3 } = s.phase else {
        panic!()
    };
    assert_eq!(until3 - until2, first_delay);
}

#[test]
fn our_own_ghost_holding_the_name_is_waited_out_then_given_up() {
    // A server without codes: the text fallback recognises the refusal.
    ghost_is_waited_out_then_given_up(frame(
        FrameKind::Error,
        "SERVER",
        "Error: the name 'alice' is already in use",
    ));
}

#[test]
fn the_ghost_is_recognised_by_its_code_alone() {
    ghost_is_waited_out_then_given_up(coded(ErrorCode::NameTaken, "Error: try later"));
}

fn ghost_is_waited_out_then_given_up(taken: ServerFrame) {
    let mut s = online();
    let mut now = Instant::now();
    s.on_event(
        NetEvent::Closed {
            conn: 1,
            reason: "reset".into(),
        },
        now,
    );
    for attempt in 0..=GHOST_RETRIES {
        let Phase::Waiting { until } = s.phase else {
            panic!("attempt {attempt}: {:?}", s.phase)
        };
        now = until;
        let [Action::Connect { conn, .. }] = s.tick(now)[..] else {
            panic!()
        };
        let actions = s.on_event(
            NetEvent::Frame {
                conn,
                frame: taken.clone(),
            },
            now,
        );
        assert_eq!(actions, vec![Action::Close { conn }]);
    }
    assert_eq!(
        s.phase,
        Phase::Idle,
        "gives up after {GHOST_RETRIES} retries"
    );
    assert!(
        s.connect_error
            .as_deref()
            .unwrap_or("")
            .contains("already taken")
    );
    assert_eq!(last(&s).0, LineKind::Error);
}

#[test]
fn other_refusals_on_a_rejoin_keep_trying_whatever_their_text() {
    let mut s = online();
    let mut now = Instant::now();
    s.on_event(
        NetEvent::Closed {
            conn: 1,
            reason: "reset".into(),
        },
        now,
    );
    // The code says "unavailable"; the text mentions a taken name: the code decides, so
    // these do not use up the ghost retries.
    let refusal = coded(
        ErrorCode::Unavailable,
        "Error: the name 'alice' is already in use",
    );
    for attempt in 0..GHOST_RETRIES * 2 {
        let Phase::Waiting { until } = s.phase else {
            panic!("attempt {attempt}: {:?}", s.phase)
        };
        now = until;
        let [Action::Connect { conn, .. }] = s.tick(now)[..] else {
            panic!()
        };
        s.on_event(
            NetEvent::Frame {
                conn,
                frame: refusal.clone(),
            },
            now,
        );
    }
    assert!(matches!(s.phase, Phase::Waiting { .. }), "{:?}", s.phase);
    assert!(s.connect_error.is_none());
}

/// The connect screen's text after a first connect refused with `refusal`.
fn refused_with(refusal: ServerFrame) -> String {
    let mut s = ChatState::new(form("alice"), 10);
    s.connect_clicked();
    let actions = s.on_event(
        NetEvent::Frame {
            conn: 1,
            frame: refusal,
        },
        Instant::now(),
    );
    assert_eq!(actions, vec![Action::Close { conn: 1 }]);
    assert_eq!(s.phase, Phase::Idle);
    assert!(!s.in_chat);
    s.connect_error.unwrap_or_default()
}

#[test]
fn login_refusals_are_explained_by_their_code_not_their_text() {
    assert_eq!(
        refused_with(coded(ErrorCode::NameTaken, "Error: computer says no")),
        "The name \"alice\" is already taken. Choose another name."
    );
    assert_eq!(
        refused_with(coded(ErrorCode::NameInvalid, "Error: too shiny")),
        "The server refused the name \"alice\": too shiny"
    );
    assert_eq!(
        refused_with(coded(ErrorCode::Unavailable, "Error: gone fishing")),
        "The chat service is unavailable right now. Try again shortly."
    );
    // Any other code shows the server's text, even one that reads like a taken name.
    assert_eq!(
        refused_with(coded(
            ErrorCode::ServerFull,
            "Error: the name 'alice' is already in use"
        )),
        "the name 'alice' is already in use"
    );
    // A code this version does not know is still a refusal.
    assert_eq!(
        refused_with(coded(ErrorCode::Other, "Error: new rule")),
        "new rule"
    );
    // An old server that sends neither `type` nor `code`: its text decides.
    let mut untyped = frame(
        FrameKind::Error,
        "SERVER",
        "Error: the chat service is unavailable right now; try again shortly",
    );
    untyped.kind = None;
    assert_eq!(
        refused_with(untyped),
        "The chat service is unavailable right now. Try again shortly."
    );
}

#[test]
fn the_code_decides_and_the_text_is_read_only_without_one() {
    let with = |kind: Option<FrameKind>, code: Option<ErrorCode>, msg: &str| {
        let mut f = frame(FrameKind::Error, "SERVER", msg);
        f.kind = kind;
        f.code = code;
        error_code(&f)
    };
    let taken = "Error: the name 'alice' is already in use";
    let error = Some(FrameKind::Error);
    // With a code: the code, whatever the text and type.
    for code in ErrorCode::ALL.into_iter().chain([ErrorCode::Other]) {
        assert_eq!(with(error, Some(code), taken), Some(code));
        assert_eq!(with(Some(FrameKind::System), Some(code), "hi"), Some(code));
        assert_eq!(with(None, Some(code), "hi"), Some(code));
    }
    // Without (an older server): an `error` frame's code is guessed from its words...
    assert_eq!(with(error, None, taken), Some(ErrorCode::NameTaken));
    assert_eq!(
        with(error, None, "Error: invalid name: the name is empty"),
        Some(ErrorCode::NameInvalid)
    );
    assert_eq!(
        with(
            error,
            None,
            "Error: the chat service is unavailable right now; try again shortly"
        ),
        Some(ErrorCode::Unavailable)
    );
    assert_eq!(
        with(error, None, "Error: user 'x' is not online"),
        Some(ErrorCode::Other)
    );
    // ...and without `type` either, an error is a text that starts with `Error`.
    assert_eq!(with(None, None, taken), Some(ErrorCode::NameTaken));
    assert_eq!(with(None, None, "Error: nope"), Some(ErrorCode::Other));
    assert_eq!(with(None, None, "Welcome alice!"), None);
    // A typed frame that is not an error is not one, whatever its text.
    for kind in [
        FrameKind::System,
        FrameKind::Welcome,
        FrameKind::Chat,
        FrameKind::Other,
    ] {
        assert_eq!(with(Some(kind), None, taken), None, "{kind:?}");
    }
}

#[test]
fn first_connect_errors_are_shown_on_the_connect_screen() {
    let mut s = ChatState::new(form("alice"), 10);
    s.connect_clicked();
    let taken = frame(
        FrameKind::Error,
        "SERVER",
        "Error: the name 'alice' is already in use",
    );
    assert_eq!(
        s.on_event(
            NetEvent::Frame {
                conn: 1,
                frame: taken
            },
            Instant::now()
        ),
        vec![Action::Close { conn: 1 }]
    );
    assert_eq!(s.phase, Phase::Idle);
    assert!(!s.in_chat);
    assert_eq!(
        s.connect_error.as_deref(),
        Some("The name \"alice\" is already taken. Choose another name.")
    );

    s.connect_clicked();
    s.on_event(
        NetEvent::ConnectFailed {
            conn: 2,
            reason: "Connection refused (os error 111)".into(),
        },
        Instant::now(),
    );
    assert!(
        s.connect_error
            .as_deref()
            .unwrap_or("")
            .starts_with("Cannot reach the server at 127.0.0.1:65432")
    );

    s.connect_clicked();
    let invalid = frame(
        FrameKind::Error,
        "SERVER",
        "Error: invalid name: the name \"x\" is reserved",
    );
    s.on_event(
        NetEvent::Frame {
            conn: 3,
            frame: invalid,
        },
        Instant::now(),
    );
    assert!(
        s.connect_error
            .as_deref()
            .unwrap_or("")
            .contains("refused the name")
    );
}

#[test]
fn the_form_is_checked_before_connecting() {
    for (host, port, name, needle) in [
        ("", "65432", "alice", "host"),
        ("h", "x", "alice", "port"),
        ("h", "0", "alice", "port"),
        ("h", "65432", "", "empty"),
        ("h", "65432", "a b", "name"),
        ("h", "65432", "SERVER", "reserved"),
    ] {
        let mut s = ChatState::new(
            ConnectForm {
                host: host.into(),
                port: port.into(),
                name: name.into(),
                ..ConnectForm::default()
            },
            10,
        );
        assert!(s.connect_clicked().is_empty(), "{host} {port} {name}");
        let err = s.connect_error.clone().unwrap_or_default();
        assert!(err.contains(needle), "{err:?} lacks {needle:?}");
    }
}

#[test]
fn disconnect_stops_without_reconnecting_and_reconnect_resumes() {
    let mut s = online();
    assert_eq!(s.disconnect_clicked(), vec![Action::Close { conn: 1 }]);
    assert_eq!(s.phase, Phase::Idle);
    assert!(
        s.on_event(
            NetEvent::Closed {
                conn: 1,
                reason: "closed".into()
            },
            Instant::now()
        )
        .is_empty()
    );
    assert!(s.tick(Instant::now() + Duration::from_secs(60)).is_empty());
    assert!(s.in_chat, "history stays on screen");
    assert!(matches!(
        &s.reconnect_clicked()[..],
        [Action::Connect { conn: 2, .. }]
    ));
    assert!(s.back_to_connect().contains(&Action::Close { conn: 2 }));
    assert!(!s.in_chat);
}

#[test]
fn scrollback_is_capped() {
    let mut s = ChatState::new(form("alice"), 5);
    s.connect_clicked();
    s.on_event(
        NetEvent::Frame {
            conn: 1,
            frame: welcome(&["alice"]),
        },
        Instant::now(),
    );
    for i in 0..20 {
        s.on_event(
            NetEvent::Frame {
                conn: 1,
                frame: frame(FrameKind::Chat, "bob", &i.to_string()),
            },
            Instant::now(),
        );
    }
    assert_eq!(s.active_conversation().lines.len(), 5);
    assert_eq!(
        s.active_conversation()
            .lines
            .front()
            .map(|l| l.text.as_str()),
        Some("15")
    );
    assert_eq!(
        s.active_conversation()
            .lines
            .back()
            .map(|l| l.text.as_str()),
        Some("19")
    );
}

#[test]
fn tls_settings_come_from_the_form_and_survive_reconnects() {
    let mut s = ChatState::new(
        ConnectForm {
            host: " [::1] ".into(),
            port: "65434".into(),
            name: "alice".into(),
            tls: true,
            ca_file: " /tmp/ca.pem ".into(),
        },
        10,
    );
    let want = Some(TlsSettings {
        server_name: "::1".into(),
        ca_file: Some("/tmp/ca.pem".into()),
    });
    let [Action::Connect { tls, addr, .. }] = &s.connect_clicked()[..] else {
        panic!("one connect");
    };
    assert_eq!((tls, addr.as_str()), (&want, "[::1]:65434"));
    let now = Instant::now();
    s.on_event(
        NetEvent::Frame {
            conn: 1,
            frame: welcome(&["alice"]),
        },
        now,
    );
    assert!(s.status(now).ends_with("(TLS)"), "{}", s.status(now));
    // The connection drops: the reconnect is secured the same way.
    s.on_event(
        NetEvent::Closed {
            conn: 1,
            reason: "reset".into(),
        },
        now,
    );
    let later = s.next_wakeup().expect("a reconnect is scheduled");
    let [Action::Connect { tls, .. }] = &s.tick(later)[..] else {
        panic!("a reconnect");
    };
    assert_eq!(tls, &want);
    // Without TLS, or with an empty CA file (the system's roots).
    s.form.tls = false;
    let actions = s.connect_clicked();
    assert!(
        matches!(actions.last(), Some(Action::Connect { tls: None, .. })),
        "{actions:?}"
    );
    s.form.tls = true;
    s.form.ca_file = "  ".into();
    s.form.host = "chat.example.org".into();
    let actions = s.connect_clicked();
    let Some(Action::Connect { tls: Some(t), .. }) = actions.last() else {
        panic!("{actions:?}");
    };
    assert_eq!(
        (t.server_name.as_str(), t.ca_file.as_deref()),
        ("chat.example.org", None)
    );
}

#[test]
fn a_degraded_service_is_shown_and_messages_wait_for_it() {
    let mut s = online();
    let mut down = frame(
        FrameKind::System,
        "SERVER",
        "The chat service is degraded...",
    );
    down.service = Some(chat_common::frame::Service::Down);
    feed(&mut s, 1, down);
    assert!(
        s.status(Instant::now()).starts_with("Degraded"),
        "{}",
        s.status(Instant::now())
    );
    s.input = "hello?".into();
    assert!(s.submit().is_empty(), "not sent into a lost service");
    assert_eq!(
        delivery(&s, "hello?"),
        Some(Delivery::Queued { label: "m1".into() })
    );
    let mut up = frame(FrameKind::System, "SERVER", "The chat service is back.");
    up.service = Some(chat_common::frame::Service::Up);
    let sent_now = feed(&mut s, 1, up);
    assert_eq!(
        sent(&sent_now),
        [("*".into(), "hello?".into(), Some("m1".into()))]
    );
    assert!(s.status(Instant::now()).starts_with("Connected"));
    // A notice without the field is only a notice, whatever it says.
    feed(
        &mut s,
        1,
        frame(FrameKind::System, "SERVER", "The chat service is degraded"),
    );
    assert!(!s.degraded);
}
