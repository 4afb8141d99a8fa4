//! What the user typed in the message box, translated into protocol frames.
//!
//! The server never parses public text for commands (design §2.5), so a rich client turns
//! `@nick text`, `/msg nick text`, `/list`, ... into the right `to` itself.

use chat_common::ClientFrame;

/// The result of one line typed by the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Typed {
    /// Nothing to send (blank line).
    Nothing,
    /// A public message (sent to `*`: the client shows it itself, once).
    Public(String),
    /// A private message.
    Private {
        /// Recipient.
        to: String,
        /// Text.
        text: String,
    },
    /// A server command (`/list`, `/time`, `/help`, `/standard`) sent as `to`.
    Command(&'static str),
    /// `/quit`: say goodbye and disconnect.
    Quit,
    /// Typed wrongly; shown to the user, nothing is sent.
    Invalid(String),
}

/// The commands the client knows, for `/help`-style hints.
pub const COMMANDS: &[&str] = &["/msg", "/list", "/time", "/help", "/standard", "/quit"];

impl Typed {
    /// Interprets one line of input.
    pub fn parse(input: &str) -> Typed {
        let text = input.trim();
        if text.is_empty() {
            return Typed::Nothing;
        }
        // `//text` sends `/text` as a public message.
        if let Some(rest) = text.strip_prefix("//") {
            return Typed::Public(format!("/{rest}"));
        }
        let (word, rest) = match text.split_once(char::is_whitespace) {
            Some((w, r)) => (w, r.trim_start()),
            None => (text, ""),
        };
        if let Some(nick) = word.strip_prefix('@') {
            return private(nick, rest, "@nick text");
        }
        match word {
            "/msg" => match rest.split_once(char::is_whitespace) {
                Some((nick, body)) => private(nick, body.trim_start(), "/msg nick text"),
                None => Typed::Invalid("usage: /msg nick text".to_string()),
            },
            "/list" | "/who" => Typed::Command("/list"),
            "/time" => Typed::Command("/time"),
            "/help" => Typed::Command("/help"),
            "/standard" => Typed::Command("/standard"),
            "/quit" => Typed::Quit,
            w if w.starts_with('/') => Typed::Invalid(format!(
                "unknown command {w}; commands: @nick text, {} (start with // to send a slash)",
                COMMANDS.join(", ")
            )),
            _ => Typed::Public(text.to_string()),
        }
    }

    /// The frame to send, if any.
    pub fn frame(&self) -> Option<ClientFrame> {
        let (to, msg) = match self {
            Typed::Public(text) => ("*".to_string(), text.clone()),
            Typed::Private { to, text } => (to.clone(), text.clone()),
            Typed::Command(cmd) => (cmd.to_string(), String::new()),
            Typed::Quit => ("/quit".to_string(), String::new()),
            Typed::Nothing | Typed::Invalid(_) => return None,
        };
        Some(ClientFrame { to, msg })
    }
}

fn private(nick: &str, text: &str, usage: &str) -> Typed {
    if nick.is_empty() || text.is_empty() {
        return Typed::Invalid(format!("usage: {usage}"));
    }
    Typed::Private {
        to: nick.to_string(),
        text: text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(s: &str) -> Option<(String, String)> {
        Typed::parse(s).frame().map(|f| (f.to, f.msg))
    }

    #[test]
    fn public_and_private() {
        assert_eq!(frame("hello all"), Some(("*".into(), "hello all".into())));
        assert_eq!(
            frame("@bob hi there"),
            Some(("bob".into(), "hi there".into()))
        );
        assert_eq!(frame("/msg bob  hi"), Some(("bob".into(), "hi".into())));
        assert_eq!(frame("//shrug"), Some(("*".into(), "/shrug".into())));
    }

    #[test]
    fn commands() {
        assert_eq!(frame("/list"), Some(("/list".into(), "".into())));
        assert_eq!(frame("/who"), Some(("/list".into(), "".into())));
        assert_eq!(frame("/time"), Some(("/time".into(), "".into())));
        assert_eq!(frame("/help"), Some(("/help".into(), "".into())));
        assert_eq!(frame("/standard"), Some(("/standard".into(), "".into())));
        assert_eq!(Typed::parse("/quit"), Typed::Quit);
        assert_eq!(frame("/quit"), Some(("/quit".into(), "".into())));
    }

    #[test]
    fn mistakes_send_nothing() {
        for s in ["", "   ", "@bob", "@ hi", "/msg", "/msg bob", "/frobnicate"] {
            assert_eq!(frame(s), None, "{s:?}");
        }
        assert!(
            matches!(Typed::parse("/frobnicate"), Typed::Invalid(m) if m.contains("/frobnicate"))
        );
        assert_eq!(Typed::parse("  "), Typed::Nothing);
    }
}
