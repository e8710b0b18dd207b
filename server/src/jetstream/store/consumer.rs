//! Consumer state: delivered and ack-floor sequences, pending acks and
//! redelivery counts, kept in memory or persisted as a small append-only log.
//!
//! Owns `state.log` in a consumer directory. Does not own the consumer's config
//! (see `meta`) nor its delivery logic.
//!
//! # Why a log
//! Every delivery and ack changes the state. Rewriting the whole state file
//! atomically costs O(pending) bytes plus two fsyncs per update; appending a
//! 30-byte record costs O(1) and is made durable by the owner's `sync()`
//! together with everything else in the batch. When the log grows past
//! `max(64 KiB, 4 × full state)`, it is rewritten as one full-state record
//! (tmp, fsync, rename, fsync dir).
//!
//! # `state.log` format (little-endian)
//! Records back to back: `len u32` (whole record), `kind u8`, body, `crc32 u32`
//! of everything before it in the record.
//! - kind 1, delivered: `dseq u64, sseq u64, delivery_count u64, ts i64`
//! - kind 2, ack: `dseq u64, sseq u64`
//! - kind 3, full state: `delivered (dseq u64, sseq u64), ack_floor (dseq u64,
//!   sseq u64), n u64, n × (sseq u64, dseq u64, ts i64), m u64, m × (sseq u64, count u64)`
//!
//! Replay stops at the first record that does not validate. Records are deltas,
//! so nothing after that point can be applied safely; the state before it is at
//! or behind the real one, and resuming from it only means redelivery (acks and
//! deliveries after it are forgotten; an unacknowledged message is never skipped).
//! A torn tail (nothing valid follows) is truncated; damage (whole, checksummed
//! records follow) keeps the file as `state.log.damaged`, starts a new log from
//! the state before the damage, and is logged as an error with that state. A
//! checksummed record of an unknown kind (a newer format) refuses the open.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tracing::{error, warn};

use super::types::StoreError;
use super::vfs::{SharedVfs, VFile};

/// A (consumer sequence, stream sequence) pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SequencePair {
    /// Consumer (delivery) sequence.
    pub consumer: u64,
    /// Stream sequence.
    pub stream: u64,
}

/// A delivered, not yet acknowledged message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingAck {
    /// Consumer sequence of its last delivery.
    pub consumer_seq: u64,
    /// Time of its last delivery (ns since the epoch).
    pub ts: i64,
}

/// Everything a consumer needs to resume after a restart.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConsumerState {
    /// Highest delivered pair.
    pub delivered: SequencePair,
    /// Everything at or below this pair is acknowledged.
    pub ack_floor: SequencePair,
    /// Pending acks by stream sequence.
    pub pending: BTreeMap<u64, PendingAck>,
    /// Redelivery counts by stream sequence (deliveries beyond the first).
    pub redelivered: BTreeMap<u64, u64>,
}

impl ConsumerState {
    /// Records a delivery (`dc` = delivery count, 1 for the first).
    pub fn apply_delivered(&mut self, dseq: u64, sseq: u64, dc: u64, ts: i64) {
        if dseq > self.delivered.consumer {
            self.delivered.consumer = dseq;
        }
        if sseq > self.delivered.stream {
            self.delivered.stream = sseq;
        }
        if sseq <= self.ack_floor.stream {
            return;
        }
        self.pending.insert(
            sseq,
            PendingAck {
                consumer_seq: dseq,
                ts,
            },
        );
        if dc > 1 {
            self.redelivered.insert(sseq, dc - 1);
        }
    }

