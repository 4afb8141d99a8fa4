//! The NATS backend: servers on a NATS cluster with JetStream instead of the broker
//! (`server --nats URL[,URL...]`; docs/NATS.md says how, PROTOCOL.md §10 what clients see).
//!
//! - [`wire`]: what goes into the stream and the buckets (pure);
//! - [`replica`]: who is online, built by applying the stream in order (pure): the stream
//!   sequence is every event's `id`, on every server;
//! - [`liveness`]: which servers are alive, from their beats (pure);
//! - [`names`]: unique names through the names bucket's atomic create;
//! - [`publish`]: writing an event exactly once (`Nats-Msg-Id`), retried;
//! - [`reader`]: the stream read in order, whatever becomes of its consumer's node;
//! - [`history`]: `/history` and resume read from the stream;
//! - [`scan`]: part of a stream read once, in batches;
//! - [`setup`]: connecting, and making the stream and buckets;
//! - [`run`]: the task that keeps this server in the cluster (I/O only).

pub mod history;
pub mod liveness;
pub mod names;
pub mod publish;
pub mod reader;
pub mod replica;
pub mod run;
pub mod scan;
pub mod setup;
pub mod wire;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use chat_common::link::ConnId;
use chat_common::name::NameKey;
use chat_common::{Refusal, Unroutable};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use self::liveness::Lapses;
use self::publish::Outgoing;
use self::replica::Replica;
use self::setup::{Cluster, Layout};
use self::wire::{Holder, Wire};
use crate::backend::{Backend, Unavailable};
use crate::core::event::Event;
use crate::core::hub::Hub;
use crate::core::requests::ReqId;

/// How to reach the cluster, and how to make what is not there yet.
#[derive(Debug, Clone)]
pub struct NatsSettings {
    /// `nats://host:port` of one or more nodes (the others are learnt from the cluster).
    pub urls: Vec<String>,
    /// This server's name on its connection, for the cluster's monitoring.
    pub label: String,
    /// Replicas of the stream and buckets; 0: three on a cluster of three or more.
    pub replicas: usize,
    /// History retention and resume expiry (PROTOCOL.md §10.4, §10.7).
    pub layout: Layout,
}

/// One of our clients, as registered.
#[derive(Debug, Clone)]
struct Local {
    name: String,
    ip: String,
    chain: String,
    /// Its resume token, until the welcome takes it.
    token: Option<String>,
    /// The incarnation it was registered under.
    srv: String,
    /// The revisions of its two name entries.
    revs: [u64; 2],
}

/// What this server knows, behind one lock (never held across an `.await`).
#[derive(Debug, Default)]
struct Shared {
    /// Our incarnation.
    me: String,
    /// Registered with the cluster, applying its stream.
    serving: bool,
    replica: Replica,
    local: HashMap<ConnId, Local>,
    lapses: Lapses,
}

struct Inner {
    hub: Arc<Hub>,
    cluster: OnceLock<Cluster>,
    state: Mutex<Shared>,
    /// The last sequence applied.
    applied: watch::Sender<u64>,
    /// The acknowledgements of client messages.
    acks: OnceLock<Arc<publish::Acks>>,
}

/// What sessions use to reach the cluster; cheap to clone.
#[derive(Clone)]
pub struct NatsBackend(Arc<Inner>);

impl NatsBackend {
    /// Starts keeping this server in the cluster for `hub` until `stop` is cancelled.
    /// Returns the backend, its task, and a flag that turns true once the server is
    /// registered in the cluster (then clients may be accepted).
    pub fn start(
        hub: Arc<Hub>,
        settings: NatsSettings,
        stop: CancellationToken,
    ) -> (NatsBackend, JoinHandle<()>, watch::Receiver<bool>) {
        let backend = NatsBackend(Arc::new(Inner {
            hub,
            cluster: OnceLock::new(),
            state: Mutex::default(),
            applied: watch::Sender::new(0),
            acks: OnceLock::new(),
        }));
        backend.hub().backend_metrics().name_as("nats");
        let (up_tx, up_rx) = watch::channel(false);
        let task = tokio::spawn(run::run(backend.clone(), settings, stop, up_tx));
        (backend, task, up_rx)
    }

    fn state(&self) -> MutexGuard<'_, Shared> {
        self.0.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn hub(&self) -> &Hub {
        &self.0.hub
    }

