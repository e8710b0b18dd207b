//! The subject summary (`subjects.sum`): every subject's figures for the whole
//! store (messages, first and last sequence), written at a clean stop beside
//! the block indexes, so that the next open reads the subjects once instead of
//! once per block from each block index's head (with many subjects an open
//! was O(blocks × subjects): 1M messages on 100k subjects in 8 blocks read and
//! interned 800k subject entries).
//!
//! Derived data, as the block indexes: checksummed, not fsynced, and used only
//! when it provably describes the blocks found. It lists the stamp of every
//! block's index it was made from (the fixed part of the index head and the
//! head's checksum, which covers that block's subject list); an open uses it
//! only if the block files are exactly the blocks listed, in order, each with
//! an index file bearing the same stamp, a header as indexed, no bytes beyond
//! what was indexed, and its last record valid (the checks of any adopted
//! block). Anything else (damage, appends or deletes since, a crash after
//! changes, a store of an earlier release) and it is ignored: the blocks' own
//! subject lists are read as without it, and the next clean stop writes it
//! again (or removes it, when a block has no current index). Before a block's bytes change its index is removed or
//! rewritten (see `blockidx`), so its stamp no longer matches: a summary can
//! be stale only in ways an open sees.
//!
//! Owns the summary file; the stamps are kept by the blocks (`Block::stamp`).

use tracing::warn;

use super::block::{Block, STAMP_FIXED, Stamp};
use super::index::{Reader, put_varint};
use super::{FileBackend, FileLoc};
use crate::jetstream::store::core::{Core, SubjectTable};
use crate::jetstream::store::types::SubjectState;

/// File name of the subject summary.
pub(super) const SUMMARY_NAME: &str = "subjects.sum";
/// Magic of the summary, version 1.
const MAGIC: &[u8; 8] = b"RILLSUB\x01";

/// A checked summary: the stamps of the blocks it was made from, and its
/// subjects (decoded when they are restored).
#[derive(Debug)]
pub(super) struct Summary {
    pub(super) stamps: Vec<Stamp>,
    data: Vec<u8>,
    subjects_at: usize,
    n: usize,
    msgs: u64,
}

impl FileBackend {
    /// Writes the summary of the store as it is, when every block's index is
    /// current (a clean stop, after the indexes); removes an older one
    /// otherwise. Not fsynced, and a failure is logged only: without it the
    /// next open reads each block's subjects.
    pub(super) fn write_summary(&mut self, core: &Core<FileLoc>) {
        let path = self.dir.join(SUMMARY_NAME);
        let current = self.blocks.iter().all(|b| !core.needs_save(b.id));
        let Some(data) = encode(&self.blocks, &core.subjects).filter(|_| current) else {
            match self.vfs.remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    warn!(dir = %self.dir.display(), error = %e, "stale subject summary not removed")
                }
            }
            return;
        };
        let tmp = self.dir.join(format!("{SUMMARY_NAME}.tmp"));
        let written = self.vfs.open(&tmp, true).and_then(|f| {
            f.set_len(0)?;
            f.write_at(0, &data)
        });
        if let Err(e) = written.and_then(|()| self.vfs.rename(&tmp, &path)) {
            warn!(dir = %self.dir.display(), error = %e, "subject summary not written");
        }
    }
}

/// Encodes the summary of `blocks` (each with a current index's stamp) and
/// `subjects`; `None` when a block has no current index.
pub(super) fn encode(blocks: &[Block], subjects: &SubjectTable) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(16 + blocks.len() * Stamp::LEN + subjects.len() * 16);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&u32::try_from(blocks.len()).ok()?.to_le_bytes());
    for b in blocks {
        let stamp = b.stamp.as_ref().filter(|_| b.indexed == b.len)?;
        out.extend_from_slice(&stamp.fixed);
        out.extend_from_slice(&stamp.crc.to_le_bytes());
    }
    out.extend_from_slice(&u32::try_from(subjects.len()).ok()?.to_le_bytes());
    for (_, name, st) in subjects.iter() {
        out.extend_from_slice(&u16::try_from(name.len()).ok()?.to_le_bytes());
        out.extend_from_slice(name);
        put_varint(&mut out, st.msgs);
        put_varint(&mut out, st.first);
        put_varint(&mut out, st.last.checked_sub(st.first)?);
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Some(out)
}

/// Decodes and checks a summary file: checksum, magic, and every subject's
/// figures (a name of UTF-8, at least one message, first ≤ last).
pub(super) fn decode(data: Vec<u8>) -> Result<Summary, String> {
    let body_len = data.len().checked_sub(4).ok_or("summary too short")?;
    let crc = &data[body_len..];
    if crc32fast::hash(&data[..body_len]) != u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]) {
        return Err("summary checksum mismatch".into());
    }
    let mut r = Reader {
        buf: &data[..body_len],
        pos: 0,
    };
    if r.take(8)? != MAGIC {
        return Err("summary magic".into());
    }
    let blocks = r.u32()? as usize;
    if blocks > r.buf.len() / Stamp::LEN {
        return Err("summary block count".into());
    }
    let mut stamps = Vec::with_capacity(blocks);
    for _ in 0..blocks {
        let fixed: [u8; STAMP_FIXED] = r.take(STAMP_FIXED)?.try_into().map_err(|_| "stamp")?;
        stamps.push(Stamp {
            fixed,
            crc: r.u32()?,
        });
    }
    let n = r.u32()? as usize;
    let subjects_at = r.pos;
    let mut msgs = 0u64;
    for _ in 0..n {
        let (name, st) = read_subject(&mut r)?;
        if st.msgs == 0 {
            return Err(format!("summary subject {name} holds no message"));
        }
        msgs = msgs.saturating_add(st.msgs);
    }
    if r.pos != r.buf.len() {
        return Err("trailing bytes in summary".into());
    }
    Ok(Summary {
        stamps,
        data,
        subjects_at,
        n,
        msgs,
    })
}

impl Summary {
    /// Messages its subjects hold in all.
    pub(super) fn msgs(&self) -> u64 {
        self.msgs
    }

    /// Its subjects and their figures (checked by [`decode`]).
    pub(super) fn subjects(&self) -> impl Iterator<Item = (&str, SubjectState)> {
        let mut r = Reader {
            buf: &self.data[..self.data.len() - 4],
            pos: self.subjects_at,
        };
        (0..self.n).map_while(move |_| read_subject(&mut r).ok())
    }
}

fn read_subject<'a>(r: &mut Reader<'a>) -> Result<(&'a str, SubjectState), String> {
    let len = usize::from(r.u16()?);
    let name = std::str::from_utf8(r.take(len)?).map_err(|_| "summary subject not utf-8")?;
    let (msgs, first) = (r.varint()?, r.varint()?);
    let last = first
        .checked_add(r.varint()?)
        .ok_or("summary subject last")?;
    Ok((name, SubjectState { msgs, first, last }))
}
