//! Building the tokio runtime from a `--threads` flag.

/// A runtime with `threads` workers: 0 means one per CPU core (tokio's default), 1 a
/// current-thread runtime, which has no cross-thread wake-ups at all.
pub fn build(threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    if threads == 1 {
        return tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
    }
    let mut b = tokio::runtime::Builder::new_multi_thread();
    if threads > 1 {
        b.worker_threads(threads);
    }
    b.enable_all().build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_every_flavour() {
        for threads in [0, 1, 2] {
            let rt = build(threads).expect("runtime");
            assert_eq!(rt.block_on(async { 40 + 2 }), 42);
            let flavor = rt.handle().runtime_flavor();
            if threads == 1 {
                assert_eq!(flavor, tokio::runtime::RuntimeFlavor::CurrentThread);
            } else {
                assert_eq!(flavor, tokio::runtime::RuntimeFlavor::MultiThread);
            }
        }
    }
}
