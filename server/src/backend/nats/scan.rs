//! Reading part of a stream once, from a point, in batches: what `/history` and a
//! starting server's read of who is online both need (an ephemeral pull consumer that
//! acknowledges nothing, dropped when done).

use std::ops::ControlFlow;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use futures_util::StreamExt;

/// Messages fetched per request.
const BATCH: usize = 256;

/// Why the stream could not be read.
#[derive(Debug, thiserror::Error)]
#[error("reading a stream: {0}")]
pub struct ScanError(String);

fn err(e: impl std::fmt::Display) -> ScanError {
    ScanError(e.to_string())
}

/// Hands `visit` the messages of `stream` matching `filter` from `from` on, with their
/// info's `pending` (how many more match after this one), until it breaks, none are
/// pending, or a fetch returns nothing.
pub async fn scan(
    stream: &stream::Stream,
    filter: String,
    from: consumer::DeliverPolicy,
    mut visit: impl FnMut(&jetstream::Message) -> ControlFlow<()>,
) -> Result<(), ScanError> {
    let reader = stream
        .create_consumer(consumer::pull::Config {
            filter_subject: filter,
            deliver_policy: from,
            ack_policy: consumer::AckPolicy::None,
            inactive_threshold: Duration::from_secs(10),
            memory_storage: true,
            num_replicas: 1,
            ..Default::default()
        })
        .await
        .map_err(err)?;
    let result = async {
        loop {
            let mut batch = reader
                .fetch()
                .max_messages(BATCH)
                .messages()
                .await
                .map_err(err)?;
            let mut n = 0usize;
            while let Some(m) = batch.next().await {
                let m = m.map_err(err)?;
                n += 1;
                let last = m.info().map(|i| i.pending == 0).unwrap_or(true);
                if visit(&m).is_break() || last {
                    return Ok(());
                }
            }
            if n == 0 {
                return Ok(());
            }
        }
    }
    .await;
    let _ = stream.delete_consumer(&reader.cached_info().name).await;
    result
}
