//! CPU time of another process, from `/proc/<pid>/stat`.
//!
//! The process-level stat already sums every thread of the process (live and exited), so
//! one read per process is enough. Times are in clock ticks (`sysconf(_SC_CLK_TCK)`,
//! usually 100 a second): a reading is exact to one tick, 10 ms.

use std::time::Duration;

/// Why a stat line could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// No `)` closing the command name.
    #[error("no ')' closing the command name")]
    NoCommEnd,
    /// The line ends before this field.
    #[error("field '{0}' missing")]
    Missing(&'static str),
    /// This field is not a number.
    #[error("field '{0}' is not a number")]
    NotANumber(&'static str),
}

/// Why a process's CPU time could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ProcStatError {
    /// `/proc/<pid>/stat` could not be read (most often: no such process, or it exited).
    // The reason is in the message rather than the error chain: the message alone goes
    // into the JSON line.
    #[error("pid {pid}: reading /proc/{pid}/stat: {reason}")]
    Read {
        /// The process.
        pid: u32,
        /// What the read said.
        reason: std::io::Error,
    },
    /// The stat line did not have the expected form.
    #[error("pid {pid}: /proc/{pid}/stat: {reason}")]
    Parse {
        /// The process.
        pid: u32,
        /// What was wrong.
        reason: ParseError,
    },
    /// The process has exited and not been reaped yet (state Z or X).
    #[error("pid {pid} has exited")]
    Exited {
        /// The process.
        pid: u32,
    },
    /// The pid now belongs to another process (it started later than the first reading).
    #[error("pid {pid} exited and was reused by another process during the run")]
    Replaced {
        /// The process.
        pid: u32,
    },
    /// `sysconf(_SC_CLK_TCK)` gave no usable value.
    #[error("clock ticks per second unavailable (sysconf(_SC_CLK_TCK) = {0})")]
    ClockTicks(libc::c_long),
}

/// The fields of a stat line this tool uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// Field 3: one-letter state (`R`, `S`, `Z`, ...).
    pub state: char,
    /// Field 14: user-mode CPU time, clock ticks.
    pub utime: u64,
    /// Field 15: kernel-mode CPU time, clock ticks.
    pub stime: u64,
    /// Field 22: start time after boot, clock ticks (tells a reused pid apart).
    pub starttime: u64,
}

impl Stat {
    /// User + system CPU time in clock ticks.
    pub fn cpu_ticks(&self) -> u64 {
        self.utime.saturating_add(self.stime)
    }
}

/// Parses one `/proc/<pid>/stat` line.
///
/// The command name (field 2) is in parentheses and may itself contain spaces and
/// parentheses, e.g. `12 (a) b (c)) S ...`; the kernel never puts a `)` after it, so the
/// fields start after the *last* `)` of the line.
pub fn parse_stat(line: &str) -> Result<Stat, ParseError> {
    let after = line.rfind(')').ok_or(ParseError::NoCommEnd)?;
    // Field 3 is the first one after the name: field n is at index n - 3.
    let fields: Vec<&str> = line[after + 1..].split_ascii_whitespace().collect();
    let field = |n: usize, name: &'static str| -> Result<&str, ParseError> {
        fields.get(n - 3).copied().ok_or(ParseError::Missing(name))
    };
    let number = |n: usize, name: &'static str| -> Result<u64, ParseError> {
        field(n, name)?
            .parse()
            .map_err(|_| ParseError::NotANumber(name))
    };
    let state = field(3, "state")?
        .chars()
        .next()
        .ok_or(ParseError::Missing("state"))?;
    Ok(Stat {
        state,
        utime: number(14, "utime")?,
        stime: number(15, "stime")?,
        starttime: number(22, "starttime")?,
    })
}

/// Reads and parses `/proc/<pid>/stat`; a process that is gone or a zombie is an error.
pub fn read(pid: u32) -> Result<Stat, ProcStatError> {
    let line = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|reason| ProcStatError::Read { pid, reason })?;
    let stat = parse_stat(&line).map_err(|reason| ProcStatError::Parse { pid, reason })?;
    if matches!(stat.state, 'Z' | 'X') {
        return Err(ProcStatError::Exited { pid });
    }
    Ok(stat)
}

/// Clock ticks per second, the unit of the stat times.
pub fn ticks_per_second() -> Result<u64, ProcStatError> {
    // SAFETY: sysconf only reads a system constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(hz)
        .ok()
        .filter(|&t| t > 0)
        .ok_or(ProcStatError::ClockTicks(hz))
}

