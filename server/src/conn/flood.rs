//! Flood control (PROTOCOL.md §6.7): a client over its budget is read later, never refused.
//!
//! Each client has a budget of bytes: what its messages cost the system, refilled at
//! `rate` bytes per second up to `burst`. Everything it sends is charged: the bytes read
//! from its socket (whitespace and blank lines included) and the bytes its messages make
//! the server send (a public message's encoded frame times the users it reaches, a
//! command's answer). A charge may take the budget below zero; while it is below zero the
//! connection reads nothing more, not even items already buffered, so TCP holds the
//! client back (IRC's "fake lag", counted in bytes). Nothing accepted is dropped and no
//! client is disconnected for being fast.
//!
//! A large burst lets the seeds' load scripts (5 clients × 200 pastes of 10–20 KB, as fast
//! as they can) through unslowed; the rate keeps a sustained flood small next to what the
//! server can deliver. Pure logic with the clock passed in.

use std::time::Duration;

use tokio::time::Instant;

use chat_common::command::Request;
use chat_common::frame::encoded_len;

/// The limits (`server --flood-rate`, `--flood-burst`). `f32`: every connection carries
/// a copy, and seven significant digits are plenty for a budget.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FloodLimit {
    /// Bytes of cost per second, on average.
    pub rate: f32,
    /// Bytes of cost at once, after a pause.
    pub burst: f32,
}

/// One client's budget.
#[derive(Debug, Clone)]
pub struct Budget {
    limit: FloodLimit,
    /// Bytes left; below zero while the client is held back.
    tokens: f64,
    last: Instant,
}

impl Budget {
    /// A full budget.
    pub fn new(limit: FloodLimit, now: Instant) -> Self {
        Budget {
            limit,
            tokens: f64::from(limit.burst),
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        let (rate, burst) = (f64::from(self.limit.rate), f64::from(self.limit.burst));
        self.tokens = (self.tokens + elapsed * rate).min(burst);
    }

    /// Charges `cost` bytes spent at `now`. Never refuses: the budget may go below zero,
    /// and the client then waits ([`Budget::delay`]).
    pub fn charge(&mut self, cost: u64, now: Instant) {
        self.refill(now);
        // u64 → f64 loses precision only beyond 2^53 bytes.
        self.tokens -= cost as f64;
    }

    /// How long the client must wait before anything more of it is read; `None` when it
    /// may go on now.
    pub fn delay(&mut self, now: Instant) -> Option<Duration> {
        self.refill(now);
        if self.tokens >= 0.0 {
            return None;
        }
        if self.limit.rate <= 0.0 {
            return Some(Duration::from_secs(3600));
        }
        // At least a millisecond (the timer's resolution): a debt of a few bytes would
        // otherwise ask for a sleep that ends before time moves, again and again.
        let wait = Duration::from_secs_f64(-self.tokens / f64::from(self.limit.rate));
        Some(wait.max(MIN_WAIT))
    }
}

/// The shortest wait of a client held back.
const MIN_WAIT: Duration = Duration::from_millis(1);

/// Bytes of a frame besides its text: the JSON keys, the sender, `type`, `ts`, `id`.
pub const FRAME_OVERHEAD: u64 = 128;

/// The least an item costs, whatever it is: reading, parsing and looking at it is work
/// even when it is a blank line (before, blank lines were free and one client could keep a
/// core busy with them).
pub const ITEM_COST: u64 = 256;

/// The least one copy of a frame costs, however short: each copy is a write to a socket
/// and a read on the other side, whatever its size. Without it a flood of tiny messages to
/// a large room is cheap in bytes and dear in deliveries (before this floor, one flooder's
/// burst was 300,000 deliveries to 50 bots).
pub const DELIVERY_COST: u64 = 1024;

/// What an answer from the server to its asker costs (`/time`, `/help`, an error frame).
pub const REPLY_COST: u64 = 1024;

/// What carrying out `req` will make the server send, in bytes: each copy of the frame (at
/// least [`DELIVERY_COST`]) times the users it reaches (`users` online, the sender
/// included), or the answer. Estimated before it is carried out, from the encoded sizes
/// ([`encoded_len`]). `list_bytes` is the size of the user list (what `/list` sends back).
pub fn request_cost(req: &Request, sender: &str, users: usize, list_bytes: usize) -> u64 {
    let frame = |text: &str| {
        let bytes = FRAME_OVERHEAD + as_u64(encoded_len(sender) + encoded_len(text));
        bytes.max(DELIVERY_COST)
    };
    let cost = match req {
        Request::Public { text, confirm } => {
            let others = as_u64(users.saturating_sub(1).max(1));
            frame(text).saturating_mul(others) + if *confirm { REPLY_COST } else { 0 }
        }
        Request::Private { to, text } => frame(text) + as_u64(encoded_len(to)),
        Request::List => FRAME_OVERHEAD + as_u64(list_bytes),
        Request::Time | Request::Help | Request::Standard | Request::Resume { .. } => REPLY_COST,
        Request::Quit => 0,
        // Up to `count` frames come back: charged as that many copies.
        Request::History { query, .. } => {
            DELIVERY_COST.saturating_mul(u64::from(query.count.max(1))) + REPLY_COST
        }
    };
    cost.max(ITEM_COST)
}

fn as_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: FloodLimit = FloodLimit {
        rate: 1000.0,
        burst: 5000.0,
    };

