//! Properties of `JsonStreamDecoder` on well-formed and recoverably-bad streams
//! (PROTOCOL.md §3.1, §6.1, §6.2): frames come out in order whatever the separators and however the
//! stream is cut into reads, and every bad-but-delimited frame costs exactly one error item.

mod support;

use chat_common::json_stream::StreamError;
use chat_common::{ClientFrame, DEFAULT_MAX_FRAME, FrameError, JsonStreamDecoder, Sender};
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::json;
use support::{Split, decode_chunks, nasty_string, split_strategy};

/// How a valid client frame is written on the wire.
#[derive(Debug, Clone)]
enum Enc {
    /// `ClientFrame::to_json`, as the class-chat clients send it.
    Compact(Sender),
    /// Pretty-printed: newlines and indentation inside the object.
    Pretty,
    /// Keys in another order, an ignored `from` of another shape, unknown fields with
    /// brackets in them, and an empty `msg` written as `null` or left out.
    Reordered { msg_style: u8 },
    /// Every non-ASCII character as a `\uXXXX` escape (surrogate pairs above the BMP),
    /// optionally `/` as `\/`.
    AsciiEscaped { escape_slash: bool },
}

fn enc_strategy() -> impl Strategy<Value = Enc> {
    prop_oneof![
        (nasty_string(8), nasty_string(8)).prop_map(|(name, ip)| Enc::Compact(Sender { name, ip })),
        Just(Enc::Pretty),
        (0u8..3).prop_map(|msg_style| Enc::Reordered { msg_style }),
        any::<bool>().prop_map(|escape_slash| Enc::AsciiEscaped { escape_slash }),
    ]
}

fn frame_strategy() -> impl Strategy<Value = ClientFrame> {
    (nasty_string(16), nasty_string(40)).prop_map(|(to, msg)| ClientFrame {
        to,
        msg,
        label: None,
    })
}

/// A JSON string literal using only ASCII, escaping everything else by hand.
fn ascii_json_string(s: &str, escape_slash: bool) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' if escape_slash => out.push_str("\\/"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || !c.is_ascii() => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn encode(frame: &ClientFrame, enc: &Enc) -> Vec<u8> {
    let s = |v: &str| serde_json::to_string(v).unwrap();
    match enc {
        Enc::Compact(from) => frame.to_json(from).into_bytes(),
        Enc::Pretty => serde_json::to_string_pretty(&json!({
            "from": {"name": "x", "ip": "1.2.3.4"},
            "to": frame.to,
            "msg": frame.msg,
        }))
        .unwrap()
        .into_bytes(),
        Enc::Reordered { msg_style } => {
            let msg = match (frame.msg.is_empty(), msg_style) {
                (true, 1) => ",\"msg\":null".to_string(),
                (true, 2) => String::new(),
                _ => format!(",\"msg\":{}", s(&frame.msg)),
            };
            format!(
                "{{\"extra\":{{\"a\":[1,\"}}]{{\",{{}}]}},\"to\":{}{msg} , \"from\":[\"mallory\",{{\"x\":null}}]}}",
                s(&frame.to)
            )
            .into_bytes()
        }
        Enc::AsciiEscaped { escape_slash } => format!(
            "{{\"to\":{},\"msg\":{}}}",
            ascii_json_string(&frame.to, *escape_slash),
            ascii_json_string(&frame.msg, *escape_slash)
        )
        .into_bytes(),
    }
}

fn separator() -> impl Strategy<Value = &'static str> {
    select(&["", "", " ", "\n", "\r\n", "\t", "  \r\n\n "][..])
}

/// Concatenates `parts`, each followed by its separator, after a leading separator.
fn join(lead: &str, parts: &[Vec<u8>], seps: &[&str]) -> Vec<u8> {
    let mut stream = lead.as_bytes().to_vec();
    for (i, p) in parts.iter().enumerate() {
        stream.extend_from_slice(p);
        stream.extend_from_slice(seps[i % seps.len()].as_bytes());
    }
    stream
}

