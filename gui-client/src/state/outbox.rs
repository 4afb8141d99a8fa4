//! My own messages: each is sent with a label, shown as pending until the server's answer
//! carries that label back (sent, or failed with the reason: PROTOCOL.md §3.4), kept
//! queued while disconnected and sent after the reconnect, and never dropped silently.
//! Also what the message box remembers (Up recalls) and completes (Tab).

use chat_common::ServerFrame;
use chat_common::clock::{hhmm, now_ms};
use chat_common::command::Request;

use super::{Action, ChatLine, ChatState, ConvKey, Delivery, LineKind, error_code};

/// A message typed while disconnected.
#[derive(Debug, Clone)]
struct Queued {
    /// The recipient of a private message; `None` for the room.
    to: Option<String>,
    /// Typed as `/shout`: sent as one.
    shout: bool,
    text: String,
    label: String,
}

/// What waits to be sent, and what was typed.
#[derive(Debug, Default)]
pub(super) struct Outbox {
    next_label: u64,
    queued: Vec<Queued>,
    /// What the user entered, oldest first.
    typed: Vec<String>,
    /// Where Up has got to in `typed`.
    recall: Option<usize>,
}

impl Outbox {
    fn label(&mut self) -> String {
        self.next_label += 1;
        format!("m{}", self.next_label)
    }

    /// Remembers what the user entered, for Up.
    pub fn remember(&mut self, input: &str) {
        if !input.trim().is_empty() && self.typed.last().map(String::as_str) != Some(input) {
            self.typed.push(input.to_string());
        }
        self.recall = None;
    }
}

impl ChatState {
    /// Shows my message `text` (to `to`, or to the room) in its conversation, which becomes
    /// the active one, and sends it, or queues it while disconnected.
    pub(super) fn send_message(
        &mut self,
        to: Option<String>,
        text: String,
        shout: bool,
    ) -> Vec<Action> {
        let label = self.outbox.label();
        let (key, title, kind, who) = match &to {
            Some(to) => (
                ConvKey::with(to),
                to.clone(),
                LineKind::PrivateOut,
                to.clone(),
            ),
            None => (ConvKey::Room, String::new(), LineKind::Own, self.me.clone()),
        };
        let i = self.conversation(&key, &title);
        self.select(i);
        let (delivery, actions) = self.dispatch(Queued {
            to,
            shout,
            text: text.clone(),
            label,
        });
        let mut line = ChatLine::new(kind, who, text, hhmm(now_ms()));
        line.delivery = Some(delivery);
        self.conversations[i].add(line);
        actions
    }

    /// Sends `q` if the service can take it now, or keeps it for later (while the service
    /// is lost the server would only refuse it); returns what its line shows and the frame.
    fn dispatch(&mut self, q: Queued) -> (Delivery, Vec<Action>) {
        let label = q.label.clone();
        match self.phase_online_conn().filter(|_| !self.degraded) {
            Some(conn) => (Delivery::Pending { label }, vec![message_frame(conn, q)]),
            None => {
                self.outbox.queued.push(q);
                (Delivery::Queued { label }, Vec::new())
            }
        }
    }

    /// Sends what was queued while disconnected, in the order it was typed.
    pub(super) fn flush_outbox(&mut self, conn: u64) -> Vec<Action> {
        let queued = std::mem::take(&mut self.outbox.queued);
        queued
            .into_iter()
            .map(|q| {
                for c in &mut self.conversations {
                    if c.sending(&q.label) {
                        break;
                    }
                }
                message_frame(conn, q)
            })
            .collect()
    }

    /// `frame` carries `label`: it confirms or refuses that message of mine. Returns
    /// whether it was one (a label this client never gave is shown as any frame).
    pub(super) fn answer_to(&mut self, label: &str, frame: &ServerFrame) -> bool {
        let failed = error_code(frame).is_some();
        let reason = frame.msg.strip_prefix("Error: ").unwrap_or(&frame.msg);
        self.conversations.iter_mut().any(|c| {
            if failed {
                c.fail(label, reason)
            } else {
                c.confirm(label, frame.id)
            }
        })
    }

