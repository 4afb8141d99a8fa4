//! The rules a user name must follow (PROTOCOL.md §2.2).

/// Longest accepted name, in characters.
pub const MAX_NAME_CHARS: usize = 32;

/// Names no user may take (compared case-insensitively): the server's own name, the public
/// recipient, and the broadcast shorthand.
pub const RESERVED_NAMES: &[&str] = &[crate::SERVER_NAME, crate::EVERYONE, "*"];

/// Characters a name may not start with: they introduce commands on one port or another.
pub const FORBIDDEN_FIRST: &[char] = &['/', '!', '@', '\\', '#'];

/// Why a name was refused. The `Display` text is what the user is told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[serde(tag = "rule", content = "detail", rename_all = "snake_case")]
pub enum NameError {
    /// No name at all.
    #[error("the name is empty")]
    Empty,
    /// More than [`MAX_NAME_CHARS`] characters.
    #[error("the name is longer than {max} characters")]
    TooLong {
        /// The limit.
        max: usize,
    },
    /// A space, a control character or another character that cannot appear in a name.
    #[error("the name contains {0:?}; use letters, digits and punctuation without spaces")]
    ForbiddenChar(char),
    /// Starts with a command character.
    #[error("the name may not start with {0:?}")]
    ForbiddenFirst(char),
    /// One of [`RESERVED_NAMES`].
    #[error("the name {0:?} is reserved")]
    Reserved(String),
    /// The login bytes were not UTF-8.
    #[error("the name is not valid UTF-8")]
    InvalidUtf8,
}

/// Checks a name against every rule; `Ok` means it may be registered (if not taken).
pub fn validate_name(name: &str) -> Result<(), NameError> {
    let Some(first) = name.chars().next() else {
        return Err(NameError::Empty);
    };
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(NameError::TooLong {
            max: MAX_NAME_CHARS,
        });
    }
    if let Some(c) = name.chars().find(|&c| is_forbidden_char(c)) {
        return Err(NameError::ForbiddenChar(c));
    }
    if FORBIDDEN_FIRST.contains(&first) {
        return Err(NameError::ForbiddenFirst(first));
    }
    // Full Unicode case folding: `ſerver` upper-cases to `SERVER`.
    let upper = name.to_uppercase();
    if RESERVED_NAMES.iter().any(|r| r.to_uppercase() == upper) {
        return Err(NameError::Reserved(name.to_string()));
    }
    Ok(())
}

/// Whitespace, control characters, the characters that delimit a raw-name login (`{`, `}`),
/// the JSON quote, and the line port's `:` (so a name cannot fake `alice: hi` lines).
fn is_forbidden_char(c: char) -> bool {
    c.is_whitespace()
        || c.is_control()
        || matches!(c, '{' | '}' | '"' | ':' | ',')
        // Zero-width and bidirectional formatting characters make look-alike names.
        || is_invisible(c)
}

/// Zero-width, bidirectional and other invisible formatting characters (Unicode category
/// Cf and friends): they make look-alike names (`bob` and `bob\u{AD}`).
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{AD}'
            | '\u{34F}'
            | '\u{61C}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFFB}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

/// Decodes and validates the raw bytes of a login name.
pub fn parse_name(bytes: &[u8]) -> Result<String, NameError> {
    let name = std::str::from_utf8(bytes).map_err(|_| NameError::InvalidUtf8)?;
    validate_name(name)?;
    Ok(name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_names_pass() {
        for n in [
            "alice",
            "Bob_42",
            "élodie",
            "李雷",
            "a",
            "x-y.z",
            "TestClient0",
        ] {
            assert_eq!(validate_name(n), Ok(()), "{n}");
        }
        assert_eq!(validate_name(&"n".repeat(MAX_NAME_CHARS)), Ok(()));
    }

    #[test]
    fn bad_names_are_refused_with_the_reason() {
        assert_eq!(validate_name(""), Err(NameError::Empty));
        assert_eq!(
            validate_name(&"n".repeat(MAX_NAME_CHARS + 1)),
            Err(NameError::TooLong {
                max: MAX_NAME_CHARS
            })
        );
        assert_eq!(validate_name("a b"), Err(NameError::ForbiddenChar(' ')));
        assert_eq!(validate_name("a\tb"), Err(NameError::ForbiddenChar('\t')));
        assert_eq!(
            validate_name("a\u{1b}[31m"),
            Err(NameError::ForbiddenChar('\u{1b}'))
        );
        assert_eq!(
            validate_name("bob\u{200B}"),
            Err(NameError::ForbiddenChar('\u{200B}'))
        );
        assert_eq!(validate_name("a:b"), Err(NameError::ForbiddenChar(':')));
        assert_eq!(validate_name("a{"), Err(NameError::ForbiddenChar('{')));
        for (n, c) in [
            ("/list", '/'),
            ("!who", '!'),
            ("@bob", '@'),
            ("\\q", '\\'),
            ("#room", '#'),
        ] {
            assert_eq!(validate_name(n), Err(NameError::ForbiddenFirst(c)), "{n}");
        }
    }

    #[test]
    fn reserved_names_in_any_case() {
        for n in ["SERVER", "server", "Everyone", "EVERYONE", "*"] {
            assert!(
                matches!(validate_name(n), Err(NameError::Reserved(_))),
                "{n}"
            );
        }
    }

    #[test]
    fn parse_name_checks_utf8_first() {
        assert_eq!(parse_name(b"\xffab"), Err(NameError::InvalidUtf8));
        assert_eq!(parse_name(b"carol"), Ok("carol".to_string()));
    }

    #[test]
    fn length_counts_characters_not_bytes() {
        assert_eq!(validate_name(&"é".repeat(MAX_NAME_CHARS)), Ok(()));
    }
}
