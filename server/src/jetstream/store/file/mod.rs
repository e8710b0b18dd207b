//! The file store: append-only block files with per-record checksums, an
//! in-memory sequence index, crash recovery and per-block index files for fast opens.
//!
//! Owns every file in its directory (`*.blk`, `*.idx`, `subjects.sum`,
//! `index.snap`, `*.tmp`).
//! Does not own stream/consumer configuration (see `meta`) or consumer state.
//!
//! # On-disk format (all integers little-endian)
//!
//! ## Directory
//! ```text
//! <dir>/0000000001.blk   block files, ids increasing with sequence, 10-digit names
//! <dir>/0000000001.idx   optional index of the block with the same id
//! <dir>/subjects.sum     optional subject summary, written at a clean stop
//! <dir>/index.snap       optional whole-store index snapshot (written by earlier releases)
//! <dir>/*.tmp            leftovers of an interrupted compaction/index write (removed on open)
//! ```
//!
//! ## Block file
//! A 40-byte header, then records back to back. A block is rolled over when the
//! next record would take it past `block_size` (a block holds at least one record).
//! ```text
//! off len field
//!   0   8 magic "RILLBLK\0"
//!   8   4 version = 1
//!  12   4 reserved = 0
//!  16   8 first_seq: the sequence the block was started for. An empty block
//!         still records that every sequence below first_seq was assigned.
//!  24   8 prev_ts: timestamp of the message at first_seq - 1 (0 if none), so
//!         the last timestamp survives purges like the last sequence does
//!  32   4 crc32 of bytes 0..32
//!  36   4 reserved = 0
//! ```
//!
//! ## Record (`L` = 32 + S + H + P bytes)
//! ```text
//! off   len field
//!   0     4 L: total record length (including this field and the crc)
//!   4     1 state: 0xA5 live, 0x5A deleted, 0xC3 sequence marker. NOT covered by
//!           the crc, so a delete is a 1-byte in-place write; any other value is damage
//!   5     1 reserved = 0
//!   6     2 S: subject length
//!   8     4 H: header block length (0 = no headers)
//!  12     8 seq
//!  20     8 ts: ns since the Unix epoch
//!  28     S subject (UTF-8)
//!  28+S   H header block (`NATS/1.0\r\n...\r\n\r\n`)
//!  28+S+H P payload
//!  L-4    4 crc32 of bytes 0..4 and 5..L-4
//! ```
//! A deleted record may also be *erased*: subject, headers and payload zeroed and
//! the crc recomputed. A marker (S = H = P = 0) records a `skip_msgs` up to `seq`;
//! its ts is the last message's timestamp.
//!
//! ## Block index (`<id>.idx`), version 2
//! A head, then the entries, each with its own checksum, so an open reads the
//! head only.
//! ```text
//!   0   8 magic "RILLBIX\x02"
//!   8   4 H: length of the head (these fields, the subjects and the head's crc)
//!  12   4 block id
//!  16   8 first_seq, 24 8 prev_ts: the block's header, as it was
//!  32   8 len: the bytes of the block it describes (a prefix if the block grew)
//!  40   8 last_seq, 48 8 last_ts: the highest sequence recorded in those
//!         bytes (markers and deleted records included) and its timestamp
//!  56   8 live messages M, 64 8 their accounted bytes, 72 8 their record bytes
//!  80   8 first live sequence, 88 8 last live sequence
//!  96   4 offset, 100 4 length: the record of the last live sequence
//! 104   4 number of subjects N, then N× { u16 length, bytes, varint messages,
//!         varint first sequence - first_seq, varint last sequence - first_seq }
//! H-4   4 crc32 of bytes 0..H-4
//!   H   M entries in sequence order: the delta-coded entries of the snapshot
//!         below, block ids all equal
//!   .   4 crc32 of the entries
//! ```
//! Version 1 (`RILLBIX\x01`, written by earlier releases, still read) has no
//! counts, last-record place or per-subject figures in its head, a LEB128
//! entry count before the entries, and one crc32 over the whole file.
//!
//! It lists the live messages in the first `len` bytes. It is written when the
//! block is sealed (at the first sync after the store rolled over to a new
//! block: the rotation checkpoint), for every block without a current one at a
//! clean stop, and at a sync for the blocks changed since they were indexed
//! when the index cache is over its bound. It is not fsynced (written only
//! after the block's bytes were; a lost or torn one just means a scan). Before
//! a delete is written into the bytes it describes, and before a compaction, it
//! is removed and the directory synced, so a valid index never describes a
//! changed block. At open its head is adopted only if its crc holds, the
//! block's header is the one it records, the block is at least `len` long, its
//! first live message continues the blocks before and its last live record
//! validates; bytes after `len` are scanned (the entries are then read at
//! once). An index that is not adopted is removed (durably) at open. The
//! entries are read when one of the block's messages is first used; if their
//! crc or their sums do not match the head, the block is scanned instead.

