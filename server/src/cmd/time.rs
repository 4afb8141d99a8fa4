//! `/time`: the server's local time as `HH:MM:SS`.

use chat_common::clock;

use crate::backend::Backend;
use crate::cmd::flow::Flow;
use crate::session::Session;

/// Replies with the time.
pub fn apply<B: Backend>(s: &Session<B>) -> Flow {
    s.system(clock::hhmmss(clock::now_ms()));
    Flow::Continue
}
