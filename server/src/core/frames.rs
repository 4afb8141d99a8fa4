//! The frames the server writes (PROTOCOL.md §3–§6), and their encoding for each port.
//!
//! Pure: building and encoding frames touches no socket, so every text here is tested on
//! values.

use crate::core::requests::Label;
use bytes::Bytes;
use chat_common::{ChatError, EVERYONE, FrameKind, SERVER_NAME, Sender, ServerFrame};

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

/// Appends `frame` as `format` writes it to `out`: an answer of many frames is queued as one
/// buffer (a history page: one push instead of 500).
pub fn encode_into(frame: &ServerFrame, format: Format, out: &mut Vec<u8>) {
    match format {
        Format::Json => frame.write_line(out),
        Format::Line => out.extend_from_slice(chat_common::line::render(frame).as_bytes()),
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

/// An error frame: `msg` is `Error: ` and the error's text, `code` its kind (PROTOCOL.md
/// §6.8).
pub fn error(server_ip: &str, to: &str, err: &ChatError) -> ServerFrame {
    let mut f = ServerFrame::new(
        server(server_ip),
        to,
        format!("Error: {err}"),
        FrameKind::Error,
    );
    f.code = Some(err.code());
    stamped(f, chat_common::clock::now_ms(), None)
}

/// The confirmation of a `/shout` (or of a labelled message): how many users it reached,
/// and the `id` it got (PROTOCOL.md §3.4, §4.3).
pub fn sent_to(server_ip: &str, to: &str, recipients: u32, id: u64, label: Label) -> ServerFrame {
    let s = if recipients == 1 { "" } else { "s" };
    let mut f = system(
        server_ip,
        to,
        format!("Message sent to {recipients} user{s}"),
    );
    f.id = Some(id);
    f.label = label.map(String::from);
    f
}

/// What clients are told when the service is lost (PROTOCOL.md §6.4).
pub const DEGRADED: &str =
    "The chat service is degraded: the connection to the broker was lost. Reconnecting...";

/// What clients are told when it is back.
pub const BACK: &str = "The chat service is back.";

/// The notice to everyone that the chat service was lost or is back (PROTOCOL.md §6.4).
pub fn service(server_ip: &str, state: chat_common::frame::Service) -> ServerFrame {
    let msg = match state {
        chat_common::frame::Service::Down => DEGRADED,
        chat_common::frame::Service::Up => BACK,
    };
    let mut f = system(server_ip, EVERYONE, msg);
    f.service = Some(state);
    f
}

/// The summary a large room hears instead of every join and leave (PROTOCOL.md §6.6).
pub fn large_room(server_ip: &str, online: usize, joined: u64, left: u64) -> ServerFrame {
    system(
        server_ip,
        EVERYONE,
        format!(
            "{online} users online ({joined} joined, {left} left recently; send /list to see who)"
        ),
    )
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
pub fn users(server_ip: &str, to: &str, users: &[String]) -> ServerFrame {
    let msg = format!("Users online ({}): {}", users.len(), users.join(", "));
    let mut f = stamped(
        ServerFrame::new(server(server_ip), to, msg, FrameKind::Users),
        chat_common::clock::now_ms(),
        None,
    );
    f.users = Some(users.to_vec());
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

/// An event replayed from the history: the frame it was delivered as, plus `history: true`
/// (PROTOCOL.md §10.2).
pub fn replayed(server_ip: &str, e: chat_common::link::HistoryEvent) -> ServerFrame {
    use chat_common::link::HistoryKind;
    let mut f = match e.kind {
        HistoryKind::Chat => chat(e.from, e.msg, e.id, e.ts),
        HistoryKind::Private => {
            let to = e.to.unwrap_or_default();
            private(e.from, to, e.msg, e.id, e.ts)
        }
        HistoryKind::Join => presence(server_ip, &e.from.name, true, e.id, e.ts),
        HistoryKind::Leave => presence(server_ip, &e.from.name, false, e.id, e.ts),
    };
    f.history = Some(true);
    f
}

/// The frame that ends a history answer (PROTOCOL.md §10.2).
pub fn history_end(
    server_ip: &str,
    to: &str,
    epoch: String,
    count: u32,
    more: bool,
    gap: bool,
) -> ServerFrame {
    let s = if count == 1 { "" } else { "s" };
    let mut msg = format!("History: {count} event{s}");
    if more {
        msg.push_str("; more are kept"); // before or after them: the asker knows which
    }
    if gap {
        msg.push_str("; some earlier events are no longer kept");
    }
    let mut f = stamped(
        ServerFrame::new(server(server_ip), to, msg, FrameKind::History),
        chat_common::clock::now_ms(),
        None,
    );
    f.epoch = Some(epoch);
    f.count = Some(count);
    f.more = Some(more);
    f.gap = Some(gap);
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_common::{ErrorCode, Refusal};

    #[test]
    fn an_error_frame_carries_the_text_and_the_code() {
        let err = ChatError::from(Refusal::NameTaken { name: "al".into() });
        let f = error("1.2.3.4", "al", &err);
        assert_eq!(f.msg, "Error: the name 'al' is already in use");
        assert_eq!(f.code, Some(ErrorCode::NameTaken));
        assert_eq!(f.kind, Some(FrameKind::Error));
        let json = String::from_utf8(f.to_bytes().to_vec()).unwrap();
        assert!(json.contains(r#""code":"name_taken""#), "{json}");
        assert!(json.ends_with('\n'));
        let line = String::from_utf8(encode(&f, Format::Line).to_vec()).unwrap();
        assert!(
            line.ends_with("! Error: the name 'al' is already in use\r\n"),
            "{line:?}"
        );
    }

    #[test]
    fn confirmations_and_summaries() {
        assert_eq!(
            sent_to("ip", "a", 0, 1, None).msg,
            "Message sent to 0 users"
        );
        assert_eq!(sent_to("ip", "a", 1, 1, None).msg, "Message sent to 1 user");
        let two = sent_to("ip", "a", 2, 7, Some("m".into()));
        assert_eq!(two.msg, "Message sent to 2 users");
        assert_eq!((two.id, two.label.as_deref()), (Some(7), Some("m")));
        assert_eq!(
            large_room("ip", 1501, 12, 3).msg,
            "1501 users online (12 joined, 3 left recently; send /list to see who)"
        );
        let w = welcome("ip", "bob", Some(vec!["alice".into(), "bob".into()]), 2);
        assert_eq!(
            w.msg,
            "Welcome bob! Users online (2): alice, bob. Type /help for the commands."
        );
        let w = welcome("ip", "bob", None, 1500);
        assert_eq!(
            w.msg,
            "Welcome bob! 1500 users online; send /list to see them. Type /help for the commands."
        );
        assert_eq!(w.users, None);
    }

    #[test]
    fn a_fan_out_encodes_once_per_format() {
        let f = chat(
            Sender {
                name: "a".into(),
                ip: "ip".into(),
            },
            "hi".into(),
            1,
            2,
        );
        let mut enc = Encoded::new(&f);
        let a = enc.get(Format::Json);
        let b = enc.get(Format::Json);
        assert_eq!(a.as_ptr(), b.as_ptr(), "the same bytes, shared");
        assert_ne!(enc.get(Format::Line), a);
    }
}
