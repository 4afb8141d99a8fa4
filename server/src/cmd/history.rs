//! `/history`: earlier events from the chat service's log (PROTOCOL.md §10.2), and
//! `/resume`, which decides whose private messages those include (§10.4). The answers come
//! back later, through the hub.

use std::future::Future;

use chat_common::history::Query;
use futures_util::FutureExt;

use crate::backend::Backend;
use crate::session::Session;

/// Asks for `query` (with `chat_only`, public messages only: the line port's `/history N`).
pub fn apply<B: Backend>(
    s: &Session<B>,
    query: Query,
    chat_only: bool,
) -> impl Future<Output = ()> + Send + '_ {
    s.chat.history(s.conn, query, chat_only).map(|asked| {
        if let Err(e) = asked {
            s.error(&e);
        }
    })
}

/// Joins the session chain of `token`.
pub fn resume<B: Backend>(s: &Session<B>, token: String) -> impl Future<Output = ()> + Send + '_ {
    s.chat.resume(s.conn, token).map(|asked| {
        if let Err(e) = asked {
            s.error(&e);
        }
    })
}
