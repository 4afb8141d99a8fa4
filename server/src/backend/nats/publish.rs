//! Writing an event into the stream, exactly once (docs/NATS.md, "Exactly once"): every
//! attempt carries the event's `Nats-Msg-Id`, so an attempt retried after its
//! acknowledgement was lost (a node killed, a leader election) is stored once.

use std::time::Duration;

use async_nats::jetstream::{self, context::PublishAckFuture, context::PublishError};
use tokio::time::Instant;

use super::wire::Wire;

/// How long an event is retried before its sender is told it was not delivered: longer
/// than a JetStream leader election (4–9 s on nats-server 2.9), well inside the duplicate
/// window (`setup::DUPLICATE_WINDOW`).
pub const RETRY_FOR: Duration = Duration::from_secs(20);

/// The event could not be stored within [`RETRY_FOR`].
#[derive(Debug, thiserror::Error)]
#[error("the event stream did not confirm the event: {0}")]
pub struct NotStored(pub String);

/// One event ready to write: its subject, headers and payload, built once.
#[derive(Debug, Clone)]
pub struct Outgoing {
    subject: &'static str,
    headers: async_nats::HeaderMap,
    payload: bytes::Bytes,
}

impl Outgoing {
    /// `wire`, encoded.
    pub fn new(wire: &Wire) -> Outgoing {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", wire.msg_id().as_str());
        Outgoing {
            subject: wire.subject(),
            headers,
            payload: wire.encode(),
        }
    }

    /// Hands it to the connection (waits only while the connection's buffer is full); the
    /// returned future is the stream's acknowledgement.
    pub async fn send(&self, js: &jetstream::Context) -> Result<PublishAckFuture, PublishError> {
        js.publish_with_headers(self.subject, self.headers.clone(), self.payload.clone())
            .await
    }

    /// Writes it and waits for its acknowledgement (its sequence), retrying for
    /// [`RETRY_FOR`]. `first` is an attempt already sent, if any.
    pub async fn store(
        &self,
        js: &jetstream::Context,
        first: Option<PublishAckFuture>,
    ) -> Result<u64, NotStored> {
        let deadline = Instant::now() + RETRY_FOR;
        let mut pause = Duration::from_millis(50);
        let mut attempt = first;
        loop {
            let result = match attempt.take() {
                Some(ack) => ack.await,
                None => match self.send(js).await {
                    Ok(ack) => ack.await,
                    Err(e) => Err(e),
                },
            };
            let e = match result {
                Ok(ack) => return Ok(ack.sequence),
                Err(e) => e,
            };
            if Instant::now() + pause >= deadline {
                return Err(NotStored(e.to_string()));
            }
            tracing::debug!("retrying an event ({e}) in {pause:?}");
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(1));
        }
    }
}
