//! Write-side operations of the file backend: appends, rollover, deferred
//! deletes, space reclamation (block removal and compaction), reset and sync.
//!
//! Ordering rules that make these crash-safe:
//! - appends are buffered and reach the file on flush; durability is `sync()`;
//! - a delete is a 1-byte state write, deferred until the next `sync()` (or
//!   until many are queued); a block whose messages are all gone is unlinked instead;
//! - compaction writes `<block>.tmp`, fsyncs it, renames it over the block and
//!   fsyncs the directory, so either the old or the new block survives a crash;
//! - reset (purge all) first makes a new empty block durable, whose header
//!   carries the next sequence, then removes the old blocks;
//! - the legacy index snapshot is durably removed before any non-append change;
//!   a block's index file is durably removed before a delete is written into the
//!   bytes it describes and before the block is compacted (see `blockidx`).

use tracing::warn;

use super::block::{BLOCK_HDR, Block, block_path, encode_header};
use super::record::{self, STATE_DELETED, STATE_LIVE, STATE_MARK};
use super::{FileBackend, FileLoc, PendingDelete, WBUF_FLUSH};
use crate::jetstream::store::core::Core;
use crate::jetstream::store::types::StoreError;

impl FileBackend {
    pub(super) fn active_id(&self) -> Option<u32> {
        self.blocks.last().map(|b| b.id)
    }

    /// Creates a new empty block for `first_seq` and makes it the active one.
    pub(super) fn new_block(&mut self, first_seq: u64) -> Result<(), StoreError> {
        self.flush()?;
        if let Some(prev) = self.blocks.last() {
            // No longer active: reclaim it if deletes emptied or thinned it, and
            // index it at the next sync.
            self.touched.insert(prev.id);
            self.sealed.push(prev.id);
        }
        let id = self.blocks.last().map_or(1, |b| b.id + 1);
        let path = block_path(&self.dir, id);
        let file = self.vfs.open(&path, true)?;
        file.set_len(0)?;
        // The header carries the last sequence across purges and lost tails: it must
        // be durable whenever the file's directory entry is, so every directory
        // sync goes through `sync_dir`, which syncs dirty blocks first.
        file.write_at(0, &encode_header(first_seq, self.last_ts))?;
        self.blocks
            .push(Block::empty(id, first_seq, self.last_ts, file));
        self.dirty.insert(id);
        self.dir_dirty = true;
        Ok(())
    }

    pub(super) fn append_record(
        &mut self,
        seq: u64,
        ts: i64,
        subj: &str,
        hdr: &[u8],
        payload: &[u8],
    ) -> Result<FileLoc, StoreError> {
        let len = record::record_len(subj.len(), hdr.len(), payload.len());
        if len > record::MAX_RECORD || subj.len() > usize::from(u16::MAX) {
            return Err(StoreError::MessageTooLarge);
        }
        let roll = match self.blocks.last() {
            None => true,
            Some(b) => b.len > BLOCK_HDR as u64 && b.len + len as u64 > self.block_size,
        };
        if roll {
            self.new_block(seq)?;
        } else if self.wbuf.len() + len > WBUF_FLUSH {
            // Flush before encoding, so an I/O error leaves no half-added record.
            self.flush()?;
        }
        let parts = [subj.as_bytes(), hdr, payload];
        record::encode(&mut self.wbuf, STATE_LIVE, seq, ts, parts);
        let b = self.blocks.last_mut().ok_or_else(no_active)?;
        let loc = FileLoc {
            blk: b.id,
            off: u32::try_from(b.len).map_err(|_| StoreError::MessageTooLarge)?,
            len: len as u32,
        };
        b.len += len as u64;
        b.live_msgs += 1;
        b.live_bytes += len as u64;
        b.last_seq = seq;
        b.last_ts = ts;
        self.dirty.insert(b.id);
        Ok(loc)
    }

    pub(super) fn append_marker(&mut self, seq: u64) -> Result<(), StoreError> {
        if self.blocks.is_empty() {
            return self.new_block(seq + 1);
        }
        let n = record::encode(
            &mut self.wbuf,
            STATE_MARK,
            seq,
            self.last_ts,
            [&[], &[], &[]],
        );
        let b = self.blocks.last_mut().ok_or_else(no_active)?;
        b.len += n as u64;
        b.last_seq = seq;
        b.last_ts = self.last_ts;
        self.dirty.insert(b.id);
        Ok(())
    }

