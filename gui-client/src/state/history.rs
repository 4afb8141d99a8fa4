//! The history (PROTOCOL.md §10): the room's last messages on connect, older pages when the
//! user scrolls to the top, and after a reconnect the session resumed and exactly what was
//! missed, with a marker where it begins.
//!
//! Answers come back in the order they were asked, each ended by its `history` frame
//! (PROTOCOL.md §10.2), so the queries in flight are a queue.

use std::collections::VecDeque;

use chat_common::ServerFrame;
use chat_common::command::Request;
use chat_common::history::{Anchor, Query};

use super::{Action, ChatLine, ChatState, LineKind};

/// How many of the room's last events a new connection shows.
pub const LATEST: u32 = 50;

/// How many older events one scroll to the top loads.
pub const OLDER: u32 = 50;

/// How many missed events one page of a reconnect's catching up asks for (the most the
/// server gives: PROTOCOL.md §10.2).
pub const CATCH_UP: u32 = chat_common::history::MAX_COUNT;

/// What a query in flight was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ask {
    /// The room's last events, on the first login.
    Latest,
    /// An older page of the room.
    Older,
    /// What was said while disconnected.
    Missed,
}

/// Where the client stands with the server's history.
#[derive(Debug, Default)]
pub(super) struct Sync {
    /// The resume token of this session's chain (PROTOCOL.md §10.4), from the first welcome.
    token: Option<String>,
    /// The history's epoch, from the last answer.
    epoch: Option<String>,
    /// The highest event id seen.
    last_id: u64,
    /// Queries sent and not yet answered, oldest first.
    asked: VecDeque<Ask>,
    /// While catching up: how many missed events came, and the first of them.
    missed: usize,
    first_missed: Option<u64>,
}

impl Sync {
    /// Event `id` was shown.
    pub fn saw(&mut self, id: u64) {
        self.last_id = self.last_id.max(id);
    }

    /// Whether the answer coming in is a reconnect's catching up.
    pub fn filling_gap(&self) -> bool {
        self.asked.front() == Some(&Ask::Missed)
    }

    /// A missed event was added while catching up.
    pub fn missed(&mut self, id: Option<u64>) {
        self.missed += 1;
        if let Some(id) = id {
            self.first_missed = Some(self.first_missed.map_or(id, |f| f.min(id)));
        }
    }
}

impl ChatState {
    /// What follows a welcome on connection `conn`: on the first login, the room's last
    /// events; after a reconnect, the session resumed and what was missed.
    pub(super) fn after_welcome(
        &mut self,
        conn: u64,
        welcome: &ServerFrame,
        rejoin: bool,
    ) -> Vec<Action> {
        let mut actions = Vec::new();
        match (&self.history.token, rejoin) {
            // The same token resumes the chain again and again (§10.4); a welcome's new one
            // belongs to a chain of its own, which this connection leaves at once.
            (Some(token), true) => actions.push(Action::Send {
                conn,
                frame: Request::Resume {
                    token: token.clone(),
                }
                .to_frame(),
            }),
            _ => self.history.token = welcome.resume.clone(),
        }
        self.history.asked.clear();
        self.history.missed = 0;
        self.history.first_missed = None;
        let last = self.history.last_id;
        if rejoin && last > 0 {
            actions.push(self.ask(conn, Ask::Missed, Anchor::After(last), CATCH_UP));
        } else if !rejoin {
            actions.push(self.ask(conn, Ask::Latest, Anchor::Latest, LATEST));
        }
        actions
    }

    fn ask(&mut self, conn: u64, ask: Ask, anchor: Anchor, count: u32) -> Action {
        let query = Query {
            anchor,
            count,
            cut: false,
        };
        self.history.asked.push_back(ask);
        let frame = Request::History {
            query,
            chat_only: false,
        }
        .to_frame();
        Action::Send { conn, frame }
    }

    /// The end of an answer.
    pub(super) fn on_history_end(&mut self, end: &ServerFrame) -> Vec<Action> {
        let Some(ask) = self.history.asked.pop_front() else {
            return Vec::new(); // an answer to a `/history` the user typed
        };
        let more = end.more == Some(true);
        let gap = end.gap == Some(true);
        if let (Some(old), Some(new)) = (&self.history.epoch, &end.epoch)
            && old != new
        {
            self.notice_in_room(
                LineKind::System,
                "The server's history was reset: messages from before that are gone.",
            );
        }
        if end.epoch.is_some() {
            self.history.epoch.clone_from(&end.epoch);
        }
        match ask {
            Ask::Latest => self.conversations[0].more_before = more,
            Ask::Older => {
                let room = &mut self.conversations[0];
                room.loading_older = false;
                room.more_before = more;
            }
            Ask::Missed => {
                if more && let Some(conn) = self.phase_online_conn() {
                    // Not all of it yet: the next page, from the newest seen.
                    let after = Anchor::After(self.history.last_id);
                    return vec![self.ask(conn, Ask::Missed, after, CATCH_UP)];
                }
                self.caught_up(gap);
            }
        }
        Vec::new()
    }

    /// The reconnect's catching up is done: mark where the missed events begin, and say
    /// if some are no longer kept.
    fn caught_up(&mut self, gap: bool) {
        let n = std::mem::take(&mut self.history.missed);
        if let Some(first) = self.history.first_missed.take()
            && n > 0
        {
            let s = if n == 1 { "" } else { "s" };
            let marker = ChatLine::new(
                LineKind::Away,
                "",
                format!("{n} message{s} while you were away"),
                String::new(),
            );
            // In the conversation of the first one (usually the room).
            if let Some(c) = self.conversations.iter_mut().find(|c| c.has(first)) {
                c.add_before(first, marker);
            }
        }
        if gap {
            self.notice_in_room(
                LineKind::System,
                "Some of what was said while you were away is no longer kept.",
            );
        }
    }

    fn notice_in_room(&mut self, kind: LineKind, text: &str) {
        let time = chat_common::clock::hhmm(chat_common::clock::now_ms());
        self.conversations[0].add(ChatLine::new(kind, "", text, time));
    }

    /// The user scrolled to the top of the room: ask for the page before it, if there is
    /// one and none is on its way.
    pub fn load_older(&mut self) -> Vec<Action> {
        let room = &self.conversations[0];
        if !room.more_before || room.loading_older {
            return Vec::new();
        }
        let (Some(conn), Some(oldest)) = (self.phase_online_conn(), room.oldest_id()) else {
            return Vec::new();
        };
        self.conversations[0].loading_older = true;
        vec![self.ask(conn, Ask::Older, Anchor::Before(oldest), OLDER)]
    }
}
