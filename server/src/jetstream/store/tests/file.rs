//! File-store specific tests: space reclamation, the index snapshot, erase,
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

#[test]
fn snapshot_is_used_and_stale_snapshot_is_never_trusted() {
    let disk = SimDisk::new();
    let dir = Path::new("/d/s");
    let mut s = open(dir, &disk, 2048);
    fill(&mut s, 200);
    s.close().expect("close");
    let st = s.state();
    drop(s);
    assert!(disk.exists(&dir.join("index.snap")));
    let mut s = open(dir, &disk, 2048);
    assert_eq!(s.state(), st);
    // A delete after the snapshot, then a crash-like drop (synced, not closed).
    s.remove(10).expect("remove");
    s.append("s.x", None, b"after").expect("append");
    s.sync().expect("sync");
    let st = s.state();
    drop(s);
    let s = open(dir, &disk, 2048);
    assert_eq!(s.state(), st);
    assert!(matches!(s.load(10), Err(StoreError::Deleted)));
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
fn damaged_snapshot_is_ignored() {
    let disk = SimDisk::new();
    let dir = Path::new("/d/s");
    let mut s = open(dir, &disk, 1024);
    fill(&mut s, 100);
    s.close().expect("close");
    let st = s.state();
    drop(s);
    let snap = dir.join("index.snap");
    let f = disk.open(&snap, false).expect("snap");
    f.write_at(100, &[0xff, 0xee]).expect("damage");
    let s = open(dir, &disk, 1024);
    assert_eq!(s.state(), st);
    // A snapshot that no longer matches the blocks (a block truncated) is also ignored.
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

fn block_files_of(vfs: &dyn Vfs, dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = vfs
        .list_dir(dir)
        .expect("list")
        .into_iter()
        .filter(|n| n.ends_with(".blk"))
        .map(|n| dir.join(n))
        .collect();
    v.sort();
    v
}

/// Fills a store, damages its block files, reopens: checks what survives.
fn damage_case(vfs: SharedVfs, dir: &Path, dmg: &[(usize, Damage)]) -> Result<(), TestCaseError> {
    let cfg = StoreConfig {
        block_size: 1500,
        ..StoreConfig::default()
    };
    let mut s = FileStore::open(dir, cfg.clone(), vfs.clone()).expect("open");
    fill(&mut s, 120);
    let locs: Vec<(u64, FileLoc)> = s.core.iter_from(0).map(|(q, sl)| (q, sl.loc)).collect();
    s.remove(33).expect("remove");
    s.sync().expect("sync");
    drop(s);
    let files = block_files_of(vfs.as_ref(), dir);
    let mut hit: Vec<(u32, u64, u64)> = Vec::new();
    for (i, d) in dmg {
        let path = &files[i % files.len()];
        let id: u32 = path
            .file_stem()
            .and_then(|n| n.to_str())
            .and_then(|n| n.parse().ok())
            .expect("id");
        let (a, b) = apply_damage(vfs.as_ref(), path, d);
        hit.push((id, a, b));
    }
    let s = FileStore::open(dir, cfg.clone(), vfs.clone()).expect("reopen");
    for (seq, loc) in locs {
        let (start, end) = (u64::from(loc.off), u64::from(loc.off) + u64::from(loc.len));
        let damaged = hit
            .iter()
            .any(|&(id, a, b)| id == loc.blk && a < end && start < b)
            || hit.iter().any(|&(id, a, _)| id == loc.blk && a < 40);
        match s.load(seq) {
            // A flipped state byte can turn a deleted record live again: the
            // state byte is outside the checksum. Its content is still intact.
            Ok(m) => {
                prop_assert!(seq != 33 || damaged, "deleted message came back");
                prop_assert_eq!(&m.payload[..], &body(seq)[..]);
            }
            Err(e) => prop_assert!(
                damaged || seq == 33,
                "seq {} lost without damage: {}",
                seq,
                e
            ),
        }
    }
    // The store stays usable.
    drop(s);
    let mut s = FileStore::open(dir, cfg, vfs).expect("reopen");
    let (seq, _) = s.append("after", None, b"x").expect("append");
    prop_assert_eq!(&s.load(seq).expect("load").payload[..], b"x");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
    /// Damage anywhere: no panic, nothing damaged served, everything outside the
    /// damaged records recovered.
    #[test]
    fn recovery_survives_random_damage(dmg in proptest::collection::vec((0..8usize, damage()), 1..4)) {
        damage_case(SimDisk::new().shared(), Path::new("/d/s"), &dmg)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    /// The same on real files.
    #[test]
    fn recovery_survives_random_damage_to_real_files(
        dmg in proptest::collection::vec((0..8usize, damage()), 1..4)
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        damage_case(StdFs::shared(), dir.path(), &dmg)?;
    }
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
