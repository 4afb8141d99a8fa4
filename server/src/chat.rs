//! The chat service as sessions and commands see it: one interface for everything the
//! service does, whatever backend is behind it (docs/ARCHITECTURE.md, "Where things go").
//!
//! [`Chat`] keeps the bookkeeping that is the same for every backend in the server's core
//! (pending logins, open requests, the user list) and hands the backend only what must
//! cross to the service.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chat_common::link::ConnId;
use chat_common::{ChatError, Refusal};
use futures_util::FutureExt;
use futures_util::future::{self, Either};

use crate::backend::{Backend, Unavailable};
use crate::core::clients::ClientInfo;
use crate::core::hub::Hub;
use crate::core::requests::{Label, ReqId};

/// A handle on the chat service; cheap to clone (one pointer, held by every session).
pub struct Chat<B>(Arc<Inner<B>>);

struct Inner<B> {
    hub: Arc<Hub>,
    backend: B,
    login_timeout: Duration,
}

impl<B> Clone for Chat<B> {
    fn clone(&self) -> Self {
        Chat(self.0.clone())
    }
}

impl<B> Chat<B> {
    /// The service through `backend`, with this server's `hub`. A login waits at most
    /// `login_timeout` for the service's answer.
    pub fn new(hub: Arc<Hub>, backend: B, login_timeout: Duration) -> Self {
        Chat(Arc::new(Inner {
            hub,
            backend,
            login_timeout,
        }))
    }

    /// The server's core.
    pub fn hub(&self) -> &Hub {
        &self.0.hub
    }

    /// The IP stamped on server-generated frames.
    pub fn server_ip(&self) -> &str {
        self.0.hub.server_ip()
    }

    /// Users online across all servers, sorted, from this server's replica (no round trip).
    pub fn users(&self) -> std::sync::Arc<[String]> {
        self.0.hub.users()
    }
}

impl<B: Backend> Chat<B> {
    /// Registers `info.name` for client `conn` and waits for the answer. On success the
    /// welcome frame is already queued, first, and the client receives broadcasts.
    pub async fn login(&self, conn: ConnId, info: ClientInfo) -> Result<(), Refusal> {
        let (name, ip) = (info.name.clone(), info.ip.clone());
        let answer = self.0.hub.begin_login(conn, info)?;
        if self.0.backend.register(conn, &name, &ip).await.is_err() {
            self.0.hub.leave(conn);
            return Err(Refusal::Unavailable);
        }
        match tokio::time::timeout(self.0.login_timeout, answer).await {
            Ok(Ok(result)) => result,
            // The hub dropped the login without an answer: the service went away.
            Ok(Err(_)) => Err(Refusal::Unavailable),
            Err(_) => {
                self.0.hub.leave(conn);
                Err(Refusal::ServiceTimeout)
            }
        }
    }

    /// Client `conn` leaves: the service frees its name and tells everyone.
    pub async fn leave(&self, conn: ConnId) {
        if self.0.hub.leave(conn) {
            self.0.backend.unregister(conn).await;
        }
    }

    /// Sends a public message; `confirm` (`/shout`) tells the sender how many it reached.
    /// The confirmation, or the error if the service loses it, comes later through the
    /// hub; an `Err` here means it was refused at once.
    ///
    /// Not an `async fn`: the request is opened and handed to the backend now, and the
    /// future is the backend's own, with one step after it. An `async fn` (or an `async`
    /// block) would also keep its arguments beside that future, and every connection's task
    /// is as large as its largest moment (BENCHMARKS.md counts the bytes).
    pub fn publish(
        &self,
        conn: ConnId,
        text: String,
        confirm: bool,
        label: Label,
    ) -> impl Future<Output = Result<(), ChatError>> + Send + '_ {
        match self.0.hub.open_request(conn, confirm, &text, label) {
            Err(e) => Either::Left(future::ready(Err(e))),
            Ok(req) => Either::Right(self.taken(req, self.0.backend.publish(conn, req, text))),
        }
    }

    /// Sends a private message to `to`; like [`Chat::publish`], failures come through the
    /// hub, except the ones known at once.
    pub fn private(
        &self,
        conn: ConnId,
        to: String,
        text: String,
        label: Label,
    ) -> impl Future<Output = Result<(), ChatError>> + Send + '_ {
        match self.0.hub.open_request(conn, false, &text, label) {
            Err(e) => Either::Left(future::ready(Err(e))),
            Ok(req) => {
                Either::Right(self.taken(req, self.0.backend.send_private(conn, req, to, text)))
            }
        }
    }

    /// Request `req` once the backend has taken it; if it cannot, the request fails (its
    /// sender is told through the hub).
    /// Asks the service for earlier events for `conn` (PROTOCOL.md §10.2); the answer comes
    /// through the hub.
    pub fn history(
        &self,
        conn: ConnId,
        query: chat_common::history::Query,
        chat_only: bool,
    ) -> impl Future<Output = Result<(), ChatError>> + Send + '_ {
        self.0
            .backend
            .history(conn, query, chat_only)
            .map(|sent| sent.map_err(|_| ChatError::Refused(chat_common::Refusal::Unavailable)))
    }

    /// Asks the service to put `conn` in the session of `token` (PROTOCOL.md §10.4); the
    /// answer comes through the hub.
    pub fn resume(
        &self,
        conn: ConnId,
        token: String,
    ) -> impl Future<Output = Result<(), ChatError>> + Send + '_ {
        self.0
            .backend
            .resume(conn, token)
            .map(|sent| sent.map_err(|_| ChatError::Refused(chat_common::Refusal::Unavailable)))
    }

    fn taken(
        &self,
        req: ReqId,
        sending: impl Future<Output = Result<(), Unavailable>>,
    ) -> impl Future<Output = Result<(), ChatError>> {
        sending.map(move |sent| {
            if sent.is_err() {
                self.0.hub.fail_request(req);
            }
            Ok(())
        })
    }
}
