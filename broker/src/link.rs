//! One server's link: handshake, then reading messages into the router's inbox while a
//! writer task drains the server's outbound queue.

use std::sync::Arc;
use std::time::Duration;

use chat_common::link::{self, LINK_VERSION, LinkDecoder, Rejection, ServerId, ToBroker, ToServer};
use futures_util::StreamExt;
use netkit::queue;
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

use crate::router::Input;

/// Settings shared by every link.
#[derive(Debug, Clone)]
pub struct LinkConfig {
    /// Largest message accepted.
    pub max_frame: usize,
    /// Outbound queue bound per server, in bytes.
    pub queue_bytes: usize,
    /// A link silent for this long is dead (three heartbeats).
    pub idle_timeout: Duration,
    /// Bytes of messages read from all links and not yet handled by the router.
    pub inbox_budget: Arc<Semaphore>,
    /// The shared secret a server must present in its `Hello`.
    pub token: Arc<str>,
}

/// Largest share of the inbox budget one message takes.
pub const MAX_WEIGHT: u32 = 16 * 1024 * 1024;

/// Roughly the memory a message holds: its text plus the envelope.
fn weight(msg: &ToBroker) -> u32 {
    let text = match msg {
        ToBroker::Public { msg, .. } | ToBroker::Private { msg, .. } => msg.len(),
        ToBroker::Register { name, ip, .. } => name.len() + ip.len(),
        _ => 0,
    };
    u32::try_from(text + 64).unwrap_or(u32::MAX).min(MAX_WEIGHT)
}

/// Serves one server link until it closes, fails, goes silent, or the broker shuts down.
pub async fn serve(
    socket: TcpStream,
    id: ServerId,
    inbox: mpsc::Sender<Input>,
    cfg: LinkConfig,
    shutdown: CancellationToken,
) {
    let peer = socket
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let _ = socket.set_nodelay(true);
    let (rd, wr) = socket.into_split();
    let mut frames = FramedRead::new(rd, LinkDecoder::<ToBroker>::new(cfg.max_frame));
    let (tx, rx) = queue::channel(cfg.queue_bytes);
    let writer = tokio::spawn(netkit::writer::run(rx, wr));

    let label = match tokio::time::timeout(cfg.idle_timeout, frames.next()).await {
        Ok(Some(Ok(ToBroker::Hello {
            label,
            version,
            token,
        }))) if version == LINK_VERSION => {
            if !netkit::token::matches(&cfg.token, token.as_deref().unwrap_or_default()) {
                let reason = Rejection::Token {
                    given: token.is_some(),
                };
                return reject(tx, writer, &format!("{peer} ('{label}')"), reason).await;
            }
            label
        }
        Ok(Some(Ok(ToBroker::Hello { version, .. }))) => {
            let reason = Rejection::Version {
                got: version,
                expected: LINK_VERSION,
            };
            return reject(tx, writer, &peer, reason).await;
        }
        Ok(Some(Ok(other))) => {
            tracing::debug!(%peer, "first message {other:?}");
            return reject(tx, writer, &peer, Rejection::ExpectedHello).await;
        }
        Ok(Some(Err(e))) => {
            tracing::debug!(%peer, "undecodable first message: {e}");
            return reject(tx, writer, &peer, Rejection::Malformed).await;
        }
        Ok(None) => return,
        Err(_) => return reject(tx, writer, &peer, Rejection::HelloTimeout).await,
    };
    let label = format!("{label} ({peer})");
    if inbox
        .send(Input::Attach {
            id,
            label: label.clone(),
            queue: tx.clone(),
        })
        .await
        .is_err()
    {
        return;
    }

    loop {
        tokio::select! {
            next = tokio::time::timeout(cfg.idle_timeout, frames.next()) => match next {
                Ok(Some(Ok(msg))) => {
                    // Waiting for budget holds this server back (TCP does the rest) instead
                    // of letting the inbox grow.
                    let Ok(permit) = cfg.inbox_budget.clone().acquire_many_owned(weight(&msg)).await else {
                        break;
                    };
                    if inbox.send(Input::Message { id, msg, permit }).await.is_err() {
                        break;
                    }
                }
                Ok(Some(Err(e))) => {
                    tracing::warn!(server = %label, "closing link: {e}");
                    break;
                }
                Ok(None) => {
                    tracing::info!(server = %label, "link closed by the server");
                    break;
                }
                Err(_) => {
                    tracing::warn!(server = %label, "closing link: no heartbeat for {:?}", cfg.idle_timeout);
                    break;
                }
            },
            _ = tx.closed() => break,
            _ = shutdown.cancelled() => break,
        }
    }
    let _ = inbox.send(Input::Detach { id }).await;
    drop(tx);
    let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
}

async fn reject(
    tx: queue::QueueTx,
    writer: tokio::task::JoinHandle<netkit::writer::WriterExit>,
    peer: &str,
    reason: Rejection,
) {
    tracing::warn!(%peer, "refusing link: {reason}");
    let _ = tx.push(link::encode(&ToServer::Rejected { reason }));
    drop(tx);
    let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
}
