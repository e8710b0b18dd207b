//! Lazy block indexes: an open reads each indexed block's head only, the
//! entries come back on first use, at most the configured cache of them stays
//! in memory, and damage found on the way costs only the damaged records.

use std::path::{Path, PathBuf};

use super::super::*;

const BLOCK: u64 = 4096;

fn open_with(dir: &Path, disk: &SimDisk, index_cache: usize) -> FileStore {
    let cfg = StoreConfig {
        block_size: BLOCK,
        index_cache,
        ..StoreConfig::default()
    };
    FileStore::open(dir, cfg, disk.shared()).expect("open")
}

pub(super) fn open(dir: &Path, disk: &SimDisk) -> FileStore {
    open_with(dir, disk, DEFAULT_INDEX_CACHE)
}

pub(super) fn body(seq: u64) -> Vec<u8> {
    format!("payload-{seq}-")
        .repeat(1 + (seq % 3) as usize)
        .into_bytes()
}

pub(super) fn fill(s: &mut FileStore, n: u64) {
    for i in 1..=n {
        s.append(&format!("s.{}", i % 7), None, &body(i))
            .expect("append");
    }
    s.sync().expect("sync");
}

pub(super) fn all(s: &FileStore) -> Vec<(u64, String, Vec<u8>)> {
    std::iter::successors(s.load_next(1, ">").ok(), |m| {
        s.load_next(m.seq + 1, ">").ok()
    })
    .map(|m| {
        let subj = String::from_utf8(m.subject.to_vec()).expect("utf-8");
        (m.seq, subj, m.payload.to_vec())
    })
    .collect()
}

/// A disk whose store directory's own entries are durable (so a power loss
/// keeps the store).
pub(super) fn new_disk(dir: &Path) -> SimDisk {
    let disk = SimDisk::new();
    disk.create_dir_all(dir).expect("mkdir");
    for d in dir.ancestors().skip(1) {
        disk.sync_dir(d).expect("sync dir");
    }
    disk
}

/// SIGKILL: the store is not dropped (nothing buffered is written); what it
/// wrote stays (the OS has it).
pub(super) fn kill(s: FileStore) {
    std::mem::forget(s);
}

/// SIGKILL, then power loss: what was not made durable is gone (block indexes
/// too: they are not fsynced).
fn power_loss(s: FileStore, disk: &SimDisk) {
    kill(s);
    disk.crash();
}

pub(super) fn idx_of(dir: &Path, blk: u32) -> PathBuf {
    dir.join(format!("{blk:010}.idx"))
}

/// The subjects' counts add up to the stream's, and each subject's first and
/// last message are stored under it.
pub(super) fn subjects_consistent(s: &FileStore) {
    let subjects = s.subjects(">");
    let total: u64 = subjects.iter().map(|(_, st)| st.msgs).sum();
    assert_eq!(total, s.state().msgs);
    for (name, st) in subjects {
        for seq in [st.first, st.last] {
            let m = s.load(seq).expect("subject end stored");
            assert_eq!(&m.subject[..], name.as_bytes());
        }
    }
}

/// After a clean stop, an open holds no block's entries; the first load of a
/// message reads its block's entries only; every message is served as stored.
#[test]
fn a_clean_stop_opens_with_no_entries_in_memory() {
    let dir = Path::new("/d/s");
    let disk = new_disk(dir);
    let mut s = open(dir, &disk);
    fill(&mut s, 1000);
    s.close().expect("close");
    let (st, msgs, subjects) = (s.state(), all(&s), s.subjects(">"));
    let blocks = s.block_count();
    assert!(blocks > 10, "{blocks} blocks");
    drop(s);
    let s = open(dir, &disk);
    assert_eq!(s.loaded_blocks(), 0, "nothing loaded at open");
    assert_eq!(s.subjects(">"), subjects, "subjects from the heads");
    assert_eq!(s.loaded_blocks(), 0);
    assert_eq!(&s.load(500).expect("500").payload[..], &body(500)[..]);
    assert_eq!(s.loaded_blocks(), 1, "one block loaded");
    assert_eq!(s.state(), st);
    assert_eq!(all(&s), msgs);
    assert_eq!(s.state().lost, None);
    subjects_consistent(&s);
}

