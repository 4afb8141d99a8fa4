//! The link to the broker: connect, handshake, apply the broker's messages to the hub,
//! keep the link alive with heartbeats, and reconnect with backoff when it drops
//! (PROTOCOL.md §6.4: clients stay connected meanwhile and are told the chat is degraded).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use chat_common::link::{LINK_VERSION, LinkDecoder, ToBroker, ToServer};
use futures_util::StreamExt;
use tokio::sync::watch;
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

use crate::backend::broker::dial::Dial;
use crate::backend::broker::link_tx::{LinkTx, write_loop};
use crate::backend::broker::translate;
use crate::core::event::{Event, FollowUp};
use crate::core::hub::Hub;

/// How often joins and leaves that were only counted are told (see
/// [`Hub::presence_tick`]).
const PRESENCE_TICK: Duration = Duration::from_secs(1);

/// Events applied before an acknowledgement goes out even in the middle of a read batch.
const ACK_EVERY: u64 = 64;

/// The first pause before reconnecting (it doubles up to [`BACKOFF_MAX`]).
pub const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// The longest pause before reconnecting.
pub const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Link settings.
#[derive(Debug, Clone)]
pub struct LinkSettings {
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

/// The link currently up, shared with the `BrokerBackend` handles.
pub type Current = Arc<Mutex<Option<LinkTx>>>;

fn set_current(current: &Current, link: Option<LinkTx>) {
    *current.lock().unwrap_or_else(|p| p.into_inner()) = link;
}

/// Keeps the link up until `stop` is cancelled. `up` turns true the first time the link
/// is established, so the listeners can start accepting.
pub async fn run<D: Dial>(
    hub: Arc<Hub>,
    dial: D,
    cfg: LinkSettings,
    current: Current,
    stop: CancellationToken,
    up: watch::Sender<bool>,
) {
    let mut backoff = BACKOFF_MIN;
    loop {
        let result = tokio::select! {
            biased;
            r = connect_and_serve(&hub, &dial, &cfg, &current, &up, &stop) => r,
            _ = stop.cancelled() => Ok(()),
        };
        set_current(&current, None);
        hub.backend_metrics().set_up(false);
        hub.apply(Event::Down);
        if stop.is_cancelled() {
            return;
        }
        match result {
            Ok(()) => {
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
async fn connect_and_serve<D: Dial>(
    hub: &Arc<Hub>,
    dial: &D,
    cfg: &LinkSettings,
    current: &Current,
    up: &watch::Sender<bool>,
    stop: &CancellationToken,
) -> anyhow::Result<()> {
    let token = cfg.token.read().context("reading the link token")?;
    let (rd, wr) = tokio::time::timeout(Duration::from_secs(5), dial.dial())
        .await
        .context("connecting to the broker timed out")?
        .with_context(|| format!("connecting to the broker at {}", dial.describe()))?;
    let mut frames = FramedRead::new(rd, LinkDecoder::<ToServer>::new(cfg.max_frame));
    let (tx, rx) = LinkTx::channel(cfg.queue_bytes);
    let writer = tokio::spawn(write_loop(rx, wr));
    // Whatever happens below, the writer must not outlive this link.
    let mut writer = AbortOnDrop(writer);

    let hello = ToBroker::Hello {
        label: cfg.label.clone(),
        version: LINK_VERSION,
        token: Some(token),
        heartbeat_ms: Some(u64::try_from(cfg.heartbeat.as_millis()).unwrap_or(u64::MAX)),
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
    let again = hub.apply(Event::Up { users });
    let rejoining = again.len();
    tracing::info!(
        server_id,
        rejoining,
        "connected to the broker at {}",
        dial.describe()
    );
    // Our clients' registrations go first; only then may sessions use the link and are
    // clients told the chat is back. Otherwise a client that speaks as soon as it hears
    // "back" would reach the broker before its own registration and be refused as not
    // logged in (a race seen in `lifecycle.rs: broker_killed_and_restarted_...`).
    for follow in again {
        if tx.send(&follow_up(follow)).await.is_err() {
            return Ok(());
        }
    }
    set_current(current, Some(tx.clone()));
    hub.backend_metrics().set_up(true);
    up.send_replace(true);
    if rejoining > 0 {
        hub.announce_back();
    }

    // The highest event id applied, and the highest acknowledged to the broker.
    let (mut applied, mut acked) = (0u64, 0u64);
    let mut presence = tokio::time::interval(PRESENCE_TICK);
    let mut beat = tokio::time::interval(cfg.heartbeat);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // One deadline for the whole link, pushed back only by what the broker sends: our own
    // heartbeats and presence ticks must not count as the broker being alive.
    let silence = tokio::time::sleep(idle);
    tokio::pin!(silence);
    loop {
        tokio::select! {
            next = frames.next() => match next {
                Some(Ok(msg)) => {
                    silence.as_mut().reset(tokio::time::Instant::now() + idle);
                    applied = applied.max(msg.id().unwrap_or(0));
                    if let ToServer::Rejected { reason } = &msg {
                        tracing::error!("the broker dropped this server: {reason}");
                    }
                    if let Some(event) = translate::event(msg, server_id) {
                        for follow in hub.apply(event) {
                            // Never wait here: the link reader must keep draining the broker.
                            let reply = follow_up(follow);
                            if !tx.try_send(&reply) {
                                tracing::warn!("broker link congested; dropping {reply:?}");
                            }
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
                Some(Err(e)) => return Err(e).context("reading from the broker"),
                None => return Ok(()),
            },
            () = &mut silence => bail!("nothing from the broker for {idle:?}"),
            _ = beat.tick() => {
                // Skipped when the link is congested: the traffic itself proves liveness.
                let _ = tx.try_send(&ToBroker::Ping);
            }
            _ = presence.tick() => hub.presence_tick(),
            _ = stop.cancelled() => {
                // Shutting down: let the writer flush what the sessions queued on their
                // way out (their Unregister messages), then close.
                set_current(current, None);
                hub.backend_metrics().set_up(false);
                hub.apply(Event::Detached);
                drop(tx);
                let _ = tokio::time::timeout(Duration::from_secs(2), &mut writer.0).await;
                return Ok(());
            }
        }
    }
}

/// The link message that carries out a follow-up.
fn follow_up(follow: FollowUp) -> ToBroker {
    match follow {
        FollowUp::Register { conn, name, ip } => ToBroker::Register { conn, name, ip },
        FollowUp::Unregister { conn } => ToBroker::Unregister { conn },
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
