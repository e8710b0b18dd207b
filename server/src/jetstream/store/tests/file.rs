//! File-store specific tests: space reclamation, block indexes and the legacy
//! index snapshot, erase,
//! and damage (flipped bytes, zeroed ranges, truncation) at random places.

use std::path::{Path, PathBuf};

use proptest::prelude::*;

use super::super::*;

fn open(dir: &Path, disk: &SimDisk, block_size: u64) -> FileStore {
    let cfg = StoreConfig {
        block_size,
        ..StoreConfig::default()
    };
    FileStore::open(dir, cfg, disk.shared()).expect("open")
}

fn body(seq: u64) -> Vec<u8> {
    format!("payload-{seq}-")
        .repeat(1 + (seq % 5) as usize)
        .into_bytes()
}

fn fill(s: &mut FileStore, n: u64) {
    for i in 1..=n {
        let subj = format!("s.{}", i % 4);
        let hdr = (i % 3 == 0).then_some(&b"NATS/1.0\r\nK: v\r\n\r\n"[..]);
        s.append(&subj, hdr, &body(i)).expect("append");
    }
    s.sync().expect("sync");
}

fn block_files(disk: &SimDisk, dir: &Path) -> Vec<PathBuf> {
    disk.paths()
        .into_iter()
        .filter(|p| p.parent() == Some(dir) && p.extension().is_some_and(|e| e == "blk"))
        .collect()
}

fn disk_bytes(disk: &SimDisk, dir: &Path) -> usize {
    block_files(disk, dir)
        .iter()
        .map(|p| disk.read_file(p).expect("read").len())
        .sum()
}

#[test]
fn empty_blocks_are_removed_and_sparse_blocks_compacted() {
    let disk = SimDisk::new();
    let dir = Path::new("/d/s");
    let mut s = open(dir, &disk, 1024);
    fill(&mut s, 300);
    let blocks = s.block_count();
    let before = disk_bytes(&disk, dir);
    s.compact(150).expect("compact");
    assert!(s.block_count() < blocks, "whole blocks dropped");
    for seq in (150..=300).filter(|q| q % 4 != 0) {
        s.remove(seq).expect("remove");
    }
    s.sync().expect("sync");
    let after = disk_bytes(&disk, dir);
    assert!(after * 3 < before, "space reclaimed: {before} -> {after}");
    let st = s.state();
    drop(s);
    let s = open(dir, &disk, 1024);
    assert_eq!(s.state(), st);
    for seq in (152..=300).step_by(4) {
        assert_eq!(&s.load(seq).expect("load").payload[..], &body(seq)[..]);
    }
}

fn idx_files(disk: &SimDisk, dir: &Path) -> Vec<PathBuf> {
    disk.paths()
        .into_iter()
        .filter(|p| p.parent() == Some(dir) && p.extension().is_some_and(|e| e == "idx"))
        .collect()
}

#[test]
fn block_indexes_are_used_and_a_stale_one_is_never_trusted() {
    let disk = SimDisk::new();
    let dir = Path::new("/d/s");
    let mut s = open(dir, &disk, 2048);
    fill(&mut s, 200);
    s.close().expect("close");
    let st = s.state();
    let blocks = s.block_count();
    drop(s);
    assert_eq!(idx_files(&disk, dir).len(), blocks, "every block indexed");
    let mut s = open(dir, &disk, 2048);
    assert_eq!(s.state(), st);
    assert_eq!(s.unverified_blocks(), blocks, "every block adopted");
    // A delete after the clean stop, then a crash-like drop (synced, not closed):
    // the block it touched loses its index, the others keep theirs.
    s.remove(10).expect("remove");
    s.append("s.x", None, b"after").expect("append");
    s.sync().expect("sync");
    let st = s.state();
    drop(s);
    assert_eq!(idx_files(&disk, dir).len(), blocks - 1);
    let s = open(dir, &disk, 2048);
    assert_eq!(s.state(), st);
    assert!(matches!(s.load(10), Err(StoreError::Deleted)));
}

