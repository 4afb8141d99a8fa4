//! The client's state and how it changes: pure logic, no window, no socket.
//!
//! The view reads [`ChatState`] and reports what the user did through its methods; the
//! network thread reports [`NetEvent`]s to [`ChatState::on_event`]. Every method returns
//! the [`Action`]s the app must carry out on the network, so the whole client can be
//! tested by feeding events and checking actions and state.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use chat_common::clock::{hhmm, now_ms};
use chat_common::command::{Dialect, Request, help, parse_typed};
use chat_common::name::validate_name;
use chat_common::{ClientFrame, ErrorCode, FrameKind, ServerFrame};
use serde::{Deserialize, Serialize};

use crate::backoff::Backoff;

mod attention;
mod conversation;
mod history;
mod outbox;
mod route;

pub use conversation::{ChatLine, ConvKey, Conversation, Delivery, LineKind};
pub use route::mentions;

/// Default number of messages kept on screen.
pub const DEFAULT_SCROLLBACK: usize = 100_000;

/// The public room's name in the list of conversations.
pub const ROOM_TITLE: &str = "# room";

/// How many times a reconnect retries while the server still holds our old connection's
/// name (the "ghost" it has not noticed is dead yet).
pub const GHOST_RETRIES: u32 = 10;

/// What the connect screen asks for; remembered between runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectForm {
    /// Server host name or IP.
    pub host: String,
    /// Server port, as typed.
    pub port: String,
    /// User name.
    pub name: String,
    /// Connect with TLS (the server's TLS port).
    #[serde(default)]
    pub tls: bool,
    /// With TLS: a PEM file of the certificate authority to trust instead of the system's
    /// (a server's `--tls-self-signed` certificate, say); empty for the system's roots.
    #[serde(default)]
    pub ca_file: String,
}

impl Default for ConnectForm {
    fn default() -> Self {
        ConnectForm {
            host: "127.0.0.1".into(),
            port: "65432".into(),
            name: String::new(),
            tls: false,
            ca_file: String::new(),
        }
    }
}

/// How to secure a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// The name the server's certificate must carry (the host as typed).
    pub server_name: String,
    /// The CA file to trust, or `None` for the system's roots.
    pub ca_file: Option<String>,
}

/// Where the connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Not connected and not trying.
    Idle,
    /// Connecting and logging in; `rejoin` after a lost connection.
    Connecting {
        /// Connection id.
        conn: u64,
        /// A reconnection rather than the user's first connect.
        rejoin: bool,
    },
    /// Logged in.
    Online {
        /// Connection id.
        conn: u64,
    },
    /// The connection dropped; the next attempt is due at `until`.
    Waiting {
        /// When to try again.
        until: Instant,
    },
}

/// What the network thread reports.
#[derive(Debug, Clone, PartialEq)]
#[allow(
    clippy::large_enum_variant,
    reason = "frames are nearly every event: boxing them would cost an allocation each to shrink the rare ones"
)]
pub enum NetEvent {
    /// A frame from the server on connection `conn`.
    Frame {
        /// Connection id.
        conn: u64,
        /// The frame.
        frame: ServerFrame,
    },
    /// The TCP connection could not be made.
    ConnectFailed {
        /// Connection id.
        conn: u64,
        /// Why, from the OS.
        reason: String,
    },
    /// The connection ended.
    Closed {
        /// Connection id.
        conn: u64,
        /// Why.
        reason: String,
    },
}

/// What the app must do on the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Open connection `conn` to `addr` and log in as `name`.
    Connect {
        /// Connection id.
        conn: u64,
        /// `host:port`.
        addr: String,
        /// Login name.
        name: String,
        /// TLS, or `None` for plain TCP.
        tls: Option<TlsSettings>,
    },
    /// Send a frame on connection `conn`.
    Send {
        /// Connection id.
        conn: u64,
        /// The frame.
        frame: ClientFrame,
    },
    /// Close connection `conn`.
    Close {
        /// Connection id.
        conn: u64,
    },
}

