//! A real `nats-server` cluster with JetStream for tests of the NATS backend: one node or
//! several with routes between all, on loopback ports that were free, in a temporary
//! directory kept until the cluster is dropped (so a restarted node finds its store).
//! Every node is killed when the cluster is dropped, a test's panic included.
//!
//! Readiness is read from each node's monitoring port (`monitor.rs` says which fields of
//! nats-server 2.9.10 tell what); [`request`] speaks just enough of the client protocol to
//! call the JetStream API from a test.
//!
//! Tests skip (with a printed notice) unless [`available`]: `.ci/run` and
//! `scripts/nats-cluster.sh` install the Debian package `nats-server`.

mod client;
mod monitor;
mod node;

use std::path::PathBuf;
use std::time::{Duration, Instant};

pub use client::request;
use monitor::Probe;
use node::Node;

/// How long a cluster may take to become ready. Longer than [`crate::TIMEOUT`]: after
/// its leader is killed, a raft group waits out a randomised election timeout (seconds in
/// 2.9.10) before it elects another, and a split vote starts that over.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How many sets of ports [`NatsCluster::start`] tries: another process may bind a port
/// between our choosing it and the server binding it.
const START_ATTEMPTS: usize = 4;

/// How often a wait looks at the monitoring ports again.
const POLL: Duration = Duration::from_millis(100);

/// The `nats-server` binary: the first on `PATH`, else Debian's `/usr/sbin/nats-server`
/// (`/usr/sbin` is not on every user's `PATH`).
pub fn binary() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join("nats-server"));
    on_path
        .chain([PathBuf::from("/usr/sbin/nats-server")])
        .find(|p| p.is_file())
}

/// Is nats-server installed (on PATH or /usr/sbin)?
pub fn available() -> bool {
    binary().is_some()
}

/// Whether a test on NATS must skip: true, with a notice on stderr, where nats-server is
/// not installed (CI installs it, so there it never skips).
pub fn skip() -> bool {
    if available() {
        return false;
    }
    eprintln!("skipped: nats-server is not installed (apt-get install nats-server)");
    true
}

/// Why a wait ended without its condition.
enum Stop {
    /// Node `i`'s process exited.
    Exited(usize),
    /// The deadline passed; what was still missing.
    Timeout(String),
}

/// A local NATS cluster with JetStream, on loopback ports, temporary storage; every node
/// killed on drop.
pub struct NatsCluster {
    // Declared before `dir`, so dropped (killed) before their directories are removed.
    nodes: Vec<Node>,
    binary: PathBuf,
    dir: tempfile::TempDir,
}