    /// The cluster, while this server is serving. Borrowed, not cloned: its handles carry
    /// stream infos (kilobytes of allocations), and every client message asks this.
    fn serving(&self) -> Result<&Cluster, Unavailable> {
        let cluster = self.0.cluster.get().ok_or(Unavailable)?;
        if self.state().serving {
            Ok(cluster)
        } else {
            Err(Unavailable)
        }
    }

    /// Claims `name` for `conn` and writes its join; the answer comes from the stream.
    async fn claim(&self, conn: ConnId, name: String, ip: String) -> Result<(), Unavailable> {
        let cluster = self.serving()?;
        let refuse = |reason| self.hub().apply(Event::Refused { conn, reason });
        if let Err(reason) = chat_common::name::validate_name(&name) {
            refuse(Refusal::from(reason));
            return Ok(());
        }
        let me = {
            let st = self.state();
            if st.local.contains_key(&conn) {
                drop(st);
                refuse(Refusal::AlreadyLoggedIn);
                return Ok(());
            }
            st.me.clone()
        };
        let chain = netkit::random::hex(16);
        let holder = Holder {
            name: name.clone(),
            srv: me.clone(),
            conn,
            ip: ip.clone(),
            chain: chain.clone(),
        };
        let stale = |h: &Holder, age: Duration| {
            let st = self.state();
            st.replica.is_gone(&h.srv)
                || (!st.replica.is_online(&h.srv, h.conn) && age >= names::STALE)
        };
        let revs = match names::claim(&cluster.names, &holder, stale).await {
            Ok(names::Claim::Won(revs)) => revs,
            Ok(names::Claim::Taken(holder)) => {
                refuse(Refusal::NameTaken { name: holder });
                return Ok(());
            }
            Err(e) => {
                tracing::warn!("a login could not be decided: {e}");
                refuse(Refusal::Unavailable);
                return Ok(());
            }
        };
        let token = netkit::random::hex(16);
        let session = wire::Session {
            chain: chain.clone(),
            name: name.clone(),
        };
        let token = match cluster
            .sessions
            .put(wire::session_key(&token), session.encode())
            .await
        {
            Ok(_) => Some(token),
            Err(e) => {
                tracing::warn!("a session could not be stored; the login has no token: {e}");
                None
            }
        };
        let local = Local {
            name: name.clone(),
            ip: ip.clone(),
            chain: chain.clone(),
            token,
            srv: me.clone(),
            revs,
        };
        self.state().local.insert(conn, local);
        let join = Wire::Join {
            name: name.clone(),
            ip,
            srv: me,
            conn,
            chain,
        };
        if let Err(e) = Outgoing::new(&join).store(&cluster.js, None).await {
            tracing::warn!("a join was not stored: {e}");
            self.state().local.remove(&conn);
            names::release(&cluster.names, &name, revs).await;
            refuse(Refusal::Unavailable);
        }
        Ok(())
    }

    /// Writes `conn`'s leave, then frees its name entries: in that order, so a later
    /// holder's join comes after the leave in the stream.
    async fn leave(&self, conn: ConnId) {
        let Some(cluster) = self.0.cluster.get().cloned() else {
            return;
        };
        let (local, leave) = {
            let mut st = self.state();
            let local = st.local.remove(&conn);
            let srv = local
                .as_ref()
                .map_or_else(|| st.me.clone(), |l| l.srv.clone());
            let leave = st
                .replica
                .leaves_of(&srv)
                .into_iter()
                .find(|w| matches!(w, Wire::Leave { conn: c, .. } if *c == conn));
            (local, leave)
        };
        let leave = leave.or_else(|| {
            local.as_ref().map(|l| Wire::Leave {
                name: l.name.clone(),
                ip: l.ip.clone(),
                srv: l.srv.clone(),
                conn,
            })
        });
        if let Some(leave) = leave
            && let Err(e) = Outgoing::new(&leave).store(&cluster.js, None).await
        {
            tracing::warn!(
                "a leave was not stored (the server's users are freed when it is found gone): {e}"
            );
        }
        if let Some(l) = local {
            names::release(&cluster.names, &l.name, l.revs).await;
        }
    }

    /// The message `make` builds from the sender's registration, while serving.
    fn message<F>(
        &self,
        conn: ConnId,
        make: F,
    ) -> Result<(Arc<publish::Acks>, Result<Wire, Unroutable>), Unavailable>
    where
        F: FnOnce(&Shared, &Local) -> Result<Wire, Unroutable>,
    {
        // Not the cluster's handles: they weigh kilobytes (stream infos), and this goes
        // into the future every connection holds while it sends. One lock per message:
        // the acknowledgements exist once the cluster does, so `serving` is the check.
        let acks = self.0.acks.get().ok_or(Unavailable)?.clone();
        let st = self.state();
        if !st.serving {
            return Err(Unavailable);
        }
        let wire = match st.local.get(&conn) {
            Some(local) => make(&st, local),
            None => Err(Unroutable::NotLoggedIn),
        };
        Ok((acks, wire))
    }