/// A store an earlier release stopped cleanly has one index snapshot: it is
/// used, and replaced by block indexes at the next clean stop.
#[test]
fn a_legacy_snapshot_is_used_then_replaced_by_block_indexes() {
    let disk = SimDisk::new();
    let dir = Path::new("/d/s");
    let mut s = open(dir, &disk, 2048);
    fill(&mut s, 200);
    s.write_legacy_snapshot().expect("snapshot");
    let st = s.state();
    drop(s);
    for idx in idx_files(&disk, dir) {
        disk.remove_file(&idx).expect("rm idx");
    }
    let mut s = open(dir, &disk, 2048);
    assert_eq!(s.state(), st);
    assert!(
        s.unverified_blocks() >= s.block_count() - 1,
        "adopted from the snapshot"
    );
    s.close().expect("close");
    drop(s);
    assert!(!disk.exists(&dir.join("index.snap")));
    assert!(!idx_files(&disk, dir).is_empty());
    let s = open(dir, &disk, 2048);
    assert_eq!(s.state(), st);
    assert_eq!(s.unverified_blocks(), s.block_count());
}

#[test]
fn appends_after_a_checkpoint_are_scanned() {
    let disk = SimDisk::new();
    let dir = Path::new("/d/s");
    let mut s = open(dir, &disk, 1024);
    fill(&mut s, 50);
    s.checkpoint().expect("checkpoint");
    for i in 0..40 {
        s.append("late", None, format!("late-{i}").as_bytes())
            .expect("append");
    }
    s.sync().expect("sync");
    let st = s.state();
    drop(s);
    let s = open(dir, &disk, 1024);
    assert_eq!(s.state(), st);
    assert_eq!(&s.load_last("late").expect("last").payload[..], b"late-39");
}

#[test]
fn damaged_block_index_is_ignored() {
    let disk = SimDisk::new();
    let dir = Path::new("/d/s");
    let mut s = open(dir, &disk, 1024);
    fill(&mut s, 100);
    s.close().expect("close");
    let st = s.state();
    drop(s);
    let idx = idx_files(&disk, dir)[1].clone();
    let f = disk.open(&idx, false).expect("idx");
    f.write_at(60, &[0xff, 0xee]).expect("damage");
    let s = open(dir, &disk, 1024);
    assert_eq!(s.state(), st);
    assert_eq!(
        s.unverified_blocks(),
        s.block_count() - 1,
        "that block scanned"
    );
    assert!(!disk.exists(&idx), "the damaged index is removed");
    // An index that no longer matches its block (the block truncated) is also
    // ignored, and what it listed that is gone is reported lost.
    drop(s);
    let mut s = open(dir, &disk, 1024);
    s.close().expect("close");
    drop(s);
    let first = block_files(&disk, dir)[0].clone();
    let f = disk.open(&first, false).expect("blk");
    let len = f.len().expect("len");
    f.set_len(len - 10).expect("truncate");
    let s = open(dir, &disk, 1024);
    assert_eq!(s.state().last_seq, st.last_seq);
    assert!(s.state().msgs < st.msgs);
    assert!(s.state().lost.is_some_and(|l| !l.msgs.is_empty()));
}

#[test]
fn erase_overwrites_bytes_on_disk() {
    let disk = SimDisk::new();
    let dir = Path::new("/d/s");
    let mut s = open(dir, &disk, 1 << 20);
    s.append("x", None, b"keep-me").expect("append");
    s.append("x", None, b"SECRET-SECRET").expect("append");
    s.append("x", None, b"keep-me-too").expect("append");
    s.sync().expect("sync");
    s.erase(2).expect("erase");
    s.sync().expect("sync");
    let raw = disk.read_file(&block_files(&disk, dir)[0]).expect("read");
    assert!(!raw.windows(6).any(|w| w == b"SECRET"));
    drop(s);
    let s = open(dir, &disk, 1 << 20);
    assert!(matches!(s.load(2), Err(StoreError::Deleted)));
    assert_eq!(&s.load(3).expect("load").payload[..], b"keep-me-too");
}

