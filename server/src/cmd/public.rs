//! `/shout` and `*` (a plain line on the line port): a public message, ordered by the chat
//! service and fanned out by every server.

use crate::backend::Backend;
use crate::session::Session;

/// Sends `text` to everyone else. The confirmation (for `/shout`) or a "not delivered"
/// error comes back later, through the hub.
pub async fn apply<B: Backend>(s: &Session<B>, text: String, confirm: bool) {
    if let Err(e) = s.chat.publish(s.conn, text, confirm).await {
        s.error(&e);
    }
}