    /// Writes message `req` (its answer comes from the stream), or tells its sender why
    /// not: `reason`, or `Unconfirmed` if it cannot be stored ([`publish::Acks`]).
    async fn write(&self, acks: Arc<publish::Acks>, req: ReqId, wire: Result<Wire, Unroutable>) {
        match wire {
            Ok(w) => acks.send(Outgoing::new(&w), req).await,
            Err(reason) => {
                self.hub().apply(Event::Undeliverable { req, reason });
            }
        }
    }

    /// Waits (a little) until this server has applied every event the stream held when
    /// asked: a name our replica does not know yet may have joined on another server a
    /// moment ago, and its holder already been welcomed.
    async fn caught_up(&self) {
        let Some(cluster) = self.0.cluster.get() else {
            return;
        };
        let Ok(info) = cluster.stream.get_info().await else {
            return;
        };
        let last = info.state.last_sequence;
        let mut applied = self.0.applied.subscribe();
        let _ =
            tokio::time::timeout(Duration::from_secs(2), applied.wait_for(|a| *a >= last)).await;
    }

    async fn resume_session(&self, conn: ConnId, token: String) -> Result<(), Unavailable> {
        let cluster = self.serving()?;
        let failed = || self.hub().apply(Event::ResumeFailed { conn });
        let Some((name, srv)) = self
            .state()
            .local
            .get(&conn)
            .map(|l| (l.name.clone(), l.srv.clone()))
        else {
            failed();
            return Ok(());
        };
        let key = wire::session_key(&token);
        let session = match cluster.sessions.get(&key).await {
            Ok(Some(v)) => wire::Session::decode(&v),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!("a resume could not be read: {e}");
                None
            }
        };
        let Some(session) = session.filter(|s| NameKey::of(&s.name) == NameKey::of(&name)) else {
            failed();
            return Ok(());
        };
        let chain = Wire::Chain {
            srv,
            conn,
            chain: session.chain.clone(),
        };
        if Outgoing::new(&chain)
            .store(&cluster.js, None)
            .await
            .is_err()
        {
            failed();
            return Ok(());
        }
        // Resuming pushes the expiry back (the bucket's age counts from the last write).
        let _ = cluster.sessions.put(&key, session.encode()).await;
        let update = {
            let mut st = self.state();
            st.local.get_mut(&conn).map(|l| {
                l.chain = session.chain.clone();
                (l.clone(), conn)
            })
        };
        // The name entry carries the chain for servers that start later.
        if let Some((l, conn)) = update {
            let holder = Holder {
                name: l.name.clone(),
                srv: l.srv.clone(),
                conn,
                ip: l.ip.clone(),
                chain: l.chain.clone(),
            };
            let key = wire::name_keys(&l.name)[0].clone();
            if let Ok(rev) = cluster.names.update(key, holder.encode(), l.revs[0]).await
                && let Some(l) = self.state().local.get_mut(&conn)
            {
                l.revs[0] = rev;
            }
        }
        Ok(())
    }
}

impl Backend for NatsBackend {
    fn register(
        &self,
        conn: ConnId,
        name: &str,
        ip: &str,
    ) -> impl Future<Output = Result<(), Unavailable>> + Send {
        let backend = self.clone();
        let (name, ip) = (name.to_string(), ip.to_string());
        // Boxed: a claim waits on several cluster round trips, and its future is large; a
        // connection's task is as large as its largest moment (docs/ARCHITECTURE.md,
        // "Memory per connection"), and a login happens once.
        Box::pin(async move { backend.claim(conn, name, ip).await })
    }

    fn unregister(&self, conn: ConnId) -> impl Future<Output = ()> + Send {
        // Not waited for: the client is gone either way, and its leave may wait for a
        // leader election.
        let backend = self.clone();
        tokio::spawn(async move { backend.leave(conn).await });
        std::future::ready(())
    }

