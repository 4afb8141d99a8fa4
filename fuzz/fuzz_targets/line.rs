//! The human line port: `LineDecoder`, `strip_telnet`, `command::parse_typed`, `sanitize`.
//!
//! Input: 1 byte choosing the line limit (`4 * byte`, so 0 is reached), 3 split bytes
//! (see `chat_common_fuzz::split_input`), then the stream.
//! Invariants:
//! - one read or cut reads: the same lines and the same fatal error;
//! - never more than `limit + 1` bytes buffered;
//!   every line is at most `limit` bytes and holds no `\n`; the only fatal error is
//!   `TooLarge { limit }`;
//! - without telnet bytes (0xFF) the result is exactly: split at `\r\n`, `\r\0`, `\r` and
//!   `\n`, a line over the limit is fatal, a non-UTF-8 line is an `InvalidUtf8` item;
//! - `strip_telnet` never grows its input and leaves no IAC byte that is not an escaped
//!   literal;
//! - every parsed command is well formed: private recipients and texts are non-empty and
//!   trimmed, recipients hold no whitespace, public text is the line without trailing
//!   whitespace (or, after `//`, the line with one slash less), unknown `/` commands are
//!   errors; `sanitize` leaves no control character.
#![no_main]

use chat_common::frame::FrameError;
use chat_common::json_stream::StreamError;
use chat_common::command::{self, Request};
use chat_common::line::{LineDecoder, sanitize, strip_telnet};
use chat_common_fuzz::{decode_both_ways, split_input};
use libfuzzer_sys::fuzz_target;

fn check_command(line: &str) {
    let parsed = command::parse_typed(line);
    let trimmed = line.trim();
    let word = trimmed.split(char::is_whitespace).next().unwrap_or("");
    match &parsed {
        Ok(None) => assert!(trimmed.is_empty()),
        Ok(Some(Request::Public { text, confirm: false })) => {
            assert!(!trimmed.is_empty());
            match trimmed.strip_prefix("//") {
                Some(rest) => assert_eq!(*text, format!("/{rest}")),
                None => {
                    assert_eq!(text, line.trim_end());
                    assert!(!word.starts_with('/'), "{line:?} read as public");
                }
            }
        }
        Ok(Some(Request::Public { text, confirm: true })) => {
            assert_eq!(word, "/shout");
            assert!(!text.is_empty() && trimmed.ends_with(text.as_str()));
        }
        Ok(Some(Request::Private { to, text })) => {
            assert!(!to.is_empty() && !text.is_empty(), "{parsed:?}");
            assert!(!to.chars().any(char::is_whitespace), "{parsed:?}");
            assert_eq!(text.trim(), text, "{parsed:?}");
            assert!(trimmed.ends_with(text.as_str()), "{parsed:?} from {line:?}");
            assert!(
                word == format!("@{to}") || word == "/msg" || word == "!msg",
                "{parsed:?} from {line:?}"
            );
        }
        Ok(Some(Request::List)) => assert!(["/list", "/who", "!who"].contains(&word)),
        Ok(Some(Request::Time)) => assert_eq!(word, "/time"),
        Ok(Some(Request::Help)) => assert_eq!(word, "/help"),
        Ok(Some(Request::Standard)) => assert_eq!(word, "/standard"),
        Ok(Some(Request::Quit)) => assert!(["\\q", "/quit", "!logout"].contains(&word)),
        Err(why) => {
            assert!(!why.to_string().is_empty());
            assert!(word.starts_with('/') || word.starts_with('@') || word == "!msg");
        }
    }
    let clean = sanitize(line);
    assert!(!clean.chars().any(char::is_control), "{clean:?}");
    assert_eq!(clean.chars().count(), line.chars().count());
}

/// The expected lines of a stream without telnet bytes: cut at `\r\n`, `\r\0`, `\r` and
/// `\n`; a line over the limit is fatal.
fn plain_lines(stream: &[u8], limit: usize) -> (Vec<Result<String, FrameError>>, bool) {
    let mut parts: Vec<&[u8]> = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i < stream.len() {
        match stream[i] {
            b'\n' => {
                parts.push(&stream[start..i]);
                i += 1;
                start = i;
            }
            b'\r' => {
                parts.push(&stream[start..i]);
                i += if matches!(stream.get(i + 1), Some(b'\n' | 0)) { 2 } else { 1 };
                start = i;
            }
            _ => i += 1,
        }
    }
    let tail = &stream[start..];
    let mut out = Vec::new();
    for p in parts.iter().copied().chain((!tail.is_empty()).then_some(tail)) {
        if p.len() > limit {
            return (out, true);
        }
        out.push(String::from_utf8(p.to_vec()).map_err(|_| FrameError::InvalidUtf8));
    }
    (out, false)
}

fuzz_target!(|data: &[u8]| {
    let Some((&limit_byte, rest)) = data.split_first() else {
        return;
    };
    let limit = usize::from(limit_byte) * 4;
    let Some((stream, chunks)) = split_input(rest) else {
        return;
    };

    let got = decode_both_ways(|| LineDecoder::new(limit), stream, &chunks, limit + 1);
    match &got.error {
        None => {}
        Some(StreamError::TooLarge { limit: l }) => assert_eq!(*l, limit),
        Some(e) => panic!("unexpected error {e:?}"),
    }
    for line in got.items.iter().flatten() {
        assert!(
            line.len() <= limit,
            "line of {} bytes over {limit}",
            line.len()
        );
        assert!(!line.contains('\n'), "{line:?}");
        check_command(line);
    }

    if !stream.contains(&0xFF) {
        let (want, fatal) = plain_lines(stream, limit);
        assert_eq!(got.items, want);
        assert_eq!(got.error.is_some(), fatal);
    }

    let stripped = strip_telnet(stream);
    assert!(stripped.len() <= stream.len());
    // Only `IAC IAC` produces a 0xFF, so there are at most half as many.
    let iac_in = stream.iter().filter(|&&b| b == 0xFF).count();
    let iac_out = stripped.iter().filter(|&&b| b == 0xFF).count();
    assert!(iac_out * 2 <= iac_in);
    if iac_in == 0 {
        assert_eq!(stripped, stream);
    }
    if let Ok(text) = std::str::from_utf8(stream) {
        check_command(text);
    }
});
