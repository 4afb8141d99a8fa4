//! Connection limits: in total, per source address, and for connections that have not
//! logged in yet per source address (PROTOCOL.md §6.9).
//!
//! Loopback is exempt from the per-address limits by default: load tests and a local
//! proxy all come from 127.0.0.1 (seed 000's ramp logs in 1,000+ clients from it). The
//! limit on unnamed connections is much smaller than the one on connections: a whole class
//! behind one NAT address fits, and one machine in it that opens connections and never
//! logs in (each lasts the login timeout) cannot take the others' places.
//!
//! A connection over a limit is not silently dropped: it gets one refusal (an error frame
//! on the JSON port, a line on the line port) and is closed. The default per-address limit
//! is generous, because a whole class may sit behind one NAT address; the total limit
//! keeps the server below its open-file limit, so it refuses politely instead of failing
//! `accept()` with EMFILE.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use chat_common::Refusal;
use netkit::metrics::{Counter, Gauge};
use tokio_util::sync::CancellationToken;

/// The limits; 0 means none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections in total.
    pub total: usize,
    /// Connections from one IP address.
    pub per_ip: usize,
    /// Connections from one IP address that have not logged in yet.
    pub unnamed_per_ip: usize,
    /// Whether loopback addresses are held to the per-address limits too.
    pub limit_loopback: bool,
}

#[derive(Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
    /// Per address, its unnamed connections, oldest first: an id and how to close it.
    unnamed: HashMap<IpAddr, VecDeque<(u64, CancellationToken)>>,
    next_id: u64,
}

/// Which listener a connection came in on, for the counts by port (README, "Metrics").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortName {
    /// The JSON port.
    Json,
    /// The line port.
    Line,
    /// The JSON port over TLS.
    Tls,
}

impl PortName {
    /// Every port, in the order they are exposed.
    pub const ALL: [PortName; 3] = [PortName::Json, PortName::Line, PortName::Tls];

    /// The `port` label.
    pub fn as_str(self) -> &'static str {
        match self {
            PortName::Json => "json",
            PortName::Line => "line",
            PortName::Tls => "tls",
        }
    }
}

/// The live connection counts, and the totals operators see by port.
pub struct ConnLimits {
    limits: Limits,
    counts: Mutex<Counts>,
    /// Connections accepted, by port (refused ones too).
    accepted: [Counter; 3],
    /// Connections open now, by port (counted without the lock).
    open: [Gauge; 3],
}

/// Held by a connection while it lives; dropping it gives its place back.
pub struct Admitted {
    owner: Arc<ConnLimits>,
    ip: IpAddr,
    /// The port it is counted open on, once [`Admitted::open_on`] said.
    port: Option<PortName>,
}

/// Held by a connection until it has logged in; dropping it gives its unnamed place back.
/// The default one belongs to no limits (tests).
#[derive(Default)]
pub struct Unnamed(Option<Box<UnnamedSlot>>);

struct UnnamedSlot {
    owner: Arc<ConnLimits>,
    ip: IpAddr,
    id: u64,
    evict: CancellationToken,
}

impl Unnamed {
    /// Resolves when this connection was closed to make room for a newer one from its
    /// address; never while it is not over a limit.
    pub async fn evicted(&self) {
        match &self.0 {
            Some(slot) => slot.evict.cancelled().await,
            None => std::future::pending().await,
        }
    }

    /// What the evicted connection is told.
    pub fn eviction(&self) -> Refusal {
        let (ip, limit) = self.0.as_ref().map_or((String::new(), 0), |s| {
            (s.ip.to_string(), s.owner.limits.unnamed_per_ip)
        });
        Refusal::TooManyLogins { ip, limit }
    }
}

fn decrement(map: &mut HashMap<IpAddr, usize>, ip: &IpAddr) {
    if let Some(n) = map.get_mut(ip) {
        *n -= 1;
        if *n == 0 {
            map.remove(ip);
        }
    }
}

/// Whether `ip` is a loopback address, IPv4 mapped into IPv6 included.
fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

impl ConnLimits {
    /// Limits with no connections yet.
    pub fn new(limits: Limits) -> Arc<Self> {
        Arc::new(ConnLimits {
            limits,
            counts: Mutex::new(Counts::default()),
            accepted: Default::default(),
            open: Default::default(),
        })
    }

    /// Counts a connection accepted on `port`, before the limits judge it.
    pub fn count_accepted(&self, port: PortName) {
        self.accepted[port as usize].inc();
    }

