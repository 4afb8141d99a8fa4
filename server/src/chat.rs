//! The chat service as sessions and commands see it: one interface for everything the
//! service does, whatever backend is behind it (docs/ARCHITECTURE.md, "Where things go").
//!
//! [`Chat`] keeps the bookkeeping that is the same for every backend in the server's core
//! (pending logins, open requests, the user list) and hands the backend only what must
//! cross to the service.

use std::sync::Arc;
use std::time::Duration;

use chat_common::link::ConnId;
use chat_common::{ChatError, Refusal};

use crate::backend::Backend;
use crate::core::clients::ClientInfo;
use crate::core::hub::Hub;

/// A handle on the chat service; cheap to clone.
pub struct Chat<B> {
    hub: Arc<Hub>,
    backend: Arc<B>,
    login_timeout: Duration,
}

impl<B> Clone for Chat<B> {
    fn clone(&self) -> Self {
        Chat {
            hub: self.hub.clone(),
            backend: self.backend.clone(),
            login_timeout: self.login_timeout,
        }
    }
}

impl<B> Chat<B> {
    /// The service through `backend`, with this server's `hub`. A login waits at most
    /// `login_timeout` for the service's answer.
    pub fn new(hub: Arc<Hub>, backend: Arc<B>, login_timeout: Duration) -> Self {
        Chat {
            hub,
            backend,
            login_timeout,
        }
    }

    /// The server's core.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// The IP stamped on server-generated frames.
    pub fn server_ip(&self) -> &str {
        self.hub.server_ip()
    }

    /// Users online across all servers, sorted, from this server's replica (no round trip).
    pub fn users(&self) -> Vec<String> {
        self.hub.users()
    }
}

impl<B: Backend> Chat<B> {
    /// Registers `info.name` for client `conn` and waits for the answer. On success the
    /// welcome frame is already queued, first, and the client receives broadcasts.
    pub async fn login(&self, conn: ConnId, info: ClientInfo) -> Result<(), Refusal> {
        let (name, ip) = (info.name.clone(), info.ip.clone());
        let answer = self.hub.begin_login(conn, info)?;
        if self.backend.register(conn, &name, &ip).await.is_err() {
            self.hub.leave(conn);
            return Err(Refusal::Unavailable);
        }
        match tokio::time::timeout(self.login_timeout, answer).await {
            Ok(Ok(result)) => result,
            // The hub dropped the login without an answer: the service went away.
            Ok(Err(_)) => Err(Refusal::Unavailable),
            Err(_) => {
                self.hub.leave(conn);
                Err(Refusal::ServiceTimeout)
            }
        }
    }

    /// Client `conn` leaves: the service frees its name and tells everyone.
    pub async fn leave(&self, conn: ConnId) {
        if self.hub.leave(conn) {
            self.backend.unregister(conn).await;
        }
    }

    /// Sends a public message; `confirm` (`/shout`) tells the sender how many it reached.
    /// The confirmation, or the error if the service loses it, comes later through the
    /// hub; an `Err` here means it was refused at once.
    pub async fn publish(
        &self,
        conn: ConnId,
        text: String,
        confirm: bool,
    ) -> Result<(), ChatError> {
        let req = self.hub.open_request(conn, confirm, &text)?;
        if self.backend.publish(conn, req, text).await.is_err() {
            self.hub.fail_request(req);
        }
        Ok(())
    }

    /// Sends a private message to `to`; like [`Chat::publish`], failures come through the
    /// hub, except the ones known at once.
    pub async fn private(&self, conn: ConnId, to: String, text: String) -> Result<(), ChatError> {
        let req = self.hub.open_request(conn, false, &text)?;
        if self
            .backend
            .send_private(conn, req, to, text)
            .await
            .is_err()
        {
            self.hub.fail_request(req);
        }
        Ok(())
    }
}
