//! The server's page of metrics (README, "Metrics"; docs/ARCHITECTURE.md, "Metrics"): the
//! counters kept in the core ([`crate::core::stats`]), the connection counts by port
//! ([`crate::net::limits`]), the clients' queues ([`netkit::queue::Pool`]) and the
//! backend's handle, written as Prometheus families when `/metrics` is scraped.
//!
//! Writing a page reads atomics and takes the hub's lock once (for the users online) and
//! the backend's for its queue: a scrape costs the chat as much as one `/list`.

use std::sync::Arc;

use netkit::metrics::{Collect, Exposition, Kind};
use netkit::queue::Pool;

use crate::core::hub::Hub;
use crate::core::stats::{Disconnect, REFUSAL_CODES};
use crate::net::limits::{ConnLimits, PortName};

/// Everything the page is read from; registered with the endpoint's registry.
pub struct ServerMetrics {
    /// The core: its counters, the users online, the backend's handle.
    pub hub: Arc<Hub>,
    /// What all clients' send queues hold and have passed on.
    pub pool: Arc<Pool>,
    /// The connections by port.
    pub limits: Arc<ConnLimits>,
}

impl Collect for ServerMetrics {
    fn collect(&self, out: &mut Exposition) {
        write(out, &self.hub, &self.pool, &self.limits);
    }
}

/// Writes the server's families.
pub fn write(out: &mut Exposition, hub: &Hub, pool: &Pool, limits: &ConnLimits) {
    let stats = hub.stats();
    let mut open = out.family(
        "chat_connections_open",
        "Client connections open now, by port.",
        Kind::Gauge,
    );
    for port in PortName::ALL {
        open.sample(&[("port", port.as_str())], limits.open(port));
    }
    let mut accepted = out.family(
        "chat_connections_accepted_total",
        "Client connections accepted, by port (those then refused over a limit included).",
        Kind::Counter,
    );
    for port in PortName::ALL {
        accepted.sample(&[("port", port.as_str())], limits.accepted(port));
    }
    out.family("chat_logins_total", "Logins accepted.", Kind::Counter)
        .sample(&[], stats.logins.get());
    let mut refusals = out.family(
        "chat_login_refusals_total",
        "Logins refused, by error code: at accept (a limit), while logging in (a bad name, a timeout) or by the chat service (a taken name).",
        Kind::Counter,
    );
    for code in REFUSAL_CODES {
        refusals.sample(&[("code", code.as_str())], stats.refusals(code));
    }
    out.family(
        "chat_messages_in_total",
        "Frames and lines read from logged-in clients and handled.",
        Kind::Counter,
    )
    .sample(&[], stats.messages_in.get());
    out.family(
        "chat_messages_out_total",
        "Frames queued to clients.",
        Kind::Counter,
    )
    .sample(&[], pool.frames_queued());
    out.family(
        "chat_received_bytes_total",
        "Bytes read from clients.",
        Kind::Counter,
    )
    .sample(&[], stats.bytes_in.get());
    out.family(
        "chat_sent_bytes_total",
        "Bytes written to clients.",
        Kind::Counter,
    )
    .sample(&[], pool.bytes_written());
    let mut cut = out.family(
        "chat_client_disconnects_total",
        "Logged-in clients the server cut off, by reason: a send queue that overflowed (the client does not read), all queues past their bound, the idle timeout, a frame not finished in time or too large.",
        Kind::Counter,
    );
    for why in Disconnect::ALL {
        cut.sample(&[("reason", why.as_str())], stats.disconnects(why));
    }
    out.family(
        "chat_client_queue_bytes",
        "Bytes queued to clients now, in all their send queues.",
        Kind::Gauge,
    )
    .sample(&[], pool.held());
    out.family(
        "chat_users_online",
        "Users online on every server, as this server knows them.",
        Kind::Gauge,
    )
    .sample(&[], hub.users_online());

    let backend = hub.backend_metrics();
    let label = [("backend", backend.name())];
    out.family(
        "chat_backend_up",
        "Whether the chat service is reachable through the backend (1) or not (0).",
        Kind::Gauge,
    )
    .sample(&label, backend.is_up());
    out.family(
        "chat_backend_queue_bytes",
        "Bytes queued to the chat service now and not yet written.",
        Kind::Gauge,
    )
    .sample(&label, backend.queued_bytes());
    out.family(
        "chat_backend_round_trip_seconds",
        "From a request (a public or private message, a login) sent to the chat service until its answer came back.",
        Kind::Histogram,
    )
    .histogram(&label, &backend.round_trip().snapshot());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::presence::PresencePolicy;
    use crate::net::limits::Limits;
    use chat_common::ErrorCode;

    #[test]
    fn the_page_has_every_family_with_its_labels() {
        let hub = Hub::new(
            "10.0.0.9".into(),
            PresencePolicy {
                limit: 1000,
                budget: 0,
            },
        );
        hub.backend_metrics().name_as("broker");
        hub.backend_metrics().set_up(true);
        hub.stats().refused(ErrorCode::NameTaken);
        hub.stats().logins.inc();
        let limits = ConnLimits::new(Limits {
            total: 0,
            per_ip: 0,
            unnamed_per_ip: 0,
            limit_loopback: false,
        });
        limits.count_accepted(PortName::Tls);
        let mut out = Exposition::new();
        write(&mut out, &hub, &Pool::counting(), &limits);
        let page = out.into_string();
        for line in [
            "chat_connections_open{port=\"json\"} 0\n",
            "chat_connections_accepted_total{port=\"tls\"} 1\n",
            "chat_logins_total 1\n",
            "chat_login_refusals_total{code=\"name_taken\"} 1\n",
            "chat_login_refusals_total{code=\"server_full\"} 0\n",
            "chat_client_disconnects_total{reason=\"send_queue_exceeded\"} 0\n",
            "chat_backend_up{backend=\"broker\"} 1\n",
            "chat_backend_queue_bytes{backend=\"broker\"} 0\n",
            "chat_backend_round_trip_seconds_count{backend=\"broker\"} 0\n",
            "chat_users_online 0\n",
        ] {
            assert!(page.contains(line), "no {line:?} in\n{page}");
        }
        let types = page.lines().filter(|l| l.starts_with("# TYPE ")).count();
        let helps = page.lines().filter(|l| l.starts_with("# HELP ")).count();
        assert_eq!((types, helps), (14, 14), "{page}");
    }
}
