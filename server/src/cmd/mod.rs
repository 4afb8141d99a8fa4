//! The commands a logged-in client can give, one file each, shared by both ports: the
//! JSON port reads them from `to` (design §2.5), the line port from the typed line (§3).

mod help;
mod list;
mod private;
mod public;
mod quit;
mod standard;
mod time;

use chat_common::ClientFrame;
use chat_common::command::Request;

use crate::session::Session;

/// One thing a client asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// A public message; `confirm` for `/shout` (the sender is told how many it reached).
    Public {
        /// The text.
        msg: String,
        /// Whether to confirm.
        confirm: bool,
    },
    /// A private message.
    Private {
        /// Recipient.
        to: String,
        /// The text.
        msg: String,
    },
    /// Users online.
    List,
    /// Server time.
    Time,
    /// The commands.
    Help,
    /// The frame schema.
    Standard,
    /// Leave.
    Quit,
    /// Something that cannot be done; the text says why.
    Invalid(String),
}

/// Whether the connection goes on after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Keep reading.
    Continue,
    /// Close the connection.
    Quit,
}

impl Command {
    /// Interprets a JSON frame. `msg` of a public frame is never parsed for commands.
    pub fn from_frame(frame: ClientFrame) -> Command {
        let ClientFrame { to, msg } = frame;
        match to.as_str() {
            "/shout" => Command::Public { msg, confirm: true },
            "*" => Command::Public {
                msg,
                confirm: false,
            },
            "/list" => Command::List,
            "/time" => Command::Time,
            "/help" => Command::Help,
            "/standard" => Command::Standard,
            "/quit" => Command::Quit,
            "" => Command::Invalid("the frame has no recipient in \"to\"".to_string()),
            t if t.starts_with('/') => Command::Invalid(format!(
                "unknown command '{t}'; send to /help for the commands"
            )),
            _ => Command::Private { to, msg },
        }
    }

    /// Interprets a line-port line; `None` for a blank line.
    pub fn from_line(line: &str) -> Option<Command> {
        Some(match chat_common::command::parse_typed(line) {
            Ok(None) => return None,
            Ok(Some(Request::Public { text, confirm })) => Command::Public { msg: text, confirm },
            Ok(Some(Request::Private { to, text })) => Command::Private { to, msg: text },
            Ok(Some(Request::List)) => Command::List,
            Ok(Some(Request::Time)) => Command::Time,
            Ok(Some(Request::Help)) => Command::Help,
            Ok(Some(Request::Standard)) => Command::Standard,
            Ok(Some(Request::Quit)) => Command::Quit,
            Err(why) => Command::Invalid(why.to_string()),
        })
    }

    /// Carries the command out for `session`.
    pub async fn execute(self, session: &Session) -> Flow {
        match self {
            Command::Public { msg, confirm } => public::apply(session, msg, confirm).await,
            Command::Private { to, msg } => private::apply(session, to, msg).await,
            Command::List => list::apply(session),
            Command::Time => time::apply(session),
            Command::Help => help::apply(session),
            Command::Standard => standard::apply(session),
            Command::Quit => return quit::apply(session),
            Command::Invalid(why) => session.error(why),
        }
        Flow::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(to: &str, msg: &str) -> Command {
        Command::from_frame(ClientFrame {
            to: to.into(),
            msg: msg.into(),
        })
    }

    #[test]
    fn json_recipients() {
        assert_eq!(
            f("/shout", "hi"),
            Command::Public {
                msg: "hi".into(),
                confirm: true
            }
        );
        assert_eq!(
            f("*", "hi"),
            Command::Public {
                msg: "hi".into(),
                confirm: false
            }
        );
        assert_eq!(
            f("bob", "@carol x"),
            Command::Private {
                to: "bob".into(),
                msg: "@carol x".into()
            }
        );
        assert_eq!(f("/list", ""), Command::List);
        assert_eq!(f("/time", ""), Command::Time);
        assert_eq!(f("/help", ""), Command::Help);
        assert_eq!(f("/standard", ""), Command::Standard);
        assert_eq!(f("/quit", ""), Command::Quit);
        assert!(matches!(f("/nope", ""), Command::Invalid(_)));
        assert!(matches!(f("", "x"), Command::Invalid(_)));
        // "Everyone" is routed like a user name, and refused as unknown (design §2.5).
        assert_eq!(
            f("Everyone", "hb"),
            Command::Private {
                to: "Everyone".into(),
                msg: "hb".into()
            }
        );
    }

    #[test]
    fn public_text_is_never_a_command() {
        assert_eq!(
            f("/shout", "/quit"),
            Command::Public {
                msg: "/quit".into(),
                confirm: true
            }
        );
    }
}
