//! The JSON frames of the client port (PROTOCOL.md §3–§5).
//!
//! Every frame, in both directions, is an object `{"from": {"name", "ip"}, "to", "msg"}`.
//! Frames the server writes may carry additive extensions (`type`, `ts`, `id`, `users`,
//! `user`) that old clients ignore.

use bytes::Bytes;
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

/// Who sent a frame, as stamped by the server: the logged-in name and the real peer IP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sender {
    /// Logged-in user name, or [`crate::SERVER_NAME`] for server-generated frames.
    pub name: String,
    /// Peer IP address of the sender (the server's own address for server frames).
    pub ip: String,
}

/// A frame as a client sends it, reduced to what the server uses.
///
/// `from` is accepted in any shape and ignored: the server stamps the sender itself, so a
/// client can never speak as someone else (PROTOCOL.md §3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFrame {
    /// Recipient: a user name, `/shout`, `*`, or a command such as `/list`.
    pub to: String,
    /// The text. A missing or `null` `msg` reads as empty (commands like `/list` need none).
    pub msg: String,
    /// Extension: a name the client gives this frame, at most [`MAX_LABEL`] bytes; the
    /// frames that answer it carry it back, and a labelled message is always confirmed
    /// (PROTOCOL.md §3.4).
    pub label: Option<String>,
}

/// The longest `label` a client frame may carry, in bytes.
pub const MAX_LABEL: usize = 64;

#[derive(Deserialize)]
struct WireClientFrame {
    #[serde(default)]
    #[allow(dead_code)] // read only to accept (and ignore) whatever the client put there
    from: IgnoredAny,
    to: String,
    #[serde(default)]
    msg: Option<String>,
    #[serde(default)]
    label: Option<String>,
}

impl ClientFrame {
    /// Parses one complete, delimited frame.
    ///
    /// Invalid UTF-8, invalid JSON and well-formed JSON of the wrong shape are told apart so
    /// the client gets an error that says what was wrong.
    pub fn parse(bytes: &[u8]) -> Result<ClientFrame, FrameError> {
        let text = std::str::from_utf8(bytes).map_err(|_| FrameError::InvalidUtf8)?;
        ensure_object(text)?;
        let wire: WireClientFrame = serde_json::from_str(text).map_err(|e| {
            use serde_json::error::Category;
            match e.classify() {
                Category::Data => FrameError::WrongShape(e.to_string()),
                Category::Syntax | Category::Eof | Category::Io => {
                    FrameError::InvalidJson(e.to_string())
                }
            }
        })?;
        if wire.label.as_ref().is_some_and(|l| l.len() > MAX_LABEL) {
            return Err(FrameError::WrongShape(format!(
                "a label is at most {MAX_LABEL} bytes"
            )));
        }
        Ok(ClientFrame {
            to: wire.to,
            msg: wire.msg.unwrap_or_default(),
            label: wire.label,
        })
    }

    /// A frame to `to` with text `msg`, without a label.
    pub fn new(to: impl Into<String>, msg: impl Into<String>) -> Self {
        ClientFrame {
            to: to.into(),
            msg: msg.into(),
            label: None,
        }
    }

    /// Encodes the frame the way the class-chat clients send it (with an empty `from`,
    /// which the server ignores anyway), and its label if it has one. Used by clients and
    /// tests.
    pub fn to_json(&self, from: &Sender) -> String {
        let mut v = serde_json::json!({"from": from, "to": self.to, "msg": self.msg});
        if let Some(label) = &self.label {
            v["label"] = serde_json::Value::from(label.as_str());
        }
        v.to_string()
    }
}

/// serde's derived structs also accept a JSON array, by field position; a frame must be an
/// object (PROTOCOL.md §3.1).
fn ensure_object(text: &str) -> Result<(), FrameError> {
    match text.trim_start().as_bytes().first() {
        Some(b'{') | None => Ok(()),
        Some(_) => Err(FrameError::WrongShape(
            "a frame must be a JSON object".to_string(),
        )),
    }
}

/// Why one delimited frame could not be used. The stream position is intact, so the
/// connection stays open (PROTOCOL.md §6.1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The frame's bytes are not valid UTF-8.
    #[error("frame is not valid UTF-8")]
    InvalidUtf8,
    /// The frame is not valid JSON.
    #[error("frame is not valid JSON: {0}")]
    InvalidJson(String),
    /// Valid JSON, but not an object with a string `to` and a string `msg`.
    #[error(
        "frame does not follow the schema {{\"from\": {{...}}, \"to\": str, \"msg\": str}}: {0}"
    )]
    WrongShape(String),
    /// Bytes that do not start a JSON object, skipped up to the next newline or `{`.
    #[error("expected a JSON object starting with '{{'")]
    NotAnObject,
    /// The peer closed the stream in the middle of a frame.
    #[error("stream ended inside an incomplete frame")]
    Truncated,
}

/// Whether the chat service behind a server is reachable (the `service` extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    /// Lost: messages are not delivered, logins are refused, until it is back.
    Down,
    /// Back.
    Up,
}

