//! The server's replica of who is online on every server, sorted, with the list shared
//! rather than copied.
//!
//! `/list` is answered from here. The sorted list is built once after a change and then
//! handed out as an `Arc`, so asking for it costs a reference count under the hub's lock,
//! not a copy of every name (before, 250 connections asking `/list` with 2,000 users
//! online made 154 MB/s of copies under the lock). It also knows the list's encoded size,
//! which is what `/list` costs its asker's flood budget (PROTOCOL.md §6.7).

use std::collections::BTreeSet;
use std::sync::Arc;

use chat_common::frame::encoded_len;

/// Users online, and the shared sorted list once someone asked for it.
#[derive(Debug, Default)]
pub struct Roster {
    names: BTreeSet<String>,
    /// The sorted list as last handed out; `None` after a change.
    shared: Option<Arc<[String]>>,
    /// Bytes the names take in a `/list` answer: each in the text and in the `users`
    /// array, with their separators.
    encoded: usize,
}

/// What one name adds to a `/list` answer: `name, ` in the text, `"name",` in the array.
fn weight(name: &str) -> usize {
    2 * encoded_len(name) + 5
}

impl Roster {
    /// How many are online.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether nobody is.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Bytes the list takes in a `/list` answer.
    pub fn encoded_len(&self) -> usize {
        self.encoded
    }

    /// `name` is online.
    pub fn insert(&mut self, name: String) {
        let w = weight(&name);
        if self.names.insert(name) {
            self.encoded += w;
            self.shared = None;
        }
    }

    /// `name` left.
    pub fn remove(&mut self, name: &str) {
        if self.names.remove(name) {
            self.encoded = self.encoded.saturating_sub(weight(name));
            self.shared = None;
        }
    }

    /// Everyone online is `names` (the service's list after a reconnect).
    pub fn replace(&mut self, names: Vec<String>) {
        self.names = names.into_iter().collect();
        self.encoded = self.names.iter().map(|n| weight(n)).sum();
        self.shared = None;
    }

    /// The sorted list, shared: built at most once per change.
    pub fn list(&mut self) -> Arc<[String]> {
        self.shared
            .get_or_insert_with(|| self.names.iter().cloned().collect())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_is_shared_until_it_changes() {
        let mut r = Roster::default();
        r.insert("bo".into());
        r.insert("al".into());
        let a = r.list();
        assert_eq!(&*a, ["al", "bo"]);
        assert!(Arc::ptr_eq(&a, &r.list()), "no copy while nothing changed");
        r.insert("cy".into());
        let b = r.list();
        assert!(!Arc::ptr_eq(&a, &b));
        assert_eq!(&*b, ["al", "bo", "cy"]);
        r.remove("al");
        assert_eq!(&*r.list(), ["bo", "cy"]);
        r.replace(vec!["zed".into()]);
        assert_eq!(&*r.list(), ["zed"]);
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn the_encoded_size_follows_the_names() {
        let mut r = Roster::default();
        r.insert("al".into());
        r.insert("al".into());
        assert_eq!(r.encoded_len(), 9);
        r.insert("bob".into());
        assert_eq!(r.encoded_len(), 9 + 11);
        r.remove("nobody");
        r.remove("al");
        assert_eq!(r.encoded_len(), 11);
        r.replace(vec!["al".into(), "bob".into()]);
        assert_eq!(r.encoded_len(), 20);
    }
}
