//! The command vocabulary: one table of commands, their words, aliases and help, from which
//! every dialect parses and writes its help (PROTOCOL.md §4 and §7.2).
//!
//! There are two dialects:
//! - [`Dialect::Json`]: on the JSON port a command is the value of `to` (`/list`, `/shout`,
//!   `*`, or a user name), and `msg` is never parsed;
//! - [`Dialect::Typed`]: a line a person types, on the line port or in the desktop
//!   client's message box (`@bob hi`, `/msg bob hi`, `/list`, `hello all`).
//!
//! Both produce the same [`Request`], which the server carries out the same way whatever
//! the port, and which the desktop client turns back into a JSON frame
//! ([`Request::to_frame`]).

use crate::error::ChatError;
use crate::frame::ClientFrame;

/// Where a command was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// The JSON port: the command is the frame's `to`.
    Json,
    /// A typed line: the line port, or the desktop client's message box.
    Typed,
}

/// What a user asked for, whatever the dialect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// A public message to everyone else; `confirm` (`/shout`) tells the sender how many
    /// it reached.
    Public {
        /// The text.
        text: String,
        /// Whether the sender is told how many users it reached.
        confirm: bool,
    },
    /// A private message.
    Private {
        /// The recipient's name.
        to: String,
        /// The text.
        text: String,
    },
    /// Users online.
    List,
    /// Server time.
    Time,
    /// The commands of the asker's dialect.
    Help,
    /// The JSON frame schema.
    Standard,
    /// Leave.
    Quit,
    /// Earlier events from the history (PROTOCOL.md §10.2). From a typed line (the line
    /// port's `/history [N]`), `chat_only`: the last N public messages, joins and leaves
    /// not counted.
    History {
        /// What to show.
        query: crate::history::Query,
        /// Only public chat messages.
        chat_only: bool,
    },
    /// Join the session chain of an earlier login (PROTOCOL.md §10.4).
    Resume {
        /// The token that login's welcome carried.
        token: String,
    },
}

/// The commands that have a word of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    /// A private message by word (`/msg nick text`).
    Msg,
    /// A confirmed public message.
    Shout,
    /// Users online.
    List,
    /// Server time.
    Time,
    /// Help.
    Help,
    /// The frame schema.
    Standard,
    /// Leave.
    Quit,
    /// Earlier messages.
    History,
    /// Resume a session.
    Resume,
}

/// One row of the command table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    /// What it does.
    pub verb: Verb,
    /// The words that give it on a typed line; help shows the first and lists the others.
    pub words: &'static [&'static str],
    /// The arguments after the word, for usage errors and help (`nick text`).
    pub args: &'static str,
    /// The value of `to` that gives it on the JSON port (`None`: not a JSON command).
    /// Words of [`Spec::words`] that start with `/` are accepted there too.
    pub to: Option<&'static str>,
    /// One line of help.
    pub help: &'static str,
}

/// Every command with a word, in the order help lists them.
pub const COMMANDS: &[Spec] = &[
    Spec {
        verb: Verb::Msg,
        words: &["/msg", "!msg"],
        args: "nick text",
        to: None,
        help: "private message",
    },
    Spec {
        verb: Verb::Shout,
        words: &["/shout"],
        args: "text",
        to: Some("/shout"),
        help: "public message to everyone else, confirmed to you",
    },
    Spec {
        verb: Verb::List,
        words: &["/list", "/who", "!who"],
        args: "",
        to: Some("/list"),
        help: "users online",
    },
    Spec {
        verb: Verb::Time,
        words: &["/time"],
        args: "",
        to: Some("/time"),
        help: "server time",
    },
    Spec {
        verb: Verb::Help,
        words: &["/help"],
        args: "",
        to: Some("/help"),
        help: "this help",
    },
    Spec {
        verb: Verb::Standard,
        words: &["/standard"],
        args: "",
        to: Some("/standard"),
        help: "the frame schema",
    },
    Spec {
        verb: Verb::History,
        words: &["/history"],
        args: "[N]",
        to: Some("/history"),
        help: "earlier messages",
    },
    Spec {
        verb: Verb::Resume,
        words: &["/resume"],
        args: "token",
        to: Some("/resume"),
        help: "continue an earlier session (its private messages in /history)",
    },
    Spec {
        verb: Verb::Quit,
        words: &["/quit", "\\q", "!logout"],
        args: "",
        to: Some("/quit"),
        help: "leave",
    },
];

