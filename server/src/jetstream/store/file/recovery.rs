//! Opening a file store: the block scan with resynchronisation past damage,
//! torn-tail truncation, and the choice between the index snapshot and a full scan.
//!
//! Owns nothing after open; everything it finds goes into the core and the blocks.

use tracing::{info, warn};

use super::block::{
    BLOCK_HDR, Block, Header, Stamp, block_path, decode_header, encode_header, newer_format,
    parse_block_name,
};
use super::blockidx::{idx_path, parse_idx_name};
use super::index::SNAPSHOT_NAME;
use super::record::{self, RecordView, STATE_LIVE};
use super::summary::{self, SUMMARY_NAME};
use super::{FileBackend, FileLoc};
use crate::jetstream::store::core::Core;
use crate::jetstream::store::types::{StoreError, file_msg_size};

/// Result of scanning a byte range for records.
#[derive(Debug, Default)]
pub(super) struct Scan {
    /// Valid records in order, with their offsets in the scanned buffer.
    pub(super) records: Vec<(usize, RecordView)>,
    /// End of the last valid record (the scan start if none).
    pub(super) good_end: usize,
    /// Skipped damaged ranges: (start, end, last good seq before, next good seq after).
    pub(super) lost: Vec<(usize, usize, u64, u64)>,
}

/// Scans `data` from `from`, skipping damage, keeping sequences strictly above `min_seq`.
pub(super) fn scan(data: &[u8], from: usize, min_seq: u64) -> Scan {
    let mut out = Scan {
        good_end: from,
        ..Scan::default()
    };
    let mut pos = from;
    let mut last = min_seq;
    while pos < data.len() {
        match record::parse(&data[pos..]) {
            Ok(v) if v.seq > last => {
                last = v.seq;
                pos += v.len;
                out.good_end = pos;
                out.records.push((pos - v.len, v));
            }
            _ => match record::resync(data, pos + 1, last) {
                Some((at, v)) => {
                    out.lost.push((pos, at, last, v.seq));
                    pos = at;
                }
                None => break,
            },
        }
    }
    out
}

/// The valid records of a whole block buffer, from offset `from`.
pub(super) fn records(data: &[u8], from: usize) -> Vec<(usize, RecordView)> {
    scan(data, from, 0).records
}

impl FileBackend {
    /// Recovers the index: from the legacy snapshot if there is one and it is
    /// usable; otherwise block by block, adopting each block from its index file
    /// when that matches and scanning it when not.
    pub(super) fn recover(&mut self) -> Result<Core<FileLoc>, StoreError> {
        let existed = self.vfs.exists(&self.dir);
        self.vfs.create_dir_all(&self.dir)?;
        // A directory that existed was made durable when it was created (by the stream's
        // create, or by an earlier open here): syncing its parent at every open cost each
        // stream an fsync per restart.
        if let Some(parent) = self
            .dir
            .parent()
            .filter(|p| !p.as_os_str().is_empty() && !existed)
        {
            // Make the store directory's own entry durable.
            self.vfs.sync_dir(parent)?;
        }
        let (mut ids, mut indexed) = (Vec::new(), Vec::new());
        for name in self.vfs.list_dir(&self.dir)? {
            if let Some(id) = parse_block_name(&name) {
                ids.push(id);
            } else if let Some(id) = parse_idx_name(&name) {
                indexed.push(id);
            } else if name.ends_with(".tmp") {
                self.vfs.remove_file(&self.dir.join(&name))?;
            }
        }
        ids.sort_unstable();
        indexed.sort_unstable();
        if self.vfs.exists(&self.dir.join(SNAPSHOT_NAME)) {
            // Written by an earlier release, which kept no block indexes: any
            // found are not this snapshot's and may be stale.
            self.remove_indexes(&indexed)?;
            indexed.clear();
        }
        match self.load_snapshot(&ids) {
            Ok(Some(core)) => return Ok(core),
            Ok(None) => {}
            Err(why) => {
                warn!(dir = %self.dir.display(), %why, "index snapshot ignored, rebuilding");
                // It is derived data and will not match again; a later append could
                // make a stale one look current.
                self.snapshot_on_disk = true;
                self.invalidate_snapshot()?;
            }
        }
        if let Some(core) = self.recover_summed(&ids, &indexed) {
            self.from_summary = true;
            info!(dir = %self.dir.display(), msgs = core.msgs(), blocks = ids.len(),
                subjects = core.subjects.len(), "file store opened from its subject summary");
            return Ok(core);
        }
        self.blocks.clear();
        let mut core = Core::new(1);
        let n = ids.len();
        let mut adopted = 0;
        for (i, &id) in ids.iter().enumerate() {
            let is_last = i + 1 == n;
            if indexed.binary_search(&id).is_ok() && self.adopt_block(id, &mut core, is_last)? {
                adopted += 1;
            } else {
                self.load_block(id, &mut core, is_last)?;
            }
        }
        // Only adopted blocks keep an index file (see `blockidx`).
        indexed.retain(|id| {
            self.block_index(*id)
                .is_none_or(|i| self.blocks[i].indexed == 0)
        });
        self.remove_indexes(&indexed)?;
        self.report_missing(&core);
        self.apply_snapshot_floor(&mut core)?;
        info!(dir = %self.dir.display(), msgs = core.msgs(), blocks = n, adopted,
            "file store opened");
        Ok(core)
    }