/// The `type` extension of server frames (PROTOCOL.md §5). Unknown values from a newer server
/// read as [`FrameKind::Other`], so clients keep working.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FrameKind {
    /// A public message.
    Chat,
    /// A private message.
    Private,
    /// A user joined; `user` names them.
    Join,
    /// A user left; `user` names them.
    Leave,
    /// A notice from the server (confirmation, `/time`, `/help`, shutdown...).
    System,
    /// Something the client sent was refused; `msg` says why.
    Error,
    /// The list of users online, in `users` (the `/list` answer).
    Users,
    /// The first frame after login; carries `users`.
    Welcome,
    /// Replayed history.
    History,
    /// A type this version does not know.
    #[serde(other)]
    Other,
}

/// A frame written by the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerFrame {
    /// The sender as stamped by the server.
    pub from: Sender,
    /// The recipient's name, or [`crate::EVERYONE`] for public frames.
    pub to: String,
    /// The text.
    pub msg: String,
    /// Extension: what kind of frame this is.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<FrameKind>,
    /// Extension: milliseconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts: Option<u64>,
    /// Extension: the broker's sequence number; one global order for public events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    /// Extension: users online, sorted (on `welcome` and `users` frames).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<Vec<String>>,
    /// Extension: the user a `join` or `leave` frame is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Extension: on `error` frames, what kind of error (PROTOCOL.md §6.8); programs decide
    /// on it, never on the text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<crate::error::ErrorCode>,
    /// Extension: `true` on an event replayed from the history (PROTOCOL.md §10.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<bool>,
    /// Extension: on a history end frame, the log's epoch (PROTOCOL.md §10.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<String>,
    /// Extension: on a history end frame, how many events it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// Extension: on a history end frame, whether more events exist that way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub more: Option<bool>,
    /// Extension: on a history end frame, whether the log lacks events of the range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gap: Option<bool>,
    /// Extension: on the welcome, the token that resumes this session later (PROTOCOL.md
    /// §10.4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume: Option<String>,
    /// Extension: on the notices that the chat service was lost and is back, which
    /// (PROTOCOL.md §6.4), so a client can show it without reading the text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<Service>,
    /// Extension: the `label` of the client frame this frame answers (its confirmation or
    /// its error), so a client knows which of its messages it is about (PROTOCOL.md §3.4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

impl ServerFrame {
    /// A frame with the three mandatory fields and the given type; extensions unset.
    pub fn new(
        from: Sender,
        to: impl Into<String>,
        msg: impl Into<String>,
        kind: FrameKind,
    ) -> Self {
        ServerFrame {
            from,
            to: to.into(),
            msg: msg.into(),
            kind: Some(kind),
            ts: None,
            id: None,
            users: None,
            user: None,
            code: None,
            history: None,
            epoch: None,
            count: None,
            more: None,
            gap: None,
            resume: None,
            service: None,
            label: None,
        }
    }

    /// Serializes the frame followed by `\n`, ready to be queued to any number of sockets.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = Vec::with_capacity(96 + self.msg.len());
        self.write_line(&mut out);
        Bytes::from(out)
    }

    /// Appends the frame and its newline to `out` (several frames written together).
    pub fn write_line(&self, out: &mut Vec<u8>) {
        let start = out.len();
        // Serializing plain strings and integers into a Vec cannot fail.
        if serde_json::to_writer(&mut *out, self).is_err() {
            out.truncate(start);
            out.extend_from_slice(b"{}");
        }
        out.push(b'\n');
    }

    /// Parses one server frame (for clients and tests).
    pub fn parse(bytes: &[u8]) -> Result<ServerFrame, serde_json::Error> {
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
        if first.is_some_and(|b| *b != b'{') {
            return Err(serde::de::Error::custom("a frame must be a JSON object"));
        }
        serde_json::from_slice(bytes)
    }
}

