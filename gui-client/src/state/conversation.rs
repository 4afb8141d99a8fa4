//! One conversation: the public room, or the private messages with one person. Its lines,
//! in the order of their ids where they have one, each event at most once, and how much of
//! it the user has not seen yet.
//!
//! Pure data and rules; `ChatState` decides which conversation an event belongs to.

use std::collections::{HashSet, VecDeque};

use chat_common::name::NameKey;

/// Which conversation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ConvKey {
    /// The public room: public messages, joins and leaves.
    Room,
    /// The private messages with one person, by their folded name (PROTOCOL.md §2.2: `Bob`
    /// and `bob` are one person).
    With(NameKey),
}

impl ConvKey {
    /// The conversation with `name`.
    pub fn with(name: &str) -> ConvKey {
        ConvKey::With(NameKey::of(name))
    }
}

/// How a line in a conversation is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    /// Someone's public message.
    Chat,
    /// My public message.
    Own,
    /// A private message to me.
    PrivateIn,
    /// A private message I sent.
    PrivateOut,
    /// Someone joined.
    Join,
    /// Someone left.
    Leave,
    /// A notice from the server or the client.
    System,
    /// An error.
    Error,
    /// Where the events missed while disconnected begin ("N messages while you were away").
    Away,
}

/// Where one of my own messages stands (PROTOCOL.md §3.4: a labelled message is always
/// confirmed or refused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Typed while disconnected: sent, with this label, once the connection is back.
    Queued {
        /// The label it will be sent with.
        label: String,
    },
    /// Sent; the server has not answered yet.
    Pending {
        /// The label it was sent with.
        label: String,
    },
    /// The server confirmed it.
    Sent,
    /// The server refused it, or the connection went before it was confirmed.
    Failed {
        /// Why, in words.
        reason: String,
    },
}

/// One line of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatLine {
    /// The event's id (PROTOCOL.md §5.2), when it has one: the key that keeps it from being
    /// shown twice (live and again from the history).
    pub id: Option<u64>,
    /// `HH:MM`, or the date too for an earlier day.
    pub time: String,
    /// How to show it.
    pub kind: LineKind,
    /// Sender (for chat and private lines), or the other party of a private message I sent.
    pub who: String,
    /// The text, with its line breaks.
    pub text: String,
    /// For my own messages: where they stand.
    pub delivery: Option<Delivery>,
    /// It mentions my name.
    pub mention: bool,
}

impl ChatLine {
    /// A line without an id, delivery or mention.
    pub fn new(
        kind: LineKind,
        who: impl Into<String>,
        text: impl Into<String>,
        time: String,
    ) -> Self {
        ChatLine {
            id: None,
            time,
            kind,
            who: who.into(),
            text: text.into(),
            delivery: None,
            mention: false,
        }
    }
}

/// A conversation's lines and what the user has not seen.
#[derive(Debug, Clone)]
pub struct Conversation {
    /// Which one.
    pub key: ConvKey,
    /// Its name as shown: `#room`, or the other person's name as they typed it.
    pub title: String,
    /// Oldest first, at most the scrollback.
    pub lines: VecDeque<ChatLine>,
    /// Lines that arrived since the user last looked at the end of it.
    pub unread: usize,
    /// How many of those mention me.
    pub mentions: usize,
    /// The history holds events older than the oldest line (a `before` page would find some).
    pub more_before: bool,
    /// A `before` page is on its way.
    pub loading_older: bool,
    ids: HashSet<u64>,
    cap: usize,
}

impl Conversation {
    /// An empty conversation keeping at most `cap` lines.
    pub fn new(key: ConvKey, title: impl Into<String>, cap: usize) -> Self {
        Conversation {
            key,
            title: title.into(),
            lines: VecDeque::new(),
            unread: 0,
            mentions: 0,
            more_before: false,
            loading_older: false,
            ids: HashSet::new(),
            cap: cap.max(1),
        }
    }

    /// Whether it holds the event `id`.
    pub fn has(&self, id: u64) -> bool {
        self.ids.contains(&id)
    }

    /// The oldest event id it holds.
    pub fn oldest_id(&self) -> Option<u64> {
        self.lines.iter().find_map(|l| l.id)
    }

