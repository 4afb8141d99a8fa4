//! Where each frame from the server goes: an answer to one of my messages settles it, an
//! event lands in its conversation once (counted unread where nobody is looking), a notice
//! in the conversation shown.

use chat_common::clock::{hhmm, now_ms};
use chat_common::{FrameKind, ServerFrame};

use super::{Action, ChatLine, ChatState, ConvKey, Conversation, Delivery, LineKind, error_code};

impl ChatState {
    pub(super) fn on_chat_frame(&mut self, frame: ServerFrame) -> Vec<Action> {
        if let Some(label) = frame.label.clone() {
            // The answer to one of my messages (PROTOCOL.md §3.4).
            if self.answer_to(&label, &frame) {
                return vec![];
            }
        }
        if error_code(&frame).is_some() {
            self.push_frame(LineKind::Error, &frame);
            return vec![];
        }
        match frame.kind.unwrap_or(FrameKind::Other) {
            FrameKind::History => return self.on_history_end(&frame),
            FrameKind::Chat | FrameKind::Private | FrameKind::Join | FrameKind::Leave => {
                self.on_event_frame(frame);
            }
            FrameKind::Users => {
                if let Some(list) = &frame.users {
                    self.users = list.iter().cloned().collect();
                }
                self.push_frame(LineKind::System, &frame);
            }
            // (Not reached: `error_code` reports every `error` frame.)
            FrameKind::Error => self.push_frame(LineKind::Error, &frame),
            FrameKind::System | FrameKind::Welcome | FrameKind::Other => {
                self.push_frame(LineKind::System, &frame);
                match (frame.service, self.phase_online_conn()) {
                    (Some(chat_common::frame::Service::Down), _) => self.degraded = true,
                    (Some(chat_common::frame::Service::Up), Some(conn)) => {
                        self.degraded = false;
                        // What waited for the service goes now.
                        return self.flush_outbox(conn);
                    }
                    _ => {}
                }
            }
        }
        vec![]
    }

    /// A chat, private, join or leave event, live or from the history: into its
    /// conversation, once.
    fn on_event_frame(&mut self, frame: ServerFrame) {
        let replayed = frame.history == Some(true);
        let kind = frame.kind.unwrap_or(FrameKind::Other);
        if !replayed {
            // Who is online changes only live: a replayed join is history.
            match (kind, &frame.user) {
                (FrameKind::Join, Some(u)) => {
                    self.users.insert(u.clone());
                }
                (FrameKind::Leave, Some(u)) => {
                    self.users.remove(u);
                }
                _ => {}
            }
        }
        let mine = chat_common::name::clash(&frame.from.name, &self.me);
        let (key, title, line_kind, who) = match kind {
            FrameKind::Private if mine => (
                ConvKey::with(&frame.to),
                frame.to.clone(),
                LineKind::PrivateOut,
                frame.to.clone(),
            ),
            FrameKind::Private => {
                let from = frame.from.name.clone();
                (
                    ConvKey::with(&from),
                    from.clone(),
                    LineKind::PrivateIn,
                    from,
                )
            }
            FrameKind::Chat if mine => (
                ConvKey::Room,
                String::new(),
                LineKind::Own,
                frame.from.name.clone(),
            ),
            FrameKind::Chat => (
                ConvKey::Room,
                String::new(),
                LineKind::Chat,
                frame.from.name.clone(),
            ),
            FrameKind::Join => (
                ConvKey::Room,
                String::new(),
                LineKind::Join,
                frame.from.name.clone(),
            ),
            _ => (
                ConvKey::Room,
                String::new(),
                LineKind::Leave,
                frame.from.name.clone(),
            ),
        };
        let time = line_time(&frame);
        let mut line = ChatLine::new(line_kind, who, frame.msg.clone(), time);
        line.id = frame.id;
        line.mention =
            !mine && matches!(line_kind, LineKind::Chat) && mentions(&frame.msg, &self.me);
        if mine {
            line.delivery = Some(Delivery::Sent);
        }
        if let Some(id) = frame.id {
            self.history.saw(id);
        }
        let i = self.conversation(&key, &title);
        let mention = line.mention;
        // Earlier events the user asked for (the room's last, older pages) go above the
        // notices after them and are nothing new; what a reconnect missed goes below the
        // reconnect's notices, where the user reads on, and counts as news.
        let earlier = replayed && !self.history.filling_gap();
        let added = if earlier {
            self.conversations[i].add_replayed(line)
        } else {
            self.conversations[i].add(line)
        };
        if !added || earlier {
            return;
        }
        let is_message = matches!(line_kind, LineKind::Chat | LineKind::PrivateIn);
        if replayed && is_message {
            // Counted for the "while you were away" marker: what others said, not who
            // came and went (our own leave and join among them).
            self.history.missed(frame.id);
        }
        let seen = i == self.active && self.following && self.window_focused;
        if is_message && !seen {
            let c = &mut self.conversations[i];
            c.unread += 1;
            c.mentions += usize::from(mention);
        }
        let private = line_kind == LineKind::PrivateIn;
        if (private || mention) && !self.window_focused && !replayed {
            self.attention = Some(format!("{}: {}", frame.from.name, frame.msg));
        }
    }

    /// The index of the conversation `key`, opened (at the end of the list) if it is new;
    /// `title` names a new one.
    pub(super) fn conversation(&mut self, key: &ConvKey, title: &str) -> usize {
        if let Some(i) = self.conversations.iter().position(|c| &c.key == key) {
            return i;
        }
        self.conversations
            .push(Conversation::new(key.clone(), title, self.scrollback));
        self.conversations.len() - 1
    }

    pub(super) fn push_frame(&mut self, kind: LineKind, frame: &ServerFrame) {
        let line = ChatLine::new(
            kind,
            frame.from.name.clone(),
            frame.msg.clone(),
            line_time(frame),
        );
        self.conversations[self.active].add(line);
    }
}

/// When `frame` happened, as a line shows it: `HH:MM`, with the date for a replayed event
/// of an earlier day.
fn line_time(frame: &ServerFrame) -> String {
    let ts = frame.ts.unwrap_or_else(now_ms);
    if frame.history == Some(true) {
        chat_common::clock::dated_hhmm(ts, now_ms())
    } else {
        hhmm(ts)
    }
}

/// Whether `text` names `me` as a word (any case), the way people mention each other.
pub fn mentions(text: &str, me: &str) -> bool {
    if me.is_empty() {
        return false;
    }
    let lower = text.to_lowercase();
    let me = me.to_lowercase();
    let word = |c: char| c.is_alphanumeric() || c == '_' || c == '-';
    lower.match_indices(&me).any(|(at, _)| {
        let before = lower[..at].chars().next_back().is_none_or(|c| !word(c));
        let after = lower[at + me.len()..]
            .chars()
            .next()
            .is_none_or(|c| !word(c));
        before && after
    })
}
