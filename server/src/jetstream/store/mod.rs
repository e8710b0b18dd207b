//! Stream storage: the [`StreamStore`] trait, its memory and file
//! implementations, consumer state, and durable stream/consumer metadata.
//!
//! Owns every byte JetStream keeps. Does not own JetStream semantics above the
//! store (dedupe, retention other than limits, delivery): that is the stream and
//! consumer actors' job. Everything here is synchronous `std` code: the stream
//! actor runs its store on a stream-pool thread and does group commit by appending a
//! batch and calling [`StreamStore::sync`] once before acknowledging it.
//!
//! - [`Store`] holds the semantics once (limits, discard, purge, filters,
//!   expiry) over a [`Backend`]; [`MemStore`] and [`FileStore`] are its two instances.
//! - The on-disk format is specified byte by byte in the `file` module docs; the
//!   directory layout and config files in [`meta`]; consumer state in [`consumer`].
//! - All file I/O goes through [`Vfs`]: [`StdFs`] in production, `SimDisk` (compiled for
//!   tests only) in crash tests.
//!
//! # Format version
//! Everything on disk is format version 1 (the block header's version field,
//! `meta.cfg`'s version field, the record kinds 1–3 of a consumer's
//! `state.log`, the block index files `RILLBIX\x01`), except the whole-store
//! index snapshot of earlier releases, which is no longer written and is read in
//! versions 1 and 2 (`RILLIDX\x02`, delta-coded entries). A store written by
//! format version 1 is kept in `tests/golden/store-v1/`, and the e2e tests
//! `golden_store_v1_*` start a real server on a copy of it (with and without
//! its snapshot): a later format must keep opening it.
//!
//! Byte counts follow nats-server so clients see the same figures (see
//! [`StreamState::bytes`]).

pub mod consumer;
mod core;
mod damage;
mod file;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzz;
mod generic;
mod memory;
pub mod meta;
#[cfg(test)]
mod simdisk;
mod types;
mod vfs;

#[cfg(test)]
mod tests;

pub use self::consumer::{
    ConsumerState, ConsumerStore, FileConsumerStore, MemConsumerStore, PendingAck, SequencePair,
};
pub use self::core::{Core, Placed, Slot};
pub use self::damage::{LOST_LIST_MAX, LostData};
pub use self::file::{FileBackend, FileLoc, FileStore};
pub use self::generic::{Backend, Store, now_ns, timestamp};
pub use self::memory::{MemBackend, MemMsg, MemStore};
#[cfg(test)]
pub use self::simdisk::SimDisk;
pub use self::types::{
    DEFAULT_BLOCK_SIZE, DEFAULT_INDEX_CACHE, Discard, LAST_SEQ, PurgeRequest, StorageKind,
    StoreConfig, StoreError, StoredMsg, StreamState, SubjectState, SyncPolicy, file_msg_size,
    mem_msg_size,
};
pub use self::vfs::{SharedVfs, StdFs, VFile, Vfs};

/// A stream's message store. Object-safe: the JetStream layer holds a
/// `Box<dyn StreamStore>`; one thread owns it, hence `&mut self` and no locks.
///
/// Sequences start at 1, are dense and never reused; deleted sequences are gaps.
/// Filters are subjects that may hold wildcards; `""` and `>` match everything.
pub trait StreamStore: Send + std::fmt::Debug {
    /// Stores a message stamped with the current time. Returns (seq, ts).
    ///
    /// # Errors
    /// `InvalidSubject`, `MessageTooLarge`, `MaxMsgs`/`MaxBytes`/`MaxMsgsPerSubject`
    /// (discard new), I/O errors.
    fn append(
        &mut self,
        subject: &str,
        headers: Option<&[u8]>,
        payload: &[u8],
    ) -> Result<(u64, i64), StoreError>;

    /// Stores a message with a caller-given timestamp (ns since the epoch).
    ///
    /// # Errors
    /// As [`StreamStore::append`].
    fn append_at(
        &mut self,
        subject: &str,
        headers: Option<&[u8]>,
        payload: &[u8],
        ts: i64,
    ) -> Result<(u64, i64), StoreError>;

    /// Checks that `msgs` (subject, header and payload lengths) could be appended one
    /// after the other, each as if the earlier ones were stored: the size and
    /// discard-new limits an atomic batch must pass before any of it is stored.
    ///
    /// # Errors
    /// As [`StreamStore::append`] for those limits.
    fn check_appends(&self, msgs: &[(&str, usize, usize)]) -> Result<(), StoreError>;

    /// Loads the message with sequence `seq`.
    ///
    /// # Errors
    /// `NotFound` (0 or beyond the last sequence), `Deleted`, `Corrupt`, I/O errors.
    fn load(&self, seq: u64) -> Result<StoredMsg, StoreError>;

    /// Loads the first message at or after `start` matching `filter`.
    ///
    /// # Errors
    /// `NotFound` when there is none; `Corrupt`, I/O errors.
    fn load_next(&self, start: u64, filter: &str) -> Result<StoredMsg, StoreError>;