/// What a stream's info and an open of its stream read (the first message's
/// time, the last message) come without loading any block's entries; removing
/// the last message and damaging the first record leave both answers right.
#[test]
fn the_first_time_and_the_last_message_need_no_entries() {
    let dir = Path::new("/d/s");
    let disk = new_disk(dir);
    let mut s = open(dir, &disk);
    fill(&mut s, 1000);
    s.close().expect("close");
    let st = s.state();
    let first = s.core.get(1).expect("1").loc;
    drop(s);
    let mut s = open(dir, &disk);
    assert_eq!(s.state(), st);
    let last = s.load(1000).expect("last");
    assert_eq!((last.seq, &last.payload[..]), (1000, &body(1000)[..]));
    assert_eq!(&last.subject[..], b"s.6");
    assert_eq!(
        s.loaded_blocks(),
        0,
        "nothing loaded for the info and the last message"
    );
    s.remove(1000).expect("remove the last");
    assert_eq!(s.load(999).expect("999").seq, 999);
    assert!(matches!(s.load(1000), Err(StoreError::Deleted)));
    s.close().expect("close");
    let st = s.state();
    drop(s);
    // The first record damaged: its time comes from its block's entries.
    let f = disk
        .open(&dir.join(format!("{:010}.blk", first.blk)), false)
        .expect("blk");
    f.write_at(u64::from(first.off) + 30, &[0x55; 3])
        .expect("damage");
    let s = open(dir, &disk);
    assert_eq!(s.state().first_ts, st.first_ts);
    assert_eq!(s.load(999).expect("999").seq, 999);
    assert!(
        matches!(s.load(1), Err(StoreError::Deleted)),
        "the damaged record"
    );
    assert_eq!(s.state().lost.expect("reported").msgs, vec![1]);
}

/// After a kill, the blocks sealed before the last sync are opened from their
/// index heads; only the active one is scanned. Nothing acknowledged is lost,
/// and changes to lazily loaded blocks survive the next kill.
#[test]
fn after_a_kill_sealed_blocks_are_loaded_lazily() {
    let dir = Path::new("/d/s");
    let disk = new_disk(dir);
    let mut s = open(dir, &disk);
    fill(&mut s, 1000);
    let (st, msgs) = (s.state(), all(&s));
    kill(s);
    let mut s = open(dir, &disk);
    assert!(s.loaded_blocks() <= 1, "{} loaded", s.loaded_blocks());
    assert_eq!(s.state(), st);
    assert_eq!(all(&s), msgs);
    for seq in [3, 400, 401, 777] {
        s.remove(seq).expect("remove");
    }
    s.append("s.new", None, b"after").expect("append");
    s.sync().expect("sync");
    let (st, msgs) = (s.state(), all(&s));
    kill(s);
    let s = open(dir, &disk);
    assert_eq!(s.state(), st);
    assert_eq!(all(&s), msgs);
    assert!(matches!(s.load(400), Err(StoreError::Deleted)));
    subjects_consistent(&s);
}

/// With a cache of a few blocks' entries, reading everything and deleting
/// across every block keeps at most that many blocks loaded (changed blocks
/// are indexed again at the next sync, then leave memory); the store opens to
/// the same state after a clean stop and after a power loss.
#[test]
fn the_index_cache_stays_within_its_bound() {
    for clean in [true, false] {
        let dir = Path::new("/d/s");
        let disk = new_disk(dir);
        let mut s = open(dir, &disk);
        fill(&mut s, 2000);
        s.close().expect("close");
        drop(s);
        // Two blocks' worth of entries (a block holds about 60 messages).
        let mut s = open_with(dir, &disk, 120 * 32);
        let mut most = 0;
        for seq in (1..=2000).step_by(13) {
            s.load(seq).expect("load");
            most = most.max(s.loaded_blocks());
        }
        assert!(most <= 3, "{most} blocks loaded at once");
        for seq in (5..=2000).step_by(9) {
            s.remove(seq).expect("remove");
        }
        s.sync().expect("sync");
        assert!(s.loaded_blocks() <= 3, "{} after sync", s.loaded_blocks());
        subjects_consistent(&s);
        if clean {
            s.close().expect("close");
        }
        let (st, msgs) = (s.state(), all(&s));
        if clean {
            drop(s);
        } else {
            power_loss(s, &disk);
        }
        let s = open_with(dir, &disk, 120 * 32);
        assert_eq!(s.state(), st, "clean: {clean}");
        assert_eq!(all(&s), msgs, "clean: {clean}");
        assert_eq!(s.state().lost, None);
    }
}

