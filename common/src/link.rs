//! The internal link between a front-end server and the broker.
//!
//! Each message is a JSON object behind a 4-byte big-endian length (tokio-util's
//! `LengthDelimitedCodec`): `{"t": kind, "c": fields}`, the kind first, so a reader decodes
//! the fields straight into their types. (With the kind among the fields, serde buffers
//! every message into a generic tree first: for a 500-event history answer that was the
//! server's largest cost; BENCHMARKS.md, issue 12.) The link is private to our own processes, but it is still
//! decoded with a size limit and every malformed message is an error value, never a panic.
//!
//! Ordering is the link's whole point: the broker handles every server's messages in one
//! task, so the events it sends (each with the next sequence number) reach every server in
//! one global order, and each server fans them out in that order.

use std::marker::PhantomData;

use bytes::{BufMut, Bytes, BytesMut};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio_util::codec::{Decoder, LengthDelimitedCodec};

use crate::error::{Refusal, Unroutable};
use crate::frame::Sender;

/// Version of the link protocol; a server and a broker must agree on it. Version 3 carries
/// refusals and routing failures as typed values ([`Refusal`], [`Unroutable`],
/// [`Rejection`]) instead of sentences; version 7 sends history events as arrays, and a
/// server's `Hello` says how often it beats.
pub const LINK_VERSION: u32 = 7;

/// Default largest link message: room for a maximal client frame plus the envelope.
pub const DEFAULT_MAX_LINK_FRAME: usize = 16 * 1024 * 1024;

/// Identifies a client connection on its server. Unique per server process.
pub type ConnId = u64;

/// Identifies a server on the broker; assigned by the broker at `Hello`.
pub type ServerId = u32;

/// Where a message came from, so the origin server can confirm or acknowledge it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// The origin server.
    pub server: ServerId,
    /// The sender's connection on that server.
    pub conn: ConnId,
    /// The server's request number for this message.
    pub req: u64,
}

/// Messages from a server to the broker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", content = "c", rename_all = "snake_case")]
pub enum ToBroker {
    /// First message on a link.
    Hello {
        /// A human-readable label for logs (the server's listen address).
        label: String,
        /// Must equal [`LINK_VERSION`].
        version: u32,
        /// Shared secret, when the broker requires one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<String>,
        /// How often this server sends when it has nothing else to say, in ms: the broker
        /// gives the link three of those (or three of its own, if longer) before it calls
        /// it dead, so two processes set up with different heartbeats do not drop each
        /// other under load.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        heartbeat_ms: Option<u64>,
    },
    /// A client asks for `name`.
    Register {
        /// The client's connection.
        conn: ConnId,
        /// The requested name, already validated by the server.
        name: String,
        /// The client's peer IP, stamped on its messages.
        ip: String,
    },
    /// A registered client left.
    Unregister {
        /// The client's connection.
        conn: ConnId,
    },
    /// A public message.
    Public {
        /// The sender's connection.
        conn: ConnId,
        /// The server's request number, echoed in the event's [`Origin`].
        req: u64,
        /// The text.
        msg: String,
    },
    /// A private message.
    Private {
        /// The sender's connection.
        conn: ConnId,
        /// The server's request number, echoed in the acknowledgement.
        req: u64,
        /// Recipient name.
        to: String,
        /// The text.
        msg: String,
    },
    /// Keep-alive; the broker answers [`ToServer::Pong`].
    Ping,
    /// The server has handed every event up to this id to its clients' queues. Once every
    /// server has acknowledged an id, the broker says so with [`ToServer::Stable`].
    Ack {
        /// The highest event id applied.
        upto: u64,
    },
    /// Client `conn` joins the session chain of `token` (PROTOCOL.md §10.4); the answer is
    /// [`ToServer::Resumed`] or [`ToServer::ResumeFailed`].
    Resume {
        /// The client's connection.
        conn: ConnId,
        /// The token its earlier login's welcome carried.
        token: String,
    },
    /// Client `conn` asks for earlier events (PROTOCOL.md §10.2); the answer is
    /// [`ToServer::History`] or [`ToServer::HistoryOff`].
    History {
        /// The asking client's connection.
        conn: ConnId,
        /// What it asks for.
        query: crate::history::Query,
        /// Only public chat messages (the line port's `/history N`).
        chat_only: bool,
    },
}

