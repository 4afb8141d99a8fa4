//! The chat system's desktop client, in three layers:
//!
//! - [`state`] (with [`backoff`]): what the client knows and how events and user actions
//!   change it; pure and unit-tested without a window. What the user types is parsed by
//!   `chat_common::command`, the line port's own vocabulary, and error frames are judged
//!   by their `code` ([`state::error_code`]);
//! - [`net`] (with [`tls`]): the receive and send threads that own the socket and talk to
//!   the UI through crossbeam channels;
//! - [`view`]: the egui widgets, which only read the state and report what the user did.
//!
//! [`app::ChatApp`] ties them together, once per frame; [`settings`] holds what the user
//! chose in the settings panel.

pub mod app;
pub mod backoff;
pub mod fonts;
pub mod framebench;
pub mod net;
pub mod settings;
pub mod state;
pub mod tls;
pub mod view;
