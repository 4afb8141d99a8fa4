//! A private message to one user, wherever they are connected.

use chat_common::ChatError;
use chat_common::name::validate_name;

use crate::backend::Backend;
use crate::session::Session;

/// Routes `text` to `to` through the chat service, which knows every user. Names that
/// cannot belong to anybody (`Everyone`, `SERVER`, malformed ones) are refused here,
/// without a round trip; the seeds' load scripts send heartbeats to `Everyone` and expect
/// just that (PROTOCOL.md §4.2).
pub async fn apply<B: Backend>(s: &Session<B>, to: String, text: String) {
    if validate_name(&to).is_err() {
        return s.error(&ChatError::NoSuchUser { to });
    }
    if let Err(e) = s.chat.private(s.conn, to, text).await {
        s.error(&e);
    }
}
