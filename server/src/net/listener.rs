//! Accepting clients on every port, and the graceful shutdown of the connections.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::FutureExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use chat_common::{ChatError, Refusal};

use crate::backend::Backend;
use crate::conn::{json_port, line_port};
use crate::core::frames::Format;
use crate::ctx::Ctx;
use crate::net::limits::{ConnLimits, PortName};
use crate::session::login_error;

/// Refusals being written at once; past that, a refused connection is just closed (a
/// flood of connections must not turn into a flood of tasks).
const REFUSALS_IN_FLIGHT: usize = 256;
/// How long a refusal may take to write.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(1);

/// Which protocol a listener speaks.
#[derive(Clone)]
pub enum Port {
    /// The JSON port.
    Json,
    /// The line port.
    Line,
    /// The JSON port over TLS.
    Tls(tokio_rustls::TlsAcceptor),
}

impl Port {
    /// Its name in the counts by port.
    pub fn name(&self) -> PortName {
        match self {
            Port::Json => PortName::Json,
            Port::Line => PortName::Line,
            Port::Tls(_) => PortName::Tls,
        }
    }
}

/// What every accept loop shares.
struct Acceptor<B> {
    ctx: Ctx<B>,
    /// Every connection's task, and the accept loops themselves.
    tracker: TaskTracker,
    next_conn: AtomicU64,
    limits: Arc<ConnLimits>,
    refusals: Arc<Semaphore>,
}

/// Accepts connections on every listener until `shutdown` resolves; then tells every
/// client, lets the sessions leave the chat, and waits (bounded) for them to finish.
pub async fn run<B: Backend>(
    listeners: Vec<(TcpListener, Port)>,
    ctx: Ctx<B>,
    limits: Arc<ConnLimits>,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = Arc::new(Acceptor {
        ctx: ctx.clone(),
        tracker: TaskTracker::new(),
        next_conn: AtomicU64::new(1),
        limits,
        refusals: Arc::new(Semaphore::new(REFUSALS_IN_FLIGHT)),
    });
    let stop_accepting = CancellationToken::new();
    for (listener, port) in listeners {
        let (a, stop) = (acceptor.clone(), stop_accepting.clone());
        acceptor
            .tracker
            .spawn(async move { a.accept_loop(listener, port, stop).await });
    }
    shutdown.await;
    tracing::info!(
        clients = ctx.chat.hub().local_clients(),
        "shutting down: telling clients and closing connections"
    );
    stop_accepting.cancel();
    ctx.shutdown.cancel();
    acceptor.tracker.close();
    if tokio::time::timeout(Duration::from_secs(10), acceptor.tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("some connections did not close in time");
    }
}

impl<B: Backend> Acceptor<B> {
    /// Accepts on one listener until `stop`.
    async fn accept_loop(&self, listener: TcpListener, port: Port, stop: CancellationToken) {
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = stop.cancelled() => return,
            };
            match accepted {
                Ok((socket, peer)) => self.admit(socket, peer, &port),
                Err(e) => {
                    // Usually EMFILE: back off instead of spinning on the error.
                    tracing::error!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    /// Lets a new connection in and starts its task, or refuses it (over a limit).
    fn admit(&self, socket: TcpStream, peer: SocketAddr, port: &Port) {
        self.limits.count_accepted(port.name());
        let (mut admitted, unnamed) = match self.limits.admit(peer.ip()) {
            Ok(a) => a,
            Err(why) => return self.refuse(socket, peer, port, why),
        };
        admitted.open_on(port.name());
        if let Some(idle) = self.ctx.cfg.keepalive
            && let Err(e) = keepalive(&socket, idle)
        {
            tracing::debug!(%peer, "setting TCP keepalive: {e}");
        }
        let conn = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let ctx = self.ctx.clone();
        // The task is the handler's own future with one step after it that gives the place
        // back (a combinator, not an `async` block: awaiting a future held by a block would
        // keep it twice, and every connection would pay for it).
        let release = move |()| drop(admitted);
        match port {
            Port::Json => {
                let serving = json_port::handle(socket, peer, conn, unnamed, ctx);
                self.tracker.spawn(serving.map(release));
            }
            Port::Line => {
                let serving = line_port::handle(socket, peer, conn, unnamed, ctx);
                self.tracker.spawn(serving.map(release));
            }
            Port::Tls(acceptor) => {
                let serving =
                    json_port::handle_tls(socket, acceptor.clone(), peer, conn, unnamed, ctx);
                self.tracker.spawn(serving.map(release));
            }
        }
    }

    /// Tells a connection over a limit why, in its port's format, and closes it.
    fn refuse(&self, socket: TcpStream, peer: SocketAddr, port: &Port, why: Refusal) {
        tracing::info!(%peer, "connection refused: {why}");
        self.ctx.chat.hub().stats().refused(why.code());
        // On the TLS port a refusal would need a handshake first: those connections are
        // just closed.
        if matches!(port, Port::Tls(_)) {
            return;
        }
        if let Ok(permit) = self.refusals.clone().try_acquire_owned() {
            let bytes = refusal(&self.ctx, port, why);
            self.tracker.spawn(async move {
                write_refusal(socket, bytes).await;
                drop(permit);
            });
        }
    }
}

/// The refusal a connection over a limit gets, in its port's format.
fn refusal<B>(ctx: &Ctx<B>, port: &Port, why: Refusal) -> bytes::Bytes {
    let format = match port {
        Port::Json | Port::Tls(_) => Format::Json,
        Port::Line => Format::Line,
    };
    login_error(
        ctx.chat.hub().server_ip(),
        "",
        &ChatError::Refused(why),
        format,
    )
}

/// Writes the refusal and closes, bounded in time. What the client sent meanwhile (its
/// name) is read and dropped until it closes: closing with unread bytes would send a reset,
/// which can destroy the refusal before the client reads it.
async fn write_refusal(mut socket: TcpStream, bytes: bytes::Bytes) {
    let _ = tokio::time::timeout(REFUSAL_TIMEOUT, async {
        socket.write_all(&bytes).await?;
        socket.shutdown().await?;
        let mut sink = [0u8; 512];
        while socket.read(&mut sink).await? > 0 {}
        std::io::Result::Ok(())
    })
    .await;
}

/// Probes after `idle` of silence, three times `idle / 3` apart; unacknowledged data gives
/// up after the same total, so a peer that vanished is dropped after about `2 * idle`.
fn keepalive(socket: &TcpStream, idle: Duration) -> std::io::Result<()> {
    let probe = (idle / 3).max(Duration::from_secs(1));
    let sock = socket2::SockRef::from(socket);
    sock.set_tcp_keepalive(
        &socket2::TcpKeepalive::new()
            .with_time(idle)
            .with_interval(probe)
            .with_retries(3),
    )?;
    sock.set_tcp_user_timeout(Some(idle + probe * 3))
}
