//! What servers write into the JetStream stream and the KV buckets (docs/NATS.md), as
//! values: the events, their subjects and de-duplication ids, and the keys of names.
//! Pure: no I/O.
//!
//! Every server reads the same stream in sequence order and applies it to the same state
//! machine ([`super::replica`]), so the stream sequence is the event `id` on every server,
//! and what one server decides from the stream every server decides.

use chat_common::link::ConnId;
use chat_common::name::{NameKey, Skeleton};
use serde::{Deserialize, Serialize};

use crate::core::requests::ReqId;

/// The stream that orders every event.
pub const STREAM: &str = "CHAT_EVENTS";
/// The subjects of the stream: `chat.ev.<kind>`.
pub const SUBJECTS: &str = "chat.ev.>";
/// The subject of public messages alone (the line port's `/history N` reads only these).
pub const CHAT_SUBJECT: &str = "chat.ev.chat";
/// The bucket of held names: `f.<folded>` and `s.<skeleton>`, hex-encoded.
pub const NAMES_BUCKET: &str = "chat_names";
/// The bucket of resume sessions: the SHA-256 of a token, hex-encoded.
pub const SESSIONS_BUCKET: &str = "chat_sessions";
/// Core NATS subject on which each server says it is alive: `chat.alive.<server>`.
pub const ALIVE_PREFIX: &str = "chat.alive.";

/// A server incarnation: random, new at every start and after the server lost its users
/// (PROTOCOL.md §6.4). Events of an incarnation declared gone are ignored by everyone.
pub type Srv = std::sync::Arc<str>;

/// One event of the stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Wire {
    /// `conn` of server `srv` holds `name` (its KV entries are written).
    Join {
        /// The name as typed.
        name: String,
        /// The client's IP.
        ip: String,
        /// The server.
        srv: String,
        /// Its connection.
        conn: ConnId,
        /// The session chain the login starts (PROTOCOL.md §10.4).
        chain: String,
    },
    /// `conn` of server `srv` left.
    Leave {
        /// Its name.
        name: String,
        /// Its IP.
        ip: String,
        /// The server.
        srv: String,
        /// Its connection.
        conn: ConnId,
    },
    /// Server `srv` is gone: nothing it writes from here on counts. Its users' leaves
    /// follow, written by whoever found it gone.
    Gone {
        /// The incarnation.
        srv: String,
    },
    /// A public message.
    Chat {
        /// The sender's name, as its server stamped it.
        name: String,
        /// The sender's server.
        srv: String,
        /// The sender's connection.
        conn: ConnId,
        /// The sender's IP.
        ip: String,
        /// The request on the sender's server.
        req: ReqId,
        /// The text.
        msg: String,
    },
    /// A private message, stamped by the sender's server with both session chains.
    Private {
        /// The sender's name, as its server stamped it.
        name: String,
        /// The sender's server.
        srv: String,
        /// The sender's connection.
        conn: ConnId,
        /// The sender's IP.
        ip: String,
        /// The request on the sender's server.
        req: ReqId,
        /// The sender's chain.
        chain: String,
        /// The recipient's name, as its holder typed it.
        to: String,
        /// The recipient's server.
        to_srv: String,
        /// The recipient's connection.
        to_conn: ConnId,
        /// The recipient's chain.
        to_chain: String,
        /// The text.
        msg: String,
    },
    /// `conn` of `srv` resumed an earlier session: its private messages go to `chain`.
    Chain {
        /// The server.
        srv: String,
        /// Its connection.
        conn: ConnId,
        /// The chain resumed.
        chain: String,
    },
}

impl Wire {
    /// Its subject in the stream.
    pub fn subject(&self) -> &'static str {
        match self {
            Wire::Join { .. } => "chat.ev.join",
            Wire::Leave { .. } => "chat.ev.leave",
            Wire::Gone { .. } => "chat.ev.gone",
            Wire::Chat { .. } => CHAT_SUBJECT,
            Wire::Private { .. } => "chat.ev.private",
            Wire::Chain { .. } => "chat.ev.chain",
        }
    }

    /// Its `Nats-Msg-Id`: the same for every attempt to write the same event, so a write
    /// retried after a lost acknowledgement is stored once (the stream's duplicate
    /// window), and two servers that both find a server gone write its leaves once.
    pub fn msg_id(&self) -> String {
        match self {
            Wire::Join { srv, conn, .. } => format!("j.{srv}.{conn}"),
            Wire::Leave { srv, conn, .. } => format!("l.{srv}.{conn}"),
            Wire::Gone { srv } => format!("g.{srv}"),
            Wire::Chat { srv, req, .. } | Wire::Private { srv, req, .. } => {
                format!("m.{srv}.{req}")
            }
            Wire::Chain { srv, conn, chain } => format!("c.{srv}.{conn}.{chain}"),
        }
    }

    /// The payload.
    pub fn encode(&self) -> bytes::Bytes {
        // Serialising a plain enum of strings and numbers cannot fail.
        serde_json::to_vec(self).unwrap_or_default().into()
    }

    /// Reads a payload; `None` for anything else (never trusted to be ours).
    pub fn decode(payload: &[u8]) -> Option<Wire> {
        serde_json::from_slice(payload).ok()
    }
}

