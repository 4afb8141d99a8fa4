//! The chat system's wire protocol, shared by the broker, the front-end servers and the
//! clients.
//!
//! Nothing in this crate touches a socket, a thread or a clock other than through plain
//! functions, so every rule of the protocol can be unit-tested on bytes:
//!
//! - [`frame`]: the JSON frames of the client port (PROTOCOL.md §3, §5) and their extensions;
//! - [`json_stream`]: a bounded decoder that splits a byte stream of back-to-back JSON
//!   objects into frames, recovering from bad frames where the stream position is known;
//! - [`login`] and [`name`]: the raw-name login of the class-chat clients and the rules a
//!   user name must follow;
//! - [`line`]: the human line port (`nc`/`telnet`): a bounded line decoder, the commands,
//!   and how server frames are rendered as readable lines;
//! - [`link`]: the internal broker ↔ server link messages and their length-delimited codec;
//! - [`command`]: the command vocabulary, one table for the JSON port's `to`, typed lines
//!   (line port and desktop client) and their help;
//! - [`error`]: every error a user can be told, typed, with its stable `code`;
//! - [`history`]: the history query (`latest`, `before`, `after`) and its bounds;
//! - [`clock`]: timestamps and the `HH:MM:SS` rendering used by `/time` and the line port.

pub mod clock;
pub mod command;
pub mod error;
pub mod frame;
pub mod history;
pub mod json_stream;
pub mod line;
pub mod link;
pub mod login;
pub mod name;

pub use error::{ChatError, ErrorCode, Refusal, Unroutable};
pub use frame::{ClientFrame, FrameError, FrameKind, Sender, ServerFrame};
pub use json_stream::{JsonStreamDecoder, ServerFrameDecoder, StreamError};

/// Default largest frame accepted on the client ports: 1 MiB, so the seeds' 50 KB payload
/// tests fit with plenty of room.
pub const DEFAULT_MAX_FRAME: usize = 1024 * 1024;

/// Name the server uses in `from` of the frames it generates itself.
pub const SERVER_NAME: &str = "SERVER";

/// What the server puts in `to` of public messages. Reserved: no user may take it, and a
/// frame sent *to* it is not a broadcast (PROTOCOL.md §4.2).
pub const EVERYONE: &str = "Everyone";
