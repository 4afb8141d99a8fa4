//! CPU accounting over a scenario's measured window: the tool's own CPU time and, given
//! their pids, the servers' and the brokers' (from `/proc`), per wall second and per
//! delivered message.
//!
//! On a small machine the load generator competes with the system for the same cores, so
//! deliveries per second depend on how much CPU the generator spends. CPU microseconds per
//! delivery of the server and the broker do not: they are the figure to compare across
//! days and across load tools.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::procstat::{self, ProcStatError, Stat};

/// CPU time this process has used (user + system), at microsecond resolution.
pub fn tool_cpu_time() -> Duration {
    // SAFETY: getrusage fills a local struct.
    unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut ru) != 0 {
            return Duration::ZERO;
        }
        let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, (t.tv_usec as u32) * 1000);
        tv(ru.ru_utime) + tv(ru.ru_stime)
    }
}

/// CPU seconds per wall second (1.0 = one core busy); none for an empty window.
pub fn share(cpu_s: f64, wall_s: f64) -> Option<f64> {
    (wall_s > 0.0).then(|| cpu_s / wall_s)
}

/// CPU microseconds per delivery; none when nothing was delivered.
pub fn us_per_delivery(cpu_s: f64, deliveries: u64) -> Option<f64> {
    (deliveries > 0).then(|| cpu_s * 1e6 / deliveries as f64)
}

/// `x` rounded to `digits` decimals (for the JSON line: no 0.30000000000000004).
fn round(x: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (x * scale).round() / scale
}

/// The first reading of one watched process.
type Reading = (u32, Result<Stat, ProcStatError>);

/// A window being measured: started where a scenario starts measuring its throughput.
pub struct Window {
    wall: Instant,
    tool: Duration,
    server: Vec<Reading>,
    broker: Vec<Reading>,
}

fn read_all(pids: &[u32]) -> Vec<Reading> {
    pids.iter().map(|&p| (p, procstat::read(p))).collect()
}

/// CPU seconds a role's processes used since their first readings, summed; none if the
/// role has no pids, an error if any of them could not be read at either end.
fn role_cpu_s(start: Vec<Reading>) -> Option<Result<f64, ProcStatError>> {
    if start.is_empty() {
        return None;
    }
    let sum = || -> Result<f64, ProcStatError> {
        let hz = procstat::ticks_per_second()?;
        let mut ticks = 0u64;
        for (pid, first) in start {
            let end = procstat::read(pid)?;
            ticks += procstat::ticks_between(pid, &first?, &end)?;
        }
        Ok(procstat::ticks_to_duration(ticks, hz).as_secs_f64())
    };
    Some(sum())
}

impl Window {
    /// Takes the first readings of the tool and of the servers and brokers given.
    pub fn start(servers: &[u32], brokers: &[u32]) -> Self {
        Window {
            server: read_all(servers),
            broker: read_all(brokers),
            tool: tool_cpu_time(),
            wall: Instant::now(),
        }
    }

    /// Takes the last readings and what the window used.
    pub fn finish(self) -> CpuUse {
        let wall_s = self.wall.elapsed().as_secs_f64();
        let tool_s = (tool_cpu_time().saturating_sub(self.tool)).as_secs_f64();
        CpuUse {
            wall_s,
            tool_s,
            server: role_cpu_s(self.server),
            broker: role_cpu_s(self.broker),
        }
    }
}

/// What a window used: wall time and CPU seconds per role.
#[derive(Debug)]
pub struct CpuUse {
    /// Wall seconds of the window.
    pub wall_s: f64,
    /// CPU seconds of the load generator (for a sharded ramp: of every shard).
    pub tool_s: f64,
    /// CPU seconds of the servers (none: no `--server-pid`).
    pub server: Option<Result<f64, ProcStatError>>,
    /// CPU seconds of the brokers (none: no `--broker-pid`).
    pub broker: Option<Result<f64, ProcStatError>>,
}

impl CpuUse {
    /// Divides the window's CPU by `deliveries`, each being what `unit` says.
    pub fn per(self, deliveries: u64, unit: &'static str) -> CpuSummary {
        CpuSummary {
            used: self,
            deliveries,
            unit,
        }
    }
}

