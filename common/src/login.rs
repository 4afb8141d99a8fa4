//! The raw-name login of the class-chat clients (PROTOCOL.md §2.1).
//!
//! Right after connecting, a client sends its name as raw bytes, with or without a
//! newline, possibly followed in the same segment by its first JSON object
//! (`alice{"from":...}`). The name ends at the first `{`, `\r` or `\n`; when none has
//! arrived, the server waits a short grace period and then takes what it has (that wait is
//! I/O and lives in the server; this module only looks at bytes).

/// At most this many bytes are buffered while looking for the end of a name. Anything
/// longer cannot be a valid name, so the login fails with "too long".
pub const MAX_LOGIN_BYTES: usize = crate::name::MAX_NAME_CHARS * 4 + 8;

/// Where the name ends in the bytes received so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginSplit {
    /// Length of the name in bytes.
    pub name_len: usize,
    /// Bytes to drop from the front of the buffer: the name and its line terminator, but
    /// not a `{`, which starts the first frame.
    pub consumed: usize,
}

/// Finds the end of the name in `buf`, or `None` if no terminator has arrived yet.
///
/// Once [`MAX_LOGIN_BYTES`] bytes are buffered without a terminator, the whole buffer is
/// returned as the name, which then fails validation as too long.
pub fn split_login(buf: &[u8]) -> Option<LoginSplit> {
    match buf.iter().position(|&b| matches!(b, b'{' | b'\r' | b'\n')) {
        Some(end) => {
            let consumed = match (buf[end], buf.get(end + 1)) {
                (b'{', _) => end,
                (b'\r', Some(b'\n')) => end + 2,
                _ => end + 1,
            };
            Some(LoginSplit {
                name_len: end,
                consumed,
            })
        }
        None if buf.len() >= MAX_LOGIN_BYTES => Some(LoginSplit {
            name_len: buf.len(),
            consumed: buf.len(),
        }),
        None => None,
    }
}

/// The name when the grace period ran out with no terminator: everything received.
pub fn split_at_timeout(buf: &[u8]) -> LoginSplit {
    split_login(buf).unwrap_or(LoginSplit {
        name_len: buf.len(),
        consumed: buf.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminators() {
        assert_eq!(split_login(b"alice"), None);
        assert_eq!(
            split_login(b"alice\n"),
            Some(LoginSplit {
                name_len: 5,
                consumed: 6
            })
        );
        assert_eq!(
            split_login(b"alice\r\n{"),
            Some(LoginSplit {
                name_len: 5,
                consumed: 7
            })
        );
        assert_eq!(
            split_login(b"alice\r"),
            Some(LoginSplit {
                name_len: 5,
                consumed: 6
            })
        );
        assert_eq!(
            split_login(b"alice{\"to\""),
            Some(LoginSplit {
                name_len: 5,
                consumed: 5
            })
        );
        assert_eq!(
            split_login(b"\n"),
            Some(LoginSplit {
                name_len: 0,
                consumed: 1
            })
        );
    }

    #[test]
    fn overlong_login_is_cut_at_the_limit() {
        let buf = vec![b'a'; MAX_LOGIN_BYTES];
        assert_eq!(split_login(&buf).map(|s| s.name_len), Some(MAX_LOGIN_BYTES));
    }

    #[test]
    fn timeout_takes_everything() {
        assert_eq!(
            split_at_timeout(b"bob"),
            LoginSplit {
                name_len: 3,
                consumed: 3
            }
        );
        assert_eq!(
            split_at_timeout(b"bob\nx"),
            LoginSplit {
                name_len: 3,
                consumed: 4
            }
        );
    }
}
