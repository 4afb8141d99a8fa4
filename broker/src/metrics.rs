//! What the broker counts for its operators, and its page of metrics (README, "Metrics";
//! docs/ARCHITECTURE.md, "Metrics").
//!
//! The links count as they read and write (an atomic add per read; the writers' bytes are
//! counted by the [`Pool`] their queues share, which also tells what waits in them). The
//! router keeps its counts in plain integers (the directory's, by kind) and publishes them
//! once per batch, with the history's size; it times each history query. Nothing here
//! takes a lock or allocates on the way of a message.

use std::sync::Arc;

use netkit::metrics::{Collect, Counter, Exposition, Gauge, Histogram, Kind};
use netkit::queue::Pool;

use crate::history::record::Kind as EventKind;

/// Why a server's link ended (`chat_broker_link_drops_total{reason}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkDrop {
    /// Refused at its handshake (token, version, no or a bad `Hello`).
    Handshake,
    /// The server closed it.
    Closed,
    /// What it sent could not be read (a socket error, an undecodable or too large message).
    ReadError,
    /// It was silent for three heartbeats.
    Heartbeat,
    /// Its outbound queue overflowed: cut off as too slow.
    QueueExceeded,
    /// Writing to it failed.
    WriteError,
    /// The broker shut down.
    Shutdown,
}

impl LinkDrop {
    /// Every reason, in the order they are exposed.
    pub const ALL: [LinkDrop; 7] = [
        LinkDrop::Handshake,
        LinkDrop::Closed,
        LinkDrop::ReadError,
        LinkDrop::Heartbeat,
        LinkDrop::QueueExceeded,
        LinkDrop::WriteError,
        LinkDrop::Shutdown,
    ];

    /// The `reason` label.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkDrop::Handshake => "handshake",
            LinkDrop::Closed => "closed",
            LinkDrop::ReadError => "read_error",
            LinkDrop::Heartbeat => "heartbeat",
            LinkDrop::QueueExceeded => "queue_exceeded",
            LinkDrop::WriteError => "write_error",
            LinkDrop::Shutdown => "shutdown",
        }
    }
}

/// The broker's counters; one per [`crate::Broker`], shared by its router and links.
#[derive(Debug)]
pub struct BrokerMetrics {
    /// Links that finished their handshake and are attached now.
    pub links_up: Gauge,
    /// Bytes read from the servers' links.
    pub link_bytes_in: Arc<Counter>,
    /// What the links' outbound queues count in: bytes written, bytes waiting.
    pub link_queues: Arc<Pool>,
    drops: [Counter; LinkDrop::ALL.len()],
    events: [Counter; EventKind::ALL.len()],
    /// Whether there is a history at all (without one its families are left out).
    history: std::sync::atomic::AtomicBool,
    /// Events the history holds, about ([`crate::history::store::Store::kept`]).
    pub history_events: Gauge,
    /// The size of the history's database file.
    pub history_file_bytes: Gauge,
    /// Batches that could not be stored.
    pub history_write_failures: Counter,
    /// History queries answered.
    pub history_queries: Counter,
    /// How long the store took for each.
    pub history_query_time: Histogram,
}

impl Default for BrokerMetrics {
    fn default() -> Self {
        BrokerMetrics {
            links_up: Gauge::new(),
            link_bytes_in: Arc::default(),
            link_queues: Pool::counting(),
            drops: Default::default(),
            events: Default::default(),
            history: Default::default(),
            history_events: Gauge::new(),
            history_file_bytes: Gauge::new(),
            history_write_failures: Counter::new(),
            history_queries: Counter::new(),
            history_query_time: Histogram::latency(),
        }
    }
}

impl BrokerMetrics {
    /// Counts a link that ended for `why`.
    pub fn link_dropped(&self, why: LinkDrop) {
        self.drops[why as usize].inc();
    }

    /// Links ended for `why` so far.
    pub fn link_drops(&self, why: LinkDrop) -> u64 {
        self.drops[why as usize].get()
    }

