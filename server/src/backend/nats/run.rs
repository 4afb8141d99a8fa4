//! The task that keeps this server in the cluster (docs/NATS.md): connect, come up as a new
//! incarnation, apply the stream in order, beat, find gone servers, and start again when
//! the cluster was lost (PROTOCOL.md §6.4: clients stay connected meanwhile and are told
//! the chat is degraded). I/O only: what the stream means is [`super::replica`]'s.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use chat_common::link::ConnId;
use futures_util::StreamExt;
use futures_util::future::join_all;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::publish::Outgoing;
use super::reader::{Read, Reader};
use super::replica::Replica;
use super::setup::{self, Cluster};
use super::wire::{self, Wire};
use super::{Local, NatsBackend, NatsSettings, names};
use crate::backend::Backend;
use crate::core::event::{Event, FollowUp};

/// How long the connection may be down before this server stops serving: a killed node is
/// left for another within about a second, so this is a cluster lost, not a node.
pub const DOWN_AFTER: Duration = Duration::from_secs(2);

/// How often joins and leaves that were only counted are told ([`crate::core::hub::Hub::presence_tick`]).
const PRESENCE_TICK: Duration = Duration::from_secs(1);

/// The first pause before trying the cluster again; it doubles up to [`BACKOFF_MAX`].
const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// An incarnation that served this long ended by chance, not by a fault that will end
/// the next one at once: the pause after it starts again from [`BACKOFF_MIN`].
const STEADY: Duration = Duration::from_secs(10);

/// The pause before the next try, after one that failed having served for `served`
/// (zero: never came up). Every failure pauses: a fault that ends each incarnation at
/// once (a request the cluster refuses) must not spin the server and flood its log.
fn next_backoff(last: Duration, served: Duration) -> Duration {
    if served >= STEADY {
        BACKOFF_MIN
    } else {
        (last * 2).clamp(BACKOFF_MIN, BACKOFF_MAX)
    }
}

/// Why one incarnation ended.
enum Ended {
    /// The server is stopping.
    Stop,
    /// The cluster was lost, or declared us gone: start again.
    Lost(anyhow::Error),
}

/// Keeps the server in the cluster until `stop` is cancelled.
pub async fn run(
    backend: NatsBackend,
    settings: NatsSettings,
    stop: CancellationToken,
    up: watch::Sender<bool>,
) {
    let client = match setup::connect(&settings.urls, &settings.label).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("NATS: {e:#}");
            return;
        }
    };
    // The pause before the next try; the first try goes at once.
    let mut backoff = Duration::ZERO;
    loop {
        if !backoff.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = stop.cancelled() => break,
            }
        }
        let cluster = tokio::select! {
            c = open(&client, &settings) => c,
            _ = stop.cancelled() => break,
        };
        let cluster = match cluster {
            Ok(c) => c,
            Err(e) => {
                backoff = next_backoff(backoff, Duration::ZERO);
                tracing::warn!("NATS: {e:#}; retrying in {backoff:?}");
                continue;
            }
        };
        let _ = backend.0.cluster.set(cluster.clone());
        if backend.0.acks.get().is_none() {
            let hub = backend.0.hub.clone();
            let lost = move |req| {
                let reason = chat_common::Unroutable::Unconfirmed;
                hub.apply(Event::Undeliverable { req, reason });
            };
            match super::publish::Acks::start(
                client.clone(),
                cluster.js.clone(),
                lost,
                stop.clone(),
            )
            .await
            {
                Ok(acks) => {
                    let _ = backend.0.acks.set(acks);
                }
                Err(e) => {
                    backoff = next_backoff(backoff, Duration::ZERO);
                    tracing::warn!(
                        "NATS: listening for acknowledgements: {e}; retrying in {backoff:?}"
                    );
                    continue;
                }
            }
        }
        let began = Instant::now();
        match serve(&backend, &cluster, &up, &stop).await {
            Ended::Stop => break,
            Ended::Lost(e) => {
                backoff = next_backoff(backoff, began.elapsed());
                tracing::warn!("NATS: {e:#}; starting again in {backoff:?}");
                backend.state().serving = false;
                backend.hub().backend_metrics().set_up(false);
                backend.hub().apply(Event::Down);
            }
        }
    }
    shut_down(&backend).await;
}

