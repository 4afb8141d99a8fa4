//! The seam between this server and the chat service behind it.
//!
//! Sessions and commands never talk to a backend directly: they use
//! [`crate::chat::Chat`], which keeps the server's own state ([`crate::core`]) and hands
//! the backend what must cross to the service. A backend does two things:
//!
//! 1. it carries out the calls of the [`Backend`] trait (register and unregister a name,
//!    publish a public or a private message), queuing them towards the service — a call
//!    may wait while the service is congested, which holds back the client that made it;
//! 2. it reports everything the service says, in the service's order, as
//!    [`crate::core::event::Event`]s to [`crate::core::hub::Hub::apply`], and carries out
//!    the [`crate::core::event::FollowUp`]s that returns (registering clients again after
//!    the service came back, undoing a registration whose client left).
//!
//! Listing users needs no call: every backend keeps the hub's replica of the user list
//! current through `Up`, `Joined` and `Left` events, so `/list` never waits.
//!
//! Today's backend is [`broker`], the link to the broker process. A new one (NATS, say)
//! goes beside it and is chosen in `crate::server`; nothing in `session`, `cmd` or `net`
//! changes (docs/ARCHITECTURE.md, "Where things go").

pub mod broker;
#[cfg(test)]
pub mod fake;
pub mod nats;

use std::future::Future;

use chat_common::link::ConnId;

use crate::core::requests::ReqId;

/// The chat service cannot be reached: nothing was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the chat service cannot be reached")]
pub struct Unavailable;

/// What a server asks of its chat service. Every answer comes back as an event.
pub trait Backend: Send + Sync + 'static {
    /// Asks for `name` for client `conn` (peer address `ip`); the answer is
    /// `Event::Registered` or `Event::Refused`.
    fn register(
        &self,
        conn: ConnId,
        name: &str,
        ip: &str,
    ) -> impl Future<Output = Result<(), Unavailable>> + Send;

    /// Client `conn` left: its name is free; everyone hears `Event::Left`.
    fn unregister(&self, conn: ConnId) -> impl Future<Output = ()> + Send;

    /// A public message of request `req`; it comes back as `Event::Public` with `own` set.
    fn publish(
        &self,
        conn: ConnId,
        req: ReqId,
        text: String,
    ) -> impl Future<Output = Result<(), Unavailable>> + Send;

    /// A private message of request `req` to `to`; the answer is `Event::Routed` or
    /// `Event::Undeliverable`.
    fn send_private(
        &self,
        conn: ConnId,
        req: ReqId,
        to: String,
        text: String,
    ) -> impl Future<Output = Result<(), Unavailable>> + Send;

    /// Client `conn` resumes the session of `token` (PROTOCOL.md §10.4); the answer is
    /// `Event::Resumed` or `Event::ResumeFailed`.
    fn resume(
        &self,
        conn: ConnId,
        token: String,
    ) -> impl Future<Output = Result<(), Unavailable>> + Send;

    /// Client `conn` asks for earlier events (PROTOCOL.md §10.2); the answer is
    /// `Event::History` or `Event::HistoryOff`.
    fn history(
        &self,
        conn: ConnId,
        query: chat_common::history::Query,
        chat_only: bool,
    ) -> impl Future<Output = Result<(), Unavailable>> + Send;
}
