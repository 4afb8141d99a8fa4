//! The commands a logged-in client can give, one file each, the same on every port: the
//! JSON port reads them from `to` (PROTOCOL.md §4), the line port from the typed line
//! (§7.2); both are parsed by [`chat_common::command`], the one command table.

mod flow;
mod help;
mod history;
mod list;
mod private;
mod public;
mod quit;
mod standard;
mod time;

pub use flow::Flow;

use std::future::Future;

use chat_common::command::Request;
use futures_util::FutureExt;
use futures_util::future::{self, Either};

use crate::backend::Backend;
use crate::session::Session;

/// Carries out `req` for `session`; the returned future is ready at once unless the
/// command waits for the chat service to take a message. (Not an `async fn`, so a
/// connection waiting on a message holds only that message's wait: see `Chat::publish`.)
pub fn execute<B: Backend>(
    req: Request,
    session: &Session<B>,
) -> impl Future<Output = Flow> + Send + '_ {
    let sending = match req {
        Request::Public { text, confirm } => Either::Left(public::apply(session, text, confirm)),
        Request::Private { to, text } => {
            Either::Right(Either::Left(private::apply(session, to, text)))
        }
        Request::List => return Either::Left(future::ready(list::apply(session))),
        Request::Time => return Either::Left(future::ready(time::apply(session))),
        Request::Help => return Either::Left(future::ready(help::apply(session))),
        Request::Standard => return Either::Left(future::ready(standard::apply(session))),
        Request::Quit => return Either::Left(future::ready(quit::apply(session))),
        Request::History { query, chat_only } => Either::Right(Either::Right(Either::Left(
            history::apply(session, query, chat_only),
        ))),
        Request::Resume { token } => Either::Right(Either::Right(Either::Right(history::resume(
            session, token,
        )))),
    };
    Either::Right(sending.map(|()| Flow::Continue))
}
