//! The chat broker: the one process that owns the global user directory, gives every event
//! its place in one global order, and routes messages between front-end servers
//! (docs/ARCHITECTURE.md, "Processes" and "The broker link").
//!
//! The `broker` binary parses its flags into a [`Config`], binds a listener and calls
//! [`run`]. Tests and other programs can do the same in-process, or start a [`Broker`] and
//! hand it already-connected streams:
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let config = broker::Config::new("the link token");
//! broker::run(config, listener, async { let _ = tokio::signal::ctrl_c().await; }).await;
//! # Ok(())
//! # }
//! ```
//!
//! The parts (where a change goes: docs/ARCHITECTURE.md, "Where things go"):
//!
//! - [`config`]: the settings of a broker;
//! - [`directory`]: who is online where, and the sequence of events (pure logic, no I/O);
//! - [`history`]: the durable log of events and the resume sessions (SQLite);
//! - [`metrics`]: what it counts for operators, and its page of `/metrics`;
//! - [`serve`]: a running broker, its routing task and its link tasks.
//!
//! Inside, each server link is served by a link task (handshake, heartbeat timeout, the
//! inbox's byte budget, a bounded outbound queue) and a single routing task applies what
//! every link reads to the directory, in one order.

#![warn(missing_docs)]

pub mod config;
pub mod directory;
pub mod history;
mod link;
pub mod metrics;
mod router;
pub mod serve;

pub use config::Config;
pub use serve::{Broker, run, run_with, run_with_metrics};