    /// Writes the buffered appends to the active block file.
    pub(super) fn flush(&mut self) -> Result<(), StoreError> {
        if self.wbuf.is_empty() {
            return Ok(());
        }
        let b = self.blocks.last_mut().ok_or_else(no_active)?;
        if let Err(e) = b.file.write_at(b.flushed, &self.wbuf) {
            self.note_flush_failed();
            return Err(e.into());
        }
        let (id, off) = (b.id, b.flushed);
        b.flushed += self.wbuf.len() as u64;
        self.note_flushed(id, off);
        Ok(())
    }

    /// Durably removes the index snapshot before a non-append change.
    pub(super) fn invalidate_snapshot(&mut self) -> Result<(), StoreError> {
        if !self.snapshot_on_disk {
            return Ok(());
        }
        let path = self.dir.join(super::index::SNAPSHOT_NAME);
        match self.vfs.remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        self.sync_dir()?;
        self.snapshot_on_disk = false;
        Ok(())
    }

    /// Writes queued deletes (state bytes, or whole erased records).
    pub(super) fn apply_pending(&mut self) -> Result<(), StoreError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.invalidate_snapshot()?;
        let stale: Vec<u32> = self
            .pending
            .iter()
            .filter(|p| {
                self.block_index(p.loc.blk)
                    .is_some_and(|i| u64::from(p.loc.off) < self.blocks[i].indexed)
            })
            .map(|p| p.loc.blk)
            .collect();
        self.unindex(&stale, true)?;
        self.drop_cache();
        let pending = std::mem::take(&mut self.pending);
        for p in pending {
            self.apply_one(p)?;
        }
        // Erased bytes may have been read ahead while erasing.
        self.drop_cache();
        Ok(())
    }

    pub(super) fn apply_one(&mut self, p: PendingDelete) -> Result<(), StoreError> {
        let Some(i) = self.block_index(p.loc.blk) else {
            return Ok(());
        };
        let off = u64::from(p.loc.off);
        let bytes = if p.erase {
            let mut rec = self.read_record(p.loc)?.to_vec();
            let Ok(v) = record::parse(&rec) else {
                warn!(block = p.loc.blk, off, "damaged record left as is on erase");
                return Ok(());
            };
            rec[v.subj.start..v.payload.end].fill(0);
            rec[record::STATE_OFF] = STATE_DELETED;
            record::reseal(&mut rec);
            rec
        } else {
            vec![STATE_DELETED]
        };
        let at = if p.erase {
            off
        } else {
            off + record::STATE_OFF as u64
        };
        let is_active = i + 1 == self.blocks.len();
        let b = &mut self.blocks[i];
        if is_active && at >= b.flushed {
            let start = usize::try_from(at - b.flushed).unwrap_or(usize::MAX);
            if let Some(dst) = self.wbuf.get_mut(start..start + bytes.len()) {
                dst.copy_from_slice(&bytes);
            }
        } else {
            b.file.write_at(at, &bytes)?;
            self.note_delete_written(p);
        }
        self.dirty.insert(p.loc.blk);
        Ok(())
    }

    /// Drops blocks that emptied and compacts mostly-dead ones (never the active block).
    pub(super) fn reclaim(&mut self, core: &mut Core<FileLoc>) -> Result<(), StoreError> {
        let touched = std::mem::take(&mut self.touched);
        let active = self.active_id();
        for id in touched {
            if Some(id) == active {
                continue;
            }
            let Some(i) = self.block_index(id) else {
                continue;
            };
            let b = &self.blocks[i];
            if b.live_msgs == 0 {
                self.remove_block(i)?;
            } else if b.dead_bytes() > 2 * b.live_bytes && b.dead_bytes() >= self.block_size / 4 {
                self.compact_block(i, core)?;
            }
        }
        Ok(())
    }

    fn remove_block(&mut self, i: usize) -> Result<(), StoreError> {
        self.invalidate_snapshot()?;
        // An index left behind by a crash has no block: the next open removes it.
        self.unindex(&[self.blocks[i].id], false)?;
        self.drop_cache();
        let b = self.blocks.remove(i);
        self.pending.retain(|p| p.loc.blk != b.id);
        self.forget_unsynced(b.id);
        self.dirty.remove(&b.id);
        self.vfs.remove_file(&block_path(&self.dir, b.id))?;
        self.dir_dirty = true;
        Ok(())
    }

    /// Rewrites block `i` with only its live records and repoints the index.
    fn compact_block(&mut self, i: usize, core: &mut Core<FileLoc>) -> Result<(), StoreError> {
        self.invalidate_snapshot()?;
        self.unindex(&[self.blocks[i].id], true)?;
        self.drop_cache();
        let (id, first_seq, prev_ts, len) = {
            let b = &self.blocks[i];
            (b.id, b.first_seq, b.prev_ts, b.len)
        };
        let mut data = vec![0; usize::try_from(len).unwrap_or(0)];
        self.blocks[i].file.read_at(0, &mut data)?;
        let mut out = encode_header(first_seq, prev_ts).to_vec();
        let mut moved = Vec::new();
        let mut newest = None;
        for (at, v) in super::recovery::records(&data, BLOCK_HDR) {
            let live = core
                .get(v.seq)
                .is_some_and(|s| s.loc.blk == id && s.loc.off as usize == at);
            if live && v.state == STATE_LIVE {
                moved.push((v.seq, out.len()));
                out.extend_from_slice(&data[at..at + v.len]);
            }
            newest = Some((v.seq, v.ts, live));
        }
        if let Some((seq, ts, false)) = newest {
            // Keep the block's highest sequence on disk, so it is never reused.
            record::encode(&mut out, STATE_MARK, seq, ts, [&[], &[], &[]]);
        }
        let path = block_path(&self.dir, id);
        let tmp = path.with_extension("tmp");
        let f = self.vfs.open(&tmp, true)?;
        f.set_len(0)?;
        f.write_at(0, &out)?;
        f.sync()?;
        self.vfs.rename(&tmp, &path)?;
        self.sync_dir()?;
        let mut moved_bytes = 0;
        for (seq, off) in moved {
            if let Some(s) = core.get_mut(seq) {
                s.loc.off = off as u32;
                moved_bytes += u64::from(s.loc.len);
            }
        }
        let b = &mut self.blocks[i];
        b.file = self.vfs.open(&path, false)?;
        b.len = out.len() as u64;
        b.flushed = b.len;
        b.live_bytes = moved_bytes;
        self.pending.retain(|p| p.loc.blk != id);
        self.dirty.remove(&id);
        self.forget_unsynced(id);
        Ok(())
    }

    /// Everything was removed: start a fresh block for `next_seq`, then drop the old ones.
    pub(super) fn reset_blocks(&mut self, next_seq: u64) -> Result<(), StoreError> {
        self.invalidate_snapshot()?;
        self.drop_cache();
        self.pending.clear();
        self.touched.clear();
        let ids: Vec<u32> = self.blocks.iter().map(|b| b.id).collect();
        self.unindex(&ids, false)?;
        self.new_block(next_seq)?;
        let old: Vec<u32> = self.blocks[..self.blocks.len() - 1]
            .iter()
            .map(|b| b.id)
            .collect();
        self.blocks.drain(..self.blocks.len() - 1);
        for id in &old {
            self.dirty.remove(id);
            self.forget_unsynced(*id);
        }
        // The new block (header with next_seq) is durable before any old one goes.
        self.sync_dir()?;
        for id in old {
            self.vfs.remove_file(&block_path(&self.dir, id))?;
        }
        self.sync_dir()?;
        self.dir_dirty = false;
        Ok(())
    }

    /// Syncs the directory, after every dirty block (so a new block's entry never
    /// becomes durable before its header).
    pub(super) fn sync_dir(&mut self) -> Result<(), StoreError> {
        self.flush()?;
        self.sync_dirty()?;
        if let Err(e) = self.vfs.sync_dir(&self.dir) {
            self.dir_dirty = true;
            return Err(self.dir_sync_failed(&e));
        }
        self.dir_dirty = false;
        Ok(())
    }

    /// Fsyncs every dirty block; then everything written so far is durable.
    fn sync_dirty(&mut self) -> Result<(), StoreError> {
        for id in std::mem::take(&mut self.dirty) {
            let Some(i) = self.block_index(id) else {
                continue;
            };
            if let Err(e) = self.blocks[i].file.sync() {
                self.dirty.insert(id);
                return Err(self.fsync_failed(id, &e));
            }
        }
        self.note_synced();
        Ok(())
    }

    /// Makes everything durable: deferred deletes, buffered appends, directory
    /// entries. After a failed fsync, first writes again what it may have lost.
    pub(super) fn sync_all(&mut self) -> Result<(), StoreError> {
        self.rewrite_unsynced()?;
        let clean = self.pending.is_empty() && self.dirty.is_empty() && !self.dir_dirty;
        if clean && !self.needs_retry() {
            return Ok(());
        }
        self.apply_pending()?;
        if self.dir_dirty {
            return self.sync_dir();
        }
        self.flush()?;
        self.sync_dirty()
    }
}

fn no_active() -> StoreError {
    StoreError::Corrupt("file store has no active block".into())
}