    /// Adds a line where its id puts it (at the end for a line without one, or newer than
    /// every other); returns false, adding nothing, for an event it already holds.
    pub fn add(&mut self, line: ChatLine) -> bool {
        self.add_at(line, false)
    }

    /// Like [`Conversation::add`], for an event from the history: even when it is the
    /// newest, it goes before the notices that follow the last event, which came after it
    /// (the welcome of the login that asked, a reconnect's notices).
    pub fn add_replayed(&mut self, line: ChatLine) -> bool {
        self.add_at(line, true)
    }

    fn add_at(&mut self, line: ChatLine, replayed: bool) -> bool {
        let Some(id) = line.id else {
            self.lines.push_back(line);
            self.trim();
            return true;
        };
        if !self.ids.insert(id) {
            return false;
        }
        // Usually the newest: at the end, after any notice. An older one (a page of the
        // history) goes after the last line with a smaller id.
        let newest = self.lines.iter().rev().find_map(|l| l.id);
        if !replayed && newest.is_none_or(|newest| newest < id) {
            self.lines.push_back(line);
            self.trim();
            return true;
        }
        let at = self
            .lines
            .iter()
            .rposition(|l| l.id.is_some_and(|other| other < id))
            .map_or_else(|| self.first_with_greater_id(id), |i| i + 1);
        self.lines.insert(at, line);
        self.trim();
        true
    }

    /// Where a line older than every line with an id goes: before the first of them (with
    /// no line with an id at all, before the notices: see [`Conversation::add_replayed`]).
    fn first_with_greater_id(&self, id: u64) -> usize {
        self.lines
            .iter()
            .position(|l| l.id.is_some_and(|other| other > id))
            .unwrap_or(if self.lines.iter().any(|l| l.id.is_some()) {
                self.lines.len()
            } else {
                0
            })
    }

    /// Gives my line sent with `label` its id and marks it sent; returns whether there was
    /// one. If the id is already shown (the history brought it first), the copy goes.
    pub fn confirm(&mut self, label: &str, id: Option<u64>) -> bool {
        let Some(i) = self.position_of_label(label) else {
            return false;
        };
        if let Some(id) = id {
            if !self.ids.insert(id) {
                self.lines.remove(i);
                return true;
            }
            self.lines[i].id = Some(id);
        }
        self.lines[i].delivery = Some(Delivery::Sent);
        true
    }

    /// Marks my line sent with `label` failed; returns whether there was one.
    pub fn fail(&mut self, label: &str, reason: &str) -> bool {
        let Some(i) = self.position_of_label(label) else {
            return false;
        };
        self.lines[i].delivery = Some(Delivery::Failed {
            reason: reason.to_string(),
        });
        true
    }

    /// Marks my queued line `label` as sent and waiting for the server; returns whether
    /// there was one.
    pub fn sending(&mut self, label: &str) -> bool {
        let Some(i) = self.position_of_label(label) else {
            return false;
        };
        self.lines[i].delivery = Some(Delivery::Pending {
            label: label.to_string(),
        });
        true
    }

    /// Puts `line` just before the event `id` (at the end if it is not here).
    pub fn add_before(&mut self, id: u64, line: ChatLine) {
        let at = self
            .lines
            .iter()
            .position(|l| l.id == Some(id))
            .unwrap_or(self.lines.len());
        self.lines.insert(at, line);
        self.trim();
    }

    fn position_of_label(&self, label: &str) -> Option<usize> {
        self.lines.iter().rposition(|l| match &l.delivery {
            Some(Delivery::Pending { label: mine } | Delivery::Queued { label: mine }) => {
                mine == label
            }
            _ => false,
        })
    }

    /// The user saw the end of it.
    pub fn mark_read(&mut self) {
        self.unread = 0;
        self.mentions = 0;
    }

