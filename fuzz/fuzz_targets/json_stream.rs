//! The JSON frame stream of the client port (`JsonSplitter`, `JsonStreamDecoder`,
//! `ServerFrameDecoder`).
//!
//! Input: 3 split bytes (see `chat_common_fuzz::split_input`), then the stream.
//! Invariants:
//! - one read or cut reads: the same items and the same fatal error;
//! - never more than `MAX` bytes buffered while waiting, no frame longer than `MAX`;
//! - every frame the splitter yields starts with `{`/`[` and ends with the matching
//!   closer; the typed decoders yield exactly the splitter's frames, parsed;
//! - a stream that serde_json reads as back-to-back objects/arrays (whitespace between,
//!   none over the limit) is split into exactly those values, with no error;
//! - a decoded client frame re-encodes (`to_json`) and parses back to itself; a decoded
//!   server frame does the same through `to_bytes`.
#![no_main]

use chat_common::frame::FrameError;
use chat_common::json_stream::JsonSplitter;
use chat_common::{ClientFrame, JsonStreamDecoder, Sender, ServerFrame, ServerFrameDecoder};
use chat_common_fuzz::{decode_both_ways, split_input};
use libfuzzer_sys::fuzz_target;

/// Small, so the over-limit path is reached by short inputs.
const MAX: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let Some((stream, chunks)) = split_input(data) else {
        return;
    };

    let raw = decode_both_ways(|| JsonSplitter::new(MAX), stream, &chunks, MAX);
    for frame in raw.items.iter().flatten() {
        assert!(
            frame.len() <= MAX,
            "frame of {} bytes over the limit",
            frame.len()
        );
        let (first, last) = (frame[0], frame[frame.len() - 1]);
        assert!(
            matches!((first, last), (b'{', b'}' | b']') | (b'[', b'}' | b']')),
            "frame {frame:?} is not bracketed"
        );
    }

    let client = decode_both_ways(|| JsonStreamDecoder::new(MAX), stream, &chunks, MAX);
    let server = decode_both_ways(|| ServerFrameDecoder::new(MAX), stream, &chunks, MAX);
    // The typed decoders are the splitter plus a parse of each frame.
    assert_eq!(format!("{:?}", raw.error), format!("{:?}", client.error));
    assert_eq!(format!("{:?}", raw.error), format!("{:?}", server.error));
    assert_eq!(raw.items.len(), client.items.len());
    assert_eq!(raw.items.len(), server.items.len());
    for ((r, c), s) in raw.items.iter().zip(&client.items).zip(&server.items) {
        let want_c = r.clone().and_then(|f| ClientFrame::parse(&f));
        assert_eq!(&want_c, c);
        match (r, s) {
            (Ok(f), Ok(sf)) => assert_eq!(ServerFrame::parse(f).ok().as_ref(), Some(sf)),
            (Ok(f), Err(FrameError::InvalidJson(_))) => assert!(ServerFrame::parse(f).is_err()),
            (Err(e), Err(se)) => assert_eq!(e, se),
            other => panic!("server decoder disagrees with the splitter: {other:?}"),
        }
    }

    // Round trips of what was decoded.
    let me = Sender {
        name: "fuzz".into(),
        ip: "127.0.0.1".into(),
    };
    for f in client.items.iter().flatten() {
        let json = f.to_json(&me);
        assert_eq!(
            ClientFrame::parse(json.as_bytes()).as_ref(),
            Ok(f),
            "{json}"
        );
    }
    for f in server.items.iter().flatten() {
        let bytes = f.to_bytes();
        assert_eq!(ServerFrame::parse(&bytes).ok().as_ref(), Some(f));
    }

    // Differential check against serde_json's own stream reader.
    let mut expect: Vec<&[u8]> = Vec::new();
    let mut values = serde_json::Deserializer::from_slice(stream).into_iter::<serde_json::Value>();
    let mut start = 0;
    let mut all_ok = true;
    while let Some(v) = values.next() {
        let end = values.byte_offset();
        match v {
            Ok(serde_json::Value::Object(_) | serde_json::Value::Array(_)) => {
                let span = &stream[start..end];
                let lead = span.iter().take_while(|b| b.is_ascii_whitespace()).count();
                expect.push(&span[lead..]);
                start = end;
            }
            _ => {
                all_ok = false;
                break;
            }
        }
    }
    if all_ok && expect.iter().all(|v| v.len() <= MAX) {
        assert!(raw.error.is_none(), "valid stream refused: {:?}", raw.error);
        let got: Vec<&[u8]> = raw
            .items
            .iter()
            .map(|i| i.as_ref().map(|b| &b[..]).unwrap_or(b"<error>"))
            .collect();
        assert_eq!(
            got, expect,
            "valid stream split differently from serde_json"
        );
    }
});
