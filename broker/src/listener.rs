//! Accepting server links, and the graceful shutdown of the whole broker.

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::link::{self, LinkConfig};
use crate::router;

/// Serves links accepted on `listener` until `shutdown` resolves, then closes every link
/// and waits (bounded) for them to finish.
pub async fn run(listener: TcpListener, cfg: LinkConfig, shutdown: impl Future<Output = ()>) {
    let (inbox_tx, inbox_rx) = mpsc::channel(1024);
    let router = tokio::spawn(router::run(inbox_rx));
    let stop = CancellationToken::new();
    let tracker = TaskTracker::new();
    let next_id = AtomicU32::new(1);

    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, _)) => {
                    let id = next_id.fetch_add(1, Ordering::Relaxed);
                    tracker.spawn(link::serve(socket, id, inbox_tx.clone(), cfg.clone(), stop.clone()));
                }
                Err(e) => {
                    // Usually EMFILE: back off instead of spinning.
                    tracing::error!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = &mut shutdown => break,
        }
    }
    tracing::info!("shutting down: closing server links");
    drop(listener);
    // Stop routing first: the links closing one by one must not be announced to the
    // servers still attached as their users leaving.
    router.abort();
    stop.cancel();
    tracker.close();
    if tokio::time::timeout(Duration::from_secs(5), tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("some links did not close in time");
    }
    drop(inbox_tx);
}
