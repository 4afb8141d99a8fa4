//! A private message to one user, wherever they are connected.

use std::future::Future;

use futures_util::FutureExt;
use futures_util::future::{self, Either};

use chat_common::ChatError;
use chat_common::name::validate_name;

use crate::backend::Backend;
use crate::session::Session;

/// Routes `text` to `to` through the chat service, which knows every user. Names that
/// cannot belong to anybody (`Everyone`, `SERVER`, malformed ones) are refused here,
/// without a round trip; the seeds' load scripts send heartbeats to `Everyone` and expect
/// just that (PROTOCOL.md §4.2). (A plain `fn` returning the wait: see `Chat::publish`.)
pub fn apply<B: Backend>(
    s: &Session<B>,
    to: String,
    text: String,
) -> impl Future<Output = ()> + Send + '_ {
    if validate_name(&to).is_err() {
        s.error(&ChatError::NoSuchUser { to });
        return Either::Left(future::ready(()));
    }
    Either::Right(
        s.chat
            .private(s.conn, to, text, s.label.clone())
            .map(|sent| {
                if let Err(e) = sent {
                    s.error(&e);
                }
            }),
    )
}