/// Everything the client shows and remembers.
#[derive(Debug)]
pub struct ChatState {
    /// The connect screen's fields.
    pub form: ConnectForm,
    /// Connection phase.
    pub phase: Phase,
    /// Whether the chat screen is shown (after the first successful login).
    pub in_chat: bool,
    /// The conversations: the public room first, then one per person, in the order they
    /// began.
    pub conversations: Vec<Conversation>,
    /// The one shown.
    pub active: usize,
    /// Whether the view shows the end of the active conversation (new lines there are then
    /// read as they come).
    pub following: bool,
    /// Whether the window has the keyboard focus (what does not reach the user's eyes asks
    /// for attention).
    pub window_focused: bool,
    /// Most lines kept per conversation.
    pub scrollback: usize,
    /// Users online, sorted.
    pub users: BTreeSet<String>,
    /// The message box.
    pub input: String,
    /// Error shown on the connect screen.
    pub connect_error: Option<String>,
    /// The name of the current session.
    pub me: String,
    /// TLS settings of the current session (`None`: plain TCP).
    pub tls: Option<TlsSettings>,
    /// `host:port` of the current session.
    pub server: String,
    /// Set when the message box should take keyboard focus; the view clears it.
    pub focus_input: bool,
    /// The settings panel's choices (remembered between runs).
    pub settings: crate::settings::Settings,
    /// Whether the settings panel is open.
    pub settings_open: bool,
    /// The server said its chat service is lost (PROTOCOL.md §6.4): connected, but nothing
    /// is delivered until it is back.
    pub degraded: bool,
    /// Something arrived that should catch the user's eye: the app asks the window manager
    /// for attention (and a desktop notification) and clears it.
    pub attention: Option<String>,
    backoff: Backoff,
    ghost_retries: u32,
    next_conn: u64,
    history: history::Sync,
    outbox: outbox::Outbox,
}

impl ChatState {
    /// A fresh state with a remembered form.
    pub fn new(form: ConnectForm, scrollback: usize) -> Self {
        ChatState {
            form,
            phase: Phase::Idle,
            in_chat: false,
            conversations: vec![Conversation::new(ConvKey::Room, ROOM_TITLE, scrollback)],
            active: 0,
            following: true,
            window_focused: true,
            scrollback: scrollback.max(1),
            users: BTreeSet::new(),
            input: String::new(),
            connect_error: None,
            me: String::new(),
            tls: None,
            server: String::new(),
            focus_input: false,
            settings: crate::settings::Settings::default(),
            settings_open: false,
            degraded: false,
            attention: None,
            backoff: Backoff::default(),
            ghost_retries: 0,
            next_conn: 0,
            history: history::Sync::default(),
            outbox: outbox::Outbox::default(),
        }
    }

    fn current_conn(&self) -> Option<u64> {
        match self.phase {
            Phase::Connecting { conn, .. } | Phase::Online { conn } => Some(conn),
            Phase::Idle | Phase::Waiting { .. } => None,
        }
    }

    /// Whether frames can be sent now.
    pub fn is_online(&self) -> bool {
        matches!(self.phase, Phase::Online { .. })
    }

    fn start_connection(&mut self, rejoin: bool) -> Vec<Action> {
        self.next_conn += 1;
        let conn = self.next_conn;
        self.phase = Phase::Connecting { conn, rejoin };
        vec![Action::Connect {
            conn,
            addr: self.server.clone(),
            name: self.me.clone(),
            tls: self.tls.clone(),
        }]
    }

    /// The user pressed Connect.
    pub fn connect_clicked(&mut self) -> Vec<Action> {
        let host = self.form.host.trim().to_string();
        let name = self.form.name.trim().to_string();
        if host.is_empty() {
            self.connect_error = Some("Enter the server's host name or IP address.".into());
            return vec![];
        }
        let port = match self.form.port.trim().parse::<u16>() {
            Ok(p) if p > 0 => p,
            _ => {
                self.connect_error = Some("The port must be a number from 1 to 65535.".into());
                return vec![];
            }
        };
        if let Err(e) = validate_name(&name) {
            self.connect_error = Some(format!("Invalid name: {e}."));
            return vec![];
        }
        let mut actions = self.close_current();
        self.connect_error = None;
        self.me = name;
        let ca_file = self.form.ca_file.trim();
        self.tls = self.form.tls.then(|| TlsSettings {
            server_name: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            ca_file: (!ca_file.is_empty()).then(|| ca_file.to_string()),
        });
        self.server = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        self.backoff.reset();
        self.ghost_retries = 0;
        actions.extend(self.start_connection(false));
        actions
    }

