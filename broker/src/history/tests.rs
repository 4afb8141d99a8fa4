//! The log's rules, on real SQLite files in temporary directories.

use std::time::Duration;

use chat_common::history::parse_query;

use super::store::{DB_FILE, Kind, PRUNE_CHUNK, Pruned, Record, Retention, Store, StoreError};

const KEEP_ALL: Retention = Retention {
    max_age: None,
    max_events: None,
};

fn chat(id: u64, ts: u64) -> Record {
    Record {
        id,
        ts,
        kind: Kind::Chat,
        from_name: "alice".into(),
        from_ip: "127.0.0.1".into(),
        to_name: None,
        msg: format!("message {id}"),
        from_chain: None,
        to_chain: None,
    }
}

fn private(id: u64, from_chain: u64, to_chain: u64) -> Record {
    Record {
        kind: Kind::Private,
        to_name: Some("bob".into()),
        from_chain: Some(from_chain),
        to_chain: Some(to_chain),
        ..chat(id, 1000 + id)
    }
}

fn ids(store: &Store, q: &str, viewer: Option<u64>) -> (Vec<u64>, bool, bool) {
    let page = store
        .query(&parse_query(q).expect("a query"), viewer)
        .expect("answered");
    let ids = page.events.iter().map(|r| r.id).collect();
    (ids, page.more, page.gap)
}

fn ten() -> Store {
    let mut s = Store::in_memory(KEEP_ALL).expect("a log");
    let batch: Vec<Record> = (1..=10).map(|id| chat(id, 1000 + id)).collect();
    s.append(&batch).expect("appended");
    s
}

#[test]
fn pages_at_the_edges() {
    let s = ten();
    assert_eq!(ids(&s, "latest 3", None), (vec![8, 9, 10], true, false));
    assert_eq!(
        ids(&s, "latest 10", None),
        ((1..=10).collect(), false, false)
    );
    assert_eq!(
        ids(&s, "latest 50", None),
        ((1..=10).collect(), false, false)
    );
    assert_eq!(ids(&s, "before 8 3", None), (vec![5, 6, 7], true, false));
    assert_eq!(ids(&s, "before 4 3", None), (vec![1, 2, 3], false, false));
    assert_eq!(ids(&s, "before 1", None), (vec![], false, false));
    assert_eq!(ids(&s, "after 8 5", None), (vec![9, 10], false, false));
    assert_eq!(ids(&s, "after 7 3", None), (vec![8, 9, 10], false, false));
    assert_eq!(ids(&s, "after 6 3", None), (vec![7, 8, 9], true, false));
    assert_eq!(ids(&s, "after 10", None), (vec![], false, false));
    assert_eq!(ids(&s, "after 0", None), ((1..=10).collect(), false, false));
}

#[test]
fn an_anchor_this_log_never_had_is_a_gap() {
    let s = ten();
    assert_eq!(ids(&s, "after 11", None), (vec![], false, true));
    assert_eq!(ids(&s, "before 11 2", None), (vec![9, 10], true, false));
    assert!(ids(&s, "before 12 2", None).2, "an anchor past the end");
}

#[test]
fn private_messages_only_for_their_two_chains() {
    let mut s = ten();
    s.append(&[private(11, 1, 2), chat(12, 2000)]).unwrap();
    assert_eq!(
        ids(&s, "after 10", Some(1)).0,
        [11, 12],
        "the sender's chain"
    );
    assert_eq!(
        ids(&s, "after 10", Some(2)).0,
        [11, 12],
        "the recipient's chain"
    );
    assert_eq!(ids(&s, "after 10", Some(3)).0, [12], "anyone else");
    assert_eq!(ids(&s, "after 10", None).0, [12], "no chain");
    // Counted among what the viewer sees only.
    assert_eq!(ids(&s, "latest 2", Some(3)).0, [10, 12]);
}

#[test]
fn ids_and_the_epoch_survive_a_reopen_and_a_new_database_has_a_new_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let epoch = {
        let mut s = Store::open(dir.path(), KEEP_ALL).unwrap();
        assert_eq!(s.last_id(), 0);
        s.append(&[chat(1, 1), chat(2, 2)]).unwrap();
        s.epoch().to_string()
    };
    let s = Store::open(dir.path(), KEEP_ALL).unwrap();
    assert_eq!(s.last_id(), 2);
    assert_eq!(s.epoch(), epoch);
    assert_eq!(ids(&s, "latest", None).0, [1, 2]);
    let other = tempfile::tempdir().unwrap();
    let fresh = Store::open(&other.path().join("made/on/demand"), KEEP_ALL).unwrap();
    assert_ne!(fresh.epoch(), epoch);
    assert_eq!(fresh.epoch().len(), 32);
}

