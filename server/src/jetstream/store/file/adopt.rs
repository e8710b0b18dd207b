//! Adopting a block from its index file at open, and writing block indexes: the
//! [`FileBackend`] side of the index files whose format `blockidx` owns (when an index
//! is written, what an open checks before it trusts one, and what it installs).

use std::num::NonZeroU32;

use tracing::warn;

use super::block::{BLOCK_HDR, Block, Header, Stamp, block_path, decode_header, newer_format};
use super::blockidx::{
    BlockIndex, Head, IDX_EXT, MAGIC_V1, decode, decode_entries, decode_fixed, decode_head, encode,
    idx_path, read_head, read_stamp, stamp_of,
};
use super::record::{self, STATE_LIVE};
use super::{FileBackend, FileLoc};
use crate::jetstream::store::core::{Core, Slot};
use crate::jetstream::store::types::{StoreError, SubjectState, file_msg_size};
use crate::jetstream::store::vfs::VFile;

/// What an index file holds, as far as an open reads it.
enum IdxFile {
    /// Version 1, decoded whole.
    V1(BlockIndex),
    /// Version 2: its head and stamp (the entries are read when needed).
    V2(Head, Stamp),
}

/// What an index says of its block: the header it had (first sequence,
/// previous timestamp), the length indexed, and the last sequence and its time
/// in those bytes.
#[derive(Debug, Clone, Copy)]
struct Described {
    first_seq: u64,
    prev_ts: i64,
    len: u64,
    last_seq: u64,
    last_ts: i64,
}

impl Head {
    fn described(&self) -> Described {
        Described {
            first_seq: self.first_seq,
            prev_ts: self.prev_ts,
            len: self.len,
            last_seq: self.last_seq,
            last_ts: self.last_ts,
        }
    }
}

impl IdxFile {
    fn described(&self) -> Described {
        match self {
            Self::V1(i) => Described {
                first_seq: i.first_seq,
                prev_ts: i.prev_ts,
                len: i.len,
                last_seq: i.last_seq,
                last_ts: i.last_ts,
            },
            Self::V2(h, _) => h.described(),
        }
    }
}

impl FileBackend {
    /// Writes block `i`'s index unless the one on disk is current, when the
    /// block's bytes are durable. Not fsynced (see the module docs); a failure
    /// is logged and leaves the block to be scanned.
    pub(super) fn write_block_index(&mut self, i: usize, core: &Core<FileLoc>) {
        let b = &self.blocks[i];
        let durable = b.flushed == b.len && !self.dirty.contains(&b.id) && !self.needs_retry();
        let current = b.indexed >= b.len && !b.legacy_idx && !core.needs_save(b.id);
        if current || b.len <= BLOCK_HDR as u64 || !durable {
            return;
        }
        let (id, len) = (b.id, b.len);
        let data = encode(b, core);
        let path = idx_path(&self.dir, id);
        let tmp = self.dir.join(format!("{id:010}{IDX_EXT}.tmp"));
        let written = self.vfs.open(&tmp, true).and_then(|f| {
            f.set_len(0)?;
            f.write_at(0, &data)
        });
        match written.and_then(|()| self.vfs.rename(&tmp, &path)) {
            Ok(()) => {
                self.blocks[i].indexed = len;
                self.blocks[i].legacy_idx = false;
                self.blocks[i].stamp = stamp_of(&data);
                core.mark_saved(id);
            }
            Err(e) => {
                warn!(block = id, error = %e, "block index not written; the block will be scanned")
            }
        }
    }

    /// The rotation checkpoint: indexes the blocks sealed since the last sync.
    pub(super) fn index_sealed(&mut self, core: &Core<FileLoc>) {
        for id in std::mem::take(&mut self.sealed) {
            if let Some(i) = self.block_index(id)
                && i + 1 < self.blocks.len()
            {
                self.write_block_index(i, core);
            }
        }
    }

    /// Keeps the index cache within its bound: indexes the sealed blocks whose
    /// entries changed since they were indexed, so they can leave memory, then
    /// drops the least recently used. Call when everything is durable.
    pub(super) fn keep_cache(&mut self, core: &Core<FileLoc>) {
        // The active block does not count: with small messages its entries
        // alone may pass the bound, and indexing the blocks whose messages are
        // being deleted (a work queue's oldest) at every sync would cost an index
        // write and a directory fsync (its removal) each time.
        let active = self.active_id();
        if !core.over_bound(active) {
            return;
        }
        for unit in core.unsaved_units() {
            if Some(unit) != active
                && let Some(i) = self.block_index(unit)
            {
                self.write_block_index(i, core);
            }
        }
        core.trim();
    }