    /// Records an ack of stream sequence `sseq` (delivered as `dseq`).
    pub fn apply_ack(&mut self, _dseq: u64, sseq: u64) {
        if self.pending.remove(&sseq).is_none() {
            return;
        }
        self.redelivered.remove(&sseq);
        let floor = match self.pending.iter().next() {
            None => self.delivered,
            Some((&s, p)) => SequencePair {
                consumer: p.consumer_seq.saturating_sub(1),
                stream: s - 1,
            },
        };
        self.ack_floor.consumer = self.ack_floor.consumer.max(floor.consumer);
        self.ack_floor.stream = self.ack_floor.stream.max(floor.stream);
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let d = self.delivered;
        let a = self.ack_floor;
        for v in [
            d.consumer,
            d.stream,
            a.consumer,
            a.stream,
            self.pending.len() as u64,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for (s, p) in &self.pending {
            for v in [*s, p.consumer_seq, p.ts as u64] {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        out.extend_from_slice(&(self.redelivered.len() as u64).to_le_bytes());
        for (s, c) in &self.redelivered {
            out.extend_from_slice(&s.to_le_bytes());
            out.extend_from_slice(&c.to_le_bytes());
        }
    }

    fn decode(body: &[u8]) -> Option<Self> {
        let mut it = body.chunks_exact(8).map(|c| {
            let mut a = [0; 8];
            a.copy_from_slice(c);
            u64::from_le_bytes(a)
        });
        let mut st = ConsumerState {
            delivered: SequencePair {
                consumer: it.next()?,
                stream: it.next()?,
            },
            ack_floor: SequencePair {
                consumer: it.next()?,
                stream: it.next()?,
            },
            ..Self::default()
        };
        for _ in 0..it.next()? {
            let (s, c, ts) = (it.next()?, it.next()?, it.next()? as i64);
            st.pending.insert(
                s,
                PendingAck {
                    consumer_seq: c,
                    ts,
                },
            );
        }
        for _ in 0..it.next()? {
            st.redelivered.insert(it.next()?, it.next()?);
        }
        (it.next().is_none() && body.len().is_multiple_of(8)).then_some(st)
    }
}

/// Storage for one consumer's state.
pub trait ConsumerStore: Send + Debug {
    /// Records a delivery (`dc` = delivery count, 1 for the first).
    ///
    /// # Errors
    /// I/O errors.
    fn update_delivered(
        &mut self,
        dseq: u64,
        sseq: u64,
        dc: u64,
        ts: i64,
    ) -> Result<(), StoreError>;
    /// Records an ack.
    ///
    /// # Errors
    /// I/O errors.
    fn update_ack(&mut self, dseq: u64, sseq: u64) -> Result<(), StoreError>;
    /// Replaces the whole state (consumer reset, ack-all).
    ///
    /// # Errors
    /// I/O errors.
    fn set_state(&mut self, state: ConsumerState) -> Result<(), StoreError>;
    /// The current state.
    fn state(&self) -> &ConsumerState;
    /// Makes every update so far durable.
    ///
    /// # Errors
    /// I/O errors.
    fn sync(&mut self) -> Result<(), StoreError>;
    /// Writes every update so far to the file without waiting for the disk, and
    /// hands back the file whose `sync` makes them durable (`None`: nothing is
    /// owed). The caller fsyncs it off its own task, so delivery does not wait for
    /// the disk; a later [`ConsumerStore::sync`] still waits for everything.
    ///
    /// # Errors
    /// I/O errors.
    fn write_out(&mut self) -> Result<Option<Arc<dyn VFile>>, StoreError> {
        self.sync().map(|()| None)
    }
    /// For a store whose sync only starts making the state durable elsewhere (a
    /// replicated consumer's group): a receiver that fires once every update so far,
    /// and those up to the next sync, is durable. `None`: a sync is enough.
    fn commit_wait(&mut self) -> Option<tokio::sync::oneshot::Receiver<()>> {
        None
    }
}

/// Consumer state kept in memory only (for memory streams).
#[derive(Debug, Default)]
pub struct MemConsumerStore {
    state: ConsumerState,
}

impl MemConsumerStore {
    /// An empty state.
    pub fn new() -> Self {
        Self::default()
    }
}

impl ConsumerStore for MemConsumerStore {
    fn update_delivered(
        &mut self,
        dseq: u64,
        sseq: u64,
        dc: u64,
        ts: i64,
    ) -> Result<(), StoreError> {
        self.state.apply_delivered(dseq, sseq, dc, ts);
        Ok(())
    }
    fn update_ack(&mut self, dseq: u64, sseq: u64) -> Result<(), StoreError> {
        self.state.apply_ack(dseq, sseq);
        Ok(())
    }
    fn set_state(&mut self, state: ConsumerState) -> Result<(), StoreError> {
        self.state = state;
        Ok(())
    }
    fn state(&self) -> &ConsumerState {
        &self.state
    }
    fn sync(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
}

pub(super) const KIND_DELIVERED: u8 = 1;
pub(super) const KIND_ACK: u8 = 2;
const KIND_FULL: u8 = 3;
pub(crate) use super::meta::LOG_NAME;
const COMPACT_MIN: u64 = 64 * 1024;

/// Consumer state persisted as an append-only log in the consumer directory.
#[derive(Debug)]
pub struct FileConsumerStore {
    vfs: SharedVfs,
    dir: PathBuf,
    file: Arc<dyn VFile>,
    len: u64,
    buf: Vec<u8>,
    /// Written since the last fsync.
    dirty: bool,
    /// Handed to a caller to fsync ([`ConsumerStore::write_out`]) since the last
    /// [`ConsumerStore::sync`], which therefore fsyncs too, not knowing whether the
    /// caller's has finished.
    handed_out: bool,
    state: ConsumerState,
}

pub(super) fn push_record(out: &mut Vec<u8>, kind: u8, body: &[u8]) {
    let start = out.len();
    let len = (body.len() + 9) as u32;
    out.extend_from_slice(&len.to_le_bytes());
    out.push(kind);
    out.extend_from_slice(body);
    let crc = crc32fast::hash(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
}

pub(super) fn u64s(vals: &[u64]) -> Vec<u8> {
    vals.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// What replaying a state log found.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Replayed {
    /// The state of the valid prefix.
    pub(crate) state: ConsumerState,
    /// Length of the valid prefix.
    pub(crate) good: usize,
    /// Whole, checksummed records follow the first invalid one: the log was
    /// damaged where it stops, not torn by a crash while appending.
    pub(crate) damaged: bool,
    /// A whole, checksummed record of a kind this version does not know (a
    /// newer format) stopped the replay.
    pub(crate) newer_kind: Option<u8>,
}

/// A checksummed record at the start of `data`: (length, kind, body).
fn record_at(data: &[u8]) -> Option<(usize, u8, &[u8])> {
    let h = data.get(..4)?;
    let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
    let rec = data.get(..len).filter(|_| len >= 9)?;
    let crc = u32::from_le_bytes([rec[len - 4], rec[len - 3], rec[len - 2], rec[len - 1]]);
    (crc32fast::hash(&rec[..len - 4]) == crc).then(|| (len, rec[4], &rec[5..len - 4]))
}

/// Replays a log up to its first record that does not validate.
pub(crate) fn replay(data: &[u8]) -> Replayed {
    let mut out = Replayed::default();
    let mut pos = 0;
    while let Some((len, kind, body)) = record_at(&data[pos..]) {
        if kind > KIND_FULL {
            out.newer_kind = Some(kind);
            break;
        }
        if !apply(&mut out.state, kind, body) {
            break;
        }
        pos += len;
    }
    out.good = pos;
    out.damaged =
        out.newer_kind.is_none() && (pos + 1..data.len()).any(|at| whole_record_at(&data[at..]));
    out
}

/// A cheap look for a whole, checksummed record of a known kind at the start of
/// `data` (the lengths of the fixed-size kinds are checked before the checksum).
fn whole_record_at(data: &[u8]) -> bool {
    let (Some(h), Some(&kind)) = (data.get(..4), data.get(4)) else {
        return false;
    };
    let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
    let plausible = match kind {
        KIND_DELIVERED => len == 9 + 32,
        KIND_ACK => len == 9 + 16,
        KIND_FULL => len >= 9 + 48 && len <= data.len(),
        _ => false,
    };
    plausible && record_at(data).is_some()
}

fn apply(st: &mut ConsumerState, kind: u8, body: &[u8]) -> bool {
    let v: Vec<u64> = body
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
        .collect();
    match (kind, v.as_slice()) {
        (KIND_DELIVERED, [d, s, dc, ts]) => st.apply_delivered(*d, *s, *dc, *ts as i64),
        (KIND_ACK, [d, s]) => st.apply_ack(*d, *s),
        (KIND_FULL, _) => match ConsumerState::decode(body) {
            Some(full) => *st = full,
            None => return false,
        },
        _ => return false,
    }
    true
}

impl FileConsumerStore {
    /// Opens (or creates) the state log in `dir`, replaying it.
    ///
    /// # Errors
    /// I/O errors; `Corrupt` naming the file for a record of a newer format.
    /// Damage is repaired and logged, not an error (see the module docs).
    pub fn open(dir: &Path, vfs: SharedVfs) -> Result<Self, StoreError> {
        vfs.create_dir_all(dir)?;
        let path = dir.join(LOG_NAME);
        let existed = vfs.exists(&path);
        let file: Arc<dyn VFile> = Arc::from(vfs.open(&path, true)?);
        if !existed {
            file.sync()?;
            vfs.sync_dir(dir)?;
        }
        let flen = file.len()?;
        let mut data = vec![0; usize::try_from(flen).unwrap_or(0)];
        file.read_at(0, &mut data)?;
        let r = replay(&data);
        if let Some(kind) = r.newer_kind {
            return Err(StoreError::Corrupt(format!(
                "{} holds a record of kind {kind}, from a newer format version than this \
                 server's; left untouched: run a rill version that reads it",
                path.display()
            )));
        }
        let mut store = Self {
            vfs,
            dir: dir.to_path_buf(),
            file,
            len: r.good as u64,
            buf: Vec::new(),
            dirty: false,
            handed_out: false,
            state: r.state,
        };
        if (r.good as u64) < flen {
            store.recover_from_damage(&path, r.good as u64, flen, r.damaged)?;
        }
        Ok(store)
    }

    /// The log stops being valid at `good`: a torn tail is cut; damage (valid
    /// records after it) keeps the file as `state.log.damaged` and starts a new
    /// log from the state before the damage. Either way the consumer resumes from
    /// a state that is at or before the real one: what follows is delivered
    /// again, nothing unacknowledged is skipped.
    fn recover_from_damage(
        &mut self,
        path: &Path,
        good: u64,
        flen: u64,
        damaged: bool,
    ) -> Result<(), StoreError> {
        let st = &self.state;
        let (floor, delivered) = (st.ack_floor.stream, st.delivered.stream);
        if !damaged {
            warn!(log = %path.display(), at = good, bytes = flen - good, ack_floor = floor,
                delivered,
                "torn consumer state tail truncated; recent acks may be redelivered");
            self.file.set_len(good)?;
            return Ok(self.file.sync()?);
        }
        let keep = self.dir.join(format!("{LOG_NAME}.damaged"));
        error!(log = %path.display(), at = good, bytes = flen - good, kept_as = %keep.display(),
            ack_floor = floor, delivered,
            "consumer state damaged; the consumer is reset to its state before the damage: \
             messages after the ack floor that are not acked there are delivered again");
        self.vfs.rename(path, &keep)?;
        self.rewrite()
    }

    fn full_record(&self) -> Vec<u8> {
        let mut body = Vec::new();
        self.state.encode(&mut body);
        let mut out = Vec::new();
        push_record(&mut out, KIND_FULL, &body);
        out
    }

    fn rewrite(&mut self) -> Result<(), StoreError> {
        let data = self.full_record();
        let path = self.dir.join(LOG_NAME);
        super::meta::write_atomic(self.vfs.as_ref(), &path, &data)?;
        self.file = Arc::from(self.vfs.open(&path, false)?);
        self.len = data.len() as u64;
        self.buf.clear();
        self.dirty = false;
        self.handed_out = false;
        Ok(())
    }

    /// Appends the buffered records; true when the log was rewritten instead
    /// (compaction, durable by itself).
    fn append_buffered(&mut self) -> Result<bool, StoreError> {
        if !self.buf.is_empty() {
            self.file.write_at(self.len, &self.buf)?;
            self.len += self.buf.len() as u64;
            self.buf.clear();
            self.dirty = true;
        }
        let full_len = 64 + 24 * (self.state.pending.len() + self.state.redelivered.len()) as u64;
        if self.len > COMPACT_MIN.max(4 * full_len) {
            self.rewrite()?;
            return Ok(true);
        }
        Ok(false)
    }
}

impl ConsumerStore for FileConsumerStore {
    fn update_delivered(
        &mut self,
        dseq: u64,
        sseq: u64,
        dc: u64,
        ts: i64,
    ) -> Result<(), StoreError> {
        self.state.apply_delivered(dseq, sseq, dc, ts);
        push_record(
            &mut self.buf,
            KIND_DELIVERED,
            &u64s(&[dseq, sseq, dc, ts as u64]),
        );
        Ok(())
    }
    fn update_ack(&mut self, dseq: u64, sseq: u64) -> Result<(), StoreError> {
        self.state.apply_ack(dseq, sseq);
        push_record(&mut self.buf, KIND_ACK, &u64s(&[dseq, sseq]));
        Ok(())
    }
    fn set_state(&mut self, state: ConsumerState) -> Result<(), StoreError> {
        self.state = state;
        let rec = self.full_record();
        self.buf.extend_from_slice(&rec);
        Ok(())
    }
    fn state(&self) -> &ConsumerState {
        &self.state
    }
    fn sync(&mut self) -> Result<(), StoreError> {
        if self.append_buffered()? {
            return Ok(());
        }
        if self.dirty || self.handed_out {
            self.file.sync()?;
            self.dirty = false;
            self.handed_out = false;
        }
        Ok(())
    }
    fn write_out(&mut self) -> Result<Option<Arc<dyn VFile>>, StoreError> {
        // `handed_out`: an earlier handed-out fsync may have failed; fsync again.
        if self.append_buffered()? || !(self.dirty || self.handed_out) {
            return Ok(None);
        }
        self.dirty = false;
        self.handed_out = true;
        Ok(Some(Arc::clone(&self.file)))
    }
}
