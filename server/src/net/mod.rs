//! Accepting connections: the accept loops of every port, connection limits, and TLS.

pub mod limits;
pub mod listener;
pub mod tls;
