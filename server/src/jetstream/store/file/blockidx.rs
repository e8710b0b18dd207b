//! Block index files (`<id>.idx`): where every live message of one block is,
//! so an open adopts the block without reading its records (format in the
//! parent module docs).
//!
//! A block's index is written when the block is sealed (at the first sync after
//! the store rolled over to a new block: the rotation checkpoint) and, for
//! blocks without a current one, at a clean stop. So the clean stop writes the
//! index of the active block only, and an open after a crash scans only what was
//! written since the last checkpoint.
//!
//! An index is derived data and is not fsynced: it is written only after its
//! block's bytes were, and it is checksummed, so a lost or torn one only means
//! the block is scanned. What must never happen is a *valid* index describing a
//! block that changed: before a delete is written into the bytes an index
//! describes, and before a block is compacted, the index file is removed and
//! the directory synced; an open removes (durably) every index it does not adopt.
//! So an index file exists exactly for the blocks with `Block::indexed > 0`.
//!
//! Owns the index files; the legacy whole-store snapshot is in `index`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use tracing::warn;

use super::block::{BLOCK_HDR, Block, Header, block_path, decode_header, newer_format};
use super::index::{Entry, Reader, put_entry, put_varint, read_entry};
use super::record::{self, STATE_LIVE};
use super::{FileBackend, FileLoc};
use crate::jetstream::store::core::Core;
use crate::jetstream::store::types::StoreError;

/// Suffix of block index files.
pub(super) const IDX_EXT: &str = ".idx";
/// Magic of a block index file, version 1.
const MAGIC: &[u8; 8] = b"RILLBIX\x01";

/// Path of block `id`'s index file in `dir`.
pub(super) fn idx_path(dir: &Path, id: u32) -> PathBuf {
    dir.join(format!("{id:010}{IDX_EXT}"))
}

/// The block id in a file name, if it is a block index file.
pub(super) fn parse_idx_name(name: &str) -> Option<u32> {
    let stem = name.strip_suffix(IDX_EXT)?;
    (stem.len() == 10 && stem.bytes().all(|b| b.is_ascii_digit()))
        .then(|| stem.parse().ok())
        .flatten()
}

/// A checked block index: the block as it was described, and its live messages
/// (each entry's `subj` indexes `subjects`), kept encoded: they are decoded
/// again straight into the store's index when the block is adopted, so an open
/// holds no per-message buffer beside it.
#[derive(Debug)]
pub(crate) struct BlockIndex {
    pub(crate) id: u32,
    first_seq: u64,
    prev_ts: i64,
    pub(crate) len: u64,
    pub(crate) last_seq: u64,
    last_ts: i64,
    subjects: Vec<String>,
    /// Number of entries, the first and the newest.
    n: usize,
    first: Option<Entry>,
    newest: Option<Entry>,
    /// The file's bytes (without the crc) and where the entries start in them.
    data: Vec<u8>,
    entries_at: usize,
}

impl BlockIndex {
    /// Number of live messages it lists.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn msgs(&self) -> usize {
        self.n
    }

    /// The entries in order (all checked by `decode`).
    fn entries(&self) -> impl Iterator<Item = Entry> + '_ {
        let mut r = Reader {
            buf: &self.data,
            pos: self.entries_at,
        };
        let mut prev = Entry::default();
        (0..self.n).map_while(move |_| {
            let e = read_entry(&mut r, &prev).ok()?;
            prev = e;
            Some(e)
        })
    }
}

/// Encodes the index of block `b` from the live messages `core` places in it.
fn encode(b: &Block, core: &Core<FileLoc>) -> Vec<u8> {
    let mut local: HashMap<u32, u32> = HashMap::new();
    let mut names = Vec::new();
    let mut body = Vec::with_capacity(b.live_msgs as usize * 9);
    let mut prev = Entry::default();
    let mut n = 0u64;
    for (seq, s) in core.iter_from(b.first_seq) {
        if seq > b.last_seq {
            break;
        }
        if s.loc.blk != b.id {
            continue;
        }
        let subj = *local.entry(s.subj).or_insert_with(|| {
            names.push(core.subjects.name(s.subj));
            (names.len() - 1) as u32
        });
        let e = Entry {
            seq,
            subj,
            ts: s.ts,
            size: s.size.get(),
            loc: s.loc,
        };
        put_entry(&mut body, &prev, &e);
        prev = e;
        n += 1;
    }
    let mut out = Vec::with_capacity(64 + body.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&b.id.to_le_bytes());
    for v in [
        b.first_seq,
        b.prev_ts as u64,
        b.len,
        b.last_seq,
        b.last_ts as u64,
    ] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&(names.len() as u32).to_le_bytes());
    for name in &names {
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(name);
    }
    put_varint(&mut out, n);
    out.extend_from_slice(&body);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Decodes and checks a block index file: checksum, magic, and every entry in