/// A window's CPU use with the number of deliveries made in it.
#[derive(Debug)]
pub struct CpuSummary {
    /// The CPU used.
    pub used: CpuUse,
    /// Deliveries in the window.
    pub deliveries: u64,
    /// What one delivery is, in this scenario.
    pub unit: &'static str,
}

/// One row of the CPU table: a role's CPU seconds, share and µs per delivery.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Row {
    /// CPU seconds in the window.
    pub cpu_s: f64,
    /// CPU seconds per wall second.
    pub share: Option<f64>,
    /// CPU microseconds per delivery.
    pub us_per_delivery: Option<f64>,
}

impl CpuSummary {
    fn row(&self, cpu_s: f64) -> Row {
        Row {
            cpu_s,
            share: share(cpu_s, self.used.wall_s),
            us_per_delivery: us_per_delivery(cpu_s, self.deliveries),
        }
    }

    /// Server + broker: present when at least one role was given and every given role
    /// was measured (a sum missing a role that failed would flatter the system).
    pub fn system(&self) -> Option<Row> {
        let roles = [&self.used.server, &self.used.broker];
        if roles.iter().all(|r| r.is_none()) {
            return None;
        }
        let mut cpu_s = 0.0;
        for r in roles.into_iter().flatten() {
            cpu_s += *r.as_ref().ok()?;
        }
        Some(self.row(cpu_s))
    }

    /// The rows of the table, by name: a role's row, or its error.
    pub fn rows(&self) -> Vec<(&'static str, Result<Row, String>)> {
        let mut rows = Vec::new();
        for (name, role) in [("server", &self.used.server), ("broker", &self.used.broker)] {
            match role {
                Some(Ok(s)) => rows.push((name, Ok(self.row(*s)))),
                Some(Err(e)) => rows.push((name, Err(e.to_string()))),
                None => {}
            }
        }
        if let Some(sys) = self.system() {
            rows.push(("system", Ok(sys)));
        }
        rows.push(("tool", Ok(self.row(self.used.tool_s))));
        rows
    }

    /// The figures for the JSON line: `<role>_cpu_s`, `<role>_cpu_share`,
    /// `<role>_us_per_delivery` for server, broker, tool; `system_us_per_delivery`;
    /// `<role>_cpu_error` for a role that could not be measured; the window. A role
    /// without pids has no fields at all.
    pub fn figures(&self) -> Vec<(String, Value)> {
        let mut out: Vec<(String, Value)> = vec![
            ("cpu_window_s".into(), round(self.used.wall_s, 3).into()),
            ("cpu_deliveries".into(), self.deliveries.into()),
            ("cpu_delivery_unit".into(), self.unit.into()),
        ];
        for (name, row) in self.rows() {
            let row = match row {
                Ok(row) => row,
                Err(e) => {
                    out.push((format!("{name}_cpu_error"), e.into()));
                    continue;
                }
            };
            if name != "system" {
                out.push((format!("{name}_cpu_s"), round(row.cpu_s, 3).into()));
                if let Some(s) = row.share {
                    out.push((format!("{name}_cpu_share"), round(s, 2).into()));
                }
            }
            if let Some(us) = row.us_per_delivery {
                out.push((format!("{name}_us_per_delivery"), round(us, 3).into()));
            }
        }
        out
    }

