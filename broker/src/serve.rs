//! A running broker: [`Broker`] owns the routing task and the link tasks and shuts them
//! down, and [`run`] feeds it the links accepted on a TCP listener.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use chat_common::link::ServerId;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;

use crate::Config;
use crate::history::store::Store;
use crate::link::{self, Shared};
use crate::metrics::BrokerMetrics;
use crate::router;

/// Inputs the router's inbox holds before the links wait (their byte budget is the real
/// bound: [`Config::inbox_bytes`]).
const INBOX_MESSAGES: usize = 1024;

/// How long [`Broker::shutdown`] waits for the links to close.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the accept loop backs off after a failed accept (usually EMFILE).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves server links accepted on `listener` until `shutdown` resolves, then closes every
/// link (bounded in time: see [`Broker::shutdown`]). No history: see [`run_with`].
pub async fn run(config: Config, listener: TcpListener, shutdown: impl Future<Output = ()>) {
    run_with(config, None, listener, shutdown).await
}

/// Like [`run`], keeping every event in `history` before it is sent (PROTOCOL.md §10).
pub async fn run_with(
    config: Config,
    history: Option<Store>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) {
    run_with_metrics(config, history, listener, None, shutdown).await
}

/// Like [`run_with`], answering `GET /metrics` on `metrics` if given (README, "Metrics")
/// until the broker has shut down.
pub async fn run_with_metrics(
    config: Config,
    history: Option<Store>,
    listener: TcpListener,
    metrics: Option<TcpListener>,
    shutdown: impl Future<Output = ()>,
) {
    let broker = Broker::start_with(config, history);
    let endpoint = metrics.map(|listener| {
        let registry = netkit::metrics::Registry::new();
        registry.register(broker.metrics());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = netkit::metrics::http::serve(listener, registry, async move {
            let _ = stopped.await;
        });
        (stop, tokio::spawn(serving))
    });
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, _)) => broker.serve_tcp(socket),
                Err(e) => {
                    // Usually EMFILE: back off instead of spinning.
                    tracing::error!("accept failed: {e}");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            _ = &mut shutdown => break,
        }
    }
    tracing::info!("shutting down: closing server links");
    drop(listener);
    broker.shutdown().await;
    if let Some((stop, task)) = endpoint {
        let _ = stop.send(());
        let _ = task.await;
    }
}

/// A running broker that is handed already-connected streams (tests: `tokio::io::duplex`).
///
/// Dropping it without [`shutdown`](Broker::shutdown) stops routing and tells every link to
/// close, without waiting for them.
#[derive(Debug)]
pub struct Broker {
    links: Shared,
    router: JoinHandle<()>,
    tasks: TaskTracker,
    next_id: AtomicU32,
    metrics: Arc<BrokerMetrics>,
}

impl Broker {
    /// Starts the routing task (needs a tokio runtime), without a history.
    pub fn start(config: Config) -> Broker {
        Broker::start_with(config, None)
    }

    /// Starts the routing task with `history`, the log it keeps (PROTOCOL.md §10).
    pub fn start_with(config: Config, history: Option<Store>) -> Broker {
        let (inbox, inbox_rx) = mpsc::channel(INBOX_MESSAGES);
        let metrics = Arc::new(BrokerMetrics::default());
        Broker {
            links: Shared::new(&config, inbox, metrics.clone()),
            router: tokio::spawn(router::run(inbox_rx, history, metrics.clone())),
            tasks: TaskTracker::new(),
            next_id: AtomicU32::new(1),
            metrics,
        }
    }

    /// What this broker counts (README, "Metrics"), to register with an endpoint.
    pub fn metrics(&self) -> Arc<BrokerMetrics> {
        self.metrics.clone()
    }

    /// Serves one server link over any stream, until it closes, fails, goes silent, or the
    /// broker shuts down.
    pub fn serve_link<S>(&self, stream: S)
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let Some(admitted) = self.links.admit() else {
            // Dropping the stream closes it: nothing is read from it, nothing is held.
            return over_limit("a stream");
        };
        let id = self.next_id();
        let (rd, wr) = tokio::io::split(stream);
        let peer = format!("stream {id}");
        self.tasks
            .spawn(link::serve(rd, wr, peer, id, self.links.clone(), admitted));
    }

    /// Like [`serve_link`](Broker::serve_link) for a TCP connection: with `TCP_NODELAY`, the
    /// peer's address in the logs, and the socket's own halves (no lock between reader and
    /// writer, as `tokio::io::split` needs for other streams).
    pub fn serve_tcp(&self, socket: TcpStream) {
        let peer = socket
            .peer_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let Some(admitted) = self.links.admit() else {
            return over_limit(&peer);
        };
        let id = self.next_id();
        let _ = socket.set_nodelay(true);
        let (rd, wr) = socket.into_split();
        self.tasks
            .spawn(link::serve(rd, wr, peer, id, self.links.clone(), admitted));
    }

    fn next_id(&self) -> ServerId {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Closes every link and stops routing; waits (bounded) for the link tasks.
    ///
    /// Routing stops first: the links closing one by one must not be announced to the
    /// servers still attached as their users leaving. The servers keep their clients and
    /// reconnect (what the clients see meanwhile: PROTOCOL.md §6.4).
    pub async fn shutdown(mut self) {
        self.router.abort();
        // Once it has returned, nothing more is routed (on any runtime, not only when the
        // router shares this thread).
        let _ = (&mut self.router).await;
        self.links.shutdown.cancel();
        self.tasks.close();
        if tokio::time::timeout(SHUTDOWN_TIMEOUT, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("some links did not close in time");
        }
    }
}

/// A connection closed at once: as many links as the limits allow are open or unknown.
fn over_limit(peer: &str) {
    tracing::debug!(%peer, "link closed at once: over the link limits");
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.router.abort();
        self.links.shutdown.cancel();
    }
}
