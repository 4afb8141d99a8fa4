//! The stream reader of the NATS backend (`backend::nats::reader`) on real nats-server
//! nodes: its consumer lost under it, by deletion and with its node, and every event still
//! delivered once, in order. Skipped, with a notice, where nats-server is not installed.

use std::time::Duration;

use async_nats::jetstream::{self, stream};
use server::backend::nats::reader::{Reader, STALL};
use testkit::nats::NatsCluster;

/// A reader that stalled is replaced within [`STALL`] and its checks; this leaves room
/// for a leader election on a loaded machine.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(40);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

async fn stream_on(url: &str, replicas: usize) -> (async_nats::Client, stream::Stream) {
    let client = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connect(url)
        .await
        .expect("a connection");
    let js = jetstream::new(client.clone());
    let stream = js
        .create_stream(stream::Config {
            name: "T".into(),
            subjects: vec!["t.>".into()],
            num_replicas: replicas,
            ..Default::default()
        })
        .await
        .expect("a stream");
    (client, stream)
}

/// Stores `n` events numbered from `first`, each confirmed, retried while the stream has
/// no leader.
async fn store(js: &jetstream::Context, first: usize, n: usize) {
    for i in first..first + n {
        let deadline = tokio::time::Instant::now() + DELIVERY_TIMEOUT;
        loop {
            let ack = match js.publish("t.x", i.to_string().into()).await {
                Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match ack {
                Ok(()) => break,
                Err(e) => {
                    assert!(tokio::time::Instant::now() < deadline, "event {i}: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

/// The next `n` events' payloads and sequences, each within the deadline.
async fn read(reader: &mut Reader, n: usize) -> Vec<(u64, String)> {
    let mut got = Vec::new();
    for _ in 0..n {
        let r = tokio::time::timeout(DELIVERY_TIMEOUT, reader.next())
            .await
            .unwrap_or_else(|_| panic!("no event after {got:?}"))
            .expect("the reader reads on");
        got.push((
            r.seq,
            String::from_utf8_lossy(&r.message.payload).into_owned(),
        ));
    }
    got
}

fn numbered(from: u64, to: u64) -> Vec<(u64, String)> {
    (from..=to).map(|i| (i, i.to_string())).collect()
}

/// The names of the stream's consumers.
fn consumers(url: &str) -> Vec<String> {
    let reply = testkit::nats::request(url, "$JS.API.CONSUMER.NAMES.T", b"").expect("names");
    let v: serde_json::Value = serde_json::from_slice(&reply).expect("json");
    v["consumers"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_consumer_deleted_under_the_reader_is_replaced_and_nothing_is_lost_or_repeated() {
    if testkit::nats::skip() {
        return;
    }
    let cluster = NatsCluster::start(1);
    let url = cluster.url(0);
    runtime().block_on(async {
        let (client, stream) = stream_on(&url, 1).await;
        let js = jetstream::new(client.clone());
        store(&js, 1, 3).await;
        let mut reader = Reader::open(stream, client, 2).await.expect("a reader");
        assert_eq!(
            read(&mut reader, 2).await,
            numbered(2, 3),
            "from where asked"
        );

        // Deleted where async-nats's own recovery would wait for two missed heartbeats
        // (10 s) and then make it again under a name derived from the lost one.
        let names = consumers(&url);
        assert_eq!(names.len(), 1, "{names:?}");
        testkit::nats::request(
            &url,
            &format!("$JS.API.CONSUMER.DELETE.T.{}", names[0]),
            b"",
        )
        .expect("deleted");
        store(&js, 4, 3).await;
        let started = tokio::time::Instant::now();
        assert_eq!(
            read(&mut reader, 3).await,
            numbered(4, 6),
            "read on, once each"
        );
        assert!(
            started.elapsed() < STALL * 3,
            "replaced within its checks, not after async-nats's own {:?}",
            started.elapsed()
        );
        assert_eq!(reader.delivered(), 6);
    });
}

#[test]
fn a_reader_whose_consumer_node_dies_reads_on_from_another() {
    if testkit::nats::skip() {
        return;
    }
    let mut cluster = NatsCluster::start(3);
    runtime().block_on(async {
        let (client, stream) = stream_on(&cluster.url(0), 3).await;
        let js = jetstream::new(client.clone());
        store(&js, 1, 5).await;
        let mut reader = Reader::open(stream, client.clone(), 1)
            .await
            .expect("a reader");
        assert_eq!(read(&mut reader, 5).await, numbered(1, 5));

        // The node that keeps the reader's consumer dies; the reader's own connection
        // (node 0) does too when that is the one, and moves to another.
        let name = consumers(&cluster.url(0)).pop().expect("a consumer");
        let info = testkit::nats::request(
            &cluster.url(0),
            &format!("$JS.API.CONSUMER.INFO.T.{name}"),
            b"",
        )
        .expect("its info");
        let info: serde_json::Value = serde_json::from_slice(&info).expect("json");
        let node: usize = info["cluster"]["leader"]
            .as_str()
            .and_then(|l| l.strip_prefix('n'))
            .and_then(|i| i.parse().ok())
            .expect("the consumer's node");
        cluster.kill(node);
        store(&js, 6, 5).await;
        assert_eq!(
            read(&mut reader, 5).await,
            numbered(6, 10),
            "read on, once each"
        );
    });
}
