//! [`Store`]: the stream-store semantics (limits, discard, purge, filters, expiry)
//! written once over a [`Backend`] that only keeps message bytes.
//!
//! Both [`super::MemStore`] and [`super::FileStore`] are this type, so the two
//! cannot drift apart in behaviour; the shared test suite and the property test
//! then check the backends (persistence, recovery) rather than two copies of
//! the limit logic.

use std::fmt::Debug;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use rill_protocol::jsapi::Timestamp;
use rill_protocol::subject;

use super::StreamStore;
use super::core::{Core, Matcher, Placed, Slot};
use super::damage::Damage;
use super::types::{
    Discard, LAST_SEQ, PurgeRequest, StoreConfig, StoreError, StoredMsg, StreamState, SubjectState,
};

/// Where a store keeps message bytes. Implemented by the memory and file backends.
///
/// The backend is told about every write and removal; [`Core`] (owned by
/// [`Store`]) keeps the index.
pub trait Backend: Send + Debug {
    /// Location of one message's bytes.
    type Loc: Send + Debug + Clone + Placed;

    /// Accounted size of a message (nats-server's formula for this kind of store).
    fn msg_size(&self, subj: usize, hdr: usize, payload: usize) -> u64;

    /// Stores a message and returns where.
    ///
    /// # Errors
    /// I/O errors, or `MessageTooLarge` when the record format cannot hold it.
    fn write(
        &mut self,
        seq: u64,
        ts: i64,
        subj: &str,
        hdr: &[u8],
        payload: &[u8],
    ) -> Result<Self::Loc, StoreError>;

    /// Loads a message's bytes, verifying them.
    ///
    /// # Errors
    /// `Corrupt` when the bytes fail their checksum; I/O errors.
    fn read(
        &self,
        seq: u64,
        subject: Bytes,
        slot: &Slot<Self::Loc>,
    ) -> Result<StoredMsg, StoreError>;

    /// A message left the index (deleted, purged, expired, or trimmed by a limit).
    ///
    /// # Errors
    /// I/O errors.
    fn remove(&mut self, seq: u64, loc: &Self::Loc, erase: bool) -> Result<(), StoreError>;

    /// Called after a batch of removals: reclaim space (drop empty blocks, compact).
    ///
    /// # Errors
    /// I/O errors.
    fn after_removals(&mut self, core: &mut Core<Self::Loc>) -> Result<(), StoreError>;

    /// Everything was removed; `next_seq` is the next sequence to be assigned.
    ///
    /// # Errors
    /// I/O errors.
    fn reset(&mut self, next_seq: u64) -> Result<(), StoreError>;

    /// The last sequence advanced to `last` without a message.
    ///
    /// # Errors
    /// I/O errors.
    fn skip(&mut self, last: u64) -> Result<(), StoreError>;

    /// Makes everything written so far durable (`core`: the index, for what the
    /// backend writes to make the next open fast).
    ///
    /// # Errors
    /// I/O errors.
    fn sync(&mut self, core: &Core<Self::Loc>) -> Result<(), StoreError>;

    /// Flushes and writes whatever makes the next open fast.
    ///
    /// # Errors
    /// I/O errors.
    fn close(&mut self, core: &Core<Self::Loc>) -> Result<(), StoreError>;