    /// Connections accepted on `port` so far, refused ones included.
    pub fn accepted(&self, port: PortName) -> u64 {
        self.accepted[port as usize].get()
    }

    /// Connections open on `port` now.
    pub fn open(&self, port: PortName) -> i64 {
        self.open[port as usize].get()
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts a new connection from `ip`, not logged in yet, or says why it cannot be let
    /// in.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<(Admitted, Unnamed), Refusal> {
        let mut c = self.counts();
        let Limits {
            total,
            per_ip,
            unnamed_per_ip,
            limit_loopback,
        } = self.limits;
        if total > 0 && c.total >= total {
            return Err(Refusal::ServerFull { limit: total });
        }
        let exempt = !limit_loopback && is_loopback(ip);
        let mine = c.per_ip.get(&ip).copied().unwrap_or(0);
        if !exempt && per_ip > 0 && mine >= per_ip {
            return Err(Refusal::TooManyConnections {
                ip: ip.to_string(),
                limit: per_ip,
            });
        }
        c.total += 1;
        c.per_ip.insert(ip, mine + 1);
        c.next_id += 1;
        let id = c.next_id;
        let evict = CancellationToken::new();
        let queue = c.unnamed.entry(ip).or_default();
        if !exempt && unnamed_per_ip > 0 && queue.len() >= unnamed_per_ip {
            // Room for the newcomer: the oldest of this address's unnamed connections goes.
            if let Some((_, oldest)) = queue.pop_front() {
                oldest.cancel();
            }
        }
        queue.push_back((id, evict.clone()));
        let admitted = Admitted {
            owner: self.clone(),
            ip,
            port: None,
        };
        let slot = UnnamedSlot {
            owner: self.clone(),
            ip,
            id,
            evict,
        };
        // Boxed: every connection's task carries this while it logs in, and most of
        // them for their whole life in the task's layout (docs/ARCHITECTURE.md, memory).
        Ok((admitted, Unnamed(Some(Box::new(slot)))))
    }

    /// Connections counted now (total, from `ip`).
    #[cfg(test)]
    pub fn current(&self, ip: IpAddr) -> (usize, usize) {
        let c = self.counts();
        (c.total, c.per_ip.get(&ip).copied().unwrap_or(0))
    }
}

impl Admitted {
    /// Counts this connection as open on `port` until it is dropped.
    pub fn open_on(&mut self, port: PortName) {
        if self.port.is_none() {
            self.owner.open[port as usize].inc();
            self.port = Some(port);
        }
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        if let Some(port) = self.port {
            self.owner.open[port as usize].dec();
        }
        let mut c = self.owner.counts();
        c.total = c.total.saturating_sub(1);
        decrement(&mut c.per_ip, &self.ip);
    }
}

