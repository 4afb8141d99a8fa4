//! Writing an event into the stream, exactly once (docs/NATS.md, "Exactly once"): every
//! attempt carries the event's `Nats-Msg-Id`, so an attempt retried after its
//! acknowledgement was lost (a node killed, a leader election) is stored once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_nats::jetstream::{self, context::PublishAckFuture, context::PublishError};
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::core::requests::ReqId;

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

/// The acknowledgements of the messages clients send, collected by one task on one inbox
/// subscription (docs/NATS.md, "Exactly once").
///
/// Why not `jetstream::Context::publish`: its future weighs 14 KiB, and a connection's
/// task holds the future of the message it is handing over, so every connection would
/// weigh that much (docs/ARCHITECTURE.md, "Memory per connection"). A core publish with a
/// reply subject is a few hundred bytes; the stream's answer arrives on our inbox, and
/// what is not answered in time goes the slow way, [`Outgoing::store`], with the same id.
pub struct Acks {
    js: jetstream::Context,
    /// `<inbox>.` : each message's reply subject is this and its number.
    prefix: String,
    state: Mutex<AckState>,
    /// Messages on their way to the connection, in the order they were sent: one task
    /// hands them over, so a sender waits on this queue's small future, not on the
    /// client's own (large) publish future, and a sender's messages keep their order.
    sending: mpsc::Sender<(Outgoing, String)>,
    /// Told about a message the stream never confirmed.
    lost: Box<dyn Fn(ReqId) + Send + Sync>,
}

#[derive(Default)]
struct AckState {
    next: u64,
    /// By number: the event, its request, when it was sent.
    waiting: HashMap<u64, (Outgoing, ReqId, Instant)>,
}

/// What the stream answers to a write it stored (`{"stream":..,"seq":..}`); an error
/// answer has no `seq`. Read into this, not a `serde_json::Value`: one per message.
#[derive(serde::Deserialize)]
struct StoredAck {
    #[allow(dead_code)]
    seq: u64,
}

/// An answer slower than this sends the message the slow way (its id makes a late first
/// copy harmless).
const ACK_WAIT: Duration = Duration::from_secs(2);

/// Messages handed to the connection at once before senders wait.
const SENDING: usize = 4096;

impl Acks {
    /// Starts collecting on a new inbox of `client`; `lost` is told about messages the
    /// stream did not confirm within [`RETRY_FOR`]. Ends when `stop` is cancelled.
    pub async fn start(
        client: async_nats::Client,
        js: jetstream::Context,
        lost: impl Fn(ReqId) + Send + Sync + 'static,
        stop: CancellationToken,
    ) -> Result<Arc<Acks>, async_nats::SubscribeError> {
        let prefix = format!("{}.", client.new_inbox());
        let answers = client.subscribe(format!("{prefix}*")).await?;
        let (sending, mut queued) = mpsc::channel::<(Outgoing, String)>(SENDING);
        let hand_over = client.clone();
        tokio::spawn(async move {
            while let Some((out, reply)) = queued.recv().await {
                // A failed send is found by the sweep and sent again the slow way.
                let _ = hand_over
                    .publish_with_reply_and_headers(out.subject, reply, out.headers, out.payload)
                    .await;
            }
        });
        let acks = Arc::new(Acks {
            js,
            prefix,
            state: Mutex::default(),
            sending,
            lost: Box::new(lost),
        });
        tokio::spawn(acks.clone().collect(answers, stop));
        Ok(acks)
    }

    fn state(&self) -> MutexGuard<'_, AckState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands message `req` to the connection; waits only while [`SENDING`] are queued.
    pub async fn send(&self, out: Outgoing, req: ReqId) {
        let (reply, sent) = {
            let mut st = self.state();
            st.next += 1;
            let n = st.next;
            st.waiting.insert(n, (out.clone(), req, Instant::now()));
            (format!("{}{n}", self.prefix), out)
        };
        let _ = self.sending.send((sent, reply)).await;
    }

    async fn collect(
        self: Arc<Self>,
        mut answers: async_nats::Subscriber,
        stop: CancellationToken,
    ) {
        let mut sweep = tokio::time::interval(ACK_WAIT / 2);
        loop {
            tokio::select! {
                answer = answers.next() => {
                    let Some(m) = answer else { return };
                    let n = m.subject.as_str().strip_prefix(&self.prefix).and_then(|n| n.parse().ok());
                    let Some(n) = n else { continue };
                    let Some(waiting) = self.state().waiting.remove(&n) else { continue };
                    // Stored: `{"stream":..,"seq":..}`; anything else (an error, no
                    // responders during an election) goes the slow way.
                    let stored = m.status.is_none()
                        && serde_json::from_slice::<StoredAck>(&m.payload).is_ok();
                    if !stored {
                        self.retry(waiting.0, waiting.1);
                    }
                }
                _ = sweep.tick() => {
                    let late: Vec<_> = {
                        let mut st = self.state();
                        let now = Instant::now();
                        let late: Vec<u64> = st
                            .waiting
                            .iter()
                            .filter(|(_, (_, _, at))| now.duration_since(*at) >= ACK_WAIT)
                            .map(|(n, _)| *n)
                            .collect();
                        late.into_iter().filter_map(|n| st.waiting.remove(&n)).collect()
                    };
                    for (out, req, _) in late {
                        self.retry(out, req);
                    }
                }
                _ = stop.cancelled() => return,
            }
        }
    }

    fn retry(self: &Arc<Self>, out: Outgoing, req: ReqId) {
        let acks = self.clone();
        tokio::spawn(async move {
            if let Err(e) = out.store(&acks.js, None).await {
                tracing::warn!("a message was not stored: {e}");
                (acks.lost)(req);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::StoredAck;

    #[test]
    fn only_an_answer_with_a_sequence_is_a_stored_write() {
        let stored = |a: &str| serde_json::from_slice::<StoredAck>(a.as_bytes()).is_ok();
        assert!(stored(r#"{"stream":"CHAT_EVENTS", "seq":42}"#));
        assert!(stored(
            r#"{"stream":"CHAT_EVENTS","seq":42,"duplicate":true}"#
        ));
        assert!(!stored(
            r#"{"error":{"code":503,"err_code":10039,"description":"no leader"}}"#
        ));
        assert!(!stored(""));
    }
}