/// What kind of event a history entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HistoryKind {
    /// A public message.
    Chat,
    /// A private message.
    Private,
    /// A user joined (`from` names them).
    Join,
    /// A user left (`from` names them).
    Leave,
}

/// One event of the history as the broker logged it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEvent {
    /// Its id.
    pub id: u64,
    /// Broker time, ms since the Unix epoch.
    pub ts: u64,
    /// What it is.
    pub kind: HistoryKind,
    /// Its sender, or who joined or left.
    pub from: Sender,
    /// A private message's recipient.
    pub to: Option<String>,
    /// The text (empty for a join or leave).
    pub msg: String,
}

/// On the link, an event is an array `[id, ts, kind, name, ip, to, msg]`, not an object: a
/// history answer carries up to 500 of them, and parsing keys was a third of the server's
/// decoding time (BENCHMARKS.md, issue 12).
type WireEvent = (
    u64,
    u64,
    HistoryKind,
    String,
    String,
    Option<String>,
    String,
);

impl Serialize for HistoryEvent {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let f = &self.from;
        (
            self.id, self.ts, self.kind, &f.name, &f.ip, &self.to, &self.msg,
        )
            .serialize(s)
    }
}

impl<'de> Deserialize<'de> for HistoryEvent {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (id, ts, kind, name, ip, to, msg) = WireEvent::deserialize(d)?;
        let from = Sender { name, ip };
        Ok(HistoryEvent {
            id,
            ts,
            kind,
            from,
            to,
            msg,
        })
    }
}

/// Messages from the broker to a server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", content = "c", rename_all = "snake_case")]
pub enum ToServer {
    /// Answer to `Hello`: the server's id and everyone online now.
    Hello {
        /// The id the broker gave this server.
        server_id: ServerId,
        /// Users online, in any order.
        users: Vec<String>,
    },
    /// Sent to the origin server: `conn` now owns its name.
    Registered {
        /// The client's connection.
        conn: ConnId,
        /// The registered name.
        name: String,
        /// Sequence number of the join.
        id: u64,
        /// Broker time of the join, ms since the epoch.
        ts: u64,
    },
    /// Sent to the origin server: the name could not be registered.
    Refused {
        /// The client's connection.
        conn: ConnId,
        /// Why.
        reason: Refusal,
    },
    /// Sent to every other server: a user joined.
    Joined {
        /// The user.
        name: String,
        /// Sequence number.
        id: u64,
        /// Broker time, ms since the epoch.
        ts: u64,
    },
    /// Sent to every server: a user left.
    Left {
        /// The user.
        name: String,
        /// Sequence number.
        id: u64,
        /// Broker time, ms since the epoch.
        ts: u64,
    },
    /// A public message, sent to every server (the origin's included).
    Public {
        /// Sequence number: the global order.
        id: u64,
        /// Broker time, ms since the epoch.
        ts: u64,
        /// The sender.
        from: Sender,
        /// The text.
        msg: String,
        /// Who sent it, for the confirmation.
        origin: Origin,
        /// How many users it reached (everyone online but the sender).
        recipients: u32,
    },
    /// A private message, sent to the recipient's server only.
    Private {
        /// Sequence number.
        id: u64,
        /// Broker time, ms since the epoch.
        ts: u64,
        /// The sender.
        from: Sender,
        /// The recipient's connection.
        to_conn: ConnId,
        /// The recipient's name.
        to: String,
        /// The text.
        msg: String,
    },
    /// Sent to the origin server: its private message `req` was routed as event `id` (a
    /// public message's id comes back with the message itself).
    Routed {
        /// The request number.
        req: u64,
        /// The event's sequence number.
        id: u64,
    },
    /// Every server has applied every event up to `upto` (each acknowledged it with
    /// [`ToBroker::Ack`]): the messages with those ids are delivered. Sent to every
    /// server whenever it advances, at most once per batch the broker handles.
    Stable {
        /// The highest id every server has applied.
        upto: u64,
    },
    /// Sent to the origin server: a message could not be routed.
    Undeliverable {
        /// The sender's connection.
        conn: ConnId,
        /// The request number.
        req: u64,
        /// Why.
        reason: Unroutable,
    },
    /// The broker refuses or drops the link; it closes right after.
    Rejected {
        /// Why.
        reason: Rejection,
    },
    /// Answer to `Ping`.
    Pong,
    /// The answer to [`ToBroker::History`]: the events, ascending, and the end frame's
    /// fields (PROTOCOL.md §10.2).
    History {
        /// The asking client's connection.
        conn: ConnId,
        /// The log's epoch.
        epoch: String,
        /// The events.
        events: Vec<HistoryEvent>,
        /// More events exist in the asked direction.
        more: bool,
        /// The log lacks events of the asked range.
        gap: bool,
    },
    /// The broker keeps no history, or could not read it.
    HistoryOff {
        /// The asking client's connection.
        conn: ConnId,
    },
    /// Sent just before [`ToServer::Registered`]: the resume token of the new login's
    /// session chain, for its welcome (PROTOCOL.md §10.4).
    Session {
        /// The client's connection.
        conn: ConnId,
        /// The token.
        token: String,
    },
    /// The client joined the chain of the token it gave.
    Resumed {
        /// The client's connection.
        conn: ConnId,
    },
    /// The token was unknown, expired, or another name's: nothing changed.
    ResumeFailed {
        /// The client's connection.
        conn: ConnId,
    },
}