impl NatsCluster {
    /// Starts `n` nodes (1: a single JetStream server, no cluster; 3: a cluster with
    /// routes between all, JetStream clustered) and waits (deadline) until JetStream is
    /// ready to create replicated streams (for n=3: meta leader elected, all peers
    /// current). Panics if nats-server is not installed: check [`available`] first.
    pub fn start(n: usize) -> NatsCluster {
        assert!(n >= 1, "a cluster needs a node");
        let binary = binary().expect("nats-server is not installed (see testkit::nats)");
        let dir = tempfile::Builder::new()
            .prefix("chat-test-nats-")
            .tempdir()
            .expect("a temporary directory");
        let mut cluster = NatsCluster {
            nodes: Vec::new(),
            binary,
            dir,
        };
        for attempt in 1..=START_ATTEMPTS {
            let ports = node::free_ports(n);
            // Assigning drops (kills) the nodes of a failed attempt.
            cluster.nodes = (0..n)
                .map(|i| {
                    let routes: Vec<u16> = (0..n)
                        .filter(|&j| j != i)
                        .map(|j| ports[j].cluster)
                        .collect();
                    Node::new(cluster.dir.path(), i, ports[i], &routes)
                })
                .collect();
            for node in &mut cluster.nodes {
                node.spawn(&cluster.binary);
            }
            match cluster.wait_for(|c| monitor::ready(&c.probes())) {
                Ok(()) => return cluster,
                Err(Stop::Exited(i))
                    if attempt < START_ATTEMPTS && cluster.nodes[i].port_conflict() =>
                {
                    eprintln!(
                        "testkit::nats: {} lost a port to another process; new ports",
                        cluster.nodes[i].name
                    );
                }
                Err(stop) => cluster.fail("JetStream ready after start", stop),
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    /// `nats://127.0.0.1:PORT` per node, in node order.
    pub fn urls(&self) -> Vec<String> {
        (0..self.nodes.len()).map(|i| self.url(i)).collect()
    }

    /// Node `i`'s client URL.
    pub fn url(&self, i: usize) -> String {
        format!("nats://{}", self.nodes[i].client_addr())
    }

    /// All client URLs, comma-separated, for `server --nats`.
    pub fn urls_joined(&self) -> String {
        self.urls().join(",")
    }

    /// Node `i`'s monitoring URL, `http://127.0.0.1:MPORT` (`/healthz`, `/jsz`, `/varz`...).
    pub fn monitor_url(&self, i: usize) -> String {
        format!("http://{}", self.nodes[i].http_addr())
    }

    /// Node `i`'s log file (its stderr, across restarts).
    pub fn log_path(&self, i: usize) -> PathBuf {
        self.nodes[i].log_path()
    }

    /// SIGKILLs node `i` and waits until the process is gone.
    pub fn kill(&mut self, i: usize) {
        self.nodes[i].kill();
    }

    /// Starts node `i` again (it must have been killed) on the same ports and the same
    /// store; waits until it serves clients and has rejoined: with every node back,
    /// until JetStream is ready ([`NatsCluster::wait_ready`]); otherwise until it has
    /// routes to every node that can answer and, if those make a majority, JetStream
    /// reports it healthy (in contact with the meta leader, caught up).
    pub fn restart(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        assert!(!node.is_running(), "restart({i}): {} still runs", node.name);
        node.kill(); // reaps it if it died on its own, so that it can be spawned
        node.spawn(&self.binary);
        let all_live = self.nodes.iter().all(Node::is_live);
        let waited = if all_live {
            self.wait_for(|c| monitor::ready(&c.probes()))
        } else {
            self.wait_for(|c| c.rejoined(i))
        };
        if let Err(stop) = waited {
            self.fail(&format!("{} back after restart", self.nodes[i].name), stop);
        }
    }

    /// SIGKILLs every node that runs.
    pub fn kill_all(&mut self) {
        for node in &mut self.nodes {
            node.kill();
        }
    }

    /// Starts every node that is not running (after [`NatsCluster::kill_all`]: all) on
    /// their ports and stores, and waits until JetStream is ready again.
    pub fn restart_all(&mut self) {
        for node in &mut self.nodes {
            if !node.is_running() {
                node.kill(); // reaps one that died on its own, so it can be spawned
                node.spawn(&self.binary);
            }
        }
        if let Err(stop) = self.wait_for(|c| monitor::ready(&c.probes())) {
            self.fail("JetStream ready after restart_all", stop);
        }
    }

    /// SIGSTOPs node `i` and waits until the kernel has stopped it: it keeps its sockets
    /// but answers nothing, as a node that hangs or is cut off.
    pub fn stop_node(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        node.signal(libc::SIGSTOP);
        node.stopped = true;
        let deadline = Instant::now() + crate::TIMEOUT;
        while node.proc_state() != Some('T') {
            assert!(Instant::now() < deadline, "{} did not stop", node.name);
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGCONTs node `i` (after [`NatsCluster::stop_node`]) and waits until its
    /// monitoring port answers again.
    pub fn cont_node(&mut self, i: usize) {
        self.nodes[i].signal(libc::SIGCONT);
        self.nodes[i].stopped = false;
        let addr = self.nodes[i].http_addr();
        if let Err(stop) = self.wait_for(|_| monitor::get(addr, "/healthz").map(|_| ())) {
            self.fail(
                &format!("{} answering after SIGCONT", self.nodes[i].name),
                stop,
            );
        }
    }

    /// Waits (deadline) until JetStream is ready on every node: for a cluster, a meta
    /// leader all nodes name, which counts every other peer current. Every node must be
    /// running; panics with the monitoring output and the logs' tails if not ready.
    pub fn wait_ready(&self) {
        if let Err(stop) = self.wait_for(|c| monitor::ready(&c.probes())) {
            self.fail("JetStream ready", stop);
        }
    }

    /// The index of the JetStream meta leader, if a live node says it is the leader.
    /// After the leader is killed the others name it for seconds still; this asks the
    /// leader itself.
    pub fn meta_leader(&self) -> Option<usize> {
        self.nodes
            .iter()
            .position(|node| node.is_live() && Probe::take(&node.name, node.http_addr()).leads())
    }

    /// Waits (deadline) until a live node is the meta leader (after the leader was
    /// killed: until the others have elected one); returns its index.
    pub fn wait_meta_leader(&self) -> usize {
        let mut found = None;
        let waited = self.wait_for(|c| {
            found = c.meta_leader();
            found
                .map(|_| ())
                .ok_or_else(|| "no live node leads".to_string())
        });
        match (waited, found) {
            (Ok(()), Some(i)) => i,
            (Err(stop), _) => self.fail("a meta leader", stop),
            (Ok(()), None) => unreachable!("the check passed with a leader"),
        }
    }

    /// What each live node's monitoring port says now.
    fn probes(&self) -> Vec<Probe> {
        self.nodes
            .iter()
            .map(|n| Probe::take(&n.name, n.http_addr()))
            .collect()
    }

    /// Whether node `i` serves clients, has routes to every other node that can answer,
    /// and, if those are a majority, is healthy in the JetStream sense.
    fn rejoined(&self, i: usize) -> Result<(), String> {
        let node = &self.nodes[i];
        client::greets(node.client_addr())
            .map_err(|e| format!("{} client port: {e}", node.name))?;
        let live = self.nodes.iter().filter(|n| n.is_live()).count();
        if self.nodes.len() > 1 {
            let routes = monitor::routes(node.http_addr())?;
            if routes < live - 1 {
                return Err(format!("{} has {routes} routes of {}", node.name, live - 1));
            }
        }
        if 2 * live > self.nodes.len() {
            Probe::take(&node.name, node.http_addr()).healthy()?;
        }
        Ok(())
    }

    /// Polls `check` every [`POLL`] until it passes, a started node exits, or
    /// [`READY_TIMEOUT`] passes.
    fn wait_for(&self, mut check: impl FnMut(&Self) -> Result<(), String>) -> Result<(), Stop> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(i) = self.nodes.iter().position(Node::has_exited) {
                return Err(Stop::Exited(i));
            }
            let missing = match check(self) {
                Ok(()) => return Ok(()),
                Err(missing) => missing,
            };
            if Instant::now() >= deadline {
                return Err(Stop::Timeout(missing));
            }
            std::thread::sleep(POLL);
        }
    }

    /// Panics with what was awaited, why it failed, every node's monitoring output and
    /// the tail of every node's log.
    fn fail(&self, what: &str, stop: Stop) -> ! {
        let why = match stop {
            Stop::Exited(i) => format!("{} exited", self.nodes[i].name),
            Stop::Timeout(missing) => format!("not after {READY_TIMEOUT:?}: {missing}"),
        };
        let mut text = format!("testkit::nats: waiting for {what}: {why}\n");
        for (node, probe) in self.nodes.iter().zip(self.probes()) {
            let state = if node.stopped {
                "stopped"
            } else if node.is_running() {
                "running"
            } else {
                "not running"
            };
            text.push_str(&format!(
                "--- {} ({state}, client {}, cluster {}, http {})\n{}\n--- {} log ({}):\n{}\n",
                node.name,
                node.ports.client,
                node.ports.cluster,
                node.ports.http,
                probe.report(),
                node.name,
                node.log_path().display(),
                node.log_tail(30)
            ));
        }
        panic!("{text}");
    }
}
