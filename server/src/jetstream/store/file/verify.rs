//! Lazy verification of blocks adopted from an index (a block's, or the legacy snapshot).
//!
//! At open, an index is trusted for where records are, not for
//! their bytes: reading them all would make open O(data). Instead the first
//! load from such a block reads the whole block once, checks every record the
//! index places in it (checksum, sequence, state, length, subject), and hands
//! back the sequences that fail, which the store then reports lost and skips.
//! The block bytes read stay in the read cache, so the load that triggered the
//! check, and the sequential loads after it (a consumer replaying), are served
//! from memory.
//!
//! Owns nothing; the flag is `Block::verified`.

use bytes::Bytes;
use tracing::warn;

use super::record::{self, STATE_LIVE};
use super::{FileBackend, FileLoc, ReadCache};
use crate::jetstream::store::core::{Core, Slot};

impl FileBackend {
    /// Verifies block `blk` if it was not yet; returns the indexed sequences in
    /// it whose records do not validate.
    pub(super) fn verify_block(&self, core: &Core<FileLoc>, blk: u32) -> Vec<u64> {
        let Some(i) = self.block_index(blk) else {
            return Vec::new();
        };
        let b = &self.blocks[i];
        if b.verified.replace(true) {
            return Vec::new();
        }
        // Bytes past `flushed` are in the write buffer (ours, not yet on disk).
        let on_disk = b.file.len().unwrap_or(0).min(b.flushed);
        let mut data = vec![0; usize::try_from(on_disk).unwrap_or(0)];
        if let Err(e) = b.file.read_at(0, &mut data) {
            warn!(block = blk, error = %e, "block unreadable; its records are checked one by one");
            b.verified.set(false);
            return Vec::new();
        }
        let mut bad = Vec::new();
        core.with_unit(blk, |first, body| {
            for (k, s) in body.iter().enumerate() {
                let Some(s) = s else { continue };
                let seq = first + k as u64;
                if u64::from(s.loc.off) < b.flushed && !intact(&data, core, seq, s) {
                    bad.push(seq);
                }
            }
        });
        if !bad.is_empty() {
            warn!(
                block = blk,
                damaged = bad.len(),
                first = bad[0],
                "damaged records found in a block"
            );
        }
        *self.cache.borrow_mut() = ReadCache {
            blk,
            off: 0,
            buf: Bytes::from(data),
        };
        bad
    }
}

/// True when the record the index places at `s.loc` is the live message `seq`.
fn intact(data: &[u8], core: &Core<FileLoc>, seq: u64, s: &Slot<FileLoc>) -> bool {
    let off = s.loc.off as usize;
    let Some(rec) = data.get(off..off + s.loc.len as usize) else {
        return false;
    };
    match record::parse(rec) {
        Ok(v) => {
            v.seq == seq
                && v.state == STATE_LIVE
                && v.len == rec.len()
                && rec[v.subj] == core.subjects.name(s.subj)[..]
        }
        Err(_) => false,
    }
}