    /// Removes the index files of `ids` that have one; with `durable`, syncs the
    /// directory after (required before the blocks' indexed bytes change).
    pub(super) fn unindex(&mut self, ids: &[u32], durable: bool) -> Result<(), StoreError> {
        let mut removed = false;
        for &id in ids {
            let Some(i) = self.block_index(id) else {
                continue;
            };
            if self.blocks[i].indexed == 0 {
                continue;
            }
            match self.vfs.remove_file(&idx_path(&self.dir, id)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
            self.blocks[i].indexed = 0;
            self.blocks[i].legacy_idx = false;
            self.blocks[i].stamp = None;
            removed = true;
        }
        if removed && durable {
            self.sync_dir()?;
        }
        Ok(())
    }

    /// Reads what an open needs of block `id`'s index file: all of a version 1
    /// index, the head of a version 2 one. `None` when it is missing or does not
    /// decode (logged): the block is scanned then.
    fn read_index(&self, id: u32) -> Option<IdxFile> {
        let data = match read_head(&self.vfs, &idx_path(&self.dir, id), 0) {
            Ok(Some(d)) => d,
            Ok(None) => return None,
            Err(e) => {
                warn!(block = id, error = %e, "block index unreadable; scanning the block");
                return None;
            }
        };
        let decoded = if data.starts_with(MAGIC_V1) {
            decode(data).map(IdxFile::V1)
        } else {
            decode_head(&data).and_then(|h| {
                let stamp = stamp_of(&data).ok_or("index head length")?;
                Ok(IdxFile::V2(h, stamp))
            })
        };
        let id_of = |f: &IdxFile| match f {
            IdxFile::V1(i) => i.id,
            IdxFile::V2(h, _) => h.id,
        };
        decoded
            .inspect_err(|why| warn!(block = id, %why, "block index ignored; scanning the block"))
            .ok()
            .filter(|f| id_of(f) == id)
    }

    /// Adopts block `id` from its index file if it has one that matches the
    /// block: a version 2 index of a block that did not grow since leaves the
    /// block's entries on disk (loaded on first use); otherwise they are read
    /// now and what was appended after the index is scanned. `Ok(false)`: not
    /// adopted (the caller scans the block). A checksummed index that does not
    /// match still tells which messages were lost and the last sequence.
    pub(super) fn adopt_block(
        &mut self,
        id: u32,
        core: &mut Core<FileLoc>,
        is_last: bool,
    ) -> Result<bool, StoreError> {
        let Some(idx) = self.read_index(id) else {
            return Ok(false);
        };
        let d = idx.described();
        let (file, flen, checked) = self.open_indexed(id, d)?;
        let checked = checked.and_then(|()| match &idx {
            IdxFile::V1(i) => check_entries(i, file.as_ref(), core).map(|()| None),
            IdxFile::V2(h, _) => check_head(h, file.as_ref(), core),
        });
        let newest = match checked {
            Ok(newest) => newest,
            Err(why) => {
                warn!(block = id, %why, "block index does not match its block; scanning the block");
                let floor = (d.last_seq, d.last_ts);
                if self.snapshot_floor.is_none_or(|f| f.0 < floor.0) {
                    self.snapshot_floor = Some(floor);
                }
                let listed = self.listed_seqs(&idx);
                self.rejected.extend(listed);
                return Ok(false);
            }
        };
        if let Some(after) = self.lost_tail_after.take()
            && d.first_seq > after + 1
        {
            self.lost.push((after + 1, d.first_seq - 1));
        }
        let mut b = start_indexed(id, d, file, core);
        match idx {
            IdxFile::V1(i) => {
                install(i, &mut b, core);
                b.legacy_idx = true;
            }
            IdxFile::V2(h, stamp) if flen == h.len => {
                adopt_cold(&h, newest, &mut b, core);
                b.stamp = Some(stamp);
            }
            IdxFile::V2(h, _) => {
                if !self.install_entries(&h, &mut b, core) {
                    // Head fine, entries not: the block is scanned whole.
                    return Ok(false);
                }
            }
        }
        end_indexed(&mut b, d, core);
        if flen > b.len {
            self.scan_into(b, core, is_last)?;
        } else {
            self.blocks.push(b);
        }
        Ok(true)
    }

    /// Adopts the block a subject summary stamped, if its index file and the
    /// block are as they were then (its subjects come from the summary). `Err`
    /// says why not; nothing is changed but `core` then.
    pub(super) fn adopt_stamped(
        &mut self,
        stamp: &Stamp,
        core: &mut Core<FileLoc>,
    ) -> Result<(), String> {
        let h = decode_fixed(stamp)?;
        match read_stamp(&self.vfs, &idx_path(&self.dir, h.id)) {
            Ok(s) if s == *stamp => {}
            _ => return Err(format!("block {}'s index is not the one summed", h.id)),
        }
        let d = h.described();
        let (file, flen, checked) = self.open_indexed(h.id, d).map_err(|e| e.to_string())?;
        checked?;
        if flen != h.len {
            return Err(format!("block {} changed after it was indexed", h.id));
        }
        let newest = check_head(&h, file.as_ref(), core)?;
        let mut b = start_indexed(h.id, d, file, core);
        adopt_cold(&h, newest, &mut b, core);
        b.stamp = Some(stamp.clone());
        end_indexed(&mut b, d, core);
        self.blocks.push(b);
        Ok(())
    }

    /// Opens block `id` for adoption from an index that describes it as `d`:
    /// the file, its length, and whether its header and length fit `d`.
    #[allow(clippy::type_complexity)]
    fn open_indexed(
        &self,
        id: u32,
        d: Described,
    ) -> Result<(Box<dyn VFile>, u64, Result<(), String>), StoreError> {
        let path = block_path(&self.dir, id);
        let file = self.vfs.open(&path, false)?;
        let flen = file.len()?;
        let mut hdr = [0u8; BLOCK_HDR];
        if flen >= BLOCK_HDR as u64 {
            file.read_at(0, &mut hdr)?;
        }
        let header = decode_header(&hdr);
        if let Header::Newer(v) = header {
            return Err(newer_format(&path, v));
        }
        let checked = if header != Header::Valid(d.first_seq, d.prev_ts) {
            Err("block header changed".to_string())
        } else if flen < d.len {
            Err(format!("block shorter than indexed ({flen} < {})", d.len))
        } else {
            Ok(())
        };
        Ok((file, flen, checked))
    }

    /// The sequences a rejected index lists (for the damage report).
    fn listed_seqs(&self, idx: &IdxFile) -> Vec<u64> {
        match idx {
            IdxFile::V1(i) => i.entries().map(|e| e.seq).collect(),
            IdxFile::V2(h, _) => self
                .vfs
                .read_file(&idx_path(&self.dir, h.id))
                .ok()
                .and_then(|data| decode_entries(&data, h).ok())
                .map(|es| es.iter().map(|e| e.seq).collect())
                .unwrap_or_default(),
        }
    }

    /// Reads a version 2 index's entries into `core` (a block that grew after
    /// it was indexed). False when they do not decode.
    fn install_entries(&self, h: &Head, b: &mut Block, core: &mut Core<FileLoc>) -> bool {
        let entries = self
            .vfs
            .read_file(&idx_path(&self.dir, h.id))
            .map_err(|e| e.to_string())
            .and_then(|data| decode_entries(&data, h));
        let entries = match entries {
            Ok(es) => es,
            Err(why) => {
                warn!(block = h.id, %why, "block index entries unusable; scanning the block");
                return false;
            }
        };
        let ids: Vec<u32> = h.subjects.iter().map(|(n, _)| core.intern(n)).collect();
        for e in entries {
            core.insert_known(e.seq, ids[e.subj as usize], e.size, e.ts, e.loc);
            b.live_msgs += 1;
            b.live_bytes += u64::from(e.loc.len);
        }
        true
    }
}

/// A block adopted from an index that describes it as `d`, before its
/// messages are added: the sequences below it are assigned.
fn start_indexed(id: u32, d: Described, file: Box<dyn VFile>, core: &mut Core<FileLoc>) -> Block {
    if d.first_seq > core.last_seq() {
        core.skip_to(d.first_seq - 1);
        core.set_last_ts(d.prev_ts);
    }
    Block::empty(id, d.first_seq, d.prev_ts, file)
}

/// Finishes a block adopted from an index that describes it as `d`: its
/// last sequence and length are the index's, its records not yet verified.
fn end_indexed(b: &mut Block, d: Described, core: &mut Core<FileLoc>) {
    if d.last_seq > core.last_seq() {
        core.skip_to(d.last_seq);
        core.set_last_ts(d.last_ts);
    }
    b.last_seq = d.last_seq;
    b.last_ts = d.last_ts;
    b.len = d.len;
    b.flushed = d.len;
    b.indexed = d.len;
    b.verified.set(false);
}

/// Adds a block's summary and subjects to `core`, leaving its entries on disk;
/// its newest message, read by the check, is known without them. A head
/// decoded without its subjects (a summary holds them) adds none.
fn adopt_cold(h: &Head, newest: Option<Newest>, b: &mut Block, core: &mut Core<FileLoc>) {
    let subjects: Vec<(&str, SubjectState)> =
        h.subjects.iter().map(|(n, st)| (n.as_str(), *st)).collect();
    core.add_cold(h.id, h.sum, &subjects);
    if let Some(n) = newest
        && let Some(subj) = core.subjects.id(&n.subject)
    {
        let slot = Slot {
            subj,
            size: NonZeroU32::new(n.size).unwrap_or(NonZeroU32::MIN),
            ts: n.ts,
            loc: h.newest,
        };
        core.set_last_slot(h.sum.last, slot);
    }
    b.live_msgs = h.sum.msgs;
    b.live_bytes = h.rec_bytes;
}

/// The newest live record of a block, as the check of its index read it.
struct Newest {
    ts: i64,
    subject: String,
    /// Accounted size.
    size: u32,
}

/// The head continues the index built so far, and the newest message is where
/// it says (a cheap check that the index belongs to this block; every record is
/// verified on the block's first load).
fn check_head(h: &Head, file: &dyn VFile, core: &Core<FileLoc>) -> Result<Option<Newest>, String> {
    if h.sum.msgs == 0 {
        return Ok(None);
    }
    if h.sum.first <= core.last_seq() {
        return Err(format!("seq {} not above the blocks before", h.sum.first));
    }
    check_newest(file, h.sum.last, h.newest).map(Some)
}

/// The record at `loc` is the live message `seq`.
fn check_newest(file: &dyn VFile, seq: u64, loc: FileLoc) -> Result<Newest, String> {
    let mut rec = vec![0; loc.len as usize];
    file.read_at(u64::from(loc.off), &mut rec)
        .map_err(|e| e.to_string())?;
    match record::parse(&rec) {
        Ok(v) if v.seq == seq && v.state == STATE_LIVE && v.len == rec.len() => Ok(Newest {
            ts: v.ts,
            subject: String::from_utf8_lossy(&rec[v.subj.clone()]).into_owned(),
            size: u32::try_from(file_msg_size(v.subj.len(), v.hdr.len(), v.payload.len()))
                .unwrap_or(u32::MAX),
        }),
        _ => Err(format!("newest record (seq {seq}) does not validate")),
    }
}

/// The entries continue the index built so far, and the newest one is where
/// the index says (a cheap check that the index belongs to this block; every
/// record is verified on the block's first load).
fn check_entries(idx: &BlockIndex, file: &dyn VFile, core: &Core<FileLoc>) -> Result<(), String> {
    let (Some(first), Some(newest)) = (idx.first, idx.newest) else {
        return Ok(());
    };
    if first.seq <= core.last_seq() {
        return Err(format!("seq {} not above the blocks before", first.seq));
    }
    check_newest(file, newest.seq, newest.loc).map(|_| ())
}

/// Adds a version 1 index's messages to `core` and to block `b` (its entries
/// stay in memory until the block is indexed again).
fn install(idx: BlockIndex, b: &mut Block, core: &mut Core<FileLoc>) {
    // Interned on first use: a subject with no message must not appear.
    let mut ids: Vec<Option<u32>> = vec![None; idx.subjects.len()];
    for e in idx.entries() {
        let i = e.subj as usize;
        let subj = *ids[i].get_or_insert_with(|| core.intern(&idx.subjects[i]));
        core.insert_known(e.seq, subj, e.size, e.ts, e.loc);
        b.live_msgs += 1;
        b.live_bytes += u64::from(e.loc.len);
    }
}
