//! The broker's history: a durable, ordered log of what it routed, and the resume sessions
//! that decide who may read which private messages (PROTOCOL.md §10).
//!
//! [`record`] is what one event holds; [`store`] is the database; the routing thread appends each drained batch to it before
//! the batch goes out, and answers queries from it.

pub mod record;
pub mod store;

#[cfg(test)]
mod tests;