    fn close_current(&mut self) -> Vec<Action> {
        let actions = self
            .current_conn()
            .map(|conn| Action::Close { conn })
            .into_iter()
            .collect();
        self.phase = Phase::Idle;
        actions
    }

    /// The user pressed Disconnect: stop, and do not reconnect.
    pub fn disconnect_clicked(&mut self) -> Vec<Action> {
        let was = self.phase;
        let actions = self.close_current();
        self.connection_lost();
        self.give_up_queued("not sent: you disconnected");
        if was != Phase::Idle {
            self.system("Disconnected.");
        }
        actions
    }

    /// The user pressed Reconnect (after a drop, or after Disconnect).
    pub fn reconnect_clicked(&mut self) -> Vec<Action> {
        if self.server.is_empty()
            || matches!(self.phase, Phase::Connecting { .. } | Phase::Online { .. })
        {
            return vec![];
        }
        self.ghost_retries = 0;
        self.start_connection(true)
    }

    /// The user wants the connect screen back (to change server or name).
    pub fn back_to_connect(&mut self) -> Vec<Action> {
        let actions = self.close_current();
        self.in_chat = false;
        actions
    }

    /// Time passed: starts a due reconnection.
    pub fn tick(&mut self, now: Instant) -> Vec<Action> {
        match self.phase {
            Phase::Waiting { until } if now >= until => self.start_connection(true),
            _ => vec![],
        }
    }

    /// When the app should call [`Self::tick`] next, if a reconnection is scheduled.
    pub fn next_wakeup(&self) -> Option<Instant> {
        match self.phase {
            Phase::Waiting { until } => Some(until),
            _ => None,
        }
    }

    fn schedule_reconnect(&mut self, now: Instant) {
        let delay = self.backoff.next_delay();
        self.phase = Phase::Waiting { until: now + delay };
    }

    /// The user clicked a name in the user list: the conversation with them opens (a new
    /// one if there was none), and what is typed next goes to them.
    pub fn user_clicked(&mut self, name: &str) {
        if chat_common::name::clash(name, &self.me) {
            return;
        }
        let i = self.conversation(&ConvKey::with(name), name);
        self.select(i);
    }

    /// The user pressed Enter (or Send) in the message box.
    ///
    /// The box speaks the typed dialect of the line port (PROTOCOL.md §7.2), parsed by
    /// `chat_common::command`; the request goes out as the JSON frame that asks for it
    /// (PROTOCOL.md §4). A mistake is shown and kept for editing, and nothing is sent.
    pub fn submit(&mut self) -> Vec<Action> {
        // Whatever happens, the next thing typed goes into the box again.
        self.focus_input = true;
        let request = match parse_typed(&self.input) {
            Ok(Some(request)) => request,
            Ok(None) => return vec![],
            Err(mistake) => {
                self.error(mistake.to_string());
                return vec![];
            }
        };
        if request == Request::Help {
            // The server's `/help` on the JSON port lists values of `to` (PROTOCOL.md
            // §4.7), which is not what a person types here: show the typed dialect's help,
            // generated from the same table, without asking the server (works offline too).
            self.input.clear();
            self.focus_input = true;
            for line in help(Dialect::Typed).lines() {
                self.system(line);
            }
            return vec![];
        }
        // In a private conversation, plain text goes to that person.
        let request = match (request, &self.conversations[self.active].key) {
            (Request::Public { text, .. }, ConvKey::With(_)) => Request::Private {
                to: self.conversations[self.active].title.clone(),
                text,
            },
            (request, _) => request,
        };
        self.outbox.remember(&self.input);
        self.input.clear();
        self.focus_input = true;
        match request {
            // Messages wait while disconnected, and are shown as pending until the server
            // confirms them (the server never echoes my own messages: PROTOCOL.md §4).
            Request::Public { text, confirm } => self.send_message(None, text, confirm),
            Request::Private { to, text } => self.send_message(Some(to), text, false),
            other => {
                let Some(conn) = self.phase_online_conn() else {
                    self.error("Not connected: the command was not sent.".to_string());
                    return vec![];
                };
                let mut actions = vec![Action::Send {
                    conn,
                    frame: other.to_frame(),
                }];
                if other == Request::Quit {
                    actions.push(Action::Close { conn });
                    self.phase = Phase::Idle;
                    self.system("You left the chat.");
                }
                actions
            }
        }
    }