    /// Takes the directory's counts of events ordered, by kind ([`EventKind::index`]).
    pub fn mirror_events(&self, ordered: [u64; EventKind::ALL.len()]) {
        for (counter, total) in self.events.iter().zip(ordered) {
            counter.mirror(total);
        }
    }

    /// Events of `kind` ordered so far.
    pub fn events(&self, kind: EventKind) -> u64 {
        self.events[kind.index()].get()
    }

    /// Says whether the broker keeps a history (its families are written only then).
    pub fn set_history(&self, on: bool) {
        self.history.store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether the broker keeps a history.
    pub fn has_history(&self) -> bool {
        self.history.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Collect for BrokerMetrics {
    fn collect(&self, out: &mut Exposition) {
        out.family(
            "chat_broker_links_up",
            "Server links attached now.",
            Kind::Gauge,
        )
        .sample(&[], self.links_up.get());
        let mut events = out.family(
            "chat_broker_events_total",
            "Events given their place in the global order, by kind.",
            Kind::Counter,
        );
        for kind in EventKind::ALL {
            events.sample(&[("kind", kind.as_str())], self.events(kind));
        }
        out.family(
            "chat_broker_link_received_bytes_total",
            "Bytes read from the server links.",
            Kind::Counter,
        )
        .sample(&[], self.link_bytes_in.get());
        out.family(
            "chat_broker_link_sent_bytes_total",
            "Bytes written to the server links.",
            Kind::Counter,
        )
        .sample(&[], self.link_queues.bytes_written());
        let mut drops = out.family(
            "chat_broker_link_drops_total",
            "Server links that ended (or were refused at their handshake), by reason.",
            Kind::Counter,
        );
        for why in LinkDrop::ALL {
            drops.sample(&[("reason", why.as_str())], self.link_drops(why));
        }
        out.family(
            "chat_broker_link_queue_bytes",
            "Bytes queued to the server links now and not yet written, all links together.",
            Kind::Gauge,
        )
        .sample(&[], self.link_queues.held());
        if !self.has_history() {
            return;
        }
        out.family(
            "chat_broker_history_events",
            "Events the history holds (the ids between what retention removed and the last).",
            Kind::Gauge,
        )
        .sample(&[], self.history_events.get());
        out.family(
            "chat_broker_history_file_bytes",
            "Size of the history's database file (its write-ahead log aside).",
            Kind::Gauge,
        )
        .sample(&[], self.history_file_bytes.get());
        out.family(
            "chat_broker_history_write_failures_total",
            "Batches of events the history could not store (their messages were refused).",
            Kind::Counter,
        )
        .sample(&[], self.history_write_failures.get());
        out.family(
            "chat_broker_history_queries_total",
            "History queries answered.",
            Kind::Counter,
        )
        .sample(&[], self.history_queries.get());
        out.family(
            "chat_broker_history_query_seconds",
            "How long the history took to answer a query.",
            Kind::Histogram,
        )
        .histogram(&[], &self.history_query_time.snapshot());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_has_every_family_and_the_history_only_with_one() {
        let m = BrokerMetrics::default();
        m.mirror_events([3, 0, 1, 0]);
        m.link_dropped(LinkDrop::Heartbeat);
        let mut out = Exposition::new();
        m.collect(&mut out);
        let page = out.into_string();
        for line in [
            "chat_broker_links_up 0\n",
            "chat_broker_events_total{kind=\"chat\"} 3\n",
            "chat_broker_events_total{kind=\"join\"} 1\n",
            "chat_broker_link_drops_total{reason=\"heartbeat\"} 1\n",
            "chat_broker_link_queue_bytes 0\n",
        ] {
            assert!(page.contains(line), "no {line:?} in\n{page}");
        }
        assert!(!page.contains("history"), "{page}");
        m.set_history(true);
        let mut out = Exposition::new();
        m.collect(&mut out);
        let page = out.into_string();
        assert!(
            page.contains("chat_broker_history_query_seconds_count 0\n"),
            "{page}"
        );
        assert_eq!(page.matches("# TYPE").count(), 11, "{page}");
        for (i, why) in LinkDrop::ALL.iter().enumerate() {
            assert_eq!(*why as usize, i);
        }
    }
}