//! ## Subject summary (`subjects.sum`), version 1
//! Every subject's figures for the whole store, written at a clean stop after
//! the block indexes (when every block has a current one; otherwise an older
//! summary is removed), not fsynced.
//! ```text
//!   0   8 magic "RILLSUB\x01"
//!   8   4 number of blocks B, then B× the stamp of the block's index: the
//!         first 108 bytes of its head (magic to subject count) and the head's
//!         crc32 (112 bytes)
//!   .   4 number of subjects N, then N× { u16 length, bytes, varint messages,
//!         varint first sequence, varint last sequence - first sequence }
//!   .   4 crc32 of everything before
//! ```
//! An open uses it only if its crc holds, the block files are exactly the
//! blocks it lists, in order, each with an index file whose stamp is the one
//! listed and a block as the index describes it (header, length, last live
//! record), and its subjects count the blocks' messages; then no block's
//! subject list is read. Otherwise it is ignored (see `summary`).

//! ## Index snapshot (`index.snap`, read only)
//! Earlier releases wrote one whole-store snapshot at a clean stop instead of
//! block indexes. It is still used when present (the checks below), and block
//! indexes found beside it are removed; the next clean stop writes block indexes
//! and removes it.
//! ```text
//!   0   8 magic "RILLIDX\x02" (version 2; "RILLIDX\x01", version 1, is still read)
//!   8   4 number of blocks B
//!  12   8 last_seq
//!  20   8 last_ts
//!  28  B× { id u32, first_seq u64, prev_ts i64, len u64, live_msgs u64, live_bytes u64,
//!          last_seq u64 } (52 bytes)
//!   .   4 number of subjects N, then N× { u16 length, bytes }
//!   .   8 number of messages M, then M entries in sequence order (below)
//!   .   4 crc32 of everything before
//! ```
//! A version 2 entry is seven LEB128 varints, each relative to the entry before
//! (all fields zero before the first), about 8 bytes for a small message:
//! sequence increase, subject index, timestamp difference (zigzag), accounted
//! size, block id increase, offset minus where the previous record ended in the
//! same block (or minus 40, the header, in a new block; zigzag), and record
//! length minus size (zigzag). A version 1 entry is fixed: { seq u64, subject
//! index u32, ts i64, size u32, block id u32, offset u32, record length u32 }
//! (36 bytes).
//! It describes a prefix of the blocks. It is used only if its crc holds, its
//! blocks are exactly the first block files on disk with the same headers and
//! lengths (the last listed one may have grown), and the newest record it lists
//! validates. Bytes appended after it are scanned. Before any change that is not
//! an append (delete, purge, compaction), the snapshot file is removed durably,
//! so a stale snapshot is never trusted. A snapshot that is not used is removed.
//!
//! # What is read at open
//! After a clean stop, with a usable subject summary: the summary (10–20
//! bytes per subject), then per block its index's stamp (112 bytes), the
//! block's header and length, and its last live record: O(blocks + subjects).
//! Otherwise the directory listing; then per block, with a usable index: the
//! index's head (a few hundred bytes, plus 10–20 per subject in the block),
//! the block's header and length, and its last live record; if the block grew
//! after it was indexed, also the index's entries and the bytes appended after
//! what it describes. Without a usable index, the whole block (every record
//! checked). After SIGKILL, every block sealed before the last sync has a
//! usable index (after a power loss, those whose index reached the disk), so
//! only the blocks written since the last rotation are scanned: O(blocks ×
//! subjects per block), not O(messages). Either way an open holds no
//! per-message state for adopted blocks: the `Core` keeps each block's
//! summary and the subjects' state, and reads a block's entries (32 bytes a
//! message in memory) when one of its messages is first used. Two messages are
//! read without their block's entries: the last one (its record was read and
//! checked by the open, so the stream's open path reads it alone) and the
//! first one's time for the stream's state (its place from the first entry of
//! the block's index, its record read and checked; anything amiss and the
//! entries are loaded instead). So a restarted stream answers `STREAM.INFO`
//! having read no block's entries.
//!
//! # Index cache
//! At most `StoreConfig::index_cache` bytes (default 4 MiB, 128 Ki messages, per
//! stream) of entries of indexed blocks stay in memory; beyond it the least
//! recently used block's entries are dropped (and read again from its index
//! when needed). Entries of blocks changed since they were indexed (the active
//! block, blocks with deletes) are kept until the next sync writes their index
//! again (only when the cache is over its bound). The records of adopted blocks
//! are trusted for *where* they are, not for their bytes: the first load from
//! such a block reads the whole block once and checks every record the index
//! places in it (`verify`).

