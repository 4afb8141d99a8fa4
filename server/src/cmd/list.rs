//! `/list`, `/who`, `!who`: users online on every server, from the local replica (no round
//! trip to the broker).

use crate::frames;
use crate::session::Session;

/// Replies with the sorted user list, as text and as a `users` field.
pub fn apply(s: &Session) {
    s.reply(&frames::users(s.hub.server_ip(), &s.name, s.hub.users()));
}