    fn phase_online_conn(&self) -> Option<u64> {
        match self.phase {
            Phase::Online { conn } => Some(conn),
            _ => None,
        }
    }

    /// Applies something the network thread reported.
    pub fn on_event(&mut self, event: NetEvent, now: Instant) -> Vec<Action> {
        let (NetEvent::Frame { conn, .. }
        | NetEvent::ConnectFailed { conn, .. }
        | NetEvent::Closed { conn, .. }) = &event;
        if self.current_conn() != Some(*conn) {
            return vec![]; // a connection we already gave up on
        }
        match (event, self.phase) {
            (NetEvent::Frame { frame, conn }, Phase::Connecting { rejoin, .. }) => {
                self.on_login_frame(conn, frame, rejoin, now)
            }
            (NetEvent::Frame { frame, .. }, Phase::Online { .. }) => self.on_chat_frame(frame),
            (NetEvent::ConnectFailed { reason, .. }, Phase::Connecting { rejoin: false, .. }) => {
                self.phase = Phase::Idle;
                self.connect_error = Some(format!(
                    "Cannot reach the server at {}: {reason}.",
                    self.server
                ));
                vec![]
            }
            (NetEvent::Closed { reason, .. }, Phase::Connecting { rejoin: false, .. }) => {
                self.phase = Phase::Idle;
                self.connect_error = Some(format!(
                    "The server at {} closed the connection: {reason}.",
                    self.server
                ));
                vec![]
            }
            (
                NetEvent::ConnectFailed { reason, .. } | NetEvent::Closed { reason, .. },
                Phase::Connecting { rejoin: true, .. },
            ) => {
                self.schedule_reconnect(now);
                self.system(format!(
                    "Reconnect failed: {reason}. {}",
                    self.retry_hint(now)
                ));
                vec![]
            }
            (NetEvent::Closed { reason, .. }, Phase::Online { .. }) => {
                self.connection_lost();
                self.schedule_reconnect(now);
                self.system(format!(
                    "Connection lost: {reason}. {}",
                    self.retry_hint(now)
                ));
                vec![]
            }
            _ => vec![],
        }
    }

    fn retry_hint(&self, now: Instant) -> String {
        match self.phase {
            Phase::Waiting { until } => {
                let secs = until.saturating_duration_since(now).as_secs_f32();
                format!("Reconnecting in {secs:.1} s.")
            }
            _ => String::new(),
        }
    }

    fn on_login_frame(
        &mut self,
        conn: u64,
        frame: ServerFrame,
        rejoin: bool,
        now: Instant,
    ) -> Vec<Action> {
        let Some(refusal) = error_code(&frame) else {
            // The first frame after login is the welcome (PROTOCOL.md §2.3).
            self.phase = Phase::Online { conn };
            self.degraded = false;
            self.in_chat = true;
            self.focus_input = true;
            self.connect_error = None;
            self.backoff.reset();
            self.ghost_retries = 0;
            if rejoin {
                self.system(format!("Reconnected to {} as {}.", self.server, self.me));
            }
            self.push_frame(LineKind::System, &frame);
            let mut actions = match &frame.users {
                Some(list) => {
                    self.users = list.iter().cloned().collect();
                    vec![]
                }
                // A large room sends the count only: ask for the list once.
                None => {
                    self.users = [self.me.clone()].into();
                    vec![Action::Send {
                        conn,
                        frame: Request::List.to_frame(),
                    }]
                }
            };
            // The session, the history, then what waited to be sent.
            actions.extend(self.after_welcome(conn, &frame, rejoin));
            actions.extend(self.flush_outbox(conn));
            return actions;
        };
        // A refusal (PROTOCOL.md §2.4): one error frame, then the server closes.
        let close = vec![Action::Close { conn }];
        let taken = refusal == ErrorCode::NameTaken;
        if rejoin && (!taken || self.ghost_retries < GHOST_RETRIES) {
            // After a drop, our own old connection may still hold the name until the
            // server notices it is gone; other refusals (service unavailable) pass too.
            if taken {
                self.ghost_retries += 1;
            }
            self.schedule_reconnect(now);
            let hint = self.retry_hint(now);
            self.system(format!("{} {hint}", frame.msg));
            return close;
        }
        self.phase = Phase::Idle;
        let message = friendly_refusal(refusal, &frame.msg, &self.me);
        if self.in_chat {
            self.error(message.clone());
        }
        self.connect_error = Some(message);
        close
    }

