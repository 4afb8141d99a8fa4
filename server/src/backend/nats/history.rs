//! History and resume served from the stream (PROTOCOL.md §10; docs/NATS.md, "History"):
//! the same queries, answers and end frame as the broker's log, read from the stream by
//! the asking server. JetStream reads forward only, so `latest` and `before` read a window
//! below their anchor, and a wider one below that until they have enough.

use async_nats::jetstream::stream;
use chat_common::Sender;
use chat_common::history::{Anchor, MAX_ANSWER_BYTES, Query, keep_within_bytes};
use chat_common::link::{HistoryEvent, HistoryKind};
use std::ops::ControlFlow;

use super::scan::Extent;
use super::wire::Wire;

/// Who asks, and what they may see (PROTOCOL.md §10.3).
#[derive(Debug, Clone)]
pub struct Viewer {
    /// The asker's session chain: its private messages are shown.
    pub chain: String,
    /// Public messages only (the line port's `/history N`).
    pub chat_only: bool,
}

/// An answer: the events ascending, `more`, `gap`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Page {
    /// The events, ascending.
    pub events: Vec<HistoryEvent>,
    /// More exist in the asked direction.
    pub more: bool,
    /// The stream no longer holds every event of the asked range.
    pub gap: bool,
}

/// What the stream holds: its first and last sequence (first > last when empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// The oldest kept.
    pub first: u64,
    /// The newest.
    pub last: u64,
}

/// Event `id` as `viewer` sees it in an answer, if at all.
pub fn visible(id: u64, ts: u64, wire: Wire, viewer: &Viewer) -> Option<HistoryEvent> {
    let event = |kind, name, ip, to, msg| HistoryEvent {
        id,
        ts,
        kind,
        from: Sender { name, ip },
        to,
        msg,
    };
    match wire {
        Wire::Chat { name, ip, msg, .. } => Some(event(HistoryKind::Chat, name, ip, None, msg)),
        _ if viewer.chat_only => None,
        Wire::Join { name, ip, .. } => {
            Some(event(HistoryKind::Join, name, ip, None, String::new()))
        }
        Wire::Leave { name, ip, .. } => {
            Some(event(HistoryKind::Leave, name, ip, None, String::new()))
        }
        Wire::Private {
            name,
            ip,
            chain,
            to,
            to_chain,
            msg,
            ..
        } if chain == viewer.chain || to_chain == viewer.chain => {
            Some(event(HistoryKind::Private, name, ip, Some(to), msg))
        }
        Wire::Private { .. } | Wire::Gone { .. } | Wire::Chain { .. } => None,
    }
}

/// The sequences a query reads first: `(lo, hi)` inclusive, or `None` when it reads
/// nothing. `after` reads upwards from its anchor; `latest` and `before` read a window of
/// `span` below theirs.
pub fn first_window(query: &Query, bounds: Bounds, span: u64) -> Option<(u64, u64)> {
    let (lo, hi) = match query.anchor {
        Anchor::After(id) => (id.saturating_add(1).max(bounds.first), bounds.last),
        Anchor::Latest => (
            bounds.last.saturating_add(1).saturating_sub(span),
            bounds.last,
        ),
        Anchor::Before(id) => {
            let hi = id.saturating_sub(1).min(bounds.last);
            (hi.saturating_add(1).saturating_sub(span), hi)
        }
    };
    let lo = lo.max(bounds.first).max(1);
    (lo <= hi).then_some((lo, hi))
}

