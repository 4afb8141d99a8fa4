//! The Prometheus text exposition format, version 0.0.4: what `GET /metrics` answers.
//!
//! Written by hand rather than with a crate: the format is a few lines per family, our
//! label sets are fixed at compile time (arrays of atomics, no map to look a series up
//! in), and `prometheus-client` would have us keep families behind locks and speaks
//! OpenMetrics (`# EOF`, `_created`), which is not the 0.0.4 format `promtool check
//! metrics` reads. Every family gets its `# HELP` and `# TYPE`; names and label names are
//! made valid rather than refused, and label values and help texts are escaped, so no
//! input can break the output's syntax. No I/O here.

use std::fmt::Write;

use crate::metrics::values::HistogramSnapshot;

/// The type of a family, as `# TYPE` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up; by convention its name ends in `_total`.
    Counter,
    /// Goes up and down.
    Gauge,
    /// Buckets, a count and a sum (`_bucket`, `_count`, `_sum`).
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// A sample's value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    /// A count.
    Unsigned(u64),
    /// A gauge's integer value.
    Signed(i64),
    /// Anything else (seconds, ratios).
    Float(f64),
}

impl From<u64> for Value {
    fn from(v: u64) -> Value {
        Value::Unsigned(v)
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Value {
        Value::Signed(v)
    }
}

impl From<usize> for Value {
    fn from(v: usize) -> Value {
        Value::Unsigned(u64::try_from(v).unwrap_or(u64::MAX))
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Value {
        Value::Float(v)
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Unsigned(u64::from(v))
    }
}

/// A page of families being written.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
}

/// One family being written: its samples follow its `# HELP` and `# TYPE` lines.
#[derive(Debug)]
pub struct Family<'a> {
    out: &'a mut String,
    name: String,
}

impl Exposition {
    /// An empty page.
    pub fn new() -> Exposition {
        Exposition::default()
    }

    /// Starts a family: writes its `# HELP` and `# TYPE` lines. Its samples are written
    /// through the returned [`Family`]; a family may have none (nothing counted yet).
    pub fn family(&mut self, name: &str, help: &str, kind: Kind) -> Family<'_> {
        let name = valid_name(name, true);
        let _ = writeln!(self.out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {name} {}", kind.as_str());
        Family {
            out: &mut self.out,
            name,
        }
    }

    /// What was written.
    pub fn as_str(&self) -> &str {
        &self.out
    }

    /// The page.
    pub fn into_string(self) -> String {
        self.out
    }
}

impl Family<'_> {
    /// A sample of a counter or gauge family, with these labels.
    pub fn sample(&mut self, labels: &[(&str, &str)], value: impl Into<Value>) -> &mut Self {
        line(self.out, &self.name, "", labels, None, value.into());
        self
    }

    /// The samples of one histogram (a series of a histogram family): a `_bucket` line per
    /// bound and `+Inf`, then `_sum` and `_count`.
    pub fn histogram(&mut self, labels: &[(&str, &str)], h: &HistogramSnapshot) -> &mut Self {
        for &(bound, count) in &h.buckets {
            let le = float(bound);
            line(
                self.out,
                &self.name,
                "_bucket",
                labels,
                Some(&le),
                count.into(),
            );
        }
        let count = Value::Unsigned(h.count);
        line(self.out, &self.name, "_bucket", labels, Some("+Inf"), count);
        line(self.out, &self.name, "_sum", labels, None, h.sum.into());
        line(self.out, &self.name, "_count", labels, None, count);
        self
    }
}

/// Writes `name{labels,le="..."} value`.
fn line(
    out: &mut String,
    name: &str,
    suffix: &str,
    labels: &[(&str, &str)],
    le: Option<&str>,
    value: Value,
) {
    out.push_str(name);
    out.push_str(suffix);
    let pairs = labels.iter().copied().chain(le.map(|le| ("le", le)));
    for (i, (k, v)) in pairs.enumerate() {
        out.push(if i == 0 { '{' } else { ',' });
        out.push_str(&valid_name(k, false));
        out.push_str("=\"");
        escape_label_value(out, v);
        out.push('"');
    }
    if !labels.is_empty() || le.is_some() {
        out.push('}');
    }
    out.push(' ');
    match value {
        Value::Unsigned(v) => {
            let _ = write!(out, "{v}");
        }
        Value::Signed(v) => {
            let _ = write!(out, "{v}");
        }
        Value::Float(v) => out.push_str(&float(v)),
    }
    out.push('\n');
}

