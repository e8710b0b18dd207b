//! Loading a block's index entries when its messages are first used.
//!
//! An open adopts a block from the head of its version 2 index (see
//! `blockidx`): the core knows the block's live count, bytes, first and last
//! sequence and what it holds of each subject, not where each message is. The
//! first use of one of its messages reads the index's entries back through
//! [`IdxLoader`]; when they are gone or fail their checksum, the block itself is
//! scanned (every record checked) instead, so a damaged index costs a scan and
//! nothing else. If the block does not hold what the head recorded (both were
//! damaged), the core keeps what the scan found, the sequences the scan could
//! not read are reported lost, and the counts are recomputed at the next change.
//!
//! Owns nothing: it reads the files of the store's directory, never writes them.

use std::num::NonZeroU32;
use std::path::PathBuf;

use tracing::{debug, warn};

use super::FileLoc;
use super::block::{BLOCK_HDR, block_path};
use super::blockidx::{
    HEAD_FIXED, Head, decode_entries, decode_head, first_entry, fixed_fields, idx_path,
};
use super::index::Entry;
use super::record::{self, STATE_LIVE};
use super::recovery::scan;
use crate::jetstream::store::core::{Loaded, SegLoader, SegSummary, Slot, SubjectTable};
use crate::jetstream::store::types::file_msg_size;
use crate::jetstream::store::vfs::SharedVfs;

/// Reads a block's slots back from its index file, or from the block.
#[derive(Debug)]
pub(super) struct IdxLoader {
    pub(super) vfs: SharedVfs,
    pub(super) dir: PathBuf,
}

impl SegLoader<FileLoc> for IdxLoader {
    fn load(&self, unit: u32, sum: &SegSummary, subjects: &SubjectTable) -> Loaded<FileLoc> {
        match self.read_entries(unit, sum, subjects) {
            Ok(slots) => Loaded {
                slots,
                lost: Vec::new(),
            },
            Err(why) => {
                warn!(block = unit, %why, "block index entries unusable; scanning the block");
                self.scan_block(unit, sum, subjects)
            }
        }
    }

    fn first_ts(&self, unit: u32, sum: &SegSummary) -> Option<i64> {
        self.read_first_ts(unit, sum)
            .inspect_err(|why| debug!(block = unit, %why, "first message read with its block"))
            .ok()
    }
}

/// Bytes read after an index head for its first entry (seven varints).
const FIRST_ENTRY_MAX: u64 = 70;

impl IdxLoader {
    /// The timestamp of the block's first live message: its place from the
    /// index's first entry, its record read and checked (crc, sequence, live).
    fn read_first_ts(&self, unit: u32, sum: &SegSummary) -> Result<i64, String> {
        let (head, e) = self.read_first_entry(unit)?;
        if head.id != unit || head.sum != *sum {
            return Err("index no longer describes the block as opened".into());
        }
        let mut rec = vec![0; e.loc.len as usize];
        self.vfs
            .open(&block_path(&self.dir, unit), false)
            .and_then(|f| f.read_at(u64::from(e.loc.off), &mut rec))
            .map_err(|e| e.to_string())?;
        let v = record::parse(&rec).map_err(|e| format!("record: {e:?}"))?;
        if v.seq != sum.first || v.state != STATE_LIVE || v.len != rec.len() {
            return Err("record is not the first message".into());
        }
        Ok(v.ts)
    }

    /// The fixed part of the block's index head and the index's first entry: two
    /// small reads, not the head's subjects (a block of 100,000 subjects has a head
    /// of megabytes, which this read and decoded whole at every open). Not checked
    /// against the head's checksum: the record the entry places is checked instead.
    fn read_first_entry(&self, unit: u32) -> Result<(Head, Entry), String> {
        let f = self
            .vfs
            .open(&idx_path(&self.dir, unit), false)
            .map_err(|e| e.to_string())?;
        let flen = f.len().map_err(|e| e.to_string())?;
        let mut fixed = vec![0; HEAD_FIXED];
        f.read_at(0, &mut fixed).map_err(|e| e.to_string())?;
        let (head, _) = fixed_fields(&fixed)?;
        let start = head.head_len as u64;
        let n = flen.saturating_sub(start).min(FIRST_ENTRY_MAX);
        let mut sect = vec![0; usize::try_from(n).unwrap_or(0)];
        f.read_at(start, &mut sect).map_err(|e| e.to_string())?;
        let e = first_entry(&sect, &head)?;
        Ok((head, e))
    }

