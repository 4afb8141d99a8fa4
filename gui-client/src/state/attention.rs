//! Which conversation is shown, and what the user has seen of it: the view reports where
//! it is scrolled and whether the window has the focus; unread counts and the window's
//! title follow.

use super::{ChatState, ConvKey, Conversation};

impl ChatState {
    /// The conversation shown.
    pub fn active_conversation(&self) -> &Conversation {
        &self.conversations[self.active]
    }

    /// The public room.
    pub fn room(&self) -> &Conversation {
        &self.conversations[0]
    }

    /// The conversation with `name`, if there is one.
    pub fn conversation_with(&self, name: &str) -> Option<&Conversation> {
        let key = ConvKey::with(name);
        self.conversations.iter().find(|c| c.key == key)
    }

    /// The user picked conversation `i`.
    pub fn select(&mut self, i: usize) {
        if i < self.conversations.len() {
            self.active = i;
            self.following = true;
            self.conversations[i].mark_read();
            self.focus_input = true;
        }
    }

    /// The view reports whether the end of the active conversation is in sight; coming
    /// back to it reads what arrived meanwhile.
    pub fn set_following(&mut self, following: bool) {
        self.following = following;
        if following && self.window_focused {
            self.conversations[self.active].mark_read();
        }
    }

    /// The window gained or lost the keyboard focus.
    pub fn set_window_focused(&mut self, focused: bool) {
        self.window_focused = focused;
        if focused && self.following {
            self.conversations[self.active].mark_read();
        }
    }

    /// Unread messages in all conversations.
    pub fn total_unread(&self) -> usize {
        self.conversations.iter().map(|c| c.unread).sum()
    }

    /// The window's title: the total unread, when there is some.
    pub fn window_title(&self) -> String {
        match self.total_unread() {
            0 => "Chat".to_string(),
            n => format!("({n}) Chat"),
        }
    }
}
