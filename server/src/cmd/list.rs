//! `/list` (also `/who`, `!who`): users online on every server, from the local replica
//! (no round trip to the chat service).

use crate::backend::Backend;
use crate::cmd::flow::Flow;
use crate::core::frames;
use crate::session::Session;

/// Replies with the sorted user list, as text and as a `users` field.
pub fn apply<B: Backend>(s: &Session<B>) -> Flow {
    s.reply(&frames::users(s.chat.server_ip(), &s.name, &s.chat.users()));
    Flow::Continue
}
