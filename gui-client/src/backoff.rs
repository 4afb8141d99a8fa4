//! Reconnection delays: exponential, capped, reset after a successful login.

use std::time::Duration;

/// First delay after a connection drops.
pub const FIRST: Duration = Duration::from_millis(500);
/// Longest delay between attempts.
pub const MAX: Duration = Duration::from_secs(30);

/// Counts failed attempts and says how long to wait before the next one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Backoff {
    attempts: u32,
}

impl Backoff {
    /// The delay before the next attempt, and counts it.
    pub fn next_delay(&mut self) -> Duration {
        let d = FIRST.saturating_mul(1u32 << self.attempts.min(16)).min(MAX);
        self.attempts = self.attempts.saturating_add(1);
        d
    }

    /// Attempts made since the last success.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// A login succeeded.
    pub fn reset(&mut self) {
        self.attempts = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_and_resets() {
        let mut b = Backoff::default();
        let delays: Vec<_> = (0..10).map(|_| b.next_delay()).collect();
        assert_eq!(delays[0], FIRST);
        assert_eq!(delays[1], FIRST * 2);
        assert_eq!(delays[2], FIRST * 4);
        assert!(delays.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(*delays.last().unwrap(), MAX);
        assert_eq!(b.attempts(), 10);
        b.reset();
        assert_eq!(b.next_delay(), FIRST);
    }
}
