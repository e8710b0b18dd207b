//! Block index files (`<id>.idx`): what one block holds, so an open adopts the
//! block without reading its records, and (format version 2) without reading
//! its entries either: only the index's head is read at open; the entries are
//! read when the block's messages are first used (see `lazy`).
//!
//! A block's index is written when the block is sealed (at the first sync after
//! the store rolled over to a new block: the rotation checkpoint), for blocks
//! without a current one at a clean stop, and when the index cache is over its
//! bound for blocks changed since they were indexed (so their entries can leave
//! memory). So a clean stop writes the index of the active block only, and an
//! open after a crash scans only what was written since the last checkpoint.
//!
//! An index is derived data and is not fsynced: it is written only after its
//! block's bytes were, and it is checksummed, so a lost or torn one only means
//! the block is scanned. What must never happen is a *valid* index describing a
//! block that changed: before a delete is written into the bytes an index
//! describes, and before a block is compacted, the index file is removed and
//! the directory synced; an open removes (durably) every index it does not adopt.
//! So an index file exists exactly for the blocks with `Block::indexed > 0`.
//!
//! Version 1 indexes (one checksum over everything, no per-subject head) are
//! still read: such a block's entries are decoded at open and kept in memory
//! until the index is written again in version 2.
//!
//! Owns the index files; the legacy whole-store snapshot is in `index`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::FileLoc;
use super::block::{BLOCK_HDR, Block, STAMP_FIXED, Stamp};
use super::index::{Entry, Reader, put_entry, put_varint, read_entry};
use crate::jetstream::store::core::{Core, SegSummary};
use crate::jetstream::store::types::SubjectState;
use crate::jetstream::store::vfs::SharedVfs;

/// Suffix of block index files.
pub(super) const IDX_EXT: &str = ".idx";
/// Magic of a block index file, version 1.
pub(super) const MAGIC_V1: &[u8; 8] = b"RILLBIX\x01";
/// Magic of a block index file, version 2.
pub(super) const MAGIC: &[u8; 8] = b"RILLBIX\x02";
/// Bytes of a version 2 head before its subjects.
pub(super) const HEAD_FIXED: usize = STAMP_FIXED;
/// Bytes read first when opening an index (most heads fit).
pub(super) const HEAD_PROBE: u64 = 4096;

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

/// The checked head of a version 2 index: the block as it was described,
/// what it holds, and of each subject.
#[derive(Debug, Clone)]
pub(crate) struct Head {
    pub(crate) id: u32,
    pub(super) first_seq: u64,
    pub(super) prev_ts: i64,
    pub(crate) len: u64,
    pub(crate) last_seq: u64,
    pub(super) last_ts: i64,
    pub(crate) sum: SegSummary,
    pub(super) rec_bytes: u64,
    pub(super) newest: FileLoc,
    /// Its subjects; empty when only the fixed part was decoded ([`decode_fixed`]).
    pub(crate) subjects: Vec<(String, SubjectState)>,
    pub(super) head_len: usize,
}

/// The stamp of the version 2 index whose head `data` holds (unchecked).
pub(super) fn stamp_of(data: &[u8]) -> Option<Stamp> {
    let h = head_len(data)?;
    let crc = data.get(h.checked_sub(4)?..h)?;
    Some(Stamp {
        fixed: data.get(..HEAD_FIXED)?.try_into().ok()?,
        crc: u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]),
    })
}

/// Reads the stamp of the index file at `path`: its first bytes and the head's
/// checksum (two small reads; the subjects between them are not read).
pub(super) fn read_stamp(vfs: &SharedVfs, path: &Path) -> std::io::Result<Stamp> {
    let f = vfs.open(path, false)?;
    let mut fixed = [0; HEAD_FIXED];
    f.read_at(0, &mut fixed)?;
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "not a version 2 index");
    let h = head_len(&fixed)
        .filter(|&h| h >= HEAD_FIXED + 4)
        .ok_or_else(bad)?;
    let mut crc = [0; 4];
    f.read_at(h as u64 - 4, &mut crc)?;
    Ok(Stamp {
        fixed,
        crc: u32::from_le_bytes(crc),
    })
}

