//! Test support shared by the workspace's integration tests. Every wait has a deadline.
//!
//! - [`inproc`]: the broker and servers in the test process, on ephemeral ports: most tests;
//! - this module: the real `broker` and `server` binaries on ephemeral ports
//!   (`--listen 127.0.0.1:0`), their printed addresses, signals and exit codes: for what
//!   needs a process (SIGKILL, SIGSTOP, memory, the binaries' own flags and output);
//! - [`nats`]: a real `nats-server` with JetStream, one node or a cluster, on free loopback
//!   ports with temporary storage: kill, restart, stop a node (for the NATS backend);
//! - [`service`]: the broker or a NATS cluster behind a test's servers, and
//!   [`on_both_backends`], which runs a test on each;
//! - [`layout`]: checks on a crate's import graph.

pub mod inproc;
pub mod layout;
pub mod nats;
pub mod service;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long any single expectation may take.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The broker link token every process started here shares, unless a test gives its own
/// `--token` or `--token-file` (so tests never depend on the user's token file).
pub const TEST_TOKEN: &str = "testkit-link-token";

/// Path of a workspace binary, next to the one Cargo built for this test.
///
/// Integration tests run from `target/<profile>/deps/`; the binaries are one level up.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target directory");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} not found: build the workspace first (`cargo test --workspace` does)",
        path.display()
    );
    path
}

/// A running process of ours, killed when dropped.
pub struct Proc {
    pub child: Child,
    lines: mpsc::Receiver<String>,
    /// A broker's own data directory, removed after it is killed.
    _data: Option<tempfile::TempDir>,
}

/// A broker started without `--data-dir` or `--history` gets a data directory of its own,
/// so that tests running side by side never share (and lock) one history (PROTOCOL.md §10.6).
fn own_data_dir(cmd: &mut Command, name: &str, args: &[&str]) -> Option<tempfile::TempDir> {
    let chosen = args
        .iter()
        .any(|a| a.starts_with("--data-dir") || a.starts_with("--history"));
    if name != "broker" || chosen {
        return None;
    }
    let dir = tempfile::Builder::new()
        .prefix("chat-test-broker-")
        .tempdir()
        .expect("a temporary directory");
    cmd.env("CHAT_DATA_DIR", dir.path());
    Some(dir)
}

impl Proc {
    /// Starts `name` with `args` and waits for `count` lines starting with a `listening on`
    /// line; returns the process and the addresses, in order.
    pub fn start(name: &str, args: &[&str], count: usize) -> (Proc, Vec<SocketAddr>) {
        Proc::start_in(&[], name, args, count)
    }

    /// Like [`Proc::start`], run through `wrapper` (e.g. `ip netns exec NS`, which execs
    /// the binary in place: the process is ours to signal and kill).
    pub fn start_in(
        wrapper: &[&str],
        name: &str,
        args: &[&str],
        count: usize,
    ) -> (Proc, Vec<SocketAddr>) {
        let mut cmd = match wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(bin(name));
                c
            }
            None => Command::new(bin(name)),
        };
        cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped());
        if !args.iter().any(|a| a.starts_with("--token")) {
            cmd.env("CHAT_TOKEN", TEST_TOKEN)
                .env_remove("CHAT_TOKEN_FILE");
        }
        if std::env::var_os("CHAT_TEST_LOG").is_none() {
            cmd.stderr(Stdio::null());
        }
        let data = own_data_dir(&mut cmd, name, args);
        let mut child = cmd.spawn().expect("spawn");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut proc = Proc {
            child,
            lines: rx,
            _data: data,
        };
        let mut addrs = Vec::new();
        while addrs.len() < count {
            let line = proc
                .next_line()
                .unwrap_or_else(|| panic!("{name} printed no listening line"));
            if let Some((_, addr)) = line.split_once("listening on ") {
                addrs.push(addr.trim().parse().expect("address"));
            }
        }
        (proc, addrs)
    }

    /// Starts `name` with `args` and a stdout nobody will ever read (closed at once), the
    /// way a service started with its output thrown away finds it.
    pub fn start_with_closed_stdout(name: &str, args: &[&str]) -> Proc {
        let mut cmd = Command::new(bin(name));
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let data = own_data_dir(&mut cmd, name, args);
        let mut child = cmd.spawn().expect("spawn");
        drop(child.stdout.take());
        let (_, lines) = mpsc::channel();
        Proc {
            child,
            lines,
            _data: data,
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The next stdout line, waiting at most [`TIMEOUT`].
    pub fn next_line(&mut self) -> Option<String> {
        self.lines.recv_timeout(TIMEOUT).ok()
    }

    /// Sends a signal (`libc::SIGTERM`, `libc::SIGKILL`, ...).
    pub fn signal(&self, sig: i32) {
        let pid = i32::try_from(self.child.id()).expect("pid");
        // SAFETY: kill(2) with a pid we own and a valid signal number has no memory effects.
        let rc = unsafe { libc::kill(pid, sig) };
        assert_eq!(rc, 0, "kill failed");
    }

    /// Waits for the process to exit; returns its exit code (None if killed by a signal).
    pub fn wait_exit(&mut self) -> Option<i32> {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status.code();
            }
            assert!(Instant::now() < deadline, "process did not exit in time");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback address with a port that was free a moment ago (for a process whose
/// `listening on` line cannot be read).
pub fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
}

/// A broker on an ephemeral port.
pub fn broker(extra: &[&str]) -> (Proc, SocketAddr) {
    let mut args = vec!["--listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let (p, a) = Proc::start("broker", &args, 1);
    (p, a[0])
}

/// The flags of a test server linked to `broker`: both ports on ephemeral loopback ports
/// unless `extra` gives `--listen` or `--text-listen`, then `extra`.
pub(crate) fn server_flags(broker: SocketAddr, extra: &[&str]) -> Vec<String> {
    let mut args = vec!["--broker".to_string(), broker.to_string()];
    for (flag, default) in [
        ("--listen", "127.0.0.1:0"),
        ("--text-listen", "127.0.0.1:0"),
    ] {
        if !extra.contains(&flag) {
            args.extend([flag.to_string(), default.to_string()]);
        }
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// A running server and its two ports.
pub struct Server {
    pub proc: Proc,
    pub json: SocketAddr,
    pub text: SocketAddr,
}

/// A server on ephemeral ports, linked to `broker`. `extra` may override `--listen` or
/// `--text-listen` (to restart a server on the port it had).
pub fn server(broker: SocketAddr, extra: &[&str]) -> Server {
    let args = server_flags(broker, extra);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (proc, a) = Proc::start("server", &args, 2);
    Server {
        proc,
        json: a[0],
        text: a[1],
    }
}

/// A server with a TLS port and a self-signed certificate written to `cert` (no line
/// port); returns the process, its plain JSON port and its TLS port.
pub fn tls_server(broker: SocketAddr, cert: &std::path::Path) -> (Proc, SocketAddr, SocketAddr) {
    let b = broker.to_string();
    let args = [
        "--broker",
        &b,
        "--listen",
        "127.0.0.1:0",
        "--text-listen",
        "off",
        "--tls-listen",
        "127.0.0.1:0",
        "--tls-self-signed",
        "--tls-cert",
        cert.to_str().expect("utf-8 path"),
    ];
    let (p, addrs) = Proc::start("server", &args, 2);
    (p, addrs[0], addrs[1])
}

/// A broker and one server.
pub fn system() -> (Proc, Server) {
    let (b, addr) = broker(&[]);
    let s = server(addr, &[]);
    (b, s)
}
