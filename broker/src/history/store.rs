//! The durable, ordered log of events and the resume sessions, in one SQLite database
//! (PROTOCOL.md §10; docs/ARCHITECTURE.md, "The history").
//!
//! The broker's routing task writes and reads through one connection. The database is in
//! WAL mode with `synchronous=NORMAL`: a committed transaction survives the broker being
//! killed at any moment (what PROTOCOL.md §10.6 promises), though not a power loss in the
//! last moments before it. With that setting the only `fsync`s are a checkpoint's, which
//! copies the WAL into the database: they take tens of milliseconds, so they run on a
//! thread of their own with its own connection, once a second (`wal_checkpoint(PASSIVE)`,
//! which never blocks the writer), instead of inside a commit of the routing task, where
//! they stalled every message (fanout p99 22 ms against 7 ms without the history:
//! BENCHMARKS.md, issue 12). A lock file taken with `flock` refuses a second broker on the
//! same data directory.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chat_common::history::{Anchor, Query};
use rusqlite::config::DbConfig;
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

pub use super::record::{Kind, Record};

/// The file in the data directory.
pub const DB_FILE: &str = "history.sqlite3";

/// The lock file beside it: held (`flock`) while a broker has the log open.
pub const LOCK_FILE: &str = "history.lock";

/// How often the checkpoint thread copies the WAL into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// WAL frames (4 KiB pages) past which the checkpoint thread makes the writer wait for one
/// checkpoint that lets the WAL start over: under a write flood that never pauses, passive
/// checkpoints alone let it grow without end (737 bytes per event after a million
/// messages at full speed, against 121 in the database).
const MAX_WAL_FRAMES: i64 = 16_384;

/// The WAL file is cut back to this many bytes when it starts over.
const WAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;

/// How long a resume token lives unused, unless set otherwise (PROTOCOL.md §10.4).
pub const DEFAULT_RESUME_TTL: Duration = Duration::from_secs(7 * 86_400);

/// The version of the schema below, in `PRAGMA user_version`.
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    ts INTEGER NOT NULL,
    kind INTEGER NOT NULL,
    from_name TEXT NOT NULL,
    from_ip TEXT NOT NULL,
    to_name TEXT,
    msg TEXT NOT NULL,
    from_chain INTEGER,
    to_chain INTEGER
);
CREATE INDEX events_ts ON events (ts);
CREATE TABLE sessions (
    chain INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash BLOB NOT NULL UNIQUE,
    name TEXT NOT NULL,
    expires INTEGER NOT NULL
);
";

/// The most ids one retention pass removes: about 5 ms of deleting on this project's
/// machine (BENCHMARKS.md, issue 12).
pub const PRUNE_CHUNK: u64 = 2_000;

/// What one retention pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Events removed.
    pub removed: u64,
    /// More are due: the pass stopped at [`PRUNE_CHUNK`].
    pub behind: bool,
}

/// What a query found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The events, ascending by id.
    pub events: Vec<Record>,
    /// More events exist in the asked direction beyond these.
    pub more: bool,
    /// The log no longer holds every event of the asked range (retention), or the anchor
    /// is not an id of this log (another epoch).
    pub gap: bool,
}

/// How long events are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Events older than this are removed (`None`: kept whatever their age).
    pub max_age: Option<Duration>,
    /// At most this many events are kept, the newest (`None`: no bound).
    pub max_events: Option<u64>,
}

/// Why the log could not be opened, read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The data directory could not be created.
    #[error("cannot create the data directory {path}: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// SQLite could not open the file.
    #[error("cannot open the history database {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        source: rusqlite::Error,
    },
    /// The file is not a database of ours, or it is damaged. It is left untouched.
    #[error(
        "{path} is not a chat history database or is damaged ({detail}); it was left as it is: \
         move it away (or start with another --data-dir) to begin a new history"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What SQLite or the check said.
        detail: String,
    },
    /// Another broker holds the database.
    #[error("the history database {path} is in use by another broker")]
    Locked {
        /// The file.
        path: PathBuf,
    },
    /// A read or write failed (a full disk, an I/O error).
    #[error("history database: {0}")]
    Sql(#[from] rusqlite::Error),
}