#[test]
fn damaged_record_in_the_middle_loses_only_that_record() {
    let disk = SimDisk::new();
    let dir = Path::new("/d/s");
    let mut s = open(dir, &disk, 1 << 20);
    fill(&mut s, 20);
    let loc = s.core.get(7).expect("slot").loc;
    drop(s);
    let f = disk.open(&block_files(&disk, dir)[0], false).expect("blk");
    f.write_at(u64::from(loc.off) + 30, &[0x55; 3])
        .expect("damage");
    let s = open(dir, &disk, 1 << 20);
    assert_eq!(s.deleted(), vec![7]);
    assert_eq!(s.state().msgs, 19);
    assert_eq!(&s.load(8).expect("load").payload[..], &body(8)[..]);
}

#[derive(Debug, Clone)]
enum Damage {
    Flip { at: usize, mask: u8 },
    Zero { at: usize, len: usize },
    Truncate { at: usize },
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(at, mask)| Damage::Flip { at, mask }),
        (any::<usize>(), 1..600usize).prop_map(|(at, len)| Damage::Zero { at, len }),
        any::<usize>().prop_map(|at| Damage::Truncate { at }),
    ]
}

/// Applies damage to one block file; returns the damaged byte range.
fn apply_damage(vfs: &dyn Vfs, path: &Path, d: &Damage) -> (u64, u64) {
    let f = vfs.open(path, false).expect("open");
    let len = f.len().expect("len");
    if len == 0 {
        return (0, 0);
    }
    match *d {
        Damage::Flip { at, mask } => {
            let at = at as u64 % len;
            let mut b = [0u8];
            f.read_at(at, &mut b).expect("read");
            f.write_at(at, &[b[0] ^ mask]).expect("write");
            (at, at + 1)
        }
        Damage::Zero { at, len: n } => {
            let at = at as u64 % len;
            let n = (n as u64).min(len - at);
            f.write_at(at, &vec![0; n as usize]).expect("write");
            (at, at + n)
        }
        Damage::Truncate { at } => {
            let at = at as u64 % len;
            f.set_len(at).expect("truncate");
            (at, u64::MAX)
        }
    }
}

fn files_of(vfs: &dyn Vfs, dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = vfs
        .list_dir(dir)
        .expect("list")
        .into_iter()
        .filter(|n| n.ends_with(".blk") || n.ends_with(".idx"))
        .map(|n| dir.join(n))
        .collect();
    v.sort();
    v
}

/// The block id of a block file (`None` for an index file).
fn block_id(path: &Path) -> Option<u32> {
    (path.extension()? == "blk")
        .then(|| path.file_stem()?.to_str()?.parse().ok())
        .flatten()
}

/// A damaged byte range of one file: (block id, or None for an index; start; end; cut).
type Hit = (Option<u32>, u64, u64, bool);