    /// Called before every append: fails while the backend cannot take writes
    /// (a failed flush or fsync that a retry does not fix). Default: always fine.
    ///
    /// # Errors
    /// The I/O error that still stands.
    fn writable(&mut self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Verifies, the first time any message of it is read, the storage unit that
    /// holds `slot` (a file block trusted from its index): returns the
    /// indexed sequences in it that do not validate. Default: nothing to verify.
    fn verify(&self, _core: &Core<Self::Loc>, _slot: &Slot<Self::Loc>) -> Vec<u64> {
        Vec::new()
    }
}

/// A stream store: the shared index and limit logic over a backend.
#[derive(Debug)]
pub struct Store<B: Backend> {
    pub(crate) core: Core<B::Loc>,
    pub(crate) backend: B,
    pub(crate) cfg: StoreConfig,
    /// Damaged messages found so far (see `damage`).
    pub(crate) damage: Damage,
}

/// A store timestamp (ns since the Unix epoch) as an API timestamp; 0 (none) is Go's
/// zero time.
pub fn timestamp(ns: i64) -> Timestamp {
    if ns == 0 {
        return Timestamp::ZERO;
    }
    Timestamp::from_unix_nanos(i128::from(ns)).unwrap_or(Timestamp::ZERO)
}

/// Current time in nanoseconds since the Unix epoch.
pub fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl<B: Backend> Store<B> {
    pub(crate) fn from_parts(core: Core<B::Loc>, backend: B, cfg: StoreConfig) -> Self {
        Self {
            core,
            backend,
            cfg,
            damage: Damage::default(),
        }
    }

    /// Loads one indexed message. A damaged one is reported and skipped from
    /// then on: the load says `Deleted` (it is gone, like a deleted message).
    fn load_slot(&self, seq: u64) -> Result<StoredMsg, StoreError> {
        if !self.damage.is_pending(seq)
            && let Some(slot) = self.core.known_slot(seq)
        {
            // A segment's last message read alone: its record is checked, the
            // rest of its block when the segment is first loaded.
            return self.read_slot(seq, &slot);
        }
        let Some(slot) = self.core.get(seq).filter(|_| !self.damage.is_pending(seq)) else {
            return Err(self.missing(seq));
        };
        for bad in self.backend.verify(&self.core, &slot) {
            let size = self.core.get(bad).map_or(0, |s| u64::from(s.size.get()));
            self.damage.found(bad, size, "record does not validate");
        }
        if self.damage.is_pending(seq) {
            return Err(StoreError::Deleted);
        }
        self.read_slot(seq, &slot)
    }

    /// Reads the message `slot` places; a record that fails its checks is reported.
    fn read_slot(&self, seq: u64, slot: &Slot<B::Loc>) -> Result<StoredMsg, StoreError> {
        self.absorb_lost();
        let subject = self.core.subjects.name(slot.subj);
        match self.backend.read(seq, subject, slot) {
            Err(StoreError::Corrupt(why)) => {
                self.damage.found(seq, u64::from(slot.size.get()), &why);
                Err(StoreError::Deleted)
            }
            r => r,
        }
    }

    /// Reports the ranges loads of index segments found lost.
    fn absorb_lost(&self) {
        for (first, last) in self.core.take_lost() {
            self.damage.lost_range(first, last);
        }
    }

    /// Takes the damaged messages found by loads out of the index (they are
    /// already reported lost), and recounts the index if a segment load found
    /// it different from what was recorded. Runs before every change.
    fn settle_damage(&mut self) -> Result<(), StoreError> {
        if self.core.recount_if_needed() {
            self.absorb_lost();
        }
        let seqs = self.damage.take_pending();
        if seqs.is_empty() {
            return Ok(());
        }
        for seq in seqs {
            self.remove_one(seq, false)?;
        }
        self.backend.after_removals(&mut self.core)
    }

    fn missing(&self, seq: u64) -> StoreError {
        if seq == 0 || seq > self.core.last_seq() {
            StoreError::NotFound
        } else {
            StoreError::Deleted
        }
    }

    fn remove_one(&mut self, seq: u64, erase: bool) -> Result<bool, StoreError> {
        match self.core.remove(seq) {
            Some(slot) => {
                self.backend.remove(seq, &slot.loc, erase)?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn remove_first(&mut self) -> Result<bool, StoreError> {
        if self.core.msgs() == 0 {
            return Ok(false);
        }
        let first = self.core.first_seq();
        self.remove_one(first, false)
    }

    /// nats-server's discard-new checks, including its `>=` on bytes and the
    /// "at the subject limit the new message replaces the oldest" allowance.
    fn check_discard_new(&self, subj: &str, size: u64) -> Result<(), StoreError> {
        let held = self.held(subj);
        self.discard_new(&held, size).map(drop)
    }

    /// What a new message on `subj` is checked against.
    fn held(&self, subj: &str) -> Held {
        let subj_state = self.core.subject_state(subj);
        Held {
            msgs: self.core.msgs(),
            bytes: self.core.bytes(),
            subj_msgs: subj_state.map_or(0, |s| s.msgs),
            oldest: subj_state
                .and_then(|s| self.core.get(s.first))
                .map_or(0, |slot| u64::from(slot.size.get())),
        }
    }

    /// The discard-new verdict for a message of `size` bytes; `Ok(true)` when it
    /// replaces its subject's oldest (at the subject limit).
    fn discard_new(&self, held: &Held, size: u64) -> Result<bool, StoreError> {
        if self.cfg.discard != Discard::New {
            return Ok(false);
        }
        let at_subject_limit = self
            .cfg
            .per_subject_limit()
            .is_some_and(|max| held.subj_msgs >= max);
        if self.cfg.discard_new_per_subject && at_subject_limit {
            return Err(StoreError::MaxMsgsPerSubject);
        }
        if !at_subject_limit && self.cfg.msgs_limit().is_some_and(|max| held.msgs >= max) {
            return Err(StoreError::MaxMsgs);
        }
        if self
            .cfg
            .bytes_limit()
            .is_some_and(|max| held.bytes + size >= max)
        {
            // At the subject limit the oldest of the subject goes: enough room if it is as big.
            let replaced = if at_subject_limit { held.oldest } else { 0 };
            if replaced < size {
                return Err(StoreError::MaxBytes);
            }
        }
        Ok(at_subject_limit)
    }

    /// Removes messages until every limit holds (discard old), then lets the backend reclaim.
    fn enforce_limits(&mut self, subject: Option<&str>) -> Result<(), StoreError> {
        if let Some(max) = self.cfg.per_subject_limit() {
            match subject {
                Some(s) => self.trim_subject(s, max)?,
                None => {
                    let over: Vec<String> = self
                        .core
                        .subjects
                        .iter()
                        .filter(|(_, _, st)| st.msgs > max)
                        .filter_map(|(_, n, _)| std::str::from_utf8(n).ok().map(str::to_owned))
                        .collect();
                    for s in over {
                        self.trim_subject(&s, max)?;
                    }
                }
            }
        }
        if self.cfg.discard == Discard::Old {
            if let Some(max) = self.cfg.msgs_limit() {
                while self.core.msgs() > max && self.remove_first()? {}
            }
            if let Some(max) = self.cfg.bytes_limit() {
                while self.core.bytes() > max && self.remove_first()? {}
            }
        }
        self.backend.after_removals(&mut self.core)
    }

    fn trim_subject(&mut self, subj: &str, max: u64) -> Result<(), StoreError> {
        while let Some(st) = self.core.subject_state(subj) {
            if st.msgs <= max {
                break;
            }
            self.remove_one(st.first, false)?;
        }
        Ok(())
    }

    fn expire_inner(&mut self, now: i64) -> Result<u64, StoreError> {
        let Some(age) = self.cfg.age_limit_ns() else {
            return Ok(0);
        };
        let cutoff = now.saturating_sub(age);
        let mut n = 0;
        loop {
            let first = self.core.first().map(|(q, s)| (q, s.ts));
            let Some((seq, ts)) = first else { break };
            if ts > cutoff {
                break;
            }
            self.remove_one(seq, false)?;
            n += 1;
        }
        Ok(n)
    }

    fn purge_all(&mut self) -> Result<u64, StoreError> {
        let n = self.core.msgs();
        let next = self.core.last_seq() + 1;
        self.backend.reset(next)?;
        self.core.reset(next);
        Ok(n)
    }

    fn purge_filtered(&mut self, filter: &str, req: &PurgeRequest) -> Result<u64, StoreError> {
        let mut m = Matcher::new(&[filter]);
        let total = match m.literal() {
            Some(lit) => self.core.subject_state(lit).map_or(0, |s| s.msgs),
            None => self
                .core
                .subjects_matching(&m)
                .iter()
                .map(|(_, s)| s.msgs)
                .sum(),
        };
        let budget = match req.keep {
            Some(keep) if keep > 0 => total.saturating_sub(keep),
            _ => u64::MAX,
        };
        let below = req.seq.filter(|&s| s > 1).unwrap_or(u64::MAX);
        let seqs = self.core.matching_seqs(&mut m, below);
        let mut n = 0;
        for seq in seqs
            .into_iter()
            .take(usize::try_from(budget).unwrap_or(usize::MAX))
        {
            if self.remove_one(seq, false)? {
                n += 1;
            }
        }
        self.backend.after_removals(&mut self.core)?;
        Ok(n)
    }

    fn compact_inner(&mut self, seq: u64) -> Result<u64, StoreError> {
        if seq > self.core.last_seq() + 1 {
            let n = self.core.msgs();
            self.backend.reset(seq)?;
            self.core.reset(seq);
            return Ok(n);
        }
        let mut n = 0;
        while self.core.msgs() > 0 && self.core.first_seq() < seq {
            self.remove_first()?;
            n += 1;
        }
        self.backend.after_removals(&mut self.core)?;
        Ok(n)
    }

    fn delete(&mut self, seq: u64, erase: bool) -> Result<(), StoreError> {
        self.settle_damage()?;
        if !self.remove_one(seq, erase)? {
            return Err(self.missing(seq));
        }
        self.backend.after_removals(&mut self.core)
    }
}

/// What a new message is checked against under discard new: the stream's messages and
/// bytes, its subject's messages and the size of the subject's oldest.
#[derive(Debug, Clone, Copy)]
struct Held {
    msgs: u64,
    bytes: u64,
    subj_msgs: u64,
    oldest: u64,
}

impl<B: Backend> StreamStore for Store<B> {
    fn append(
        &mut self,
        subj: &str,
        hdr: Option<&[u8]>,
        payload: &[u8],
    ) -> Result<(u64, i64), StoreError> {
        self.append_at(subj, hdr, payload, now_ns())
    }

    fn append_at(
        &mut self,
        subj: &str,
        hdr: Option<&[u8]>,
        payload: &[u8],
        ts: i64,
    ) -> Result<(u64, i64), StoreError> {
        self.settle_damage()?;
        self.backend.writable()?;
        subject::validate_stored(subj).map_err(|_| StoreError::InvalidSubject)?;
        let hdr = hdr.unwrap_or_default();
        if self
            .cfg
            .msg_size_limit()
            .is_some_and(|max| (hdr.len() + payload.len()) as u64 > max)
        {
            return Err(StoreError::MessageTooLarge);
        }
        self.expire_inner(ts)?;
        let size = self.backend.msg_size(subj.len(), hdr.len(), payload.len());
        if self.cfg.bytes_limit().is_some_and(|max| size > max) {
            return Err(StoreError::MaxBytes);
        }
        self.check_discard_new(subj, size)?;
        let size32 = u32::try_from(size).map_err(|_| StoreError::MessageTooLarge)?;
        let seq = self.core.last_seq() + 1;
        if seq > LAST_SEQ {
            return Err(StoreError::SequenceExhausted);
        }
        let loc = self.backend.write(seq, ts, subj, hdr, payload)?;
        self.core.insert(seq, subj, size32, ts, loc);
        self.enforce_limits(Some(subj))?;
        Ok((seq, ts))
    }

    fn check_appends(&self, msgs: &[(&str, usize, usize)]) -> Result<(), StoreError> {
        let mut subjects: std::collections::HashMap<&str, Held> = std::collections::HashMap::new();
        let (mut msgs_added, mut bytes_added) = (0u64, 0i128);
        for &(subj, hdr, payload) in msgs {
            if self
                .cfg
                .msg_size_limit()
                .is_some_and(|max| (hdr + payload) as u64 > max)
            {
                return Err(StoreError::MessageTooLarge);
            }
            let size = self.backend.msg_size(subj.len(), hdr, payload);
            if self.cfg.bytes_limit().is_some_and(|max| size > max) {
                return Err(StoreError::MaxBytes);
            }
            let held = subjects.entry(subj).or_insert_with(|| self.held(subj));
            held.msgs = self.core.msgs() + msgs_added;
            held.bytes = u64::try_from(i128::from(self.core.bytes()) + bytes_added).unwrap_or(0);
            if self.discard_new(held, size)? {
                bytes_added += i128::from(size) - i128::from(held.oldest);
            } else {
                msgs_added += 1;
                bytes_added += i128::from(size);
                held.subj_msgs += 1;
            }
        }
        Ok(())
    }

    fn load(&self, seq: u64) -> Result<StoredMsg, StoreError> {
        self.load_slot(seq)
    }

    fn load_next(&self, start: u64, filter: &str) -> Result<StoredMsg, StoreError> {
        self.load_next_multi(start, &[filter])
    }

    fn load_next_multi(&self, start: u64, filters: &[&str]) -> Result<StoredMsg, StoreError> {
        let mut m = Matcher::new(filters);
        let mut from = start;
        while let Some(seq) = self.core.next_matching(from, &mut m) {
            match self.load_slot(seq) {
                Err(StoreError::Deleted) if self.damage.is_pending(seq) => from = seq + 1,
                r => return r,
            }
        }
        Err(StoreError::NotFound)
    }

    fn load_last(&self, filter: &str) -> Result<StoredMsg, StoreError> {
        let mut m = Matcher::new(&[filter]);
        let mut next = self.core.last_matching(&m);
        while let Some(seq) = next {
            match self.load_slot(seq) {
                Err(StoreError::Deleted) if self.damage.is_pending(seq) => {
                    next = self.core.prev_matching(seq - 1, &mut m);
                }
                r => return r,
            }
        }
        Err(StoreError::NotFound)
    }

    fn subject_state(&self, subj: &str) -> Option<SubjectState> {
        self.core.subject_state(subj)
    }

    fn subjects(&self, filter: &str) -> Vec<(String, SubjectState)> {
        self.core.subjects_matching(&Matcher::new(&[filter]))
    }

    fn remove(&mut self, seq: u64) -> Result<(), StoreError> {
        self.delete(seq, false)
    }

    fn erase(&mut self, seq: u64) -> Result<(), StoreError> {
        self.delete(seq, true)
    }

    fn purge(&mut self, req: &PurgeRequest) -> Result<u64, StoreError> {
        self.settle_damage()?;
        let filter = req.filter.as_deref().unwrap_or_default();
        if !(filter.is_empty() || filter == ">") {
            return self.purge_filtered(filter, req);
        }
        let keep = req.keep.unwrap_or(0);
        match req.seq {
            Some(seq) if seq > 1 => self.compact_inner(seq),
            _ if keep == 0 => self.purge_all(),
            _ if keep >= self.core.msgs() => Ok(0),
            _ => {
                let cut = self.core.nth(self.core.msgs() - keep);
                self.compact_inner(cut.unwrap_or(0))
            }
        }
    }

    fn compact(&mut self, seq: u64) -> Result<u64, StoreError> {
        self.settle_damage()?;
        self.compact_inner(seq)
    }

    fn skip_msgs(&mut self, n: u64) -> Result<u64, StoreError> {
        self.settle_damage()?;
        let last = self
            .core
            .last_seq()
            .checked_add(n)
            .filter(|&l| l <= LAST_SEQ)
            .ok_or(StoreError::SequenceExhausted)?;
        if n == 0 {
            return Ok(last);
        }
        if self.core.msgs() == 0 {
            self.backend.reset(last + 1)?;
            self.core.reset(last + 1);
        } else {
            self.backend.skip(last)?;
            self.core.skip_to(last);
        }
        Ok(last)
    }

    fn state(&self) -> StreamState {
        let first_seq = self.core.first_seq();
        let first_ts = self.core.first_ts();
        self.absorb_lost();
        let (bad_msgs, bad_bytes) = self.damage.pending_totals();
        StreamState {
            msgs: self.core.msgs().saturating_sub(bad_msgs),
            bytes: self.core.bytes().saturating_sub(bad_bytes),
            first_seq,
            first_ts,
            last_seq: self.core.last_seq(),
            last_ts: self.core.last_ts(),
            num_deleted: self.core.num_deleted(),
            num_subjects: self.core.subjects.len() as u64,
            lost: self.damage.lost(),
        }
    }

    fn deleted(&self) -> Vec<u64> {
        self.core.deleted()
    }

    fn config(&self) -> &StoreConfig {
        &self.cfg
    }

    fn update_config(&mut self, cfg: StoreConfig) -> Result<(), StoreError> {
        self.settle_damage()?;
        self.cfg = cfg;
        self.expire_inner(now_ns())?;
        self.enforce_limits(None)
    }

    fn expire(&mut self, now: i64) -> Result<u64, StoreError> {
        self.settle_damage()?;
        let n = self.expire_inner(now)?;
        self.backend.after_removals(&mut self.core)?;
        Ok(n)
    }

    fn next_expiry(&self) -> Option<i64> {
        let age = self.cfg.age_limit_ns()?;
        let (_, slot) = self.core.first()?;
        Some(slot.ts.saturating_add(age))
    }

    fn sync(&mut self) -> Result<(), StoreError> {
        self.settle_damage()?;
        self.backend.sync(&self.core)
    }

    fn checkpoint(&mut self) -> Result<(), StoreError> {
        self.settle_damage()?;
        self.backend.close(&self.core)
    }
}