/// The log and the sessions.
pub struct Store {
    conn: Connection,
    /// Copies the WAL into the database off the routing task (file-backed logs only).
    _checkpoints: Option<Checkpointer>,
    /// Held while the store is open: a second broker cannot take it.
    _lock: Option<std::fs::File>,
    epoch: String,
    last_id: u64,
    /// The highest id removed by retention (0: none ever).
    pruned_upto: u64,
    retention: Retention,
    resume_ttl: Duration,
}

/// A fresh random token of 128 bits, as 32 hex digits.
fn random_hex() -> String {
    netkit::random::hex(16)
}

fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Whether an SQLite error says the file is not a usable database.
fn is_corruption(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt)
    )
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// The thread that checkpoints the WAL; it stops (after a last checkpoint) when this is
/// dropped.
struct Checkpointer {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Checkpointer {
    fn start(path: &Path) -> Result<Checkpointer, StoreError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(1))?;
        conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)?;
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let checkpoint = move || {
            // PASSIVE: copies what it can without waiting for, or blocking, the writer.
            let frames = |mode: &str| {
                conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
                    r.get::<_, i64>(1)
                })
            };
            match frames("PASSIVE") {
                Ok(n) if n > MAX_WAL_FRAMES => {
                    // The writer never paused for the WAL to start over: RESTART waits for
                    // its transaction, holds the next one for the checkpoint, and resets.
                    if let Err(e) = frames("RESTART") {
                        tracing::warn!("history: a restarting checkpoint failed: {e}");
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!("history: a checkpoint failed: {e}"),
            }
        };
        let thread = std::thread::Builder::new()
            .name("history-checkpoint".into())
            .spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(CHECKPOINT_EVERY)
                {
                    checkpoint();
                }
                checkpoint();
            })
            .map_err(|source| StoreError::CreateDir {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Checkpointer {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Takes the data directory's lock file, or says another broker has it.
fn lock(dir: &Path) -> Result<std::fs::File, StoreError> {
    use std::os::fd::AsRawFd;
    let path = dir.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| StoreError::CreateDir {
            path: path.clone(),
            source,
        })?;
    // SAFETY: flock(2) on a descriptor this function owns (it lives in `file`).
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        return Err(StoreError::Locked {
            path: dir.join(DB_FILE),
        });
    }
    Ok(file)
}

impl Store {
    /// Opens (or creates) the log in `dir`, creating the directory if missing.
    pub fn open(dir: &Path, retention: Retention) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let lock = lock(dir)?;
        let path = dir.join(DB_FILE);
        let conn = Connection::open(&path).map_err(|source| StoreError::Open {
            path: path.clone(),
            source,
        })?;
        let mut store = Store::init(conn, &path, retention)?;
        store._checkpoints = Some(Checkpointer::start(&path)?);
        store._lock = Some(lock);
        Ok(store)
    }

    /// A log that lives in memory only (tests, `--data-dir` of a throwaway broker).
    pub fn in_memory(retention: Retention) -> Result<Store, StoreError> {
        let conn = Connection::open_in_memory()?;
        Store::init(conn, Path::new(":memory:"), retention)
    }

    fn init(conn: Connection, path: &Path, retention: Retention) -> Result<Store, StoreError> {
        let corrupt = |e: rusqlite::Error| {
            if is_corruption(&e) {
                StoreError::Corrupt {
                    path: path.to_path_buf(),
                    detail: e.to_string(),
                }
            } else if is_busy(&e) {
                StoreError::Locked {
                    path: path.to_path_buf(),
                }
            } else {
                StoreError::Sql(e)
            }
        };
        // The checkpoint thread's connection may hold the writer back for a moment (a
        // restarting checkpoint under a flood: a fraction of a second).
        conn.busy_timeout(Duration::from_secs(5)).map_err(corrupt)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(corrupt)?;
        if mode != "wal" && mode != "memory" {
            tracing::warn!(%mode, "the history database is not in WAL mode");
        }
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(corrupt)?;
        // A query's plan never depends on the values bound to it. Without this, SQLite
        // (built with STAT4) compiles a cached statement again whenever a value it compares
        // to a key is bound anew: every query, 6 % of the broker's time on `latest 500`.
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
            .map_err(corrupt)?;
        // Checkpoints are the checkpoint thread's, never a commit's (see the module docs).
        conn.pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(corrupt)?;
        conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)
            .map_err(corrupt)?;
        let check: String = conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(corrupt)?;
        if check != "ok" {
            return Err(StoreError::Corrupt {
                path: path.to_path_buf(),
                detail: check,
            });
        }
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(corrupt)?;
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .map_err(corrupt)?;
        match (version, tables) {
            (0, 0) => {
                let tx = conn.unchecked_transaction()?;
                tx.execute_batch(SCHEMA)?;
                tx.execute(
                    "INSERT INTO meta (key, value) VALUES ('epoch', ?1), ('last_id', '0'), ('pruned_upto', '0')",
                    params![random_hex()],
                )?;
                tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
                tx.commit()?;
            }
            (SCHEMA_VERSION, _) => {}
            (v, _) => {
                return Err(StoreError::Corrupt {
                    path: path.to_path_buf(),
                    detail: format!("schema version {v}, this broker knows {SCHEMA_VERSION}"),
                });
            }
        }
        let meta = |key: &str| -> Result<String, StoreError> {
            conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
                .optional()
                .map_err(corrupt)?
                .ok_or_else(|| StoreError::Corrupt {
                    path: path.to_path_buf(),
                    detail: format!("no {key} in its meta table"),
                })
        };
        let number = |key: &str| -> Result<u64, StoreError> {
            meta(key)?.parse().map_err(|_| StoreError::Corrupt {
                path: path.to_path_buf(),
                detail: format!("its {key} is not a number"),
            })
        };
        let epoch = meta("epoch")?;
        let last_id = number("last_id")?;
        let pruned_upto = number("pruned_upto")?;
        Ok(Store {
            conn,
            _checkpoints: None,
            _lock: None,
            epoch,
            last_id,
            pruned_upto,
            retention,
            resume_ttl: DEFAULT_RESUME_TTL,
        })
    }

    /// Caps the database file at `pages` pages (`PRAGMA max_page_count`; a page is 4 KiB):
    /// past it every write fails as with a full disk. For operators who want a hard bound,
    /// and for the tests of the full-disk path.
    pub fn limit_pages(&mut self, pages: u64) -> Result<(), StoreError> {
        let _: i64 = self
            .conn
            .query_row(&format!("PRAGMA max_page_count = {pages}"), [], |r| {
                r.get(0)
            })?;
        Ok(())
    }

    /// How long a resume token lives unused (`broker --resume-ttl`).
    pub fn set_resume_ttl(&mut self, ttl: Duration) {
        self.resume_ttl = ttl;
    }

    /// How long a resume token lives unused.
    pub fn resume_ttl(&self) -> Duration {
        self.resume_ttl
    }

    /// The log's epoch: changes only with a new database (PROTOCOL.md §10.1).
    pub fn epoch(&self) -> &str {
        &self.epoch
    }

    /// The id of the last event ever appended (0 for a new log): the broker's ids go on
    /// from it.
    pub fn last_id(&self) -> u64 {
        self.last_id
    }

    /// Events the log holds, about: the ids between what retention removed and the last
    /// one (a batch that could not be stored leaves ids counted here that no row has). A
    /// `COUNT(*)` of a million rows took 70 ms of the router's thread; this is arithmetic.
    pub fn kept(&self) -> u64 {
        self.last_id.saturating_sub(self.pruned_upto)
    }

    /// The size of the database file, in bytes (its pages; the write-ahead log aside).
    pub fn file_bytes(&self) -> Result<u64, StoreError> {
        let pages: i64 = self.conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
        let size: i64 = self.conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        Ok(to_u64(pages).saturating_mul(to_u64(size)))
    }

    /// Appends `batch` (ascending ids above [`Store::last_id`]) in one transaction: all or
    /// nothing.
    pub fn append(&mut self, batch: &[Record]) -> Result<(), StoreError> {
        let Some(last) = batch.last() else {
            return Ok(());
        };
        let tx = self.conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO events (id, ts, kind, from_name, from_ip, to_name, msg, from_chain, to_chain)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?;
            for r in batch {
                insert.execute(params![
                    to_i64(r.id),
                    to_i64(r.ts),
                    r.kind.code(),
                    r.from_name,
                    r.from_ip,
                    r.to_name,
                    r.msg,
                    r.from_chain.map(to_i64),
                    r.to_chain.map(to_i64),
                ])?;
            }
            tx.execute(
                "UPDATE meta SET value = ?1 WHERE key = 'last_id'",
                [last.id.to_string()],
            )?;
        }
        tx.commit()?;
        self.last_id = last.id;
        Ok(())
    }

    /// The events `query` asks for that `viewer` (a session chain) may see: public events
    /// and the viewer's own private messages (PROTOCOL.md §10.2, §10.3).
    pub fn query(&self, query: &Query, viewer: Option<u64>) -> Result<Page, StoreError> {
        self.query_kinds(query, viewer, false)
    }

    /// Like [`Store::query`]; with `chat_only`, public messages only (the line port's
    /// `/history N`: joins and leaves not counted).
    pub fn query_kinds(
        &self,
        query: &Query,
        viewer: Option<u64>,
        chat_only: bool,
    ) -> Result<Page, StoreError> {
        const COLUMNS: &str =
            "id, ts, kind, from_name, from_ip, to_name, msg, from_chain, to_chain";
        let visible = if chat_only {
            "kind = 0"
        } else {
            "(kind <> 1 OR from_chain = ?2 OR to_chain = ?2)"
        };
        let (sql, from, descending) = match query.anchor {
            Anchor::Latest => (
                format!(
                    "SELECT {COLUMNS} FROM events WHERE id <= ?1 AND {visible} ORDER BY id DESC LIMIT ?3"
                ),
                i64::MAX,
                true,
            ),
            Anchor::Before(id) => (
                format!(
                    "SELECT {COLUMNS} FROM events WHERE id < ?1 AND {visible} ORDER BY id DESC LIMIT ?3"
                ),
                to_i64(id),
                true,
            ),
            Anchor::After(id) => (
                format!(
                    "SELECT {COLUMNS} FROM events WHERE id > ?1 AND {visible} ORDER BY id ASC LIMIT ?3"
                ),
                to_i64(id),
                false,
            ),
        };
        let viewer = viewer.map_or(-1, to_i64);
        let limit = i64::from(query.count) + 1;
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let mut events = stmt
            .query_map(params![from, viewer, limit], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, Option<String>>(5)?,
                    r.get::<_, String>(6)?,
                    r.get::<_, Option<i64>>(7)?,
                    r.get::<_, Option<i64>>(8)?,
                ))
            })?
            .filter_map(|row| {
                // A row of an unknown kind (a newer broker's) is skipped, not fatal.
                let (id, ts, kind, from_name, from_ip, to_name, msg, fc, tc) = match row {
                    Ok(row) => row,
                    Err(e) => return Some(Err(e)),
                };
                Some(Ok(Record {
                    id: to_u64(id),
                    ts: to_u64(ts),
                    kind: Kind::from_code(kind)?,
                    from_name,
                    from_ip,
                    to_name,
                    msg,
                    from_chain: fc.map(to_u64),
                    to_chain: tc.map(to_u64),
                }))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let count = usize::try_from(query.count).unwrap_or(usize::MAX);
        let more = events.len() > count;
        events.truncate(count);
        if descending {
            events.reverse();
        }
        // Events this log never had (an anchor of another epoch), or had and removed.
        let foreign = match query.anchor {
            Anchor::Latest => false,
            Anchor::Before(id) => id > self.last_id.saturating_add(1),
            Anchor::After(id) => id > self.last_id,
        };
        let pruned = match query.anchor {
            Anchor::After(id) => id < self.pruned_upto,
            Anchor::Latest | Anchor::Before(_) => !more && self.pruned_upto > 0,
        };
        Ok(Page {
            events,
            more,
            gap: foreign || pruned,
        })
    }

    /// Removes what retention says is too old or too many, as of `now_ms`, at most
    /// [`PRUNE_CHUNK`] events per call (the router's thread waits for it: a few
    /// milliseconds, never the whole backlog at once). Too many means more than
    /// `max_events` ids: every id is an event of the log but those of a batch that could not
    /// be stored, so a failed write costs a little of what is kept, and no count of a
    /// million rows is needed (that took 70 ms, and finding the age cutoff by `max(id)`
    /// scanned the table for 120 ms, every minute, on the router's thread).
    pub fn prune(&mut self, now_ms: u64) -> Result<Pruned, StoreError> {
        let mut cutoff: u64 = 0;
        if let Some(age) = self.retention.max_age {
            let oldest_ts =
                now_ms.saturating_sub(u64::try_from(age.as_millis()).unwrap_or(u64::MAX));
            // Through the `ts` index: the newest event older than the bound. Broker time
            // goes forward with the ids, so everything at or below it is older too.
            let below: Option<i64> = self
                .conn
                .query_row(
                    "SELECT id FROM events WHERE ts < ?1 ORDER BY ts DESC LIMIT 1",
                    [to_i64(oldest_ts)],
                    |r| r.get(0),
                )
                .optional()?;
            cutoff = cutoff.max(below.map_or(0, to_u64));
        }
        if let Some(max) = self.retention.max_events {
            cutoff = cutoff.max(self.last_id.saturating_sub(max));
        }
        if cutoff <= self.pruned_upto {
            return Ok(Pruned::default());
        }
        let upto = cutoff.min(self.pruned_upto.saturating_add(PRUNE_CHUNK));
        let tx = self.conn.transaction()?;
        let removed = tx.execute("DELETE FROM events WHERE id <= ?1", [to_i64(upto)])?;
        tx.execute(
            "UPDATE meta SET value = ?1 WHERE key = 'pruned_upto'",
            [upto.to_string()],
        )?;
        tx.commit()?;
        self.pruned_upto = upto;
        Ok(Pruned {
            removed: u64::try_from(removed).unwrap_or(u64::MAX),
            behind: upto < cutoff,
        })
    }

    /// Starts a session chain for `name`: returns its resume token (given to the client
    /// once, stored only as a hash) and the chain's id. It expires `ttl` after `now_ms`
    /// unless resumed.
    pub fn new_session(
        &mut self,
        name: &str,
        now_ms: u64,
        ttl: Duration,
    ) -> Result<(String, u64), StoreError> {
        let token = random_hex();
        let expires = now_ms.saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX));
        self.conn
            .prepare_cached("INSERT INTO sessions (token_hash, name, expires) VALUES (?1, ?2, ?3)")?
            .execute(params![hash(&token), name, to_i64(expires)])?;
        Ok((token, to_u64(self.conn.last_insert_rowid())))
    }

    /// The chain of `token` if it is known, not expired and was given to `name` (compared by
    /// its folded form: PROTOCOL.md §2.2); resuming pushes its expiry to `ttl` after
    /// `now_ms`.
    pub fn resume(
        &mut self,
        token: &str,
        name: &str,
        now_ms: u64,
        ttl: Duration,
    ) -> Result<Option<u64>, StoreError> {
        let found: Option<(i64, String, i64)> = self
            .conn
            .prepare_cached("SELECT chain, name, expires FROM sessions WHERE token_hash = ?1")?
            .query_row([hash(token)], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        let Some((chain, owner, expires)) = found else {
            return Ok(None);
        };
        if to_u64(expires) <= now_ms
            || chat_common::name::NameKey::of(&owner) != chat_common::name::NameKey::of(name)
        {
            return Ok(None);
        }
        let expires = now_ms.saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX));
        self.conn
            .prepare_cached("UPDATE sessions SET expires = ?1 WHERE chain = ?2")?
            .execute(params![to_i64(expires), chain])?;
        Ok(Some(to_u64(chain)))
    }

    /// Removes the sessions that expired before `now_ms`; returns how many.
    pub fn expire_sessions(&mut self, now_ms: u64) -> Result<u64, StoreError> {
        let n = self
            .conn
            .execute("DELETE FROM sessions WHERE expires <= ?1", [to_i64(now_ms)])?;
        Ok(u64::try_from(n).unwrap_or(u64::MAX))
    }
}
