//! One server's link: handshake, then reading messages into the router's inbox while a
//! writer task drains the server's outbound queue (docs/ARCHITECTURE.md, "The broker link").
//!
//! A link is served over any pair of stream halves: the two halves of a TCP socket, which
//! need no lock between them, or those `tokio::io::split` makes of any other stream.

use std::sync::Arc;
use std::time::Duration;

use chat_common::link::{
    self, LINK_VERSION, LinkDecoder, LinkError, Rejection, ServerId, ToBroker, ToServer,
};
use futures_util::StreamExt;
use netkit::metrics::counted::CountedRead;
use netkit::queue;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

use crate::Config;
use crate::config::{MAX_HELLO_TIMEOUT, PRE_AUTH_MAX_FRAME};
use crate::metrics::{BrokerMetrics, LinkDrop};
use crate::router::Input;

/// What every link of a broker shares: its settings, the router's inbox and the signal to
/// close. Cloned for each link (a few reference counts).
#[derive(Clone)]
pub(crate) struct Shared {
    /// Largest message accepted.
    pub max_frame: usize,
    /// Outbound queue bound per server, in bytes.
    pub queue_bytes: usize,
    /// A link silent for this long is dead (three heartbeats).
    pub idle_timeout: Duration,
    /// The shared secret a server must present in its `Hello`.
    pub token: Arc<str>,
    /// The router's inbox.
    pub inbox: mpsc::Sender<Input>,
    /// Bytes of messages read from all links and not yet handled by the router.
    pub inbox_budget: Arc<Semaphore>,
    /// Cancelled when the broker shuts down: every link closes.
    pub shutdown: CancellationToken,
    /// Places for links that have not shown the token yet.
    pub pre_auth: Arc<Semaphore>,
    /// Places for links in all.
    pub places: Arc<Semaphore>,
    /// The pause before a wrong token is rejected.
    pub reject_delay: Duration,
    /// What the links count (bytes, drops, links up) for the metrics.
    pub metrics: Arc<BrokerMetrics>,
}

impl Shared {
    /// The links' share of `config`, feeding `inbox`, counting into `metrics`.
    pub fn new(config: &Config, inbox: mpsc::Sender<Input>, metrics: Arc<BrokerMetrics>) -> Shared {
        Shared {
            max_frame: config.max_link_frame,
            queue_bytes: config.link_queue_bytes,
            idle_timeout: config.idle_timeout(),
            token: config.token.as_str().into(),
            inbox,
            inbox_budget: Arc::new(Semaphore::new(config.inbox_bytes.max(MAX_WEIGHT as usize))),
            shutdown: CancellationToken::new(),
            pre_auth: Arc::new(Semaphore::new(config.pre_auth_limit.max(1))),
            places: Arc::new(Semaphore::new(config.max_links.max(1))),
            reject_delay: config.reject_delay,
            metrics,
        }
    }

    /// A place for a new link, or `None` when there are as many as the limits allow (the
    /// caller closes the connection at once, before reading anything).
    pub fn admit(&self) -> Option<Admitted> {
        let place = self.places.clone().try_acquire_owned().ok()?;
        let pre_auth = self.pre_auth.clone().try_acquire_owned().ok()?;
        Some(Admitted {
            _place: place,
            pre_auth: Some(pre_auth),
        })
    }
}

/// A link's places among the limits; the pre-auth one is given back once it is known.
pub(crate) struct Admitted {
    _place: OwnedSemaphorePermit,
    pre_auth: Option<OwnedSemaphorePermit>,
}

/// How a peer's own text (its label) appears in the logs: at most 64 characters, control
/// characters escaped, so it can neither flood the log nor forge lines in it.
pub(crate) fn shown(text: &str) -> String {
    const SHOWN_CHARS: usize = 64;
    let mut out: String = text
        .chars()
        .take(SHOWN_CHARS)
        .flat_map(char::escape_debug)
        .collect();
    if text.chars().nth(SHOWN_CHARS).is_some() {
        out.push('…');
    }
    out
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the token.
        f.debug_struct("Shared")
            .field("max_frame", &self.max_frame)
            .field("queue_bytes", &self.queue_bytes)
            .field("idle_timeout", &self.idle_timeout)
            .field("inbox_budget", &self.inbox_budget.available_permits())
            .field("closing", &self.shutdown.is_cancelled())
            .finish_non_exhaustive()
    }
}

