//! Per-client rate limiting: a token bucket.
//!
//! Each client may send `rate` items per second on average and `burst` at once. An item
//! over the limit is refused (its sender gets an error frame and it goes nowhere). A
//! client that keeps flooding, with `kick_after` items refused before its bucket ever
//! filled up again, is disconnected. A client that pauses long enough for the bucket to
//! fill starts with a clean record.
//!
//! Pure logic with the clock passed in, so it is tested without waiting.

use std::time::{Duration, Instant};

/// The limits (`server --rate-limit`, `--rate-burst`, `--rate-kick-after`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Items per second, on average.
    pub rate: f64,
    /// Items at once, after a pause.
    pub burst: u32,
    /// Refused items, without a full refill in between, before the client is disconnected
    /// (0: never).
    pub kick_after: u32,
}

/// What to do with one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within the limit.
    Allow,
    /// Over the limit: refuse it and tell the sender.
    Refuse,
    /// Over the limit again and again: disconnect.
    Kick,
}

/// One client's bucket.
#[derive(Debug, Clone)]
pub struct Bucket {
    limit: RateLimit,
    tokens: f64,
    last: Instant,
    refused: u32,
}

impl Bucket {
    /// A full bucket.
    pub fn new(limit: RateLimit, now: Instant) -> Self {
        Bucket {
            limit,
            tokens: f64::from(limit.burst.max(1)),
            last: now,
            refused: 0,
        }
    }

    /// Takes a token for one item arriving at `now`.
    pub fn check(&mut self, now: Instant) -> Verdict {
        let capacity = f64::from(self.limit.burst.max(1));
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.limit.rate).min(capacity);
        if self.tokens >= capacity {
            // A full refill: whatever was refused before is forgiven.
            self.refused = 0;
        }
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Verdict::Allow;
        }
        self.refused = self.refused.saturating_add(1);
        if self.limit.kick_after > 0 && self.refused >= self.limit.kick_after {
            Verdict::Kick
        } else {
            Verdict::Refuse
        }
    }

    /// The limits.
    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    /// How long until the next item would be allowed (for the error text).
    pub fn wait(&self) -> Duration {
        if self.tokens >= 1.0 || self.limit.rate <= 0.0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64((1.0 - self.tokens) / self.limit.rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: RateLimit = RateLimit {
        rate: 10.0,
        burst: 20,
        kick_after: 5,
    };

    fn ms(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    #[test]
    fn a_burst_passes_then_the_rate_holds() {
        let t0 = Instant::now();
        let mut b = Bucket::new(LIMIT, t0);
        for i in 0..20 {
            assert_eq!(b.check(t0), Verdict::Allow, "item {i} of the burst");
        }
        assert_eq!(b.check(t0), Verdict::Refuse);
        assert!(b.wait() > Duration::ZERO && b.wait() <= Duration::from_millis(100));
        // 100 ms later one more token has come back, not two.
        assert_eq!(b.check(ms(t0, 100)), Verdict::Allow);
        assert_eq!(b.check(ms(t0, 100)), Verdict::Refuse);
        // Steady 10 per second passes forever.
        for k in 2..200 {
            assert_eq!(b.check(ms(t0, 100 * k)), Verdict::Allow, "tick {k}");
        }
    }

    #[test]
    fn flooding_gets_a_kick_and_a_pause_forgives() {
        let t0 = Instant::now();
        let mut b = Bucket::new(LIMIT, t0);
        for _ in 0..20 {
            b.check(t0);
        }
        for _ in 0..4 {
            assert_eq!(b.check(t0), Verdict::Refuse);
        }
        // Two seconds of silence fill the bucket: the refusals are forgiven.
        for _ in 0..20 {
            assert_eq!(b.check(ms(t0, 2000)), Verdict::Allow);
        }
        for _ in 0..4 {
            assert_eq!(b.check(ms(t0, 2000)), Verdict::Refuse);
        }
        assert_eq!(
            b.check(ms(t0, 2000)),
            Verdict::Kick,
            "the fifth refusal in a row"
        );
    }

    #[test]
    fn refusals_add_up_while_the_bucket_never_fills() {
        let t0 = Instant::now();
        let mut b = Bucket::new(LIMIT, t0);
        for _ in 0..20 {
            b.check(t0);
        }
        // 20 per second against a limit of 10: a refusal every other item.
        let mut verdicts = Vec::new();
        for k in 1..=20 {
            verdicts.push(b.check(ms(t0, 50 * k)));
        }
        let refused = verdicts.iter().filter(|v| **v != Verdict::Allow).count();
        assert!(refused >= 5, "{verdicts:?}");
        assert!(verdicts.contains(&Verdict::Kick), "{verdicts:?}");
    }

    #[test]
    fn kick_after_zero_never_kicks() {
        let t0 = Instant::now();
        let mut b = Bucket::new(
            RateLimit {
                kick_after: 0,
                ..LIMIT
            },
            t0,
        );
        let kicked = (0..1000).any(|_| b.check(t0) == Verdict::Kick);
        assert!(!kicked);
    }

    #[test]
    fn a_clock_going_backwards_is_harmless() {
        let t0 = Instant::now();
        let mut b = Bucket::new(LIMIT, ms(t0, 1000));
        assert_eq!(b.check(t0), Verdict::Allow);
    }
}
