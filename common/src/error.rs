//! Every error the chat system reports to a user, as typed values.
//!
//! A value renders (`Display`) to exactly the text users have always read after
//! `Error: `, and has a stable machine-readable [`ErrorCode`] that the server puts in the
//! `code` field of its error frames (PROTOCOL.md §6.8). Programs decide on the code, never
//! on the text: the text may be reworded, the code may not.
//!
//! The login refusals and the reasons a message could not be routed also travel over the
//! broker link as these enums (docs/ARCHITECTURE.md, "The broker link"), so no process ever
//! matches on a sentence.

use serde::{Deserialize, Serialize};

use crate::name::NameError;

/// What a server says when the chat service (the broker) cannot be reached.
pub const UNAVAILABLE: &str = "the chat service is unavailable right now; try again shortly";

/// The stable word for each kind of error, sent as `"code"` in error frames.
///
/// New codes may be added; a client that does not know one must treat it like a generic
/// error ([`ErrorCode::Other`] when parsed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The name is taken by someone online.
    NameTaken,
    /// The name breaks a naming rule.
    NameInvalid,
    /// The chat service cannot be reached: a login was refused.
    Unavailable,
    /// The chat service did not answer a login in time.
    ServiceTimeout,
    /// No name arrived within the login timeout.
    LoginTimeout,
    /// The connection tried to log in twice.
    AlreadyLoggedIn,
    /// The server holds as many connections as it may.
    ServerFull,
    /// Too many connections from one address.
    TooManyConnections,
    /// The recipient of a private message is not online.
    NotOnline,
    /// The sender is not (or no longer) logged in on the chat service.
    NotLoggedIn,
    /// A message was not delivered to anyone: the chat service was unavailable.
    NotDelivered,
    /// A message was sent out, but the link broke before every server had it.
    Lost,
    /// A message the broker could not store in its history: not delivered.
    NotStored,
    /// A message larger than the size limit once encoded: not delivered; the connection
    /// stays.
    MessageTooLarge,
    /// Disconnected for not reading (the send queue overflowed).
    SendQueueExceeded,
    /// Disconnected after the idle timeout.
    Idle,
    /// Disconnected: a frame (or line) begun was not finished in time.
    Unfinished,
    /// A frame (or line) that could not be used; the connection stays.
    BadFrame,
    /// A frame (or line) over the size limit; the connection closes.
    TooLarge,
    /// A frame without a recipient.
    NoRecipient,
    /// A command the server does not know.
    UnknownCommand,
    /// A command used wrongly (missing arguments).
    Usage,
    /// A history query that could not be read.
    BadQuery,
    /// The chat keeps no history.
    HistoryOff,
    /// A session that cannot be resumed.
    ResumeFailed,
    /// A code this version does not know (a newer server).
    #[serde(other)]
    Other,
}

