//! Helpers shared by the fuzz targets: cutting an input into the reads a socket would
//! deliver and driving a tokio-util `Decoder` over them the way `FramedRead` does.
//!
//! Every stream target reads its first [`HEADER`] bytes as split parameters and decodes the
//! rest twice, in one read and in the cut reads; both runs must agree exactly.

use std::fmt::Debug;

use bytes::BytesMut;
use tokio_util::codec::Decoder;

/// Bytes at the front of a stream input that choose the cuts (not part of the stream).
pub const HEADER: usize = 3;

/// Splits a fuzz input into the stream and the reads it is cut into.
///
/// Bytes 0–1 (big-endian, modulo the stream length + 1) give the first cut; byte 2 gives
/// the size of every later read (0: the rest in one read, 1: byte by byte).
pub fn split_input(data: &[u8]) -> Option<(&[u8], Vec<&[u8]>)> {
    if data.len() < HEADER {
        return None;
    }
    let stream = &data[HEADER..];
    let first = usize::from(u16::from_be_bytes([data[0], data[1]])) % (stream.len() + 1);
    let step = usize::from(data[2]);
    let mut chunks = vec![&stream[..first]];
    let rest = &stream[first..];
    if step == 0 {
        chunks.push(rest);
    } else {
        chunks.extend(rest.chunks(step));
    }
    Some((stream, chunks))
}

/// What a decoder produced over a whole stream.
#[derive(Debug)]
pub struct Decoded<I, E> {
    /// Every item, in order, up to the first error.
    pub items: Vec<I>,
    /// The error that ended decoding, if any.
    pub error: Option<E>,
    /// The largest buffer left behind by a `decode` that returned `Ok(None)`: how much the
    /// decoder holds while it waits for more input.
    pub max_pending: usize,
}

/// Feeds `chunks` one read at a time into one buffer, calling `decode` after each read
/// until it wants more, then `decode_eof` until it reports the end, like `FramedRead`.
/// Stops at the first error. Asserts that every item consumes input (no endless loop) and
/// that `decode_eof` ends with an empty buffer.
pub fn decode_chunks<D: Decoder>(dec: &mut D, chunks: &[&[u8]]) -> Decoded<D::Item, D::Error> {
    let mut buf = BytesMut::new();
    let mut out = Decoded {
        items: Vec::new(),
        error: None,
        max_pending: 0,
    };
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            let before = buf.len();
            match dec.decode(&mut buf) {
                Ok(Some(item)) => {
                    assert!(
                        buf.len() < before,
                        "decode returned an item without consuming input"
                    );
                    out.items.push(item);
                }
                Ok(None) => {
                    out.max_pending = out.max_pending.max(buf.len());
                    break;
                }
                Err(e) => {
                    out.error = Some(e);
                    return out;
                }
            }
        }
    }
    loop {
        let before = buf.len();
        match dec.decode_eof(&mut buf) {
            Ok(Some(item)) => {
                assert!(
                    buf.len() < before,
                    "decode_eof returned an item without consuming input"
                );
                out.items.push(item);
            }
            Ok(None) => {
                assert!(
                    buf.is_empty(),
                    "decode_eof ended with {} bytes left",
                    buf.len()
                );
                break;
            }
            Err(e) => {
                out.error = Some(e);
                break;
            }
        }
    }
    out
}

/// Decodes `stream` in one read and in `chunks` with fresh decoders from `new`, asserts
/// that both give the same items and the same error (compared by `Debug`), and that
/// neither held more than `max_pending` bytes while waiting for input. Returns the
/// one-read result.
pub fn decode_both_ways<D, F>(
    new: F,
    stream: &[u8],
    chunks: &[&[u8]],
    max_pending: usize,
) -> Decoded<D::Item, D::Error>
where
    D: Decoder,
    D::Item: Debug,
    D::Error: Debug,
    F: Fn() -> D,
{
    let whole = decode_chunks(&mut new(), &[stream]);
    let cut = decode_chunks(&mut new(), chunks);
    assert_eq!(
        format!("{:?}", whole.items),
        format!("{:?}", cut.items),
        "items differ between one read and reads of {:?}",
        chunks.iter().map(|c| c.len()).collect::<Vec<_>>()
    );
    assert_eq!(
        format!("{:?}", whole.error),
        format!("{:?}", cut.error),
        "errors differ between one read and reads of {:?}",
        chunks.iter().map(|c| c.len()).collect::<Vec<_>>()
    );
    for d in [&whole, &cut] {
        assert!(
            d.max_pending <= max_pending,
            "decoder held {} bytes while waiting (limit {max_pending})",
            d.max_pending
        );
    }
    whole
}
