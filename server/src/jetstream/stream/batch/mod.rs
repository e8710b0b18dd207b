//! Atomic batch publish (`allow_atomic`, ADR-50): messages carrying
//! `Nats-Batch-Id` and `Nats-Batch-Sequence` (1, 2, ...) are held by the stream until
//! one carries `Nats-Batch-Commit`, then stored together or not at all.
//!
//! As nats-server 2.15.1 answers (learned by running it):
//! - a staged message gets an empty reply; the commit gets the PubAck of the last
//!   stored message with `batch` and `count`;
//! - `Nats-Batch-Commit: 1` stores the batch with this message, `eob` without it (the
//!   last stored message then carries `Nats-Batch-Commit: 1`); any other value
//!   `10200`; a batch's messages are stored with their batch headers;
//! - no `allow_atomic` `10174`; an id over 64 bytes `10179`; a missing or unreadable
//!   sequence `10175`; a sequence over 1000 `10199`; a batch that does not start at 1,
//!   has a gap, is unknown, has timed out (10 s without a message) or commits nothing
//!   `10176`; more than 50 open batches on a stream or 1000 on the server `10210`;
//!   `Nats-Expected-Last-Msg-Id` `10177`; a `Nats-Msg-Id` seen in the batch or the
//!   duplicate window `10201`; an expected last subject sequence on a subject written
//!   earlier in the batch `10164`; a message over `max_msg_size` `10054` before its
//!   batch is looked at (the batch stays open);
//! - every other check runs on each message as if the batch's earlier messages were
//!   stored (`Nats-Expected-Last-Sequence`, counter increments, the discard-new
//!   `max_msgs` / `max_bytes` / per-subject limits, through
//!   `StreamStore::check_appends`), and any error drops the batch; they are made
//!   before anything is stored, so a refused batch costs no sequence numbers, as on
//!   nats-server. Only a store failure while storing (I/O) takes the stored part back,
//!   its sequence numbers then staying used.
//!
//! All or nothing: the stream stores a batch within one command, so nothing
//! interleaves and consumers see it after the group commit. A crash in the middle of
//! the commit can leave the batch's first messages on disk without its commit; on open
//! [`repair_torn`] removes such a tail (its last message carries a `Nats-Batch-Id` and
//! no `Nats-Batch-Commit`).
//!
//! This module holds the state the stream core keeps ([`Batches`]) and the header
//! rules; the stream's side (staging, the whole-batch checks, the commit) is `stage`.

mod stage;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use rill_protocol::headers::find;
use rill_protocol::jsapi::{ApiError, ErrorCode};

use crate::jetstream::store::{StoreError, StreamStore};

/// The batch a message belongs to.
pub(crate) const BATCH_ID: &str = "Nats-Batch-Id";
const BATCH_SEQ: &str = "Nats-Batch-Sequence";
const BATCH_COMMIT: &str = "Nats-Batch-Commit";
const EXPECTED_LAST_MSG_ID: &str = "Nats-Expected-Last-Msg-Id";
const MAX_ID_LEN: usize = 64;
/// nats-server's largest batch.
const MAX_SIZE: u64 = 1000;
/// nats-server's open batches per stream.
const MAX_OPEN: usize = 50;
/// nats-server's open batches per server.
const MAX_OPEN_SERVER: usize = 1000;
/// A batch without a message for this long is dropped.
const TIMEOUT_NS: i64 = 10_000_000_000;

/// One staged message.
#[derive(Debug)]
pub(super) struct Staged {
    pub(super) subject: Bytes,
    pub(super) headers: Bytes,
    pub(super) payload: Bytes,
}

#[derive(Debug)]
struct Open {
    msgs: Vec<Staged>,
    touched: i64,
}

/// The open atomic batches of every stream of a server, against nats-server's limit.
#[derive(Debug, Default)]
pub(crate) struct ServerBatches(AtomicUsize);

impl ServerBatches {
    fn try_take(&self) -> bool {
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_OPEN_SERVER).then_some(n + 1)
            })
            .is_ok()
    }

    fn release(&self, n: usize) {
        self.0.fetch_sub(n, Ordering::AcqRel);
    }
}

/// The stream's open batches, counted in the server's.
#[derive(Debug, Default)]
pub(crate) struct Batches {
    open: HashMap<String, Open>,
    server: Arc<ServerBatches>,
}

impl Batches {
    /// No open batch; those opened count in `server`.
    pub(crate) fn new(server: Arc<ServerBatches>) -> Self {
        Self {
            open: HashMap::new(),
            server,
        }
    }

    /// When the oldest open batch times out.
    pub(crate) fn next_timeout(&self) -> Option<i64> {
        self.open.values().map(|b| b.touched + TIMEOUT_NS).min()
    }

    /// Drops the batches that timed out at `now`.
    pub(crate) fn expire(&mut self, now: i64) {
        let before = self.open.len();
        self.open.retain(|_, b| b.touched + TIMEOUT_NS > now);
        self.server.release(before - self.open.len());
    }

    /// Opens batch `id`, within the stream's and the server's limits.
    fn insert(&mut self, id: &str, now: i64) -> Result<(), ApiError> {
        if self.open.len() >= MAX_OPEN || !self.server.try_take() {
            return Err(ErrorCode::ATOMIC_PUBLISH_TOO_MANY_INFLIGHT.error());
        }
        let fresh = Open {
            msgs: Vec::new(),
            touched: now,
        };
        self.open.insert(id.to_owned(), fresh);
        Ok(())
    }