#[test]
fn retention_by_count_and_age_and_the_gaps_it_leaves() {
    let mut s = Store::in_memory(Retention {
        max_age: None,
        max_events: Some(4),
    })
    .unwrap();
    s.append(&(1..=10).map(|id| chat(id, id)).collect::<Vec<_>>())
        .unwrap();
    assert_eq!(s.prune(100).unwrap().removed, 6);
    assert_eq!(ids(&s, "latest", None), (vec![7, 8, 9, 10], false, true));
    assert_eq!(ids(&s, "latest 2", None), (vec![9, 10], true, false));
    assert_eq!(ids(&s, "after 3", None), (vec![7, 8, 9, 10], false, true));
    assert_eq!(ids(&s, "after 6", None), (vec![7, 8, 9, 10], false, false));
    assert_eq!(
        s.prune(100).unwrap(),
        Pruned::default(),
        "nothing more to remove"
    );
    assert_eq!(s.last_id(), 10, "ids go on");

    let mut s = Store::in_memory(Retention {
        max_age: Some(Duration::from_millis(50)),
        max_events: None,
    })
    .unwrap();
    s.append(&[chat(1, 10), chat(2, 20), chat(3, 90)]).unwrap();
    assert_eq!(s.prune(100).unwrap().removed, 2, "older than 50 ms at 100");
    assert_eq!(ids(&s, "latest", None), (vec![3], false, true));
}

#[test]
fn retention_removes_a_backlog_a_chunk_at_a_time() {
    let mut s = Store::in_memory(Retention {
        max_age: Some(Duration::from_millis(1_000_000)),
        max_events: Some(5),
    })
    .unwrap();
    let n = 2 * PRUNE_CHUNK + 10;
    s.append(&(1..=n).map(|id| chat(id, id)).collect::<Vec<_>>())
        .unwrap();
    let first = |s: &Store| ids(s, "after 0 1", None).0[0];
    let full = Pruned {
        removed: PRUNE_CHUNK,
        behind: true,
    };
    assert_eq!(s.prune(10).unwrap(), full);
    assert_eq!(first(&s), PRUNE_CHUNK + 1);
    assert_eq!(s.prune(10).unwrap(), full);
    let rest = Pruned {
        removed: 5,
        behind: false,
    };
    assert_eq!(s.prune(10).unwrap(), rest, "the newest 5 ids stay");
    assert_eq!(first(&s), n - 4);
    // By age, through the index: ts of event `id` is `id`, so at 1,000,000 + n - 2
    // everything older than n - 2 goes, the newest 5 held by count notwithstanding.
    assert_eq!(s.prune(1_000_000 + n - 2).unwrap().removed, 2);
    assert_eq!(ids(&s, "latest", None).0, vec![n - 2, n - 1, n]);
}

#[test]
fn a_batch_is_all_or_nothing() {
    let mut s = ten();
    // Id 10 again: the whole batch fails, 11 is not half-written.
    assert!(s.append(&[chat(11, 1), chat(10, 1)]).is_err());
    assert_eq!(s.last_id(), 10);
    assert_eq!(ids(&s, "after 10", None).0, Vec::<u64>::new());
}

#[test]
fn resume_tokens_are_stored_hashed_bound_to_the_name_and_expire() {
    let dir = tempfile::tempdir().unwrap();
    let ttl = Duration::from_millis(1000);
    let (token, chain) = {
        let mut s = Store::open(dir.path(), KEEP_ALL).unwrap();
        let (token, chain) = s.new_session("Alice", 0, ttl).unwrap();
        let (other, second) = s.new_session("Alice", 0, ttl).unwrap();
        assert_ne!(token, other);
        assert_ne!(chain, second);
        assert_eq!(token.len(), 32);
        (token, chain)
    };
    let raw = std::fs::read(dir.path().join(DB_FILE)).unwrap();
    let wal = std::fs::read(dir.path().join(format!("{DB_FILE}-wal"))).unwrap_or_default();
    for bytes in [&raw, &wal] {
        assert!(
            !bytes.windows(token.len()).any(|w| w == token.as_bytes()),
            "the token itself is never written"
        );
    }
    let mut s = Store::open(dir.path(), KEEP_ALL).unwrap();
    assert_eq!(
        s.resume(&token, "alice", 500, ttl).unwrap(),
        Some(chain),
        "same name, folded"
    );
    assert_eq!(
        s.resume(&token, "bob", 600, ttl).unwrap(),
        None,
        "another name"
    );
    assert_eq!(
        s.resume("0123", "alice", 600, ttl).unwrap(),
        None,
        "unknown"
    );
    // Each resume pushes the expiry to a ttl later: 1500, then 2400, then 3399.
    assert_eq!(s.resume(&token, "alice", 1400, ttl).unwrap(), Some(chain));
    assert_eq!(s.resume(&token, "alice", 2399, ttl).unwrap(), Some(chain));
    assert_eq!(
        s.expire_sessions(3000).unwrap(),
        1,
        "the other one, never resumed"
    );
    assert_eq!(
        s.resume(&token, "alice", 3399, ttl).unwrap(),
        None,
        "expired"
    );
    assert_eq!(s.expire_sessions(3399).unwrap(), 1);
}

#[test]
fn a_file_that_is_not_a_database_is_reported_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE);
    let garbage = b"this is not SQLite, but somebody's precious notes".repeat(100);
    std::fs::write(&path, &garbage).unwrap();
    match Store::open(dir.path(), KEEP_ALL) {
        Err(StoreError::Corrupt { path: p, .. }) => assert_eq!(p, path),
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("opened garbage"),
    }
    assert_eq!(std::fs::read(&path).unwrap(), garbage, "never replaced");
}

#[test]
fn a_second_broker_on_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _first = Store::open(dir.path(), KEEP_ALL).unwrap();
    match Store::open(dir.path(), KEEP_ALL) {
        Err(StoreError::Locked { .. }) => {}
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("two brokers on one log"),
    }
}
