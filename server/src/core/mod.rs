//! The server's core: what one server knows and decides, with no socket and no backend in
//! it. Every part is tested on values (in-memory queues, no real time).
//!
//! - [`event`]: what a backend reports, and what the core asks of it in return;
//! - [`requests`]: the messages sent and not yet confirmed delivered;
//! - [`presence`]: when joins and leaves are announced, and when only counted;
//! - [`roster`]: who is online on every server, shared for `/list`;
//! - [`clients`]: the local clients and the fan-out to their queues;
//! - [`frames`]: the frames the server writes, and their encoding per port;
//! - [`hub`]: the parts behind one lock, and the dispatcher that applies events to them;
//! - [`stats`]: the counters operators scrape, and the handle a backend reports through.

pub mod clients;
pub mod event;
pub mod frames;
pub mod hub;
pub mod presence;
pub mod requests;
pub mod roster;
pub mod stats;