/// How many bytes `text` takes inside a JSON string as this crate writes it (serde_json),
/// without the quotes: what a message really costs to send (PROTOCOL.md §6.7). A control
/// character becomes `\u0001` (six bytes), so a line of them grows sixfold on the JSON
/// port; limits and budgets count this, not the bytes that came in.
pub fn encoded_len(text: &str) -> usize {
    text.bytes()
        .map(|b| match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
            0..=0x1f => 6,
            _ => 1,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server() -> Sender {
        Sender {
            name: "SERVER".into(),
            ip: "127.0.0.1".into(),
        }
    }

    #[test]
    fn parses_a_seed_frame() {
        let f =
            ClientFrame::parse(br#"{"from":{"name":"a","ip":"1.2.3.4"},"to":"bob","msg":"hi"}"#)
                .unwrap();
        assert_eq!(
            f,
            ClientFrame {
                to: "bob".into(),
                msg: "hi".into(),
                label: None,
            }
        );
    }

    #[test]
    fn from_may_be_missing_or_any_shape() {
        for raw in [
            r#"{"to":"/list","msg":""}"#,
            r#"{"from":"mallory","to":"/list","msg":""}"#,
            r#"{"from":[1,{"x":null}],"to":"/list","msg":""}"#,
        ] {
            assert_eq!(
                ClientFrame::parse(raw.as_bytes()).unwrap().to,
                "/list",
                "{raw}"
            );
        }
    }

    #[test]
    fn missing_or_null_msg_reads_as_empty() {
        assert_eq!(ClientFrame::parse(br#"{"to":"/time"}"#).unwrap().msg, "");
        assert_eq!(
            ClientFrame::parse(br#"{"to":"/time","msg":null}"#)
                .unwrap()
                .msg,
            ""
        );
    }

    #[test]
    fn errors_are_classified() {
        assert_eq!(
            ClientFrame::parse(b"{\"to\":\"\xff\"}"),
            Err(FrameError::InvalidUtf8)
        );
        assert!(matches!(
            ClientFrame::parse(b"{\"to\":}"),
            Err(FrameError::InvalidJson(_))
        ));
        assert!(matches!(
            ClientFrame::parse(b"{\"to\":1,\"msg\":\"x\"}"),
            Err(FrameError::WrongShape(_))
        ));
        assert!(matches!(
            ClientFrame::parse(b"{\"msg\":\"x\"}"),
            Err(FrameError::WrongShape(_))
        ));
        assert!(matches!(
            ClientFrame::parse(b"[1,2]"),
            Err(FrameError::WrongShape(_))
        ));
        assert!(matches!(
            ClientFrame::parse(b"{\"to\":\"a\",\"msg\":5}"),
            Err(FrameError::WrongShape(_))
        ));
    }

    #[test]
    fn server_frame_omits_unset_extensions_and_ends_with_newline() {
        let f = ServerFrame::new(server(), "alice", "hello", FrameKind::System);
        let bytes = f.to_bytes();
        assert_eq!(bytes.last(), Some(&b'\n'));
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["type"], "system");
        assert_eq!(v["from"]["name"], "SERVER");
        assert!(v.get("ts").is_none() && v.get("id").is_none() && v.get("users").is_none());
    }

    #[test]
    fn server_frame_round_trips_with_extensions() {
        let mut f = ServerFrame::new(server(), "Everyone", "bob joined", FrameKind::Join);
        f.ts = Some(5);
        f.id = Some(7);
        f.user = Some("bob".into());
        f.users = Some(vec!["a".into(), "bob".into()]);
        let back = ServerFrame::parse(&f.to_bytes()).unwrap();
        assert_eq!(back, f);
    }

    #[test]
    fn unknown_frame_types_read_as_other() {
        let f = ServerFrame::parse(
            br#"{"from":{"name":"S","ip":"x"},"to":"a","msg":"","type":"poll"}"#,
        )
        .unwrap();
        assert_eq!(f.kind, Some(FrameKind::Other));
    }

    #[test]
    fn a_label_is_kept_and_bounded() {
        let f = ClientFrame::parse(br#"{"to":"bob","msg":"hi","label":"m7"}"#).unwrap();
        assert_eq!(f.label.as_deref(), Some("m7"));
        let back = ClientFrame::parse(
            f.to_json(&Sender {
                name: String::new(),
                ip: String::new(),
            })
            .as_bytes(),
        );
        assert_eq!(back.unwrap(), f);
        let long = format!(
            r#"{{"to":"bob","msg":"hi","label":"{}"}}"#,
            "x".repeat(MAX_LABEL + 1)
        );
        assert!(matches!(
            ClientFrame::parse(long.as_bytes()),
            Err(FrameError::WrongShape(_))
        ));
        let just = format!(
            r#"{{"to":"bob","msg":"hi","label":"{}"}}"#,
            "x".repeat(MAX_LABEL)
        );
        assert!(ClientFrame::parse(just.as_bytes()).is_ok());
        for bad in [
            r#"{"to":"bob","label":7}"#,
            r#"{"to":"bob","label":{"a":1}}"#,
        ] {
            assert!(
                matches!(
                    ClientFrame::parse(bad.as_bytes()),
                    Err(FrameError::WrongShape(_))
                ),
                "{bad}"
            );
        }
        let null = ClientFrame::parse(br#"{"to":"bob","label":null}"#).unwrap();
        assert_eq!(null.label, None);
    }

    #[test]
    fn client_frame_to_json_parses_back() {
        let f = ClientFrame {
            to: "/shout".into(),
            msg: "hé \"quoted\"".into(),
            label: None,
        };
        let json = f.to_json(&Sender {
            name: "x".into(),
            ip: "".into(),
        });
        assert_eq!(ClientFrame::parse(json.as_bytes()).unwrap(), f);
    }

    #[test]
    fn encoded_len_is_what_serde_json_writes() {
        for text in [
            "",
            "plain",
            "é✓",
            "\"q\" \\ \n\r\t",
            "\u{1}\u{8}\u{c}\u{1f}\u{7f}",
            "\u{2028}",
        ] {
            let written = serde_json::to_string(text).unwrap();
            assert_eq!(encoded_len(text), written.len() - 2, "{text:?}");
        }
    }
}
