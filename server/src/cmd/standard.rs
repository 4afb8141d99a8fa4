//! `/standard`: the frame schema every client must follow.

use crate::backend::Backend;
use crate::cmd::flow::Flow;
use crate::session::Session;

/// The schema, as the class-chat project documents it.
pub const SCHEMA: &str = r#"{"from": {"name": "SenderUsername", "ip": "SenderIPAddress"}, "to": "RecipientUsername or command", "msg": "Content of the message"}"#;

/// Replies with the schema.
pub fn apply<B: Backend>(s: &Session<B>) -> Flow {
    s.system(SCHEMA);
    Flow::Continue
}