impl ErrorCode {
    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::NameTaken => "name_taken",
            ErrorCode::NameInvalid => "name_invalid",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::ServiceTimeout => "service_timeout",
            ErrorCode::LoginTimeout => "login_timeout",
            ErrorCode::AlreadyLoggedIn => "already_logged_in",
            ErrorCode::ServerFull => "server_full",
            ErrorCode::TooManyConnections => "too_many_connections",
            ErrorCode::NotOnline => "not_online",
            ErrorCode::NotLoggedIn => "not_logged_in",
            ErrorCode::NotDelivered => "not_delivered",
            ErrorCode::Lost => "lost",
            ErrorCode::NotStored => "not_stored",
            ErrorCode::MessageTooLarge => "message_too_large",
            ErrorCode::SendQueueExceeded => "send_queue_exceeded",
            ErrorCode::Idle => "idle",
            ErrorCode::Unfinished => "unfinished",
            ErrorCode::BadFrame => "bad_frame",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::NoRecipient => "no_recipient",
            ErrorCode::UnknownCommand => "unknown_command",
            ErrorCode::Usage => "usage",
            ErrorCode::BadQuery => "bad_query",
            ErrorCode::HistoryOff => "history_off",
            ErrorCode::ResumeFailed => "resume_failed",
            ErrorCode::Other => "other",
        }
    }

    /// Every code but [`ErrorCode::Other`], for documentation and tests.
    pub const ALL: [ErrorCode; 25] = [
        ErrorCode::NameTaken,
        ErrorCode::NameInvalid,
        ErrorCode::Unavailable,
        ErrorCode::ServiceTimeout,
        ErrorCode::LoginTimeout,
        ErrorCode::AlreadyLoggedIn,
        ErrorCode::ServerFull,
        ErrorCode::TooManyConnections,
        ErrorCode::NotOnline,
        ErrorCode::NotLoggedIn,
        ErrorCode::NotDelivered,
        ErrorCode::Lost,
        ErrorCode::NotStored,
        ErrorCode::MessageTooLarge,
        ErrorCode::SendQueueExceeded,
        ErrorCode::Idle,
        ErrorCode::Unfinished,
        ErrorCode::BadFrame,
        ErrorCode::TooLarge,
        ErrorCode::NoRecipient,
        ErrorCode::UnknownCommand,
        ErrorCode::Usage,
        ErrorCode::BadQuery,
        ErrorCode::HistoryOff,
        ErrorCode::ResumeFailed,
    ];
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a login was refused. The broker sends the first three over the link; the server
/// adds the others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Refusal {
    /// Someone online has this name, or one that clashes with it (PROTOCOL.md §2.2).
    #[error("the name '{name}' is already in use")]
    NameTaken {
        /// The holder's name, as they typed it: the name asked for, or its look-alike
        /// (`Teacher` when `teacher` was asked for).
        name: String,
    },
    /// The name breaks a rule.
    #[error("invalid name: {reason}")]
    NameInvalid {
        /// The rule it breaks.
        reason: NameError,
    },
    /// The connection is already logged in (a server bug, never a user's).
    #[error("this connection is already logged in")]
    AlreadyLoggedIn,
    /// The chat service cannot be reached.
    #[error("{UNAVAILABLE}")]
    Unavailable,
    /// The chat service did not answer within the login timeout.
    #[error("the chat service did not answer in time; try again shortly")]
    ServiceTimeout,
    /// No name arrived within the login timeout.
    #[error("no name received within {} s", secs(*timeout_ms))]
    LoginTimeout {
        /// The login timeout.
        timeout_ms: u64,
    },
    /// The server is at its connection limit.
    #[error("the server is full ({limit} connections); try again later")]
    ServerFull {
        /// The limit.
        limit: usize,
    },
    /// The address is at its connection limit.
    #[error("too many connections from {ip} ({limit}); close one or try again later")]
    TooManyConnections {
        /// The address.
        ip: String,
        /// The limit.
        limit: usize,
    },
    /// Closed to make room: the address opened more connections that had not logged in
    /// than it may, and this was the oldest.
    #[error(
        "closed: more than {limit} connections from {ip} were logging in at once, and this was the oldest; send your name promptly"
    )]
    TooManyLogins {
        /// The address.
        ip: String,
        /// The limit.
        limit: usize,
    },
}

impl Refusal {
    /// The error code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Refusal::NameTaken { .. } => ErrorCode::NameTaken,
            Refusal::NameInvalid { .. } => ErrorCode::NameInvalid,
            Refusal::AlreadyLoggedIn => ErrorCode::AlreadyLoggedIn,
            Refusal::Unavailable => ErrorCode::Unavailable,
            Refusal::ServiceTimeout => ErrorCode::ServiceTimeout,
            Refusal::LoginTimeout { .. } => ErrorCode::LoginTimeout,
            Refusal::ServerFull { .. } => ErrorCode::ServerFull,
            Refusal::TooManyConnections { .. } | Refusal::TooManyLogins { .. } => {
                ErrorCode::TooManyConnections
            }
        }
    }
}

impl From<NameError> for Refusal {
    fn from(reason: NameError) -> Self {
        Refusal::NameInvalid { reason }
    }
}