/// On the JSON port, `*` is a public message without confirmation.
pub const STAR: &str = "*";

/// On a typed line, a leading `//` sends the rest, with one `/`, as a public message.
pub const ESCAPE: &str = "//";

/// The row for `verb`.
pub fn spec(verb: Verb) -> &'static Spec {
    // Every verb has a row; the table is a constant and a unit test checks it.
    COMMANDS
        .iter()
        .find(|s| s.verb == verb)
        .unwrap_or(&COMMANDS[0])
}

/// The row a typed word gives, if any.
pub fn lookup_typed(word: &str) -> Option<&'static Spec> {
    COMMANDS.iter().find(|s| s.words.contains(&word))
}

/// The row a JSON `to` gives, if any.
pub fn lookup_json(to: &str) -> Option<&'static Spec> {
    COMMANDS.iter().find(|s| {
        s.to.is_some_and(|t| t == to)
            || (s.to.is_some() && to.starts_with('/') && s.words.contains(&to))
    })
}

/// Interprets a JSON frame's `to` and `msg`. The text of a public message is never looked
/// at: `{"to":"/shout","msg":"/quit"}` says "/quit" to everyone.
pub fn parse_json(to: String, msg: String) -> Result<Request, ChatError> {
    if to == STAR {
        return Ok(Request::Public {
            text: msg,
            confirm: false,
        });
    }
    if to.is_empty() {
        return Err(ChatError::NoRecipient);
    }
    // Every command but `*` starts with `/`: anything else is a user name, with no table
    // to search (the common case: a private message).
    if !to.starts_with('/') {
        return Ok(Request::Private { to, text: msg });
    }
    match lookup_json(&to) {
        Some(spec) => Ok(match spec.verb {
            Verb::Shout => Request::Public {
                text: msg,
                confirm: true,
            },
            Verb::History => Request::History {
                query: crate::history::parse_query(&msg)?,
                chat_only: false,
            },
            Verb::Resume => Request::Resume {
                token: msg.trim().to_string(),
            },
            verb => simple(verb),
        }),
        None => Err(ChatError::UnknownCommand {
            word: to,
            dialect: Dialect::Json,
        }),
    }
}

/// The request of a verb without arguments (never called with `Msg` or `Shout`).
fn simple(verb: Verb) -> Request {
    match verb {
        Verb::List => Request::List,
        Verb::Time => Request::Time,
        Verb::Help => Request::Help,
        Verb::Standard => Request::Standard,
        Verb::Quit | Verb::Msg | Verb::Shout | Verb::History | Verb::Resume => Request::Quit,
    }
}

/// Interprets one typed line; `Ok(None)` for a blank line.
///
/// The first word decides: `@nick text` and the words of the table are commands, a
/// leading `//` escapes a slash, any other word starting with `/` is unknown, and anything
/// else is a public message (trailing whitespace removed). Words are case-sensitive.
pub fn parse_typed(line: &str) -> Result<Option<Request>, ChatError> {
    let trimmed = line.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    if let Some(rest) = trimmed.strip_prefix(ESCAPE) {
        return Ok(Some(Request::Public {
            text: format!("/{rest}"),
            confirm: false,
        }));
    }
    let (word, rest) = match trimmed.split_once(char::is_whitespace) {
        Some((w, r)) => (w, r.trim_start()),
        None => (trimmed, ""),
    };
    if let Some(nick) = word.strip_prefix('@').filter(|n| !n.is_empty()) {
        if rest.is_empty() {
            return Err(ChatError::Usage("@nick text".to_string()));
        }
        return Ok(Some(Request::Private {
            to: nick.to_string(),
            text: rest.to_string(),
        }));
    }
    let Some(spec) = lookup_typed(word) else {
        if word.starts_with('/') {
            return Err(ChatError::UnknownCommand {
                word: word.to_string(),
                dialect: Dialect::Typed,
            });
        }
        return Ok(Some(Request::Public {
            text: line.trim_end().to_string(),
            confirm: false,
        }));
    };
    let usage = || ChatError::Usage(format!("{word} {}", spec.args));
    Ok(Some(match spec.verb {
        Verb::Msg => match rest.split_once(char::is_whitespace) {
            Some((to, text)) if !text.trim().is_empty() => Request::Private {
                to: to.to_string(),
                text: text.trim_start().to_string(),
            },
            _ => return Err(usage()),
        },
        Verb::Shout if rest.is_empty() => return Err(usage()),
        Verb::Shout => Request::Public {
            text: rest.to_string(),
            confirm: true,
        },
        Verb::History => Request::History {
            query: crate::history::parse_line_count(rest)?,
            chat_only: true,
        },
        Verb::Resume if rest.is_empty() => return Err(usage()),
        Verb::Resume => Request::Resume {
            token: rest.to_string(),
        },
        verb => simple(verb),
    }))
}