//! # Damage
//! A record that fails validation costs that record only:
//! - in a scan, the next valid record with a higher sequence is found by
//!   resynchronising byte by byte; the sequences in between are lost;
//! - found by a load (block verification, or bit rot while running), the message
//!   is skipped by every load from then on and taken out of the index at the next
//!   change.
//!
//! - found when a lazily loaded block's index entries fail and the scan that
//!   replaces them cannot read a record the index head counted: the unreadable
//!   ranges are lost; the counts and subjects are recomputed at the next change.
//!
//! Either way the loss is logged once and reported in `StreamState::lost`. A
//! checksummed block index (or snapshot) that does not match its block still
//! tells the rebuild which listed messages are gone (all reported) and the last
//! sequence (never reused, kept on disk by a marker record). An unreadable tail of the last block
//! after a crash is a torn write and is truncated (not reported: it was never
//! acknowledged, or cannot be told apart from such a write). Damaged block
//! headers are scanned past. Nothing is deleted because it looks odd.

mod adopt;
mod block;
mod blockidx;
mod durable;
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) mod fuzz;
mod index;
mod lazy;
mod ops;
pub(crate) mod record;
mod recovery;
mod summary;
mod verify;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use self::block::Block;
use super::core::{Core, Placed, Slot};
use super::generic::{Backend, Store};
use super::types::{StoreConfig, StoreError, StoredMsg, file_msg_size};
use super::vfs::SharedVfs;

/// Where a message's record is: block id, offset and length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileLoc {
    pub(crate) blk: u32,
    pub(crate) off: u32,
    pub(crate) len: u32,
}

impl Placed for FileLoc {
    /// A block is a segment of the index.
    fn unit(&self) -> u32 {
        self.blk
    }
}

/// The last read-ahead window of one block.
#[derive(Debug, Default)]
struct ReadCache {
    blk: u32,
    off: u64,
    buf: Bytes,
}

impl ReadCache {
    fn get(&self, loc: FileLoc) -> Option<Bytes> {
        let start = usize::try_from(u64::from(loc.off).checked_sub(self.off)?).ok()?;
        let end = start.checked_add(loc.len as usize)?;
        (loc.blk == self.blk && end <= self.buf.len()).then(|| self.buf.slice(start..end))
    }
}