/// Renders milliseconds as seconds the way people write them (`10`, `0.5`).
fn secs(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

/// Why the chat service could not route a private or public message (sent over the link).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Unroutable {
    /// Nobody with this name is online.
    #[error("user '{to}' is not online")]
    NotOnline {
        /// The recipient.
        to: String,
    },
    /// The sender's connection is not registered (it left while the message was on its way).
    #[error("you are not logged in")]
    NotLoggedIn,
    /// The broker could not store it in its history (its disk is full or failing), so it
    /// sent it to nobody rather than confirm what it could lose (PROTOCOL.md §10.6).
    #[error("not delivered: the chat service could not store it (its disk is full or failing)")]
    NotStored,
    /// The chat service did not confirm storing it in time (a NATS cluster that lost its
    /// quorum: PROTOCOL.md §6.4).
    #[error("not delivered: the chat service did not confirm it in time; try again shortly")]
    Unconfirmed,
}

impl Unroutable {
    /// The error code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Unroutable::NotOnline { .. } => ErrorCode::NotOnline,
            Unroutable::NotLoggedIn => ErrorCode::NotLoggedIn,
            Unroutable::NotStored => ErrorCode::NotStored,
            Unroutable::Unconfirmed => ErrorCode::NotDelivered,
        }
    }
}

/// Characters of a message quoted in an error about it.
pub const EXCERPT_CHARS: usize = 40;

/// The start of a message, quoted, on one line, to name it in an error: `"see you at 5"`,
/// or its first [`EXCERPT_CHARS`] characters and `…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Excerpt(String);

impl Excerpt {
    /// The excerpt of `text`.
    pub fn of(text: &str) -> Excerpt {
        let mut chars = text.chars();
        let head: String = chars
            .by_ref()
            .take(EXCERPT_CHARS)
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let more = if chars.next().is_some() { "…" } else { "" };
        Excerpt(format!("\"{head}{more}\""))
    }
}

