//! Accepting clients on both ports, and the graceful shutdown of the server.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::session::Ctx;
use crate::{json_port, line_port};

/// Which protocol a listener speaks.
#[derive(Debug, Clone, Copy)]
pub enum Port {
    /// The JSON port.
    Json,
    /// The line port.
    Line,
}

/// Accepts connections on every listener until `shutdown` resolves; then tells every
/// client, lets the sessions leave the chat, and waits (bounded) for them to finish.
pub async fn run(
    listeners: Vec<(TcpListener, Port)>,
    ctx: Ctx,
    shutdown: impl Future<Output = ()>,
) {
    let tracker = TaskTracker::new();
    let next_conn = Arc::new(AtomicU64::new(1));
    let stop_accepting = CancellationToken::new();
    for (listener, port) in listeners {
        let (ctx, tracker2, next_conn, stop) = (
            ctx.clone(),
            tracker.clone(),
            next_conn.clone(),
            stop_accepting.clone(),
        );
        tracker.spawn(async move {
            loop {
                let accepted = tokio::select! {
                    a = listener.accept() => a,
                    _ = stop.cancelled() => return,
                };
                match accepted {
                    Ok((socket, peer)) => {
                        let conn = next_conn.fetch_add(1, Ordering::Relaxed);
                        let ctx = ctx.clone();
                        match port {
                            Port::Json => {
                                tracker2.spawn(json_port::handle(socket, peer, conn, ctx))
                            }
                            Port::Line => {
                                tracker2.spawn(line_port::handle(socket, peer, conn, ctx))
                            }
                        };
                    }
                    Err(e) => {
                        // Usually EMFILE: back off instead of spinning on the error.
                        tracing::error!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
    }
    shutdown.await;
    tracing::info!(
        clients = ctx.hub.local_clients(),
        "shutting down: telling clients and closing connections"
    );
    stop_accepting.cancel();
    ctx.shutdown.cancel();
    tracker.close();
    if tokio::time::timeout(Duration::from_secs(10), tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("some connections did not close in time");
    }
}