impl Request {
    /// The JSON frame that asks for this (what the desktop client sends).
    pub fn to_frame(&self) -> ClientFrame {
        let (to, msg) = match self {
            Request::Public {
                text,
                confirm: false,
            } => (STAR, text.clone()),
            Request::Public {
                text,
                confirm: true,
            } => (spec_to(Verb::Shout), text.clone()),
            Request::Private { to, text } => {
                return ClientFrame {
                    to: to.clone(),
                    msg: text.clone(),
                    label: None,
                };
            }
            Request::List => (spec_to(Verb::List), String::new()),
            Request::Time => (spec_to(Verb::Time), String::new()),
            Request::Help => (spec_to(Verb::Help), String::new()),
            Request::Standard => (spec_to(Verb::Standard), String::new()),
            Request::Quit => (spec_to(Verb::Quit), String::new()),
            Request::History { query, .. } => (spec_to(Verb::History), query.to_string()),
            Request::Resume { token } => (spec_to(Verb::Resume), token.clone()),
        };
        ClientFrame::new(to, msg)
    }
}

fn spec_to(verb: Verb) -> &'static str {
    spec(verb).to.unwrap_or_default()
}

/// The help text of a dialect, generated from the table.
pub fn help(dialect: Dialect) -> String {
    match dialect {
        Dialect::Json => json_help(),
        Dialect::Typed => typed_help(),
    }
}

fn json_help() -> String {
    let mut out = String::from(
        "Send JSON frames {\"from\": {\"name\": ..., \"ip\": ...}, \"to\": ..., \"msg\": ...}. Values of \"to\":",
    );
    let mut row = |to: &str, help: &str| out.push_str(&format!("\n{to:<10}  {help}"));
    row("<user>", "private message to that user");
    for s in COMMANDS {
        let Some(to) = s.to else { continue };
        if s.verb == Verb::History {
            row(
                to,
                "earlier messages; msg: latest [N], before ID [N] or after ID [N]",
            );
        } else {
            row(to, s.help);
        }
        if s.verb == Verb::Shout {
            row(STAR, "public message without confirmation");
        }
    }
    out
}

