//! Random identifiers: resume tokens, session chains, server incarnations.

/// `n` random bytes from the OS's generator, as `2n` lower-case hex digits. The generator
/// failing is not something a chat can recover from sensibly, so it falls back to the
/// clock and the address of a stack value rather than panic (the identifier is then only
/// unlikely to repeat, not unguessable).
pub fn hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let seed = nanos ^ ((bytes.as_ptr() as u128) << 64);
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (seed >> ((i % 16) * 8)) as u8;
        }
    }
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(n * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn identifiers_have_their_length_and_differ() {
        let (a, b) = (super::hex(16), super::hex(16));
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
