//! Which servers are alive (docs/NATS.md, "A server that dies"). Pure: the times come in.
//!
//! Every server says it is alive every [`BEAT`] on core NATS (not JetStream: a beat must
//! not wait for a stream's leader election, or a killed node would make live servers look
//! dead). A server that holds users and has not been heard for [`LAPSE`] is declared gone,
//! and its users' leaves are written: within 5 s of its death everyone is told.
//!
//! No name is freed while its server is alive: a live server beats whatever node it is
//! attached to, and while *we* were cut off we judge nobody (everyone's clock restarts
//! when we are back). A server that was only frozen and is declared gone hears it from
//! the stream, and starts again as a new incarnation.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// How often a server beats.
pub const BEAT: Duration = Duration::from_millis(500);
/// Silence after which a server holding users is declared gone.
pub const LAPSE: Duration = Duration::from_secs(3);

/// When each server was last heard.
#[derive(Debug, Default)]
pub struct Lapses {
    heard: HashMap<String, Instant>,
}

impl Lapses {
    /// Nobody heard yet.
    pub fn new() -> Lapses {
        Lapses::default()
    }

    /// `srv` beat at `now`.
    pub fn heard(&mut self, srv: &str, now: Instant) {
        match self.heard.get_mut(srv) {
            Some(t) => *t = now,
            None => {
                self.heard.insert(srv.to_string(), now);
            }
        }
    }

    /// We were cut off: nobody is judged by the silence we could not hear through.
    pub fn restart(&mut self, now: Instant) {
        for t in self.heard.values_mut() {
            *t = now;
        }
    }

    /// The servers among `holding` (those with users online) silent for [`LAPSE`] at `now`.
    /// A server first seen holding users is given a full lapse from now; one returned is
    /// given another lapse before it is returned again (its leaves may be under way).
    pub fn lapsed(&mut self, holding: &HashSet<String>, now: Instant) -> Vec<String> {
        self.heard
            .retain(|s, t| holding.contains(s) || now.duration_since(*t) < LAPSE);
        let mut out = Vec::new();
        for srv in holding {
            let t = self.heard.entry(srv.clone()).or_insert(now);
            if now.duration_since(*t) >= LAPSE {
                out.push(srv.clone());
                *t = now;
            }
        }
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&str]) -> HashSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_silent_server_with_users_lapses_once_per_lapse() {
        let t0 = Instant::now();
        let mut l = Lapses::new();
        let holding = set(&["a", "b"]);
        l.heard("a", t0);
        assert!(
            l.lapsed(&holding, t0).is_empty(),
            "b gets a full lapse from now"
        );
        l.heard("a", t0 + Duration::from_secs(2));
        assert_eq!(l.lapsed(&holding, t0 + LAPSE), vec!["b".to_string()]);
        assert!(
            l.lapsed(&holding, t0 + LAPSE + BEAT).is_empty(),
            "not again at once"
        );
        l.heard("a", t0 + Duration::from_secs(5));
        assert_eq!(
            l.lapsed(&holding, t0 + LAPSE * 2),
            vec!["b".to_string()],
            "again a lapse later while it still holds users"
        );
    }

    #[test]
    fn a_server_heard_in_time_never_lapses_and_one_without_users_is_not_judged() {
        let t0 = Instant::now();
        let mut l = Lapses::new();
        for i in 0..20u32 {
            let now = t0 + BEAT * i;
            l.heard("a", now);
            assert!(l.lapsed(&set(&["a"]), now).is_empty());
        }
        assert!(l.lapsed(&set(&[]), t0 + LAPSE * 10).is_empty());
    }

    #[test]
    fn our_own_silence_is_not_held_against_anyone() {
        let t0 = Instant::now();
        let mut l = Lapses::new();
        l.heard("a", t0);
        let back = t0 + LAPSE * 2;
        l.restart(back);
        assert!(l.lapsed(&set(&["a"]), back + BEAT).is_empty());
        assert_eq!(l.lapsed(&set(&["a"]), back + LAPSE), vec!["a".to_string()]);
    }
}