/// Encodes block `b`'s index (version 2) from the live messages `core` holds of it.
pub(super) fn encode(b: &Block, core: &Core<FileLoc>) -> Vec<u8> {
    let mut local: HashMap<u32, usize> = HashMap::new();
    let mut subjects: Vec<(bytes::Bytes, SubjectState)> = Vec::new();
    let mut body = Vec::with_capacity(b.live_msgs as usize * 9);
    let mut prev = Entry::default();
    let (mut sum, mut rec_bytes, mut newest) = (SegSummary::default(), 0, FileLoc::default());
    core.with_unit(b.id, |first, slots| {
        for (k, s) in slots.iter().enumerate() {
            let Some(s) = s else { continue };
            let seq = first + k as u64;
            let i = *local.entry(s.subj).or_insert_with(|| {
                let st = SubjectState {
                    msgs: 0,
                    first: seq,
                    last: seq,
                };
                subjects.push((core.subjects.name(s.subj), st));
                subjects.len() - 1
            });
            subjects[i].1.msgs += 1;
            subjects[i].1.last = seq;
            let e = Entry {
                seq,
                subj: i as u32,
                ts: s.ts,
                size: s.size.get(),
                loc: s.loc,
            };
            put_entry(&mut body, &prev, &e);
            prev = e;
            if sum.msgs == 0 {
                sum.first = seq;
            }
            sum.msgs += 1;
            sum.bytes += u64::from(s.size.get());
            sum.last = seq;
            rec_bytes += u64::from(s.loc.len);
            newest = s.loc;
        }
    });
    let mut out = Vec::with_capacity(HEAD_FIXED + subjects.len() * 16 + body.len() + 8);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&b.id.to_le_bytes());
    for v in [
        b.first_seq,
        b.prev_ts as u64,
        b.len,
        b.last_seq,
        b.last_ts as u64,
        sum.msgs,
        sum.bytes,
        rec_bytes,
        sum.first,
        sum.last,
    ] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&newest.off.to_le_bytes());
    out.extend_from_slice(&newest.len.to_le_bytes());
    out.extend_from_slice(&(subjects.len() as u32).to_le_bytes());
    for (name, st) in &subjects {
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(name);
        put_varint(&mut out, st.msgs);
        put_varint(&mut out, st.first - b.first_seq);
        put_varint(&mut out, st.last - b.first_seq);
    }
    let head_len = out.len() + 4;
    out[8..12].copy_from_slice(&(head_len as u32).to_le_bytes());
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    let entries_at = out.len();
    out.extend_from_slice(&body);
    let crc = crc32fast::hash(&out[entries_at..]);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The head length a version 2 index starts with (`None`: not version 2).
pub(super) fn head_len(data: &[u8]) -> Option<usize> {
    let len = data.get(8..12)?;
    (data.get(..8)? == MAGIC).then(|| u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize)
}

/// The first bytes of the index file at `path`: a version 2 index's head and
/// `extra` bytes after it, or the whole file when it is not version 2. `None`
/// when there is no file.
pub(super) fn read_head(
    vfs: &SharedVfs,
    path: &Path,
    extra: u64,
) -> std::io::Result<Option<Vec<u8>>> {
    let f = match vfs.open(path, false) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let flen = f.len()?;
    let mut data = vec![0; usize::try_from(flen.min(HEAD_PROBE)).unwrap_or(0)];
    f.read_at(0, &mut data)?;
    let want = match head_len(&data) {
        Some(h) => (h as u64 + extra).min(flen),
        None => flen,
    };
    if want > data.len() as u64 {
        data.resize(usize::try_from(want).unwrap_or(0), 0);
        f.read_at(0, &mut data)?;
    } else {
        data.truncate(usize::try_from(want).unwrap_or(0));
    }
    Ok(Some(data))
}