/// Fills a store, stops it (cleanly, with every block indexed, or as after a
/// crash, with the sealed blocks indexed), damages its files, reopens it and checks: every record the damage
/// does not touch is served intact, nothing damaged is served, what is lost is
/// reported, and the store takes the next sequence.
fn damage_case(
    vfs: SharedVfs,
    dir: &Path,
    clean: bool,
    dmg: &[(usize, Damage)],
) -> Result<(), TestCaseError> {
    let cfg = StoreConfig {
        block_size: 1500,
        ..StoreConfig::default()
    };
    let mut s = FileStore::open(dir, cfg.clone(), vfs.clone()).expect("open");
    fill(&mut s, 120);
    let mut locs: Vec<(u64, FileLoc)> = Vec::new();
    s.core.walk(0, |q, sl| {
        locs.push((q, sl.loc));
        true
    });
    s.remove(33).expect("remove");
    s.sync().expect("sync");
    if clean {
        s.close().expect("close");
    }
    drop(s);
    let files = files_of(vfs.as_ref(), dir);
    let last_blk = files.iter().rfind(|p| block_id(p).is_some());
    let last_idx = last_blk.map(|p| p.with_extension("idx"));
    prop_assert_eq!(clean, last_idx.is_some_and(|p| files.contains(&p)));
    let mut hit: Vec<Hit> = Vec::new();
    for (i, d) in dmg {
        let path = &files[i % files.len()];
        let len = vfs.open(path, false).and_then(|f| f.len()).expect("len");
        let (a, b) = apply_damage(vfs.as_ref(), path, d);
        // Damage reaching the end of a file looks like a torn write after a crash.
        hit.push((block_id(path), a, b, b >= len));
    }
    // Without an intact index of every block, a cut at a record boundary leaves no trace.
    let snapshot_intact = clean && !hit.iter().any(|h| h.0.is_none());
    let mut s = FileStore::open(dir, cfg.clone(), vfs.clone()).expect("reopen");
    let mut unserved = Vec::new();
    for (seq, loc) in locs {
        let (start, end) = (u64::from(loc.off), u64::from(loc.off) + u64::from(loc.len));
        let overlaps = |&&(id, a, b, _): &&Hit| id == Some(loc.blk) && a < end && start < b;
        let damaged = hit.iter().any(|h| overlaps(&h));
        match s.load(seq) {
            // A flipped state byte can turn a deleted record live again: the
            // state byte is outside the checksum. Its content is still intact.
            Ok(m) => {
                prop_assert!(seq != 33 || damaged, "deleted message came back");
                prop_assert_eq!(&m.payload[..], &body(seq)[..]);
            }
            Err(e) => {
                prop_assert!(
                    damaged || seq == 33,
                    "seq {} lost without damage: {}",
                    seq,
                    e
                );
                // Reported, unless only its state byte changed (outside the
                // checksum) or a cut left no trace of it. A cut through the
                // record hides any other damage to it: it is a torn tail then.
                let state_byte = start + 4;
                let mut on_it = hit.iter().filter(|h| overlaps(h));
                let cut = !snapshot_intact && on_it.clone().any(|h| h.3);
                let silent = cut
                    || on_it.all(|&(_, a, b, _)| a <= state_byte && state_byte < b && b - a == 1);
                if seq != 33 && !silent {
                    unserved.push(seq);
                }
            }
        }
    }
    let lost = s.state().lost.map(|l| l.msgs).unwrap_or_default();
    // The newest records failing after a crash are a torn tail: cut, not reported.
    let newest = s.state().last_seq;
    unserved.retain(|&q| snapshot_intact || q < newest);
    for seq in unserved {
        prop_assert!(
            lost.contains(&seq),
            "seq {} lost but not reported: {:?}",
            seq,
            lost
        );
    }
    // The store stays usable, with the next sequence.
    let (seq, _) = s.append("after", None, b"x").expect("append");
    if snapshot_intact {
        prop_assert_eq!(seq, 121);
    }
    prop_assert_eq!(&s.load(seq).expect("load").payload[..], b"x");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
    /// Damage anywhere, after a clean stop or a crash: no panic, nothing damaged
    /// served, everything outside the damaged records recovered.
    #[test]
    fn recovery_survives_random_damage(
        clean in any::<bool>(),
        dmg in proptest::collection::vec((0..10usize, damage()), 1..4),
    ) {
        damage_case(SimDisk::new().shared(), Path::new("/d/s"), clean, &dmg)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    /// The same on real files.
    #[test]
    fn recovery_survives_random_damage_to_real_files(
        clean in any::<bool>(),
        dmg in proptest::collection::vec((0..10usize, damage()), 1..4)
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        damage_case(StdFs::shared(), dir.path(), clean, &dmg)?;
    }
}

#[test]
fn damage_after_a_clean_stop_loses_only_the_damaged_record() {
    let disk = SimDisk::new();
    let dir = Path::new("/d/s");
    let mut s = open(dir, &disk, 1 << 20);
    fill(&mut s, 20);
    s.close().expect("close");
    let loc = s.core.get(7).expect("slot").loc;
    drop(s);
    let f = disk.open(&block_files(&disk, dir)[0], false).expect("blk");
    f.write_at(u64::from(loc.off) + 30, &[0x55; 3])
        .expect("damage");
    let mut s = open(dir, &disk, 1 << 20);
    // The block index is trusted for where records are; the first read checks the block.
    let seqs: Vec<u64> = std::iter::successors(s.load_next(1, ">").ok(), |m| {
        s.load_next(m.seq + 1, ">").ok()
    })
    .map(|m| m.seq)
    .collect();
    assert_eq!(seqs, (1..=20).filter(|&q| q != 7).collect::<Vec<_>>());
    assert!(matches!(s.load(7), Err(StoreError::Deleted)));
    let st = s.state();
    assert_eq!(st.msgs, 19);
    assert_eq!(st.lost.expect("lost").msgs, vec![7]);
    assert_eq!(s.append("x", None, b"next").expect("append").0, 21);
    assert_eq!(s.deleted(), vec![7]);
}

#[test]
fn damage_while_running_is_skipped_and_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = StoreConfig {
        block_size: 1024,
        ..StoreConfig::default()
    };
    let mut s = FileStore::open(dir.path(), cfg, StdFs::shared()).expect("open");
    fill(&mut s, 60);
    let loc = s.core.get(5).expect("slot").loc;
    let path = dir.path().join(format!("{:010}.blk", loc.blk));
    let f = StdFs.open(&path, false).expect("blk");
    f.write_at(u64::from(loc.off) + 29, b"rot").expect("rot");
    assert_eq!(s.load_next(5, ">").expect("next").seq, 6);
    assert_eq!(s.load_last("s.1").expect("last").seq, 57);
    assert!(matches!(s.load(5), Err(StoreError::Deleted)));
    assert_eq!(s.state().msgs, 59);
    assert_eq!(s.state().lost.expect("lost").msgs, vec![5]);
    s.append("x", None, b"more").expect("append");
    s.sync().expect("sync");
    assert_eq!(s.deleted(), vec![5]);
    // The newest record of a subject damaged: the one before it is the last.
    let loc = s.core.get(57).expect("slot").loc;
    let path = dir.path().join(format!("{:010}.blk", loc.blk));
    let f = StdFs.open(&path, false).expect("blk");
    f.write_at(u64::from(loc.off) + 29, b"rot").expect("rot");
    s.drop_read_cache();
    assert_eq!(s.load_last("s.1").expect("last").seq, 53);
}

