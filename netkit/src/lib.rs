//! Tokio plumbing shared by the broker and the front-end servers.
//!
//! - [`queue`]: an outbound queue bounded by bytes, with the slow-consumer policy
//!   (PROTOCOL.md §6.3): a push that would exceed the bound fails, and the owner is kicked;
//! - [`writer`]: the task that drains such a queue into a socket, batching frames;
//! - [`shutdown`]: waiting for Ctrl-C or SIGTERM;
//! - [`fdlimit`]: the open-file limit raised and the file table sized at startup;
//! - [`listen`]: a listener flag's value, an address or `off`;
//! - [`logging`]: `tracing` set up from `RUST_LOG`;
//! - [`runtime`]: the tokio runtime sized by a `--threads` flag;
//! - [`token`]: the shared secret of the broker link;
//! - [`random`]: random identifiers (resume tokens, session chains, server incarnations);
//! - [`metrics`]: counters, gauges and histograms, their Prometheus text format and the
//!   `GET /metrics` endpoint (`--metrics-listen`).

pub mod fdlimit;
pub mod listen;
pub mod logging;
pub mod metrics;
pub mod queue;
pub mod random;
pub mod runtime;
pub mod shutdown;
pub mod token;
pub mod writer;
