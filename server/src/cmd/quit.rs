//! `/quit`, `\q`, `!logout`: say goodbye and close.

use super::Flow;
use crate::session::Session;

/// Queues the goodbye; the caller then leaves and closes the connection.
pub fn apply(s: &Session) -> Flow {
    s.system(format!("Goodbye {}!", s.name));
    Flow::Quit
}