/// Why the broker refuses or drops a server's link. It never quotes what the server sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Rejection {
    /// The server speaks another version of the link protocol.
    #[error("link version {got} is not supported (expected {expected})")]
    Version {
        /// The server's version.
        got: u32,
        /// The broker's.
        expected: u32,
    },
    /// The token is missing or wrong.
    #[error("{} link token (see --token / --token-file)", if *given { "a wrong" } else { "no" })]
    Token {
        /// Whether a token was given at all.
        given: bool,
    },
    /// The first message was not `Hello`.
    #[error("expected Hello")]
    ExpectedHello,
    /// No `Hello` within the handshake timeout.
    #[error("no Hello in time")]
    HelloTimeout,
    /// The first message could not be decoded.
    #[error("malformed Hello")]
    Malformed,
    /// The first message is larger than a `Hello` can be.
    #[error("the first message may be at most {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// The server did not read fast enough: its outbound queue overflowed.
    #[error("link queue exceeded: the server did not keep up")]
    QueueExceeded,
}

impl ToServer {
    /// The event's sequence number, for the events that have one (what
    /// [`ToBroker::Ack`] acknowledges).
    pub fn id(&self) -> Option<u64> {
        match self {
            ToServer::Registered { id, .. }
            | ToServer::Joined { id, .. }
            | ToServer::Left { id, .. }
            | ToServer::Public { id, .. }
            | ToServer::Private { id, .. } => Some(*id),
            _ => None,
        }
    }
}

/// Encodes one link message with its length prefix, ready to be written (or queued to
/// several links: the bytes are shared).
pub fn encode<T: Serialize>(msg: &T) -> Bytes {
    let mut buf = BytesMut::with_capacity(128);
    buf.put_u32(0);
    // Serializing our own enums of strings and integers into memory cannot fail.
    if serde_json::to_writer((&mut buf).writer(), msg).is_err() {
        buf.truncate(4);
    }
    let len = u32::try_from(buf.len() - 4).unwrap_or(u32::MAX);
    buf[..4].copy_from_slice(&len.to_be_bytes());
    buf.freeze()
}

/// Why a link message could not be decoded. Every variant ends the link.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The socket failed, or a length prefix was over the limit.
    #[error("link I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// A complete message that is not a valid link message.
    #[error("malformed link message: {0}")]
    Malformed(#[from] serde_json::Error),
    /// A length prefix over the limit: the message is not read.
    #[error("link message larger than {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
}

/// A [`Decoder`] of link messages of type `T`.
#[derive(Debug)]
pub struct LinkDecoder<T> {
    inner: LengthDelimitedCodec,
    max_frame: usize,
    /// A length prefix was consumed and its body has not arrived yet.
    mid_frame: bool,
    _msg: PhantomData<fn() -> T>,
}

impl<T> LinkDecoder<T> {
    /// A decoder refusing messages over `max_frame` bytes.
    pub fn new(max_frame: usize) -> Self {
        LinkDecoder {
            inner: LengthDelimitedCodec::builder()
                .max_frame_length(max_frame)
                .new_codec(),
            max_frame,
            mid_frame: false,
            _msg: PhantomData,
        }
    }