fn decode_split(
    stream: &[u8],
    split: &Split,
    max: usize,
) -> support::Decoded<Result<ClientFrame, FrameError>, StreamError> {
    decode_chunks(&mut JsonStreamDecoder::new(max), &split.chunks(stream))
}

#[test]
fn ascii_escaper_produces_json_that_serde_reads_back() {
    let s = "a\"\\/\n\u{1}é😀\u{2028}";
    let lit = ascii_json_string(s, true);
    assert!(lit.is_ascii());
    assert_eq!(serde_json::from_str::<String>(&lit).unwrap(), s);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Property 1: valid frames, back to back with any separators, split into any reads,
    /// decode to the same frames in order with no error.
    #[test]
    fn valid_frames_decode_in_order_under_any_split(
        frames in prop::collection::vec((frame_strategy(), enc_strategy()), 0..8),
        seps in prop::collection::vec(separator(), 1..8),
        lead in separator(),
        split in split_strategy(),
    ) {
        let parts: Vec<Vec<u8>> = frames.iter().map(|(f, e)| encode(f, e)).collect();
        let stream = join(lead, &parts, &seps);
        let out = decode_split(&stream, &split, DEFAULT_MAX_FRAME);
        prop_assert!(out.error.is_none(), "stream error: {:?}", out.error);
        let expected: Vec<Result<ClientFrame, FrameError>> =
            frames.iter().map(|(f, _)| Ok(f.clone())).collect();
        prop_assert_eq!(out.items, expected);
    }

    /// The size limit is inclusive and exact: with the limit at the largest frame's size
    /// every frame decodes; one byte less and the stream fails with `TooLarge` exactly at
    /// the first largest frame, after every frame before it was delivered.
    #[test]
    fn frame_limit_is_exact_under_any_split(
        frames in prop::collection::vec((frame_strategy(), enc_strategy()), 1..6),
        seps in prop::collection::vec(separator(), 1..6),
        split in split_strategy(),
    ) {
        let parts: Vec<Vec<u8>> = frames.iter().map(|(f, e)| encode(f, e)).collect();
        let stream = join("", &parts, &seps);
        let largest = parts.iter().map(Vec::len).max().unwrap();

        let out = decode_split(&stream, &split, largest);
        prop_assert!(out.error.is_none(), "stream error at limit {}: {:?}", largest, out.error);
        prop_assert_eq!(out.items.len(), frames.len());

        let out = decode_split(&stream, &split, largest - 1);
        let first_big = parts.iter().position(|p| p.len() == largest).unwrap();
        prop_assert!(
            matches!(out.error, Some(StreamError::TooLarge { limit }) if limit == largest - 1),
            "expected TooLarge, got {:?}", out.error
        );
        let expected: Vec<Result<ClientFrame, FrameError>> =
            frames[..first_big].iter().map(|(f, _)| Ok(f.clone())).collect();
        prop_assert_eq!(out.items, expected);
    }
}