/// A float as the format writes it: `+Inf`, `-Inf`, `NaN`, else Rust's shortest exact
/// decimal (never an exponent, which the format would also accept).
fn float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

/// `name` with every character the format does not allow replaced by `_` (and a leading
/// `_` if it starts with a digit or is empty). Metric names may hold `:`, label names not.
fn valid_name(name: &str, metric: bool) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || (metric && c == ':') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// A help text on one line: `\` and line breaks escaped.
fn escape_help(help: &str) -> String {
    let mut out = String::with_capacity(help.len());
    for c in help.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// A label value between its quotes: `\`, `"` and line breaks escaped.
fn escape_label_value(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::values::Histogram;
    use std::time::Duration;

    #[test]
    fn a_family_has_help_type_and_its_samples() {
        let mut e = Exposition::new();
        e.family("chat_logins_total", "Logins accepted.", Kind::Counter)
            .sample(&[], 3u64);
        e.family(
            "chat_connections_open",
            "Connections open now.",
            Kind::Gauge,
        )
        .sample(&[("port", "json")], 2i64)
        .sample(&[("port", "line")], 0i64);
        assert_eq!(
            e.into_string(),
            "# HELP chat_logins_total Logins accepted.\n\
             # TYPE chat_logins_total counter\n\
             chat_logins_total 3\n\
             # HELP chat_connections_open Connections open now.\n\
             # TYPE chat_connections_open gauge\n\
             chat_connections_open{port=\"json\"} 2\n\
             chat_connections_open{port=\"line\"} 0\n"
        );
    }

    #[test]
    fn a_histogram_has_cumulative_buckets_inf_sum_and_count() {
        let h = Histogram::new(&[0.001, 0.25, 1.0]);
        h.observe(Duration::from_micros(200));
        h.observe(Duration::from_millis(300));
        let mut e = Exposition::new();
        e.family("rt_seconds", "Round trips.", Kind::Histogram)
            .histogram(&[("backend", "broker")], &h.snapshot());
        assert_eq!(
            e.as_str(),
            "# HELP rt_seconds Round trips.\n\
             # TYPE rt_seconds histogram\n\
             rt_seconds_bucket{backend=\"broker\",le=\"0.001\"} 1\n\
             rt_seconds_bucket{backend=\"broker\",le=\"0.25\"} 1\n\
             rt_seconds_bucket{backend=\"broker\",le=\"1\"} 2\n\
             rt_seconds_bucket{backend=\"broker\",le=\"+Inf\"} 2\n\
             rt_seconds_sum{backend=\"broker\"} 0.3002\n\
             rt_seconds_count{backend=\"broker\"} 2\n"
        );
        let mut bare = Exposition::new();
        bare.family("q_seconds", "Queries.", Kind::Histogram)
            .histogram(&[], &Histogram::new(&[0.5]).snapshot());
        assert!(
            bare.as_str()
                .contains("q_seconds_bucket{le=\"+Inf\"} 0\nq_seconds_sum 0\nq_seconds_count 0\n"),
            "{}",
            bare.as_str()
        );
    }

    #[test]
    fn label_values_and_help_are_escaped_and_names_made_valid() {
        let mut e = Exposition::new();
        e.family("9bad-name", "two\nlines \\ here", Kind::Gauge)
            .sample(&[("a-b", "say \"hi\"\\\n")], 1.5);
        assert_eq!(
            e.as_str(),
            "# HELP _9bad_name two\\nlines \\\\ here\n\
             # TYPE _9bad_name gauge\n\
             _9bad_name{a_b=\"say \\\"hi\\\"\\\\\\n\"} 1.5\n"
        );
        assert_eq!(valid_name("", true), "_");
        assert_eq!(valid_name("ns:sub", true), "ns:sub");
        assert_eq!(valid_name("ns:sub", false), "ns_sub");
    }

    #[test]
    fn values_are_written_as_the_format_wants() {
        assert_eq!(float(f64::INFINITY), "+Inf");
        assert_eq!(float(f64::NEG_INFINITY), "-Inf");
        assert_eq!(float(f64::NAN), "NaN");
        assert_eq!(float(0.0001), "0.0001");
        assert_eq!(float(2.0), "2");
        let mut e = Exposition::new();
        e.family("x", "x", Kind::Gauge)
            .sample(&[], -4i64)
            .sample(&[], true)
            .sample(&[], usize::MAX);
        assert!(e.as_str().ends_with("x -4\nx 1\nx 18446744073709551615\n"));
    }
}
