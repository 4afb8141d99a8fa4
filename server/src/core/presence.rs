//! Presence policy: when joins and leaves are announced one by one, and when they are only
//! counted and told later in one frame (PROTOCOL.md §6.6).
//!
//! Announcing a join costs one frame per local client, so a ramp of logins costs quadratic
//! work. Two rules bound it:
//! - a *large* room (more than `limit` users online) never announces one by one; it hears a
//!   count every few ticks;
//! - a small room spends at most `budget` notice frames per tick (a second); past it, the
//!   rest of that tick is only counted, and the next tick sends one `users` frame with the
//!   whole list, which keeps every client's list exact.
//!
//! Pure: the hub passes in the sizes and carries out the decision.

/// The limits (`server --presence-limit`, `--presence-budget`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PresencePolicy {
    /// Above this many users online (0: no limit) the room is large.
    pub limit: usize,
    /// Notice frames a small room may spend per tick (0: no budget).
    pub budget: u64,
}

/// Every how many ticks a large room hears its summary.
pub const LARGE_SUMMARY_TICKS: u32 = 5;

/// What a tick tells everyone about the changes that were only counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Summary {
    /// A large room: how many are online and what changed recently.
    Large {
        /// Users online.
        online: usize,
        /// Joins counted.
        joined: u64,
        /// Leaves counted.
        left: u64,
    },
    /// A small room after a burst: the whole list goes out.
    Burst {
        /// Joins counted.
        joined: u64,
        /// Leaves counted.
        left: u64,
    },
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Tally {
    joined: u64,
    left: u64,
    /// Notice frames spent since the last tick.
    spent: u64,
    /// Ticks since the last large-room summary.
    ticks: u32,
}

/// The presence state of one server.
#[derive(Debug, Clone)]
pub struct Presence {
    policy: PresencePolicy,
    tally: Tally,
}

impl Presence {
    /// Nothing counted yet.
    pub fn new(policy: PresencePolicy) -> Self {
        Presence {
            policy,
            tally: Tally::default(),
        }
    }

    /// Whether a room with `online` users is large.
    pub fn is_large(&self, online: usize) -> bool {
        self.policy.limit > 0 && online > self.policy.limit
    }

    /// A join or a leave: `true` if it is to be announced now (to `cost` local clients),
    /// `false` if it was only counted. `online` is the size the room is judged by: after a
    /// join, before a leave (so the change that makes a room small is still counted, like
    /// the join that made it large).
    pub fn on_change(&mut self, joined: bool, online: usize, cost: u64) -> bool {
        let t = &self.tally;
        // Once something was only counted this tick, the rest of the tick is too, so nobody
        // sees a notice that the coming list would contradict.
        let over_budget = self.policy.budget > 0
            && (t.joined + t.left > 0 || t.spent + cost > self.policy.budget);
        if self.is_large(online) || over_budget {
            if joined {
                self.tally.joined += 1;
            } else {
                self.tally.left += 1;
            }
            return false;
        }
        self.tally.spent += cost;
        true
    }

    /// A second has passed: the summary to send, if any.
    pub fn tick(&mut self, online: usize) -> Option<Summary> {
        let large = self.is_large(online);
        let t = &mut self.tally;
        t.spent = 0;
        t.ticks = t.ticks.saturating_add(1);
        let (joined, left) = (t.joined, t.left);
        if joined + left == 0 || (large && t.ticks < LARGE_SUMMARY_TICKS) {
            return None;
        }
        *t = Tally::default();
        Some(if large {
            Summary::Large {
                online,
                joined,
                left,
            }
        } else {
            Summary::Burst { joined, left }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(limit: usize, budget: u64) -> Presence {
        Presence::new(PresencePolicy { limit, budget })
    }

    #[test]
    fn a_small_room_announces_within_its_budget_then_counts_until_the_tick() {
        let mut p = policy(1000, 100);
        assert!(p.on_change(true, 10, 40));
        assert!(p.on_change(true, 11, 40));
        assert!(!p.on_change(true, 12, 40), "80 + 40 > 100: counted");
        assert!(
            !p.on_change(false, 12, 1),
            "cheap, but the list is coming: counted too"
        );
        assert_eq!(p.tick(11), Some(Summary::Burst { joined: 1, left: 1 }));
        assert!(p.on_change(true, 12, 40), "a new tick, a new budget");
        assert_eq!(p.tick(12), None, "nothing was only counted");
    }

    #[test]
    fn no_budget_and_no_limit_announce_everything() {
        let mut p = policy(0, 0);
        for n in 0..10_000 {
            assert!(p.on_change(n % 2 == 0, n as usize, 50_000));
        }
        assert_eq!(p.tick(5_000), None);
    }

    #[test]
    fn a_large_room_counts_and_hears_a_summary_every_few_ticks() {
        let mut p = policy(3, 0);
        assert!(p.on_change(true, 3, 2), "3 is not more than 3");
        assert!(!p.on_change(true, 4, 3));
        assert!(
            !p.on_change(false, 4, 3),
            "judged by the size before the leave"
        );
        for _ in 1..LARGE_SUMMARY_TICKS {
            assert_eq!(p.tick(4), None);
        }
        assert_eq!(
            p.tick(4),
            Some(Summary::Large {
                online: 4,
                joined: 1,
                left: 1
            })
        );
        assert_eq!(p.tick(4), None, "reset after a summary");
    }

    #[test]
    fn a_room_that_shrank_below_the_limit_gets_the_list() {
        let mut p = policy(3, 0);
        assert!(!p.on_change(false, 4, 3));
        assert_eq!(p.tick(3), Some(Summary::Burst { joined: 0, left: 1 }));
    }
}
