//! Reading part of a stream once, in batches: what `/history` and a starting server's read
//! of who is online both need (an ephemeral pull consumer that acknowledges nothing,
//! dropped when done).
//!
//! A read knows from the stream's info how much it is to get, and asks for exactly that.
//! It never trusts the consumer's count of what is pending: nats-server 2.9 sometimes
//! counts one message too few for a fresh consumer (docs/NATS.md, "History"), and a read
//! that stopped at "none pending", or a no-wait fetch the server answered "no messages"
//! from that count, left the newest event out.

use std::ops::ControlFlow;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use futures_util::StreamExt;

/// Messages asked for per request.
const BATCH: u64 = 256;

/// How long a request waits for what the stream's info promised. It only waits when
/// fewer are there (retention removed some meanwhile), so this bounds that case.
const WAIT: Duration = Duration::from_secs(1);

/// What a read gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Extent {
    /// Every message with a sequence in `lo..=hi`, whatever its subject. Sequences have no
    /// holes but at the bottom, where retention removes, so the count left is exact.
    Range {
        /// The first sequence.
        lo: u64,
        /// The last.
        hi: u64,
    },
    /// The last message of each of the stream's `subjects` subjects. `all` is the
    /// stream's own subject: the server wants a filter for this policy, and one that
    /// narrowed the read would make the count inexact.
    LastPerSubject {
        /// The stream's subject (`$KV.<bucket>.>`).
        all: String,
        /// How many subjects the stream's info said it holds.
        subjects: u64,
    },
}

impl Extent {
    /// The consumer that reads it.
    fn config(&self) -> consumer::pull::Config {
        let (deliver_policy, filter_subject) = match self {
            Extent::Range { lo, .. } => (
                consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: *lo,
                },
                String::new(),
            ),
            Extent::LastPerSubject { all, .. } => {
                (consumer::DeliverPolicy::LastPerSubject, all.clone())
            }
        };
        consumer::pull::Config {
            deliver_policy,
            filter_subject,
            ack_policy: consumer::AckPolicy::None,
            inactive_threshold: Duration::from_secs(10),
            memory_storage: true,
            num_replicas: 1,
            ..Default::default()
        }
    }
}

/// Where a read stands: what it has had, and so what it still asks for. Pure.
#[derive(Debug, Clone)]
pub struct Progress {
    extent: Extent,
    seen: u64,
    last: Option<u64>,
}

impl Progress {
    /// Nothing read yet.
    pub fn new(extent: Extent) -> Progress {
        Progress {
            extent,
            seen: 0,
            last: None,
        }
    }

    /// Message `seq` came.
    pub fn saw(&mut self, seq: u64) {
        self.seen += 1;
        self.last = Some(seq);
    }

    /// How many more to ask for (0: done).
    pub fn left(&self) -> u64 {
        match self.extent {
            Extent::Range { lo, hi } => {
                // None: the last sequence there can be came.
                let next = match self.last {
                    None => Some(lo),
                    Some(s) => s.checked_add(1).map(|n| n.max(lo)),
                };
                match next {
                    Some(n) if n <= hi => hi - n + 1,
                    _ => 0,
                }
            }
            Extent::LastPerSubject { subjects, .. } => subjects.saturating_sub(self.seen),
        }
    }
}

/// Why the stream could not be read.
#[derive(Debug, thiserror::Error)]
#[error("reading a stream: {0}")]
pub struct ScanError(String);

fn err(e: impl std::fmt::Display) -> ScanError {
    ScanError(e.to_string())
}

/// Hands `visit` the messages of `extent` in order, until it breaks, all came, or a
/// request waited [`WAIT`] for nothing.
pub async fn scan(
    stream: &stream::Stream,
    extent: Extent,
    mut visit: impl FnMut(&jetstream::Message) -> ControlFlow<()>,
) -> Result<(), ScanError> {
    let config = extent.config();
    let mut progress = Progress::new(extent);
    if progress.left() == 0 {
        return Ok(());
    }
    let reader = stream.create_consumer(config).await.map_err(err)?;
    let result = async {
        loop {
            let left = progress.left();
            if left == 0 {
                return Ok(());
            }
            // Exactly what is left (at most a batch): a request for more would wait out
            // WAIT for messages that do not exist.
            let mut batch = reader
                .batch()
                .max_messages(usize::try_from(left.min(BATCH)).unwrap_or(1))
                .expires(WAIT)
                .messages()
                .await
                .map_err(err)?;
            let mut n = 0usize;
            while let Some(m) = batch.next().await {
                let m = m.map_err(err)?;
                n += 1;
                progress.saw(m.info().map_or(0, |i| i.stream_sequence));
                if visit(&m).is_break() {
                    return Ok(());
                }
            }
            if n == 0 {
                return Ok(());
            }
        }
    }
    .await;
    let _ = stream.delete_consumer(&reader.cached_info().name).await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_asks_for_what_is_left_of_it() {
        let mut p = Progress::new(Extent::Range { lo: 2, hi: 5 });
        assert_eq!(p.left(), 4);
        p.saw(2);
        p.saw(3);
        assert_eq!(p.left(), 2);
        p.saw(5);
        assert_eq!(p.left(), 0);
    }

    #[test]
    fn a_range_whose_bottom_was_removed_counts_from_what_came() {
        let mut p = Progress::new(Extent::Range { lo: 1, hi: 10 });
        p.saw(8);
        assert_eq!(p.left(), 2);
        p.saw(12);
        assert_eq!(p.left(), 0, "past the end: done");
    }

    #[test]
    fn an_empty_range_asks_for_nothing() {
        assert_eq!(Progress::new(Extent::Range { lo: 5, hi: 4 }).left(), 0);
        assert_eq!(
            Progress::new(Extent::Range {
                lo: u64::MAX,
                hi: u64::MAX
            })
            .left(),
            1
        );
        let mut p = Progress::new(Extent::Range {
            lo: u64::MAX,
            hi: u64::MAX,
        });
        p.saw(u64::MAX);
        assert_eq!(p.left(), 0);
    }

    #[test]
    fn last_per_subject_asks_for_one_per_subject() {
        let mut p = Progress::new(Extent::LastPerSubject {
            all: "$KV.b.>".into(),
            subjects: 3,
        });
        assert_eq!(p.left(), 3);
        p.saw(40);
        p.saw(7);
        assert_eq!(p.left(), 1);
        p.saw(9);
        p.saw(11);
        assert_eq!(p.left(), 0, "more than promised: done");
    }
}
