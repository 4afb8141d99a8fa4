//! The history query (PROTOCOL.md §10.2): what `{"to":"/history","msg":Q}` asks for on the
//! JSON port, and `/history [N]` on the line port.
//!
//! `Q` is `latest [N]`, `before ID [N]` or `after ID [N]`: a keyword and numbers separated
//! by spaces. `N` defaults to [`DEFAULT_COUNT`]; a larger `N` than [`MAX_COUNT`] is cut to
//! it, and the answer then says `more` (there may be more in that direction). `before` and
//! `after` exclude `ID` itself. Pure: the broker's log answers the query.

use std::fmt;

use serde::{Deserialize, Serialize};

/// How many events a query without `N` asks for.
pub const DEFAULT_COUNT: u32 = 50;

/// The most events one answer holds: a larger `N` is cut to this.
pub const MAX_COUNT: u32 = 500;

/// How many chat messages `/history` without `N` prints on the line port.
pub const LINE_DEFAULT_COUNT: u32 = 20;

/// The most text one history answer carries: a client's send queue (8 MiB by default) must
/// hold it with room to spare, or asking for 500 long messages would get the asker cut
/// off as not reading. What does not fit is left for the next page (`more`).
pub const MAX_ANSWER_BYTES: usize = 2 * 1024 * 1024;

/// What one event weighs in an answer beside its text (names, ids, the frame's keys).
const EVENT_OVERHEAD: usize = 128;

/// Drops events from the far end of `events` (the oldest when `keep_newest`) until their
/// texts (`text_len`) fit in `max` bytes, always keeping one; returns whether any were
/// dropped. Both backends cut their answers with it.
pub fn keep_within_bytes<T>(
    events: &mut Vec<T>,
    max: usize,
    keep_newest: bool,
    text_len: impl Fn(&T) -> usize,
) -> bool {
    let size = |e: &T| text_len(e) + EVENT_OVERHEAD;
    let mut total = 0usize;
    let mut keep = 0usize;
    let mut fits = |e: &T| {
        let s = size(e);
        if keep > 0 && total + s > max {
            return false;
        }
        total += s;
        keep += 1;
        true
    };
    if keep_newest {
        let _ = events.iter().rev().all(&mut fits);
    } else {
        let _ = events.iter().all(&mut fits);
    }
    if keep == events.len() {
        return false;
    }
    if keep_newest {
        events.drain(..events.len() - keep);
    } else {
        events.truncate(keep);
    }
    true
}

/// Where a query looks, from which id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Anchor {
    /// The newest events.
    Latest,
    /// The events just before this id (excluding it).
    Before(u64),
    /// The events just after this id (excluding it).
    After(u64),
}

/// A parsed history query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Query {
    /// Where it looks.
    pub anchor: Anchor,
    /// How many events it asks for, at most [`MAX_COUNT`].
    pub count: u32,
    /// It asked for more than [`MAX_COUNT`]: the answer says `more` (PROTOCOL.md §10.2).
    pub cut: bool,
}

impl Query {
    /// The newest `count` events (cut to [`MAX_COUNT`]).
    pub fn latest(count: u32) -> Query {
        Query {
            anchor: Anchor::Latest,
            count: count.min(MAX_COUNT),
            cut: count > MAX_COUNT,
        }
    }
}

/// Why a query could not be read. Each names the part that was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum QueryError {
    /// Nothing was asked.
    #[error("say what to show: latest [N], before ID [N] or after ID [N]")]
    Empty,
    /// The first word is not a keyword.
    #[error("unknown history keyword {0:?}: use latest [N], before ID [N] or after ID [N]")]
    UnknownKeyword(String),
    /// `before` or `after` without an id.
    #[error("{0} needs the id of a message: {0} ID [N]")]
    MissingId(&'static str),
    /// An id or count that is not a whole number.
    #[error("{0:?} is not a whole number")]
    NotANumber(String),
    /// A count of zero.
    #[error("the count must be at least 1")]
    ZeroCount,
    /// Words after the count.
    #[error("unexpected {0:?} after the query")]
    Trailing(String),
}