/// Largest share of the inbox budget one message takes.
pub(crate) const MAX_WEIGHT: u32 = 16 * 1024 * 1024;

/// Roughly the memory a message holds: its text plus the envelope.
fn weight(msg: &ToBroker) -> u32 {
    let text = match msg {
        ToBroker::Public { msg, .. } | ToBroker::Private { msg, .. } => msg.len(),
        ToBroker::Register { name, ip, .. } => name.len() + ip.len(),
        _ => 0,
    };
    u32::try_from(text + 64).unwrap_or(u32::MAX).min(MAX_WEIGHT)
}

/// Serves one server link over `rd` and `wr` (named `peer` in logs) until it closes, fails,
/// goes silent, or the broker shuts down.
pub(crate) async fn serve<R, W>(
    rd: R,
    wr: W,
    peer: String,
    id: ServerId,
    links: Shared,
    mut admitted: Admitted,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let mut idle_timeout = links.idle_timeout;
    let rd = CountedRead::new(rd, links.metrics.link_bytes_in.clone());
    // Until the peer has shown the token, nothing bigger than a Hello is read from it.
    let mut frames = FramedRead::new(rd, LinkDecoder::<ToBroker>::new(PRE_AUTH_MAX_FRAME));
    // Counted in the links' pool: what they wrote, and what waits in them now.
    let pool = Some(links.metrics.link_queues.clone());
    let (tx, rx) = queue::channel_in(links.queue_bytes, pool);
    let writer = tokio::spawn(netkit::writer::run(rx, wr));

    let first = tokio::select! {
        first = tokio::time::timeout(idle_timeout.min(MAX_HELLO_TIMEOUT), frames.next()) => first,
        _ = links.shutdown.cancelled() => return,
    };
    let label = match first {
        Ok(Some(Ok(ToBroker::Hello {
            label,
            version,
            token,
            heartbeat_ms,
        }))) if version == LINK_VERSION => {
            if !netkit::token::matches(&links.token, token.as_deref().unwrap_or_default()) {
                let reason = Rejection::Token {
                    given: token.is_some(),
                };
                // Guessing costs time: the place stays taken while the guesser waits.
                tokio::select! {
                    _ = tokio::time::sleep(links.reject_delay) => {}
                    _ = links.shutdown.cancelled() => return,
                }
                let who = format!("{peer} (\"{}\")", shown(&label));
                return reject(&links, tx, writer, &who, reason).await;
            }
            idle_timeout = link_timeout(idle_timeout, heartbeat_ms);
            label
        }
        Ok(Some(Ok(ToBroker::Hello { version, .. }))) => {
            let reason = Rejection::Version {
                got: version,
                expected: LINK_VERSION,
            };
            return reject(&links, tx, writer, &peer, reason).await;
        }
        Ok(Some(Ok(other))) => {
            tracing::debug!(%peer, "first message {}", shown(&format!("{other:?}")));
            return reject(&links, tx, writer, &peer, Rejection::ExpectedHello).await;
        }
        Ok(Some(Err(LinkError::TooLarge { limit }))) => {
            return reject(&links, tx, writer, &peer, Rejection::TooLarge { limit }).await;
        }
        Ok(Some(Err(e))) => {
            tracing::debug!(%peer, "undecodable first message: {e}");
            return reject(&links, tx, writer, &peer, Rejection::Malformed).await;
        }
        Ok(None) => return,
        Err(_) => return reject(&links, tx, writer, &peer, Rejection::HelloTimeout).await,
    };
    // Known now: the rest of its messages may be as large as any, and its place among the
    // unknown ones is free for the next.
    frames.decoder_mut().set_max_frame(links.max_frame);
    admitted.pre_auth = None;
    let label = format!("{} ({peer})", shown(&label));
    if links
        .inbox
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
    links.metrics.links_up.inc();

    // Why the link ends; `None` while the writer's end decides (kicked or failed).
    let mut why = Some(LinkDrop::Shutdown);
    loop {
        tokio::select! {
            next = tokio::time::timeout(idle_timeout, frames.next()) => match next {
                Ok(Some(Ok(msg))) => {
                    // Waiting for budget holds this server back (TCP does the rest) instead
                    // of letting the inbox grow.
                    let Ok(permit) = links.inbox_budget.clone().acquire_many_owned(weight(&msg)).await else {
                        break;
                    };
                    if links.inbox.send(Input::Message { id, msg, permit }).await.is_err() {
                        break;
                    }
                }
                Ok(Some(Err(e))) => {
                    tracing::warn!(server = %label, "closing link: {e}");
                    why = Some(LinkDrop::ReadError);
                    break;
                }
                Ok(None) => {
                    tracing::info!(server = %label, "link closed by the server");
                    why = Some(LinkDrop::Closed);
                    break;
                }
                Err(_) => {
                    tracing::warn!(server = %label, "closing link: no heartbeat for {idle_timeout:?}");
                    why = Some(LinkDrop::Heartbeat);
                    break;
                }
            },
            _ = tx.closed() => {
                why = None;
                break;
            }
            _ = links.shutdown.cancelled() => break,
        }
    }
    let _ = links.inbox.send(Input::Detach { id }).await;
    drop(tx);
    let ended = tokio::time::timeout(Duration::from_secs(2), writer).await;
    // The queue closed under the reader: the router kicked it (too slow), or the writer
    // failed, which its own end tells.
    let why = why.unwrap_or(match ended {
        Ok(Ok(netkit::writer::WriterExit::Io(_))) => LinkDrop::WriteError,
        _ => LinkDrop::QueueExceeded,
    });
    // Counted before the gauge falls, so a scrape that sees the link gone also sees why.
    links.metrics.link_dropped(why);
    links.metrics.links_up.dec();
}