    fn remove(&mut self, id: &str) -> Option<Open> {
        let b = self.open.remove(id)?;
        self.server.release(1);
        Some(b)
    }
}

impl Drop for Batches {
    fn drop(&mut self) {
        self.server.release(self.open.len());
    }
}

/// The batch id of a publish, when it is part of one (an empty id is not).
pub(super) fn batch_id(headers: Option<&Bytes>) -> Option<String> {
    let id = find(headers?, BATCH_ID)?;
    (!id.is_empty()).then(|| String::from_utf8_lossy(id).into_owned())
}

fn text(v: &[u8]) -> &str {
    std::str::from_utf8(v).unwrap_or_default()
}

/// What `Nats-Batch-Commit` asks for.
#[derive(PartialEq, Eq)]
enum Commit {
    No,
    /// Store the batch with this message.
    With,
    /// Store the batch without this message.
    EndOfBatch,
}

fn commit_of(h: &[u8]) -> Result<Commit, ApiError> {
    match find(h, BATCH_COMMIT).map(text) {
        None => Ok(Commit::No),
        Some("1") => Ok(Commit::With),
        Some("eob") => Ok(Commit::EndOfBatch),
        Some(_) => Err(ErrorCode::ATOMIC_PUBLISH_INVALID_BATCH_COMMIT.error()),
    }
}

fn incomplete() -> ApiError {
    ErrorCode::ATOMIC_PUBLISH_INCOMPLETE_BATCH.error()
}

/// Removes a batch a crash cut in the middle of its commit: the tail of messages of one
/// batch whose last has no `Nats-Batch-Commit`. Returns how many were removed.
///
/// # Errors
/// Store errors.
pub(crate) fn repair_torn(store: &mut dyn StreamStore) -> Result<u64, StoreError> {
    let last = store.state().last_seq;
    let m = match store.load(last) {
        Ok(m) => m,
        Err(e @ StoreError::Io(_)) => return Err(e),
        // Nothing stored, deleted or damaged: no batch to repair.
        Err(_) => return Ok(0),
    };
    let Some(h) = m.headers.as_deref() else {
        return Ok(0);
    };
    let (Some(id), None) = (find(h, BATCH_ID), find(h, BATCH_COMMIT)) else {
        return Ok(0);
    };
    let id = id.to_vec();
    let n = find(h, BATCH_SEQ)
        .and_then(|v| text(v).parse::<u64>().ok())
        .unwrap_or(1);
    let mut removed = 0;
    for seq in last.saturating_sub(n - 1).max(1)..=last {
        let Ok(m) = store.load(seq) else { continue };
        if m.headers.as_deref().and_then(|h| find(h, BATCH_ID)) == Some(&id[..]) {
            store.remove(seq)?;
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jetstream::store::{FileStore, SimDisk, StoreConfig};
    use rill_protocol::headers::HeaderMap;
    use std::path::Path;

    fn open(disk: &SimDisk) -> FileStore {
        FileStore::open(Path::new("/s"), StoreConfig::default(), disk.shared()).expect("open")
    }

    fn batch_headers(id: &str, seq: u64, commit: bool) -> Vec<u8> {
        let mut h = HeaderMap::new();
        h.append(BATCH_ID, id);
        h.append(BATCH_SEQ, seq.to_string());
        if commit {
            h.append(BATCH_COMMIT, "1");
        }
        h.to_bytes().to_vec()
    }

    /// A crash anywhere in a batch's commit leaves the whole batch or none of it once
    /// the store is opened again and repaired.
    #[test]
    fn a_crash_mid_commit_keeps_all_of_a_batch_or_none() {
        let mut torn = 0;
        for seed in 0..64 {
            let disk = SimDisk::new();
            let mut store = open(&disk);
            store.append("a.0", None, b"before").expect("append");
            store.sync().expect("sync");
            for i in 1..=5 {
                let h = batch_headers("b", i, i == 5);
                store.append("a.1", Some(&h), b"x").expect("append");
            }
            drop(store);
            disk.crash_torn(seed);
            let mut store = open(&disk);
            torn += u32::from(repair_torn(&mut store).expect("repair") > 0);
            let msgs = store.state().msgs;
            assert!(msgs == 1 || msgs == 6, "seed {seed}: {msgs} messages");
            assert_eq!(store.load(1).expect("first").payload, &b"before"[..]);
            drop(store);
            let store = open(&disk);
            assert_eq!(store.state().msgs, msgs, "seed {seed}: repair not durable");
        }
        assert!(torn > 0, "no seed cut the batch");
    }

    #[test]
    fn a_committed_or_plain_tail_is_left_alone() {
        let disk = SimDisk::new();
        let mut store = open(&disk);
        store
            .append("a", Some(&batch_headers("b", 1, true)), b"x")
            .expect("append");
        assert_eq!(repair_torn(&mut store).expect("repair"), 0);
        store.append("a", None, b"y").expect("append");
        assert_eq!(repair_torn(&mut store).expect("repair"), 0);
        store
            .append("a", Some(&batch_headers("c", 1, false)), b"x")
            .expect("append");
        store
            .append("a", Some(&batch_headers("c", 2, false)), b"x")
            .expect("append");
        assert_eq!(repair_torn(&mut store).expect("repair"), 2);
        assert_eq!(store.state().msgs, 2);
    }
}
