//! A chat front-end server. It accepts clients on the JSON port (the class-chat protocol),
//! the line port (nc/telnet) and optionally TLS, stamps and validates what they send,
//! hands it to the chat service through a backend (the broker link), and fans the
//! service's events out to its local clients.
//!
//! The layout follows the path of a message (docs/ARCHITECTURE.md):
//! - [`net`]: accepting connections (limits, TLS);
//! - [`conn`]: one connection: the ports' logins and the read loop they share;
//! - [`cmd`]: one file per command;
//! - [`session`], [`chat`]: a logged-in client, and the chat service as it sees it;
//! - [`core`]: what the server knows (clients, user list, presence, open requests), pure;
//! - [`backend`]: the seam to the chat service, and the broker link behind it;
//! - [`server`], [`config`], [`cli`]: running it;
//! - [`metrics`]: the page `--metrics-listen` serves.

pub mod backend;
pub mod chat;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod conn;
pub mod core;
pub mod ctx;
pub mod metrics;
pub mod net;
pub mod server;
pub mod session;

pub use config::Config;
pub use server::{Addrs, Listeners, launch, run, run_with};