impl std::fmt::Display for Excerpt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Any error a server reports to a client, in an error frame (`Error: ` + its text) or an
/// error line on the line port.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ChatError {
    /// The login was refused.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// A name taken meanwhile when the server re-registered its users after a broker
    /// restart: the client is logged out.
    #[error("{0}; you were logged out while the chat service was down")]
    LoggedOut(Refusal),
    /// A private message to a name nobody can have (checked without asking the broker);
    /// `Everyone` gets a hint towards the public recipients.
    #[error("user '{to}' is not online{}", everyone_hint(to))]
    NoSuchUser {
        /// The recipient as given.
        to: String,
    },
    /// The chat service could not route the message.
    #[error("{reason} (message {excerpt})")]
    Unroutable {
        /// Why.
        reason: Unroutable,
        /// Which message.
        excerpt: Excerpt,
    },
    /// The message reached nobody: the chat service was unavailable.
    #[error("message {excerpt} not delivered: {UNAVAILABLE}")]
    NotDelivered {
        /// Which message.
        excerpt: Excerpt,
    },
    /// The link broke after the message was sent out and before every server had it.
    #[error(
        "message {excerpt} may not have reached everyone: the connection to the chat service was lost"
    )]
    Lost {
        /// Which message.
        excerpt: Excerpt,
    },
    /// A message whose frame would exceed the size limit once encoded (a control byte
    /// takes six bytes in JSON): it goes nowhere, the connection stays.
    #[error(
        "message too large: {encoded} bytes once encoded, the limit is {limit}; message not delivered"
    )]
    MessageTooLarge {
        /// Its encoded size.
        encoded: usize,
        /// The limit.
        limit: usize,
    },
    /// The client's send queue overflowed: disconnected.
    #[error("disconnected: you are not reading your messages (send queue exceeded)")]
    SendQueueExceeded,
    /// Nothing received for the idle timeout: disconnected.
    #[error("disconnected: nothing received for {} s", secs(*after_ms))]
    Idle {
        /// The idle timeout.
        after_ms: u64,
    },
    /// A frame (or line) begun was not finished within the frame timeout: disconnected.
    #[error("disconnected: a {unit} was left unfinished for {} s", secs(*after_ms))]
    Unfinished {
        /// `frame` or `line`.
        unit: &'static str,
        /// The frame timeout.
        after_ms: u64,
    },
    /// A frame that could not be used (the connection stays).
    #[error(transparent)]
    BadFrame(#[from] crate::frame::FrameError),
    /// A line that is not UTF-8 (line port; the connection stays).
    #[error("that line is not valid UTF-8")]
    BadLine,
    /// A frame or line over the size limit: the connection closes.
    #[error("{unit} larger than {limit} bytes; closing the connection")]
    TooLarge {
        /// `frame` or `line`.
        unit: &'static str,
        /// The limit.
        limit: usize,
    },
    /// A frame with an empty `to`.
    #[error("the frame has no recipient in \"to\"")]
    NoRecipient,
    /// An unknown command; the text differs by dialect ([`crate::command::Dialect`]).
    #[error("{}", unknown_command(word, *dialect))]
    UnknownCommand {
        /// What was given.
        word: String,
        /// Where.
        dialect: crate::command::Dialect,
    },
    /// A command without its arguments: `usage: /msg nick text`.
    #[error("usage: {0}")]
    Usage(String),
    /// A history query that could not be read (PROTOCOL.md §10.2).
    #[error("bad history query: {0}")]
    BadQuery(#[from] crate::history::QueryError),
    /// The chat keeps no history (`broker --history off`).
    #[error("this chat keeps no history")]
    HistoryOff,
    /// A resume token that is unknown, expired or another name's (PROTOCOL.md §10.4).
    #[error("that session cannot be resumed (unknown or expired token, or another name's)")]
    ResumeFailed,
}

fn everyone_hint(to: &str) -> &'static str {
    // Any look-alike of `Everyone` is refused as that reserved word (PROTOCOL.md §2.2).
    if crate::name::clash(to, crate::EVERYONE) {
        " (to talk to everyone, send to /shout or *)"
    } else {
        ""
    }
}

fn unknown_command(word: &str, dialect: crate::command::Dialect) -> String {
    match dialect {
        crate::command::Dialect::Json => {
            format!("unknown command '{word}'; send to /help for the commands")
        }
        crate::command::Dialect::Typed => {
            format!("unknown command {word}; type /help for the commands")
        }
    }
}

