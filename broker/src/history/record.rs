//! One event of the log, as the directory ordered it (PROTOCOL.md §10.1). Plain data: the
//! directory makes them without touching the database.

/// What kind of event a record is (PROTOCOL.md §10.2: the kinds history returns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A public message.
    Chat,
    /// A private message, visible to its two chains only.
    Private,
    /// A user joined.
    Join,
    /// A user left.
    Leave,
}

impl Kind {
    /// Every kind, in the order of [`Kind::index`].
    pub const ALL: [Kind; 4] = [Kind::Chat, Kind::Private, Kind::Join, Kind::Leave];

    /// Its place in [`Kind::ALL`].
    pub fn index(self) -> usize {
        match self {
            Kind::Chat => 0,
            Kind::Private => 1,
            Kind::Join => 2,
            Kind::Leave => 3,
        }
    }

    /// Its name in the metrics (the `kind` label).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Chat => "chat",
            Kind::Private => "private",
            Kind::Join => "join",
            Kind::Leave => "leave",
        }
    }

    /// Its number in the database.
    pub(crate) fn code(self) -> i64 {
        match self {
            Kind::Chat => 0,
            Kind::Private => 1,
            Kind::Join => 2,
            Kind::Leave => 3,
        }
    }

    /// The kind of a number in the database (`None`: a newer broker's).
    pub(crate) fn from_code(code: i64) -> Option<Kind> {
        Some(match code {
            0 => Kind::Chat,
            1 => Kind::Private,
            2 => Kind::Join,
            3 => Kind::Leave,
            _ => return None,
        })
    }
}

/// One event of the log, as it was delivered live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Its id: its position in the global order.
    pub id: u64,
    /// Broker time, milliseconds since the Unix epoch.
    pub ts: u64,
    /// What it is.
    pub kind: Kind,
    /// Who sent it (for a join or leave: who joined or left).
    pub from_name: String,
    /// The sender's address as stamped on the frame.
    pub from_ip: String,
    /// A private message's recipient, as the frame names them.
    pub to_name: Option<String>,
    /// The text (empty for a join or leave).
    pub msg: String,
    /// A private message's sender's session chain.
    pub from_chain: Option<u64>,
    /// A private message's recipient's session chain.
    pub to_chain: Option<u64>,
}

impl Record {
    /// A public message (or, with `kind`, a join or leave: `msg` empty) of `from`, with no
    /// recipient and no session chains.
    pub fn new(kind: Kind, id: u64, ts: u64, from: chat_common::Sender, msg: String) -> Record {
        Record {
            id,
            ts,
            kind,
            from_name: from.name,
            from_ip: from.ip,
            to_name: None,
            msg,
            from_chain: None,
            to_chain: None,
        }
    }
}

impl From<Record> for chat_common::link::HistoryEvent {
    fn from(r: Record) -> Self {
        use chat_common::link::HistoryKind;
        chat_common::link::HistoryEvent {
            id: r.id,
            ts: r.ts,
            kind: match r.kind {
                Kind::Chat => HistoryKind::Chat,
                Kind::Private => HistoryKind::Private,
                Kind::Join => HistoryKind::Join,
                Kind::Leave => HistoryKind::Leave,
            },
            from: chat_common::Sender {
                name: r.from_name,
                ip: r.from_ip,
            },
            to: r.to_name,
            msg: r.msg,
        }
    }
}
