//! The chat service a test runs its servers on: the broker, or a NATS cluster with
//! JetStream (`server --nats`, README "Scaling out"). Tests written against [`Service`]
//! run on both: [`crate::on_both_backends`] makes one test of each per function.

use std::net::SocketAddr;
use std::time::Duration;

use crate::inproc;
use crate::nats::NatsCluster;

/// Which backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The broker process (in-process for [`Service::server`]).
    Broker,
    /// A one-node NATS server with JetStream.
    Nats,
    /// A three-node NATS cluster, everything replicated three times.
    NatsR3,
}

/// A running chat service; stopped when dropped.
pub enum Service {
    /// A broker in this process.
    Broker(inproc::Broker),
    /// A broker process (for tests that also run servers as processes).
    BrokerProc(crate::Proc, SocketAddr),
    /// A broker process with a data directory of its own, which can be killed and started
    /// again on it.
    Durable {
        /// The process, if running.
        proc: Option<crate::Proc>,
        /// Its address.
        addr: SocketAddr,
        /// Its flags.
        flags: Vec<String>,
        /// Its data directory.
        _data: tempfile::TempDir,
    },
    /// A NATS cluster.
    Nats(NatsCluster),
}

impl Service {
    /// The service of `kind`; `processes` starts a broker as a process (for tests whose
    /// servers are processes too: they kill or freeze them).
    pub fn start(kind: Kind, processes: bool) -> Service {
        match kind {
            Kind::Broker if processes => {
                let (p, addr) = crate::broker(&[]);
                Service::BrokerProc(p, addr)
            }
            Kind::Broker => Service::Broker(inproc::broker(&[]).0),
            Kind::Nats => Service::Nats(NatsCluster::start(1)),
            Kind::NatsR3 => Service::Nats(NatsCluster::start(3)),
        }
    }

    /// Like [`Service::start`] with processes, and able to [`Service::kill_and_restart`]:
    /// the broker gets a data directory of its own (and 200 ms heartbeats, so servers find
    /// it gone quickly).
    pub fn start_restartable(kind: Kind) -> Service {
        if kind != Kind::Broker {
            return Service::start(kind, true);
        }
        let data = tempfile::tempdir().expect("a directory");
        let dir = data.path().to_str().expect("utf-8").to_string();
        let addr = crate::free_addr();
        let flags: Vec<String> = [
            "--listen",
            &addr.to_string(),
            "--data-dir",
            &dir,
            "--heartbeat-ms",
            "200",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let args: Vec<&str> = flags.iter().map(String::as_str).collect();
        let (proc, _) = crate::Proc::start("broker", &args, 1);
        Service::Durable {
            proc: Some(proc),
            addr,
            flags,
            _data: data,
        }
    }

    /// SIGKILLs the whole service (the broker, or every NATS node) and starts it again on
    /// what it stored; returns once it serves again (servers find it by themselves).
    pub fn kill_and_restart(&mut self) {
        match self {
            Service::Durable { proc, flags, .. } => {
                if let Some(p) = proc.take() {
                    p.signal(libc::SIGKILL);
                }
                let args: Vec<&str> = flags.iter().map(String::as_str).collect();
                *proc = Some(crate::Proc::start("broker", &args, 1).0);
            }
            Service::Nats(c) => {
                c.kill_all();
                c.restart_all();
            }
            _ => panic!("not a restartable service"),
        }
    }

    /// The flags that put a server on this service.
    fn flags<'a>(&'a self, nats: &'a str, extra: &[&'a str]) -> (SocketAddr, Vec<&'a str>) {
        let mut flags = Vec::new();
        let addr = match self {
            Service::Broker(b) => b.addr,
            Service::BrokerProc(_, a) | Service::Durable { addr: a, .. } => *a,
            Service::Nats(_) => {
                flags.extend(["--nats", nats]);
                // Never dialled with `--nats`.
                ([127, 0, 0, 1], 9).into()
            }
        };
        flags.extend_from_slice(extra);
        (addr, flags)
    }

    fn nats_urls(&self) -> String {
        match self {
            Service::Nats(c) => c.urls_joined(),
            _ => String::new(),
        }
    }

    /// A server on it, in this process, with `extra` flags.
    pub fn server(&self, extra: &[&str]) -> inproc::Server {
        let urls = self.nats_urls();
        let (addr, flags) = self.flags(&urls, extra);
        inproc::server(addr, &flags)
    }

    /// A server on it as a process, with `extra` flags.
    pub fn server_proc(&self, extra: &[&str]) -> crate::Server {
        let urls = self.nats_urls();
        let (addr, flags) = self.flags(&urls, extra);
        crate::server(addr, &flags)
    }

    /// Within how long the users of a server that died are announced as gone: the broker
    /// sees its link break (or three missed heartbeats); a NATS cluster, its beats stop
    /// (README, "Scaling out").
    pub fn death_bound(&self) -> Duration {
        match self {
            Service::Nats(_) => Duration::from_secs(5),
            _ => Duration::from_secs(2),
        }
    }

    /// The NATS cluster, if it is one.
    pub fn cluster(&mut self) -> Option<&mut NatsCluster> {
        match self {
            Service::Nats(c) => Some(c),
            _ => None,
        }
    }
}

/// Makes, for each named function `fn f(kind: Kind)`, a test `broker::f` and a test
/// `nats::f` (skipped, with a notice, where nats-server is not installed).
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod broker {
            $(
                #[test]
                fn $name() {
                    super::$name($crate::service::Kind::Broker)
                }
            )*
        }
        mod nats {
            $(
                #[test]
                fn $name() {
                    if $crate::nats::skip() {
                        return;
                    }
                    super::$name($crate::service::Kind::Nats)
                }
            )*
        }
    };
}