/// Cuts what was read (`events` ascending, every visible event of the range read) into
/// the answer, as the broker's log does: `count` nearest the anchor, `more` if there were
/// more, `gap` if the range reaches past what is kept or beyond what ever was.
pub fn page(query: &Query, mut events: Vec<HistoryEvent>, bounds: Bounds) -> Page {
    let count = usize::try_from(query.count).unwrap_or(usize::MAX);
    let more = events.len() > count;
    let after = matches!(query.anchor, Anchor::After(_));
    if more {
        if after {
            events.truncate(count);
        } else {
            events.drain(..events.len() - count);
        }
    }
    let cut = keep_within_bytes(&mut events, MAX_ANSWER_BYTES, !after, |e| e.msg.len());
    let removed = bounds.first.saturating_sub(1);
    let foreign = match query.anchor {
        Anchor::Latest => false,
        Anchor::Before(id) => id > bounds.last.saturating_add(1),
        Anchor::After(id) => id > bounds.last,
    };
    let pruned = match query.anchor {
        Anchor::After(id) => id < removed,
        Anchor::Latest | Anchor::Before(_) => !more && removed > 0,
    };
    Page {
        events,
        more: more || cut,
        gap: foreign || pruned,
    }
}

/// Why the stream could not be read.
#[derive(Debug, thiserror::Error)]
#[error("reading the event stream: {0}")]
pub struct ReadError(String);

fn err(e: impl std::fmt::Display) -> ReadError {
    ReadError(e.to_string())
}

/// Answers `query` for `viewer` from `stream`.
pub async fn answer(
    stream: &stream::Stream,
    query: &Query,
    viewer: &Viewer,
) -> Result<(String, Page), ReadError> {
    let info = stream.get_info().await.map_err(err)?;
    let epoch = super::setup::epoch(&info);
    let bounds = Bounds {
        first: info.state.first_sequence,
        last: info.state.last_sequence,
    };
    let want = usize::try_from(query.count).unwrap_or(usize::MAX) + 1;
    let mut span = u64::from(query.count).saturating_mul(2).saturating_add(16);
    let mut events = Vec::new();
    let Some((mut lo, mut hi)) = first_window(query, bounds, span) else {
        return Ok((epoch, page(query, events, bounds)));
    };
    let after = matches!(query.anchor, Anchor::After(_));
    loop {
        let limit = after.then_some(want);
        let mut got = read(stream, lo, hi, viewer, limit).await?;
        if after {
            events = got;
            break;
        }
        got.append(&mut events);
        events = got;
        if events.len() >= want || lo <= bounds.first.max(1) {
            break;
        }
        // Not enough below: a wider window below this one.
        span = span.saturating_mul(4);
        hi = lo - 1;
        lo = hi
            .saturating_add(1)
            .saturating_sub(span)
            .max(bounds.first)
            .max(1);
    }
    Ok((epoch, page(query, events, bounds)))
}