    fn publish(
        &self,
        conn: ConnId,
        req: ReqId,
        text: String,
    ) -> impl Future<Output = Result<(), Unavailable>> + Send {
        let backend = self.clone();
        let ready = self.message(conn, move |_, l| {
            Ok(Wire::Chat {
                name: l.name.clone(),
                srv: l.srv.clone(),
                conn,
                ip: l.ip.clone(),
                req,
                msg: text,
            })
        });
        async move {
            let (acks, wire) = ready?;
            backend.write(acks, req, wire).await;
            Ok(())
        }
    }

    fn send_private(
        &self,
        conn: ConnId,
        req: ReqId,
        to: String,
        text: String,
    ) -> impl Future<Output = Result<(), Unavailable>> + Send {
        let backend = self.clone();
        let private = move |st: &Shared, l: &Local, to: &str, text: &str| {
            let r = st
                .replica
                .recipient(to)
                .ok_or(Unroutable::NotOnline { to: to.to_string() })?;
            Ok(Wire::Private {
                name: l.name.clone(),
                srv: l.srv.clone(),
                conn,
                ip: l.ip.clone(),
                req,
                chain: l.chain.clone(),
                to: r.name,
                to_srv: r.srv,
                to_conn: r.conn,
                to_chain: r.chain,
                msg: text.to_string(),
            })
        };
        let ready = self.message(conn, |st, l| private(st, l, &to, &text));
        async move {
            let (acks, mut wire) = ready?;
            if let Err(Unroutable::NotOnline { .. }) = wire {
                // Rare, and a wait: boxed, so the message path's future stays small.
                Box::pin(backend.caught_up()).await;
                wire = backend.message(conn, |st, l| private(st, l, &to, &text))?.1;
            }
            backend.write(acks, req, wire).await;
            Ok(())
        }
    }

    fn resume(
        &self,
        conn: ConnId,
        token: String,
    ) -> impl Future<Output = Result<(), Unavailable>> + Send {
        let backend = self.clone();
        // Boxed, as a claim is: rare, and large.
        Box::pin(async move { backend.resume_session(conn, token).await })
    }

    fn history(
        &self,
        conn: ConnId,
        query: chat_common::history::Query,
        chat_only: bool,
    ) -> impl Future<Output = Result<(), Unavailable>> + Send {
        let backend = self.clone();
        let asked = self.serving().map(|cluster| {
            let chain = self
                .state()
                .local
                .get(&conn)
                .map(|l| l.chain.clone())
                .unwrap_or_default();
            (cluster.stream.clone(), history::Viewer { chain, chat_only })
        });
        async move {
            let (stream, viewer) = asked?;
            tokio::spawn(async move {
                let event = match history::answer(&stream, &query, &viewer).await {
                    Ok((epoch, page)) => Event::History {
                        conn,
                        epoch,
                        events: page.events,
                        more: page.more,
                        gap: page.gap,
                    },
                    Err(e) => {
                        tracing::warn!("a history query failed: {e}");
                        Event::HistoryOff { conn }
                    }
                };
                backend.hub().apply(event);
            });
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    /// What the futures a connection's task holds weigh: the register and resume futures
    /// are boxed, so only a pointer stays; the message futures are held while a message
    /// is handed to the connection (docs/ARCHITECTURE.md, "Memory per connection").
    #[test]
    fn the_futures_a_connection_holds_stay_small() {
        use crate::backend::Backend;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let hub = std::sync::Arc::new(crate::core::hub::Hub::new(
                "127.0.0.1".into(),
                crate::core::presence::PresencePolicy {
                    limit: 10,
                    budget: 0,
                },
            ));
            let stop = tokio_util::sync::CancellationToken::new();
            let settings = super::NatsSettings {
                urls: vec!["nats://127.0.0.1:9".into()],
                label: "t".into(),
                replicas: 1,
                layout: super::setup::Layout {
                    replicas: 1,
                    max_age: std::time::Duration::ZERO,
                    max_events: 0,
                    resume_ttl: std::time::Duration::ZERO,
                },
            };
            let (b, task, _) = super::NatsBackend::start(hub, settings, stop.clone());
            let register = std::mem::size_of_val(&b.register(1, "a", "i"));
            let resume = std::mem::size_of_val(&b.resume(1, String::new()));
            let publish = std::mem::size_of_val(&b.publish(1, 1, String::new()));
            let private =
                std::mem::size_of_val(&b.send_private(1, 1, String::new(), String::new()));
            eprintln!("register {register} resume {resume} publish {publish} private {private}");
            assert!(register <= 64 && resume <= 64, "{register} {resume}");
            assert!(publish <= 2048 && private <= 2048, "{publish} {private}");
            stop.cancel();
            let _ = task.await;
        });
    }
}