    fn push(&mut self, kind: LineKind, who: String, text: String, ts: Option<u64>) {
        let time = hhmm(ts.unwrap_or_else(now_ms));
        self.conversations[self.active].add(ChatLine::new(kind, who, text, time));
    }

    fn system(&mut self, text: impl Into<String>) {
        self.push(LineKind::System, String::new(), text.into(), None);
    }

    fn error(&mut self, text: String) {
        self.push(LineKind::Error, String::new(), text, None);
    }

    /// The status line.
    pub fn status(&self, now: Instant) -> String {
        match self.phase {
            Phase::Idle if self.server.is_empty() => "Not connected".to_string(),
            Phase::Idle => format!("Disconnected from {}", self.server),
            Phase::Connecting { rejoin: false, .. } => {
                format!("Connecting to {} as {}...", self.server, self.me)
            }
            Phase::Connecting { rejoin: true, .. } => {
                format!(
                    "Reconnecting to {} (attempt {})...",
                    self.server,
                    self.backoff.attempts() + 1
                )
            }
            Phase::Online { .. } if self.degraded => format!(
                "Degraded: connected to {}, but its chat service is lost; messages wait until it is back",
                self.server
            ),
            Phase::Online { .. } => {
                let secure = if self.tls.is_some() { " (TLS)" } else { "" };
                format!("Connected as {} to {}{secure}", self.me, self.server)
            }
            Phase::Waiting { until } => {
                let secs = until.saturating_duration_since(now).as_secs_f32();
                format!(
                    "Connection lost; reconnecting to {} in {secs:.0} s",
                    self.server
                )
            }
        }
    }

    /// Time until the next scheduled reconnect (for the view's repaint timer).
    pub fn wait_left(&self, now: Instant) -> Option<Duration> {
        self.next_wakeup().map(|t| t.saturating_duration_since(now))
    }
}

/// What kind of error `frame` reports, or `None` when it is not an error.
///
/// Every decision the client takes about an error is taken on this code: the server's
/// `code` field (PROTOCOL.md §6), never its text, which may be reworded. A frame with a
/// `code` is an error whatever its `type` says.
pub fn error_code(frame: &ServerFrame) -> Option<ErrorCode> {
    match frame.code {
        Some(code) => Some(code),
        None => old_server_error_code(frame),
    }
}

/// FALLBACK FOR OLD SERVERS ONLY, and the only place the client reads a server's words to
/// decide something: a frame without `code` comes from a server older than the codes.
///
/// Such a frame is an error if its `type` is `error`, or, from a server older still that
/// sends no `type`, if its text starts with `Error` (PROTOCOL.md §2.4). The code is guessed
/// from the wording of those servers, for the codes the client acts on (the login
/// refusals); any other error reads as [`ErrorCode::Other`], which is shown as sent.
fn old_server_error_code(frame: &ServerFrame) -> Option<ErrorCode> {
    let msg = frame.msg.as_str();
    let is_error = match frame.kind {
        Some(kind) => kind == FrameKind::Error,
        None => msg.starts_with("Error"),
    };
    if !is_error {
        return None;
    }
    Some(if msg.contains("already in use") {
        ErrorCode::NameTaken
    } else if msg.contains("invalid name") {
        ErrorCode::NameInvalid
    } else if msg.contains("unavailable") {
        ErrorCode::Unavailable
    } else {
        ErrorCode::Other
    })
}

/// A login refusal in words for the connect screen, chosen by its code; the server's text
/// fills in the details (why a name is invalid) or is shown as it is.
fn friendly_refusal(code: ErrorCode, msg: &str, name: &str) -> String {
    let text = msg.strip_prefix("Error:").unwrap_or(msg).trim();
    match code {
        ErrorCode::NameTaken => {
            format!("The name \"{name}\" is already taken. Choose another name.")
        }
        ErrorCode::NameInvalid => {
            let reason = text.strip_prefix("invalid name:").unwrap_or(text).trim();
            format!("The server refused the name \"{name}\": {reason}")
        }
        ErrorCode::Unavailable => {
            "The chat service is unavailable right now. Try again shortly.".to_string()
        }
        _ => text.to_string(),
    }
}
