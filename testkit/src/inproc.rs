//! The broker and servers inside the test process, each on its own runtime thread, on
//! ephemeral loopback ports, started with the flags a test would give the binaries
//! (`server::launch`, `broker::run`): the same code as the binaries, without spawning a
//! process or waiting for one. Clients talk to them over real TCP.
//!
//! What needs a real process (a signal, a crash, its memory) uses [`crate::Proc`] instead.
//! Dropping a handle shuts its part down gracefully, as SIGTERM would.

use std::net::SocketAddr;
use std::sync::mpsc;
use std::thread::JoinHandle;

use clap::Parser;
use tokio::sync::oneshot;

use crate::{TEST_TOKEN, TIMEOUT};

/// A part running in this process; stopped when dropped.
struct Running {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    done: mpsc::Receiver<()>,
}

impl Running {
    /// Runs `body(shutdown)` on a new runtime thread.
    fn spawn<F, Fut>(name: &str, runtime: tokio::runtime::Runtime, body: F) -> Running
    where
        F: FnOnce(oneshot::Receiver<()>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()>,
    {
        let (stop, stopped) = oneshot::channel();
        let (done_tx, done) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                runtime.block_on(body(stopped));
                // Dropping the runtime here ends whatever tasks are left.
                drop(runtime);
                let _ = done_tx.send(());
            })
            .expect("spawn a runtime thread");
        Running {
            stop: Some(stop),
            thread: Some(thread),
            done,
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // Bounded: a part that does not stop in time is left behind, not waited for.
        if self.done.recv_timeout(TIMEOUT).is_ok()
            && let Some(t) = self.thread.take()
        {
            let _ = t.join();
        }
    }
}

fn init_logging() {
    static LOG: std::sync::OnceLock<netkit::logging::LogGuard> = std::sync::OnceLock::new();
    if std::env::var_os("CHAT_TEST_LOG").is_some() {
        LOG.get_or_init(netkit::logging::init);
    }
}

/// A broker running in this process.
pub struct Broker {
    /// Where servers link to it.
    pub addr: SocketAddr,
    _running: Running,
}

/// A broker on an ephemeral port, with the test token. In-process brokers take no flags:
/// `extra` must be empty (use [`crate::broker`] for a process with flags).
pub fn broker(extra: &[&str]) -> (Broker, SocketAddr) {
    assert!(
        extra.is_empty(),
        "in-process brokers take no flags: {extra:?}"
    );
    init_logging();
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    std_listener.set_nonblocking(true).expect("nonblocking");
    let addr = std_listener.local_addr().expect("address");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let running = Running::spawn("broker", runtime, move |stop| async move {
        let listener = tokio::net::TcpListener::from_std(std_listener).expect("listener");
        let config = broker::Config::new(TEST_TOKEN);
        broker::run(config, listener, async {
            let _ = stop.await;
        })
        .await;
    });
    (
        Broker {
            addr,
            _running: running,
        },
        addr,
    )
}

/// A server running in this process.
pub struct Server {
    /// The JSON port.
    pub json: SocketAddr,
    /// The line port (`127.0.0.1:0`'s address if the flags turned it off).
    pub text: SocketAddr,
    /// The TLS port, if the flags asked for one.
    pub tls: Option<SocketAddr>,
    /// The metrics endpoint, if the flags asked for one (`--metrics-listen`).
    pub metrics: Option<SocketAddr>,
    _running: Running,
}

/// A server on ephemeral ports linked to `broker`, with these extra flags (as for the
/// binary); returns once it accepts clients.
pub fn server(broker: SocketAddr, extra: &[&str]) -> Server {
    init_logging();
    let mut argv = vec!["server".to_string(), "--token".into(), TEST_TOKEN.into()];
    argv.extend(crate::server_flags(broker, extra));
    let args = server::cli::Args::try_parse_from(&argv).expect("server flags");
    let nofile = netkit::fdlimit::raise_nofile();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (ready_tx, ready) = mpsc::channel();
    let running = Running::spawn("server", runtime, move |stop| async move {
        let ready = move |addrs| {
            let _ = ready_tx.send(addrs);
        };
        let shutdown = async {
            let _ = stop.await;
        };
        if let Err(e) = server::launch(&args, nofile, ready, shutdown).await {
            panic!("in-process server failed: {e:#}");
        }
    });
    let addrs: server::Addrs = ready
        .recv_timeout(TIMEOUT)
        .expect("the in-process server did not come up");
    Server {
        json: addrs.json,
        text: addrs.line.unwrap_or_else(|| ([127, 0, 0, 1], 0).into()),
        tls: addrs.tls,
        metrics: addrs.metrics,
        _running: running,
    }
}

/// A broker and one server.
pub fn system() -> (Broker, Server) {
    let (b, addr) = broker(&[]);
    let s = server(addr, &[]);
    (b, s)
}

/// A server with a TLS port and a self-signed certificate written to `cert` (no line
/// port); returns it, its plain JSON port and its TLS port.
pub fn tls_server(broker: SocketAddr, cert: &std::path::Path) -> (Server, SocketAddr, SocketAddr) {
    let cert = cert.to_str().expect("utf-8 path");
    let s = server(
        broker,
        &[
            "--text-listen",
            "off",
            "--tls-listen",
            "127.0.0.1:0",
            "--tls-self-signed",
            "--tls-cert",
            cert,
        ],
    );
    let (json, tls) = (s.json, s.tls.expect("a TLS port"));
    (s, json, tls)
}