/// The value of a held name's KV entries: who holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// The name as typed.
    pub name: String,
    /// The holding server.
    pub srv: String,
    /// Its connection.
    pub conn: ConnId,
    /// The client's IP.
    pub ip: String,
    /// The login's session chain.
    pub chain: String,
}

impl Holder {
    /// The entry's value.
    pub fn encode(&self) -> bytes::Bytes {
        serde_json::to_vec(self).unwrap_or_default().into()
    }

    /// Reads an entry's value.
    pub fn decode(value: &[u8]) -> Option<Holder> {
        serde_json::from_slice(value).ok()
    }
}

/// A resume session's KV value (PROTOCOL.md §10.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The chain it names.
    pub chain: String,
    /// The name it was given to.
    pub name: String,
}

impl Session {
    /// The entry's value.
    pub fn encode(&self) -> bytes::Bytes {
        serde_json::to_vec(self).unwrap_or_default().into()
    }

    /// Reads an entry's value.
    pub fn decode(value: &[u8]) -> Option<Session> {
        serde_json::from_slice(value).ok()
    }
}

/// The two KV keys that hold `name`: its folded form and its skeleton (PROTOCOL.md §2.2:
/// two names clash when either is the same). Hex, since KV keys allow only
/// `[-/_=.a-zA-Z0-9]`.
pub fn name_keys(name: &str) -> [String; 2] {
    [
        format!("f.{}", hex(NameKey::of(name).as_str().as_bytes())),
        format!("s.{}", hex(Skeleton::of(name).as_str().as_bytes())),
    ]
}

/// Whether a names key is a folded form (one per user; the skeletons mirror them).
pub fn is_folded_key(key: &str) -> bool {
    key.starts_with("f.")
}

/// The sessions key of `token`: only its SHA-256 is stored, as the broker does.
pub fn session_key(token: &str) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(token.as_bytes()))
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_and_garbage_is_none() {
        let w = Wire::Private {
            name: "al".into(),
            srv: "a1".into(),
            conn: 3,
            ip: "127.0.0.1".into(),
            req: 9,
            chain: "c1".into(),
            to: "Bob".into(),
            to_srv: "b2".into(),
            to_conn: 4,
            to_chain: "c2".into(),
            msg: "psst \"quoted\" ✓".into(),
        };
        assert_eq!(Wire::decode(&w.encode()), Some(w));
        assert_eq!(Wire::decode(b"{\"t\":\"nope\"}"), None);
        assert_eq!(Wire::decode(b"\xff\x00"), None);
    }

    #[test]
    fn a_retried_event_keeps_its_id_and_distinct_events_differ() {
        let chat = |req| Wire::Chat {
            name: "n".into(),
            srv: "s".into(),
            conn: 1,
            ip: "i".into(),
            req,
            msg: "m".into(),
        };
        assert_eq!(chat(1).msg_id(), chat(1).msg_id());
        assert_ne!(chat(1).msg_id(), chat(2).msg_id());
        let join = Wire::Join {
            name: "a".into(),
            ip: "i".into(),
            srv: "s".into(),
            conn: 1,
            chain: "c".into(),
        };
        assert_ne!(
            join.msg_id(),
            Wire::Leave {
                name: "a".into(),
                ip: "i".into(),
                srv: "s".into(),
                conn: 1
            }
            .msg_id()
        );
    }

    #[test]
    fn clashing_names_share_a_key_and_keys_are_valid_kv_keys() {
        // Same folded form, and a look-alike with the same skeleton (PROTOCOL.md §2.2).
        assert_eq!(name_keys("Teacher")[0], name_keys("teacher")[0]);
        assert_eq!(name_keys("SERVER")[1], name_keys("SΕRVΕR")[1]);
        assert_ne!(name_keys("alice")[0], name_keys("bob")[0]);
        for key in name_keys("Ünïcødé_名前").iter().chain([&session_key("t")]) {
            assert!(
                key.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-/_=.".contains(c)),
                "{key}"
            );
        }
        assert!(is_folded_key(&name_keys("x")[0]) && !is_folded_key(&name_keys("x")[1]));
    }
}