async fn open(client: &async_nats::Client, settings: &NatsSettings) -> anyhow::Result<Cluster> {
    // The client connects (and reconnects) by itself; wait for it a little, not forever,
    // so a stop is noticed.
    for _ in 0..50 {
        if client.connection_state() == async_nats::connection::State::Connected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if client.connection_state() != async_nats::connection::State::Connected {
        anyhow::bail!("no connection to any NATS node yet");
    }
    let mut layout = settings.layout.clone();
    if settings.replicas == 0 {
        layout.replicas = setup::auto_replicas(client);
    } else {
        layout.replicas = settings.replicas;
    }
    setup::open(client.clone(), &layout).await
}

/// One incarnation: clean up after the last one, read who is online, come up, apply.
async fn serve(
    backend: &NatsBackend,
    cluster: &Cluster,
    up: &watch::Sender<bool>,
    stop: &CancellationToken,
) -> Ended {
    match begin(backend, cluster).await {
        Ok(start) => apply_stream(backend, cluster, start, up, stop).await,
        Err(e) => Ended::Lost(e),
    }
}

/// Frees what the last incarnation held, then reads the stream's position and who is
/// online (in that order: the stream from there on brings every change since), and makes
/// a new incarnation. Returns the first sequence to apply.
async fn begin(backend: &NatsBackend, cluster: &Cluster) -> anyhow::Result<u64> {
    let (old, old_users) = {
        let mut st = backend.state();
        let users: Vec<(ConnId, Local)> = st.local.drain().collect();
        (st.me.clone(), users)
    };
    if !old.is_empty() {
        declare_gone(cluster, &old, leaves_of_locals(&old, &old_users)).await?;
    }
    let info = cluster
        .stream
        .get_info()
        .await
        .context("reading the stream's position")?;
    let start = info.state.last_sequence + 1;
    let holders = names::holders(&cluster.names)
        .await
        .context("reading who is online")?;
    let replica = Replica::from_holders(holders);
    let users = replica.users();
    let me = netkit::random::hex(8);
    {
        let mut st = backend.state();
        st.me = me.clone();
        st.replica = replica;
        st.serving = true;
        st.lapses.restart(Instant::now());
    }
    tracing::info!(
        incarnation = me,
        online = users.len(),
        start,
        "in the NATS cluster"
    );
    backend.hub().backend_metrics().set_up(true);
    let again = backend.hub().apply(Event::Up { users });
    if !again.is_empty() {
        // Clients are told the chat is back once all of them are registered again: one that
        // speaks as soon as it hears "back" must find itself registered.
        let b = backend.clone();
        tokio::spawn(async move {
            join_all(again.into_iter().map(|f| follow_up(&b, f))).await;
            b.hub().announce_back();
        });
    }
    Ok(start)
}

fn leaves_of_locals(srv: &str, users: &[(ConnId, Local)]) -> Vec<(Wire, [u64; 2])> {
    users
        .iter()
        .map(|(conn, l)| {
            let leave = Wire::Leave {
                name: l.name.clone(),
                ip: l.ip.clone(),
                srv: srv.to_string(),
                conn: *conn,
            };
            (leave, l.revs)
        })
        .collect()
}

/// Writes that `srv` is gone, then its users' leaves, then frees their names. Whoever
/// finds it gone does the same: the events' ids make the second writer's copies vanish.
async fn declare_gone(
    cluster: &Cluster,
    srv: &str,
    leaves: Vec<(Wire, [u64; 2])>,
) -> anyhow::Result<()> {
    Outgoing::new(&Wire::Gone {
        srv: srv.to_string(),
    })
    .store(&cluster.js, None)
    .await?;
    let stored = join_all(
        leaves
            .iter()
            .map(|(w, _)| async move { Outgoing::new(w).store(&cluster.js, None).await }),
    )
    .await;
    for ((leave, _), ok) in leaves.iter().zip(stored) {
        ok?;
        if let Wire::Leave { name, .. } = leave {
            names::release_for(&cluster.names, name, srv).await;
        }
    }
    Ok(())
}

/// Applies the stream from `start` until the incarnation ends; beats, listens to the
/// others' beats, and declares the silent gone.
async fn apply_stream(
    backend: &NatsBackend,
    cluster: &Cluster,
    start: u64,
    up: &watch::Sender<bool>,
    stop: &CancellationToken,
) -> Ended {
    let client = &cluster.client;
    let mut events = match Reader::open(cluster.stream.clone(), client.clone(), start).await {
        Ok(r) => r,
        Err(e) => return Ended::Lost(e.into()),
    };
    let mut beats = match client.subscribe(format!("{}*", wire::ALIVE_PREFIX)).await {
        Ok(s) => s,
        Err(e) => return Ended::Lost(anyhow::anyhow!("listening to beats: {e}")),
    };
    up.send_replace(true);
    let me = backend.state().me.clone();
    let beat_subject = format!("{}{me}", wire::ALIVE_PREFIX);
    let mut beat = tokio::time::interval(super::liveness::BEAT);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut presence = tokio::time::interval(PRESENCE_TICK);
    let mut cut_off: Option<Instant> = None;
    let mut last_tick = Instant::now();
    let mut cleaning: HashMap<String, tokio::task::JoinHandle<()>> = HashMap::new();
    loop {
        tokio::select! {
            next = events.next() => match next {
                Ok(Read { seq, ts, message }) => {
                    let Some(wire) = Wire::decode(&message.payload) else {
                        tracing::warn!(seq, "an event that is not ours in the stream; skipped");
                        continue;
                    };
                    let gone = apply(backend, seq, ts, wire);
                    backend.0.applied.send_replace(seq);
                    if gone {
                        return Ended::Lost(anyhow::anyhow!("this server was declared gone"));
                    }
                }
                Err(e) => return Ended::Lost(e.into()),
            },
            Some(b) = beats.next() => {
                if let Some(srv) = b.subject.as_str().strip_prefix(wire::ALIVE_PREFIX) {
                    backend.state().lapses.heard(srv, Instant::now());
                }
            }
            _ = beat.tick() => {
                let now = Instant::now();
                // This process did not run for a while (frozen, swapped out): the others'
                // silence meanwhile is ours, not theirs.
                if now.duration_since(last_tick) > super::liveness::BEAT * 3 {
                    backend.state().lapses.restart(now);
                }
                last_tick = now;
                if client.connection_state() == async_nats::connection::State::Connected {
                    if cut_off.take().is_some() {
                        backend.state().lapses.restart(now);
                    }
                    let _ = client.publish(beat_subject.clone(), bytes::Bytes::new()).await;
                } else {
                    let since = *cut_off.get_or_insert(now);
                    if now.duration_since(since) >= DOWN_AFTER {
                        return Ended::Lost(anyhow::anyhow!("the NATS connection is down"));
                    }
                    continue;
                }
                cleaning.retain(|_, t| !t.is_finished());
                let gone: Vec<(String, Vec<Wire>)> = {
                    let mut st = backend.state();
                    let holding = st.replica.servers(&me);
                    let lapsed = st.lapses.lapsed(&holding, now);
                    lapsed
                        .into_iter()
                        .filter(|s| !cleaning.contains_key(s))
                        .map(|s| {
                            let leaves = st.replica.leaves_of(&s);
                            (s, leaves)
                        })
                        .collect()
                };
                for (srv, leaves) in gone {
                    tracing::warn!(srv, users = leaves.len(), "a server is silent; declaring it gone");
                    let cluster = cluster.clone();
                    let s = srv.clone();
                    cleaning.insert(srv, tokio::spawn(async move {
                        let leaves = leaves.into_iter().map(|w| (w, [0, 0])).collect();
                        if let Err(e) = declare_gone(&cluster, &s, leaves).await {
                            tracing::warn!(srv = s, "declaring a server gone: {e}");
                        }
                    }));
                }
            }
            _ = presence.tick() => backend.hub().presence_tick(),
            _ = stop.cancelled() => return Ended::Stop,
        }
    }
}

/// Applies one event; true when it says this server is gone.
fn apply(backend: &NatsBackend, seq: u64, ts: u64, wire: Wire) -> bool {
    let (applied, tokens) = {
        let mut st = backend.state();
        let st = &mut *st;
        let applied = st.replica.apply(seq, ts, wire, &st.me);
        // The welcome's token goes just before the welcome.
        let tokens: Vec<Event> = applied
            .events
            .iter()
            .filter_map(|e| match e {
                Event::Registered { conn, .. } => st
                    .local
                    .get_mut(conn)
                    .and_then(|l| l.token.take())
                    .map(|token| Event::Session { conn: *conn, token }),
                _ => None,
            })
            .collect();
        (applied, tokens)
    };
    let hub = backend.hub();
    for t in tokens {
        hub.apply(t);
    }
    let mut ours = false;
    for event in applied.events {
        match &event {
            Event::Public { own: Some(_), .. } | Event::Routed { .. } => ours = true,
            Event::Refused { conn, .. } => {
                // Our join lost its name to an earlier one: give the entries back.
                let b = backend.clone();
                let conn = *conn;
                tokio::spawn(async move { b.leave(conn).await });
            }
            _ => {}
        }
        for f in hub.apply(event) {
            let b = backend.clone();
            tokio::spawn(async move { follow_up(&b, f).await });
        }
    }
    // Stored in the stream is delivered: every server reads it from there, from where it
    // stopped, however its node fares.
    if ours {
        hub.apply(Event::Stable { upto: seq });
    }
    applied.gone_self
}

async fn follow_up(backend: &NatsBackend, f: FollowUp) {
    match f {
        FollowUp::Register { conn, name, ip } => {
            if backend.register(conn, &name, &ip).await.is_err() {
                backend.hub().apply(Event::Refused {
                    conn,
                    reason: chat_common::Refusal::Unavailable,
                });
            }
        }
        FollowUp::Unregister { conn } => backend.leave(conn).await,
    }
}

/// The server is stopping: its remaining users leave (within a bound: a lost cluster must
/// not hold the exit), and nothing is told to anyone.
async fn shut_down(backend: &NatsBackend) {
    backend.hub().apply(Event::Detached);
    let conns: Vec<_> = {
        let mut st = backend.state();
        st.serving = false;
        st.local.keys().copied().collect()
    };
    let leaves = join_all(conns.into_iter().map(|c| backend.leave(c)));
    let _ = tokio::time::timeout(Duration::from_secs(3), leaves).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_failure_pauses_and_quick_ones_pause_longer() {
        // Before, an incarnation refused at once started again at once, about 300 times
        // a second, each with a WARN line.
        let first = next_backoff(Duration::ZERO, Duration::ZERO);
        assert_eq!(first, BACKOFF_MIN);
        let second = next_backoff(first, Duration::from_millis(5));
        assert_eq!(second, BACKOFF_MIN * 2);
        let mut b = second;
        for _ in 0..10 {
            b = next_backoff(b, Duration::ZERO);
        }
        assert_eq!(b, BACKOFF_MAX);
    }

    #[test]
    fn an_incarnation_that_served_long_starts_again_soon() {
        assert_eq!(next_backoff(BACKOFF_MAX, STEADY), BACKOFF_MIN);
    }
}
