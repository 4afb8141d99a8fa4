//! A logged-in client, as commands see it: who it is, and how to answer it.
//!
//! Replies go straight onto the client's own queue: answering a command takes no lock
//! shared with other clients.

use std::net::SocketAddr;

use bytes::Bytes;
use chat_common::link::ConnId;
use chat_common::{ChatError, Refusal, ServerFrame};
use netkit::queue::QueueTx;

use crate::backend::Backend;
use crate::chat::Chat;
use crate::core::clients::{ClientInfo, deliver};
use crate::core::frames::{self, Format};
use crate::core::requests::Label;

/// A logged-in client.
pub struct Session<B> {
    /// The connection id, unique in this process.
    pub conn: ConnId,
    /// The logged-in name.
    pub name: String,
    /// Which port it came from.
    pub format: Format,
    /// Its outbound queue.
    out: QueueTx,
    /// The chat service.
    pub chat: Chat<B>,
    /// The label of the frame being carried out, put on every reply to it (PROTOCOL.md
    /// §3.4); set by the connection's loop around each request.
    pub label: Label,
}

impl<B: Backend> Session<B> {
    /// Logs `name` in for connection `conn` from `peer`, whose frames go to `out`. On
    /// success the welcome frame is queued.
    pub async fn login(
        chat: &Chat<B>,
        conn: ConnId,
        name: String,
        peer: SocketAddr,
        format: Format,
        out: &QueueTx,
    ) -> Result<Session<B>, Refusal> {
        let info = ClientInfo {
            name: name.clone(),
            ip: peer.ip().to_string(),
            format,
            out: out.clone(),
        };
        chat.login(conn, info).await?;
        chat.hub().stats().logins.inc();
        Ok(Session {
            conn,
            name,
            format,
            out: out.clone(),
            chat: chat.clone(),
            label: None,
        })
    }

    /// Queues a frame for this client, with the label of the request it answers.
    pub fn reply(&self, frame: &ServerFrame) {
        match &self.label {
            None => self.push(frames::encode(frame, self.format)),
            Some(label) => {
                let mut labelled = frame.clone();
                labelled.label = Some(label.to_string());
                self.push(frames::encode(&labelled, self.format));
            }
        }
    }

    /// Queues already encoded bytes for this client.
    fn push(&self, bytes: Bytes) {
        deliver(
            &self.out,
            &self.name,
            self.format,
            bytes,
            self.chat.server_ip(),
            self.chat.hub().stats(),
        );
    }

    /// Queues an error frame.
    pub fn error(&self, err: &ChatError) {
        self.reply(&frames::error(self.chat.server_ip(), &self.name, err));
    }

    /// Queues a notice.
    pub fn system(&self, msg: impl Into<String>) {
        self.reply(&frames::system(self.chat.server_ip(), &self.name, msg));
    }

    /// Leaves the chat: the service frees the name and tells everyone.
    pub async fn leave(self) {
        self.chat.leave(self.conn).await;
    }
}

/// An error for a connection that is not logged in (yet), in its port's format; `to` is
/// the name it tried, if any.
pub fn login_error(server_ip: &str, to: &str, err: &ChatError, format: Format) -> Bytes {
    frames::encode(&frames::error(server_ip, to, err), format)
}

#[cfg(test)]
impl<B> Session<B> {
    /// A session without a login (size probes).
    pub(crate) fn unregistered(conn: ConnId, out: QueueTx, chat: Chat<B>) -> Self {
        Session {
            conn,
            name: String::new(),
            format: Format::Json,
            out,
            chat,
            label: None,
        }
    }
}
