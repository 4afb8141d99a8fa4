//! The server's link to the broker: connect, handshake, apply the broker's events to the
//! hub, keep the link alive with heartbeats, and reconnect with backoff when it drops
//! (design §4: clients stay connected meanwhile and are told the chat is degraded).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use chat_common::link::{self, LINK_VERSION, LinkDecoder, ToBroker, ToServer};
use futures_util::StreamExt;
use tokio::io::AsyncWrite;
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

use crate::hub::Hub;

/// Link settings.
#[derive(Debug, Clone)]
pub struct LinkSettings {
    /// Broker address (`host:port`).
    pub broker: String,
    /// Label sent in `Hello`, for the broker's logs.
    pub label: String,
    /// Where the link token comes from (read at every attempt).
    pub token: netkit::token::TokenSource,
    /// Bytes queued towards the broker before senders wait.
    pub queue_bytes: usize,
    /// Heartbeat interval; three silent intervals mean the broker is gone.
    pub heartbeat: Duration,
    /// Largest link message accepted.
    pub max_frame: usize,
}

/// The sending side of the broker link, as sessions use it.
///
/// The queue is bounded in bytes: a sender takes permits for its message's size from a
/// semaphore and the writer returns them once the bytes are on the socket. A sender that
/// finds the budget spent waits, which holds back the client it is serving (and, through
/// TCP, that client's sender) instead of growing memory.
#[derive(Clone)]
pub struct LinkTx {
    tx: mpsc::UnboundedSender<Queued>,
    budget: Arc<Semaphore>,
    max_permits: u32,
}

/// A message waiting for the link writer, holding its share of the byte budget.
pub struct Queued {
    bytes: Bytes,
    _permit: OwnedSemaphorePermit,
}

impl LinkTx {
    /// A link queue of at most `bytes` bytes (a larger single message still passes, alone).
    pub fn channel(bytes: usize) -> (LinkTx, mpsc::UnboundedReceiver<Queued>) {
        let max_permits = u32::try_from(bytes.clamp(1, Semaphore::MAX_PERMITS)).unwrap_or(u32::MAX);
        let (tx, rx) = mpsc::unbounded_channel();
        let budget = Arc::new(Semaphore::new(max_permits as usize));
        (
            LinkTx {
                tx,
                budget,
                max_permits,
            },
            rx,
        )
    }

    fn permits(&self, bytes: &Bytes) -> u32 {
        u32::try_from(bytes.len())
            .unwrap_or(u32::MAX)
            .clamp(1, self.max_permits)
    }

    /// Queues a message for the broker, waiting while the link is congested (that wait is
    /// the backpressure on the client that sent it). Fails if the link is gone.
    pub async fn send(&self, msg: &ToBroker) -> Result<(), ()> {
        let bytes = link::encode(msg);
        let n = self.permits(&bytes);
        let permit = self
            .budget
            .clone()
            .acquire_many_owned(n)
            .await
            .map_err(|_| ())?;
        self.tx
            .send(Queued {
                bytes,
                _permit: permit,
            })
            .map_err(|_| ())
    }

    /// Queues a message only if the budget allows it now (heartbeats, and replies from the
    /// link reader, which must never wait).
    pub fn try_send(&self, msg: &ToBroker) -> bool {
        let bytes = link::encode(msg);
        let n = self.permits(&bytes);
        match self.budget.clone().try_acquire_many_owned(n) {
            Ok(permit) => self
                .tx
                .send(Queued {
                    bytes,
                    _permit: permit,
                })
                .is_ok(),
            Err(_) => false,
        }
    }
}

/// How often joins and leaves that were only counted are told (see [`Hub::presence_tick`]).
const PRESENCE_TICK: Duration = Duration::from_secs(1);