    /// Opens the store from its subject summary (see `summary`) when there is
    /// one and it describes the blocks `ids`, all indexed (`indexed`), exactly:
    /// each block is adopted from its index's fixed head, the subjects are the
    /// summary's. `None` (and no block kept) otherwise: the caller reads the
    /// blocks' own subject lists. A summary not used stays until the next clean
    /// stop replaces it (so an open changes nothing on disk for it).
    fn recover_summed(&mut self, ids: &[u32], indexed: &[u32]) -> Option<Core<FileLoc>> {
        let data = match self.vfs.read_file(&self.dir.join(SUMMARY_NAME)) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                warn!(dir = %self.dir.display(), error = %e, "subject summary unreadable");
                return None;
            }
        };
        let used = summary::decode(data).and_then(|s| self.adopt_summed(&s, ids, indexed));
        used.inspect_err(|why| {
            info!(dir = %self.dir.display(), %why, "subject summary ignored; reading each block's subjects");
            self.blocks.clear();
        })
        .ok()
    }

    /// The core of the blocks `s` stamped, when they are exactly `ids` and
    /// every one is indexed as stamped.
    fn adopt_summed(
        &mut self,
        s: &summary::Summary,
        ids: &[u32],
        indexed: &[u32],
    ) -> Result<Core<FileLoc>, String> {
        let stamped: Vec<u32> = s.stamps.iter().map(Stamp::id).collect();
        if stamped != ids || indexed != ids {
            return Err("the blocks on disk are not the ones summed".into());
        }
        let mut core = Core::new(1);
        for (name, st) in s.subjects() {
            core.restore_subject(name, st);
        }
        for stamp in &s.stamps {
            self.adopt_stamped(stamp, &mut core)?;
        }
        if core.msgs() != s.msgs() {
            return Err(format!(
                "the blocks hold {} messages, the subjects {}",
                core.msgs(),
                s.msgs()
            ));
        }
        Ok(core)
    }

    /// Removes the index files of `ids`, durably.
    fn remove_indexes(&mut self, ids: &[u32]) -> Result<(), StoreError> {
        for &id in ids {
            match self.vfs.remove_file(&idx_path(&self.dir, id)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        if !ids.is_empty() {
            self.vfs.sync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// A clean stop recorded a higher last sequence than the blocks hold now (the
    /// newest records were damaged or cut): those sequences are lost, never reused.
    fn apply_snapshot_floor(&mut self, core: &mut Core<FileLoc>) -> Result<(), StoreError> {
        let Some((last, ts)) = self.snapshot_floor.take() else {
            return Ok(());
        };
        if last <= core.last_seq() {
            return Ok(());
        }
        warn!(dir = %self.dir.display(), first = core.last_seq() + 1, last,
            "newest messages lost; their sequences are not reused");
        if !self.lost.iter().any(|&(_, b)| b >= last) {
            self.lost.push((core.last_seq() + 1, last));
        }
        core.skip_to(last);
        core.set_last_ts(ts);
        self.last_ts = ts;
        self.append_marker(last)?;
        self.sync_all()
    }

    /// Opens block `id` and scans all of it.
    pub(super) fn load_block(
        &mut self,
        id: u32,
        core: &mut Core<FileLoc>,
        is_last: bool,
    ) -> Result<(), StoreError> {
        let path = block_path(&self.dir, id);
        let file = self.vfs.open(&path, false)?;
        let flen = file.len()?;
        let mut hdr = [0u8; BLOCK_HDR];
        let header = if flen >= BLOCK_HDR as u64 {
            file.read_at(0, &mut hdr)?;
            match decode_header(&hdr) {
                Header::Valid(first, prev_ts) => Some((first, prev_ts)),
                Header::Newer(v) => return Err(newer_format(&path, v)),
                Header::Damaged => None,
            }
        } else {
            None
        };
        let (first_seq, prev_ts) = match header {
            Some(h) => h,
            None if flen < BLOCK_HDR as u64 && is_last => {
                warn!(block = %path.display(), "torn block header rewritten");
                let h = (core.last_seq() + 1, core.last_ts());
                file.set_len(0)?;
                file.write_at(0, &encode_header(h.0, h.1))?;
                file.sync()?;
                h
            }
            None => {
                warn!(block = %path.display(), "damaged block header; scanning records anyway");
                (core.last_seq() + 1, core.last_ts())
            }
        };
        // Without a header the first sequence is only known from the records:
        // `scan_into` checks the gap then.
        if header.is_some()
            && let Some(after) = self.lost_tail_after.take()
            && first_seq > after + 1
        {
            self.lost.push((after + 1, first_seq - 1));
        }
        if first_seq > core.last_seq() {
            core.skip_to(first_seq - 1);
            core.set_last_ts(prev_ts);
        }
        self.scan_into(Block::empty(id, first_seq, prev_ts, file), core, is_last)?;
        if header.is_none() && !is_last {
            // Where its records ended is unknown: up to the next block's first.
            self.lost_tail_after = Some(core.last_seq());
        }
        Ok(())
    }

    /// Scans block `b` from `b.len` to the end of its file, adds what it finds, and keeps it.
    pub(super) fn scan_into(
        &mut self,
        mut b: Block,
        core: &mut Core<FileLoc>,
        is_last: bool,
    ) -> Result<(), StoreError> {
        let start = b.len;
        let flen = b.file.len()?;
        let mut data = vec![0; usize::try_from(flen.saturating_sub(start)).unwrap_or(0)];
        if !data.is_empty() {
            b.file.read_at(start, &mut data)?;
        }
        let s = scan(&data, 0, core.last_seq());
        if let Some(first) = s.records.first().map(|(_, v)| v.seq)
            && let Some(after) = self.lost_tail_after.take()
            && first > after + 1
        {
            self.lost.push((after + 1, first - 1));
        }
        for &(from, to, before, after) in &s.lost {
            warn!(
                block = b.id,
                bytes = to - from,
                lost_after_seq = before,
                lost_before_seq = after,
                "damaged records skipped; sequences in between are lost"
            );
            if after > before + 1 {
                self.lost.push((before + 1, after - 1));
            }
        }
        for (at, v) in &s.records {
            let off = start + *at as u64;
            if v.state == STATE_LIVE {
                let rec = &data[*at..*at + v.len];
                let subj = std::str::from_utf8(&rec[v.subj.clone()]).unwrap_or_default();
                let size = file_msg_size(v.subj.len(), v.hdr.len(), v.payload.len());
                let loc = FileLoc {
                    blk: b.id,
                    off: u32::try_from(off).map_err(|_| bad("offset"))?,
                    len: v.len as u32,
                };
                core.insert(
                    v.seq,
                    subj,
                    u32::try_from(size).map_err(|_| bad("size"))?,
                    v.ts,
                    loc,
                );
                b.live_msgs += 1;
                b.live_bytes += v.len as u64;
            } else {
                core.skip_to(v.seq);
                core.set_last_ts(v.ts);
            }
            b.last_seq = v.seq;
            b.last_ts = v.ts;
        }
        let good_end = start + s.good_end as u64;
        if good_end < flen {
            self.handle_tail(&b, good_end, flen, core.last_seq(), is_last)?;
        }
        b.len = if is_last { good_end } else { flen.max(start) };
        b.flushed = b.len;
        self.blocks.push(b);
        Ok(())
    }

    fn handle_tail(
        &mut self,
        b: &Block,
        good_end: u64,
        flen: u64,
        last_seq: u64,
        is_last: bool,
    ) -> Result<(), StoreError> {
        if is_last {
            warn!(
                block = b.id,
                at = good_end,
                bytes = flen - good_end,
                after_seq = last_seq,
                "torn tail truncated at the last whole record"
            );
            b.file.set_len(good_end)?;
            b.file.sync()?;
        } else {
            warn!(
                block = b.id,
                at = good_end,
                bytes = flen - good_end,
                after_seq = last_seq,
                "unreadable bytes at the end of a block; messages there are lost"
            );
            self.lost_tail_after = Some(last_seq);
        }
        Ok(())
    }
}

fn bad(what: &str) -> StoreError {
    StoreError::Corrupt(format!("record {what} out of range"))
}
