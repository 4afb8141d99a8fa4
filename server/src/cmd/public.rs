//! `/shout` and `*` (a plain line on the line port): a public message, ordered by the chat
//! service and fanned out by every server.

use std::future::Future;

use futures_util::FutureExt;

use crate::backend::Backend;
use crate::session::Session;

/// Sends `text` to everyone else. The confirmation (for `/shout`) or a "not delivered"
/// error comes back later, through the hub. (A plain `fn` returning the wait, so the
/// connection's task does not also keep the arguments: see `Chat::publish`.)
pub fn apply<B: Backend>(
    s: &Session<B>,
    text: String,
    confirm: bool,
) -> impl Future<Output = ()> + Send + '_ {
    s.chat
        .publish(s.conn, text, confirm, s.label.clone())
        .map(|sent| {
            if let Err(e) = sent {
                s.error(&e);
            }
        })
}
