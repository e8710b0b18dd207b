//! Plain data types shared by every store: configuration, messages, state and errors.
//!
//! Owns no behaviour beyond small helpers (size formulas, limit accessors).

use std::time::Duration;

use bytes::Bytes;

/// What happens when a limit (max msgs / bytes / msgs per subject) is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Discard {
    /// Remove the oldest messages to make room (nats-server `DiscardOld`, the default).
    #[default]
    Old,
    /// Refuse the new message (nats-server `DiscardNew`).
    New,
}

/// Where the messages of a stream live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StorageKind {
    /// Segment files on disk ([`super::FileStore`]).
    #[default]
    File,
    /// Process memory only ([`super::MemStore`]).
    Memory,
}

/// When the owner of a store makes appends durable.
///
/// The store itself never fsyncs on append: the owner (the stream actor) calls
/// [`super::StreamStore::sync`] after a batch (`Always`) or on a timer (`Interval`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncPolicy {
    /// Group commit: the owner calls `sync()` after each batch, before acknowledging it.
    #[default]
    Always,
    /// Lazy, like nats-server's default: the owner calls `sync()` every interval.
    Interval(Duration),
}

/// Per-stream limits and storage settings, as the store sees them.
///
/// This is not the `$JS.API` JSON type. Like nats-server, a limit of `-1` or `0`
/// means "unlimited" (and `Duration::ZERO` for `max_age`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// Maximum number of messages kept.
    pub max_msgs: i64,
    /// Maximum total size, in nats-server's accounting (see [`StreamState::bytes`]).
    pub max_bytes: i64,
    /// Maximum age of a message.
    pub max_age: Duration,
    /// Maximum number of messages kept per subject.
    pub max_msgs_per_subject: i64,
    /// Maximum size of one message (headers + payload).
    pub max_msg_size: i32,
    /// Discard policy when a limit is reached.
    pub discard: Discard,
    /// With `Discard::New`, also refuse messages over `max_msgs_per_subject`.
    pub discard_new_per_subject: bool,
    /// File or memory.
    pub storage: StorageKind,
    /// Size at which a file-store block is rolled over (bytes); read when the store is opened.
    pub block_size: u64,
    /// When the owner makes appends durable.
    pub sync: SyncPolicy,
    /// Bytes of memory a file store holds at most for the index entries of
    /// blocks it has an index file of (32 bytes a message); read when the store is
    /// opened. Blocks changed since they were indexed stay in memory until the
    /// next sync indexes them again.
    pub index_cache: usize,
}

/// Default bound of a file store's index cache: 4 MiB (128 Ki messages).
pub const DEFAULT_INDEX_CACHE: usize = 4 * 1024 * 1024;

/// Default block size for file stores: 8 MiB.
pub const DEFAULT_BLOCK_SIZE: u64 = 8 * 1024 * 1024;

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            max_msgs: -1,
            max_bytes: -1,
            max_age: Duration::ZERO,
            max_msgs_per_subject: -1,
            max_msg_size: -1,
            discard: Discard::Old,
            discard_new_per_subject: false,
            storage: StorageKind::File,
            block_size: DEFAULT_BLOCK_SIZE,
            sync: SyncPolicy::Always,
            index_cache: DEFAULT_INDEX_CACHE,
        }
    }
}

fn positive(v: i64) -> Option<u64> {
    u64::try_from(v).ok().filter(|&v| v > 0)
}

impl StoreConfig {
    /// `max_msgs` as a limit, `None` when unlimited.
    pub fn msgs_limit(&self) -> Option<u64> {
        positive(self.max_msgs)
    }
    /// `max_bytes` as a limit, `None` when unlimited.
    pub fn bytes_limit(&self) -> Option<u64> {
        positive(self.max_bytes)
    }
    /// `max_msgs_per_subject` as a limit, `None` when unlimited.
    pub fn per_subject_limit(&self) -> Option<u64> {
        positive(self.max_msgs_per_subject)
    }
    /// `max_age` in nanoseconds, `None` when unlimited.
    pub fn age_limit_ns(&self) -> Option<i64> {
        let ns = i64::try_from(self.max_age.as_nanos()).unwrap_or(i64::MAX);
        (ns > 0).then_some(ns)
    }
    /// `max_msg_size` as a limit, `None` when unlimited.
    pub fn msg_size_limit(&self) -> Option<u64> {
        positive(i64::from(self.max_msg_size))
    }
}