/// One element of a mixed stream.
#[derive(Debug, Clone)]
enum Item {
    Good(ClientFrame, Enc),
    /// A balanced object with invalid UTF-8 somewhere inside.
    BadUtf8(Vec<u8>),
    /// A balanced object that is not valid JSON.
    BadJson(&'static str),
    /// Valid JSON of the wrong shape.
    WrongShape(&'static str),
    /// A line of text that is not JSON at all (ends with `\n`).
    Junk(String),
}

/// What one item must decode to.
#[derive(Debug, Clone, PartialEq)]
enum Expect {
    Frame(ClientFrame),
    Utf8,
    Json,
    Shape,
    NotObject,
}

const INVALID_UTF8: &[&[u8]] = &[
    b"\xff",
    b"\xfe",
    b"\x80",
    b"\xc3",             // truncated 2-byte sequence (followed by ASCII)
    b"\xc0\xaf",         // overlong '/'
    b"\xe0\x80\xaf",     // overlong '/'
    b"\xf0\x80\x80\xaf", // overlong '/'
    b"\xed\xa0\x80",     // UTF-8-encoded surrogate U+D800
    b"\xf4\x90\x80\x80", // above U+10FFFF
    b"\xf8\x88\x80\x80\x80",
];

const BAD_JSON: &[&str] = &[
    r#"{"to":,}"#,
    r#"{"to":"a",}"#,
    r#"{"to" "a"}"#,
    r#"{to:"a"}"#,
    r#"{"to":'a'}"#,
    r#"{"to":"a"]"#,
    r#"{]"#,
    r#"{"to":"a" x}"#,
    r#"{"to":"a\q"}"#,
    r#"{"to":"a\u12"}"#,
    r#"{"to":"\ud800"}"#,
    r#"{"to":"\udc00\ud800"}"#,
    "{\"to\":\"a\u{1}b\"}",
    "{\"to\":\"a\0\"}",
    "{\"to\":\"line\nbreak\"}",
    r#"{{}}"#,
    r#"{"to":"a","msg":"x"]"#,
    r#"{"to":tru}"#,
    r#"{"to":"a","msg":01}"#,
];

const WRONG_SHAPE: &[&str] = &[
    r#"{"to":1}"#,
    r#"{"to":null,"msg":"x"}"#,
    r#"{"to":["a"]}"#,
    r#"{"to":{"name":"a"}}"#,
    r#"{"msg":"x"}"#,
    r#"{}"#,
    r#"{"to":"a","msg":5}"#,
    r#"{"to":"a","msg":{"x":"}"}}"#,
    r#"{"to":"a","msg":true}"#,
    r#"{"to":"a","to":"b"}"#,
    r#"[]"#,
    r#"[1,2]"#,
    r#"["a"]"#,
    r#"[[], 1]"#,
    r#"[{"to":"a","msg":"b"}]"#,
];

const JUNK_SCALARS: &[&str] = &[
    "123",
    "true",
    "null",
    "\"just a string\"",
    "-1.5e3",
    "}",
    "]",
];

fn item_strategy() -> impl Strategy<Value = Item> {
    let bad_utf8 = ("[a-z é]{0,6}", select(INVALID_UTF8), "[a-z]{0,4}", 0u8..3).prop_map(
        |(pre, bad, post, place)| {
            let mut inner = pre.into_bytes();
            inner.extend_from_slice(bad);
            inner.extend_from_slice(post.as_bytes());
            let mut out = Vec::new();
            match place {
                0 => {
                    out.extend_from_slice(b"{\"to\":\"");
                    out.extend_from_slice(&inner);
                    out.extend_from_slice(b"\",\"msg\":\"x\"}");
                }
                1 => {
                    out.extend_from_slice(b"{\"to\":\"bob\",\"msg\":\"");
                    out.extend_from_slice(&inner);
                    out.extend_from_slice(b"\"}");
                }
                _ => {
                    // Outside any string.
                    out.extend_from_slice(b"{\"to\":\"bob\",");
                    out.extend_from_slice(bad);
                    out.extend_from_slice(b"\"msg\":\"x\"}");
                }
            }
            Item::BadUtf8(out)
        },
    );
    let junk = prop_oneof![
        "[a-zA-Z0-9.!?][a-zA-Z0-9 .!?\"\\]]{0,20}",
        select(JUNK_SCALARS).prop_map(str::to_string),
    ]
    .prop_map(|s| Item::Junk(s + "\n"));
    prop_oneof![
        4 => (frame_strategy(), enc_strategy()).prop_map(|(f, e)| Item::Good(f, e)),
        1 => bad_utf8,
        1 => select(BAD_JSON).prop_map(Item::BadJson),
        1 => select(WRONG_SHAPE).prop_map(Item::WrongShape),
        1 => junk,
    ]
}

fn item_bytes(item: &Item) -> Vec<u8> {
    match item {
        Item::Good(f, e) => encode(f, e),
        Item::BadUtf8(b) => b.clone(),
        Item::BadJson(s) | Item::WrongShape(s) => s.as_bytes().to_vec(),
        Item::Junk(s) => s.as_bytes().to_vec(),
    }
}

fn expectation(item: &Item) -> Expect {
    match item {
        Item::Good(f, _) => Expect::Frame(f.clone()),
        Item::BadUtf8(_) => Expect::Utf8,
        Item::BadJson(_) => Expect::Json,
        Item::WrongShape(_) => Expect::Shape,
        Item::Junk(_) => Expect::NotObject,
    }
}

fn classify(r: &Result<ClientFrame, FrameError>) -> Expect {
    match r {
        Ok(f) => Expect::Frame(f.clone()),
        Err(FrameError::InvalidUtf8) => Expect::Utf8,
        Err(FrameError::InvalidJson(_)) => Expect::Json,
        Err(FrameError::WrongShape(_)) => Expect::Shape,
        Err(FrameError::NotAnObject) => Expect::NotObject,
        Err(FrameError::Truncated) => panic!("Truncated on a complete stream"),
    }
}

#[test]
fn every_bad_fixture_is_one_error_of_its_kind_on_its_own() {
    for (list, want) in [(BAD_JSON, Expect::Json), (WRONG_SHAPE, Expect::Shape)] {
        for raw in list {
            let out = decode_chunks(&mut JsonStreamDecoder::new(1024), &[raw.as_bytes()]);
            assert!(out.error.is_none(), "{raw}");
            let got: Vec<Expect> = out.items.iter().map(classify).collect();
            assert_eq!(
                got,
                [&want].map(|w| match w {
                    Expect::Json => Expect::Json,
                    _ => Expect::Shape,
                }),
                "{raw}"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Property 2: in a stream mixing valid frames with bad but delimited ones (invalid
    /// UTF-8, invalid JSON, wrong types, arrays, non-JSON lines), each bad frame yields
    /// exactly one error of the right kind, every valid frame still decodes, all in order,
    /// and the stream itself never fails, however it is split.
    #[test]
    fn bad_frames_cost_one_error_each_and_never_desync(
        items in prop::collection::vec(item_strategy(), 0..12),
        seps in prop::collection::vec(separator(), 1..8),
        lead in separator(),
        split in split_strategy(),
    ) {
        let parts: Vec<Vec<u8>> = items.iter().map(item_bytes).collect();
        let stream = join(lead, &parts, &seps);
        let out = decode_split(&stream, &split, 4096);
        prop_assert!(out.error.is_none(), "stream error: {:?}", out.error);
        let got: Vec<Expect> = out.items.iter().map(classify).collect();
        let want: Vec<Expect> = items.iter().map(expectation).collect();
        prop_assert_eq!(got, want);
    }

    /// A stream cut off in the middle of a frame reports `Truncated` exactly once at the
    /// end, after every complete frame.
    #[test]
    fn truncated_tail_reports_once(
        frames in prop::collection::vec(frame_strategy(), 0..5),
        last in frame_strategy(),
        cut in any::<prop::sample::Index>(),
        split in split_strategy(),
    ) {
        let from = Sender { name: "a".into(), ip: "b".into() };
        let mut stream: Vec<u8> = Vec::new();
        for f in &frames {
            stream.extend_from_slice(f.to_json(&from).as_bytes());
            stream.push(b'\n');
        }
        let tail = last.to_json(&from).into_bytes();
        // Keep at least the opening brace, drop at least the closing one.
        let keep = 1 + cut.index(tail.len() - 1);
        stream.extend_from_slice(&tail[..keep]);
        let out = decode_split(&stream, &split, DEFAULT_MAX_FRAME);
        prop_assert!(out.error.is_none());
        let mut want: Vec<Result<ClientFrame, FrameError>> =
            frames.into_iter().map(Ok).collect();
        want.push(Err(FrameError::Truncated));
        prop_assert_eq!(out.items, want);
    }
}
