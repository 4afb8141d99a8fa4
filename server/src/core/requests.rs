//! Outstanding requests: the messages our clients sent that the chat service has not yet
//! confirmed delivered (PROTOCOL.md §6.4, "nothing is dropped silently").
//!
//! A request is *open* from the moment it is handed to the backend; it is *out* once the
//! service has given it its place in the order (a public message came back, a private one
//! was routed), and *delivered* once the service says that id is stable (every server it
//! went to has it). If the service is lost first, its sender gets one error: "not
//! delivered" while it was only open, "may not have reached everyone" once it was out.
//!
//! Pure bookkeeping: no I/O, and no clock of its own (the hub gives the moment a request
//! was opened, for the round trip it measures). The hub turns what these methods return
//! into frames.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use chat_common::error::Excerpt;
use chat_common::link::ConnId;
use chat_common::{ChatError, Unroutable};

/// A request number, unique in this process.
pub type ReqId = u64;

/// The `label` a client gave a frame, carried back on what answers it (PROTOCOL.md §3.4).
pub type Label = Option<Box<str>>;

#[derive(Debug)]
struct Request {
    conn: ConnId,
    /// `/shout`, or any labelled message: tell the sender it went out, once.
    confirm: bool,
    /// The service has sent it out: some servers may have it.
    out: bool,
    excerpt: Excerpt,
    label: Label,
    /// When it was opened, until the service's first answer (the round trip).
    opened: Option<Instant>,
}

/// Whom to tell about a request, and what it was labelled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asker {
    /// The client's connection.
    pub conn: ConnId,
    /// The label of its frame.
    pub label: Label,
}

/// The open requests of one server.
#[derive(Debug, Default)]
pub struct Requests {
    open: HashMap<ReqId, Request>,
    /// Requests that are out, with their event ids, in id order: each is delivered once
    /// the service says its id is stable.
    out: VecDeque<(u64, ReqId)>,
    next: ReqId,
}

impl Requests {
    /// No requests.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many are open (not yet delivered nor failed).
    pub fn len(&self) -> usize {
        self.open.len()
    }

    /// Whether none is open.
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// Opens a request for message `text` from `conn` at `at`; `confirm` for `/shout`,
    /// and for any message with a `label` (its sender asked to hear how it went).
    pub fn open(
        &mut self,
        conn: ConnId,
        confirm: bool,
        text: &str,
        label: Label,
        at: Instant,
    ) -> ReqId {
        self.next += 1;
        self.open.insert(
            self.next,
            Request {
                conn,
                confirm: confirm || label.is_some(),
                out: false,
                excerpt: Excerpt::of(text),
                label,
                opened: Some(at),
            },
        );
        self.next
    }

    /// The service answered request `req` (it came back, was routed, or could not be): when
    /// it was opened, the first time only, so a round trip is counted once.
    pub fn answered(&mut self, req: ReqId) -> Option<Instant> {
        self.open.get_mut(&req)?.opened.take()
    }

    /// The request could not be handed to the backend: its sender's error, unless it
    /// already got one.
    pub fn cancel(&mut self, req: ReqId) -> Option<(Asker, ChatError)> {
        let r = self.open.remove(&req)?;
        let err = ChatError::NotDelivered { excerpt: r.excerpt };
        Some((
            Asker {
                conn: r.conn,
                label: r.label,
            },
            err,
        ))
    }

    /// The service sent request `req` out as event `id`. Returns whom to confirm it to, the
    /// first time, when the request asked for a confirmation.
    pub fn sent_out(&mut self, req: ReqId, id: u64) -> Option<Asker> {
        let r = self.open.get_mut(&req)?;
        r.out = true;
        self.out.push_back((id, req));
        std::mem::take(&mut r.confirm).then(|| Asker {
            conn: r.conn,
            label: r.label.clone(),
        })
    }

    /// Every event up to `upto` is delivered: those requests are closed.
    pub fn stable(&mut self, upto: u64) {
        while let Some(&(id, req)) = self.out.front()
            && id <= upto
        {
            self.out.pop_front();
            self.open.remove(&req);
        }
    }

    /// The service could not route `req`: its sender's error.
    pub fn undeliverable(&mut self, req: ReqId, reason: Unroutable) -> Option<(Asker, ChatError)> {
        let r = self.open.remove(&req)?;
        let err = ChatError::Unroutable {
            reason,
            excerpt: r.excerpt,
        };
        Some((
            Asker {
                conn: r.conn,
                label: r.label,
            },
            err,
        ))
    }