    /// Changes the limit for the messages still to come (the broker reads a peer's first
    /// message with a small one, and the rest with the full one once it knows the peer).
    pub fn set_max_frame(&mut self, max_frame: usize) {
        self.max_frame = max_frame;
        self.inner.set_max_frame_length(max_frame);
    }
}

impl<T: DeserializeOwned> Decoder for LinkDecoder<T> {
    type Item = T;
    type Error = LinkError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<T>, LinkError> {
        // Refuse an oversized message from its prefix alone, as a typed error.
        if !self.mid_frame
            && let Some(prefix) = buf.get(..4)
        {
            let len = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
            if usize::try_from(len).map_or(true, |l| l > self.max_frame) {
                return Err(LinkError::TooLarge {
                    limit: self.max_frame,
                });
            }
        }
        let before = buf.len();
        match self.inner.decode(buf)? {
            Some(frame) => {
                self.mid_frame = false;
                Ok(Some(serde_json::from_slice(&frame)?))
            }
            None => {
                // The inner codec consumes the length prefix before the body arrives.
                if buf.len() < before {
                    self.mid_frame = true;
                }
                Ok(None)
            }
        }
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<T>, LinkError> {
        match self.decode(buf)? {
            Some(msg) => Ok(Some(msg)),
            None if buf.is_empty() && !self.mid_frame => Ok(None),
            None => Err(LinkError::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "link closed in the middle of a message",
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(msg: T) {
        let mut buf = BytesMut::from(&encode(&msg)[..]);
        let got: T = LinkDecoder::new(1 << 20).decode(&mut buf).unwrap().unwrap();
        assert_eq!(got, msg);
        assert!(buf.is_empty());
    }

    #[test]
    fn every_message_round_trips() {
        let from = Sender {
            name: "a".into(),
            ip: "::1".into(),
        };
        round_trip(ToBroker::Hello {
            label: "s".into(),
            version: LINK_VERSION,
            token: Some("t".into()),
            heartbeat_ms: Some(500),
        });
        round_trip(ToBroker::Register {
            conn: 1,
            name: "a".into(),
            ip: "1.2.3.4".into(),
        });
        round_trip(ToBroker::Unregister { conn: 1 });
        round_trip(ToBroker::Public {
            conn: 1,
            req: 2,
            msg: "hi".into(),
        });
        round_trip(ToBroker::Private {
            conn: 1,
            req: 2,
            to: "b".into(),
            msg: "x".into(),
        });
        round_trip(ToBroker::Ping);
        round_trip(ToBroker::Ack { upto: 77 });
        round_trip(ToServer::Hello {
            server_id: 3,
            users: vec!["a".into()],
        });
        round_trip(ToServer::Registered {
            conn: 1,
            name: "a".into(),
            id: 1,
            ts: 2,
        });
        round_trip(ToServer::Refused {
            conn: 1,
            reason: Refusal::NameTaken { name: "a".into() },
        });
        round_trip(ToServer::Refused {
            conn: 1,
            reason: crate::name::NameError::TooLong { max: 32 }.into(),
        });
        round_trip(ToServer::Joined {
            name: "a".into(),
            id: 1,
            ts: 2,
        });
        round_trip(ToServer::Left {
            name: "a".into(),
            id: 1,
            ts: 2,
        });
        round_trip(ToServer::Public {
            id: 1,
            ts: 2,
            from: from.clone(),
            msg: "m".into(),
            origin: Origin {
                server: 1,
                conn: 2,
                req: 3,
            },
            recipients: 4,
        });
        round_trip(ToServer::Private {
            id: 1,
            ts: 2,
            from,
            to_conn: 9,
            to: "b".into(),
            msg: "m".into(),
        });
        round_trip(ToServer::Routed { req: 1, id: 2 });
        round_trip(ToServer::Stable { upto: 9 });
        round_trip(ToServer::Undeliverable {
            conn: 1,
            req: 2,
            reason: Unroutable::NotOnline { to: "zed".into() },
        });
        round_trip(ToServer::Undeliverable {
            conn: 1,
            req: 2,
            reason: Unroutable::NotLoggedIn,
        });
        for reason in [
            Rejection::Version {
                got: 2,
                expected: LINK_VERSION,
            },
            Rejection::Token { given: true },
            Rejection::Token { given: false },
            Rejection::ExpectedHello,
            Rejection::HelloTimeout,
            Rejection::Malformed,
            Rejection::TooLarge { limit: 4096 },
            Rejection::QueueExceeded,
        ] {
            round_trip(ToServer::Rejected { reason });
        }
        round_trip(ToServer::Pong);
    }

    #[test]
    fn history_messages_round_trip_with_events_as_arrays() {
        let from = Sender {
            name: "ann".into(),
            ip: "10.0.0.1".into(),
        };
        let private = HistoryEvent {
            id: 7,
            ts: 1_700_000_000_000,
            kind: HistoryKind::Private,
            from: from.clone(),
            to: Some("bob".into()),
            msg: "hi \"bob\"\n".into(),
        };
        let join = HistoryEvent {
            id: 8,
            ts: 1_700_000_000_001,
            kind: HistoryKind::Join,
            from,
            to: None,
            msg: String::new(),
        };
        let wire = serde_json::to_value(&join).unwrap();
        assert_eq!(
            wire,
            serde_json::json!([8, 1_700_000_000_001u64, "join", "ann", "10.0.0.1", null, ""])
        );
        round_trip(ToServer::History {
            conn: 3,
            epoch: "e1".into(),
            events: vec![private, join],
            more: true,
            gap: false,
        });
        round_trip(ToServer::HistoryOff { conn: 3 });
        round_trip(ToServer::Session {
            conn: 3,
            token: "t".into(),
        });
        round_trip(ToBroker::History {
            conn: 3,
            query: crate::history::Query::latest(5),
            chat_only: true,
        });
        // An event of the wrong shape is an error, not a default.
        let short = serde_json::from_str::<HistoryEvent>(r#"[1, 2, "chat"]"#);
        assert!(short.is_err());
    }

    #[test]
    fn partial_messages_wait_for_more() {
        let bytes = encode(&ToBroker::Ping);
        let mut dec = LinkDecoder::<ToBroker>::new(1024);
        let mut buf = BytesMut::new();
        for b in &bytes[..bytes.len() - 1] {
            buf.put_u8(*b);
            assert!(dec.decode(&mut buf).unwrap().is_none());
        }
        buf.put_u8(bytes[bytes.len() - 1]);
        assert_eq!(dec.decode(&mut buf).unwrap(), Some(ToBroker::Ping));
    }

    #[test]
    fn oversized_and_malformed_messages_are_errors() {
        let mut buf = BytesMut::from(
            &encode(&ToBroker::Public {
                conn: 1,
                req: 1,
                msg: "x".repeat(100),
            })[..],
        );
        assert!(matches!(
            LinkDecoder::<ToBroker>::new(50).decode(&mut buf),
            Err(LinkError::TooLarge { limit: 50 })
        ));
        // From the prefix alone, before the body arrives.
        let mut prefix = BytesMut::from(&(1u32 << 30).to_be_bytes()[..]);
        assert!(matches!(
            LinkDecoder::<ToBroker>::new(4096).decode(&mut prefix),
            Err(LinkError::TooLarge { limit: 4096 })
        ));
        // A limit raised later lets bigger messages through.
        let mut dec = LinkDecoder::<ToBroker>::new(50);
        dec.set_max_frame(1 << 20);
        let mut buf = BytesMut::from(
            &encode(&ToBroker::Public {
                conn: 1,
                req: 1,
                msg: "x".repeat(100),
            })[..],
        );
        assert!(matches!(
            dec.decode(&mut buf),
            Ok(Some(ToBroker::Public { .. }))
        ));
        let mut buf = BytesMut::new();
        buf.put_u32(5);
        buf.put_slice(b"{\"t\":");
        assert!(matches!(
            LinkDecoder::<ToBroker>::new(50).decode(&mut buf),
            Err(LinkError::Malformed(_))
        ));
        let mut buf = BytesMut::new();
        buf.put_u32(11);
        buf.put_slice(br#"{"t":"zap"}"#);
        assert!(matches!(
            LinkDecoder::<ToBroker>::new(50).decode(&mut buf),
            Err(LinkError::Malformed(_))
        ));
    }
}
