//! The broker link: `LinkDecoder<ToBroker>` and `LinkDecoder<ToServer>`, and `link::encode`.
//!
//! Input: 3 split bytes (see `chat_common_fuzz::split_input`), then the stream of
//! length-prefixed messages, read by both decoders.
//! Invariants:
//! - one read or cut reads: the same messages and the same error;
//! - never more than `MAX` bytes buffered while waiting;
//! - every decoded message re-encodes with `link::encode` to a frame that decodes, in one
//!   read or byte by byte, to an equal message, and re-encoding that gives the same bytes;
//! - the stream rebuilt from the decoded messages' frames, as far as decoding got, decodes
//!   to the same messages.
#![no_main]

use std::fmt::Debug;

use chat_common::link::{LinkDecoder, ToBroker, ToServer, encode};
use chat_common_fuzz::{decode_both_ways, decode_chunks, split_input};
use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Small, so the over-limit path is reached by short inputs.
const MAX: usize = 4096;

fn check<T>(stream: &[u8], chunks: &[&[u8]])
where
    T: DeserializeOwned + Serialize + PartialEq + Debug,
{
    let got = decode_both_ways(|| LinkDecoder::<T>::new(MAX), stream, chunks, MAX);
    let mut rebuilt = Vec::new();
    for msg in &got.items {
        let bytes = encode(msg);
        assert_eq!(
            usize::try_from(u32::from_be_bytes(bytes[..4].try_into().unwrap())).unwrap(),
            bytes.len() - 4
        );
        let one = decode_chunks(&mut LinkDecoder::<T>::new(1 << 20), &[&bytes]);
        assert!(
            one.error.is_none(),
            "{msg:?} re-encoded does not decode: {:?}",
            one.error
        );
        assert_eq!(one.items.len(), 1);
        assert_eq!(&one.items[0], msg);
        assert_eq!(encode(&one.items[0]), bytes, "encoding is not stable");
        let bytewise: Vec<&[u8]> = bytes.chunks(1).collect();
        let slow = decode_chunks(&mut LinkDecoder::<T>::new(1 << 20), &bytewise);
        assert!(slow.error.is_none());
        assert_eq!(slow.items, one.items);
        rebuilt.extend_from_slice(&bytes);
    }
    let again = decode_chunks(&mut LinkDecoder::<T>::new(1 << 20), &[&rebuilt]);
    assert!(again.error.is_none());
    assert_eq!(again.items, got.items);
}

fuzz_target!(|data: &[u8]| {
    let Some((stream, chunks)) = split_input(data) else {
        return;
    };
    check::<ToBroker>(stream, &chunks);
    check::<ToServer>(stream, &chunks);
});