    /// The service is lost: every open request fails, in the order they were opened, each
    /// with the error its state calls for.
    pub fn service_lost(&mut self) -> Vec<(Asker, ChatError)> {
        self.out.clear();
        let mut lost: Vec<(ReqId, Request)> = self.open.drain().collect();
        lost.sort_by_key(|(req, _)| *req);
        lost.into_iter()
            .map(|(_, r)| {
                let err = if r.out {
                    ChatError::Lost { excerpt: r.excerpt }
                } else {
                    ChatError::NotDelivered { excerpt: r.excerpt }
                };
                (
                    Asker {
                        conn: r.conn,
                        label: r.label,
                    },
                    err,
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_common::ErrorCode;

    #[test]
    fn open_out_stable_closes_a_request_without_a_word() {
        let mut r = Requests::new();
        let a = r.open(1, false, "a", None, Instant::now());
        let b = r.open(1, false, "b", None, Instant::now());
        assert_eq!(r.sent_out(a, 10), None, "no confirmation asked");
        assert_eq!(r.sent_out(b, 11), None);
        r.stable(10);
        assert_eq!(r.len(), 1, "b is out but not yet stable");
        r.stable(11);
        assert!(r.is_empty());
        assert!(r.service_lost().is_empty(), "nothing left to report");
    }

    #[test]
    fn a_shout_is_confirmed_once() {
        let mut r = Requests::new();
        let s = r.open(7, true, "hi", None, Instant::now());
        assert_eq!(r.sent_out(s, 3).map(|a| a.conn), Some(7));
        assert_eq!(r.sent_out(s, 3), None, "never twice");
    }

    #[test]
    fn a_request_is_answered_once_for_its_round_trip() {
        let mut r = Requests::new();
        let at = Instant::now();
        let s = r.open(7, true, "hi", None, at);
        assert_eq!(r.answered(s), Some(at));
        assert_eq!(r.answered(s), None, "counted once");
        assert_eq!(r.answered(99), None, "not ours");
    }

    #[test]
    fn stable_ids_close_only_what_was_sent_out_up_to_them() {
        let mut r = Requests::new();
        let a = r.open(1, false, "a", None, Instant::now());
        let b = r.open(1, false, "b", None, Instant::now());
        r.sent_out(b, 20);
        r.stable(100);
        assert_eq!(
            r.len(),
            1,
            "a was never sent out: a stable id says nothing about it"
        );
        r.sent_out(a, 101);
        r.stable(100);
        assert_eq!(r.len(), 1);
        r.stable(101);
        assert!(r.is_empty());
    }

    #[test]
    fn losing_the_service_reports_each_open_request_once_in_order() {
        let mut r = Requests::new();
        let first = r.open(1, false, "first", None, Instant::now());
        let _second = r.open(2, true, "second", None, Instant::now());
        let third = r.open(1, false, "third", None, Instant::now());
        r.sent_out(first, 5);
        r.sent_out(third, 6);
        r.stable(5);
        let lost = r.service_lost();
        let got: Vec<(ConnId, String, ErrorCode)> = lost
            .iter()
            .map(|(a, e)| (a.conn, e.to_string(), e.code()))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    2,
                    "message \"second\" not delivered: the chat service is unavailable right now; try again shortly".to_string(),
                    ErrorCode::NotDelivered
                ),
                (
                    1,
                    "message \"third\" may not have reached everyone: the connection to the chat service was lost".to_string(),
                    ErrorCode::Lost
                ),
            ]
        );
        assert!(r.is_empty());
        assert!(r.service_lost().is_empty(), "each is reported once");
    }

    #[test]
    fn an_undeliverable_or_cancelled_request_is_reported_once() {
        let mut r = Requests::new();
        let a = r.open(4, false, "are you there?", None, Instant::now());
        let (asker, err) = r
            .undeliverable(a, Unroutable::NotOnline { to: "zed".into() })
            .expect("open");
        assert_eq!(asker.conn, 4);
        assert_eq!(
            err.to_string(),
            "user 'zed' is not online (message \"are you there?\")"
        );
        assert!(r.undeliverable(a, Unroutable::NotLoggedIn).is_none());
        let b = r.open(4, false, "x", None, Instant::now());
        assert_eq!(
            r.cancel(b).map(|(_, e)| e.code()),
            Some(ErrorCode::NotDelivered)
        );
        assert!(r.cancel(b).is_none());
        assert!(r.service_lost().is_empty());
    }

    #[test]
    fn a_labelled_message_is_confirmed_and_its_label_goes_with_every_answer() {
        let mut r = Requests::new();
        let label = || Some(Box::<str>::from("m1"));
        let private = r.open(3, false, "psst", label(), Instant::now());
        let asker = r
            .sent_out(private, 9)
            .expect("a labelled message is confirmed");
        assert_eq!(
            asker,
            Asker {
                conn: 3,
                label: label()
            }
        );
        let lost = r.service_lost();
        assert_eq!(lost.len(), 1, "out but not yet stable");
        assert_eq!(lost[0].0.label, label(), "the error is labelled too");
        let refused = r.open(3, false, "to nobody", label(), Instant::now());
        let (asker, _) = r
            .undeliverable(refused, Unroutable::NotLoggedIn)
            .expect("open");
        assert_eq!(asker.label, label());
        let cancelled = r.open(3, true, "x", label(), Instant::now());
        assert_eq!(r.cancel(cancelled).map(|(a, _)| a.label), Some(label()));
    }
}
