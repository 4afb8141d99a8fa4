//! Splitting a byte stream of back-to-back JSON objects into frames (PROTOCOL.md §3.1, §6.1, §6.2).
//!
//! Clients may send objects with no delimiter (`{...}{...}`), separated by whitespace or
//! newlines, or split across reads at any byte. The decoder finds where each object ends by
//! tracking string/escape state and bracket depth, remembers how far it has scanned so a
//! large frame arriving in many reads is scanned once, and refuses to buffer more than the
//! configured maximum.
//!
//! Errors come in two kinds:
//! - [`FrameError`] (as `Ok(Some(Err(..)))`): one delimited frame was bad; the stream
//!   position is known, the connection stays open;
//! - [`StreamError`] (as `Err(..)`): the stream cannot be resynchronised (a frame over the
//!   limit) and the connection must be closed.

use bytes::{Buf, BytesMut};
use tokio_util::codec::Decoder;

use crate::frame::{ClientFrame, FrameError, ServerFrame};

/// A fatal decoding error: the connection must be closed.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// A frame (or run of non-JSON bytes) grew past the limit before it ended.
    #[error("frame exceeds the maximum size of {limit} bytes")]
    TooLarge {
        /// The configured limit in bytes.
        limit: usize,
    },
    /// Reading from the socket failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// Where the scanner stands inside the frame at the front of the buffer.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Scan {
    /// Between frames: whitespace is skipped, the next byte decides.
    #[default]
    Idle,
    /// Inside a JSON value that started with `{` or `[`.
    Value {
        depth: u32,
        in_string: bool,
        escaped: bool,
    },
    /// Inside bytes that do not start a JSON value; they run to the next `\n` or `{`.
    Junk,
}

/// Finds the boundaries of concatenated JSON values in a byte stream and yields each
/// value's bytes; the typed decoders below parse them.
#[derive(Debug)]
pub struct JsonSplitter {
    max_frame: usize,
    scan: Scan,
    /// Bytes at the front of the buffer already scanned in state `scan`.
    scanned: usize,
}

impl JsonSplitter {
    /// A splitter that accepts frames of at most `max_frame` bytes.
    pub fn new(max_frame: usize) -> Self {
        JsonSplitter {
            max_frame: max_frame.max(2),
            scan: Scan::Idle,
            scanned: 0,
        }
    }

    /// Advances the scan over `buf[self.scanned..]`; returns the frame's length once the
    /// frame at the front of `buf` is complete.
    fn find_end(&mut self, buf: &[u8]) -> Option<usize> {
        let mut i = self.scanned;
        match &mut self.scan {
            Scan::Idle => None,
            Scan::Junk => match buf[i..].iter().position(|&b| b == b'\n' || b == b'{') {
                // A newline belongs to the junk; a `{` starts the next frame.
                Some(p) if buf[i + p] == b'\n' => Some(i + p + 1),
                Some(p) => Some(i + p),
                None => {
                    self.scanned = buf.len();
                    None
                }
            },
            Scan::Value {
                depth,
                in_string,
                escaped,
            } => {
                while i < buf.len() {
                    let b = buf[i];
                    i += 1;
                    if *in_string {
                        if *escaped {
                            *escaped = false;
                        } else if b == b'\\' {
                            *escaped = true;
                        } else if b == b'"' {
                            *in_string = false;
                        } else {
                            // Fast path: skip plain string bytes up to the next quote or
                            // backslash in one go.
                            if let Some(p) = buf[i..].iter().position(|&c| c == b'"' || c == b'\\')
                            {
                                i += p;
                            } else {
                                i = buf.len();
                            }
                        }
                        continue;
                    }
                    match b {
                        b'"' => *in_string = true,
                        b'{' | b'[' => *depth = depth.saturating_add(1),
                        b'}' | b']' => {
                            *depth -= 1;
                            if *depth == 0 {
                                return Some(i);
                            }
                        }
                        _ => {}
                    }
                }
                self.scanned = i;
                None
            }
        }
    }
}

