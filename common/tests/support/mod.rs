//! Helpers shared by the property tests: splitting a byte stream into reads, driving a
//! decoder over those reads, and strategies for awkward strings.
//!
//! Each integration test file is its own crate and uses only part of this module.
#![allow(dead_code)]

use bytes::BytesMut;
use proptest::prelude::*;
use proptest::sample::Index;
use tokio_util::codec::Decoder;

/// How a byte stream is cut into the reads a socket would deliver.
#[derive(Debug, Clone)]
pub enum Split {
    /// Cut at these positions (taken modulo the stream length; empty reads included).
    Cuts(Vec<Index>),
    /// Reads of this many bytes each (1 = byte by byte).
    Every(usize),
}

impl Split {
    /// The reads, in order; concatenated they give back `data`.
    pub fn chunks<'a>(&self, data: &'a [u8]) -> Vec<&'a [u8]> {
        match self {
            Split::Every(n) => data.chunks((*n).max(1)).collect(),
            Split::Cuts(idx) => {
                let mut cuts: Vec<usize> = idx.iter().map(|i| i.index(data.len() + 1)).collect();
                cuts.sort_unstable();
                let mut out = Vec::with_capacity(cuts.len() + 1);
                let mut start = 0;
                for c in cuts {
                    out.push(&data[start..c]);
                    start = c;
                }
                out.push(&data[start..]);
                out
            }
        }
    }
}

/// Any way of cutting a stream: random cut points, or fixed small reads.
pub fn split_strategy() -> impl Strategy<Value = Split> {
    prop_oneof![
        4 => prop::collection::vec(any::<Index>(), 0..32).prop_map(Split::Cuts),
        1 => (1usize..=7).prop_map(Split::Every),
    ]
}

/// What a decoder produced over a whole stream.
#[derive(Debug)]
pub struct Decoded<I, E> {
    /// Every item, in order, up to the first error.
    pub items: Vec<I>,
    /// The error that ended decoding, if any.
    pub error: Option<E>,
    /// The largest buffer left behind by a `decode` that returned `Ok(None)`: how much the
    /// decoder holds while waiting for more input.
    pub max_pending: usize,
}

/// Feeds `chunks` one read at a time into a fresh buffer, calling `decode` until it wants
/// more after every read, then `decode_eof` until the end. Stops at the first error, like
/// a connection would. Asserts that every item consumes input (no endless loops).
pub fn decode_chunks<D: Decoder>(dec: &mut D, chunks: &[&[u8]]) -> Decoded<D::Item, D::Error> {
    let mut buf = BytesMut::new();
    let mut out = Decoded {
        items: Vec::new(),
        error: None,
        max_pending: 0,
    };
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            let before = buf.len();
            match dec.decode(&mut buf) {
                Ok(Some(item)) => {
                    assert!(
                        buf.len() < before,
                        "decode returned an item without consuming input"
                    );
                    out.items.push(item);
                }
                Ok(None) => {
                    out.max_pending = out.max_pending.max(buf.len());
                    break;
                }
                Err(e) => {
                    out.error = Some(e);
                    return out;
                }
            }
        }
    }
    loop {
        let before = buf.len();
        match dec.decode_eof(&mut buf) {
            Ok(Some(item)) => {
                assert!(
                    buf.len() < before,
                    "decode_eof returned an item without consuming input"
                );
                out.items.push(item);
            }
            Ok(None) => break,
            Err(e) => {
                out.error = Some(e);
                break;
            }
        }
    }
    out
}

/// The whole stream in one read.
pub fn decode_whole<D: Decoder>(dec: &mut D, data: &[u8]) -> Decoded<D::Item, D::Error> {
    decode_chunks(dec, &[data])
}

/// Characters that break naive parsers and terminals.
pub const NASTY_CHARS: &[char] = &[
    '"',
    '\\',
    '{',
    '}',
    '[',
    ']',
    ':',
    ',',
    '/',
    '@',
    '!',
    '#',
    ' ',
    '\t',
    '\n',
    '\r',
    '\0',
    '\u{1}',
    '\u{7f}',
    '\u{1b}',
    '\u{85}',
    '\u{a0}',
    '\u{ad}',
    'é',
    'ß',
    'ſ',
    '李',
    '😀',
    '\u{200b}',
    '\u{202e}',
    '\u{2028}',
    '\u{2029}',
    '\u{feff}',
    '\u{fffd}',
    '\u{10ffff}',
];

/// One character, often an awkward one.
pub fn nasty_char() -> impl Strategy<Value = char> {
    prop_oneof![
        3 => prop::sample::select(NASTY_CHARS),
        2 => prop::char::range('a', 'z'),
        2 => any::<char>(),
    ]
}

/// A string of up to `max` awkward characters: unicode, quotes, backslashes, braces,
/// control characters, line separators.
pub fn nasty_string(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(nasty_char(), 0..=max).prop_map(String::from_iter)
}

/// Arbitrary bytes biased towards the ones JSON and line scanners care about.
pub fn structured_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    let significant: &'static [u8] = b"{}[]\"\\:, \n\r\ttoa0\xff\xc3\x80";
    prop::collection::vec(
        prop_oneof![
            3 => prop::sample::select(significant),
            1 => any::<u8>(),
        ],
        0..=max,
    )
}

/// Every frame type.
#[allow(dead_code)] // not every test file uses it
pub const KINDS: &[chat_common::FrameKind] = &[
    chat_common::FrameKind::Chat,
    chat_common::FrameKind::Private,
    chat_common::FrameKind::Join,
    chat_common::FrameKind::Leave,
    chat_common::FrameKind::System,
    chat_common::FrameKind::Error,
    chat_common::FrameKind::Users,
    chat_common::FrameKind::Welcome,
    chat_common::FrameKind::History,
    chat_common::FrameKind::Other,
];