    /// Loads the first message at or after `start` matching any of `filters`.
    ///
    /// # Errors
    /// As [`StreamStore::load_next`].
    fn load_next_multi(&self, start: u64, filters: &[&str]) -> Result<StoredMsg, StoreError>;

    /// Loads the newest message matching `filter` (a literal subject or wildcard).
    ///
    /// # Errors
    /// `NotFound` when there is none; `Corrupt`, I/O errors.
    fn load_last(&self, filter: &str) -> Result<StoredMsg, StoreError>;

    /// Count and first/last sequence of a literal subject.
    fn subject_state(&self, subject: &str) -> Option<SubjectState>;

    /// Subjects matching `filter` with their state, sorted by subject.
    fn subjects(&self, filter: &str) -> Vec<(String, SubjectState)>;

    /// Deletes one message.
    ///
    /// # Errors
    /// `NotFound`, `Deleted`, I/O errors.
    fn remove(&mut self, seq: u64) -> Result<(), StoreError>;

    /// Deletes one message and overwrites its bytes on disk (at the next sync).
    ///
    /// # Errors
    /// As [`StreamStore::remove`].
    fn erase(&mut self, seq: u64) -> Result<(), StoreError>;

    /// Purges like nats-server's purge request; returns the number removed.
    /// `keep` keeps the newest N (matching) messages; `seq` purges below it
    /// (without a filter, a `seq` past the end moves the first sequence there).
    ///
    /// # Errors
    /// I/O errors.
    fn purge(&mut self, req: &PurgeRequest) -> Result<u64, StoreError>;

    /// Removes every message below `seq`; past the end, the stream restarts at `seq`.
    ///
    /// # Errors
    /// I/O errors.
    fn compact(&mut self, seq: u64) -> Result<u64, StoreError>;

    /// Advances the last sequence by `n` without storing; returns the new last sequence.
    ///
    /// # Errors
    /// I/O errors.
    fn skip_msgs(&mut self, n: u64) -> Result<u64, StoreError>;

    /// Counts, sequences and timestamps.
    fn state(&self) -> StreamState;

    /// The interior deleted sequences, ascending.
    fn deleted(&self) -> Vec<u64>;

    /// The current limits.
    fn config(&self) -> &StoreConfig;

    /// Applies new limits; tighter ones trim at once (as nats-server does).
    ///
    /// # Errors
    /// I/O errors.
    fn update_config(&mut self, cfg: StoreConfig) -> Result<(), StoreError>;

    /// Removes messages older than `max_age` at `now_ns`; returns how many.
    ///
    /// # Errors
    /// I/O errors.
    fn expire(&mut self, now_ns: i64) -> Result<u64, StoreError>;

    /// When the oldest message will expire (ns since the epoch), if `max_age` is set.
    fn next_expiry(&self) -> Option<i64>;

    /// Makes all appends and deletes so far durable. Free when nothing changed.
    ///
    /// # Errors
    /// I/O errors.
    fn sync(&mut self) -> Result<(), StoreError>;

    /// Syncs and writes what makes the next open fast (the block indexes a
    /// file store lacks).
    /// The store stays usable; the JetStream layer may call it from time to time.
    ///
    /// # Errors
    /// I/O errors.
    fn checkpoint(&mut self) -> Result<(), StoreError>;

    /// Like [`StreamStore::checkpoint`]; call it on clean shutdown before dropping.
    ///
    /// # Errors
    /// I/O errors.
    fn close(&mut self) -> Result<(), StoreError> {
        self.checkpoint()
    }
}

/// Opens the message store of stream `name` under the JetStream store `root`:
/// a [`MemStore`] for `StorageKind::Memory`, else the [`FileStore`] in
/// [`meta::stream_msgs_dir`]. Create the stream with [`meta::create_stream`] first.
///
/// # Errors
/// `InvalidName`; I/O errors opening the file store.
pub fn open_stream_store(
    root: &std::path::Path,
    name: &str,
    cfg: StoreConfig,
    vfs: SharedVfs,
) -> Result<Box<dyn StreamStore>, StoreError> {
    meta::validate_name(name)?;
    Ok(match cfg.storage {
        StorageKind::Memory => Box::new(MemStore::new(cfg)),
        StorageKind::File => Box::new(FileStore::open(
            &meta::stream_msgs_dir(root, name),
            cfg,
            vfs,
        )?),
    })
}

/// Opens the state store of a consumer: memory for memory streams, else the
/// log in [`meta::consumer_dir`].
///
/// # Errors
/// `InvalidName`; I/O errors opening the log.
pub fn open_consumer_store(
    root: &std::path::Path,
    stream: &str,
    consumer: &str,
    storage: StorageKind,
    vfs: SharedVfs,
) -> Result<Box<dyn ConsumerStore>, StoreError> {
    meta::validate_name(stream)?;
    meta::validate_name(consumer)?;
    Ok(match storage {
        StorageKind::Memory => Box::new(MemConsumerStore::new()),
        StorageKind::File => Box::new(FileConsumerStore::open(
            &meta::consumer_dir(root, stream, consumer),
            vfs,
        )?),
    })
}
