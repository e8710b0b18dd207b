//! Block files: naming, the 32-byte header, and the in-memory state of one block.
//!
//! Owns a block's file handle and accounting; the index of which sequence lives
//! where is in the shared core.

use std::fmt;
use std::path::{Path, PathBuf};

use crc32fast::hash;

use super::super::vfs::VFile;

/// Size of the block header.
pub(crate) const BLOCK_HDR: usize = 40;
/// Magic at the start of every block file.
pub(crate) const BLOCK_MAGIC: &[u8; 8] = b"RILLBLK\0";
/// Block format version.
pub(crate) const BLOCK_VERSION: u32 = 1;
/// Suffix of block files.
pub(crate) const BLOCK_EXT: &str = ".blk";

/// File name of block `id`.
pub(crate) fn block_name(id: u32) -> String {
    format!("{id:010}{BLOCK_EXT}")
}

/// Path of block `id` in `dir`.
pub(crate) fn block_path(dir: &Path, id: u32) -> PathBuf {
    dir.join(block_name(id))
}

/// The block id in a file name, if it is a block file.
pub(crate) fn parse_block_name(name: &str) -> Option<u32> {
    let stem = name.strip_suffix(BLOCK_EXT)?;
    (stem.len() == 10 && stem.bytes().all(|b| b.is_ascii_digit()))
        .then(|| stem.parse().ok())
        .flatten()
}

/// Encodes a block header: first sequence and the timestamp of the message before it.
pub(crate) fn encode_header(first_seq: u64, prev_ts: i64) -> [u8; BLOCK_HDR] {
    let mut h = [0u8; BLOCK_HDR];
    h[..8].copy_from_slice(BLOCK_MAGIC);
    h[8..12].copy_from_slice(&BLOCK_VERSION.to_le_bytes());
    h[16..24].copy_from_slice(&first_seq.to_le_bytes());
    h[24..32].copy_from_slice(&prev_ts.to_le_bytes());
    let crc = hash(&h[..32]);
    h[32..36].copy_from_slice(&crc.to_le_bytes());
    h
}

/// What a block's first [`BLOCK_HDR`] bytes say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Header {
    /// A valid header of this format: (first sequence, previous timestamp).
    Valid(u64, i64),
    /// Not a valid header (damage, or too short): the records are scanned anyway.
    Damaged,
    /// A whole, checksummed header of a newer format version: the block is not
    /// this server's to read or write.
    Newer(u32),
}

/// Decodes a block header.
pub(crate) fn decode_header(h: &[u8]) -> Header {
    let Some(h) = h.get(..BLOCK_HDR) else {
        return Header::Damaged;
    };
    let word = |at: usize| u32::from_le_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]]);
    let long = |at: usize| u64::from(word(at)) | (u64::from(word(at + 4)) << 32);
    if &h[..8] != BLOCK_MAGIC || word(32) != hash(&h[..32]) {
        return Header::Damaged;
    }
    match word(8) {
        BLOCK_VERSION => Header::Valid(long(16), long(24) as i64),
        v if v > BLOCK_VERSION => Header::Newer(v),
        _ => Header::Damaged,
    }
}

/// The error for a block written by a newer format version.
pub(crate) fn newer_format(path: &Path, version: u32) -> super::super::types::StoreError {
    super::super::types::StoreError::Corrupt(format!(
        "{} was written in store format version {version}, newer than this server's \
         ({BLOCK_VERSION}); it is left untouched: run a rill version that reads it",
        path.display()
    ))
}

/// Bytes of a block index head before its subjects (see `blockidx`).
pub(crate) const STAMP_FIXED: usize = 108;

/// What the subject summary records of a block's index (see `summary`): the
/// fixed part of its head (the block's length, counts, first and last
/// sequence, ...) and the head's checksum, which covers the block's subject
/// list too. So an open tells the index the summary was made from by reading
/// 112 bytes of it instead of its subjects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub(crate) fixed: [u8; STAMP_FIXED],
    pub(crate) crc: u32,
}

impl Stamp {
    /// Bytes of a stamp in the summary.
    pub(crate) const LEN: usize = STAMP_FIXED + 4;

    /// The block id it names.
    pub(crate) fn id(&self) -> u32 {
        let f = &self.fixed;
        u32::from_le_bytes([f[12], f[13], f[14], f[15]])
    }
}

/// One block: an open file plus accounting.
pub(crate) struct Block {
    /// Block id (also its file name).
    pub(crate) id: u32,
    /// First sequence the block was created for (from its header).
    pub(crate) first_seq: u64,
    /// Timestamp of the last message before `first_seq` (from its header).
    pub(crate) prev_ts: i64,
    /// Highest sequence recorded in it (`first_seq - 1` when none).
    pub(crate) last_seq: u64,
    /// Timestamp of the record with `last_seq` (`prev_ts` when none).
    pub(crate) last_ts: i64,
    /// Logical length, including bytes still in the write buffer.
    pub(crate) len: u64,
    /// Bytes written to the file.
    pub(crate) flushed: u64,
    /// Live messages in it.
    pub(crate) live_msgs: u64,
    /// Record bytes of live messages.
    pub(crate) live_bytes: u64,
    /// The open file.
    pub(crate) file: Box<dyn VFile>,
    /// False while the block's records are trusted from the index snapshot but
    /// not yet read: the first load from the block verifies all of them.
    pub(crate) verified: std::cell::Cell<bool>,
    /// Bytes of the block its index file (`<id>.idx`) describes; 0 when it has none.
    pub(crate) indexed: u64,
    /// Its index file is of format version 1 (rewritten in version 2 when it can be).
    pub(crate) legacy_idx: bool,
    /// The stamp of its index file while that is current (version 2, written
    /// or adopted as it is); what the subject summary lists of it.
    pub(crate) stamp: Option<Stamp>,
}

impl fmt::Debug for Block {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Block")
            .field("id", &self.id)
            .field("first_seq", &self.first_seq)
            .field("last_seq", &self.last_seq)
            .field("len", &self.len)
            .field("live_msgs", &self.live_msgs)
            .finish()
    }
}

impl Block {
    /// A block with no records yet (header only), verified and without an index file.
    pub(crate) fn empty(id: u32, first_seq: u64, prev_ts: i64, file: Box<dyn VFile>) -> Self {
        Self {
            id,
            first_seq,
            prev_ts,
            last_seq: first_seq.saturating_sub(1),
            last_ts: prev_ts,
            len: BLOCK_HDR as u64,
            flushed: BLOCK_HDR as u64,
            live_msgs: 0,
            live_bytes: 0,
            file,
            verified: std::cell::Cell::new(true),
            indexed: 0,
            legacy_idx: false,
            stamp: None,
        }
    }

    /// Bytes of records that are no longer live.
    pub(crate) fn dead_bytes(&self) -> u64 {
        self.len
            .saturating_sub(BLOCK_HDR as u64)
            .saturating_sub(self.live_bytes)
    }
}