/// Reads a number of decimal digits only (no sign, no spaces).
fn number(word: &str) -> Result<u64, QueryError> {
    if word.is_empty() || !word.bytes().all(|b| b.is_ascii_digit()) {
        return Err(QueryError::NotANumber(word.to_string()));
    }
    // All digits: too large for u64 only.
    Ok(word.parse().unwrap_or(u64::MAX))
}

/// The count word, if any: at least 1; any larger than [`MAX_COUNT`] (however large) is
/// cut.
fn count(word: Option<&str>) -> Result<(u32, bool), QueryError> {
    let Some(word) = word else {
        return Ok((DEFAULT_COUNT, false));
    };
    match number(word)? {
        0 => Err(QueryError::ZeroCount),
        n if n > u64::from(MAX_COUNT) => Ok((MAX_COUNT, true)),
        // At most MAX_COUNT, so it fits.
        n => Ok((u32::try_from(n).unwrap_or(MAX_COUNT), false)),
    }
}

/// Parses `q` (PROTOCOL.md §10.2). Words are separated by one or more spaces; leading and
/// trailing whitespace is ignored.
pub fn parse_query(q: &str) -> Result<Query, QueryError> {
    let mut words = q.split_ascii_whitespace();
    let keyword = words.next().ok_or(QueryError::Empty)?;
    let anchor = match keyword {
        "latest" => Anchor::Latest,
        "before" | "after" => {
            let which = if keyword == "before" {
                "before"
            } else {
                "after"
            };
            let id = number(words.next().ok_or(QueryError::MissingId(which))?)?;
            if which == "before" {
                Anchor::Before(id)
            } else {
                Anchor::After(id)
            }
        }
        other => return Err(QueryError::UnknownKeyword(other.to_string())),
    };
    let (count, cut) = count(words.next())?;
    if let Some(extra) = words.next() {
        return Err(QueryError::Trailing(extra.to_string()));
    }
    Ok(Query { anchor, count, cut })
}

/// Parses the line port's `/history [N]` argument (after the command word): the last `N`
/// chat messages, [`LINE_DEFAULT_COUNT`] by default.
pub fn parse_line_count(arg: &str) -> Result<Query, QueryError> {
    let mut words = arg.split_ascii_whitespace();
    let query = match words.next() {
        None => Query::latest(LINE_DEFAULT_COUNT),
        Some(w) => {
            let (count, cut) = count(Some(w))?;
            Query {
                anchor: Anchor::Latest,
                count,
                cut,
            }
        }
    };
    if let Some(extra) = words.next() {
        return Err(QueryError::Trailing(extra.to_string()));
    }
    Ok(query)
}

impl fmt::Display for Query {
    /// The query as a client writes it (what [`parse_query`] reads back).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.anchor {
            Anchor::Latest => write!(f, "latest {}", self.count),
            Anchor::Before(id) => write!(f, "before {id} {}", self.count),
            Anchor::After(id) => write!(f, "after {id} {}", self.count),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn an_answer_is_cut_at_its_far_end_and_keeps_one() {
        let texts = |v: &[usize]| v.to_vec();
        // Each weighs its length plus 128: two of 100 fit in 460, three do not.
        let mut newest = texts(&[100, 100, 100]);
        assert!(keep_within_bytes(&mut newest, 460, true, |n| *n));
        assert_eq!(newest.len(), 2);
        let mut oldest = vec![1usize, 2, 300];
        assert!(keep_within_bytes(&mut oldest, 300, false, |n| *n));
        assert_eq!(oldest, vec![1, 2]);
        let mut huge = vec![10_000usize];
        assert!(
            !keep_within_bytes(&mut huge, 10, true, |n| *n),
            "one is always kept"
        );
        let mut fits = vec![1usize, 2];
        assert!(!keep_within_bytes(&mut fits, MAX_ANSWER_BYTES, true, |n| {
            *n
        }));
    }