#[test]
fn io_errors_are_reported_and_the_store_recovers() {
    let disk = SimDisk::new();
    let dir = Path::new("/d/s");
    let mut s = open(dir, &disk, 1024);
    fill(&mut s, 20);
    disk.set_fail_writes(true);
    let mut failed = false;
    for i in 0..100 {
        match s.append("x", None, format!("during-{i}").as_bytes()) {
            Ok(_) => {}
            Err(StoreError::Io(_)) => {
                failed = true;
                break;
            }
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert!(failed || s.sync().is_err(), "a failing disk is reported");
    assert!(s.purge(&PurgeRequest::default()).is_err());
    disk.set_fail_writes(false);
    s.sync().expect("sync after the disk recovers");
    let st = s.state();
    drop(s);
    let s = open(dir, &disk, 1024);
    assert_eq!(s.state().last_seq, st.last_seq);
    for seq in 1..=20 {
        assert_eq!(&s.load(seq).expect("load").payload[..], &body(seq)[..]);
    }
}

#[test]
fn a_block_emptied_while_active_is_removed_after_rollover() {
    let disk = SimDisk::new();
    let dir = Path::new("/d/s");
    let mut s = open(dir, &disk, 1024);
    s.append("x", None, &[1; 300]).expect("append");
    s.append("x", None, &[2; 300]).expect("append");
    s.remove(1).expect("remove");
    s.remove(2).expect("remove");
    assert_eq!(s.block_count(), 1, "still the active block");
    for _ in 0..5 {
        s.append("x", None, &[3; 300]).expect("append");
    }
    s.sync().expect("sync");
    let files = block_files(&disk, dir);
    assert!(
        !files[0].ends_with("0000000001.blk"),
        "emptied block removed: {files:?}"
    );
    assert_eq!(s.state().first_seq, 3);
}

/// A block whose whole, checksummed header carries a newer format version is
/// refused with an error naming the file and the version, with and without the
/// block indexes, and nothing on disk is changed.
#[test]
fn a_block_of_a_newer_format_version_is_refused_by_name() {
    let disk = SimDisk::new();
    let dir = Path::new("/s");
    let mut s = open(dir, &disk, 4096);
    fill(&mut s, 50);
    s.close().expect("close");
    drop(s);
    let blocks = block_files(&disk, dir);
    let path = &blocks[blocks.len() / 2];
    let mut h = disk.read_file(path).expect("read")[..36].to_vec();
    h[8..12].copy_from_slice(&2u32.to_le_bytes());
    let crc = crc32fast::hash(&h[..32]);
    h[32..36].copy_from_slice(&crc.to_le_bytes());
    disk.open(path, false)
        .expect("open")
        .write_at(0, &h)
        .expect("write header");
    let before: Vec<Vec<u8>> = disk
        .paths()
        .iter()
        .map(|p| disk.read_file(p).expect("read"))
        .collect();
    assert!(
        !idx_files(&disk, dir).is_empty(),
        "the clean stop indexed the blocks"
    );
    for snapshot in [true, false] {
        if !snapshot {
            for idx in idx_files(&disk, dir) {
                disk.remove_file(&idx).expect("rm idx");
            }
        }
        let cfg = StoreConfig {
            block_size: 4096,
            ..StoreConfig::default()
        };
        let Err(err) = FileStore::open(dir, cfg, disk.shared()) else {
            panic!("a newer block must be refused (snapshot: {snapshot})");
        };
        let msg = err.to_string();
        assert!(
            msg.contains(&path.display().to_string()) && msg.contains("version 2"),
            "{msg}"
        );
        if snapshot {
            let now: Vec<Vec<u8>> = disk
                .paths()
                .iter()
                .map(|p| disk.read_file(p).expect("read"))
                .collect();
            assert_eq!(now, before, "nothing changed on disk");
        }
    }
}

/// A snapshot in version 2 (delta-coded entries, as the last release wrote at a
/// clean stop) is still used by an open: same state, every message served as
/// stored, the blocks adopted from it (not yet verified) rather than scanned.
#[test]
fn snapshot_v2_is_compact_and_used() {
    let disk = SimDisk::new();
    let dir = Path::new("/d/s");
    let mut s = open(dir, &disk, 4096);
    fill(&mut s, 1000);
    for seq in [5, 6, 7, 500, 999] {
        s.remove(seq).expect("remove");
    }
    s.write_legacy_snapshot().expect("snapshot");
    let (st, msgs): (StreamState, Vec<StoredMsg>) = (
        s.state(),
        (1..=1000).filter_map(|q| s.load(q).ok()).collect(),
    );
    drop(s);
    for idx in idx_files(&disk, dir) {
        disk.remove_file(&idx).expect("rm idx");
    }
    let snap = disk.read_file(&dir.join("index.snap")).expect("snapshot");
    assert_eq!(&snap[..8], b"RILLIDX\x02");
    assert!(
        snap.len() < 20 * 1000,
        "{} bytes for 995 messages",
        snap.len()
    );
    let s = open(dir, &disk, 4096);
    assert!(s.block_count() > 2);
    assert!(
        s.unverified_blocks() >= s.block_count() - 1,
        "blocks adopted from the snapshot, not scanned"
    );
    assert_eq!(s.state(), st);
    let again: Vec<StoredMsg> = (1..=1000).filter_map(|q| s.load(q).ok()).collect();
    assert_eq!(again, msgs);
    assert_eq!(s.state().lost, st.lost, "nothing reported damaged");
}

fn all_msgs(s: &FileStore, n: u64) -> Vec<StoredMsg> {
    (1..=n).filter_map(|q| s.load(q).ok()).collect()
}

/// Block indexes are delta-coded like the snapshot was (under 20 bytes a small
/// message), and the next open adopts every block from them: same state, every
/// message served as stored, nothing reported damaged.
#[test]
fn block_indexes_are_compact_and_used_after_a_clean_stop() {
    let disk = SimDisk::new();
    let dir = Path::new("/d/s");
    let mut s = open(dir, &disk, 4096);
    fill(&mut s, 1000);
    for seq in [5, 6, 7, 500, 999] {
        s.remove(seq).expect("remove");
    }
    s.skip_msgs(3).expect("skip");
    s.close().expect("close");
    let (st, msgs) = (s.state(), all_msgs(&s, 1003));
    let blocks = s.block_count();
    drop(s);
    let bytes: usize = idx_files(&disk, dir)
        .iter()
        .map(|p| disk.read_file(p).expect("idx").len())
        .sum();
    assert!(bytes < 20 * 1000, "{bytes} bytes for 995 messages");
    let mut s = open(dir, &disk, 4096);
    assert_eq!(s.block_count(), blocks);
    assert_eq!(
        s.unverified_blocks(),
        blocks,
        "every block adopted, none scanned"
    );
    assert_eq!(s.state(), st);
    assert_eq!(all_msgs(&s, 1003), msgs);
    assert_eq!(s.state().lost, None, "nothing reported damaged");
    assert_eq!(s.append("next", None, b"x").expect("append").0, 1004);
}

/// After a crash (no clean stop) every block sealed before the last sync was
/// indexed by the rotation checkpoint: the open adopts those and scans only the
/// active block, and finds everything acknowledged.
#[test]
fn after_a_crash_only_the_blocks_written_since_the_last_rotation_are_scanned() {
    let disk = SimDisk::new();
    let dir = Path::new("/d/s");
    let mut s = open(dir, &disk, 4096);
    fill(&mut s, 1000);
    s.remove(500).expect("remove");
    s.sync().expect("sync");
    let (st, msgs) = (s.state(), all_msgs(&s, 1000));
    let blocks = s.block_count();
    assert_eq!(
        s.indexed_blocks(),
        blocks - 2,
        "sealed blocks but 500's and the active one"
    );
    drop(s);
    let s = open(dir, &disk, 4096);
    assert_eq!(s.unverified_blocks(), blocks - 2, "only two blocks scanned");
    assert_eq!(s.state(), st);
    assert_eq!(all_msgs(&s, 1000), msgs);
    assert_eq!(s.state().lost, None);
}

/// Damage in the middle of a block adopted from its index (verified on its
/// first load, not at open) costs only the damaged record, after a clean stop
/// and after a crash alike; the record is reported lost and the loads around it
/// are served.
#[test]
fn damage_in_an_indexed_block_costs_only_that_record() {
    for clean in [true, false] {
        let disk = SimDisk::new();
        let dir = Path::new("/d/s");
        let mut s = open(dir, &disk, 4096);
        fill(&mut s, 1000);
        if clean {
            s.close().expect("close");
        }
        let loc = s.core.get(300).expect("slot").loc;
        let blocks = s.block_count();
        drop(s);
        let blk = block_files(&disk, dir)
            .into_iter()
            .find(|p| p.ends_with(format!("{:010}.blk", loc.blk)))
            .expect("block of 300");
        let f = disk.open(&blk, false).expect("blk");
        f.write_at(u64::from(loc.off) + 30, &[0x55; 3])
            .expect("damage");
        let s = open(dir, &disk, 4096);
        assert!(
            s.unverified_blocks() >= blocks - 1,
            "adopted (clean: {clean})"
        );
        assert_eq!(s.state().msgs, 1000, "not yet read");
        let seqs: Vec<u64> = std::iter::successors(s.load_next(1, ">").ok(), |m| {
            s.load_next(m.seq + 1, ">").ok()
        })
        .map(|m| m.seq)
        .collect();
        assert_eq!(seqs, (1..=1000).filter(|&q| q != 300).collect::<Vec<_>>());
        assert_eq!(&s.load(301).expect("301").payload[..], &body(301)[..]);
        let st = s.state();
        assert_eq!(st.msgs, 999, "clean: {clean}");
        assert_eq!(st.lost.expect("lost").msgs, vec![300]);
    }
}
