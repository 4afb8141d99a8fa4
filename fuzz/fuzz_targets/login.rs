//! The raw-name login (`split_login`, `split_at_timeout`) and the name rules
//! (`parse_name`, `validate_name`).
//!
//! Input: the bytes a client sent right after connecting.
//! Invariants:
//! - the split is in bounds: `name_len <= consumed <= len`, and what lies between is the
//!   terminator (`\n`, `\r`, `\r\n`, or nothing before a `{`); the name holds no terminator;
//! - `split_login` waits (`None`) exactly while no terminator has arrived and fewer than
//!   `MAX_LOGIN_BYTES` are buffered; once it has found the name, more bytes do not move it;
//! - a name cut at the `MAX_LOGIN_BYTES` limit is always refused;
//! - `parse_name` accepts exactly the UTF-8 names `validate_name` accepts, and an accepted
//!   name obeys every rule checked independently here (length, characters, first
//!   character, reserved names), and reads back as the recipient of `@name text` and
//!   `/msg name text` on the line port.
#![no_main]

use chat_common::command::{Request, parse_typed};
use chat_common::login::{MAX_LOGIN_BYTES, split_at_timeout, split_login};
use chat_common::name::{
    FORBIDDEN_FIRST, MAX_NAME_CHARS, NameError, RESERVED_NAMES, parse_name, validate_name,
};
use libfuzzer_sys::fuzz_target;

fn is_terminator(b: u8) -> bool {
    matches!(b, b'{' | b'\r' | b'\n')
}

fn check_name(bytes: &[u8]) {
    let parsed = parse_name(bytes);
    match std::str::from_utf8(bytes) {
        Err(_) => assert_eq!(parsed, Err(NameError::InvalidUtf8)),
        Ok(s) => assert_eq!(
            parsed.as_ref().map(|_| ()),
            validate_name(s).as_ref().map(|_| ())
        ),
    }
    let Ok(name) = parsed else {
        return;
    };
    assert_eq!(name.as_bytes(), bytes);
    assert_eq!(validate_name(&name), Ok(()));
    let count = name.chars().count();
    assert!(
        (1..=MAX_NAME_CHARS).contains(&count),
        "{name:?} has {count} chars"
    );
    assert!(
        bytes.len() < MAX_LOGIN_BYTES,
        "{name:?} longer than the login buffer"
    );
    assert!(
        !name.chars().any(|c| c.is_whitespace()
            || c.is_control()
            || matches!(c, '{' | '}' | '"' | ':' | ',')),
        "{name:?} holds a forbidden character"
    );
    assert!(!bytes.iter().copied().any(is_terminator));
    let first = name.chars().next().unwrap();
    assert!(!FORBIDDEN_FIRST.contains(&first), "{name:?}");
    assert!(
        !RESERVED_NAMES
            .iter()
            .any(|r| r.to_uppercase() == name.to_uppercase()),
        "{name:?} is reserved"
    );
    let private = Ok(Some(Request::Private {
        to: name.clone(),
        text: "hi".into(),
    }));
    assert_eq!(parse_typed(&format!("@{name} hi")), private);
    assert_eq!(parse_typed(&format!("/msg {name} hi")), private);
}

fuzz_target!(|data: &[u8]| {
    let terminator = data.iter().position(|&b| is_terminator(b));
    let split = split_login(data);
    match (terminator, split) {
        (None, None) => assert!(data.len() < MAX_LOGIN_BYTES),
        (None, Some(s)) => {
            assert!(data.len() >= MAX_LOGIN_BYTES);
            assert_eq!((s.name_len, s.consumed), (data.len(), data.len()));
            assert!(
                parse_name(&data[..s.name_len]).is_err(),
                "overlong name accepted"
            );
        }
        (Some(end), Some(s)) => {
            assert_eq!(s.name_len, end);
            let sep = &data[s.name_len..s.consumed];
            let want: &[u8] = match (data[end], data.get(end + 1)) {
                (b'{', _) => b"",
                (b'\r', Some(b'\n')) => b"\r\n",
                (b'\r', _) => b"\r",
                _ => b"\n",
            };
            assert_eq!(sep, want);
        }
        (Some(_), None) => panic!("terminator present but no split"),
    }

    let t = split_at_timeout(data);
    assert!(
        t.name_len <= t.consumed && t.consumed <= data.len(),
        "{t:?}"
    );
    if let Some(s) = split {
        assert_eq!(s, t);
        // More bytes after the terminator do not move the name.
        if terminator.is_some() {
            let prefix = &data[..=s.name_len];
            assert_eq!(split_login(prefix).map(|p| p.name_len), Some(s.name_len));
        }
    } else {
        assert_eq!((t.name_len, t.consumed), (data.len(), data.len()));
    }
    check_name(&data[..t.name_len]);
    // The whole input as a name too (reaches validate_name with any bytes).
    check_name(data);
});
