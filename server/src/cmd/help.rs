//! `/help`: the commands of the client's port.

use crate::frames::Format;
use crate::session::Session;

/// Help for the JSON port, where commands are values of `to`.
pub const JSON_HELP: &str = "Send JSON frames {\"from\": {\"name\": ..., \"ip\": ...}, \"to\": ..., \"msg\": ...}. Values of \"to\":\n\
  <user>      private message to that user\n\
  /shout      public message to everyone else, confirmed to you\n\
  *           public message without confirmation\n\
  /list       users online\n\
  /time       server time\n\
  /help       this help\n\
  /standard   the frame schema\n\
  /quit       leave";

/// Replies with the help text.
pub fn apply(s: &Session) {
    let text = match s.format {
        Format::Json => JSON_HELP.to_string(),
        Format::Line => chat_common::command::help(chat_common::command::Dialect::Typed),
    };
    s.system(text);
}
