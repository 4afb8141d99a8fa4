//! What the server counts for its operators (README, "Metrics"): plain atomics, updated
//! where things happen and read when `/metrics` is scraped (`crate::metrics` writes them).
//!
//! They live in the core, beside the hub, because every part of the server already
//! reaches the hub (connections through `Chat`, the backend through its `Arc<Hub>`):
//! counting costs no extra pointer in any connection's task (docs/ARCHITECTURE.md,
//! "Memory per connection"), and nothing here does I/O, so the core stays pure. Counting is
//! a `Relaxed` add: no lock, no allocation.
//!
//! [`BackendMetrics`] is the handle a backend updates (whichever backend it is: the broker
//! link today): whether its service is up, how long the service takes to answer, what is
//! queued towards it. The hub itself times the round trips of the requests it opens.

use std::sync::OnceLock;
use std::time::Duration;

use chat_common::ErrorCode;
use netkit::metrics::{Counter, Gauge, Histogram};

/// The codes a login can be refused with ([`chat_common::Refusal::code`]), in the order
/// they are exposed (`chat_login_refusals_total{code}`).
pub const REFUSAL_CODES: [ErrorCode; 8] = [
    ErrorCode::NameTaken,
    ErrorCode::NameInvalid,
    ErrorCode::Unavailable,
    ErrorCode::ServiceTimeout,
    ErrorCode::LoginTimeout,
    ErrorCode::AlreadyLoggedIn,
    ErrorCode::ServerFull,
    ErrorCode::TooManyConnections,
];

/// Why the server cut a logged-in client off (`chat_client_disconnects_total{reason}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disconnect {
    /// Its own send queue overflowed: it does not read (PROTOCOL.md §6.3).
    SendQueue,
    /// All clients' queues together passed their bound and it held the most (§6.3).
    TotalQueue,
    /// It sent nothing for the idle timeout.
    Idle,
    /// A frame it began was not finished in time (§6.2).
    Unfinished,
    /// A frame over the size limit (§6.2).
    TooLarge,
}

impl Disconnect {
    /// Every reason, in the order they are exposed.
    pub const ALL: [Disconnect; 5] = [
        Disconnect::SendQueue,
        Disconnect::TotalQueue,
        Disconnect::Idle,
        Disconnect::Unfinished,
        Disconnect::TooLarge,
    ];

    /// The `reason` label: the error code the client is told, where there is one.
    pub fn as_str(self) -> &'static str {
        match self {
            Disconnect::SendQueue => "send_queue_exceeded",
            Disconnect::TotalQueue => "total_queue_exceeded",
            Disconnect::Idle => "idle",
            Disconnect::Unfinished => "unfinished",
            Disconnect::TooLarge => "too_large",
        }
    }
}

/// What a backend reports about its chat service, through the hub
/// ([`crate::core::hub::Hub::backend_metrics`]), whichever backend it is: the `backend`
/// label, whether the service is reachable, the round trips, what waits to be sent to it.
///
/// The hub observes the round trip of every request it opens (a message, a login) when its
/// answer comes back, so a backend only names itself, says when it is up, and may say
/// what is queued; it observes a round trip itself only for what the hub cannot see.
pub struct BackendMetrics {
    name: OnceLock<&'static str>,
    up: Gauge,
    round_trip: Histogram,
    queued: OnceLock<Box<dyn Fn() -> u64 + Send + Sync>>,
}

impl Default for BackendMetrics {
    fn default() -> Self {
        BackendMetrics {
            name: OnceLock::new(),
            up: Gauge::new(),
            round_trip: Histogram::latency(),
            queued: OnceLock::new(),
        }
    }
}

impl std::fmt::Debug for BackendMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendMetrics")
            .field("name", &self.name())
            .field("up", &self.is_up())
            .field("round_trips", &self.round_trip.count())
            .finish_non_exhaustive()
    }
}

impl BackendMetrics {
    /// Names the backend (`backend="broker"`, `"nats"`); the first name given stays.
    pub fn name_as(&self, name: &'static str) {
        let _ = self.name.set(name);
    }