/// An index whose head is intact but whose entries are damaged is adopted at
/// open; the first use finds the entries bad and scans the block instead:
/// every message is served, nothing is reported lost.
#[test]
fn damaged_entries_of_a_lazy_index_cost_a_scan_only() {
    let dir = Path::new("/d/s");
    let disk = new_disk(dir);
    let mut s = open(dir, &disk);
    fill(&mut s, 1000);
    s.close().expect("close");
    let (st, msgs) = (s.state(), all(&s));
    let blk = s.core.get(500).expect("500").loc.blk;
    drop(s);
    let path = idx_of(dir, blk);
    let data = disk.read_file(&path).expect("idx");
    let head = u32::from_le_bytes([data[8], data[9], data[10], data[11]]) as u64;
    let f = disk.open(&path, false).expect("idx");
    f.write_at(head + 5, &[0xEE; 2]).expect("damage");
    let s = open(dir, &disk);
    assert_eq!(s.loaded_blocks(), 0, "adopted from its head");
    assert_eq!(&s.load(500).expect("500").payload[..], &body(500)[..]);
    assert_eq!(s.state(), st);
    assert_eq!(all(&s), msgs);
    assert_eq!(s.state().lost, None);
}

/// Damage in a block whose index is loaded lazily, found when it is first
/// used: with its index intact, the damaged record alone is lost; with the
/// index's entries damaged too, the block is scanned, the unreadable record is
/// reported lost, and the counts and subjects are recomputed at the next change.
#[test]
fn damage_in_a_lazily_loaded_block_costs_only_that_record() {
    for entries_damaged in [false, true] {
        let dir = Path::new("/d/s");
        let disk = new_disk(dir);
        let mut s = open(dir, &disk);
        fill(&mut s, 1000);
        s.close().expect("close");
        let loc = s.core.get(500).expect("500").loc;
        drop(s);
        let blk = dir.join(format!("{:010}.blk", loc.blk));
        let f = disk.open(&blk, false).expect("blk");
        f.write_at(u64::from(loc.off) + 30, &[0x55; 3])
            .expect("damage");
        if entries_damaged {
            let path = idx_of(dir, loc.blk);
            let data = disk.read_file(&path).expect("idx");
            let head = u32::from_le_bytes([data[8], data[9], data[10], data[11]]) as u64;
            let f = disk.open(&path, false).expect("idx");
            f.write_at(head + 3, &[0xEE; 2]).expect("damage");
        }
        let mut s = open(dir, &disk);
        assert_eq!(s.loaded_blocks(), 0);
        let seqs: Vec<u64> = all(&s).iter().map(|m| m.0).collect();
        let want: Vec<u64> = (1..=1000).filter(|&q| q != 500).collect();
        assert_eq!(seqs, want, "entries damaged: {entries_damaged}");
        assert_eq!(&s.load(501).expect("501").payload[..], &body(501)[..]);
        let lost = s.state().lost.expect("reported");
        assert_eq!(lost.msgs, vec![500]);
        let (seq, _) = s.append("s.next", None, b"x").expect("append");
        assert_eq!(seq, 1001);
        let st = s.state();
        assert_eq!(st.msgs, 1000, "999 left and one appended");
        subjects_consistent(&s);
        s.close().expect("close");
        drop(s);
        let s = open(dir, &disk);
        assert_eq!(s.state().msgs, 1000);
        assert!(matches!(s.load(500), Err(StoreError::Deleted)));
        subjects_consistent(&s);
    }
}