/// The visible events with sequences in `lo..=hi`, ascending; with `limit`, stops after
/// that many. Every subject is read and the line port's chat-only view is made here:
/// a filtered read could not know how many to expect (the scan's module says why).
async fn read(
    stream: &stream::Stream,
    lo: u64,
    hi: u64,
    viewer: &Viewer,
    limit: Option<usize>,
) -> Result<Vec<HistoryEvent>, ReadError> {
    let mut out = Vec::new();
    super::scan::scan(stream, Extent::Range { lo, hi }, |m| {
        let Ok(info) = m.info() else {
            return ControlFlow::Continue(());
        };
        let seq = info.stream_sequence;
        if seq > hi {
            return ControlFlow::Break(());
        }
        let ts = u64::try_from(info.published.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
        if let Some(e) = Wire::decode(&m.payload).and_then(|w| visible(seq, ts, w, viewer)) {
            out.push(e);
            if limit.is_some_and(|l| out.len() >= l) {
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    })
    .await
    .map_err(err)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(id: u64) -> HistoryEvent {
        HistoryEvent {
            id,
            ts: 0,
            kind: HistoryKind::Chat,
            from: Sender {
                name: "a".into(),
                ip: "i".into(),
            },
            to: None,
            msg: "m".into(),
        }
    }

    fn q(anchor: Anchor, count: u32) -> Query {
        Query {
            anchor,
            count,
            cut: false,
        }
    }

    const ALL: Bounds = Bounds {
        first: 1,
        last: 100,
    };

    #[test]
    fn windows_sit_below_or_above_the_anchor_within_the_stream() {
        assert_eq!(
            first_window(&q(Anchor::Latest, 10), ALL, 30),
            Some((71, 100))
        );
        assert_eq!(
            first_window(&q(Anchor::Before(50), 10), ALL, 30),
            Some((20, 49))
        );
        assert_eq!(
            first_window(&q(Anchor::Before(5), 10), ALL, 30),
            Some((1, 4))
        );
        assert_eq!(
            first_window(&q(Anchor::After(90), 10), ALL, 30),
            Some((91, 100))
        );
        assert_eq!(first_window(&q(Anchor::After(100), 10), ALL, 30), None);
        assert_eq!(first_window(&q(Anchor::Before(1), 10), ALL, 30), None);
        let empty = Bounds { first: 1, last: 0 };
        assert_eq!(first_window(&q(Anchor::Latest, 10), empty, 30), None);
        let pruned = Bounds {
            first: 60,
            last: 100,
        };
        assert_eq!(
            first_window(&q(Anchor::After(10), 10), pruned, 30),
            Some((60, 100))
        );
    }

    #[test]
    fn pages_keep_the_end_nearest_the_anchor_and_say_more() {
        let read: Vec<_> = (1..=5).map(chat).collect();
        let p = page(&q(Anchor::Latest, 3), read.clone(), ALL);
        assert_eq!(
            p.events.iter().map(|e| e.id).collect::<Vec<_>>(),
            vec![3, 4, 5]
        );
        assert!(p.more && !p.gap);
        let p = page(&q(Anchor::After(0), 3), read.clone(), ALL);
        assert_eq!(
            p.events.iter().map(|e| e.id).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        let p = page(&q(Anchor::Latest, 10), read, ALL);
        assert!(!p.more && !p.gap);
    }

    #[test]
    fn gaps_are_what_retention_removed_or_ids_the_stream_never_had() {
        let pruned = Bounds {
            first: 60,
            last: 100,
        };
        assert!(page(&q(Anchor::After(10), 5), vec![], pruned).gap);
        assert!(!page(&q(Anchor::After(70), 5), vec![], pruned).gap);
        assert!(
            page(&q(Anchor::Latest, 5), vec![chat(99)], pruned).gap,
            "reached the start"
        );
        assert!(!page(&q(Anchor::Latest, 1), vec![chat(99), chat(100)], pruned).gap);
        assert!(
            page(&q(Anchor::After(500), 5), vec![], ALL).gap,
            "another epoch"
        );
        assert!(page(&q(Anchor::Before(500), 5), vec![], ALL).gap);
    }

    #[test]
    fn private_messages_only_to_their_chains_and_nothing_but_chat_on_the_line_port() {
        let private = |chain: &str, to_chain: &str| Wire::Private {
            name: "al".into(),
            srv: "s".into(),
            conn: 1,
            ip: "i".into(),
            req: 1,
            chain: chain.into(),
            to: "bo".into(),
            to_srv: "t".into(),
            to_conn: 2,
            to_chain: to_chain.into(),
            msg: "psst".into(),
        };
        let me = Viewer {
            chain: "mine".into(),
            chat_only: false,
        };
        assert!(visible(1, 0, private("mine", "x"), &me).is_some());
        assert!(visible(1, 0, private("x", "mine"), &me).is_some());
        assert!(visible(1, 0, private("x", "y"), &me).is_none());
        let join = Wire::Join {
            name: "a".into(),
            ip: "i".into(),
            srv: "s".into(),
            conn: 1,
            chain: "c".into(),
        };
        assert_eq!(
            visible(2, 0, join.clone(), &me).map(|e| e.kind),
            Some(HistoryKind::Join)
        );
        let line = Viewer {
            chat_only: true,
            ..me
        };
        assert!(visible(2, 0, join, &line).is_none());
        assert!(visible(3, 0, Wire::Gone { srv: "s".into() }, &line).is_none());
    }
}