    /// The backend's name; `none` until one is given.
    pub fn name(&self) -> &'static str {
        self.name.get().copied().unwrap_or("none")
    }

    /// Whether the chat service is reachable through this backend now.
    pub fn set_up(&self, up: bool) {
        self.up.set(i64::from(up));
    }

    /// What [`BackendMetrics::set_up`] said last.
    pub fn is_up(&self) -> bool {
        self.up.get() != 0
    }

    /// Counts one round trip: a request sent to the service until its answer came back.
    pub fn observe_round_trip(&self, took: Duration) {
        self.round_trip.observe(took);
    }

    /// The round trips so far.
    pub fn round_trip(&self) -> &Histogram {
        &self.round_trip
    }

    /// Tells where to read the bytes waiting to be sent to the service (asked at each
    /// scrape, never on a hot path); the first one given stays.
    pub fn watch_queue(&self, queued: impl Fn() -> u64 + Send + Sync + 'static) {
        let _ = self.queued.set(Box::new(queued));
    }

    /// Bytes waiting to be sent to the service now (0 if the backend does not say).
    pub fn queued_bytes(&self) -> u64 {
        self.queued.get().map_or(0, |f| f())
    }
}

/// The server's counters (see the module docs); one per hub.
#[derive(Debug, Default)]
pub struct Stats {
    /// Logins accepted.
    pub logins: Counter,
    refusals: [Counter; REFUSAL_CODES.len()],
    /// Items (frames, lines) read from logged-in clients and handled.
    pub messages_in: Counter,
    /// Bytes read from clients.
    pub bytes_in: Counter,
    disconnects: [Counter; Disconnect::ALL.len()],
    /// The backend's handle.
    pub backend: BackendMetrics,
}

impl Stats {
    /// Counts a login refused with `code`: at accept (a limit), during the login (a bad
    /// name, a timeout) or by the service (a taken name).
    pub fn refused(&self, code: ErrorCode) {
        if let Some(i) = REFUSAL_CODES.iter().position(|c| *c == code) {
            self.refusals[i].inc();
        }
    }

    /// Logins refused with `code` so far.
    pub fn refusals(&self, code: ErrorCode) -> u64 {
        REFUSAL_CODES
            .iter()
            .position(|c| *c == code)
            .map_or(0, |i| self.refusals[i].get())
    }

    /// Counts a client cut off for `why`.
    pub fn disconnected(&self, why: Disconnect) {
        self.disconnects[why as usize].inc();
    }

    /// Clients cut off for `why` so far.
    pub fn disconnects(&self, why: Disconnect) -> u64 {
        self.disconnects[why as usize].get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_go_where_their_code_or_reason_says() {
        let s = Stats::default();
        s.refused(ErrorCode::NameTaken);
        s.refused(ErrorCode::NameTaken);
        s.refused(ErrorCode::TooManyConnections);
        s.refused(ErrorCode::BadFrame); // not a login refusal: not counted
        assert_eq!(s.refusals(ErrorCode::NameTaken), 2);
        assert_eq!(s.refusals(ErrorCode::TooManyConnections), 1);
        assert_eq!(s.refusals(ErrorCode::BadFrame), 0);
        for (i, why) in Disconnect::ALL.iter().enumerate() {
            assert_eq!(*why as usize, i, "ALL is in declaration order");
        }
        s.disconnected(Disconnect::Idle);
        assert_eq!(s.disconnects(Disconnect::Idle), 1);
        assert_eq!(s.disconnects(Disconnect::SendQueue), 0);
    }

    #[test]
    fn every_refusal_has_a_code_that_is_counted() {
        use chat_common::Refusal;
        let all = [
            Refusal::NameTaken { name: "a".into() },
            Refusal::NameInvalid {
                reason: chat_common::name::NameError::Empty,
            },
            Refusal::AlreadyLoggedIn,
            Refusal::Unavailable,
            Refusal::ServiceTimeout,
            Refusal::LoginTimeout { timeout_ms: 1 },
            Refusal::ServerFull { limit: 1 },
            Refusal::TooManyConnections {
                ip: "ip".into(),
                limit: 1,
            },
            Refusal::TooManyLogins {
                ip: "ip".into(),
                limit: 1,
            },
        ];
        for r in all {
            assert!(REFUSAL_CODES.contains(&r.code()), "{r:?}");
        }
    }

    #[test]
    fn a_backend_names_itself_once_and_reports_its_state() {
        let b = BackendMetrics::default();
        assert_eq!((b.name(), b.is_up(), b.queued_bytes()), ("none", false, 0));
        b.name_as("broker");
        b.name_as("other");
        b.set_up(true);
        b.watch_queue(|| 42);
        b.observe_round_trip(Duration::from_millis(2));
        assert_eq!(
            (b.name(), b.is_up(), b.queued_bytes()),
            ("broker", true, 42)
        );
        assert_eq!(b.round_trip().count(), 1);
    }
}
