//! The client's state and how it changes: pure logic, no window, no socket.
//!
//! The view reads [`ChatState`] and reports what the user did through its methods; the
//! network thread reports [`NetEvent`]s to [`ChatState::on_event`]. Every method returns
//! the [`Action`]s the app must carry out on the network, so the whole client can be
//! tested by feeding events and checking actions and state.

use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use chat_common::clock::{hhmm, now_ms};
use chat_common::command::{Dialect, Request, help, parse_typed};
use chat_common::name::validate_name;
use chat_common::{ClientFrame, ErrorCode, FrameKind, ServerFrame};
use serde::{Deserialize, Serialize};

use crate::backoff::Backoff;

/// Default number of messages kept on screen.
pub const DEFAULT_SCROLLBACK: usize = 100_000;

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

/// How a line in the message list is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    /// Someone's public message.
    Chat,
    /// My public message.
    Own,
    /// A private message to me.
    PrivateIn,
    /// A private message I sent.
    PrivateOut,
    /// Someone joined.
    Join,
    /// Someone left.
    Leave,
    /// A notice from the server or the client.
    System,
    /// An error.
    Error,
}

/// One line of the message list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatLine {
    /// `HH:MM`.
    pub time: String,
    /// How to show it.
    pub kind: LineKind,
    /// Sender (for chat and private lines), or the other party of a private message I sent.
    pub who: String,
    /// The text.
    pub text: String,
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
    /// The message list, oldest first, at most `scrollback` lines.
    pub messages: VecDeque<ChatLine>,
    /// Most lines kept.
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
    backoff: Backoff,
    ghost_retries: u32,
    next_conn: u64,
}

impl ChatState {
    /// A fresh state with a remembered form.
    pub fn new(form: ConnectForm, scrollback: usize) -> Self {
        ChatState {
            form,
            phase: Phase::Idle,
            in_chat: false,
            messages: VecDeque::new(),
            scrollback: scrollback.max(1),
            users: BTreeSet::new(),
            input: String::new(),
            connect_error: None,
            me: String::new(),
            tls: None,
            server: String::new(),
            focus_input: false,
            backoff: Backoff::default(),
            ghost_retries: 0,
            next_conn: 0,
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

    /// The user clicked a name in the user list: start a private message to them.
    pub fn user_clicked(&mut self, name: &str) {
        self.input = format!("@{name} ");
        self.focus_input = true;
    }

    /// The user pressed Enter (or Send) in the message box.
    ///
    /// The box speaks the typed dialect of the line port (PROTOCOL.md §7.2), parsed by
    /// `chat_common::command`; the request goes out as the JSON frame that asks for it
    /// (PROTOCOL.md §4). A mistake is shown and kept for editing, and nothing is sent.
    pub fn submit(&mut self) -> Vec<Action> {
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
        let Some(conn) = self.phase_online_conn() else {
            self.error("Not connected: the message was not sent.".to_string());
            return vec![];
        };
        self.input.clear();
        self.focus_input = true;
        let mut actions = vec![Action::Send {
            conn,
            frame: request.to_frame(),
        }];
        match request {
            // The server never echoes my own messages (PROTOCOL.md §4): show them myself.
            Request::Public { text, .. } => {
                let me = self.me.clone();
                self.push(LineKind::Own, me, text, None);
            }
            Request::Private { to, text } => self.push(LineKind::PrivateOut, to, text, None),
            Request::Quit => {
                actions.push(Action::Close { conn });
                self.phase = Phase::Idle;
                self.system("You left the chat.");
            }
            Request::List
            | Request::Time
            | Request::Standard
            | Request::Help
            | Request::History { .. }
            | Request::Resume { .. } => {}
        }
        actions
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
            (NetEvent::Frame { frame, .. }, Phase::Online { .. }) => {
                self.on_chat_frame(frame);
                vec![]
            }
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
            self.in_chat = true;
            self.focus_input = true;
            self.connect_error = None;
            self.backoff.reset();
            self.ghost_retries = 0;
            if rejoin {
                self.system(format!("Reconnected to {} as {}.", self.server, self.me));
            }
            self.push_frame(LineKind::System, &frame);
            return match &frame.users {
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

    fn on_chat_frame(&mut self, frame: ServerFrame) {
        if error_code(&frame).is_some() {
            self.push_frame(LineKind::Error, &frame);
            return;
        }
        match frame.kind.unwrap_or(FrameKind::Other) {
            FrameKind::Chat | FrameKind::History => self.push_frame(LineKind::Chat, &frame),
            FrameKind::Private => self.push_frame(LineKind::PrivateIn, &frame),
            FrameKind::Join => {
                if let Some(u) = &frame.user {
                    self.users.insert(u.clone());
                }
                self.push_frame(LineKind::Join, &frame);
            }
            FrameKind::Leave => {
                if let Some(u) = &frame.user {
                    self.users.remove(u);
                }
                self.push_frame(LineKind::Leave, &frame);
            }
            FrameKind::Users => {
                if let Some(list) = &frame.users {
                    self.users = list.iter().cloned().collect();
                }
                self.push_frame(LineKind::System, &frame);
            }
            // (Not reached: `error_code` reports every `error` frame.)
            FrameKind::Error => self.push_frame(LineKind::Error, &frame),
            FrameKind::System | FrameKind::Welcome | FrameKind::Other => {
                self.push_frame(LineKind::System, &frame)
            }
        }
    }

    fn push_frame(&mut self, kind: LineKind, frame: &ServerFrame) {
        self.push(kind, frame.from.name.clone(), frame.msg.clone(), frame.ts);
    }

    fn push(&mut self, kind: LineKind, who: String, text: String, ts: Option<u64>) {
        let time = hhmm(ts.unwrap_or_else(now_ms));
        self.messages.push_back(ChatLine {
            time,
            kind,
            who,
            text,
        });
        while self.messages.len() > self.scrollback {
            self.messages.pop_front();
        }
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
