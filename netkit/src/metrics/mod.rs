//! Metrics for operators: counters, gauges and histograms kept in atomics, the Prometheus
//! text format they are exposed in, and the HTTP endpoint that serves them
//! (`--metrics-listen`; README, "Metrics"; docs/ARCHITECTURE.md, "Metrics").
//!
//! - [`values`]: [`Counter`], [`Gauge`], [`Histogram`]: what the hot paths update, with
//!   `Relaxed` atomics, no lock and no allocation;
//! - [`text`]: the exposition format, written by hand (why: see there), pure;
//! - [`http`]: `GET /metrics` on a listener;
//! - [`counted`]: a reader that counts the bytes it reads.
//!
//! A process keeps its values where they are counted (the broker's router and links, the
//! server's core and connections) and registers a [`Collect`] with a [`Registry`], which
//! writes them as families when scraped: the families and their labels are decided at
//! compile time, so a scrape allocates its page and nothing on a hot path ever does.

pub mod counted;
pub mod http;
pub mod text;
pub mod values;

use std::sync::{Arc, Mutex};

pub use text::{Exposition, Family, Kind};
pub use values::{Counter, Gauge, Histogram, HistogramSnapshot, LATENCY_BUCKETS};

/// Something that writes families into a scrape's page.
pub trait Collect: Send + Sync {
    /// Writes this part's families (each name once in the whole registry).
    fn collect(&self, out: &mut Exposition);
}

impl<F: Fn(&mut Exposition) + Send + Sync> Collect for F {
    fn collect(&self, out: &mut Exposition) {
        self(out)
    }
}

/// The parts of a process that have metrics, in the order their families are written.
#[derive(Default)]
pub struct Registry {
    parts: Mutex<Vec<Arc<dyn Collect>>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("parts", &self.parts().len())
            .finish()
    }
}

impl Registry {
    /// A registry with no parts.
    pub fn new() -> Arc<Registry> {
        Arc::new(Registry::default())
    }

    fn parts(&self) -> std::sync::MutexGuard<'_, Vec<Arc<dyn Collect>>> {
        self.parts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a part; its families follow those of the parts before it.
    pub fn register(&self, part: Arc<dyn Collect>) {
        self.parts().push(part);
    }

    /// The page a scrape gets: every part's families.
    pub fn render(&self) -> String {
        // Copied out first: a part may take its own locks, and must not hold this one.
        let parts: Vec<Arc<dyn Collect>> = self.parts().clone();
        let mut out = Exposition::new();
        for part in parts {
            part.collect(&mut out);
        }
        out.into_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registry_renders_its_parts_in_order() {
        let r = Registry::new();
        assert_eq!(r.render(), "");
        let logins = Arc::new(Counter::new());
        let seen = logins.clone();
        r.register(Arc::new(move |e: &mut Exposition| {
            e.family("a_total", "A.", Kind::Counter)
                .sample(&[], seen.get());
        }));
        r.register(Arc::new(|e: &mut Exposition| {
            e.family("b", "B.", Kind::Gauge).sample(&[], 7i64);
        }));
        logins.add(2);
        assert_eq!(
            r.render(),
            "# HELP a_total A.\n# TYPE a_total counter\na_total 2\n\
             # HELP b B.\n# TYPE b gauge\nb 7\n"
        );
    }
}
