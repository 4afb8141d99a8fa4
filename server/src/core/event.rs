//! What a backend reports to this server's core, whatever the backend is.
//!
//! A backend (the broker link today) turns what its chat service tells it into these
//! events and hands them, in the service's order, to [`crate::core::hub::Hub::apply`]. The
//! core answers with [`FollowUp`]s the backend must carry out. See docs/ARCHITECTURE.md,
//! "Where things go", for what a new backend must report.

use chat_common::link::{ConnId, HistoryEvent};
use chat_common::{Refusal, Sender, Unroutable};

use crate::core::requests::ReqId;

/// One thing the chat service says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The service is reachable (again); `users` is everyone online now.
    Up {
        /// Every user online, on every server, in any order.
        users: Vec<String>,
    },
    /// The service was lost: pending logins fail, open requests are reported, clients are
    /// told the chat is degraded.
    Down,
    /// The server is stopping: the service is forgotten without telling anyone.
    Detached,
    /// A login of ours succeeded: `conn` owns `name`; `id` is the join's place in the order.
    Registered {
        /// Our client.
        conn: ConnId,
        /// Its name.
        name: String,
        /// Sequence number of the join.
        id: u64,
        /// Service time of the join, ms since the epoch.
        ts: u64,
    },
    /// A login of ours (or a re-registration after the service came back) was refused.
    Refused {
        /// Our client.
        conn: ConnId,
        /// Why.
        reason: Refusal,
    },
    /// A user of another server joined.
    Joined {
        /// The user.
        name: String,
        /// Sequence number.
        id: u64,
        /// Service time, ms since the epoch.
        ts: u64,
    },
    /// A user (of any server) left.
    Left {
        /// The user.
        name: String,
        /// Sequence number.
        id: u64,
        /// Service time, ms since the epoch.
        ts: u64,
    },
    /// A public message, in the global order.
    Public {
        /// Sequence number.
        id: u64,
        /// Service time, ms since the epoch.
        ts: u64,
        /// The sender as stamped by its server.
        from: Sender,
        /// The text.
        msg: String,
        /// Set when the sender is one of our clients: it does not get its own message, and
        /// its request is now out.
        own: Option<Own>,
        /// How many users it reached (everyone online but the sender).
        recipients: u32,
    },
    /// A private message for one of our clients.
    Private {
        /// Sequence number.
        id: u64,
        /// Service time, ms since the epoch.
        ts: u64,
        /// The sender.
        from: Sender,
        /// Our client.
        to_conn: ConnId,
        /// Its name.
        to: String,
        /// The text.
        msg: String,
    },
    /// A private message of ours was routed as event `id`.
    Routed {
        /// Our request.
        req: ReqId,
        /// Its sequence number.
        id: u64,
    },
    /// Every event up to `upto` has reached every server it was for: the requests sent out
    /// with those ids are delivered.
    Stable {
        /// The highest delivered id.
        upto: u64,
    },
    /// A request of ours could not be routed.
    Undeliverable {
        /// Our request.
        req: ReqId,
        /// Why.
        reason: Unroutable,
    },
    /// The answer to a history query of client `conn` (PROTOCOL.md §10.2).
    History {
        /// The asking client.
        conn: ConnId,
        /// The log's epoch.
        epoch: String,
        /// The events, ascending.
        events: Vec<HistoryEvent>,
        /// More exist in the asked direction.
        more: bool,
        /// The log lacks events of the range.
        gap: bool,
    },
    /// The service keeps no history: client `conn` is told so.
    HistoryOff {
        /// The asking client.
        conn: ConnId,
    },
    /// Comes just before `Registered`: the resume token for the welcome of `conn`.
    Session {
        /// Our client.
        conn: ConnId,
        /// The token (PROTOCOL.md §10.4).
        token: String,
    },
    /// Client `conn` resumed its earlier session.
    Resumed {
        /// Our client.
        conn: ConnId,
    },
    /// Client `conn`'s token could not be resumed.
    ResumeFailed {
        /// Our client.
        conn: ConnId,
    },
}

/// Which of our requests a public message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Own {
    /// The sender's connection.
    pub conn: ConnId,
    /// The request.
    pub req: ReqId,
}

/// What the core asks the backend to do after an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FollowUp {
    /// Register this client again (the service came back after it logged in).
    Register {
        /// The client.
        conn: ConnId,
        /// Its name.
        name: String,
        /// Its peer IP.
        ip: String,
    },
    /// Undo a registration: its client left before the answer came.
    Unregister {
        /// The client.
        conn: ConnId,
    },
}