/// One stored message, as loaded. The parts are cheap `Bytes` views; a file-store
/// message may share its buffer with neighbours read ahead with it (up to 64 KiB),
/// so copy the parts if the message is kept for long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMsg {
    /// Stream sequence.
    pub seq: u64,
    /// Time stored, nanoseconds since the Unix epoch.
    pub ts: i64,
    /// The literal subject (valid UTF-8, checked when stored and when loaded).
    pub subject: Bytes,
    /// The raw header block (`NATS/1.0\r\n...\r\n\r\n`), if any.
    pub headers: Option<Bytes>,
    /// The payload.
    pub payload: Bytes,
}

impl StoredMsg {
    /// The subject as text.
    pub fn subject_str(&self) -> &str {
        std::str::from_utf8(&self.subject).unwrap_or_default()
    }
}

/// Per-subject bookkeeping: how many messages and the first and last sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SubjectState {
    /// Messages stored under the subject.
    pub msgs: u64,
    /// Lowest sequence of the subject.
    pub first: u64,
    /// Highest sequence of the subject.
    pub last: u64,
}

/// A snapshot of a stream's state, with nats-server's meaning for every field.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StreamState {
    /// Messages stored.
    pub msgs: u64,
    /// Bytes in nats-server's accounting: file store `30 + subj + payload` (plus
    /// `4 + hdr` when there are headers), memory store `16 + subj + hdr + payload`.
    pub bytes: u64,
    /// First sequence (`last_seq + 1` when empty).
    pub first_seq: u64,
    /// Timestamp of the first message (0 when empty).
    pub first_ts: i64,
    /// Last sequence ever assigned (kept across deletes and purges).
    pub last_seq: u64,
    /// Timestamp of the message with `last_seq`, kept after it is deleted or
    /// purged (nats-server's `LastTime`); 0 if never known.
    pub last_ts: i64,
    /// Number of interior deleted sequences between first and last.
    pub num_deleted: u64,
    /// Number of distinct subjects.
    pub num_subjects: u64,
    /// Messages lost to damage since the store was opened (`None`: none).
    pub lost: Option<super::damage::LostData>,
}

/// A purge request, like nats-server's `{filter, seq, keep}`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PurgeRequest {
    /// Only purge messages whose subject matches this filter (`None`, `""` or `>` = all).
    pub filter: Option<String>,
    /// Only purge messages with a sequence below this one (exclusive).
    pub seq: Option<u64>,
    /// Keep the newest `keep` (matching) messages.
    pub keep: Option<u64>,
}

/// The highest sequence a store assigns. One below `u64::MAX`, so "the sequence after
/// the last" (the first sequence of an empty stream) always exists.
pub const LAST_SEQ: u64 = u64::MAX - 1;

/// Errors from a store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `max_msgs` reached with `Discard::New`.
    #[error("maximum messages exceeded")]
    MaxMsgs,
    /// `max_bytes` reached with `Discard::New`.
    #[error("maximum bytes exceeded")]
    MaxBytes,
    /// `max_msgs_per_subject` reached with `Discard::New` + `discard_new_per_subject`.
    #[error("maximum messages per subject exceeded")]
    MaxMsgsPerSubject,
    /// The message is bigger than `max_msg_size` (or than the record format allows).
    #[error("message size exceeds maximum allowed")]
    MessageTooLarge,
    /// The subject is not a valid literal subject.
    #[error("invalid subject")]
    InvalidSubject,
    /// The stream has used its last sequence ([`LAST_SEQ`]): nothing more can be stored.
    #[error("stream sequence space exhausted")]
    SequenceExhausted,
    /// No message with that sequence (never stored, or beyond the last one).
    #[error("no message found")]
    NotFound,
    /// The message was deleted (or purged).
    #[error("deleted message")]
    Deleted,
    /// Stored data failed validation; the text says where.
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// A name that cannot be used as a stream or consumer directory.
    #[error("invalid name {0:?}")]
    InvalidName(String),
    /// The stream or consumer already exists.
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// An I/O error from the file system. The operation may have been partly
    /// applied: the owner should stop using the store and reopen it, which
    /// rebuilds the index from what is on disk.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// nats-server's file-store size of a message (`fileStoreMsgSize`).
pub fn file_msg_size(subj: usize, hdr: usize, payload: usize) -> u64 {
    let base = 30 + subj + payload;
    let total = if hdr == 0 { base } else { base + 4 + hdr };
    total as u64
}

/// nats-server's memory-store size of a message (`memStoreMsgSize`).
pub fn mem_msg_size(subj: usize, hdr: usize, payload: usize) -> u64 {
    (16 + subj + hdr + payload) as u64
}
