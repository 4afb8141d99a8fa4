//! Timestamps: milliseconds since the Unix epoch on the wire, local wall-clock time for
//! humans.

use chrono::{Local, TimeZone};

/// Milliseconds since the Unix epoch, as carried in the `ts` field of frames.
pub fn now_ms() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(now.as_millis()).unwrap_or(u64::MAX)
}

/// `HH:MM:SS` in local time for a `ts` value (the `/time` answer).
pub fn hhmmss(ts_ms: u64) -> String {
    format_local(ts_ms, "%H:%M:%S")
}

/// `HH:MM` in local time for a `ts` value (the line port's prefix).
pub fn hhmm(ts_ms: u64) -> String {
    format_local(ts_ms, "%H:%M")
}

/// `HH:MM` for a `ts` of today, `YYYY-MM-DD HH:MM` for another day (local time; the line
/// port's prefix of replayed history, PROTOCOL.md §10.2).
pub fn dated_hhmm(ts_ms: u64, now_ms: u64) -> String {
    let day = format_local(ts_ms, "%Y-%m-%d");
    if day == format_local(now_ms, "%Y-%m-%d") {
        hhmm(ts_ms)
    } else {
        format_local(ts_ms, "%Y-%m-%d %H:%M")
    }
}

fn format_local(ts_ms: u64, pattern: &str) -> String {
    let millis = i64::try_from(ts_ms).unwrap_or(i64::MAX);
    match Local.timestamp_millis_opt(millis).single() {
        Some(t) => t.format(pattern).to_string(),
        // Out of chrono's range: only reachable with a hostile `ts`; show something
        // recognisable instead of panicking.
        None => "--:--".to_string(),
    }
}

/// Parses an age flag: `90s`, `15m`, `12h`, `30d`, or `0` (the broker's and the NATS
/// backend's history retention and resume expiry).
pub fn parse_age(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let (digits, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?}: a number followed by s, m, h or d"))?;
    let secs = match unit {
        "" if n == 0 => 0,
        "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        "d" => n.saturating_mul(86_400),
        _ => return Err(format!("{text:?}: a number followed by s, m, h or d")),
    };
    Ok(std::time::Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_days_time_has_its_date() {
        let now = now_ms();
        assert_eq!(dated_hhmm(now, now), hhmm(now));
        let long_ago = now - 3 * 86_400_000;
        let shown = dated_hhmm(long_ago, now);
        assert_eq!(shown.len(), "2026-12-01 12:00".len(), "{shown}");
        assert!(shown.ends_with(&hhmm(long_ago)), "{shown}");
    }

    #[test]
    fn hhmmss_has_the_shape_hh_mm_ss() {
        let s = hhmmss(now_ms());
        let parts: Vec<_> = s.split(':').collect();
        assert_eq!(parts.len(), 3, "{s}");
        assert!(
            parts
                .iter()
                .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_digit()))
        );
    }

    #[test]
    fn hhmm_is_a_prefix_of_hhmmss() {
        let t = 1_700_000_000_123;
        assert!(hhmmss(t).starts_with(&hhmm(t)));
    }

    #[test]
    fn out_of_range_timestamps_do_not_panic() {
        assert_eq!(hhmm(u64::MAX), "--:--");
    }

    #[test]
    fn now_is_after_2020() {
        assert!(now_ms() > 1_577_836_800_000);
    }
}
