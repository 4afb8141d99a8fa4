//! Running a server: bind the listeners, keep the chat service reachable, accept clients
//! once it is, and shut down gracefully.
//!
//! `run(config, listeners, ready, shutdown)` is what the binary calls; tests call it (or
//! [`run_with`], with an in-memory link to an in-process broker) with listeners on
//! ephemeral ports.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::backend::Backend;
use crate::backend::broker::{BrokerBackend, Dial, LinkSettings, TcpDial};
use crate::backend::nats::setup::Layout;
use crate::backend::nats::{NatsBackend, NatsSettings};
use crate::chat::Chat;
use crate::cli::{Args, Listen};
use crate::config::{Config, NatsConfig};
use crate::core::hub::Hub;
use crate::ctx::Ctx;
use crate::metrics::ServerMetrics;
use crate::net::limits::ConnLimits;
use crate::net::listener::{self, Port};
use crate::net::tls;

/// The bound listeners of a server.
pub struct Listeners {
    /// The JSON port.
    pub json: TcpListener,
    /// The line port, if on.
    pub line: Option<TcpListener>,
    /// The JSON port over TLS, if on.
    pub tls: Option<(TcpListener, tokio_rustls::TlsAcceptor)>,
    /// The metrics endpoint, if on ([`Listeners::bind_metrics`]).
    pub metrics: Option<TcpListener>,
}

/// Where the listeners are bound (port 0 resolved).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addrs {
    /// The JSON port.
    pub json: SocketAddr,
    /// The line port, if on.
    pub line: Option<SocketAddr>,
    /// The TLS port, if on.
    pub tls: Option<SocketAddr>,
    /// The metrics endpoint, if on.
    pub metrics: Option<SocketAddr>,
}

