//! The real UI (egui_kittest, through the accessibility tree, no display needed) against
//! a real broker and server: in-process (testkit::inproc), or as processes where a test kills
//! one.

use std::time::{Duration, Instant};

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use gui_client::app::ChatApp;
use gui_client::state::{ConnectForm, Phase};

const DEADLINE: Duration = Duration::from_secs(15);

fn harness(port: u16) -> Harness<'static, ChatApp> {
    let form = ConnectForm {
        host: "127.0.0.1".into(),
        port: port.to_string(),
        ..ConnectForm::default()
    };
    Harness::builder().with_size([900.0, 600.0]).build_ui_state(
        |ui, app: &mut ChatApp| app.show(ui),
        ChatApp::new(form, 10_000),
    )
}

/// Steps the UI until `cond` holds; the network threads work meanwhile.
fn step_until(
    h: &mut Harness<'static, ChatApp>,
    what: &str,
    cond: impl Fn(&Harness<'static, ChatApp>) -> bool,
) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        h.step();
        if cond(h) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Runs frames until the UI is quiet. The network thread wakes the UI for every frame that
/// arrives (`ChatApp::apply`'s waker), so while traffic flows "quiet" may not come within
/// the harness's step budget: that is not a fault, and the tests wait on conditions
/// (`step_until`) for anything that comes off the network. Whether an idle UI stops
/// repainting is asserted once, in `an_idle_chat_stops_repainting`.
fn settle(h: &mut Harness<'static, ChatApp>) {
    let _ = h.run_ok();
}

fn shows(h: &Harness<'static, ChatApp>, text: &str) -> bool {
    h.query_all_by_label_contains(text).next().is_some()
}

/// Fills in the name, presses Connect and waits for the chat screen.
fn log_in(h: &mut Harness<'static, ChatApp>, name: &str) {
    h.get_by_label("Name:").focus();
    settle(h);
    h.get_by_label("Name:").type_text(name);
    settle(h);
    h.get_by_label("Connect").click();
    step_until(h, "the chat screen", |h| h.state().state.is_online());
}

fn send(h: &mut Harness<'static, ChatApp>, text: &str) {
    let input = h.get_by_label("Message:");
    input.focus();
    settle(h);
    h.get_by_label("Message:").type_text(text);
    settle(h);
    h.get_by_label("Send").click();
    settle(h);
}

#[test]
fn connect_see_users_chat_and_whisper_between_two_windows() {
    let (_broker, server) = testkit::inproc::system();
    let port = server.json.port();
    let mut alice = harness(port);
    log_in(&mut alice, "alice");
    // Keyboard focus lands in the message box right after connecting.
    settle(&mut alice);
    assert!(
        alice.get_by_label("Message:").is_focused(),
        "the message box has focus"
    );
    assert!(shows(&alice, "Connected as alice"));
    assert!(shows(&alice, "Users (1)"));

    let mut bob = harness(port);
    log_in(&mut bob, "bob");
    assert!(shows(&bob, "Users (2)"));
    step_until(&mut alice, "bob in alice's user list", |h| {
        shows(h, "Users (2)") && shows(h, "bob joined")
    });

    // Typing and pressing Enter sends at once: the message box already has focus.
    alice.get_by_label("Message:").type_text("hello bob");
    settle(&mut alice);
    alice.key_press(egui::Key::Enter);
    settle(&mut alice);
    step_until(&mut bob, "alice's public message", |h| {
        shows(h, "alice: hello bob")
    });
    assert_eq!(
        alice.query_all_by_label_contains("hello bob").count(),
        1,
        "own message shown once"
    );

    // Bob clicks alice in the user list, which opens their conversation.
    bob.get_by_label("alice").click();
    settle(&mut bob);
    assert_eq!(bob.state().state.active_conversation().title, "alice");
    bob.get_by_label("Message:").type_text("psst");
    settle(&mut bob);
    bob.get_by_label("Send").click();
    settle(&mut bob);
    // Alice sees a conversation with bob, unread, and opens it from the keyboard.
    step_until(&mut alice, "bob's conversation, unread", |h| {
        shows(h, "bob (1)")
    });
    assert!(!shows(&alice, "psst"), "not in the room");
    alice.key_press_modifiers(egui::Modifiers::CTRL, egui::Key::PageDown);
    settle(&mut alice);
    step_until(&mut alice, "bob's private message", |h| {
        shows(h, "(private) bob: psst")
    });
    step_until(&mut bob, "the confirmation", |h| {
        shows(h, "(private to alice) psst") && !shows(h, "(sending)")
    });

    send(&mut alice, "/list");
    step_until(&mut alice, "the /list answer", |h| {
        shows(h, "Users online (2): alice, bob")
    });
}

#[test]
fn the_message_box_speaks_the_line_port_dialect() {
    let (_broker, server) = testkit::inproc::system();
    let port = server.json.port();
    let mut alice = harness(port);
    log_in(&mut alice, "alice");
    let mut bob = harness(port);
    log_in(&mut bob, "bob");
    step_until(&mut alice, "bob joined", |h| shows(h, "bob joined"));

    // `/help` is answered here, with the typed commands, not the JSON port's `to` values.
    send(&mut alice, "/help");
    assert!(shows(&alice, "leave (also \\q, !logout)"));
    assert!(!shows(&alice, "Values of"), "not the JSON port's help");

    send(&mut alice, "/shout hello everyone");
    step_until(&mut bob, "the shout", |h| shows(h, "alice: hello everyone"));
    // Confirmed: the line is no longer marked as being sent (PROTOCOL.md §3.4).
    step_until(&mut alice, "the confirmation", |h| !shows(h, "(sending)"));
    assert_eq!(
        alice.query_all_by_label_contains("hello everyone").count(),
        1,
        "own shout shown once"
    );

    send(&mut alice, "!msg bob psst");
    step_until(&mut bob, "alice's conversation, unread", |h| {
        shows(h, "alice (1)")
    });
    bob.get_by_label("alice (1)").click();
    step_until(&mut bob, "the private message", |h| {
        shows(h, "(private) alice: psst")
    });
    bob.get_by_label(gui_client::state::ROOM_TITLE).click();
    settle(&mut bob);
    send(&mut alice, "!who");
    step_until(&mut alice, "the user list", |h| {
        shows(h, "Users online (2): alice, bob")
    });

    send(&mut alice, "/nope");
    assert!(shows(
        &alice,
        "unknown command /nope; type /help for the commands"
    ));
    assert_eq!(alice.state().state.input, "/nope", "kept for editing");
    alice.state_mut().state.input.clear();

    send(&mut alice, "\\q");
    assert_eq!(alice.state().state.phase, Phase::Idle);
    assert!(shows(&alice, "You left the chat."));
    step_until(&mut bob, "alice's leave", |h| shows(h, "alice left"));
}

#[test]
fn an_idle_chat_stops_repainting() {
    let (_broker, server) = testkit::inproc::system();
    let mut h = harness(server.json.port());
    log_in(&mut h, "idle");
    // Once the login's frames are drawn nothing arrives, so the UI must go quiet: a view
    // that asked for a repaint every frame would burn a core while the user reads.
    let deadline = Instant::now() + DEADLINE;
    while h.run_ok().is_none() {
        assert!(
            Instant::now() < deadline,
            "the idle UI never stopped repainting"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    h.run();
}

#[test]
fn a_taken_name_is_explained_on_the_connect_screen() {
    let (_broker, server) = testkit::inproc::system();
    let mut first = harness(server.json.port());
    log_in(&mut first, "carol");
    let mut second = harness(server.json.port());
    second.get_by_label("Name:").focus();
    settle(&mut second);
    second.get_by_label("Name:").type_text("carol");
    settle(&mut second);
    second.get_by_label("Connect").click();
    step_until(&mut second, "the name-taken error", |h| {
        shows(h, "already taken")
    });
    assert!(!second.state().state.in_chat);
}

#[test]
fn an_unreachable_server_is_explained() {
    // A port nobody listens on: bind, note it, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let mut h = harness(port);
    h.get_by_label("Name:").focus();
    settle(&mut h);
    h.get_by_label("Name:").type_text("dave");
    settle(&mut h);
    h.get_by_label("Connect").click();
    step_until(&mut h, "the unreachable error", |h| {
        shows(h, "Cannot reach the server")
    });
}

#[test]
fn a_server_restart_is_shown_and_survived() {
    let (_broker, broker_addr) = testkit::broker(&[]);
    let server = testkit::server(broker_addr, &[]);
    let port = server.json.port();
    let mut h = harness(port);
    log_in(&mut h, "erin");
    send(&mut h, "before the crash");

    server.proc.signal(libc::SIGKILL);
    step_until(&mut h, "the drop to be shown", |h| {
        matches!(
            h.state().state.phase,
            Phase::Waiting { .. } | Phase::Connecting { .. }
        ) && shows(h, "Connection lost")
    });
    assert!(shows(&h, "before the crash"), "history stays on screen");

    let listen = format!("127.0.0.1:{port}");
    let _restarted = testkit::server(broker_addr, &["--listen", &listen]);
    step_until(&mut h, "the automatic reconnect", |h| {
        h.state().state.is_online() && shows(h, "Reconnected")
    });
    assert!(shows(&h, "Connected as erin"));
    assert!(shows(&h, "before the crash"));
}

#[test]
fn disconnect_and_manual_reconnect() {
    let (_broker, server) = testkit::inproc::system();
    let mut h = harness(server.json.port());
    log_in(&mut h, "frank");
    h.get_by_label("Disconnect").click();
    settle(&mut h);
    assert!(shows(&h, "Disconnected from"));
    h.get_by_label("Reconnect").click();
    step_until(&mut h, "the manual reconnect", |h| {
        h.state().state.is_online()
    });
}

#[test]
fn a_hundred_thousand_lines_render_quickly() {
    let (_broker, server) = testkit::inproc::system();
    let mut h = harness(server.json.port());
    log_in(&mut h, "gina");
    let state = &mut h.state_mut().state;
    for i in 0..100_000 {
        state.conversations[0]
            .lines
            .push_back(gui_client::state::ChatLine::new(
                gui_client::state::LineKind::Chat,
                "bot",
                format!("line {i}"),
                "12:00".into(),
            ));
    }
    settle(&mut h);
    // Only the visible rows exist as widgets.
    let rows = h.query_all_by_label_contains("bot: line").count();
    assert!(rows > 0 && rows < 200, "{rows} rows laid out");
    assert!(shows(&h, "bot: line 99999"), "stuck to the bottom");
}

/// The largest filled rectangle among `shapes`, as a share of the window's area.
fn largest_fill(shapes: &[egui::epaint::ClippedShape], window: f32) -> f32 {
    fn walk(shape: &egui::Shape, window: f32, max: &mut f32) {
        match shape {
            egui::Shape::Vec(v) => v.iter().for_each(|s| walk(s, window, max)),
            egui::Shape::Rect(r) if r.fill.a() > 0 => *max = max.max(r.rect.area() / window),
            _ => {}
        }
    }
    let mut max = 0.0f32;
    for c in shapes {
        walk(&c.shape, window, &mut max);
    }
    max
}

#[test]
fn the_chat_screen_paints_no_panel_over_the_cleared_window() {
    // A software renderer pays for every pixel it fills: the panels filled the window
    // once more over the clear, and without that a frame with 100,000 messages took
    // about 0.56 of its time (BENCHMARKS.md, "2026-12-02 (day)"). The window is cleared to the
    // panels' colour (`ChatApp::clear_color`), so they need no fill of their own.
    let (_broker, server) = testkit::inproc::system();
    // As eframe runs it (`eframe::App::ui`), not inside the harness's own panel frame.
    let form = ConnectForm {
        host: "127.0.0.1".into(),
        port: server.json.port().to_string(),
        ..ConnectForm::default()
    };
    let mut h = Harness::builder()
        .with_size([900.0, 600.0])
        .build_eframe(|_| ChatApp::new(form, 10_000));
    let window = 900.0 * 600.0;
    let share = largest_fill(&h.output().shapes, window);
    assert!(share < 0.1, "the connect screen: a fill covers {share:.2}");
    log_in(&mut h, "hana");
    settle(&mut h);
    let share = largest_fill(&h.output().shapes, window);
    assert!(share < 0.1, "a fill covers {share:.2} of the window");
    // What shows instead is the clear, in the panels' colour, in either theme.
    for visuals in [egui::Visuals::dark(), egui::Visuals::light()] {
        let clear = eframe::App::clear_color(h.state(), &visuals);
        assert_eq!(clear, visuals.panel_fill.to_normalized_gamma_f32());
    }
}

/// Ticks "Use TLS" and types the CA file.
fn use_tls(h: &mut Harness<'static, ChatApp>, ca_file: &str) {
    h.get_by_label("Use TLS").click();
    settle(h);
    if !ca_file.is_empty() {
        h.get_by_label("CA file:").focus();
        settle(h);
        h.get_by_label("CA file:").type_text(ca_file);
        settle(h);
    }
}

#[test]
fn the_tls_switch_connects_securely_and_an_untrusted_server_is_explained() {
    let dir = std::env::temp_dir().join(format!("chat-gui-tls-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cert = dir.join("server-cert.pem");
    let (_broker, baddr) = testkit::inproc::broker(&[]);
    let (_server, _, tls) = testkit::inproc::tls_server(baddr, &cert);
    let tls_port = tls.port();

    // Trusting the server's certificate: online over TLS, and chatting works.
    let mut alice = harness(tls_port);
    use_tls(&mut alice, cert.to_str().expect("path"));
    log_in(&mut alice, "alice");
    assert!(
        shows(&alice, "(TLS)"),
        "the status says the connection is secure"
    );
    send(&mut alice, "over tls");
    step_until(&mut alice, "alice's own line", |h| shows(h, "over tls"));

    // Without the CA file the system's roots do not know a self-signed certificate.
    let mut wary = harness(tls_port);
    use_tls(&mut wary, "");
    wary.get_by_label("Name:").focus();
    settle(&mut wary);
    wary.get_by_label("Name:").type_text("wary");
    settle(&mut wary);
    wary.get_by_label("Connect").click();
    step_until(&mut wary, "the certificate error", |h| {
        shows(h, "TLS handshake failed") || shows(h, "no trusted certificates")
    });
    assert!(!wary.state().state.in_chat);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_long_message_is_shown_whole_wrapped_with_its_line_breaks_and_links() {
    let (_broker, server) = testkit::inproc::system();
    let mut h = harness(server.json.port());
    log_in(&mut h, "hana");
    let long = format!("{}\nsecond paragraph, the end", "word ".repeat(1000));
    let state = &mut h.state_mut().state;
    for text in [long.as_str(), "read https://example.org/docs please"] {
        state.conversations[0]
            .lines
            .push_back(gui_client::state::ChatLine::new(
                gui_client::state::LineKind::Chat,
                "bot",
                text,
                "12:00".into(),
            ));
    }
    settle(&mut h);
    // One label holds all 5,000 characters and the line break: nothing is cut off.
    let whole = h
        .query_all_by_label_contains("second paragraph, the end")
        .find(|n| {
            // A selectable label's text is its accessibility value.
            let text = n.value().unwrap_or_default();
            text.len() > 5000 && text.contains('\n')
        });
    assert!(whole.is_some(), "the whole message, with its line break");
    assert!(shows(&h, "https://example.org/docs"), "the link");
}

/// Types `text` where the keyboard focus is (not into a widget found by label: the point
/// is where the keys go).
fn type_here(h: &mut Harness<'static, ChatApp>, text: &str) {
    h.event(egui::Event::Text(text.into()));
    settle(h);
}

#[test]
fn the_keyboard_stays_in_the_message_box() {
    let (_broker, server) = testkit::inproc::system();
    let port = server.json.port();
    // The connect screen: the name field has the focus, and Enter connects.
    let mut h = harness(port);
    settle(&mut h);
    settle(&mut h);
    assert!(
        h.get_by_label("Name:").is_focused(),
        "the name field is focused"
    );
    type_here(&mut h, "ivy");
    h.key_press(egui::Key::Enter);
    step_until(&mut h, "the chat screen", |h| h.state().state.is_online());
    let mut bob = harness(port);
    log_in(&mut bob, "bob");
    step_until(&mut h, "bob's join", |h| {
        h.state().state.users.contains("bob")
    });
    settle(&mut h);

    // A mistake: the box keeps the focus, and what is typed next goes into it.
    type_here(&mut h, "/nope");
    h.key_press(egui::Key::Enter);
    settle(&mut h);
    assert!(shows(&h, "unknown command /nope"));
    assert!(
        h.get_by_label("Message:").is_focused(),
        "focus kept after an error"
    );
    h.state_mut().state.input.clear();
    settle(&mut h);
    // Tab completes a name and does not move the focus to a button.
    type_here(&mut h, "hi @b");
    h.key_press(egui::Key::Tab);
    settle(&mut h);
    settle(&mut h);
    assert_eq!(h.state().state.input, "hi @bob ");
    assert!(h.get_by_label("Message:").is_focused(), "focus kept on Tab");
    // Shift+Enter starts a new line; Enter sends both lines as one message.
    type_here(&mut h, "line one");
    h.key_press_modifiers(egui::Modifiers::SHIFT, egui::Key::Enter);
    settle(&mut h);
    type_here(&mut h, "line two");
    assert!(
        h.state().state.input.contains('\n'),
        "{:?}",
        h.state().state.input
    );
    h.key_press(egui::Key::Enter);
    settle(&mut h);
    assert!(h.state().state.input.is_empty(), "sent");
    step_until(&mut bob, "the two lines as one message", |h| {
        let room = &h.state().state.room().lines;
        room.iter().any(|l| l.text == "hi @bob line one\nline two")
    });
    // Up brings it back for editing.
    h.key_press(egui::Key::ArrowUp);
    settle(&mut h);
    assert!(
        h.state().state.input.ends_with("line two"),
        "{:?}",
        h.state().state.input
    );
}

#[test]
fn the_settings_panel_changes_the_theme_and_is_remembered() {
    let (_broker, server) = testkit::inproc::system();
    let mut h = harness(server.json.port());
    log_in(&mut h, "jo");
    h.get_by_label("Settings").click();
    settle(&mut h);
    h.get_by_label("Dark").click();
    settle(&mut h);
    settle(&mut h);
    assert_eq!(
        h.state().state.settings.theme,
        gui_client::settings::Theme::Dark
    );
    assert_eq!(h.ctx.theme(), egui::Theme::Dark, "drawn dark");
    h.get_by_label("Light").click();
    settle(&mut h);
    settle(&mut h);
    assert_eq!(h.ctx.theme(), egui::Theme::Light, "drawn light");
    let saved = serde_json::to_string(&h.state().state.settings).expect("serializable");
    assert!(saved.contains("Light"), "{saved}");
}

/// A seed-style client on `addr` logged in as `name`: it only sends.
fn talker(addr: std::net::SocketAddr, name: &str) -> std::net::TcpStream {
    use std::io::{BufRead, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.write_all(name.as_bytes()).expect("name");
    let mut welcome = String::new();
    std::io::BufReader::new(s.try_clone().expect("clone"))
        .read_line(&mut welcome)
        .expect("welcome");
    assert!(welcome.contains("welcome"), "{welcome}");
    s
}

/// Shouts `text` and waits for its confirmation (and so for everything sent before it).
fn shout_confirmed(s: &mut std::net::TcpStream, text: &str) {
    use std::io::{BufRead, Write};
    let frame = serde_json::json!({"to": "/shout", "msg": text});
    s.write_all(format!("{frame}\n").as_bytes()).expect("send");
    s.set_read_timeout(Some(DEADLINE)).expect("timeout");
    let mut reader = std::io::BufReader::new(s.try_clone().expect("clone"));
    loop {
        let mut line = String::new();
        assert!(reader.read_line(&mut line).expect("a frame") > 0, "closed");
        if line.contains("Message sent to") {
            return;
        }
    }
}

fn say(s: &mut std::net::TcpStream, text: &str) {
    use std::io::Write;
    let frame = serde_json::json!({"to": "*", "msg": text});
    s.write_all(format!("{frame}\n").as_bytes()).expect("send");
}

#[test]
fn history_pages_at_the_top_and_a_reconnect_fills_exactly_the_gap() {
    let (_broker, broker_addr) = testkit::broker(&[]);
    let a = testkit::server(broker_addr, &[]);
    let b = testkit::server(broker_addr, &[]);
    let mut lee = talker(b.json, "lee");
    for i in 0..60 {
        say(&mut lee, &format!("early {i}"));
    }
    // Confirmed before kim logs in: all 61 are in the log, none arrives live.
    shout_confirmed(&mut lee, "the last before kim");
    // Kim connects to server A after that: the room shows the last 50 events.
    let mut h = harness(a.json.port());
    log_in(&mut h, "kim");
    step_until(&mut h, "the room's last messages", |h| {
        shows(h, "lee: the last before kim")
    });
    let room = |h: &Harness<'static, ChatApp>| -> Vec<String> {
        let s = &h.state().state;
        s.room()
            .lines
            .iter()
            .filter(|l| l.id.is_some())
            .map(|l| l.text.clone())
            .collect()
    };
    assert_eq!(room(&h).len(), 50, "{:?}", room(&h));
    assert!(!room(&h).contains(&"early 0".to_string()));
    // Scrolling to the top loads the page before.
    step_until(&mut h, "older messages after scrolling up", |h| {
        // The topmost line drawn, scrolled up 100 px a step (through accessibility).
        if let Some(line) = h.query_all_by_label_contains("lee: early").next() {
            line.scroll_up();
        }
        room(h).contains(&"early 0".to_string())
    });

    // Server A dies; meanwhile lee, on server B, goes on talking.
    a.proc.signal(libc::SIGKILL);
    step_until(&mut h, "the drop", |h| shows(h, "Connection lost"));
    say(&mut lee, "while away 1");
    say(&mut lee, "while away 2");
    let listen = a.json.to_string();
    let text = a.text.to_string();
    let _a2 = testkit::server(broker_addr, &["--listen", &listen, "--text-listen", &text]);
    // (Checked in the state: the view is scrolled up, where the new lines are not drawn.)
    step_until(&mut h, "the reconnect and the missed messages", |h| {
        let lines = &h.state().state.room().lines;
        lines
            .iter()
            .any(|l| l.text == "2 messages while you were away")
            && lines.iter().any(|l| l.text == "while away 2")
    });
    let all = room(&h);
    let away: Vec<&String> = all.iter().filter(|t| t.starts_with("while away")).collect();
    assert_eq!(
        away,
        ["while away 1", "while away 2"],
        "each once, in order"
    );
    let mut sorted = h
        .state()
        .state
        .room()
        .lines
        .iter()
        .filter_map(|l| l.id)
        .collect::<Vec<_>>();
    let ids = sorted.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(ids, sorted, "ids ascending, none twice");
    // Scrolled up with news below: the way back to the end says how much is new.
    step_until(&mut h, "the jump button", |h| {
        shows(h, "Jump to latest (2 new messages)")
    });
    h.get_by_label_contains("Jump to latest").click();
    step_until(&mut h, "the end, read", |h| {
        let st = &h.state().state;
        st.following && st.room().unread == 0 && shows(h, "lee: while away 2")
    });
    assert!(!shows(&h, "Jump to latest"));
}
