//! One client connection, from its first byte to its close: the two ports' logins, the
//! read/dispatch loop they share, and the I/O halves under them.
//!
//! - [`json_port`], [`line_port`]: login and dialect of each port;
//! - [`serve`]: the logged-in read loop (what each item costs, idle timeout, shutdown);
//! - [`reader`], [`outbound`]: decoded reading held back by the flood budget, and the
//!   byte-bounded queue with its writer;
//! - [`flood`]: the flood budget and what a message costs (pure).

pub mod flood;
pub mod json_port;
pub mod line_port;
pub mod outbound;
pub mod reader;
pub mod serve;

#[cfg(test)]
mod footprint;
#[cfg(test)]
mod tests;