    #[test]
    fn the_three_forms_with_and_without_a_count() {
        assert_eq!(parse_query("latest"), Ok(Query::latest(50)));
        assert_eq!(parse_query("  latest   7 "), Ok(Query::latest(7)));
        assert_eq!(
            parse_query("before 42"),
            Ok(Query {
                anchor: Anchor::Before(42),
                count: 50,
                cut: false
            })
        );
        assert_eq!(
            parse_query("after 0 500"),
            Ok(Query {
                anchor: Anchor::After(0),
                count: 500,
                cut: false
            })
        );
    }

    #[test]
    fn a_count_past_the_maximum_is_cut_and_says_so() {
        let q = parse_query("latest 501").unwrap();
        assert_eq!((q.count, q.cut), (500, true));
        let q = parse_query("after 3 99999999999999999999999").unwrap();
        assert_eq!((q.anchor, q.count, q.cut), (Anchor::After(3), 500, true));
    }

    #[test]
    fn malformed_queries_say_what_is_wrong() {
        assert_eq!(parse_query(""), Err(QueryError::Empty));
        assert_eq!(parse_query("   "), Err(QueryError::Empty));
        assert_eq!(
            parse_query("LATEST"),
            Err(QueryError::UnknownKeyword("LATEST".into()))
        );
        assert_eq!(parse_query("before"), Err(QueryError::MissingId("before")));
        assert_eq!(parse_query("after"), Err(QueryError::MissingId("after")));
        assert_eq!(
            parse_query("before x"),
            Err(QueryError::NotANumber("x".into()))
        );
        assert_eq!(
            parse_query("latest -1"),
            Err(QueryError::NotANumber("-1".into()))
        );
        assert_eq!(
            parse_query("latest +1"),
            Err(QueryError::NotANumber("+1".into()))
        );
        assert_eq!(parse_query("latest 0"), Err(QueryError::ZeroCount));
        assert_eq!(
            parse_query("after 1 2 3"),
            Err(QueryError::Trailing("3".into()))
        );
    }

    #[test]
    fn the_line_ports_count() {
        assert_eq!(parse_line_count(""), Ok(Query::latest(20)));
        assert_eq!(parse_line_count(" 5 "), Ok(Query::latest(5)));
        assert_eq!(parse_line_count("900"), Ok(Query::latest(900)));
        assert!(parse_line_count("five").is_err());
        assert!(parse_line_count("5 6").is_err());
    }

    fn anchor() -> impl Strategy<Value = Anchor> {
        prop_oneof![
            Just(Anchor::Latest),
            any::<u64>().prop_map(Anchor::Before),
            any::<u64>().prop_map(Anchor::After),
        ]
    }

    proptest! {
        /// What a client writes is read back as it meant it.
        #[test]
        fn a_written_query_reads_back(anchor in anchor(), count in 1u32..=MAX_COUNT, pad in "[ ]{0,3}") {
            let q = Query { anchor, count, cut: false };
            let text = format!("{pad}{}{pad}", q).replace(' ', &format!(" {pad}"));
            prop_assert_eq!(parse_query(&text), Ok(q));
        }

        /// Any text gets an answer or an error, never a panic, and an answer is within
        /// the bounds.
        #[test]
        fn any_text_is_parsed_or_refused(q in "\\PC{0,40}") {
            if let Ok(parsed) = parse_query(&q) {
                prop_assert!((1..=MAX_COUNT).contains(&parsed.count));
            }
        }

        /// Any count is kept up to the maximum and cut past it, with `cut` telling which.
        #[test]
        fn counts_are_cut_at_the_maximum(n in 1u64..u64::MAX) {
            let q = parse_query(&format!("latest {n}")).unwrap();
            prop_assert_eq!(u64::from(q.count), n.min(u64::from(MAX_COUNT)));
            prop_assert_eq!(q.cut, n > u64::from(MAX_COUNT));
        }
    }
}
