//! Results: HDR histograms, a table for people, one JSON line for machines, the CPU used
//! per delivery by the tool and by the system under test, and an optional plot.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde_json::{Value, json};

use crate::cpu::CpuSummary;

/// A latency histogram in microseconds (1 µs .. 100 s, 3 significant digits).
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000, 3)
        .unwrap_or_else(|_| Histogram::new(3).unwrap_or_else(|_| unreachable!()))
}

/// Resident memory of a process in KiB, from /proc.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// One run's results.
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// Parameters, for the record.
    pub params: Value,
    /// Named counters and rates.
    pub figures: BTreeMap<String, Value>,
    /// Named latency histograms (µs).
    pub latencies: Vec<(String, Histogram<u64>)>,
    /// CPU over the measured window (its own table; merged into `figures` in the JSON).
    pub cpu: Option<CpuSummary>,
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

impl Report {
    /// An empty report.
    pub fn new(scenario: &str, params: Value) -> Self {
        Report {
            scenario: scenario.into(),
            params,
            figures: BTreeMap::new(),
            latencies: Vec::new(),
            cpu: None,
        }
    }

    /// Records a figure.
    pub fn set(&mut self, key: &str, value: impl Into<Value>) {
        self.figures.insert(key.into(), value.into());
    }

    /// Prints the table and, if asked, the JSON line.
    pub fn print(&self, json_line: bool) {
        println!("== {} {}", self.scenario, self.params);
        for (k, v) in &self.figures {
            println!("  {k:<28} {v}");
        }
        if let Some(cpu) = &self.cpu {
            print!("{}", cpu.table());
        }
        if !self.latencies.is_empty() {
            println!(
                "  {:<18} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
                "latency (ms)", "count", "avg", "p50", "p99", "p99.9", "max"
            );
            for (name, h) in &self.latencies {
                println!(
                    "  {:<18} {:>9} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3}",
                    name,
                    h.len(),
                    h.mean() / 1000.0,
                    ms(h.value_at_quantile(0.5)),
                    ms(h.value_at_quantile(0.99)),
                    ms(h.value_at_quantile(0.999)),
                    ms(h.max())
                );
            }
        }
        if json_line {
            println!("{}", self.to_json());
        }
    }

    /// The whole report as one JSON object.
    pub fn to_json(&self) -> Value {
        let lat: serde_json::Map<String, Value> = self
            .latencies
            .iter()
            .map(|(name, h)| {
                (
                    name.clone(),
                    json!({
                        "count": h.len(),
                        "avg_ms": h.mean() / 1000.0,
                        "p50_ms": ms(h.value_at_quantile(0.5)),
                        "p99_ms": ms(h.value_at_quantile(0.99)),
                        "p999_ms": ms(h.value_at_quantile(0.999)),
                        "max_ms": ms(h.max()),
                    }),
                )
            })
            .collect();
        let mut figures = self.figures.clone();
        figures.extend(self.cpu.iter().flat_map(CpuSummary::figures));
        json!({"scenario": self.scenario, "params": self.params, "figures": figures, "latency": lat})
    }
}
