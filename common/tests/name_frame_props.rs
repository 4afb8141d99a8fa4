//! Properties of user names (PROTOCOL.md §2.2), of the raw-name login (§2.1) and of the JSON
//! frames in both directions (PROTOCOL.md §3, §5).

mod support;

use chat_common::ErrorCode;
use chat_common::frame::{ClientFrame, FrameKind, Sender, ServerFrame};
use chat_common::json_stream::JsonStreamDecoder;
use chat_common::login::{split_at_timeout, split_login};
use chat_common::name::{
    FORBIDDEN_FIRST, MAX_NAME_CHARS, NameError, NameKey, RESERVED_NAMES, Skeleton, clash,
    parse_name, validate_name,
};
use proptest::prelude::*;
use proptest::sample::select;
use support::{KINDS, decode_chunks, nasty_char, nasty_string, split_strategy};

/// Candidate names: anything, awkward characters, plausible names, reserved words in
/// random case, and names right around the length limit.
fn candidate() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        nasty_string(36),
        "[A-Za-z0-9_.\\-]{0,40}",
        "[/!@\\\\#*]?[A-Za-z]{0,34}",
        (select(RESERVED_NAMES), any::<u64>()).prop_map(|(r, bits)| random_case(r, bits)),
        prop::collection::vec(nasty_char(), 30..=34).prop_map(String::from_iter),
    ]
}

/// `s` with the case of each ASCII letter flipped according to `bits`.
fn random_case(s: &str, bits: u64) -> String {
    s.chars()
        .enumerate()
        .map(|(i, c)| {
            if bits >> (i % 64) & 1 == 1 {
                if c.is_ascii_lowercase() {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                }
            } else {
                c
            }
        })
        .collect()
}

