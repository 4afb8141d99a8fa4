//! Connection limits: in total, and per source address.
//!
//! A connection over a limit is not silently dropped: it gets one refusal (an error frame
//! on the JSON port, a line on the line port) and is closed. The default per-address limit
//! is generous, because a whole class may sit behind one NAT address; the total limit
//! keeps the server below its open-file limit, so it refuses politely instead of failing
//! `accept()` with EMFILE.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use chat_common::Refusal;

/// The limits; 0 means none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections in total.
    pub total: usize,
    /// Connections from one IP address.
    pub per_ip: usize,
}

#[derive(Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// The live connection counts.
pub struct ConnLimits {
    limits: Limits,
    counts: Mutex<Counts>,
}

/// Held by a connection while it lives; dropping it gives its place back.
pub struct Admitted {
    owner: Arc<ConnLimits>,
    ip: IpAddr,
}

impl ConnLimits {
    /// Limits with no connections yet.
    pub fn new(limits: Limits) -> Arc<Self> {
        Arc::new(ConnLimits {
            limits,
            counts: Mutex::new(Counts::default()),
        })
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts a new connection from `ip`, or says why it cannot be let in.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Admitted, Refusal> {
        let mut c = self.counts();
        let Limits { total, per_ip } = self.limits;
        if total > 0 && c.total >= total {
            return Err(Refusal::ServerFull { limit: total });
        }
        let mine = c.per_ip.get(&ip).copied().unwrap_or(0);
        if per_ip > 0 && mine >= per_ip {
            return Err(Refusal::TooManyConnections {
                ip: ip.to_string(),
                limit: per_ip,
            });
        }
        c.total += 1;
        c.per_ip.insert(ip, mine + 1);
        Ok(Admitted {
            owner: self.clone(),
            ip,
        })
    }

    /// Connections counted now (total, from `ip`).
    #[cfg(test)]
    pub fn current(&self, ip: IpAddr) -> (usize, usize) {
        let c = self.counts();
        (c.total, c.per_ip.get(&ip).copied().unwrap_or(0))
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut c = self.owner.counts();
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                c.per_ip.remove(&self.ip);
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
    fn per_address_limit_and_release() {
        let l = ConnLimits::new(Limits {
            total: 0,
            per_ip: 2,
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
        });
        let held: Vec<_> = (0..1000).map(|_| l.admit(ip(1)).unwrap()).collect();
        assert_eq!(l.current(ip(1)), (1000, 1000));
        drop(held);
        assert_eq!(l.current(ip(1)), (0, 0));
        assert!(l.counts().per_ip.is_empty(), "no entry left per address");
    }
}