    fn ms(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    #[test]
    fn a_burst_passes_then_the_client_waits_its_debt_out() {
        let t0 = Instant::now();
        let mut b = Budget::new(LIMIT, t0);
        for _ in 0..5 {
            assert_eq!(b.delay(t0), None);
            b.charge(1000, t0);
        }
        // Exactly spent: still free to go.
        assert_eq!(b.delay(t0), None);
        // One more costly item is carried out (nothing is refused) and puts it in debt.
        b.charge(500, t0);
        assert_eq!(b.delay(t0), Some(Duration::from_millis(500)));
        assert_eq!(b.delay(ms(t0, 250)), Some(Duration::from_millis(250)));
        assert_eq!(b.delay(ms(t0, 500)), None);
        // A debt of one byte still waits a whole millisecond, never zero.
        b.charge(1, ms(t0, 500));
        assert_eq!(b.delay(ms(t0, 500)), Some(MIN_WAIT));
    }

    #[test]
    fn an_item_dearer_than_the_burst_still_goes_through_once() {
        let t0 = Instant::now();
        let mut b = Budget::new(LIMIT, t0);
        b.charge(20_000, t0);
        assert_eq!(b.delay(t0), Some(Duration::from_secs(15)));
    }

    #[test]
    fn a_pause_refills_no_more_than_the_burst() {
        let t0 = Instant::now();
        let mut b = Budget::new(LIMIT, t0);
        b.charge(5000, t0);
        // An hour of silence is worth one burst, not 3.6 MB.
        b.charge(5000, ms(t0, 3_600_000));
        assert_eq!(b.delay(ms(t0, 3_600_000)), None);
        b.charge(1, ms(t0, 3_600_000));
        assert!(b.delay(ms(t0, 3_600_000)).is_some());
    }

    #[test]
    fn a_clock_going_backwards_is_harmless() {
        let t0 = Instant::now();
        let mut b = Budget::new(LIMIT, ms(t0, 1000));
        b.charge(100, t0);
        assert_eq!(b.delay(t0), None);
    }

    #[test]
    fn a_public_message_costs_its_encoded_frame_times_its_recipients() {
        let text = "\u{1}".repeat(1000);
        let public = Request::Public {
            text: text.clone(),
            confirm: false,
        };
        // 1,000 control bytes are 6,000 bytes on the wire, to each of the 9 others.
        assert_eq!(
            request_cost(&public, "bob", 10, 0),
            (FRAME_OVERHEAD + 3 + 6000) * 9
        );
        // Alone in the room it still costs one frame.
        assert_eq!(
            request_cost(&public, "bob", 1, 0),
            FRAME_OVERHEAD + 3 + 6000
        );
        // A short one costs a delivery's least to each.
        let hi = Request::Public {
            text: "hi".into(),
            confirm: false,
        };
        assert_eq!(request_cost(&hi, "bob", 51, 0), DELIVERY_COST * 50);
        let private = Request::Private {
            to: "al".into(),
            text,
        };
        assert_eq!(
            request_cost(&private, "bob", 10, 0),
            FRAME_OVERHEAD + 3 + 6000 + 2
        );
    }

    #[test]
    fn commands_cost_their_answer_and_never_less_than_an_item() {
        assert_eq!(
            request_cost(&Request::List, "bob", 2000, 40_000),
            FRAME_OVERHEAD + 40_000
        );
        assert_eq!(request_cost(&Request::Time, "bob", 1, 0), REPLY_COST);
        assert_eq!(request_cost(&Request::List, "bob", 1, 3), ITEM_COST);
        assert_eq!(request_cost(&Request::Quit, "bob", 1, 3), ITEM_COST);
        let empty = Request::Private {
            to: "a".into(),
            text: String::new(),
        };
        assert_eq!(request_cost(&empty, "b", 1, 0), DELIVERY_COST + 1);
    }
}