fn typed_help() -> String {
    let mut out = String::from("Commands:");
    let mut row = |usage: &str, help: &str| out.push_str(&format!("\n{usage:<20} {help}"));
    row("text", "send a public message");
    let msg = spec(Verb::Msg);
    let also: Vec<String> = msg
        .words
        .iter()
        .map(|w| format!("{w} {}", msg.args))
        .collect();
    row(
        "@nick text",
        &format!("{} (also {})", msg.help, also.join(", ")),
    );
    for s in COMMANDS.iter().filter(|s| s.verb != Verb::Msg) {
        let usage = format!("{} {}", s.words[0], s.args);
        let help = match &s.words[1..] {
            [] => s.help.to_string(),
            others => format!("{} (also {})", s.help, others.join(", ")),
        };
        row(usage.trim_end(), &help);
    }
    row(
        &format!("{ESCAPE}text"),
        "a public message that starts with /",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(line: &str) -> Option<Request> {
        parse_typed(line).expect("valid")
    }

    fn public(text: &str) -> Option<Request> {
        Some(Request::Public {
            text: text.into(),
            confirm: false,
        })
    }

    fn private(to: &str, text: &str) -> Request {
        Request::Private {
            to: to.into(),
            text: text.into(),
        }
    }

    #[test]
    fn the_table_has_one_row_per_verb_and_no_word_twice() {
        for verb in [
            Verb::Msg,
            Verb::Shout,
            Verb::List,
            Verb::Time,
            Verb::Help,
            Verb::Standard,
            Verb::Quit,
            Verb::History,
            Verb::Resume,
        ] {
            assert_eq!(COMMANDS.iter().filter(|s| s.verb == verb).count(), 1);
            assert_eq!(spec(verb).verb, verb);
        }
        let mut words: Vec<&str> = COMMANDS
            .iter()
            .flat_map(|s| s.words.iter().copied())
            .collect();
        let n = words.len();
        words.sort_unstable();
        words.dedup();
        assert_eq!(words.len(), n, "a word gives one command");
    }

    #[test]
    fn typed_lines() {
        assert_eq!(typed("hello world"), public("hello world"));
        assert_eq!(typed("  "), None);
        assert_eq!(typed("@bob hi there"), Some(private("bob", "hi there")));
        assert_eq!(typed("/msg bob  hi"), Some(private("bob", "hi")));
        assert_eq!(typed("!msg bob hi"), Some(private("bob", "hi")));
        for c in ["/list", "/who", "!who"] {
            assert_eq!(typed(c), Some(Request::List));
        }
        for c in ["\\q", "/quit", "!logout"] {
            assert_eq!(typed(c), Some(Request::Quit));
        }
        assert_eq!(typed("/time"), Some(Request::Time));
        assert_eq!(typed("/help"), Some(Request::Help));
        assert_eq!(typed("/standard"), Some(Request::Standard));
        assert_eq!(
            typed("/shout hi all"),
            Some(Request::Public {
                text: "hi all".into(),
                confirm: true
            })
        );
        assert_eq!(typed("@"), public("@"));
        assert_eq!(typed("@ hi"), public("@ hi"));
        assert_eq!(typed("!hello"), public("!hello"));
        assert_eq!(typed("//shrug"), public("/shrug"));
        assert_eq!(typed("  keep  inner  "), public("  keep  inner"));
    }

    #[test]
    fn typed_mistakes() {
        let usage = |l: &str| match parse_typed(l) {
            Err(ChatError::Usage(u)) => u,
            other => panic!("{l:?}: {other:?}"),
        };
        assert_eq!(usage("/msg bob"), "/msg nick text");
        assert_eq!(usage("/msg"), "/msg nick text");
        assert_eq!(usage("!msg bob   "), "!msg nick text");
        assert_eq!(usage("@bob"), "@nick text");
        assert_eq!(usage("/shout"), "/shout text");
        assert!(matches!(
            parse_typed("/nope x"),
            Err(ChatError::UnknownCommand { word, dialect: Dialect::Typed }) if word == "/nope"
        ));
        assert!(
            matches!(parse_typed("/LIST"), Err(ChatError::UnknownCommand { .. })),
            "case-sensitive"
        );
    }

    fn json(to: &str, msg: &str) -> Result<Request, ChatError> {
        parse_json(to.into(), msg.into())
    }

    #[test]
    fn json_recipients() {
        assert_eq!(
            json("/shout", "hi").unwrap(),
            Request::Public {
                text: "hi".into(),
                confirm: true
            }
        );
        assert_eq!(json("*", "hi").ok(), public("hi"));
        assert_eq!(json("bob", "@carol x").unwrap(), private("bob", "@carol x"));
        assert_eq!(json("/list", "").unwrap(), Request::List);
        assert_eq!(json("/who", "").unwrap(), Request::List);
        assert_eq!(json("/time", "").unwrap(), Request::Time);
        assert_eq!(json("/help", "").unwrap(), Request::Help);
        assert_eq!(json("/standard", "").unwrap(), Request::Standard);
        assert_eq!(json("/quit", "").unwrap(), Request::Quit);
        assert!(matches!(
            json("/nope", ""),
            Err(ChatError::UnknownCommand {
                dialect: Dialect::Json,
                ..
            })
        ));
        assert!(
            matches!(json("/msg", "x"), Err(ChatError::UnknownCommand { .. })),
            "a private message is sent to the name itself"
        );
        assert!(matches!(json("", "x"), Err(ChatError::NoRecipient)));
        // `Everyone` is routed like a user name, and refused as unknown (PROTOCOL.md §4.2);
        // typed-only words are names too (and no valid name starts with `!` or `\`).
        assert_eq!(json("Everyone", "hb").unwrap(), private("Everyone", "hb"));
        assert_eq!(json("!who", "").unwrap(), private("!who", ""));
        // A public text is never a command.
        assert_eq!(
            json("/shout", "/quit").unwrap(),
            Request::Public {
                text: "/quit".into(),
                confirm: true
            }
        );
    }

    #[test]
    fn a_typed_request_becomes_the_frame_that_asks_for_it() {
        for (line, to, msg) in [
            ("hello all", "*", "hello all"),
            ("@bob hi there", "bob", "hi there"),
            ("/msg bob  hi", "bob", "hi"),
            ("//shrug", "*", "/shrug"),
            ("/shout hey", "/shout", "hey"),
            ("/list", "/list", ""),
            ("/who", "/list", ""),
            ("/time", "/time", ""),
            ("/help", "/help", ""),
            ("/standard", "/standard", ""),
            ("/quit", "/quit", ""),
            ("\\q", "/quit", ""),
        ] {
            let frame = typed(line).expect("a request").to_frame();
            assert_eq!((frame.to.as_str(), frame.msg.as_str()), (to, msg), "{line}");
            // And the JSON port reads that frame back as the same request.
            assert_eq!(parse_json(frame.to, frame.msg).ok(), typed(line), "{line}");
        }
    }

    #[test]
    fn help_is_generated_from_the_table() {
        assert_eq!(
            help(Dialect::Typed),
            "Commands:\n\
  text                 send a public message\n\
  @nick text           private message (also /msg nick text, !msg nick text)\n\
  /shout text          public message to everyone else, confirmed to you\n\
  /list                users online (also /who, !who)\n\
  /time                server time\n\
  /help                this help\n\
  /standard            the frame schema\n\
  /history [N]         earlier messages\n\
  /resume token        continue an earlier session (its private messages in /history)\n\
  /quit                leave (also \\q, !logout)\n\
  //text               a public message that starts with /"
        );
        assert_eq!(
            help(Dialect::Json),
            "Send JSON frames {\"from\": {\"name\": ..., \"ip\": ...}, \"to\": ..., \"msg\": ...}. Values of \"to\":\n\
  <user>      private message to that user\n\
  /shout      public message to everyone else, confirmed to you\n\
  *           public message without confirmation\n\
  /list       users online\n\
  /time       server time\n\
  /help       this help\n\
  /standard   the frame schema\n\
  /history    earlier messages; msg: latest [N], before ID [N] or after ID [N]\n\
  /resume     continue an earlier session (its private messages in /history)\n\
  /quit       leave"
        );
        // Every word of the table appears in the help of a dialect that takes it.
        let typed = help(Dialect::Typed);
        let json = help(Dialect::Json);
        for s in COMMANDS {
            for w in s.words {
                assert!(typed.contains(w), "{w}");
            }
            if let Some(to) = s.to {
                assert!(json.contains(to), "{to}");
            }
        }
    }

    #[test]
    fn history_on_both_dialects() {
        use crate::history::{Anchor, Query};
        assert_eq!(
            json("/history", "after 7 3").unwrap(),
            Request::History {
                query: Query {
                    anchor: Anchor::After(7),
                    count: 3,
                    cut: false
                },
                chat_only: false
            }
        );
        assert!(matches!(
            json("/history", "sideways"),
            Err(ChatError::BadQuery(_))
        ));
        assert_eq!(
            parse_typed("/history").unwrap(),
            Some(Request::History {
                query: Query::latest(20),
                chat_only: true
            })
        );
        assert_eq!(
            parse_typed("/history 5").unwrap(),
            Some(Request::History {
                query: Query::latest(5),
                chat_only: true
            })
        );
        assert!(parse_typed("/history x").is_err());
        // What the desktop client sends reads back the same.
        let r = json("/history", "before 9 2").unwrap();
        let f = r.to_frame();
        assert_eq!(json(&f.to, &f.msg).unwrap(), r);
    }
}
