//! The values behind the families: counters, gauges and histograms of durations, each a
//! few atomics updated with `Relaxed` ordering (a scrape needs no ordering between them),
//! so that counting on a hot path costs one uncontended-cache-line add and never a lock or
//! an allocation.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Buckets for latencies on a LAN or loopback, in seconds: 100 µs to 10 s, about three
/// per decade (what a round trip through the broker or a history query takes, from
/// unloaded to badly congested).
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// A count that only goes up (a Prometheus counter).
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Zero.
    pub const fn new() -> Counter {
        Counter(AtomicU64::new(0))
    }

    /// Adds one.
    pub fn inc(&self) {
        self.add(1);
    }

    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Relaxed);
    }

    /// Takes the total of a count kept elsewhere (a task's own plain integer, published
    /// once per batch); never goes back, so a stale total cannot make the counter drop.
    pub fn mirror(&self, total: u64) {
        self.0.fetch_max(total, Relaxed);
    }

    /// The count now.
    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// A value that goes up and down (a Prometheus gauge).
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    /// Zero.
    pub const fn new() -> Gauge {
        Gauge(AtomicI64::new(0))
    }

    /// Sets the value.
    pub fn set(&self, v: i64) {
        self.0.store(v, Relaxed);
    }

    /// Adds one.
    pub fn inc(&self) {
        self.0.fetch_add(1, Relaxed);
    }

    /// Takes one away.
    pub fn dec(&self) {
        self.0.fetch_sub(1, Relaxed);
    }

    /// The value now.
    pub fn get(&self) -> i64 {
        self.0.load(Relaxed)
    }
}

/// A histogram of durations with fixed buckets, exposed in seconds.
///
/// Each observation is two atomic adds (its bucket and the sum); the buckets are counted
/// one by one and made cumulative only when scraped.
#[derive(Debug)]
pub struct Histogram {
    /// Upper bounds in seconds, ascending, as exposed (`le`).
    bounds: Vec<f64>,
    /// The same bounds in nanoseconds, for comparing without floating point.
    bounds_ns: Vec<u64>,
    /// One count per bound, then one for what is above every bound (`+Inf`).
    counts: Box<[AtomicU64]>,
    sum_ns: AtomicU64,
}

/// What a histogram holds at one moment, as the exposition needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// Each upper bound in seconds with the observations at or below it (cumulative).
    pub buckets: Vec<(f64, u64)>,
    /// Every observation (the `+Inf` bucket).
    pub count: u64,
    /// Their sum, in seconds.
    pub sum: f64,
}

impl Histogram {
    /// A histogram with these upper bounds, in seconds. Bounds that are not finite,
    /// positive and ascending are left out, so a histogram is always well formed.
    pub fn new(bounds: &[f64]) -> Histogram {
        let mut kept: Vec<f64> = Vec::with_capacity(bounds.len());
        for &b in bounds {
            if b.is_finite() && b > 0.0 && kept.last().is_none_or(|&last| b > last) {
                kept.push(b);
            }
        }
        // Saturating float-to-int casts: a bound past u64 nanoseconds (584 years) is u64::MAX.
        let bounds_ns = kept.iter().map(|b| (b * 1e9).round() as u64).collect();
        let counts = (0..=kept.len()).map(|_| AtomicU64::new(0)).collect();
        Histogram {
            bounds: kept,
            bounds_ns,
            counts,
            sum_ns: AtomicU64::new(0),
        }
    }

    /// A histogram with [`LATENCY_BUCKETS`].
    pub fn latency() -> Histogram {
        Histogram::new(LATENCY_BUCKETS)
    }

    /// Counts one duration.
    pub fn observe(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        // The first bound at or above the value (`le` is inclusive).
        let i = self.bounds_ns.partition_point(|&b| b < ns);
        if let Some(c) = self.counts.get(i) {
            c.fetch_add(1, Relaxed);
        }
        self.sum_ns.fetch_add(ns, Relaxed);
    }

    /// Observations so far (all buckets).
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Relaxed)).sum()
    }

    /// The buckets, cumulative, with the count and the sum. The count is the sum of the
    /// buckets read, so `+Inf` always equals it even while others observe.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut total = 0u64;
        let mut buckets = Vec::with_capacity(self.bounds.len());
        for (i, c) in self.counts.iter().enumerate() {
            total = total.saturating_add(c.load(Relaxed));
            if let Some(&bound) = self.bounds.get(i) {
                buckets.push((bound, total));
            }
        }
        HistogramSnapshot {
            buckets,
            count: total,
            sum: self.sum_ns.load(Relaxed) as f64 / 1e9,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_gauges_count() {
        let c = Counter::new();
        c.inc();
        c.add(4);
        assert_eq!(c.get(), 5);
        c.mirror(3);
        assert_eq!(c.get(), 5, "a mirrored total never takes a counter back");
        c.mirror(9);
        assert_eq!(c.get(), 9);
        let g = Gauge::new();
        g.inc();
        g.inc();
        g.dec();
        assert_eq!(g.get(), 1);
        g.set(-3);
        assert_eq!(g.get(), -3);
    }

    #[test]
    fn a_histogram_counts_each_value_in_the_first_bucket_that_holds_it() {
        let h = Histogram::new(&[0.001, 0.01, 0.1]);
        h.observe(Duration::from_micros(500));
        h.observe(Duration::from_millis(1)); // on the bound: `le` includes it
        h.observe(Duration::from_millis(50));
        h.observe(Duration::from_secs(3)); // above every bound
        let s = h.snapshot();
        assert_eq!(s.buckets, vec![(0.001, 2), (0.01, 2), (0.1, 3)]);
        assert_eq!(s.count, 4);
        assert_eq!(h.count(), 4);
        assert!((s.sum - 3.0515).abs() < 1e-9, "{}", s.sum);
    }

    #[test]
    fn bad_bounds_are_left_out() {
        let h = Histogram::new(&[0.5, f64::NAN, 0.1, 1.0, f64::INFINITY, -1.0, 1.0]);
        let s = h.snapshot();
        assert_eq!(s.buckets, vec![(0.5, 0), (1.0, 0)]);
        let empty = Histogram::new(&[]);
        empty.observe(Duration::from_secs(1));
        assert_eq!(empty.snapshot().count, 1, "only +Inf, still counted");
    }
}