impl Drop for Unnamed {
    fn drop(&mut self) {
        let Some(slot) = self.0.take() else { return };
        let mut c = slot.owner.counts();
        if let Some(queue) = c.unnamed.get_mut(&slot.ip) {
            // Gone already if it was evicted.
            queue.retain(|(id, _)| *id != slot.id);
            if queue.is_empty() {
                c.unnamed.remove(&slot.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn connections_are_counted_open_by_port_until_they_go() {
        let l = ConnLimits::new(Limits {
            total: 0,
            per_ip: 0,
            unnamed_per_ip: 0,
            limit_loopback: false,
        });
        for _ in 0..3 {
            l.count_accepted(PortName::Line);
        }
        let (mut a, _) = l.admit(ip(1)).unwrap();
        let (mut b, _) = l.admit(ip(1)).unwrap();
        a.open_on(PortName::Line);
        a.open_on(PortName::Line);
        b.open_on(PortName::Line);
        assert_eq!((l.accepted(PortName::Line), l.open(PortName::Line)), (3, 2));
        drop(a);
        assert_eq!(l.open(PortName::Line), 1, "once each");
        assert_eq!((l.accepted(PortName::Json), l.open(PortName::Json)), (0, 0));
        let (_never_opened, _) = l.admit(ip(2)).unwrap();
        drop(b);
        assert_eq!(l.open(PortName::Line), 0);
        let names: Vec<&str> = PortName::ALL.iter().map(|p| p.as_str()).collect();
        assert_eq!(names, ["json", "line", "tls"]);
        assert!(
            PortName::ALL
                .iter()
                .enumerate()
                .all(|(i, p)| *p as usize == i)
        );
    }

    #[test]
    fn per_address_limit_and_release() {
        let l = ConnLimits::new(Limits {
            total: 0,
            per_ip: 2,
            unnamed_per_ip: 0,
            limit_loopback: true,
        });
        let a1 = l.admit(ip(1)).unwrap();
        let _a2 = l.admit(ip(1)).unwrap();
        let refused = l.admit(ip(1)).err().unwrap();
        assert_eq!(
            refused,
            Refusal::TooManyConnections {
                ip: "10.0.0.1".into(),
                limit: 2
            }
        );
        assert!(
            refused
                .to_string()
                .contains("too many connections from 10.0.0.1"),
            "{refused:?}"
        );
        let _b1 = l.admit(ip(2)).expect("another address is not affected");
        drop(a1);
        let _a3 = l.admit(ip(1)).expect("a place came free");
        assert_eq!(l.current(ip(1)), (3, 2));
    }

    #[test]
    fn total_limit() {
        let l = ConnLimits::new(Limits {
            total: 2,
            per_ip: 0,
            unnamed_per_ip: 0,
            limit_loopback: true,
        });
        let _a = l.admit(ip(1)).unwrap();
        let b = l.admit(ip(2)).unwrap();
        let full = l.admit(ip(3)).err().unwrap();
        assert_eq!(full, Refusal::ServerFull { limit: 2 });
        assert!(full.to_string().contains("server is full"));
        drop(b);
        assert!(l.admit(ip(3)).is_ok());
    }

    #[test]
    fn zero_means_no_limit_and_counts_vanish() {
        let l = ConnLimits::new(Limits {
            total: 0,
            per_ip: 0,
            unnamed_per_ip: 0,
            limit_loopback: true,
        });
        let held: Vec<_> = (0..1000).map(|_| l.admit(ip(1)).unwrap()).collect();
        assert_eq!(l.current(ip(1)), (1000, 1000));
        drop(held);
        assert_eq!(l.current(ip(1)), (0, 0));
        assert!(l.counts().per_ip.is_empty(), "no entry left per address");
    }

    #[test]
    fn loopback_is_exempt_from_the_per_address_limits_by_default() {
        let limits = Limits {
            total: 0,
            per_ip: 2,
            unnamed_per_ip: 1,
            limit_loopback: false,
        };
        let l = ConnLimits::new(limits);
        for lo in [
            IpAddr::from([127, 0, 0, 1]),
            IpAddr::from([127, 9, 9, 9]),
            "::1".parse().unwrap(),
            "::ffff:127.0.0.1".parse().unwrap(),
        ] {
            let held: Vec<_> = (0..1000).map(|_| l.admit(lo).unwrap()).collect();
            assert_eq!(held.len(), 1000, "{lo}");
        }
        assert!(l.admit(ip(1)).is_ok());
        // Held to them when asked.
        let l = ConnLimits::new(Limits {
            limit_loopback: true,
            ..limits
        });
        let _first = l.admit(IpAddr::from([127, 0, 0, 1])).unwrap();
        let _second = l.admit(IpAddr::from([127, 0, 0, 1])).unwrap();
        assert!(l.admit(IpAddr::from([127, 0, 0, 1])).is_err());
    }

    #[test]
    fn unnamed_connections_of_one_address_cannot_lock_the_others_out() {
        let l = ConnLimits::new(Limits {
            total: 0,
            per_ip: 256,
            unnamed_per_ip: 32,
            limit_loopback: true,
        });
        // One machine behind the NAT address opens connections and never logs in.
        let idle: Vec<_> = (0..40).map(|_| l.admit(ip(1)).unwrap()).collect();
        // The newest 32 are still waiting; the oldest 8 were told to go.
        let evicted = idle
            .iter()
            .filter(|(_, u)| u.0.as_ref().is_some_and(|s| s.evict.is_cancelled()))
            .count();
        assert_eq!(evicted, 8);
        assert!(
            idle[..8]
                .iter()
                .all(|(_, u)| u.0.as_ref().unwrap().evict.is_cancelled())
        );
        assert_eq!(
            idle[0].1.eviction(),
            Refusal::TooManyLogins {
                ip: "10.0.0.1".into(),
                limit: 32
            }
        );
        // A real user behind the same address gets in, and logs in (its unnamed place is
        // given back) before 32 newer ones could push it out.
        let (user, unnamed) = l.admit(ip(1)).expect("never refused for unnamed ones");
        assert!(!unnamed.0.as_ref().unwrap().evict.is_cancelled());
        drop(unnamed);
        drop(idle);
        assert!(l.counts().unnamed.is_empty(), "no entry left per address");
        assert_eq!(l.current(ip(1)), (1, 1));
        drop(user);
    }
}