/// Events applied before an acknowledgement goes out even in the middle of a read batch.
const ACK_EVERY: u64 = 64;

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Keeps the link up until `stop` is cancelled. `up` turns true the first time the link is
/// established, so the listeners can start accepting.
pub async fn run(
    hub: Arc<Hub>,
    cfg: LinkSettings,
    stop: CancellationToken,
    up: watch::Sender<bool>,
) {
    let mut backoff = BACKOFF_MIN;
    loop {
        let result = tokio::select! {
            biased;
            r = connect_and_serve(&hub, &cfg, &up, &stop) => r,
            _ = stop.cancelled() => Ok(true),
        };
        hub.link_down();
        if stop.is_cancelled() {
            return;
        }
        match result {
            Ok(_) => {
                tracing::warn!("broker link closed; reconnecting");
                backoff = BACKOFF_MIN;
            }
            Err(e) => tracing::warn!("broker link: {e:#}; retrying in {backoff:?}"),
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.cancelled() => return,
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// One link lifetime. `Ok` once the link had been established and then closed.
async fn connect_and_serve(
    hub: &Arc<Hub>,
    cfg: &LinkSettings,
    up: &watch::Sender<bool>,
    stop: &CancellationToken,
) -> anyhow::Result<bool> {
    let token = cfg.token.read().context("reading the link token")?;
    let socket = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(&cfg.broker))
        .await
        .context("connecting to the broker timed out")?
        .with_context(|| format!("connecting to the broker at {}", cfg.broker))?;
    socket.set_nodelay(true)?;
    let (rd, wr) = socket.into_split();
    let mut frames = FramedRead::new(rd, LinkDecoder::<ToServer>::new(cfg.max_frame));
    let (tx, rx) = LinkTx::channel(cfg.queue_bytes);
    let writer = tokio::spawn(write_loop(rx, wr));
    // Whatever happens below, the writer must not outlive this link.
    let mut writer = AbortOnDrop(writer);

    let hello = ToBroker::Hello {
        label: cfg.label.clone(),
        version: LINK_VERSION,
        token: Some(token),
    };
    tx.send(&hello).await.ok().context("link writer stopped")?;
    let idle = cfg.heartbeat * 3;
    let (server_id, users) = match tokio::time::timeout(idle, frames.next()).await {
        Ok(Some(Ok(ToServer::Hello { server_id, users }))) => (server_id, users),
        Ok(Some(Ok(ToServer::Rejected { reason }))) => {
            bail!("the broker refused the link: {reason}")
        }
        Ok(Some(Ok(other))) => bail!("unexpected first message from the broker: {other:?}"),
        Ok(Some(Err(e))) => return Err(e).context("reading the broker's hello"),
        Ok(None) => bail!("the broker closed the link during the handshake"),
        Err(_) => bail!("no hello from the broker within {idle:?}"),
    };
    let rejoin = hub.link_up(server_id, users, tx.clone());
    tracing::info!(
        server_id,
        rejoining = rejoin.len(),
        "connected to the broker at {}",
        cfg.broker
    );
    up.send_replace(true);
    if !rejoin.is_empty() {
        hub.notify_all("The chat service is back.");
    }
    for msg in rejoin {
        if tx.send(&msg).await.is_err() {
            return Ok(true);
        }
    }

    // The highest event id applied, and the highest acknowledged to the broker.
    let (mut applied, mut acked) = (0u64, 0u64);
    let mut presence = tokio::time::interval(PRESENCE_TICK);
    let mut beat = tokio::time::interval(cfg.heartbeat);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            next = tokio::time::timeout(idle, frames.next()) => match next {
                Ok(Some(Ok(event))) => {
                    applied = applied.max(event.id().unwrap_or(0));
                    if let Some(reply) = hub.apply(event) {
                        // Never wait here: the link reader must keep draining the broker.
                        if !tx.try_send(&reply) {
                            tracing::warn!("broker link congested; dropping {reply:?}");
                        }
                    }
                    // Acknowledge what was applied once per read batch (or every
                    // ACK_EVERY events of a long one): the broker confirms messages to
                    // their senders when every server they went to has them.
                    if applied > acked
                        && (frames.read_buffer().is_empty() || applied - acked >= ACK_EVERY)
                        && tx.try_send(&ToBroker::Ack { upto: applied })
                    {
                        acked = applied;
                    }
                }
                Ok(Some(Err(e))) => return Err(e).context("reading from the broker"),
                Ok(None) => return Ok(true),
                Err(_) => bail!("no heartbeat from the broker for {idle:?}"),
            },
            _ = beat.tick() => {
                // Skipped when the link is congested: the traffic itself proves liveness.
                let _ = tx.try_send(&ToBroker::Ping);
            }
            _ = presence.tick() => hub.presence_tick(),
            _ = stop.cancelled() => {
                // Shutting down: let the writer flush what the sessions queued on their
                // way out (their Unregister messages), then close.
                hub.detach_link();
                drop(tx);
                let _ = tokio::time::timeout(Duration::from_secs(2), &mut writer.0).await;
                return Ok(true);
            }
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Writes queued link messages, several per system call when they pile up.
async fn write_loop<W: AsyncWrite + Unpin>(mut rx: mpsc::UnboundedReceiver<Queued>, mut sink: W) {
    let mut queued = Vec::with_capacity(64);
    let mut batch: Vec<Bytes> = Vec::with_capacity(64);
    let mut buf = Vec::new();
    while rx.recv_many(&mut queued, 256).await > 0 {
        batch.extend(queued.iter().map(|q| q.bytes.clone()));
        if let Err(e) = netkit::writer::write_batch(&mut sink, &batch, &mut buf).await {
            tracing::warn!("writing to the broker failed: {e}");
            return;
        }
        batch.clear();
        // Dropping the messages returns their bytes to the budget.
        queued.clear();
    }
}
