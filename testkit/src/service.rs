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

    /// The flags that put a server on this service.
    fn flags<'a>(&'a self, nats: &'a str, extra: &[&'a str]) -> (SocketAddr, Vec<&'a str>) {
        let mut flags = Vec::new();
        let addr = match self {
            Service::Broker(b) => b.addr,
            Service::BrokerProc(_, a) => *a,
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
                    if !$crate::nats::available() {
                        eprintln!("skipped: nats-server is not installed");
                        return;
                    }
                    super::$name($crate::service::Kind::Nats)
                }
            )*
        }
    };
}
