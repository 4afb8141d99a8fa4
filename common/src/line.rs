//! The human line port for `nc`/`telnet` users (PROTOCOL.md §7).
//!
//! Input is one command or message per line (parsed by [`crate::command::parse_typed`]); output is readable lines such as
//! `[12:04] alice: hi`. Text that came from other users is sanitized before it reaches a
//! terminal, so nobody can inject escape sequences or fake lines.

use bytes::{Buf, BytesMut};
use tokio_util::codec::Decoder;

use crate::clock::hhmm;
use crate::frame::{FrameError, FrameKind, ServerFrame};
use crate::json_stream::StreamError;

/// A [`Decoder`] of text lines with a length limit. A line ends at `\n`, `\r\n`, `\r\0`
/// (telnet's bare CR) or a lone `\r` (terminals that send CR for Enter), whatever the
/// reads' boundaries. A line that is not UTF-8 is reported and skipped; a line over the
/// limit is fatal (the rest of it cannot be told apart from the next command).
#[derive(Debug)]
pub struct LineDecoder {
    max_line: usize,
    scanned: usize,
    /// The last line ended with a `\r` at the end of a read: a `\n` or `\0` that comes
    /// next belongs to that terminator.
    after_cr: bool,
}

impl LineDecoder {
    /// A decoder of lines of at most `max_line` bytes (terminator excluded).
    pub fn new(max_line: usize) -> Self {
        LineDecoder {
            max_line,
            scanned: 0,
            after_cr: false,
        }
    }
}

impl Decoder for LineDecoder {
    type Item = Result<String, FrameError>;
    type Error = StreamError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Self::Item>, StreamError> {
        if self.after_cr && !buf.is_empty() {
            self.after_cr = false;
            if matches!(buf[0], b'\n' | 0) {
                buf.advance(1);
            }
        }
        let (end, resume) = find_line_end(buf, self.scanned);
        let Some(end) = end else {
            if buf.len() > self.max_line {
                return Err(StreamError::TooLarge {
                    limit: self.max_line,
                });
            }
            self.scanned = resume;
            return Ok(None);
        };
        self.scanned = 0;
        if end > self.max_line {
            return Err(StreamError::TooLarge {
                limit: self.max_line,
            });
        }
        let line = buf.split_to(end);
        let cr = buf[0] == b'\r';
        buf.advance(1);
        if cr {
            match buf.first() {
                Some(b'\n' | 0) => buf.advance(1),
                Some(_) => {}
                None => self.after_cr = true,
            }
        }
        Ok(Some(decode_line(&line)))
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Self::Item>, StreamError> {
        if let Some(item) = self.decode(buf)? {
            return Ok(Some(item));
        }
        self.scanned = 0;
        if buf.is_empty() {
            return Ok(None);
        }
        // A last line without a newline (`printf 'hi' | nc`) still counts.
        let line = buf.split();
        Ok(Some(decode_line(&line)))
    }
}

/// Finds the next `\n` or `\r` at or after `from`, stepping over telnet IAC sequences (a
/// NAWS report may contain a 0x0A or 0x0D byte that is not a line end). Without one,
/// returns where to resume scanning: the end, or the start of an IAC sequence that is not
/// complete yet.
fn find_line_end(buf: &[u8], from: usize) -> (Option<usize>, usize) {
    let mut i = from;
    while i < buf.len() {
        match buf[i] {
            b'\n' | b'\r' => return (Some(i), i),
            IAC => match telnet_sequence_len(&buf[i..]) {
                Some(n) => i += n,
                None => return (None, i),
            },
            _ => {
                // Skip plain bytes quickly.
                i += buf[i..]
                    .iter()
                    .position(|&b| b == b'\n' || b == b'\r' || b == IAC)
                    .unwrap_or(buf.len() - i);
            }
        }
    }
    (None, i)
}

/// Length of the telnet sequence at the start of `seq` (which starts with IAC), or `None`
/// if it is not complete yet.
fn telnet_sequence_len(seq: &[u8]) -> Option<usize> {
    match seq.get(1)? {
        // WILL, WONT, DO, DONT take one option byte.
        251..=254 => (seq.len() >= 3).then_some(3),
        // SB ... IAC SE
        250 => seq[2..]
            .windows(2)
            .position(|w| w == [IAC, 240])
            .map(|p| p + 4),
        _ => Some(2),
    }
}

/// Strips any telnet negotiation, then checks UTF-8.
fn decode_line(raw: &[u8]) -> Result<String, FrameError> {
    let cleaned;
    let bytes = if raw.contains(&IAC) {
        cleaned = strip_telnet(raw);
        &cleaned[..]
    } else {
        raw
    };
    String::from_utf8(bytes.to_vec()).map_err(|_| FrameError::InvalidUtf8)
}

const IAC: u8 = 0xFF;

/// Removes telnet IAC sequences (option negotiation, subnegotiation, commands) that a
/// telnet client may mix into its input; `IAC IAC` is a literal 0xFF.
pub fn strip_telnet(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] != IAC {
            out.push(raw[i]);
            i += 1;
            continue;
        }
        match raw.get(i + 1) {
            Some(&IAC) => {
                out.push(IAC);
                i += 2;
            }
            // WILL, WONT, DO, DONT take one option byte.
            Some(251..=254) => i += 3,
            // SB ... IAC SE
            Some(250) => {
                let rest = &raw[i + 2..];
                i = match rest.windows(2).position(|w| w == [IAC, 240]) {
                    Some(p) => i + 2 + p + 2,
                    None => raw.len(),
                };
            }
            Some(_) => i += 2,
            None => i += 1,
        }
    }
    out
}

