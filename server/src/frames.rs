//! The frames the server writes, and their encoding for each port.

use bytes::Bytes;
use chat_common::{EVERYONE, FrameKind, SERVER_NAME, Sender, ServerFrame};

/// How a client wants its frames: JSON objects or readable lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The JSON port.
    Json,
    /// The line port.
    Line,
}

/// Encodes a frame for one port.
pub fn encode(frame: &ServerFrame, format: Format) -> Bytes {
    match format {
        Format::Json => frame.to_bytes(),
        Format::Line => Bytes::from(chat_common::line::render(frame)),
    }
}

/// A frame encoded lazily, at most once per format, for a fan-out.
pub struct Encoded<'a> {
    frame: &'a ServerFrame,
    json: Option<Bytes>,
    line: Option<Bytes>,
}

impl<'a> Encoded<'a> {
    /// Wraps a frame; nothing is serialized yet.
    pub fn new(frame: &'a ServerFrame) -> Self {
        Encoded {
            frame,
            json: None,
            line: None,
        }
    }

    /// The bytes for `format`, shared by every client of that format.
    pub fn get(&mut self, format: Format) -> Bytes {
        let slot = match format {
            Format::Json => &mut self.json,
            Format::Line => &mut self.line,
        };
        slot.get_or_insert_with(|| encode(self.frame, format))
            .clone()
    }
}

fn server(ip: &str) -> Sender {
    Sender {
        name: SERVER_NAME.to_string(),
        ip: ip.to_string(),
    }
}

fn stamped(mut f: ServerFrame, ts: u64, id: Option<u64>) -> ServerFrame {
    f.ts = Some(ts);
    f.id = id;
    f
}

/// The first frame after a successful login: every name online, or (in a large room,
/// `users` is `None`) just how many there are.
pub fn welcome(
    server_ip: &str,
    name: &str,
    users: Option<Vec<String>>,
    online: usize,
) -> ServerFrame {
    let msg = match &users {
        Some(list) => format!(
            "Welcome {name}! Users online ({}): {}. Type /help for the commands.",
            list.len(),
            list.join(", ")
        ),
        None => format!(
            "Welcome {name}! {online} users online; send /list to see them. Type /help for the commands."
        ),
    };
    let mut f = stamped(
        ServerFrame::new(server(server_ip), name, msg, FrameKind::Welcome),
        chat_common::clock::now_ms(),
        None,
    );
    f.users = users;
    f
}

/// An error; `msg` always starts with `Error`.
pub fn error(server_ip: &str, to: &str, msg: impl std::fmt::Display) -> ServerFrame {
    let f = ServerFrame::new(
        server(server_ip),
        to,
        format!("Error: {msg}"),
        FrameKind::Error,
    );
    stamped(f, chat_common::clock::now_ms(), None)
}

/// A notice for one client.
pub fn system(server_ip: &str, to: &str, msg: impl Into<String>) -> ServerFrame {
    stamped(
        ServerFrame::new(server(server_ip), to, msg, FrameKind::System),
        chat_common::clock::now_ms(),
        None,
    )
}

/// The `/list` answer.
pub fn users(server_ip: &str, to: &str, users: Vec<String>) -> ServerFrame {
    let msg = format!("Users online ({}): {}", users.len(), users.join(", "));
    let mut f = stamped(
        ServerFrame::new(server(server_ip), to, msg, FrameKind::Users),
        chat_common::clock::now_ms(),
        None,
    );
    f.users = Some(users);
    f
}

/// After a burst of joins and leaves that were not announced one by one: the whole list,
/// as a `users` frame (clients that keep a user list replace theirs with it).
pub fn presence_burst(server_ip: &str, joined: u64, left: u64, users: Vec<String>) -> ServerFrame {
    let msg = format!(
        "{joined} joined and {left} left just now. Users online ({}): {}",
        users.len(),
        users.join(", ")
    );
    let mut f = stamped(
        ServerFrame::new(server(server_ip), EVERYONE, msg, FrameKind::Users),
        chat_common::clock::now_ms(),
        None,
    );
    f.users = Some(users);
    f
}

/// A public message as delivered to everyone.
pub fn chat(from: Sender, msg: String, id: u64, ts: u64) -> ServerFrame {
    stamped(
        ServerFrame::new(from, EVERYONE, msg, FrameKind::Chat),
        ts,
        Some(id),
    )
}

/// A private message as delivered to its recipient.
pub fn private(from: Sender, to: String, msg: String, id: u64, ts: u64) -> ServerFrame {
    stamped(
        ServerFrame::new(from, to, msg, FrameKind::Private),
        ts,
        Some(id),
    )
}

/// A join or leave notice.
pub fn presence(server_ip: &str, user: &str, joined: bool, id: u64, ts: u64) -> ServerFrame {
    let (kind, verb) = if joined {
        (FrameKind::Join, "joined")
    } else {
        (FrameKind::Leave, "left")
    };
    let mut f = stamped(
        ServerFrame::new(
            server(server_ip),
            EVERYONE,
            format!("{user} {verb} the chat"),
            kind,
        ),
        ts,
        Some(id),
    );
    f.user = Some(user.to_string());
    f
}