/// sequence order, inside the block and the range it describes.
pub(crate) fn decode(mut data: Vec<u8>) -> Result<BlockIndex, String> {
    let body_len = data.len().checked_sub(4).ok_or("index too short")?;
    let mut crc = [0; 4];
    crc.copy_from_slice(&data[body_len..]);
    if crc32fast::hash(&data[..body_len]) != u32::from_le_bytes(crc) {
        return Err("index checksum mismatch".into());
    }
    data.truncate(body_len);
    let mut r = Reader { buf: &data, pos: 0 };
    if r.take(8)? != MAGIC {
        return Err("index magic".into());
    }
    let (id, first_seq, prev_ts) = (r.u32()?, r.u64()?, r.u64()? as i64);
    let (len, last_seq, last_ts) = (r.u64()?, r.u64()?, r.u64()? as i64);
    let mut subjects = Vec::new();
    for _ in 0..r.u32()? {
        let len = usize::from(r.u16()?);
        let name = std::str::from_utf8(r.take(len)?).map_err(|_| "subject not utf-8")?;
        subjects.push(name.to_owned());
    }
    let n = usize::try_from(r.varint()?).map_err(|_| "message count")?;
    // Every entry takes at least 7 bytes: a count the rest cannot hold is damage.
    if n > (r.buf.len() - r.pos) / 7 {
        return Err("message count beyond the index".into());
    }
    let entries_at = r.pos;
    let (mut prev, mut first) = (Entry::default(), None);
    for _ in 0..n {
        let e = read_entry(&mut r, &prev)?;
        let in_block = e.loc.blk == id
            && e.loc.off >= BLOCK_HDR as u32
            && u64::from(e.loc.off) + u64::from(e.loc.len) <= len;
        let in_order = e.seq > prev.seq && e.seq >= first_seq && e.seq <= last_seq;
        if !in_block || !in_order || e.subj as usize >= subjects.len() {
            return Err(format!("index entry for seq {} is inconsistent", e.seq));
        }
        first.get_or_insert(e);
        prev = e;
    }
    if r.pos != r.buf.len() {
        return Err("trailing bytes in index".into());
    }
    Ok(BlockIndex {
        id,
        first_seq,
        prev_ts,
        len,
        last_seq,
        last_ts,
        subjects,
        n,
        first,
        newest: (n > 0).then_some(prev),
        data,
        entries_at,
    })
}

impl FileBackend {
    /// Writes block `i`'s index if the one on disk (if any) describes less than
    /// the whole block and the block's bytes are durable. Not fsynced (see the
    /// module docs); a failure is logged and leaves the block to be scanned.
    pub(super) fn write_block_index(&mut self, i: usize, core: &Core<FileLoc>) {
        let b = &self.blocks[i];
        let durable = b.flushed == b.len && !self.dirty.contains(&b.id) && !self.needs_retry();
        if b.indexed >= b.len || b.len <= BLOCK_HDR as u64 || !durable {
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
            Ok(()) => self.blocks[i].indexed = len,
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
            removed = true;
        }
        if removed && durable {
            self.sync_dir()?;
        }
        Ok(())
    }