    /// The slots the index file lists, if it still describes `sum`.
    fn read_entries(
        &self,
        unit: u32,
        sum: &SegSummary,
        subjects: &SubjectTable,
    ) -> Result<Vec<(u64, Slot<FileLoc>)>, String> {
        let data = self
            .vfs
            .read_file(&idx_path(&self.dir, unit))
            .map_err(|e| e.to_string())?;
        let head = decode_head(&data)?;
        if head.id != unit || head.sum != *sum {
            return Err("index no longer describes the block as opened".into());
        }
        let ids = head
            .subjects
            .iter()
            .map(|(name, _)| {
                subjects
                    .id(name)
                    .ok_or("index subject unknown to the store")
            })
            .collect::<Result<Vec<u32>, _>>()?;
        let entries = decode_entries(&data, &head)?;
        Ok(entries
            .into_iter()
            .map(|e| {
                let slot = Slot {
                    subj: ids[e.subj as usize],
                    size: NonZeroU32::new(e.size).unwrap_or(NonZeroU32::MIN),
                    ts: e.ts,
                    loc: e.loc,
                };
                (e.seq, slot)
            })
            .collect())
    }

    /// The live records of block `unit` in `sum`'s range, every one checked,
    /// and the ranges in it the scan could not read.
    fn scan_block(&self, unit: u32, sum: &SegSummary, subjects: &SubjectTable) -> Loaded<FileLoc> {
        let read = || -> std::io::Result<Vec<u8>> {
            let f = self.vfs.open(&block_path(&self.dir, unit), false)?;
            let mut data = vec![0; usize::try_from(f.len()?).unwrap_or(0)];
            f.read_at(0, &mut data)?;
            Ok(data)
        };
        let whole = (sum.first, sum.last);
        let data = match read() {
            Ok(d) if d.len() >= BLOCK_HDR => d,
            Ok(_) => return lost_all(whole),
            Err(e) => {
                warn!(block = unit, error = %e, "block unreadable; its messages are lost");
                return lost_all(whole);
            }
        };
        let s = scan(&data, BLOCK_HDR, 0);
        let mut out = Loaded::default();
        for (at, v) in &s.records {
            if v.state != STATE_LIVE || v.seq < sum.first || v.seq > sum.last {
                continue;
            }
            let rec = &data[*at..*at + v.len];
            let name = std::str::from_utf8(&rec[v.subj.clone()]).unwrap_or_default();
            let (Some(subj), Ok(off), Ok(size)) = (
                subjects.id(name),
                u32::try_from(*at),
                u32::try_from(file_msg_size(v.subj.len(), v.hdr.len(), v.payload.len())),
            ) else {
                continue;
            };
            let slot = Slot {
                subj,
                size: NonZeroU32::new(size).unwrap_or(NonZeroU32::MIN),
                ts: v.ts,
                loc: FileLoc {
                    blk: unit,
                    off,
                    len: v.len as u32,
                },
            };
            out.slots.push((v.seq, slot));
        }
        for &(_, _, before, after) in &s.lost {
            let (a, b) = ((before + 1).max(sum.first), (after - 1).min(sum.last));
            if after > before + 1 && a <= b {
                out.lost.push((a, b));
            }
        }
        let found_last = out.slots.last().map_or(sum.first - 1, |(seq, _)| *seq);
        if found_last < sum.last && s.good_end < data.len() {
            out.lost.push((found_last + 1, sum.last));
        }
        out
    }
}

fn lost_all((first, last): (u64, u64)) -> Loaded<FileLoc> {
    Loaded {
        slots: Vec::new(),
        lost: vec![(first, last)],
    }
}