/// Replaces control characters (escape sequences, carriage returns, newlines) and the
/// characters a terminal obeys or hides ([`is_hidden`]) with visible placeholders, so text
/// from other users cannot move the cursor, fake lines or reorder what is shown.
pub fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() || is_hidden(c) {
                '\u{FFFD}'
            } else {
                c
            }
        })
        .collect()
}

/// Characters a terminal obeys or hides instead of showing: direction overrides and
/// isolates (`invoice_\u{202e}gpj.exe` would read `invoice_exe.jpg`), zero-width
/// characters, the byte-order mark, tag characters, and the line and paragraph
/// separators. (A zero-width joiner inside an emoji sequence is shown too: the emoji then
/// appear one by one, which a terminal user can live with.)
fn is_hidden(c: char) -> bool {
    matches!(
        c,
        '\u{061C}'
            | '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}'
            | '\u{E0000}'..='\u{E007F}'
    )
}

/// Renders a server frame as the line port shows it, with a `\r\n` after every line.
pub fn render(frame: &ServerFrame) -> String {
    let ts = frame.ts.unwrap_or_else(crate::clock::now_ms);
    let time = if frame.history == Some(true) {
        crate::clock::dated_hhmm(ts, crate::clock::now_ms())
    } else {
        hhmm(ts)
    };
    let kind = frame.kind.unwrap_or(FrameKind::System);
    match kind {
        FrameKind::Chat => {
            format!(
                "[{time}] {}: {}\r\n",
                sanitize(&frame.from.name),
                sanitize(&frame.msg)
            )
        }
        FrameKind::Private => {
            format!(
                "[{time}] (private) {}: {}\r\n",
                sanitize(&frame.from.name),
                sanitize(&frame.msg)
            )
        }
        FrameKind::Join | FrameKind::Leave => {
            let user = frame.user.as_deref().unwrap_or("someone");
            let verb = if kind == FrameKind::Join {
                "joined"
            } else {
                "left"
            };
            format!("[{time}] * {} {verb}\r\n", sanitize(user))
        }
        FrameKind::Error => prefixed_lines(&time, "! ", &frame.msg),
        // The end of a history answer: one line, whatever it holds.
        FrameKind::History => format!("[{time}] -- {}\r\n", sanitize(&frame.msg)),
        FrameKind::System | FrameKind::Users | FrameKind::Welcome | FrameKind::Other => {
            prefixed_lines(&time, "-- ", &frame.msg)
        }
    }
}

