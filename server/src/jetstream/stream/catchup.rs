//! What a replicated stream's replica needs from its stream to take part in a Raft
//! snapshot (issue 20, `jetstream::cluster::replica::catchup`): its durable position
//! for the snapshot, and the store operations that make a replica that missed part of
//! the log (down while the log was compacted, or wiped) hold what its group's leader
//! holds, message for message at the same sequences and times.
//!
//! Everything here writes through the store the way the stream's own paths do
//! (`append_stored`), and [`StreamCore::catch_up_done`] rebuilds what is derived from
//! the stored messages (duplicate window, last message id, TTL and schedule timers), as
//! opening the stream does.

use rill_protocol::jsapi::ApiError;

use super::core::StreamCore;
use crate::jetstream::error;
use crate::jetstream::store::{StoreError, StoredMsg};

/// Where a stream stands: what a replicated stream's snapshot records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// The first sequence held (`last_seq + 1` when empty).
    pub first_seq: u64,
    /// The last sequence assigned.
    pub last_seq: u64,
}

impl StreamCore {
    /// The stream's position, made durable first (a snapshot must never be ahead of
    /// the store it describes).
    ///
    /// # Errors
    /// The sync failed.
    pub fn durable_position(&mut self) -> Result<Position, ApiError> {
        self.store.sync().map_err(|e| error::publish_error(&e))?;
        self.dirty = false;
        let st = self.store.state();
        Ok(Position {
            first_seq: st.first_seq,
            last_seq: st.last_seq,
        })
    }

    /// Reads up to `max_msgs` stored messages (and `max_bytes` of payload) with
    /// sequences from `from` through `upto`; the messages and the sequence to read
    /// from next (`upto + 1` once the range is done).
    ///
    /// # Errors
    /// Store read errors.
    pub fn read_range(
        &self,
        from: u64,
        upto: u64,
        max_msgs: usize,
        max_bytes: usize,
    ) -> Result<(Vec<StoredMsg>, u64), ApiError> {
        let mut out = Vec::new();
        let (mut seq, mut bytes) = (from, 0);
        while seq <= upto && out.len() < max_msgs && bytes < max_bytes {
            let m = match self.store.load_next(seq, ">") {
                Ok(m) if m.seq <= upto => m,
                Ok(_) | Err(StoreError::NotFound) => return Ok((out, upto + 1)),
                Err(e) => return Err(error::publish_error(&e)),
            };
            seq = m.seq + 1;
            bytes += m.payload.len() + m.headers.as_ref().map_or(0, |h| h.len());
            out.push(m);
        }
        Ok((out, seq))
    }

    /// Removes every message below `first` (past the end the stream restarts there),
    /// as the leader's purges did.
    ///
    /// # Errors
    /// Store errors.
    pub fn catch_up_trim(&mut self, first: u64) -> Result<(), ApiError> {
        if self.store.state().first_seq < first {
            self.store
                .compact(first)
                .map_err(|e| error::publish_error(&e))?;
            self.dirty = true;
        }
        Ok(())
    }

    /// Removes the messages with sequences in `from..to` that are not in `keep`
    /// (ascending): the ones the leader deleted.
    ///
    /// # Errors
    /// Store errors.
    pub fn catch_up_keep(&mut self, from: u64, to: u64, keep: &[u64]) -> Result<(), ApiError> {
        let mut seq = from;
        while seq < to {
            let m = match self.store.load_next(seq, ">") {
                Ok(m) if m.seq < to => m,
                Ok(_) | Err(StoreError::NotFound) => break,
                Err(e) => return Err(error::publish_error(&e)),
            };
            seq = m.seq + 1;
            if keep.binary_search(&m.seq).is_err() {
                self.store
                    .remove(m.seq)
                    .map_err(|e| error::publish_error(&e))?;
                self.dirty = true;
            }
        }
        Ok(())
    }

    /// Stores `m` at its own sequence and time (the sequences between the last one and
    /// it are gaps, as deleted messages are); one at or below the last sequence is
    /// already here.
    ///
    /// # Errors
    /// Store errors.
    pub fn catch_up_put(&mut self, m: &StoredMsg) -> Result<(), ApiError> {
        let last = self.store.state().last_seq;
        if m.seq <= last {
            return Ok(());
        }
        if m.seq > last + 1 {
            self.store
                .skip_msgs(m.seq - last - 1)
                .map_err(|e| error::publish_error(&e))?;
        }
        let subject = m.subject_str().to_owned();
        self.append_stored(&subject, m.headers.as_deref(), &m.payload, m.ts)
            .map_err(|e| error::publish_error(&e))?;
        Ok(())
    }

    /// Ends a catch-up at `last_seq` (the sequences after the last message stored are
    /// gaps): syncs, and rebuilds what is derived from the stored messages.
    ///
    /// # Errors
    /// Store errors.
    pub fn catch_up_done(&mut self, last_seq: u64) -> Result<(), ApiError> {
        let last = self.store.state().last_seq;
        if last_seq > last {
            self.store
                .skip_msgs(last_seq - last)
                .map_err(|e| error::publish_error(&e))?;
        }
        self.sync_now();
        let st = self.store.state();
        self.dedupe.rebuild_later(st.last_seq);
        self.last_msg_id = super::dedupe::LastMsgId::of_seq(st.last_seq);
        self.ttls = super::ttl::TtlSchedule::default();
        if self.cfg.allow_msg_ttl {
            self.ttls
                .rebuild(self.store.as_ref())
                .map_err(|e| error::publish_error(&e))?;
        }
        if self.cfg.allow_msg_schedules {
            self.rebuild_schedules()
                .map_err(|e| error::publish_error(&e))?;
        }
        let _ = self.last_seq_tx.send(st.last_seq);
        Ok(())
    }
}