impl Decoder for JsonSplitter {
    type Item = Result<BytesMut, FrameError>;
    type Error = StreamError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Self::Item>, StreamError> {
        if self.scan == Scan::Idle {
            let skip = buf.iter().take_while(|b| b.is_ascii_whitespace()).count();
            buf.advance(skip);
            let Some(&first) = buf.first() else {
                return Ok(None);
            };
            self.scanned = 1;
            self.scan = if first == b'{' || first == b'[' {
                Scan::Value {
                    depth: 1,
                    in_string: false,
                    escaped: false,
                }
            } else {
                Scan::Junk
            };
        }
        let end = self.find_end(buf);
        let limit = self.max_frame;
        match end {
            Some(len) if len > limit => Err(StreamError::TooLarge { limit }),
            Some(len) => {
                let was_junk = self.scan == Scan::Junk;
                self.scan = Scan::Idle;
                self.scanned = 0;
                let frame = buf.split_to(len);
                if was_junk {
                    Ok(Some(Err(FrameError::NotAnObject)))
                } else {
                    Ok(Some(Ok(frame)))
                }
            }
            None if buf.len() > limit => Err(StreamError::TooLarge { limit }),
            None => Ok(None),
        }
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Self::Item>, StreamError> {
        if let Some(item) = self.decode(buf)? {
            return Ok(Some(item));
        }
        if buf.iter().all(|b| b.is_ascii_whitespace()) {
            buf.clear();
            return Ok(None);
        }
        // The peer went away mid-frame: report it once and drop the partial bytes.
        let was_junk = self.scan == Scan::Junk;
        buf.clear();
        self.scan = Scan::Idle;
        self.scanned = 0;
        Ok(Some(Err(if was_junk {
            FrameError::NotAnObject
        } else {
            FrameError::Truncated
        })))
    }
}

/// A [`Decoder`] of client frames from a stream of concatenated JSON objects (the server's
/// side of the JSON port).
#[derive(Debug)]
pub struct JsonStreamDecoder {
    splitter: JsonSplitter,
}

impl JsonStreamDecoder {
    /// A decoder that accepts frames of at most `max_frame` bytes.
    pub fn new(max_frame: usize) -> Self {
        JsonStreamDecoder {
            splitter: JsonSplitter::new(max_frame),
        }
    }
}

impl Decoder for JsonStreamDecoder {
    type Item = Result<ClientFrame, FrameError>;
    type Error = StreamError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Self::Item>, StreamError> {
        Ok(self
            .splitter
            .decode(buf)?
            .map(|r| r.and_then(|f| ClientFrame::parse(&f))))
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Self::Item>, StreamError> {
        Ok(self
            .splitter
            .decode_eof(buf)?
            .map(|r| r.and_then(|f| ClientFrame::parse(&f))))
    }
}

/// A [`Decoder`] of server frames (the client's side of the JSON port). It does not rely on
/// the newline the server writes after each frame, so it also reads other servers' output.
#[derive(Debug)]
pub struct ServerFrameDecoder {
    splitter: JsonSplitter,
}

impl ServerFrameDecoder {
    /// A decoder that accepts frames of at most `max_frame` bytes.
    pub fn new(max_frame: usize) -> Self {
        ServerFrameDecoder {
            splitter: JsonSplitter::new(max_frame),
        }
    }
}

fn parse_server(frame: &[u8]) -> Result<ServerFrame, FrameError> {
    ServerFrame::parse(frame).map_err(|e| FrameError::InvalidJson(e.to_string()))
}

impl Decoder for ServerFrameDecoder {
    type Item = Result<ServerFrame, FrameError>;
    type Error = StreamError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Self::Item>, StreamError> {
        Ok(self
            .splitter
            .decode(buf)?
            .map(|r| r.and_then(|f| parse_server(&f))))
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Self::Item>, StreamError> {
        Ok(self
            .splitter
            .decode_eof(buf)?
            .map(|r| r.and_then(|f| parse_server(&f))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(
        input: &[u8],
        max: usize,
    ) -> (Vec<Result<ClientFrame, FrameError>>, Option<StreamError>) {
        let mut dec = JsonStreamDecoder::new(max);
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        loop {
            match dec.decode_eof(&mut buf) {
                Ok(Some(item)) => out.push(item),
                Ok(None) => return (out, None),
                Err(e) => return (out, Some(e)),
            }
        }
    }

    fn to_list(r: &[Result<ClientFrame, FrameError>]) -> Vec<String> {
        r.iter()
            .map(|f| match f {
                Ok(f) => f.to.clone(),
                Err(e) => format!("ERR {e:?}"),
            })
            .collect()
    }

    #[test]
    fn back_to_back_objects_without_delimiters() {
        let (frames, err) = decode_all(br#"{"to":"a","msg":"1"}{"to":"b","msg":"2"}"#, 1024);
        assert!(err.is_none());
        assert_eq!(to_list(&frames), ["a", "b"]);
    }

    #[test]
    fn whitespace_and_newlines_between_objects() {
        let (frames, _) = decode_all(b" \r\n{\"to\":\"a\"}\n\n\t{\"to\":\"b\"} \n", 1024);
        assert_eq!(to_list(&frames), ["a", "b"]);
    }

    #[test]
    fn braces_and_escapes_inside_strings_do_not_end_a_frame() {
        let raw = br#"{"to":"a","msg":"}{ \" \\\" ]["}{"to":"b"}"#;
        let (frames, _) = decode_all(raw, 1024);
        assert_eq!(frames[0].as_ref().unwrap().msg, r#"}{ " \" ]["#);
        assert_eq!(to_list(&frames), ["a", "b"]);
    }

    #[test]
    fn bad_json_inside_a_delimited_frame_is_recoverable() {
        let (frames, err) = decode_all(br#"{"to":,}{"to":"ok"}"#, 1024);
        assert!(err.is_none());
        assert!(matches!(frames[0], Err(FrameError::InvalidJson(_))));
        assert_eq!(frames[1].as_ref().unwrap().to, "ok");
    }

    #[test]
    fn invalid_utf8_is_recoverable() {
        let (frames, _) = decode_all(b"{\"to\":\"a\xff\"}{\"to\":\"ok\"}", 1024);
        assert_eq!(frames[0], Err(FrameError::InvalidUtf8));
        assert_eq!(frames[1].as_ref().unwrap().to, "ok");
    }

    #[test]
    fn junk_is_skipped_to_the_next_newline_or_brace() {
        let (frames, _) = decode_all(b"hello there\n{\"to\":\"a\"}oops{\"to\":\"b\"}", 1024);
        assert_eq!(
            to_list(&frames),
            ["ERR NotAnObject", "a", "ERR NotAnObject", "b"]
        );
    }

    #[test]
    fn oversized_frame_is_fatal_even_before_it_ends() {
        let mut big = b"{\"to\":\"a\",\"msg\":\"".to_vec();
        big.extend(std::iter::repeat_n(b'x', 200));
        let (_, err) = decode_all(&big, 100);
        assert!(matches!(err, Some(StreamError::TooLarge { limit: 100 })));
        big.extend_from_slice(b"\"}");
        let (_, err) = decode_all(&big, 100);
        assert!(matches!(err, Some(StreamError::TooLarge { limit: 100 })));
    }

    #[test]
    fn frame_exactly_at_the_limit_is_accepted() {
        let raw = br#"{"to":"a","msg":"xyz"}"#;
        let (frames, err) = decode_all(raw, raw.len());
        assert!(err.is_none());
        assert_eq!(to_list(&frames), ["a"]);
    }

    #[test]
    fn truncated_stream_reports_once() {
        let (frames, err) = decode_all(br#"{"to":"a"}{"to":"#, 1024);
        assert!(err.is_none());
        assert_eq!(to_list(&frames), ["a", "ERR Truncated"]);
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let mut raw = vec![b'['; 100_000];
        raw.extend(vec![b']'; 100_000]);
        let (frames, err) = decode_all(&raw, 1 << 20);
        assert!(err.is_none());
        assert!(matches!(frames[0], Err(FrameError::WrongShape(_))));
        // Nested inside the ignored `from`: skipped without recursion, so still no crash.
        let mut raw = br#"{"to":"a","from":"#.to_vec();
        raw.extend(vec![b'['; 100_000]);
        raw.extend(vec![b']'; 100_000]);
        raw.push(b'}');
        let (frames, err) = decode_all(&raw, 1 << 20);
        assert!(err.is_none());
        assert_eq!(frames[0].as_ref().map(|f| f.to.as_str()), Ok("a"));
    }

    #[test]
    fn server_frames_decode_from_the_servers_output() {
        use crate::frame::{FrameKind, Sender};
        let mut f = ServerFrame::new(
            Sender {
                name: "a".into(),
                ip: "1".into(),
            },
            "b",
            "x}{",
            FrameKind::Chat,
        );
        f.id = Some(3);
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&f.to_bytes());
        buf.extend_from_slice(&f.to_bytes());
        buf.extend_from_slice(b"{\"bad\":1}");
        let mut dec = ServerFrameDecoder::new(1024);
        assert_eq!(dec.decode(&mut buf).unwrap(), Some(Ok(f.clone())));
        assert_eq!(dec.decode(&mut buf).unwrap(), Some(Ok(f)));
        assert!(matches!(
            dec.decode(&mut buf).unwrap(),
            Some(Err(FrameError::InvalidJson(_)))
        ));
    }

    #[test]
    fn incremental_scan_keeps_state_across_reads() {
        let raw = br#"{"to":"a","msg":"x\"}"}"#;
        let mut dec = JsonStreamDecoder::new(1024);
        let mut buf = BytesMut::new();
        for (i, b) in raw.iter().enumerate() {
            buf.extend_from_slice(&[*b]);
            let got = dec.decode(&mut buf).unwrap();
            if i + 1 < raw.len() {
                assert!(got.is_none(), "ended early at byte {i}");
            } else {
                assert_eq!(got.unwrap().unwrap().msg, "x\"}");
            }
        }
    }
}