/// Server-generated text may span lines (help); each gets the prefix.
fn prefixed_lines(time: &str, prefix: &str, msg: &str) -> String {
    if msg.is_empty() {
        return format!("[{time}] {prefix}\r\n");
    }
    msg.lines()
        .map(|l| format!("[{time}] {prefix}{}\r\n", sanitize(l)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::Sender;

    fn lines(input: &[u8], max: usize) -> Vec<Result<String, FrameError>> {
        let mut dec = LineDecoder::new(max);
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        while let Some(l) = dec.decode_eof(&mut buf).unwrap() {
            out.push(l);
        }
        out
    }

    #[test]
    fn splits_lines_and_strips_crlf() {
        assert_eq!(
            lines(b"a\r\nb\n\nlast", 100),
            vec![
                Ok("a".into()),
                Ok("b".into()),
                Ok("".into()),
                Ok("last".into())
            ]
        );
    }

    #[test]
    fn every_line_ending_a_terminal_sends_ends_a_line() {
        assert_eq!(
            lines(b"cr\rcrlf\r\ncrnul\r\0lf\nlast", 100),
            ["cr", "crlf", "crnul", "lf", "last"].map(|s| Ok(s.to_string()))
        );
        // A lone CR ends the line at once: a client that sends CR for Enter waits for no
        // byte after it.
        let mut dec = LineDecoder::new(100);
        let mut buf = BytesMut::from(&b"alice\r"[..]);
        assert_eq!(dec.decode(&mut buf).unwrap(), Some(Ok("alice".into())));
        // Its LF (or NUL) arriving in the next read is not an empty line.
        for next in [&b"\nhi\n"[..], b"\0hi\n", b"hi\n"] {
            let mut dec = LineDecoder::new(100);
            let mut buf = BytesMut::from(&b"x\r"[..]);
            assert_eq!(dec.decode(&mut buf).unwrap(), Some(Ok("x".into())));
            buf.extend_from_slice(next);
            assert_eq!(
                dec.decode(&mut buf).unwrap(),
                Some(Ok("hi".into())),
                "{next:?}"
            );
            assert!(buf.is_empty());
        }
        // An empty line typed with CR is still one.
        assert_eq!(
            lines(b"\r\rx\r", 100),
            ["", "", "x"].map(|s| Ok(s.to_string()))
        );
    }

    #[test]
    fn invalid_utf8_line_is_skipped_with_an_error() {
        assert_eq!(
            lines(b"\xc3\x28\nok\n", 100),
            vec![Err(FrameError::InvalidUtf8), Ok("ok".into())]
        );
    }

    #[test]
    fn overlong_line_is_fatal() {
        let mut dec = LineDecoder::new(4);
        let mut buf = BytesMut::from(&b"abcdef"[..]);
        assert!(matches!(
            dec.decode(&mut buf),
            Err(StreamError::TooLarge { limit: 4 })
        ));
        let mut buf = BytesMut::from(&b"abcde\n"[..]);
        assert!(matches!(
            LineDecoder::new(4).decode(&mut buf),
            Err(StreamError::TooLarge { .. })
        ));
    }

    #[test]
    fn telnet_negotiation_is_removed() {
        assert_eq!(
            strip_telnet(b"\xff\xfb\x01hi\xff\xff\xff\xfa\x18\x01\xff\xf0!"),
            b"hi\xff!"
        );
        assert_eq!(
            lines(b"\xff\xfd\x03hello\r\n", 100),
            vec![Ok("hello".into())]
        );
        assert_eq!(strip_telnet(b"x\xff"), b"x");
        assert_eq!(strip_telnet(b"x\xff\xfa\x01"), b"x");
    }

    fn frame(kind: FrameKind, from: &str, msg: &str) -> ServerFrame {
        let mut f = ServerFrame::new(
            Sender {
                name: from.into(),
                ip: "1.1.1.1".into(),
            },
            "x",
            msg,
            kind,
        );
        f.ts = Some(1_700_000_000_000);
        f
    }

    #[test]
    fn rendering() {
        let t = hhmm(1_700_000_000_000);
        assert_eq!(
            render(&frame(FrameKind::Chat, "alice", "hi")),
            format!("[{t}] alice: hi\r\n")
        );
        assert_eq!(
            render(&frame(FrameKind::Private, "carol", "psst")),
            format!("[{t}] (private) carol: psst\r\n")
        );
        let mut j = frame(FrameKind::Join, "SERVER", "bob joined");
        j.user = Some("bob".into());
        assert_eq!(render(&j), format!("[{t}] * bob joined\r\n"));
        j.kind = Some(FrameKind::Leave);
        assert_eq!(render(&j), format!("[{t}] * bob left\r\n"));
        assert_eq!(
            render(&frame(FrameKind::System, "SERVER", "a\nb")),
            format!("[{t}] -- a\r\n[{t}] -- b\r\n")
        );
        assert_eq!(
            render(&frame(FrameKind::Error, "SERVER", "nope")),
            format!("[{t}] ! nope\r\n")
        );
    }

    #[test]
    fn invisible_and_direction_characters_are_shown_not_obeyed() {
        // `invoice_\u{202e}gpj.exe` would show as `invoice_exe.jpg` on a terminal.
        for c in [
            '\u{202E}',
            '\u{202A}',
            '\u{2066}',
            '\u{2069}',
            '\u{200B}',
            '\u{200F}',
            '\u{061C}',
            '\u{FEFF}',
            '\u{E0041}',
            '\u{2028}',
            '\u{2029}',
            '\u{2060}',
        ] {
            let text = format!("invoice_{c}gpj.exe");
            assert_eq!(
                sanitize(&text),
                "invoice_\u{FFFD}gpj.exe",
                "U+{:04X}",
                c as u32
            );
        }
        assert_eq!(
            sanitize("déjà vu, 李雷, ❤"),
            "déjà vu, 李雷, ❤",
            "letters stay"
        );
    }

    #[test]
    fn rendering_neutralises_injection() {
        let out = render(&frame(
            FrameKind::Chat,
            "eve",
            "hi\r\n[00:00] * bob left\x1b[2J",
        ));
        assert_eq!(out.matches("\r\n").count(), 1, "{out:?}");
        assert!(!out.contains('\x1b'));
    }
}