/// Names that must be accepted: a safe alphabet, including non-ASCII letters.
fn valid_name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9_.\\-]{1,32}",
        "[a-z\u{e9}\u{df}\u{674e}\u{1f600}0-9]{1,32}",
    ]
    .prop_filter("not reserved", |n| {
        !RESERVED_NAMES.iter().any(|r| clash(r, n))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Property 4: whatever `validate_name` accepts has no whitespace or control
    /// characters, 1..=32 characters, no command character first, and is no reserved word
    /// in any ASCII case; and `parse_name` agrees with it.
    #[test]
    fn accepted_names_follow_every_rule(name in candidate()) {
        let verdict = validate_name(&name);
        prop_assert_eq!(parse_name(name.as_bytes()).map(|_| ()), verdict.clone());
        if verdict.is_ok() {
            let n = name.chars().count();
            prop_assert!((1..=MAX_NAME_CHARS).contains(&n), "{} chars", n);
            prop_assert!(
                !name.chars().any(|c| c.is_whitespace() || c.is_control()),
                "space or control in {:?}", name
            );
            prop_assert!(
                !name.chars().any(|c| matches!(c, '{' | '}' | '"' | ':' | ',')),
                "delimiter in {:?}", name
            );
            let first = name.chars().next().unwrap();
            prop_assert!(!['/', '!', '@', '\\', '#'].contains(&first));
            for reserved in ["SERVER", "Everyone", "*"] {
                prop_assert!(!name.eq_ignore_ascii_case(reserved), "{} accepted", name);
                prop_assert!(!clash(&name, reserved), "{} accepted", name);
            }
            // A valid name survives the raw login unchanged.
            let mut wire = name.clone().into_bytes();
            wire.extend_from_slice(b"\r\n");
            let split = split_login(&wire).unwrap();
            prop_assert_eq!(&wire[..split.name_len], name.as_bytes());
        }
    }

    /// Names from a safe alphabet are accepted; every rule then rejects its own mutation
    /// with the right reason.
    #[test]
    fn each_rule_rejects_its_mutation(
        name in valid_name(),
        first in select(FORBIDDEN_FIRST),
        bad in prop_oneof![
            select(&[' ', '\t', '\n', '\r', '\0', '\u{1b}', '\u{7f}', '\u{85}', '\u{a0}',
                     '\u{2028}', '\u{3000}', '\u{200b}', '\u{202e}', '\u{feff}',
                     '{', '}', '"', ':', ','][..]),
            any::<char>().prop_filter("space or control", |c| c.is_whitespace() || c.is_control()),
        ],
        at in any::<prop::sample::Index>(),
        reserved in select(RESERVED_NAMES),
        bits in any::<u64>(),
    ) {
        prop_assert_eq!(validate_name(&name), Ok(()));
        prop_assert_eq!(parse_name(name.as_bytes()), Ok(name.clone()));
        let len = name.chars().count();

        let prefixed = format!("{first}{name}");
        let want = if len < MAX_NAME_CHARS {
            NameError::ForbiddenFirst(first)
        } else {
            NameError::TooLong { max: MAX_NAME_CHARS }
        };
        prop_assert_eq!(validate_name(&prefixed), Err(want));

        let mut chars: Vec<char> = name.chars().collect();
        chars.insert(at.index(chars.len() + 1), bad);
        let with_bad: String = chars.into_iter().collect();
        let want = if len < MAX_NAME_CHARS {
            NameError::ForbiddenChar(bad)
        } else {
            NameError::TooLong { max: MAX_NAME_CHARS }
        };
        prop_assert_eq!(validate_name(&with_bad), Err(want));

        let cased = random_case(reserved, bits);
        prop_assert!(matches!(validate_name(&cased), Err(NameError::Reserved(_))), "{}", cased);

        let long = name.repeat(MAX_NAME_CHARS / len + 1);
        prop_assert_eq!(validate_name(&long), Err(NameError::TooLong { max: MAX_NAME_CHARS }));
    }

    /// The raw-name login followed by frames in the same read (`alice{...}`), or after a
    /// line terminator, gives back the name and then every frame.
    #[test]
    fn login_then_frames(
        name in valid_name(),
        term in select(&["", "\n", "\r\n", "\r"][..]),
        frames in prop::collection::vec((nasty_string(10), nasty_string(20)), 0..4),
        split in split_strategy(),
    ) {
        let from = Sender { name: "ignored".into(), ip: String::new() };
        let frames: Vec<ClientFrame> =
            frames.into_iter().map(|(to, msg)| ClientFrame { to, msg, label: None }).collect();
        let mut wire = name.clone().into_bytes();
        wire.extend_from_slice(term.as_bytes());
        for f in &frames {
            wire.extend_from_slice(f.to_json(&from).as_bytes());
        }
        let split_at = match split_login(&wire) {
            Some(s) => s,
            None => {
                // No terminator arrived: only possible when nothing follows the name.
                prop_assert!(term.is_empty() && frames.is_empty());
                split_at_timeout(&wire)
            }
        };
        prop_assert_eq!(parse_name(&wire[..split_at.name_len]), Ok(name));
        let rest = &wire[split_at.consumed..];
        let out = decode_chunks(&mut JsonStreamDecoder::new(1 << 16), &split.chunks(rest));
        prop_assert!(out.error.is_none());
        prop_assert_eq!(out.items, frames.into_iter().map(Ok).collect::<Vec<_>>());
    }
}

fn sender() -> impl Strategy<Value = Sender> {
    (nasty_string(12), nasty_string(12)).prop_map(|(name, ip)| Sender { name, ip })
}

fn server_frame() -> impl Strategy<Value = ServerFrame> {
    (
        sender(),
        nasty_string(12),
        prop_oneof![nasty_string(60), any::<String>()],
        prop::option::of(select(KINDS)),
        prop::option::of(any::<u64>()),
        prop::option::of(any::<u64>()),
        prop::option::of(prop::collection::vec(nasty_string(8), 0..4)),
        prop::option::of(nasty_string(8)),
        prop::option::of(select(ErrorCode::ALL.to_vec())),
        // The history fields (PROTOCOL.md §10.2).
        (
            prop::option::of(any::<bool>()),
            prop::option::of(nasty_string(8)),
            prop::option::of(any::<u32>()),
            prop::option::of(any::<bool>()),
            prop::option::of(any::<bool>()),
            prop::option::of(nasty_string(8)),
            prop::option::of(nasty_string(8)),
        ),
    )
        .prop_map(
            |(
                from,
                to,
                msg,
                kind,
                ts,
                id,
                users,
                user,
                code,
                (history, epoch, count, more, gap, resume, label),
            )| {
                ServerFrame {
                    from,
                    to,
                    msg,
                    kind,
                    ts,
                    id,
                    users,
                    user,
                    code,
                    history,
                    epoch,
                    count,
                    more,
                    gap,
                    resume,
                    service: None,
                    label,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// A client frame with arbitrary strings survives `to_json` and `parse`.
    #[test]
    fn client_frame_json_round_trips(
        to in prop_oneof![nasty_string(24), any::<String>()],
        msg in prop_oneof![nasty_string(60), any::<String>()],
        from in sender(),
    ) {
        let f = ClientFrame { to, msg, label: None };
        let json = f.to_json(&from);
        prop_assert_eq!(ClientFrame::parse(json.as_bytes()), Ok(f));
    }

    /// A server frame with arbitrary strings and any extensions survives `to_bytes` and
    /// `parse`; the bytes are one line (a single `\n`, at the end), carry the three
    /// mandatory fields, and leave out unset extensions.
    #[test]
    fn server_frame_json_round_trips(f in server_frame()) {
        let bytes = f.to_bytes();
        prop_assert_eq!(bytes.iter().filter(|&&b| b == b'\n').count(), 1);
        prop_assert_eq!(bytes.last(), Some(&b'\n'));
        prop_assert_eq!(ServerFrame::parse(&bytes).unwrap(), f.clone());
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let o = v.as_object().unwrap();
        prop_assert_eq!(o["from"]["name"].as_str(), Some(f.from.name.as_str()));
        prop_assert_eq!(o["from"]["ip"].as_str(), Some(f.from.ip.as_str()));
        prop_assert_eq!(o["to"].as_str(), Some(f.to.as_str()));
        prop_assert_eq!(o["msg"].as_str(), Some(f.msg.as_str()));
        for (key, set) in [
            ("type", f.kind.is_some()),
            ("ts", f.ts.is_some()),
            ("id", f.id.is_some()),
            ("users", f.users.is_some()),
            ("user", f.user.is_some()),
        ] {
            prop_assert_eq!(o.contains_key(key), set, "{}", key);
        }
    }

    /// What the server writes is what a client's stream decoder reads: a run of server
    /// frames, split into any reads, decodes to their `to` and `msg` in order.
    #[test]
    fn server_output_decodes_as_a_stream(
        frames in prop::collection::vec(server_frame(), 0..6),
        split in split_strategy(),
    ) {
        let stream: Vec<u8> = frames.iter().flat_map(|f| f.to_bytes().to_vec()).collect();
        let out = decode_chunks(&mut JsonStreamDecoder::new(1 << 16), &split.chunks(&stream));
        prop_assert!(out.error.is_none());
        let want: Vec<_> = frames
            .iter()
            .map(|f| Ok(ClientFrame { to: f.to.clone(), msg: f.msg.clone(), label: f.label.clone() }))
            .collect();
        prop_assert_eq!(out.items, want);
    }

    /// The `type` extension: known names read as their kind, anything else as `Other`, so
    /// an old client survives a newer server.
    #[test]
    fn unknown_types_read_as_other(t in prop_oneof![
        "[a-z]{0,10}",
        select(&["chat", "private", "join", "leave", "system", "error", "users", "welcome",
                 "history", "other", "Chat", "JOIN", ""][..]).prop_map(str::to_string),
    ]) {
        let raw = serde_json::json!({"from": {"name": "S", "ip": ""}, "to": "a", "msg": "", "type": t});
        let f = ServerFrame::parse(raw.to_string().as_bytes()).unwrap();
        let known = KINDS.iter().copied().find(|k| {
            serde_json::to_value(k).unwrap().as_str() == Some(t.as_str())
        });
        prop_assert_eq!(f.kind, Some(known.unwrap_or(FrameKind::Other)));
    }
}

/// Invisible format characters make look-alike names (`bob\u{AD}` renders as "bob"):
/// every character of category Cf is refused, these among them (PROTOCOL.md §2.2).
#[test]
fn invisible_format_characters_are_refused() {
    for c in [
        '\u{ad}',
        '\u{61c}',
        '\u{180e}',
        '\u{fff9}',
        '\u{1d173}',
        '\u{e0001}',
        '\u{e0041}',
    ] {
        let name = format!("bob{c}");
        assert_eq!(
            validate_name(&name),
            Err(NameError::ForbiddenChar(c)),
            "U+{:04X}",
            c as u32
        );
    }
}

/// Letters with case, accents and scripts the look-alike rules touch (no dotless `ı`,
/// whose capital is the Latin `I`: Unicode folds it to itself, as Turkish wants).
fn cased_name() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_.\\-\u{c0}-\u{d6}\u{d8}-\u{f6}\u{f8}-\u{ff}\u{391}-\u{3a9}\u{3b1}-\u{3c9}\u{410}-\u{44f}]{1,16}"
}

/// `s` with every printable ASCII character in its fullwidth form (`A` is `Ａ`).
fn fullwidth(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '!'..='~' => char::from_u32(c as u32 + 0xFEE0).unwrap_or(c),
            _ => c,
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Folding is idempotent: the form of a form is the form itself, for any string
    /// (PROTOCOL.md §2.2).
    #[test]
    fn each_form_of_a_name_is_a_fixed_point(name in prop_oneof![
        any::<String>(),
        nasty_string(36),
        cased_name(),
    ]) {
        let key = NameKey::of(&name);
        prop_assert_eq!(NameKey::of(key.as_str()), key);
        let skeleton = Skeleton::of(&name);
        prop_assert_eq!(Skeleton::of(skeleton.as_str()), skeleton);
        prop_assert!(clash(&name, &name));
    }

    /// A name in other case, in fullwidth letters, or composed (NFC) or decomposed (NFD)
    /// is the same name: one folded form, so it clashes.
    #[test]
    fn case_width_and_normalization_variants_are_one_name(name in cased_name()) {
        use unicode_normalization::UnicodeNormalization;
        let key = NameKey::of(&name);
        let variants = [
            name.to_uppercase(),
            name.to_lowercase(),
            fullwidth(&name),
            fullwidth(&name.to_uppercase()),
            name.nfd().collect(),
            name.nfc().collect(),
            name.to_uppercase().nfd().collect(),
        ];
        for v in variants {
            prop_assert_eq!(&NameKey::of(&v), &key, "{:?} and {:?}", v, name);
            prop_assert!(clash(&v, &name));
        }
    }
}
