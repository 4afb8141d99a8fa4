//! One delimited frame: `ClientFrame::parse`, `ServerFrame::parse` and `line::render`.
//!
//! Input: the bytes of one frame.
//! Invariants:
//! - errors are classified: non-UTF-8 is `InvalidUtf8`; a well-formed JSON object
//!   (serde_json reads it as a `Value`) is never `InvalidJson`/`InvalidUtf8`, and anything
//!   that is not an object is an error;
//! - a parsed client frame re-encodes with `to_json` and parses back to the same `to`/`msg`;
//! - a parsed server frame re-encodes with `to_bytes` (one line ending in `\n`) and parses
//!   back to itself, and `render` shows it as `\r\n`-terminated lines without any other
//!   control character, one line for messages and one per `msg` line for server text.
#![no_main]

use chat_common::frame::FrameError;
use chat_common::line::render;
use chat_common::{ClientFrame, FrameKind, Sender, ServerFrame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let parsed = ClientFrame::parse(data);
    let value = serde_json::from_slice::<serde_json::Value>(data);
    if std::str::from_utf8(data).is_err() {
        assert_eq!(parsed, Err(FrameError::InvalidUtf8));
    }
    match &value {
        Ok(serde_json::Value::Object(_)) => assert!(
            matches!(parsed, Ok(_) | Err(FrameError::WrongShape(_))),
            "JSON object classified as {parsed:?}"
        ),
        Ok(_) => assert!(parsed.is_err(), "non-object accepted: {parsed:?}"),
        Err(_) => {}
    }
    if let Ok(f) = &parsed {
        for from in [
            Sender {
                name: String::new(),
                ip: String::new(),
            },
            Sender {
                name: f.msg.clone(),
                ip: f.to.clone(),
            },
        ] {
            let json = f.to_json(&from);
            let back = ClientFrame::parse(json.as_bytes());
            assert_eq!(back.as_ref(), Ok(f), "{json}");
        }
    }

    let Ok(sf) = ServerFrame::parse(data) else {
        return;
    };
    let bytes = sf.to_bytes();
    assert_eq!(bytes.last(), Some(&b'\n'));
    assert_eq!(bytes.iter().filter(|&&b| b == b'\n').count(), 1);
    assert_eq!(ServerFrame::parse(&bytes).ok().as_ref(), Some(&sf));

    let out = render(&sf);
    let expected_lines = match sf.kind.unwrap_or(FrameKind::System) {
        FrameKind::Chat
        | FrameKind::History
        | FrameKind::Private
        | FrameKind::Join
        | FrameKind::Leave => 1,
        _ => sf.msg.lines().count().max(1),
    };
    assert!(out.ends_with("\r\n"), "{out:?}");
    let body: Vec<&str> = out.split_terminator("\r\n").collect();
    assert_eq!(body.len(), expected_lines, "{out:?}");
    for line in body {
        assert!(
            !line.chars().any(char::is_control),
            "control char in {line:?}"
        );
        assert!(line.starts_with('['), "{line:?}");
    }
});
