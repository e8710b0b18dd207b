//! Failing disks: a failed fsync is never taken as success and the store
//! refuses writes until it has written again what the failure may have lost; a
//! failed write (a full disk) refuses appends until a retry succeeds, then
//! resumes by itself. Nothing acknowledged (synced) is lost either way.

use std::path::Path;

use super::super::*;

fn open(dir: &Path, disk: &SimDisk) -> FileStore {
    let cfg = StoreConfig {
        block_size: 1 << 20,
        ..StoreConfig::default()
    };
    // The store's parent directories exist durably, as on a real disk.
    disk.create_dir_all(dir).expect("mkdir");
    for a in dir.ancestors().skip(1) {
        disk.sync_dir(a).expect("sync dir");
    }
    FileStore::open(dir, cfg, disk.shared()).expect("open")
}

fn payloads(s: &FileStore) -> Vec<(u64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut next = 0;
    while let Ok(m) = s.load_next(next, ">") {
        out.push((m.seq, m.payload.to_vec()));
        next = m.seq + 1;
    }
    out
}

#[test]
fn a_failed_fsync_refuses_writes_until_the_data_is_written_again() {
    let disk = SimDisk::new();
    let dir = Path::new("/d/s");
    let mut s = open(dir, &disk);
    for i in 1..=10u8 {
        s.append("x", None, &[i; 100]).expect("append");
    }
    s.sync().expect("sync");
    s.append("x", None, &[11; 100]).expect("append");
    disk.set_fail_syncs(true);
    assert!(s.sync().is_err(), "a failed fsync is reported");
    let refused = s.append("x", None, &[99; 100]).expect_err("refused");
    assert!(refused.to_string().contains("fsync"), "{refused}");
    assert!(s.sync().is_err(), "still failing");
    disk.set_fail_syncs(false);
    let (seq, _) = s.append("x", None, &[12; 100]).expect("resumes");
    assert_eq!(seq, 12);
    s.sync().expect("sync");
    drop(s);
    // Linux forgets the pages of a failed fsync: only the rewrite made 11 durable.
    disk.crash();
    let s = open(dir, &disk);
    let want: Vec<(u64, Vec<u8>)> = (1..=12u8).map(|i| (u64::from(i), vec![i; 100])).collect();
    assert_eq!(payloads(&s), want);
}

#[test]
fn a_full_disk_refuses_appends_and_resumes_by_itself() {
    let disk = SimDisk::new();
    let dir = Path::new("/d/s");
    let mut s = open(dir, &disk);
    for i in 1..=5u8 {
        s.append("x", None, &[i; 100]).expect("append");
    }
    s.sync().expect("sync");
    s.append("x", None, &[6; 100]).expect("append");
    disk.set_fail_writes(true);
    assert!(s.sync().is_err(), "the flush fails");
    for _ in 0..3 {
        assert!(
            s.append("x", None, &[0; 100]).is_err(),
            "refused while full"
        );
    }
    disk.set_fail_writes(false);
    let (seq, _) = s.append("x", None, &[7; 100]).expect("resumes");
    assert_eq!(seq, 7);
    s.sync().expect("sync");
    drop(s);
    disk.crash();
    let s = open(dir, &disk);
    let want: Vec<(u64, Vec<u8>)> = (1..=7u8).map(|i| (u64::from(i), vec![i; 100])).collect();
    assert_eq!(payloads(&s), want);
}

/// A failed directory fsync (the entry of a new block may not survive a crash)
/// is reported, refuses writes until a directory fsync succeeds, and loses
/// nothing acknowledged across a power loss.
#[test]
fn a_failed_directory_fsync_refuses_writes_until_it_succeeds() {
    let disk = SimDisk::new();
    let dir = Path::new("/d/s");
    let cfg = StoreConfig {
        block_size: 1024,
        ..StoreConfig::default()
    };
    drop(open(dir, &disk));
    let mut s = FileStore::open(dir, cfg.clone(), disk.shared()).expect("open");
    for i in 1..=5u8 {
        s.append("x", None, &[i; 100]).expect("append");
    }
    s.sync().expect("sync");
    disk.set_fail_dir_syncs(true);
    // Enough to roll into a new block, whose directory entry needs the fsync.
    for i in 6..=15u8 {
        s.append("x", None, &[i; 100]).expect("append");
    }
    let err = s.sync().expect_err("a failed directory fsync is reported");
    assert!(err.to_string().contains("directory"), "{err}");
    let refused = s.append("x", None, &[99; 100]).expect_err("refused");
    assert!(refused.to_string().contains("directory"), "{refused}");
    disk.set_fail_dir_syncs(false);
    let (seq, _) = s.append("x", None, &[16; 100]).expect("resumes");
    assert_eq!(seq, 16);
    s.sync().expect("sync");
    drop(s);
    disk.crash();
    let s = FileStore::open(dir, cfg, disk.shared()).expect("reopen");
    let want: Vec<(u64, Vec<u8>)> = (1..=16u8).map(|i| (u64::from(i), vec![i; 100])).collect();
    assert_eq!(payloads(&s), want);
}
