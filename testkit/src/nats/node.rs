//! One `nats-server` process of a [`super::NatsCluster`]: its ports, its directory (store,
//! config, log), and its process, killed when the node is dropped.

use std::fs::OpenOptions;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::TIMEOUT;

/// The three loopback ports a node listens on.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ports {
    pub client: u16,
    pub cluster: u16,
    pub http: u16,
}

/// `n` sets of ports that were free a moment ago, all different: every listener is held
/// until all are chosen, so the kernel cannot hand out one port twice. They are released
/// before the servers bind them, so another process may take one meanwhile; the cluster
/// retries its start when that happens.
pub(crate) fn free_ports(n: usize) -> Vec<Ports> {
    let listeners: Vec<TcpListener> = (0..3 * n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("a free loopback port"))
        .collect();
    let port = |l: &TcpListener| l.local_addr().expect("local address").port();
    listeners
        .chunks(3)
        .map(|c| Ports {
            client: port(&c[0]),
            cluster: port(&c[1]),
            http: port(&c[2]),
        })
        .collect()
}

/// A node: how to start it, and its process while it runs.
pub(crate) struct Node {
    pub name: String,
    pub ports: Ports,
    /// Holds the config, the log and the store (`store/`); kept across restarts.
    pub dir: PathBuf,
    /// Behind a lock so that `&self` can ask whether it still runs (`try_wait` needs
    /// `&mut`), as a readiness wait does.
    child: Mutex<Option<Child>>,
    /// SIGSTOPped: alive, but answers nothing.
    pub stopped: bool,
}

impl Node {
    /// A node named `n{index}` in a fresh `root/n{index}` (emptied if a failed start left
    /// one), with its config written there; `routes` are the cluster ports of the other
    /// nodes (none: a single server, no cluster block).
    pub fn new(root: &Path, index: usize, ports: Ports, routes: &[u16]) -> Node {
        let name = format!("n{index}");
        let dir = root.join(&name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("store")).expect("node directory");
        let node = Node {
            name,
            ports,
            dir,
            child: Mutex::new(None),
            stopped: false,
        };
        std::fs::write(node.config_path(), node.config(routes)).expect("write nats config");
        node
    }

    fn config_path(&self) -> PathBuf {
        self.dir.join("nats.conf")
    }

    /// The node's log: the server's stderr, appended to by every start.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("nats.log")
    }

    /// The config file's text. Paths are written as JSON strings, which the NATS config
    /// parser reads as quoted strings with the same escapes.
    fn config(&self, routes: &[u16]) -> String {
        let store = self.dir.join("store");
        let store = serde_json::to_string(&store.to_string_lossy()).expect("a path as JSON");
        let mut text = format!(
            "server_name: {name}\n\
             listen: 127.0.0.1:{client}\n\
             http: 127.0.0.1:{http}\n\
             jetstream {{\n  store_dir: {store}\n  max_memory_store: 256MB\n  max_file_store: 1GB\n}}\n",
            name = self.name,
            client = self.ports.client,
            http = self.ports.http,
        );
        if !routes.is_empty() {
            let routes: Vec<String> = routes
                .iter()
                .map(|p| format!("nats-route://127.0.0.1:{p}"))
                .collect();
            text.push_str(&format!(
                "cluster {{\n  name: testkit\n  listen: 127.0.0.1:{}\n  routes: [{}]\n}}\n",
                self.ports.cluster,
                routes.join(", ")
            ));
        }
        text
    }

    /// The client address, for a TCP connection.
    pub fn client_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.ports.client))
    }

    /// The monitoring address.
    pub fn http_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.ports.http))
    }

    /// Starts the process (it must not be running), its output appended to the log.
    pub fn spawn(&mut self, binary: &Path) {
        assert!(self.child().is_none(), "{} is already running", self.name);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open nats log");
        let err = log.try_clone().expect("clone log handle");
        let child = Command::new(binary)
            .arg("-c")
            .arg(self.config_path())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", binary.display()));
        *self.child() = Some(child);
        self.stopped = false;
    }

    /// The process, if started and not killed. A panic while the lock was held cannot
    /// leave the `Option` half-written, so a poisoned lock is used as it is.
    fn child(&self) -> MutexGuard<'_, Option<Child>> {
        self.child.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the process runs (a stopped one counts: it is still there).
    pub fn is_running(&self) -> bool {
        self.child()
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Whether it runs and is not stopped: whether it can answer.
    pub fn is_live(&self) -> bool {
        !self.stopped && self.is_running()
    }

    /// Whether the process was started and has exited on its own (not by [`Node::kill`]).
    pub fn has_exited(&self) -> bool {
        self.child()
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(Some(_))))
    }

    /// SIGKILL, then waits (deadline) until the process is reaped. SIGKILL also ends a
    /// stopped process, so this never waits for a SIGCONT.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child().take() {
            let pid = child.id();
            assert!(
                kill_and_reap(&mut child),
                "{} (pid {pid}) did not die after SIGKILL",
                self.name
            );
        }
        self.stopped = false;
    }

    /// Sends `sig` to the running process.
    pub fn signal(&self, sig: i32) {
        let pid = self
            .child()
            .as_ref()
            .map(Child::id)
            .unwrap_or_else(|| panic!("{} is not running", self.name));
        let pid = i32::try_from(pid).expect("pid");
        // SAFETY: kill(2) with a pid we own and a valid signal number has no memory effects.
        let rc = unsafe { libc::kill(pid, sig) };
        assert_eq!(rc, 0, "kill({pid}, {sig}) failed");
    }

    /// The process's state letter in `/proc/PID/stat` (`T`: stopped), if it runs.
    pub fn proc_state(&self) -> Option<char> {
        let pid = self.child().as_ref().map(Child::id)?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // "PID (COMM) STATE ...": COMM may hold spaces and parentheses; it ends at the last ')'.
        stat.rsplit_once(')')?.1.trim_start().chars().next()
    }

    /// The last `lines` lines of the log, for a failure message.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Whether the log says a port was taken (another process bound it after
    /// [`free_ports`] released it).
    pub fn port_conflict(&self) -> bool {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        text.contains("address already in use")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut child) = self.child().take() {
            // Nothing to do if it outlives the deadline: a panic here would abort the test.
            let _ = kill_and_reap(&mut child);
        }
    }
}

/// SIGKILL, then polls until the process is reaped, at most [`TIMEOUT`]; whether it was.
fn kill_and_reap(child: &mut Child) -> bool {
    let _ = child.kill();
    let deadline = Instant::now() + TIMEOUT;
    while Instant::now() < deadline {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => return true,
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    false
}