#[derive(Debug, Clone, Copy)]
struct PendingDelete {
    loc: FileLoc,
    erase: bool,
}

/// Backend that keeps messages in block files.
pub struct FileBackend {
    vfs: SharedVfs,
    dir: PathBuf,
    blocks: Vec<Block>,
    wbuf: Vec<u8>,
    block_size: u64,
    pending: Vec<PendingDelete>,
    touched: BTreeSet<u32>,
    dirty: BTreeSet<u32>,
    dir_dirty: bool,
    snapshot_on_disk: bool,
    last_ts: i64,
    /// Sequence ranges the scan at open found lost (handed to the store's damage report).
    lost: Vec<(u64, u64)>,
    /// A block's unreadable tail was skipped after this sequence; the next
    /// block's first sequence closes the lost range.
    lost_tail_after: Option<u64>,
    /// Highest last sequence and time recorded by a checksummed index (the
    /// snapshot or a block's), even one that no longer matches the blocks:
    /// sequences never go back below it.
    snapshot_floor: Option<(u64, i64)>,
    /// Sequences listed by checksummed indexes (the snapshot, or a block's) that
    /// did not match the blocks, kept until the rebuild to tell which were lost.
    rejected: Vec<u64>,
    /// Blocks sealed (no longer active) whose index file is not written yet:
    /// the next sync writes them (the rotation checkpoint).
    sealed: Vec<u32>,
    /// Written but not yet proven durable (see `durable`).
    unsynced: durable::Unsynced,
    /// The open took the subjects from the subject summary (see `summary`).
    from_summary: bool,
    cache: std::cell::RefCell<ReadCache>,
}

/// A stream store on disk.
pub type FileStore = Store<FileBackend>;

/// Flush the write buffer once it holds this much.
const WBUF_FLUSH: usize = 1024 * 1024;
/// Apply deferred deletes once this many are queued.
const PENDING_MAX: usize = 4096;
/// Largest block size honoured (offsets are 32-bit).
const MAX_BLOCK_SIZE: u64 = 1 << 30;
/// Read-ahead window for loads.
const READ_WINDOW: u64 = 64 * 1024;
/// Bytes of memory one index slot takes (see `core`).
const SLOT_BYTES: usize = 32;
/// Smallest block size honoured.
const MIN_BLOCK_SIZE: u64 = 256;

impl FileStore {
    /// Opens (or creates) the file store in `dir`, recovering what is there.
    ///
    /// # Errors
    /// I/O errors. Damaged data is not an error: it is logged and skipped.
    pub fn open(dir: &Path, cfg: StoreConfig, vfs: SharedVfs) -> Result<Self, StoreError> {
        let block_size = cfg.block_size.clamp(MIN_BLOCK_SIZE, MAX_BLOCK_SIZE);
        let mut backend = FileBackend {
            vfs,
            dir: dir.to_path_buf(),
            blocks: Vec::new(),
            wbuf: Vec::new(),
            block_size,
            pending: Vec::new(),
            touched: BTreeSet::new(),
            dirty: BTreeSet::new(),
            dir_dirty: false,
            snapshot_on_disk: false,
            last_ts: 0,
            lost: Vec::new(),
            lost_tail_after: None,
            snapshot_floor: None,
            rejected: Vec::new(),
            sealed: Vec::new(),
            unsynced: durable::Unsynced::default(),
            from_summary: false,
            cache: Default::default(),
        };
        let mut core = backend.recover()?;
        core.set_loader(Box::new(lazy::IdxLoader {
            vfs: backend.vfs.clone(),
            dir: backend.dir.clone(),
        }));
        core.set_cache_max(cfg.index_cache / SLOT_BYTES);
        backend.last_ts = core.last_ts();
        // Reclaim blocks a crash left empty or thin (done by the limit pass below).
        backend.touched = backend.blocks.iter().map(|b| b.id).collect();
        let lost = std::mem::take(&mut backend.lost);
        let mut store = Store::from_parts(core, backend, cfg);
        for (first, last) in lost {
            store.damage.lost_range(first, last);
        }
        store.enforce_after_open()?;
        store.backend.keep_cache(&store.core);
        Ok(store)
    }