impl Listeners {
    /// Binds every listener, so a port conflict is reported before anything starts.
    pub async fn bind(
        json: SocketAddr,
        line: Listen,
        tls: Option<(SocketAddr, tokio_rustls::TlsAcceptor)>,
    ) -> anyhow::Result<Listeners> {
        let bind = |addr: SocketAddr| async move {
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding {addr}"))
        };
        let json = bind(json).await?;
        let line = match line.addr() {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        let tls = match tls {
            Some((addr, acceptor)) => Some((bind(addr).await?, acceptor)),
            None => None,
        };
        Ok(Listeners {
            json,
            line,
            tls,
            metrics: None,
        })
    }

    /// Binds the metrics endpoint too, if `addr` is on.
    pub async fn bind_metrics(&mut self, addr: Listen) -> anyhow::Result<()> {
        if let Some(addr) = addr.addr() {
            let listener = TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding the metrics endpoint {addr}"))?;
            self.metrics = Some(listener);
        }
        Ok(())
    }

    /// The bound addresses.
    pub fn addrs(&self) -> std::io::Result<Addrs> {
        Ok(Addrs {
            json: self.json.local_addr()?,
            line: self.line.as_ref().map(|l| l.local_addr()).transpose()?,
            tls: self.tls.as_ref().map(|(l, _)| l.local_addr()).transpose()?,
            metrics: self.metrics.as_ref().map(|l| l.local_addr()).transpose()?,
        })
    }
}

/// What the binary does with its flags: make the TLS identity if asked, bind every
/// listener, and [`run`]; `ready` gets the bound addresses once clients are accepted. Tests
/// call it in-process with the flags they would give the binary. `nofile` is the
/// open-file limit (see [`Args::config`]).
pub async fn launch(
    args: &Args,
    nofile: u64,
    ready: impl FnOnce(Addrs),
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let config = args.config(nofile)?;
    let tls = match args.tls_listen.addr() {
        Some(addr) => {
            let identity = tls::Identity::from_flags(
                args.tls_cert.clone(),
                args.tls_key.clone(),
                args.tls_self_signed,
                addr.ip(),
            )?;
            let (acceptor, cert_file) = tls::acceptor(&identity)?;
            tracing::info!("TLS certificate: {}", cert_file.display());
            Some((addr, acceptor))
        }
        None => None,
    };
    let mut listeners = Listeners::bind(args.listen, args.text_listen, tls).await?;
    listeners.bind_metrics(args.metrics_listen).await?;
    let addrs = listeners.addrs()?;
    run(config, listeners, move || ready(addrs), shutdown).await
}

/// Runs a server until `shutdown` resolves: on the NATS cluster of `config.nats` if given,
/// else on the broker at `config.broker.addr`. Clients are accepted only once the chat
/// service is reachable (until then every login would be refused); `ready` is called at
/// that moment.
pub async fn run(
    config: Config,
    listeners: Listeners,
    ready: impl FnOnce(),
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    if let Some(nats) = config.nats.clone() {
        return run_nats(config, nats, listeners, ready, shutdown).await;
    }
    let dial = TcpDial(config.broker.addr.clone());
    run_with(config, listeners, dial, ready, shutdown).await
}

/// Like [`run`] on the broker, reaching it through `dial`.
pub async fn run_with<D: Dial>(
    config: Config,
    listeners: Listeners,
    dial: D,
    ready: impl FnOnce(),
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let addrs = listeners.addrs()?;
    let hub = Arc::new(Hub::new(addrs.json.ip().to_string(), config.presence));
    let link_stop = CancellationToken::new();
    let settings = LinkSettings {
        label: format!("server {}", addrs.json),
        token: config.broker.token.clone(),
        queue_bytes: config.broker.queue_bytes,
        heartbeat: config.broker.heartbeat,
        max_frame: config.broker.max_frame,
    };
    tracing::info!("connecting to the broker at {}", dial.describe());
    let (backend, link, up) = BrokerBackend::start(hub.clone(), dial, settings, link_stop.clone());
    let service = Service {
        hub,
        backend,
        task: link,
        up,
        stop: link_stop,
    };
    serve_clients(service, config, listeners, ready, shutdown).await
}

/// Like [`run`], on the NATS cluster of `nats`.
async fn run_nats(
    config: Config,
    nats: NatsConfig,
    listeners: Listeners,
    ready: impl FnOnce(),
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let addrs = listeners.addrs()?;
    let hub = Arc::new(Hub::new(addrs.json.ip().to_string(), config.presence));
    let stop = CancellationToken::new();
    let settings = NatsSettings {
        urls: nats.urls.clone(),
        label: format!("chat server {}", addrs.json),
        replicas: nats.replicas,
        layout: Layout {
            replicas: nats.replicas,
            max_age: nats.max_age,
            max_events: nats.max_events,
            resume_ttl: nats.resume_ttl,
        },
    };
    tracing::info!("joining the NATS cluster at {}", nats.urls.join(","));
    let (backend, task, up) = NatsBackend::start(hub.clone(), settings, stop.clone());
    let service = Service {
        hub,
        backend,
        task,
        up,
        stop,
    };
    serve_clients(service, config, listeners, ready, shutdown).await
}

/// A backend started, and what stops it.
struct Service<B> {
    hub: Arc<Hub>,
    backend: B,
    task: tokio::task::JoinHandle<()>,
    up: tokio::sync::watch::Receiver<bool>,
    stop: CancellationToken,
}

/// Waits for the service, then accepts clients until `shutdown`; then stops the backend.
/// The metrics endpoint, if asked for, answers from the start: while the service is not
/// reachable, its page says so.
async fn serve_clients<B: Backend + Clone>(
    service: Service<B>,
    config: Config,
    mut listeners: Listeners,
    ready: impl FnOnce(),
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let Service {
        hub,
        backend,
        task,
        mut up,
        stop,
    } = service;
    let ctx = Ctx::new(
        Chat::new(hub.clone(), backend, config.login_timeout),
        config,
    );
    let limits = ConnLimits::new(ctx.cfg.limits);
    if let Some(listener) = listeners.metrics.take() {
        serve_metrics(listener, hub, &ctx, &limits, stop.clone());
    }
    tokio::pin!(shutdown);
    tokio::select! {
        r = up.wait_for(|up| *up) => { r.context("the chat service's task ended")?; }
        _ = &mut shutdown => {
            stop.cancel();
            let _ = task.await;
            return Ok(());
        }
    }
    ready();

    tracing::info!(
        total = ctx.cfg.limits.total,
        per_ip = ctx.cfg.limits.per_ip,
        "connection limits"
    );
    let mut ports = vec![(listeners.json, Port::Json)];
    ports.extend(listeners.line.map(|l| (l, Port::Line)));
    ports.extend(listeners.tls.map(|(l, acceptor)| (l, Port::Tls(acceptor))));
    listener::run(ports, ctx, limits, shutdown).await;
    stop.cancel();
    let _ = task.await;
    tracing::info!("server stopped");
    Ok(())
}

/// Answers `GET /metrics` on `listener` until `stop` (README, "Metrics"). Started before
/// the chat service is reachable: while it is not, the page says so.
fn serve_metrics<B>(
    listener: TcpListener,
    hub: Arc<Hub>,
    ctx: &Ctx<B>,
    limits: &Arc<ConnLimits>,
    stop: CancellationToken,
) {
    let registry = netkit::metrics::Registry::new();
    registry.register(Arc::new(ServerMetrics {
        hub,
        pool: ctx.pool.clone(),
        limits: limits.clone(),
    }));
    let stopped = async move { stop.cancelled().await };
    tokio::spawn(netkit::metrics::http::serve(listener, registry, stopped));
}