/// The first entry of a version 2 index whose head is `head`, from `sect`: the
/// bytes after the head, holding at least that entry. Not checked against the
/// entries' crc (the caller reads the record it places and checks that).
pub(crate) fn first_entry(sect: &[u8], head: &Head) -> Result<Entry, String> {
    let e = read_entry(&mut Reader { buf: sect, pos: 0 }, &Entry::default())?;
    let in_block = e.loc.blk == head.id && e.loc.off >= BLOCK_HDR as u32;
    if e.seq != head.sum.first || !in_block {
        return Err("first index entry is not the block's first message".into());
    }
    Ok(e)
}

/// Decodes and checks the head of a version 2 index (`data` holds at least the head).
pub(crate) fn decode_head(data: &[u8]) -> Result<Head, String> {
    let head_len = head_len(data).ok_or("index magic")?;
    if head_len < HEAD_FIXED + 4 || head_len > data.len() {
        return Err("index head length".into());
    }
    let (head, crc) = data[..head_len].split_at(head_len - 4);
    if crc32fast::hash(head) != u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]) {
        return Err("index head checksum mismatch".into());
    }
    let (mut h, n) = fixed_fields(head)?;
    let mut r = Reader {
        buf: head,
        pos: HEAD_FIXED,
    };
    let mut counted = 0u64;
    for _ in 0..n {
        let len = usize::from(r.u16()?);
        let name = std::str::from_utf8(r.take(len)?).map_err(|_| "subject not utf-8")?;
        let st = SubjectState {
            msgs: r.varint()?,
            first: h
                .first_seq
                .checked_add(r.varint()?)
                .ok_or("subject first")?,
            last: h.first_seq.checked_add(r.varint()?).ok_or("subject last")?,
        };
        if st.msgs == 0 || st.first > st.last || st.first < h.sum.first || st.last > h.sum.last {
            return Err(format!("index subject {name} is inconsistent"));
        }
        counted = counted.saturating_add(st.msgs);
        h.subjects.push((name.to_owned(), st));
    }
    if r.pos != r.buf.len() {
        return Err("trailing bytes in index head".into());
    }
    if counted != h.sum.msgs {
        return Err("index head is inconsistent".into());
    }
    Ok(h)
}

/// The head a stamp records, without its subjects. The stamp's bytes are
/// trusted (the summary that holds it is checksummed); the fields are checked.
pub(crate) fn decode_fixed(stamp: &Stamp) -> Result<Head, String> {
    if head_len(&stamp.fixed).is_none() {
        return Err("index magic".into());
    }
    fixed_fields(&stamp.fixed).map(|(h, _)| h)
}

/// The fields of a head before its subjects, checked against each other, and
/// the number of subjects that follow.
pub(super) fn fixed_fields(head: &[u8]) -> Result<(Head, u32), String> {
    let head_len = head_len(head).ok_or("index magic")?;
    let mut r = Reader { buf: head, pos: 12 };
    let id = r.u32()?;
    let (first_seq, prev_ts, len) = (r.u64()?, r.u64()? as i64, r.u64()?);
    let (last_seq, last_ts) = (r.u64()?, r.u64()? as i64);
    let (msgs, bytes, rec_bytes) = (r.u64()?, r.u64()?, r.u64()?);
    let sum = SegSummary {
        msgs,
        bytes,
        first: r.u64()?,
        last: r.u64()?,
    };
    let newest = FileLoc {
        blk: id,
        off: r.u32()?,
        len: r.u32()?,
    };
    let n = r.u32()?;
    let in_block =
        newest.off >= BLOCK_HDR as u32 && u64::from(newest.off) + u64::from(newest.len) <= len;
    let ordered = first_seq <= sum.first && sum.first <= sum.last && sum.last <= last_seq;
    if msgs > 0 && !(in_block && ordered) {
        return Err("index head is inconsistent".into());
    }
    let head = Head {
        id,
        first_seq,
        prev_ts,
        len,
        last_seq,
        last_ts,
        sum,
        rec_bytes,
        newest,
        subjects: Vec::new(),
        head_len,
    };
    Ok((head, n))
}