    /// The connection went with messages unanswered: they may or may not have arrived, and
    /// say so (the user can send them again).
    pub(super) fn connection_lost(&mut self) {
        for c in &mut self.conversations {
            for l in &mut c.lines {
                if matches!(l.delivery, Some(Delivery::Pending { .. })) {
                    l.delivery = Some(Delivery::Failed {
                        reason: "the connection was lost before the server confirmed it"
                            .to_string(),
                    });
                }
            }
        }
    }

    /// Queued messages will not be sent: they fail with `reason`.
    pub(super) fn give_up_queued(&mut self, reason: &str) {
        for q in std::mem::take(&mut self.outbox.queued) {
            for c in &mut self.conversations {
                if c.fail(&q.label, reason) {
                    break;
                }
            }
        }
    }

    /// The user clicked "retry" on line `line` of conversation `conv`: a failed message of
    /// mine is sent again (or queued) as a new pending one, in place.
    pub fn retry(&mut self, conv: usize, line: usize) -> Vec<Action> {
        let Some(l) = self.conversations.get(conv).and_then(|c| c.lines.get(line)) else {
            return Vec::new();
        };
        if !matches!(l.delivery, Some(Delivery::Failed { .. })) {
            return Vec::new();
        }
        let q = Queued {
            to: (l.kind == LineKind::PrivateOut).then(|| l.who.clone()),
            shout: false,
            text: l.text.clone(),
            label: self.outbox.label(),
        };
        let (delivery, actions) = self.dispatch(q);
        self.conversations[conv].lines[line].delivery = Some(delivery);
        actions
    }

    /// Up in the message box: the entry before the one shown (the last one first).
    pub fn recall_previous(&mut self) {
        let typed = &self.outbox.typed;
        if typed.is_empty() {
            return;
        }
        let at = match self.outbox.recall {
            None => typed.len() - 1,
            Some(i) => i.saturating_sub(1),
        };
        self.outbox.recall = Some(at);
        self.input = typed[at].clone();
        self.focus_input = true;
    }

    /// Down in the message box: the entry after the one shown, or an empty box past the last.
    pub fn recall_next(&mut self) {
        let Some(i) = self.outbox.recall else {
            return;
        };
        if i + 1 < self.outbox.typed.len() {
            self.outbox.recall = Some(i + 1);
            self.input = self.outbox.typed[i + 1].clone();
        } else {
            self.outbox.recall = None;
            self.input.clear();
        }
        self.focus_input = true;
    }

    /// Tab in the message box: completes the word being typed to the first user name it
    /// starts (any case), with `@` kept, and a space after.
    pub fn complete_name(&mut self) {
        let start = self.input.rfind(char::is_whitespace).map_or(0, |i| {
            i + self.input[i..].chars().next().map_or(1, char::len_utf8)
        });
        let word = &self.input[start..];
        let (at, prefix) = match word.strip_prefix('@') {
            Some(rest) => ("@", rest),
            None => ("", word),
        };
        if prefix.is_empty() {
            return;
        }
        let lower = prefix.to_lowercase();
        let Some(name) = self
            .users
            .iter()
            .filter(|u| **u != self.me)
            .find(|u| u.to_lowercase().starts_with(&lower))
            .cloned()
        else {
            return;
        };
        let sep = if start == 0 && at.is_empty() {
            ": "
        } else {
            " "
        };
        self.input.truncate(start);
        self.input.push_str(at);
        self.input.push_str(&name);
        self.input.push_str(sep);
        self.focus_input = true;
    }
}

/// The frame of my message, with its label (so its confirmation or error names it).
fn message_frame(conn: u64, q: Queued) -> Action {
    let request = match q.to {
        Some(to) => Request::Private { to, text: q.text },
        None => Request::Public {
            text: q.text,
            confirm: q.shout,
        },
    };
    let mut frame = request.to_frame();
    frame.label = Some(q.label);
    Action::Send { conn, frame }
}
