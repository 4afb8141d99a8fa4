//! The event stream, read in order from a point, whatever becomes of the node that keeps
//! the reading consumer (docs/NATS.md, "Exactly once").
//!
//! async-nats's ordered consumer makes itself again after a reconnect or a silence, but
//! under one name chosen before its retries: on nats-server 2.9 a consumer of that name
//! placed on a node that then died is asked for again and again and never answers, and
//! the reader stalls for good while the stream keeps growing. So this reader watches for
//! that: when the stream holds events past the last one delivered and none came for
//! [`STALL`], it replaces the consumer with a new one, under a new name, from the next
//! sequence. What it delivers is never repeated and never skipped.

use std::time::Duration;

use async_nats::jetstream::consumer::push::{Ordered, OrderedConfig, OrderedErrorKind};
use async_nats::jetstream::{self, consumer, stream};
use futures_util::StreamExt;
use tokio::task::JoinHandle;
use tokio::time::{Instant, Sleep};

/// How long the stream may hold undelivered events, with none arriving, before the
/// consumer is replaced: past a leader election's first attempts, well below what a
/// sender waits for its answer. Also how often a quiet reader looks at the stream's last
/// sequence: one small request per server every 3 s while nothing happens.
pub const STALL: Duration = Duration::from_secs(3);

/// How long one look at the stream, or one consumer's creation, may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

/// Why the stream cannot be read on.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The first consumer could not be made.
    #[error("reading the stream: {0}")]
    Open(String),
    /// The consumer failed in a way it does not recover from.
    #[error("reading the stream: {0}")]
    Broken(String),
}

/// One event read: its sequence, its publication time (ms since the epoch), and the
/// message.
pub struct Read {
    /// The stream sequence: the event's `id`.
    pub seq: u64,
    /// When the stream stored it, in ms since the Unix epoch.
    pub ts: u64,
    /// The message itself.
    pub message: jetstream::Message,
}

/// The stream read in order from a sequence on.
pub struct Reader {
    stream: stream::Stream,
    client: async_nats::Client,
    messages: Ordered,
    /// The last sequence delivered.
    delivered: u64,
    last_progress: Instant,
    check: std::pin::Pin<Box<Sleep>>,
    /// A look at the stream, and the consumer that replaces the stalled one, if needed.
    repair: Option<JoinHandle<Result<Option<Ordered>, String>>>,
}

impl Reader {
    /// Starts reading `stream` at sequence `start`.
    pub async fn open(
        stream: stream::Stream,
        client: async_nats::Client,
        start: u64,
    ) -> Result<Reader, ReadError> {
        let messages = consume(&stream, &client, start)
            .await
            .map_err(ReadError::Open)?;
        Ok(Reader {
            stream,
            client,
            messages,
            delivered: start.saturating_sub(1),
            last_progress: Instant::now(),
            check: Box::pin(tokio::time::sleep(STALL)),
            repair: None,
        })
    }

    /// The last sequence delivered.
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// The next event. Cancel-safe: what was under way (a look at the stream, a new
    /// consumer) goes on, and nothing read is lost.
    pub async fn next(&mut self) -> Result<Read, ReadError> {
        loop {
            tokio::select! {
                m = self.messages.next() => match m {
                    Some(Ok(message)) => {
                        let Ok(info) = message.info() else { continue };
                        let seq = info.stream_sequence;
                        if seq <= self.delivered {
                            continue;
                        }
                        let ts = u64::try_from(info.published.unix_timestamp_nanos() / 1_000_000)
                            .unwrap_or(0);
                        self.delivered = seq;
                        self.last_progress = Instant::now();
                        return Ok(Read { seq, ts, message });
                    }
                    // The consumer lived on a node that died: polled again, the reader
                    // makes a new one from the last sequence it delivered.
                    Some(Err(e)) if e.kind() == OrderedErrorKind::MissingHeartbeat => {
                        tracing::warn!(
                            delivered = self.delivered,
                            "NATS: the stream's consumer went silent; reading on"
                        );
                    }
                    Some(Err(e)) => return Err(ReadError::Broken(e.to_string())),
                    None => return Err(ReadError::Broken("the consumer ended".into())),
                },
                done = finished(&mut self.repair), if self.repair.is_some() => {
                    self.repair = None;
                    match done {
                        Ok(Ok(Some(fresh))) => {
                            tracing::warn!(
                                delivered = self.delivered,
                                "NATS: the stream's consumer stalled; replaced it"
                            );
                            self.messages = fresh;
                            self.last_progress = Instant::now();
                        }
                        // Nothing is waiting: a quiet chat, not a stalled reader.
                        Ok(Ok(None)) => self.last_progress = Instant::now(),
                        Ok(Err(e)) => tracing::debug!("NATS: checking the stream's reader: {e}"),
                        Err(e) => tracing::warn!("NATS: checking the stream's reader: {e}"),
                    }
                }
                () = &mut self.check, if self.repair.is_none() => {
                    let now = Instant::now();
                    self.check.as_mut().reset(now + STALL / 3);
                    if now.duration_since(self.last_progress) >= STALL {
                        let (stream, client, from) =
                            (self.stream.clone(), self.client.clone(), self.delivered + 1);
                        self.repair = Some(tokio::spawn(replace_if_behind(stream, client, from)));
                    }
                }
            }
        }
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        if let Some(repair) = self.repair.take() {
            repair.abort();
        }
    }
}

/// `task`'s end; never, if there is none.
async fn finished<T>(task: &mut Option<JoinHandle<T>>) -> Result<T, tokio::task::JoinError> {
    match task {
        Some(t) => t.await,
        None => std::future::pending().await,
    }
}

/// A new consumer from `from` if the stream holds events from there on; `None` if not.
async fn replace_if_behind(
    stream: stream::Stream,
    client: async_nats::Client,
    from: u64,
) -> Result<Option<Ordered>, String> {
    let info = tokio::time::timeout(REQUEST_TIMEOUT, stream.get_info())
        .await
        .map_err(|_| "no answer about the stream".to_string())?
        .map_err(|e| e.to_string())?;
    if info.state.last_sequence < from {
        return Ok(None);
    }
    consume(&stream, &client, from).await.map(Some)
}

/// An ordered consumer of `stream` from `start`, under a name of its own.
async fn consume(
    stream: &stream::Stream,
    client: &async_nats::Client,
    start: u64,
) -> Result<Ordered, String> {
    let create = stream.create_consumer(OrderedConfig {
        // A name of its own: never one the cluster may have placed on a dead node.
        name: Some(format!("chat_{}", netkit::random::hex(8))),
        deliver_subject: client.new_inbox(),
        deliver_policy: consumer::DeliverPolicy::ByStartSequence {
            start_sequence: start,
        },
        ..Default::default()
    });
    let consumer = tokio::time::timeout(REQUEST_TIMEOUT, create)
        .await
        .map_err(|_| "no answer to making a consumer".to_string())?
        .map_err(|e| e.to_string())?;
    consumer.messages().await.map_err(|e| e.to_string())
}