/// Decodes and checks the entries of a version 2 index whose head is `head`:
/// their checksum, order, place in the block, and that they add up to the head.
pub(crate) fn decode_entries(data: &[u8], head: &Head) -> Result<Vec<Entry>, String> {
    let sect = data.get(head.head_len..).ok_or("index entries missing")?;
    let body_len = sect.len().checked_sub(4).ok_or("index entries truncated")?;
    let (body, crc) = sect.split_at(body_len);
    if crc32fast::hash(body) != u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]) {
        return Err("index entries checksum mismatch".into());
    }
    let n = usize::try_from(head.sum.msgs).map_err(|_| "message count")?;
    // Every entry takes at least 7 bytes: a count the rest cannot hold is damage.
    if n > body_len / 7 {
        return Err("message count beyond the index".into());
    }
    let mut r = Reader { buf: body, pos: 0 };
    let mut out = Vec::with_capacity(n);
    let (mut prev, mut bytes) = (Entry::default(), 0u64);
    for _ in 0..n {
        let e = read_entry(&mut r, &prev)?;
        let in_block = e.loc.blk == head.id
            && e.loc.off >= BLOCK_HDR as u32
            && u64::from(e.loc.off) + u64::from(e.loc.len) <= head.len;
        let in_order = e.seq > prev.seq && e.seq >= head.sum.first && e.seq <= head.sum.last;
        if !in_block || !in_order || e.subj as usize >= head.subjects.len() {
            return Err(format!("index entry for seq {} is inconsistent", e.seq));
        }
        bytes = bytes.saturating_add(u64::from(e.size));
        out.push(e);
        prev = e;
    }
    let ends = out.first().map(|e| e.seq) == Some(head.sum.first) && prev.seq == head.sum.last;
    if r.pos != r.buf.len() || bytes != head.sum.bytes || (n > 0 && !ends) {
        return Err("index entries do not match its head".into());
    }
    Ok(out)
}

/// A whole version 2 index, decoded and checked (fuzzing, tests).
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn decode_v2(data: &[u8]) -> Result<(Head, Vec<Entry>), String> {
    let head = decode_head(data)?;
    let entries = decode_entries(data, &head)?;
    Ok((head, entries))
}

/// A checked version 1 block index: the block as it was described, and its live messages
/// (each entry's `subj` indexes `subjects`), kept encoded: they are decoded
/// again straight into the store's index when the block is adopted, so an open
/// holds no per-message buffer beside it.
#[derive(Debug)]
pub(crate) struct BlockIndex {
    pub(crate) id: u32,
    pub(super) first_seq: u64,
    pub(super) prev_ts: i64,
    pub(crate) len: u64,
    pub(crate) last_seq: u64,
    pub(super) last_ts: i64,
    pub(super) subjects: Vec<String>,
    /// Number of entries, the first and the newest.
    pub(super) n: usize,
    pub(super) first: Option<Entry>,
    pub(super) newest: Option<Entry>,
    /// The file's bytes (without the crc) and where the entries start in them.
    pub(super) data: Vec<u8>,
    pub(super) entries_at: usize,
}

impl BlockIndex {
    /// Number of live messages it lists.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn msgs(&self) -> usize {
        self.n
    }

    /// The entries in order (all checked by `decode`).
    pub(super) fn entries(&self) -> impl Iterator<Item = Entry> + '_ {
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

/// Decodes and checks a version 1 block index file: checksum, magic, and every entry in
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
    if r.take(8)? != MAGIC_V1 {
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
