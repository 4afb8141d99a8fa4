//! Reaching the cluster and making sure the stream and the buckets exist (docs/NATS.md,
//! "What is in the cluster").
//!
//! async-nats is used without its `server_2_10`+ features (our servers are Debian's 2.9.x),
//! and its `create_key_value` cannot be used at all on 2.9: it first reads the account's
//! info, whose 2.9 form lacks fields the crate requires (`reserved_memory`). So the buckets
//! are created as the streams a KV bucket is (`KV_<bucket>`, one message per subject,
//! direct gets, roll-ups) and opened with `get_key_value`, which reads only the stream.

use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream::{self, kv, stream};

use super::wire;

/// What a server needs of the cluster, opened once.
#[derive(Clone)]
pub struct Cluster {
    /// The connection (it reconnects by itself, to any node it knows).
    pub client: async_nats::Client,
    /// JetStream on it.
    pub js: jetstream::Context,
    /// The event stream.
    pub stream: jetstream::stream::Stream,
    /// Held names.
    pub names: kv::Store,
    /// Resume sessions.
    pub sessions: kv::Store,
}

/// How the stream and buckets are made when they do not exist yet.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Replicas of each (1 on a single node; 3 on a cluster of three or more).
    pub replicas: usize,
    /// Events older than this are removed (PROTOCOL.md §10.7).
    pub max_age: Duration,
    /// At most this many events are kept.
    pub max_events: u64,
    /// A resume token unused this long expires (PROTOCOL.md §10.4).
    pub resume_ttl: Duration,
}

/// How long a retried publish is de-duplicated: longer than any retry goes on.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// The de-duplication window of a stream whose entries live `max_age` (0: for ever):
/// JetStream refuses a window longer than the age, and the server's flags keep the age at
/// least [`crate::config::MIN_NATS_AGE`], longer than any retry.
fn window(max_age: Duration) -> Duration {
    if max_age.is_zero() {
        DUPLICATE_WINDOW
    } else {
        DUPLICATE_WINDOW.min(max_age)
    }
}

/// Connects to any of `urls`; the client then learns the cluster's other nodes and moves
/// to one of them when its node goes away.
pub async fn connect(urls: &[String], label: &str) -> anyhow::Result<async_nats::Client> {
    let addrs = urls
        .iter()
        .map(|u| u.parse::<async_nats::ServerAddr>())
        .collect::<Result<Vec<_>, _>>()
        .context("a --nats URL")?;
    async_nats::ConnectOptions::new()
        .name(label)
        // A node that stops answering (SIGSTOP, a partition) is left after about 2 s, not
        // after the default 2 minutes.
        .ping_interval(Duration::from_secs(1))
        .connection_timeout(Duration::from_secs(2))
        .max_reconnects(None)
        .retry_on_initial_connect()
        .connect(addrs)
        .await
        .context("connecting to NATS")
}

/// Opens (creating if needed) the stream and the buckets.
pub async fn open(client: async_nats::Client, layout: &Layout) -> anyhow::Result<Cluster> {
    let js = jetstream::ContextBuilder::new()
        .timeout(Duration::from_secs(5))
        .build(client.clone());
    let replicas = layout.replicas.max(1);
    let stream = js
        .get_or_create_stream(stream::Config {
            name: wire::STREAM.into(),
            subjects: vec![wire::SUBJECTS.into()],
            max_age: layout.max_age,
            max_messages: i64::try_from(layout.max_events).unwrap_or(i64::MAX),
            duplicate_window: window(layout.max_age),
            storage: stream::StorageType::File,
            num_replicas: replicas,
            allow_direct: true,
            ..Default::default()
        })
        .await
        .context("opening the event stream")?;
    let names = bucket(&js, wire::NAMES_BUCKET, replicas, Duration::ZERO).await?;
    let sessions = bucket(&js, wire::SESSIONS_BUCKET, replicas, layout.resume_ttl).await?;
    Ok(Cluster {
        client,
        js,
        stream,
        names,
        sessions,
    })
}

async fn bucket(
    js: &jetstream::Context,
    name: &str,
    replicas: usize,
    max_age: Duration,
) -> anyhow::Result<kv::Store> {
    if let Ok(store) = js.get_key_value(name).await {
        return Ok(store);
    }
    js.get_or_create_stream(stream::Config {
        name: format!("KV_{name}"),
        subjects: vec![format!("$KV.{name}.>")],
        max_messages_per_subject: 1,
        max_age,
        storage: stream::StorageType::File,
        num_replicas: replicas,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: stream::DiscardPolicy::New,
        duplicate_window: window(max_age),
        ..Default::default()
    })
    .await
    .with_context(|| format!("creating the bucket {name}"))?;
    js.get_key_value(name)
        .await
        .with_context(|| format!("opening the bucket {name}"))
}

/// The log's epoch (PROTOCOL.md §10.1): the stream's creation time in ns, as 32 hex digits
/// like the broker's; the same for every server, new only when the stream is lost and
/// made again.
pub fn epoch(info: &stream::Info) -> String {
    let nanos = u128::try_from(info.created.unix_timestamp_nanos()).unwrap_or(0);
    format!("{nanos:032x}")
}

/// Replicas for `--nats-replicas 0` (auto): three when the cluster has three nodes or
/// more, else one.
pub fn auto_replicas(client: &async_nats::Client) -> usize {
    let info = client.server_info();
    if info.connect_urls.len() >= 3 { 3 } else { 1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_duplicate_window_never_outlives_the_entries_and_covers_every_retry() {
        assert_eq!(window(Duration::ZERO), DUPLICATE_WINDOW);
        assert_eq!(window(Duration::from_secs(30)), Duration::from_secs(30));
        assert_eq!(window(Duration::from_secs(86_400)), DUPLICATE_WINDOW);
        // The shortest age the flags allow still covers a write's retries.
        assert!(window(crate::config::MIN_NATS_AGE) >= super::super::publish::RETRY_FOR);
        assert!(DUPLICATE_WINDOW >= super::super::publish::RETRY_FOR);
    }
}
