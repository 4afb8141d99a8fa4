//! The client's state layer, driven by events and user actions, without a window or socket.

use std::time::{Duration, Instant};

use chat_common::command::{Dialect, help};
use chat_common::{ClientFrame, ErrorCode, FrameKind, Sender, ServerFrame};
use gui_client::state::{
    Action, ChatState, ConnectForm, GHOST_RETRIES, LineKind, NetEvent, Phase, TlsSettings,
    error_code,
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
    assert!(
        s.on_event(
            NetEvent::Frame {
                conn: 1,
                frame: welcome(&["bob", "alice"])
            },
            Instant::now()
        )
        .is_empty()
    );
    s
}

/// A line of the message list: kind, who, text.
type Shown = (LineKind, String, String);

fn last(s: &ChatState) -> Shown {
    let l = s.messages.back().expect("a line");
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
        vec![Action::Send {
            conn: 1,
            frame: ClientFrame {
                to: "/list".into(),
                msg: String::new(),
                label: None,
            }
        }]
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
    assert_eq!(last(&s), (LineKind::PrivateIn, "bob".into(), "psst".into()));

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
        s.messages.iter().all(|l| l.time.len() == 5),
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
                label: None,
            }
        }]
    );
    assert_eq!(
        last(&s),
        (LineKind::Own, "alice".into(), "hello all".into())
    );
    assert!(s.input.is_empty() && s.focus_input);

    s.input = "@bob psst".into();
    assert_eq!(
        s.submit(),
        vec![Action::Send {
            conn: 1,
            frame: ClientFrame {
                to: "bob".into(),
                msg: "psst".into(),
                label: None,
            }
        }]
    );
    assert_eq!(
        last(&s),
        (LineKind::PrivateOut, "bob".into(), "psst".into())
    );

    s.input = "/msg carol yo".into();
    assert!(
        matches!(&s.submit()[..], [Action::Send { frame, .. }] if frame.to == "carol" && frame.msg == "yo")
    );
    // (`/help` is answered locally now: see `help_shows_the_typed_commands_locally`.)
    for cmd in ["/list", "/time", "/standard"] {
        s.input = cmd.into();
        let lines = s.messages.len();
        assert!(matches!(&s.submit()[..], [Action::Send { frame, .. }] if frame.to == cmd));
        assert_eq!(s.messages.len(), lines, "commands add no local line");
    }

    s.input = "/bogus".into();
    assert!(s.submit().is_empty());
    assert_eq!(last(&s).0, LineKind::Error);
    assert_eq!(s.input, "/bogus", "a mistake is kept for editing");
}

/// What submitting `line` while online sends, and the last line it shows (if it adds one).
fn submitted(line: &str) -> (Vec<(String, String)>, Option<Shown>) {
    let mut s = online();
    let before = s.messages.len();
    s.input = line.into();
    let sent = s
        .submit()
        .into_iter()
        .filter_map(|a| match a {
            Action::Send { frame, .. } => Some((frame.to, frame.msg)),
            _ => None,
        })
        .collect();
    let shown = (s.messages.len() > before).then(|| last(&s));
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
        let lines = s.messages.len();
        s.input = blank.into();
        assert!(s.submit().is_empty());
        assert_eq!(s.messages.len(), lines, "a blank line shows nothing");
    }
}

#[test]
fn help_shows_the_typed_commands_locally() {
    let mut s = online();
    let before = s.messages.len();
    s.input = "/help".into();
    assert!(s.submit().is_empty(), "the server is not asked");
    let shown: Vec<_> = s.messages.iter().skip(before).collect();
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

#[test]
fn sending_while_offline_is_refused_visibly() {
    let mut s = online();
    s.on_event(
        NetEvent::Closed {
            conn: 1,
            reason: "reset".into(),
        },
        Instant::now(),
    );
    s.input = "anyone?".into();
    assert!(s.submit().is_empty());
    assert_eq!(last(&s).0, LineKind::Error);
    assert_eq!(s.input, "anyone?");
}

#[test]
fn clicking_a_user_starts_a_private_message() {
    let mut s = online();
    s.focus_input = false;
    s.user_clicked("bob");
    assert_eq!(s.input, "@bob ");
    assert!(s.focus_input);
}

#[test]
fn a_lost_connection_reconnects_with_backoff_and_keeps_history() {
    let mut s = online();
    let t0 = Instant::now();
    let history = s.messages.len();
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
        s.messages.len() > history,
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
    assert!(s.messages.iter().any(|l| l.text.starts_with("Reconnected")));
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
    assert_eq!(s.messages.len(), 5);
    assert_eq!(s.messages.front().map(|l| l.text.as_str()), Some("15"));
    assert_eq!(s.messages.back().map(|l| l.text.as_str()), Some("19"));
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
