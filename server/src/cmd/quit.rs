//! `/quit` (also `\q`, `!logout`): say goodbye and close.

use crate::backend::Backend;
use crate::cmd::flow::Flow;
use crate::session::Session;

/// Queues the goodbye; the caller then leaves and closes the connection.
pub fn apply<B: Backend>(s: &Session<B>) -> Flow {
    s.system(format!("Goodbye {}!", s.name));
    Flow::Quit
}
