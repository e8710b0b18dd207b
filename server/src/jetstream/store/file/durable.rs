//! Writes not yet proven durable, and what a failed write or fsync means.
//!
//! After a failed fsync the kernel may already have dropped the dirty pages it
//! could not write, and report success for the next fsync without writing them.
//! So the store keeps every chunk of appended bytes written since the last
//! successful fsync (the write buffer itself, moved, not copied) and every
//! delete applied since, and after a failure refuses writes until it has written
//! them all again and an fsync of them succeeded: only then is its state proven.
//!
//! A write that fails (a full disk: `ENOSPC`) leaves the write buffer in place.
//! Appends are refused, with the I/O error, until a retry of the flush and the
//! fsync succeeds, which happens at the next append: writing resumes by itself
//! once space is freed, and nothing is acknowledged that is not on disk.
//!
//! Owns that bookkeeping; the write paths in `ops` report to it.

use tracing::error;

use super::{FileBackend, PendingDelete};
use crate::jetstream::store::types::StoreError;

/// See the module docs.
#[derive(Debug, Default)]
pub(super) struct Unsynced {
    /// Chunks written since the last successful fsync: (block id, offset, bytes).
    chunks: Vec<(u32, u64, Vec<u8>)>,
    /// Deletes written since the last successful fsync.
    deletes: Vec<PendingDelete>,
    /// A cleared buffer to become the next write buffer.
    spare: Vec<u8>,
    /// Why writes are refused: an fsync failed and its data is not yet rewritten.
    failed: Option<String>,
    /// The last flush failed: the write buffer still holds its bytes.
    behind: bool,
}

/// Spare buffers larger than this are dropped rather than kept.
const SPARE_MAX: usize = 4 * 1024 * 1024;

impl FileBackend {
    /// The write buffer reached block `blk` at `off`: keep it until the next fsync.
    pub(super) fn note_flushed(&mut self, blk: u32, off: u64) {
        let next = std::mem::take(&mut self.unsynced.spare);
        let buf = std::mem::replace(&mut self.wbuf, next);
        self.unsynced.chunks.push((blk, off, buf));
        self.unsynced.behind = false;
    }

    /// A flush failed; its bytes are still in the write buffer.
    pub(super) fn note_flush_failed(&mut self) {
        self.unsynced.behind = true;
    }

    /// A delete was written to a block file (not to the write buffer).
    pub(super) fn note_delete_written(&mut self, p: PendingDelete) {
        self.unsynced.deletes.push(p);
    }

    /// A block was removed or rewritten whole (and synced): forget its chunks.
    pub(super) fn forget_unsynced(&mut self, blk: u32) {
        self.unsynced.chunks.retain(|c| c.0 != blk);
        self.unsynced.deletes.retain(|p| p.loc.blk != blk);
    }

    /// Every dirty block was fsynced: what was written is durable.
    pub(super) fn note_synced(&mut self) {
        let mut largest = Vec::new();
        for (_, _, buf) in self.unsynced.chunks.drain(..) {
            if buf.capacity() > largest.capacity() && buf.capacity() <= SPARE_MAX {
                largest = buf;
            }
        }
        largest.clear();
        if largest.capacity() > self.unsynced.spare.capacity() {
            self.unsynced.spare = largest;
        }
        self.unsynced.deletes.clear();
        self.unsynced.failed = None;
    }

    /// An fsync of block `blk` failed: refuse writes until the state is proven again.
    pub(super) fn fsync_failed(&mut self, blk: u32, e: &std::io::Error) -> StoreError {
        let why = format!(
            "fsync of block {blk} in {} failed ({e}); writes are refused until the data \
             written since the last successful sync is written again and synced",
            self.dir.display()
        );
        error!(dir = %self.dir.display(), block = blk, error = %e, "fsync failed; refusing writes");
        self.unsynced.failed = Some(why.clone());
        StoreError::Io(std::io::Error::new(e.kind(), why))
    }

    /// An fsync of the store directory failed: a block file created, removed or
    /// renamed since the last good one may not survive a crash. Writes are
    /// refused until a directory fsync (after fsyncing every dirty block again)
    /// succeeds.
    pub(super) fn dir_sync_failed(&mut self, e: &std::io::Error) -> StoreError {
        let why = format!(
            "fsync of the directory {} failed ({e}); writes are refused until it succeeds",
            self.dir.display()
        );
        error!(dir = %self.dir.display(), error = %e, "directory fsync failed; refusing writes");
        self.unsynced.failed = Some(why.clone());
        StoreError::Io(std::io::Error::new(e.kind(), why))
    }

    /// True when appends must first retry the failed flush or prove the state.
    pub(super) fn needs_retry(&self) -> bool {
        self.unsynced.failed.is_some() || self.unsynced.behind
    }

    /// After a failed fsync: writes every chunk and delete since the last good
    /// fsync again, so the next fsync covers them.
    pub(super) fn rewrite_unsynced(&mut self) -> Result<(), StoreError> {
        if self.unsynced.failed.is_none() {
            return Ok(());
        }
        for (blk, off, buf) in &self.unsynced.chunks {
            if let Some(i) = self.block_index(*blk) {
                self.blocks[i].file.write_at(*off, buf)?;
                self.dirty.insert(*blk);
            }
        }
        for p in std::mem::take(&mut self.unsynced.deletes) {
            self.apply_one(p)?;
        }
        Ok(())
    }
}