    /// The table for people.
    pub fn table(&self) -> String {
        let mut t = format!(
            "  cpu over {:.2} s, per delivery = {} ({} deliveries)\n",
            self.used.wall_s, self.unit, self.deliveries
        );
        t += &format!(
            "    {:<16} {:>9} {:>7} {:>13}\n",
            "process", "cpu s", "share", "µs/delivery"
        );
        let opt = |v: Option<f64>, digits: usize| {
            v.map_or_else(|| "-".to_string(), |v| format!("{v:.digits$}"))
        };
        for (name, row) in self.rows() {
            let name = if name == "system" {
                "server+broker"
            } else {
                name
            };
            match row {
                Ok(r) => {
                    t += &format!(
                        "    {:<16} {:>9.3} {:>7} {:>13}\n",
                        name,
                        r.cpu_s,
                        opt(r.share, 2),
                        opt(r.us_per_delivery, 3)
                    );
                }
                Err(e) => t += &format!("    {name:<16} not measured: {e}\n"),
            }
        }
        if self.used.server.is_some() || self.used.broker.is_some() {
            t += "    (server and broker CPU is counted in clock ticks: ±1 tick per process)\n";
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(server: Option<f64>, broker: Option<f64>, deliveries: u64) -> CpuSummary {
        CpuUse {
            wall_s: 2.0,
            tool_s: 1.5,
            server: server.map(Ok),
            broker: broker.map(Ok),
        }
        .per(deliveries, "a test delivery")
    }

    fn get<'a>(f: &'a [(String, Value)], key: &str) -> Option<&'a Value> {
        f.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    #[test]
    fn shares_and_costs_per_delivery() {
        assert_eq!(share(1.5, 3.0), Some(0.5));
        assert_eq!(share(1.0, 0.0), None);
        assert_eq!(us_per_delivery(2.0, 4_000_000), Some(0.5));
        assert_eq!(us_per_delivery(0.25, 1000), Some(250.0));
        assert_eq!(us_per_delivery(1.0, 0), None);
    }

    #[test]
    fn figures_for_server_and_broker() {
        let f = summary(Some(1.0), Some(0.5), 1_000_000).figures();
        assert_eq!(get(&f, "server_cpu_s"), Some(&Value::from(1.0)));
        assert_eq!(get(&f, "server_cpu_share"), Some(&Value::from(0.5)));
        assert_eq!(get(&f, "server_us_per_delivery"), Some(&Value::from(1.0)));
        assert_eq!(get(&f, "broker_cpu_share"), Some(&Value::from(0.25)));
        assert_eq!(get(&f, "broker_us_per_delivery"), Some(&Value::from(0.5)));
        assert_eq!(get(&f, "system_us_per_delivery"), Some(&Value::from(1.5)));
        assert_eq!(get(&f, "tool_cpu_share"), Some(&Value::from(0.75)));
        assert_eq!(get(&f, "tool_us_per_delivery"), Some(&Value::from(1.5)));
        assert_eq!(get(&f, "cpu_deliveries"), Some(&Value::from(1_000_000)));
    }

    #[test]
    fn no_pids_no_fields() {
        let f = summary(None, None, 10).figures();
        for k in ["server_cpu_s", "broker_cpu_share", "system_us_per_delivery"] {
            assert_eq!(get(&f, k), None, "{k}");
        }
        assert!(get(&f, "tool_us_per_delivery").is_some());
        // A server alone (an IRC peer) is the whole system.
        let f = summary(Some(3.0), None, 1000).figures();
        assert_eq!(
            get(&f, "system_us_per_delivery"),
            Some(&Value::from(3000.0))
        );
        assert_eq!(get(&f, "broker_cpu_s"), None);
    }

    #[test]
    fn nothing_delivered_no_cost_per_delivery() {
        let f = summary(Some(1.0), Some(1.0), 0).figures();
        assert!(get(&f, "server_cpu_s").is_some());
        assert_eq!(get(&f, "server_us_per_delivery"), None);
        assert_eq!(get(&f, "system_us_per_delivery"), None);
    }

    #[test]
    fn a_role_that_failed_is_an_error_and_no_system_sum() {
        let s = CpuUse {
            wall_s: 1.0,
            tool_s: 0.1,
            server: Some(Ok(1.0)),
            broker: Some(Err(ProcStatError::Exited { pid: 7 })),
        }
        .per(100, "x");
        let f = s.figures();
        assert_eq!(
            get(&f, "broker_cpu_error"),
            Some(&Value::from("pid 7 has exited"))
        );
        assert_eq!(get(&f, "broker_cpu_s"), None);
        assert_eq!(get(&f, "system_us_per_delivery"), None);
        assert!(get(&f, "server_us_per_delivery").is_some());
        assert!(s.table().contains("not measured: pid 7 has exited"));
    }

    #[test]
    fn a_window_over_this_process_as_its_own_server() {
        let used = Window::start(&[std::process::id()], &[]).finish();
        assert!(matches!(used.server, Some(Ok(s)) if s >= 0.0), "{used:?}");
        assert!(used.broker.is_none());
        let gone = Window::start(&[], &[u32::MAX]).finish();
        assert!(matches!(gone.broker, Some(Err(ProcStatError::Read { .. }))));
    }
}