    /// Number of block files (for tests and monitoring).
    pub fn block_count(&self) -> usize {
        self.backend.blocks.len()
    }

    /// Blocks adopted from an index and not yet verified (tests).
    #[cfg(test)]
    pub(crate) fn unverified_blocks(&self) -> usize {
        self.backend
            .blocks
            .iter()
            .filter(|b| !b.verified.get())
            .count()
    }

    /// Writes an index snapshot as earlier releases did at a clean stop (tests
    /// of opening their stores).
    #[cfg(test)]
    pub(crate) fn write_legacy_snapshot(&mut self) -> Result<(), StoreError> {
        self.backend.sync_all()?;
        self.backend.write_snapshot(&self.core)
    }

    /// Blocks with a current index file (tests).
    #[cfg(test)]
    pub(crate) fn indexed_blocks(&self) -> usize {
        self.backend
            .blocks
            .iter()
            .filter(|b| b.indexed == b.len)
            .count()
    }

    /// The open took the subjects from the subject summary (tests).
    #[cfg(test)]
    pub(crate) fn opened_from_summary(&self) -> bool {
        self.backend.from_summary
    }

    /// Blocks whose index entries are in memory (tests).
    #[cfg(test)]
    pub(crate) fn loaded_blocks(&self) -> usize {
        self.core.loaded_segments()
    }

    /// Forgets read-ahead bytes, so the next load reads the file (tests).
    #[cfg(test)]
    pub(crate) fn drop_read_cache(&self) {
        self.backend.drop_cache();
    }

    fn enforce_after_open(&mut self) -> Result<(), StoreError> {
        let cfg = self.cfg.clone();
        super::StreamStore::update_config(self, cfg)
    }
}

impl FileBackend {
    fn block_index(&self, id: u32) -> Option<usize> {
        self.blocks.binary_search_by_key(&id, |b| b.id).ok()
    }

    fn read_record(&self, loc: FileLoc) -> Result<Bytes, StoreError> {
        let idx = self
            .block_index(loc.blk)
            .ok_or_else(|| StoreError::Corrupt(format!("block {} missing", loc.blk)))?;
        let b = &self.blocks[idx];
        let (off, len) = (u64::from(loc.off), loc.len as usize);
        if idx + 1 == self.blocks.len() && off >= b.flushed {
            let start = usize::try_from(off - b.flushed).unwrap_or(usize::MAX);
            let rec = self.wbuf.get(start..start + len).ok_or_else(|| {
                StoreError::Corrupt(format!("record at {off} beyond write buffer"))
            })?;
            return Ok(Bytes::copy_from_slice(rec));
        }
        let sequential = {
            let c = self.cache.borrow();
            if let Some(rec) = c.get(loc) {
                return Ok(rec);
            }
            let end = c.off + c.buf.len() as u64;
            c.blk == loc.blk && off >= end && off - end <= READ_WINDOW
        };
        // Read ahead only when loads walk forward (consumer delivery, replay):
        // one read per window instead of one per message. Random loads read
        // just the record.
        let window = if sequential {
            (len as u64)
                .max(READ_WINDOW)
                .min(b.flushed.saturating_sub(off))
        } else {
            len as u64
        };
        let mut buf = vec![0; usize::try_from(window).unwrap_or(len).max(len)];
        b.file.read_at(off, &mut buf)?;
        let buf = Bytes::from(buf);
        let rec = buf.slice(..len);
        *self.cache.borrow_mut() = ReadCache {
            blk: loc.blk,
            off,
            buf,
        };
        Ok(rec)
    }

    /// Forgets cached block bytes (after a block is rewritten or removed).
    fn drop_cache(&self) {
        *self.cache.borrow_mut() = ReadCache::default();
    }
}