    /// Reads block `id`'s index file; `None` when it is missing or does not
    /// decode (logged): the block is scanned then.
    fn read_block_index(&self, id: u32) -> Option<BlockIndex> {
        let path = idx_path(&self.dir, id);
        let data = match self.vfs.read_file(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                warn!(block = id, error = %e, "block index unreadable; scanning the block");
                return None;
            }
        };
        decode(data)
            .inspect_err(|why| warn!(block = id, %why, "block index ignored; scanning the block"))
            .ok()
            .filter(|idx| idx.id == id)
    }

    /// Adopts block `id` from its index file if it has one that matches the
    /// block, then scans what was appended after it. `Ok(false)`: not adopted
    /// (the caller scans the block). A checksummed index that does not match
    /// still tells which messages were lost and the last sequence.
    pub(super) fn adopt_block(
        &mut self,
        id: u32,
        core: &mut Core<FileLoc>,
        is_last: bool,
    ) -> Result<bool, StoreError> {
        let Some(idx) = self.read_block_index(id) else {
            return Ok(false);
        };
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
        let checked = if header != Header::Valid(idx.first_seq, idx.prev_ts) {
            Err("block header changed".to_string())
        } else if flen < idx.len {
            Err(format!("block shorter than indexed ({flen} < {})", idx.len))
        } else {
            check_entries(&idx, file.as_ref(), core)
        };
        if let Err(why) = checked {
            warn!(block = id, %why, "block index does not match its block; scanning the block");
            let floor = (idx.last_seq, idx.last_ts);
            if self.snapshot_floor.is_none_or(|f| f.0 < floor.0) {
                self.snapshot_floor = Some(floor);
            }
            self.rejected.extend(idx.entries().map(|e| e.seq));
            return Ok(false);
        }
        if let Some(after) = self.lost_tail_after.take()
            && idx.first_seq > after + 1
        {
            self.lost.push((after + 1, idx.first_seq - 1));
        }
        let b = install(idx, file, core);
        if flen > b.len {
            self.scan_into(b, core, is_last)?;
        } else {
            self.blocks.push(b);
        }
        Ok(true)
    }
}

/// The entries continue the index built so far, and the newest one is where
/// the index says (a cheap check that the index belongs to this block; every
/// record is verified on the block's first load).
fn check_entries(
    idx: &BlockIndex,
    file: &dyn crate::jetstream::store::vfs::VFile,
    core: &Core<FileLoc>,
) -> Result<(), String> {
    let (Some(first), Some(newest)) = (idx.first, idx.newest) else {
        return Ok(());
    };
    if first.seq <= core.last_seq() {
        return Err(format!("seq {} not above the blocks before", first.seq));
    }
    let mut rec = vec![0; newest.loc.len as usize];
    file.read_at(u64::from(newest.loc.off), &mut rec)
        .map_err(|e| e.to_string())?;
    match record::parse(&rec) {
        Ok(v) if v.seq == newest.seq && v.state == STATE_LIVE && v.len == rec.len() => Ok(()),
        _ => Err(format!(
            "newest record (seq {}) does not validate",
            newest.seq
        )),
    }
}

/// Adds the index's messages to `core` and returns the block it describes (not
/// yet verified).
fn install(
    idx: BlockIndex,
    file: Box<dyn crate::jetstream::store::vfs::VFile>,
    core: &mut Core<FileLoc>,
) -> Block {
    if idx.first_seq > core.last_seq() {
        core.skip_to(idx.first_seq - 1);
        core.set_last_ts(idx.prev_ts);
    }
    // Interned on first use: a subject with no message must not appear.
    let mut ids: Vec<Option<u32>> = vec![None; idx.subjects.len()];
    core.reserve(idx.n);
    let mut b = Block::empty(idx.id, idx.first_seq, idx.prev_ts, file);
    for e in idx.entries() {
        let i = e.subj as usize;
        let subj = *ids[i].get_or_insert_with(|| core.intern(&idx.subjects[i]));
        core.insert_known(e.seq, subj, e.size, e.ts, e.loc);
        b.live_msgs += 1;
        b.live_bytes += u64::from(e.loc.len);
    }
    if idx.last_seq > core.last_seq() {
        core.skip_to(idx.last_seq);
        core.set_last_ts(idx.last_ts);
    }
    b.last_seq = idx.last_seq;
    b.last_ts = idx.last_ts;
    b.len = idx.len;
    b.flushed = idx.len;
    b.indexed = idx.len;
    b.verified.set(false);
    b
}