/// How long a link may stay silent: three of the server's declared heartbeats when that is
/// longer than the broker's own timeout (`own`), at most [`MAX_LINK_TIMEOUT`]
/// (RELIABILITY.md, "A server frozen"). A broker set to expect beats every 200 ms would otherwise drop every server left at
/// the default 500 ms whenever one beat came late.
fn link_timeout(own: Duration, declared_ms: Option<u64>) -> Duration {
    let declared = Duration::from_millis(declared_ms.unwrap_or(0))
        .saturating_mul(crate::config::HEARTBEATS_BEFORE_TIMEOUT);
    own.max(declared.min(MAX_LINK_TIMEOUT))
}

/// The longest silence a server's declared heartbeat can buy its link: a dead server's
/// users are announced gone within this, whatever it said.
const MAX_LINK_TIMEOUT: Duration = Duration::from_secs(60);

async fn reject(
    links: &Shared,
    tx: queue::QueueTx,
    writer: tokio::task::JoinHandle<netkit::writer::WriterExit>,
    peer: &str,
    reason: Rejection,
) {
    tracing::warn!(%peer, "refusing link: {reason}");
    links.metrics.link_dropped(LinkDrop::Handshake);
    let _ = tx.push(link::encode(&ToServer::Rejected { reason }));
    drop(tx);
    let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
}

#[cfg(test)]
mod tests {
    use super::shown;

    #[test]
    fn a_link_gets_three_of_the_longer_heartbeat_within_a_bound() {
        use super::{MAX_LINK_TIMEOUT, link_timeout};
        use std::time::Duration;
        let own = Duration::from_millis(600);
        assert_eq!(
            link_timeout(own, None),
            own,
            "an old server: the broker's own"
        );
        assert_eq!(
            link_timeout(own, Some(100)),
            own,
            "a faster server: the broker's"
        );
        assert_eq!(link_timeout(own, Some(500)), Duration::from_millis(1500));
        assert_eq!(link_timeout(own, Some(u64::MAX)), MAX_LINK_TIMEOUT);
    }

    #[test]
    fn a_peers_label_is_shown_short_and_on_one_line() {
        assert_eq!(shown("server 1.2.3.4:65432"), "server 1.2.3.4:65432");
        assert_eq!(
            shown("x\n2026-12-01T00:00:00Z  INFO forged"),
            "x\\n2026-12-01T00:00:00Z  INFO forged",
            "a newline cannot start a line of its own"
        );
        assert_eq!(shown("\u{1b}[2J"), "\\u{1b}[2J");
        let long = "a".repeat(16 * 1024 * 1024);
        assert_eq!(shown(&long), format!("{}…", "a".repeat(64)));
    }
}