    fn trim(&mut self) {
        while self.lines.len() > self.cap {
            if let Some(old) = self.lines.pop_front()
                && let Some(id) = old.id
            {
                self.ids.remove(&id);
                // What was cut can be fetched again.
                self.more_before = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: u64, text: &str) -> ChatLine {
        let mut l = ChatLine::new(LineKind::Chat, "bob", text, "12:00".into());
        l.id = Some(id);
        l
    }

    fn texts(c: &Conversation) -> Vec<&str> {
        c.lines.iter().map(|l| l.text.as_str()).collect()
    }

    #[test]
    fn events_go_in_id_order_once_and_notices_stay_where_they_were() {
        let mut c = Conversation::new(ConvKey::Room, "#room", 100);
        assert!(c.add(event(5, "five")));
        assert!(c.add(ChatLine::new(
            LineKind::System,
            "",
            "notice",
            "12:00".into()
        )));
        assert!(c.add(event(9, "nine")));
        assert!(c.add(event(7, "seven")), "a late one goes between");
        assert!(c.add(event(2, "two")), "an older page goes first");
        assert!(!c.add(event(7, "seven again")), "never twice");
        assert_eq!(texts(&c), ["two", "five", "seven", "notice", "nine"]);
        assert!(c.add(ChatLine::new(LineKind::System, "", "later", "12:00".into())));
        assert!(c.add(event(10, "ten")));
        assert_eq!(
            texts(&c)[4..],
            ["nine", "later", "ten"],
            "a new one after the notices"
        );
        assert_eq!(c.oldest_id(), Some(2));
    }

    #[test]
    fn the_history_goes_above_the_notices_that_came_after_it() {
        let mut c = Conversation::new(ConvKey::Room, "#room", 100);
        c.add(ChatLine::new(
            LineKind::System,
            "",
            "Welcome",
            "12:00".into(),
        ));
        assert!(c.add_replayed(event(3, "three")));
        assert!(c.add_replayed(event(4, "four")));
        assert_eq!(texts(&c), ["three", "four", "Welcome"]);
        c.add(ChatLine::new(
            LineKind::System,
            "",
            "Reconnected",
            "12:00".into(),
        ));
        assert!(c.add_replayed(event(6, "six")), "missed while away");
        assert!(c.add(event(7, "seven")), "live: at the end");
        assert_eq!(
            texts(&c),
            ["three", "four", "six", "Welcome", "Reconnected", "seven"]
        );
    }

    #[test]
    fn my_message_is_confirmed_or_failed_by_its_label() {
        let mut c = Conversation::new(ConvKey::with("Bob"), "Bob", 100);
        let mut mine = ChatLine::new(LineKind::PrivateOut, "Bob", "hi", "12:00".into());
        mine.delivery = Some(Delivery::Pending { label: "m1".into() });
        c.add(mine.clone());
        mine.delivery = Some(Delivery::Pending { label: "m2".into() });
        c.add(mine);
        assert!(c.confirm("m1", Some(4)));
        assert!(c.fail("m2", "bob is not online"));
        assert!(!c.confirm("m9", Some(5)), "not ours");
        assert_eq!(c.lines[0].delivery, Some(Delivery::Sent));
        assert_eq!(c.lines[0].id, Some(4));
        assert!(
            !c.add(event(4, "hi")),
            "the history's copy of it is not shown again"
        );
        assert_eq!(
            c.lines[1].delivery,
            Some(Delivery::Failed {
                reason: "bob is not online".into()
            })
        );
    }

    #[test]
    fn a_confirmation_of_what_the_history_already_showed_removes_the_copy() {
        let mut c = Conversation::new(ConvKey::Room, "#room", 100);
        let mut mine = ChatLine::new(LineKind::Own, "alice", "hi", "12:00".into());
        mine.delivery = Some(Delivery::Pending { label: "m1".into() });
        c.add(mine);
        c.add(event(3, "hi"));
        assert!(c.confirm("m1", Some(3)));
        assert_eq!(texts(&c), ["hi"]);
        assert_eq!(c.lines[0].id, Some(3));
    }

    #[test]
    fn the_scrollback_keeps_the_newest_and_says_older_ones_exist() {
        let mut c = Conversation::new(ConvKey::Room, "#room", 3);
        for id in 1..=5 {
            c.add(event(id, &id.to_string()));
        }
        assert_eq!(texts(&c), ["3", "4", "5"]);
        assert!(c.more_before);
        c.add(event(1, "1"));
        assert_eq!(
            texts(&c),
            ["3", "4", "5"],
            "the cap holds for older pages too"
        );
    }

    #[test]
    fn keys_fold_names() {
        assert_eq!(ConvKey::with("Bob"), ConvKey::with("bob"));
        assert_ne!(ConvKey::with("bob"), ConvKey::Room);
    }
}