impl std::fmt::Debug for FileBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileBackend")
            .field("dir", &self.dir)
            .field("blocks", &self.blocks.len())
            .field("buffered", &self.wbuf.len())
            .field("pending_deletes", &self.pending.len())
            .finish()
    }
}

impl Drop for FileBackend {
    /// Best effort: hand buffered appends and deletes to the OS (not fsynced).
    /// Durability is only ever promised by `sync()`.
    fn drop(&mut self) {
        if let Err(e) = self.apply_pending().and_then(|()| self.flush()) {
            tracing::warn!(dir = %self.dir.display(), error = %e, "file store dropped with unwritten data");
        }
    }
}

impl Backend for FileBackend {
    type Loc = FileLoc;

    fn msg_size(&self, subj: usize, hdr: usize, payload: usize) -> u64 {
        file_msg_size(subj, hdr, payload)
    }

    fn write(
        &mut self,
        seq: u64,
        ts: i64,
        subj: &str,
        hdr: &[u8],
        payload: &[u8],
    ) -> Result<FileLoc, StoreError> {
        let loc = self.append_record(seq, ts, subj, hdr, payload)?;
        self.last_ts = ts;
        Ok(loc)
    }

    fn read(
        &self,
        seq: u64,
        subject: Bytes,
        slot: &Slot<FileLoc>,
    ) -> Result<StoredMsg, StoreError> {
        let rec = self.read_record(slot.loc)?;
        let v = record::parse(&rec).map_err(|e| {
            StoreError::Corrupt(format!("record of seq {seq} failed validation ({e:?})"))
        })?;
        if v.seq != seq || v.state != record::STATE_LIVE || rec[v.subj.clone()] != subject[..] {
            return Err(StoreError::Corrupt(format!(
                "record of seq {seq} does not match the index"
            )));
        }
        Ok(StoredMsg {
            seq,
            ts: v.ts,
            subject,
            headers: (!v.hdr.is_empty()).then(|| rec.slice(v.hdr.clone())),
            payload: rec.slice(v.payload),
        })
    }

    fn remove(&mut self, _seq: u64, loc: &FileLoc, erase: bool) -> Result<(), StoreError> {
        if let Some(i) = self.block_index(loc.blk) {
            let b = &mut self.blocks[i];
            b.live_msgs = b.live_msgs.saturating_sub(1);
            b.live_bytes = b.live_bytes.saturating_sub(u64::from(loc.len));
        }
        self.pending.push(PendingDelete { loc: *loc, erase });
        self.touched.insert(loc.blk);
        Ok(())
    }

    fn after_removals(&mut self, core: &mut Core<FileLoc>) -> Result<(), StoreError> {
        self.reclaim(core)?;
        if self.pending.len() >= PENDING_MAX {
            self.apply_pending()?;
        }
        Ok(())
    }

    fn reset(&mut self, next_seq: u64) -> Result<(), StoreError> {
        self.reset_blocks(next_seq)
    }

    fn skip(&mut self, last: u64) -> Result<(), StoreError> {
        self.append_marker(last)
    }

    fn sync(&mut self, core: &Core<FileLoc>) -> Result<(), StoreError> {
        self.sync_all()?;
        self.index_sealed(core);
        self.keep_cache(core);
        Ok(())
    }

    fn close(&mut self, core: &Core<FileLoc>) -> Result<(), StoreError> {
        self.sync_all()?;
        for i in 0..self.blocks.len() {
            self.write_block_index(i, core);
        }
        self.write_summary(core);
        // An earlier release's snapshot: the block indexes replace it.
        self.invalidate_snapshot()
    }

    fn writable(&mut self) -> Result<(), StoreError> {
        if self.needs_retry() {
            self.sync_all()?;
        }
        Ok(())
    }

    fn verify(&self, core: &Core<FileLoc>, slot: &Slot<FileLoc>) -> Vec<u64> {
        self.verify_block(core, slot.loc.blk)
    }
}