/// CPU ticks `pid` used between two readings of it, or `Replaced` if the second reading
/// is of a different process that got the same pid.
pub fn ticks_between(pid: u32, start: &Stat, end: &Stat) -> Result<u64, ProcStatError> {
    if start.starttime != end.starttime {
        return Err(ProcStatError::Replaced { pid });
    }
    // CPU time never decreases for one process; a smaller value means another process.
    end.cpu_ticks()
        .checked_sub(start.cpu_ticks())
        .ok_or(ProcStatError::Replaced { pid })
}

/// Clock ticks as a duration.
pub fn ticks_to_duration(ticks: u64, per_second: u64) -> Duration {
    let per_second = per_second.max(1);
    let nanos = u128::from(ticks) * 1_000_000_000 / u128::from(per_second);
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real line (from a tokio process), fields 14/15/22 = 1520 / 310 / 8812345.
    const LINE: &str = "4242 (server) S 4200 4242 4200 34816 4242 4194560 2200 0 0 0 1520 310 0 0 20 0 3 0 8812345 2150400000 5120 18446744073709551615 1 1 0 0 0 0 0 4096 17415 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n";

    #[test]
    fn parses_the_times_of_a_plain_line() {
        let s = parse_stat(LINE).unwrap();
        assert_eq!(
            s,
            Stat {
                state: 'S',
                utime: 1520,
                stime: 310,
                starttime: 8812345
            }
        );
        assert_eq!(s.cpu_ticks(), 1830);
    }

    #[test]
    fn a_name_with_spaces_and_parentheses_does_not_shift_the_fields() {
        let tricky = LINE.replacen("(server)", "(my (odd) ) name))", 1);
        assert_eq!(parse_stat(&tricky), parse_stat(LINE));
        // A name that looks like fields.
        let lookalike = LINE.replacen("(server)", "(1 2 3) R 9 9 9 9 9 9 9 9 9 9)", 1);
        assert_eq!(parse_stat(&lookalike), parse_stat(LINE));
    }

    #[test]
    fn broken_lines_are_errors_not_panics() {
        assert_eq!(parse_stat(""), Err(ParseError::NoCommEnd));
        assert_eq!(parse_stat("12 (x"), Err(ParseError::NoCommEnd));
        assert_eq!(parse_stat("12 (x)"), Err(ParseError::Missing("state")));
        assert_eq!(
            parse_stat("12 (x) S 1 2 3 4 5 6 7 8 9 10"),
            Err(ParseError::Missing("utime"))
        );
        let bad = LINE.replacen(" 1520 ", " 15x0 ", 1);
        assert_eq!(parse_stat(&bad), Err(ParseError::NotANumber("utime")));
        let cut = &LINE[..LINE.find(" 8812345").unwrap()];
        assert_eq!(parse_stat(cut), Err(ParseError::Missing("starttime")));
    }

    #[test]
    fn a_missing_process_is_an_error() {
        // Above any pid_max (at most 2^22).
        assert!(matches!(read(u32::MAX), Err(ProcStatError::Read { .. })));
    }

    #[test]
    fn a_reused_pid_is_detected() {
        let a = parse_stat(LINE).unwrap();
        let later = Stat { utime: 1600, ..a };
        assert_eq!(ticks_between(1, &a, &later).unwrap(), 80);
        let other = Stat {
            starttime: a.starttime + 1,
            ..later
        };
        assert!(matches!(
            ticks_between(1, &a, &other),
            Err(ProcStatError::Replaced { pid: 1 })
        ));
        let went_back = Stat { utime: 10, ..a };
        assert!(ticks_between(1, &a, &went_back).is_err());
    }

    #[test]
    fn ticks_convert_to_time() {
        assert_eq!(ticks_to_duration(150, 100), Duration::from_millis(1500));
        assert_eq!(ticks_to_duration(3, 1000), Duration::from_millis(3));
        assert_eq!(ticks_to_duration(7, 0), Duration::from_secs(7));
    }

    #[test]
    fn this_process_gains_cpu_time_while_busy() -> Result<(), ProcStatError> {
        let pid = std::process::id();
        let before = read(pid)?;
        assert!(ticks_per_second()? > 0);
        // Spin in chunks of about a millisecond until the kernel has charged at least one
        // more tick; the bound only stops a broken reader (thousands of ticks' worth).
        const CHUNKS: u64 = 100_000;
        let mut acc = 0u64;
        let mut chunks_needed = None;
        for chunk in 0..CHUNKS {
            for i in 0..200_000u64 {
                acc = std::hint::black_box(acc.wrapping_mul(31).wrapping_add(i));
            }
            if read(pid)?.cpu_ticks() > before.cpu_ticks() {
                chunks_needed = Some(chunk);
                break;
            }
        }
        assert!(chunks_needed.is_some(), "no CPU tick after {CHUNKS} chunks");
        let after = read(pid)?;
        assert!(ticks_between(pid, &before, &after)? >= 1);
        Ok(())
    }
}