impl ChatError {
    /// The error code.
    pub fn code(&self) -> ErrorCode {
        match self {
            ChatError::Refused(r) | ChatError::LoggedOut(r) => r.code(),
            ChatError::NoSuchUser { .. } => ErrorCode::NotOnline,
            ChatError::Unroutable { reason, .. } => reason.code(),
            ChatError::NotDelivered { .. } => ErrorCode::NotDelivered,
            ChatError::Lost { .. } => ErrorCode::Lost,
            ChatError::MessageTooLarge { .. } => ErrorCode::MessageTooLarge,
            ChatError::SendQueueExceeded => ErrorCode::SendQueueExceeded,
            ChatError::Idle { .. } => ErrorCode::Idle,
            ChatError::Unfinished { .. } => ErrorCode::Unfinished,
            ChatError::BadFrame(_) | ChatError::BadLine => ErrorCode::BadFrame,
            ChatError::TooLarge { .. } => ErrorCode::TooLarge,
            ChatError::NoRecipient => ErrorCode::NoRecipient,
            ChatError::UnknownCommand { .. } => ErrorCode::UnknownCommand,
            ChatError::Usage(_) => ErrorCode::Usage,
            ChatError::BadQuery(_) => ErrorCode::BadQuery,
            ChatError::HistoryOff => ErrorCode::HistoryOff,
            ChatError::ResumeFailed => ErrorCode::ResumeFailed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Dialect;
    use crate::frame::FrameError;

    #[test]
    fn an_excerpt_quotes_the_start_of_a_message_on_one_line() {
        assert_eq!(Excerpt::of("hi").to_string(), "\"hi\"");
        assert_eq!(Excerpt::of("").to_string(), "\"\"");
        assert_eq!(
            Excerpt::of("a\nb\tc").to_string(),
            "\"a b c\"",
            "no control characters"
        );
        let long = "é".repeat(50);
        assert_eq!(
            Excerpt::of(&long).to_string(),
            format!("\"{}…\"", "é".repeat(40))
        );
        assert_eq!(
            Excerpt::of(&"x".repeat(40)).to_string(),
            format!("\"{}\"", "x".repeat(40))
        );
    }

    /// The texts users and the class-chat tests have always read (PROTOCOL.md quotes them).
    #[test]
    fn every_error_renders_to_its_established_text() {
        let ex = || Excerpt::of("see you at 5");
        let cases: Vec<(ChatError, &str, ErrorCode)> = vec![
            (
                Refusal::NameTaken {
                    name: "alice".into(),
                }
                .into(),
                "the name 'alice' is already in use",
                ErrorCode::NameTaken,
            ),
            (
                Refusal::from(NameError::Empty).into(),
                "invalid name: the name is empty",
                ErrorCode::NameInvalid,
            ),
            (
                Refusal::from(NameError::Reserved("SERVER".into())).into(),
                "invalid name: the name \"SERVER\" is reserved",
                ErrorCode::NameInvalid,
            ),
            (
                Refusal::Unavailable.into(),
                UNAVAILABLE,
                ErrorCode::Unavailable,
            ),
            (
                Refusal::ServiceTimeout.into(),
                "the chat service did not answer in time; try again shortly",
                ErrorCode::ServiceTimeout,
            ),
            (
                Refusal::LoginTimeout { timeout_ms: 10_000 }.into(),
                "no name received within 10 s",
                ErrorCode::LoginTimeout,
            ),
            (
                Refusal::LoginTimeout { timeout_ms: 1_500 }.into(),
                "no name received within 1.5 s",
                ErrorCode::LoginTimeout,
            ),
            (
                Refusal::ServerFull { limit: 19_900 }.into(),
                "the server is full (19900 connections); try again later",
                ErrorCode::ServerFull,
            ),
            (
                Refusal::TooManyConnections {
                    ip: "10.0.0.7".into(),
                    limit: 256,
                }
                .into(),
                "too many connections from 10.0.0.7 (256); close one or try again later",
                ErrorCode::TooManyConnections,
            ),
            (
                Refusal::TooManyLogins {
                    ip: "10.0.0.7".into(),
                    limit: 32,
                }
                .into(),
                "closed: more than 32 connections from 10.0.0.7 were logging in at once, and this was the oldest; send your name promptly",
                ErrorCode::TooManyConnections,
            ),
            (
                ChatError::LoggedOut(Refusal::NameTaken { name: "x".into() }),
                "the name 'x' is already in use; you were logged out while the chat service was down",
                ErrorCode::NameTaken,
            ),
            (
                ChatError::NoSuchUser { to: "@bob".into() },
                "user '@bob' is not online",
                ErrorCode::NotOnline,
            ),
            (
                ChatError::NoSuchUser {
                    to: "everyone".into(),
                },
                "user 'everyone' is not online (to talk to everyone, send to /shout or *)",
                ErrorCode::NotOnline,
            ),
            (
                ChatError::NoSuchUser {
                    to: "\u{ff25}very\u{43e}ne".into(),
                },
                "user '\u{ff25}very\u{43e}ne' is not online (to talk to everyone, send to /shout or *)",
                ErrorCode::NotOnline,
            ),
            (
                ChatError::Unroutable {
                    reason: Unroutable::NotOnline { to: "zed".into() },
                    excerpt: Excerpt::of("are you there?"),
                },
                "user 'zed' is not online (message \"are you there?\")",
                ErrorCode::NotOnline,
            ),
            (
                ChatError::Unroutable {
                    reason: Unroutable::NotLoggedIn,
                    excerpt: ex(),
                },
                "you are not logged in (message \"see you at 5\")",
                ErrorCode::NotLoggedIn,
            ),
            (
                ChatError::NotDelivered { excerpt: ex() },
                "message \"see you at 5\" not delivered: the chat service is unavailable right now; try again shortly",
                ErrorCode::NotDelivered,
            ),
            (
                ChatError::Lost { excerpt: ex() },
                "message \"see you at 5\" may not have reached everyone: the connection to the chat service was lost",
                ErrorCode::Lost,
            ),
            (
                ChatError::MessageTooLarge {
                    encoded: 6_000_000,
                    limit: 1_048_576,
                },
                "message too large: 6000000 bytes once encoded, the limit is 1048576; message not delivered",
                ErrorCode::MessageTooLarge,
            ),
            (
                ChatError::SendQueueExceeded,
                "disconnected: you are not reading your messages (send queue exceeded)",
                ErrorCode::SendQueueExceeded,
            ),
            (
                ChatError::Idle { after_ms: 2_000 },
                "disconnected: nothing received for 2 s",
                ErrorCode::Idle,
            ),
            (
                ChatError::Unfinished {
                    unit: "frame",
                    after_ms: 30_000,
                },
                "disconnected: a frame was left unfinished for 30 s",
                ErrorCode::Unfinished,
            ),
            (
                FrameError::NotAnObject.into(),
                "expected a JSON object starting with '{'",
                ErrorCode::BadFrame,
            ),
            (
                ChatError::BadLine,
                "that line is not valid UTF-8",
                ErrorCode::BadFrame,
            ),
            (
                ChatError::TooLarge {
                    unit: "frame",
                    limit: 1_048_576,
                },
                "frame larger than 1048576 bytes; closing the connection",
                ErrorCode::TooLarge,
            ),
            (
                ChatError::NoRecipient,
                "the frame has no recipient in \"to\"",
                ErrorCode::NoRecipient,
            ),
            (
                ChatError::UnknownCommand {
                    word: "/nope".into(),
                    dialect: Dialect::Json,
                },
                "unknown command '/nope'; send to /help for the commands",
                ErrorCode::UnknownCommand,
            ),
            (
                ChatError::UnknownCommand {
                    word: "/nope".into(),
                    dialect: Dialect::Typed,
                },
                "unknown command /nope; type /help for the commands",
                ErrorCode::UnknownCommand,
            ),
            (
                ChatError::Usage("/msg nick text".into()),
                "usage: /msg nick text",
                ErrorCode::Usage,
            ),
        ];
        for (err, text, code) in cases {
            assert_eq!(err.to_string(), text);
            assert_eq!(err.code(), code, "{text}");
        }
    }

    #[test]
    fn codes_are_stable_snake_case_words() {
        for code in ErrorCode::ALL {
            let wire = serde_json::to_string(&code).unwrap();
            assert_eq!(wire, format!("\"{}\"", code.as_str()));
            assert_eq!(serde_json::from_str::<ErrorCode>(&wire).unwrap(), code);
            assert!(
                code.as_str()
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_')
            );
        }
        let unknown: ErrorCode = serde_json::from_str("\"from_the_future\"").unwrap();
        assert_eq!(unknown, ErrorCode::Other);
    }

    #[test]
    fn refusals_cross_the_link_as_values() {
        let cases = [
            Refusal::NameTaken { name: "a".into() },
            Refusal::from(NameError::ForbiddenChar('\u{200b}')),
            Refusal::from(NameError::TooLong { max: 32 }),
            Refusal::AlreadyLoggedIn,
        ];
        for r in cases {
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(serde_json::from_str::<Refusal>(&json).unwrap(), r, "{json}");
        }
        let u = Unroutable::NotOnline { to: "zed".into() };
        let json = serde_json::to_string(&u).unwrap();
        assert_eq!(serde_json::from_str::<Unroutable>(&json).unwrap(), u);
    }
}
