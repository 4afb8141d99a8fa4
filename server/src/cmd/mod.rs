//! The commands a logged-in client can give, one file each, the same on every port: the
//! JSON port reads them from `to` (PROTOCOL.md §4), the line port from the typed line
//! (§7.2); both are parsed by [`chat_common::command`], the one command table.

mod flow;
mod help;
mod list;
mod private;
mod public;
mod quit;
mod standard;
mod time;

pub use flow::Flow;

use chat_common::command::Request;

use crate::backend::Backend;
use crate::session::Session;

/// Carries out `req` for `session`.
pub async fn execute<B: Backend>(req: Request, session: &Session<B>) -> Flow {
    match req {
        Request::Public { text, confirm } => public::apply(session, text, confirm).await,
        Request::Private { to, text } => private::apply(session, to, text).await,
        Request::List => list::apply(session),
        Request::Time => time::apply(session),
        Request::Help => help::apply(session),
        Request::Standard => standard::apply(session),
        Request::Quit => return quit::apply(session),
    }
    Flow::Continue
}
