//! `/help`: the commands of the client's dialect, generated from the command table.

use chat_common::command::{self, Dialect};

use crate::backend::Backend;
use crate::cmd::flow::Flow;
use crate::core::frames::Format;
use crate::session::Session;

/// Replies with the help of the client's port.
pub fn apply<B: Backend>(s: &Session<B>) -> Flow {
    let dialect = match s.format {
        Format::Json => Dialect::Json,
        Format::Line => Dialect::Typed,
    };
    s.system(command::help(dialect));
    Flow::Continue
}
