//! The broker backend: this server's link to the broker process (docs/ARCHITECTURE.md,
//! "The broker link").
//!
//! [`BrokerBackend::start`] spawns the task that keeps one link up ([`connection`]),
//! reconnecting with backoff; the [`BrokerBackend`] handles queue what sessions send onto
//! the link that is up now ([`link_tx`]), and fail at once while there is none.

pub mod connection;
pub mod dial;
pub mod link_tx;
#[cfg(test)]
mod tests;
pub mod translate;

pub use connection::LinkSettings;
pub use dial::{Dial, TcpDial};

use std::future::Future;
use std::sync::Arc;

use chat_common::link::{self, ConnId, ToBroker};
use futures_util::FutureExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::backend::broker::connection::Current;
use crate::backend::broker::link_tx::LinkTx;
use crate::backend::{Backend, Unavailable};
use crate::core::hub::Hub;
use crate::core::requests::ReqId;

/// What sessions use to reach the broker: the link that is up now, if any.
#[derive(Clone)]
pub struct BrokerBackend {
    current: Current,
}

impl BrokerBackend {
    /// Starts keeping a link to the broker for `hub` until `stop` is cancelled. Returns the
    /// backend, the link task, and a flag that turns true once the first link is up.
    pub fn start<D: Dial>(
        hub: Arc<Hub>,
        dial: D,
        settings: LinkSettings,
        stop: CancellationToken,
    ) -> (BrokerBackend, JoinHandle<()>, watch::Receiver<bool>) {
        let current = Current::default();
        // What the metrics say of this backend: its name, and what waits on the link now
        // (read at each scrape, under the lock sessions take to find the link).
        let metrics = hub.backend_metrics();
        metrics.name_as("broker");
        let link = current.clone();
        metrics.watch_queue(move || {
            link.lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_ref()
                .map_or(0, LinkTx::queued_bytes)
        });
        let (up_tx, up_rx) = watch::channel(false);
        let task = tokio::spawn(connection::run(
            hub,
            dial,
            settings,
            current.clone(),
            stop,
            up_tx,
        ));
        (BrokerBackend { current }, task, up_rx)
    }

    fn link(&self) -> Result<LinkTx, Unavailable> {
        self.current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or(Unavailable)
    }

    /// Encodes `msg` now, so the returned future holds only its bytes.
    fn send(&self, msg: ToBroker) -> impl Future<Output = Result<(), Unavailable>> + Send + use<> {
        let queued = self.link().map(|l| (l, link::encode(&msg)));
        async move {
            let (link, bytes) = queued?;
            link.send_bytes(bytes).await
        }
    }
}

impl Backend for BrokerBackend {
    fn register(
        &self,
        conn: ConnId,
        name: &str,
        ip: &str,
    ) -> impl Future<Output = Result<(), Unavailable>> + Send {
        self.send(ToBroker::Register {
            conn,
            name: name.to_string(),
            ip: ip.to_string(),
        })
    }

    fn unregister(&self, conn: ConnId) -> impl Future<Output = ()> + Send {
        // Gone or not, the client is: the broker frees the name when the link drops.
        self.send(ToBroker::Unregister { conn }).map(drop)
    }

    fn publish(
        &self,
        conn: ConnId,
        req: ReqId,
        text: String,
    ) -> impl Future<Output = Result<(), Unavailable>> + Send {
        self.send(ToBroker::Public {
            conn,
            req,
            msg: text,
        })
    }

    fn send_private(
        &self,
        conn: ConnId,
        req: ReqId,
        to: String,
        text: String,
    ) -> impl Future<Output = Result<(), Unavailable>> + Send {
        self.send(ToBroker::Private {
            conn,
            req,
            to,
            msg: text,
        })
    }

    fn resume(
        &self,
        conn: ConnId,
        token: String,
    ) -> impl Future<Output = Result<(), Unavailable>> + Send {
        self.send(ToBroker::Resume { conn, token })
    }

    fn history(
        &self,
        conn: ConnId,
        query: chat_common::history::Query,
        chat_only: bool,
    ) -> impl Future<Output = Result<(), Unavailable>> + Send {
        self.send(ToBroker::History {
            conn,
            query,
            chat_only,
        })
    }
}
