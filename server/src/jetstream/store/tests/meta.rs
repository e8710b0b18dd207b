//! Metadata and consumer-state tests: atomic configs, stream/consumer
//! directories, damaged configs reported by name, consumer state logs.

use std::path::Path;

use super::super::*;

fn root() -> &'static Path {
    Path::new("/sim/js")
}

#[test]
fn streams_and_consumers_are_created_listed_and_deleted() {
    let disk = SimDisk::new();
    let vfs: &dyn Vfs = &disk;
    meta::create_stream(vfs, root(), "ORDERS", b"{\"name\":\"ORDERS\"}").expect("create");
    meta::create_stream(vfs, root(), "KV_x", b"kv").expect("create");
    assert!(matches!(
        meta::create_stream(vfs, root(), "ORDERS", b"again"),
        Err(StoreError::AlreadyExists(_))
    ));
    for bad in ["", ".hidden", "a/b", "a b", "a*", "..", "x>"] {
        assert!(matches!(
            meta::create_stream(vfs, root(), bad, b""),
            Err(StoreError::InvalidName(_))
        ));
    }
    meta::update_stream_config(vfs, root(), "KV_x", b"kv2").expect("update");
    meta::create_consumer(vfs, root(), "ORDERS", "c1", b"c1").expect("consumer");
    meta::create_consumer(vfs, root(), "ORDERS", "c2", b"c2").expect("consumer");
    disk.crash();
    let streams = meta::list_streams(vfs, root()).expect("list");
    let names: Vec<(&str, Vec<u8>)> = streams
        .iter()
        .map(|(n, c)| (n.as_str(), c.as_ref().expect("config").clone()))
        .collect();
    assert_eq!(
        names,
        vec![
            ("KV_x", b"kv2".to_vec()),
            ("ORDERS", b"{\"name\":\"ORDERS\"}".to_vec())
        ]
    );
    let consumers = meta::list_consumers(vfs, root(), "ORDERS").expect("list");
    assert_eq!(consumers.len(), 2);
    meta::delete_consumer(vfs, root(), "ORDERS", "c1").expect("delete");
    assert_eq!(
        meta::list_consumers(vfs, root(), "ORDERS")
            .expect("list")
            .len(),
        1
    );
    meta::delete_stream(vfs, root(), "ORDERS").expect("delete");
    assert!(matches!(
        meta::delete_stream(vfs, root(), "ORDERS"),
        Err(StoreError::NotFound)
    ));
    disk.crash();
    let streams = meta::list_streams(vfs, root()).expect("list");
    assert_eq!(streams.len(), 1);
    assert!(
        disk.paths()
            .iter()
            .all(|p| !p.starts_with("/sim/js/streams/ORDERS"))
    );
}

/// On a real file system: a 255-byte name (the longest a directory may have) is created,
/// trashed and removed; a trashed stream stays gone when the files are left behind.
#[test]
fn longest_names_are_deleted_on_a_real_file_system() {
    let dir = tempfile::tempdir().expect("tempdir");
    let vfs = StdFs::shared();
    let vfs = vfs.as_ref();
    let long = "s".repeat(255);
    let consumer = "c".repeat(255);
    meta::create_stream(vfs, dir.path(), &long, b"cfg").expect("create");
    meta::create_consumer(vfs, dir.path(), &long, &consumer, b"c").expect("consumer");
    meta::delete_consumer(vfs, dir.path(), &long, &consumer).expect("delete consumer");
    meta::delete_stream(vfs, dir.path(), &long).expect("delete stream");
    assert!(
        meta::list_streams(vfs, dir.path())
            .expect("list")
            .is_empty()
    );
    meta::create_stream(vfs, dir.path(), &long, b"cfg").expect("create again");
    let trash = meta::trash_stream(vfs, dir.path(), &long).expect("trash");
    assert!(
        meta::list_streams(vfs, dir.path())
            .expect("list")
            .is_empty()
    );
    drop(trash);
    let left: Vec<_> = std::fs::read_dir(meta::streams_dir(dir.path()))
        .expect("read")
        .collect();
    assert!(left.is_empty(), "listing finished the removal: {left:?}");
}

#[test]
fn damaged_config_is_restored_from_its_copy_and_repaired() {
    let disk = SimDisk::new();
    let vfs: &dyn Vfs = &disk;
    meta::create_stream(vfs, root(), "A", b"config-a").expect("create");
    meta::create_stream(vfs, root(), "B", b"config-b").expect("create");
    let dir = meta::stream_dir(root(), "B");
    let path = dir.join(meta::META_NAME);
    let copy = dir.join(meta::META_BACKUP);
    let flip = |p: &Path| {
        disk.open(p, false)
            .expect("open")
            .write_at(17, b"X")
            .expect("damage");
    };
    flip(&path);
    let listed = meta::list_streams(vfs, root()).expect("list");
    assert!(listed[0].1.is_ok());
    assert_eq!(listed[1].0, "B");
    assert_eq!(listed[1].1.as_ref().expect("from the copy"), b"config-b");
    // meta.cfg was written again from the copy: it validates on its own now.
    disk.remove_file(&copy).expect("rm copy");
    assert_eq!(meta::read_config(vfs, &dir).expect("repaired"), b"config-b");
    assert!(disk.exists(&copy), "the copy is written again when missing");
    // Missing meta.cfg: the copy serves too.
    disk.remove_file(&path).expect("rm");
    assert_eq!(meta::read_config(vfs, &dir).expect("copy"), b"config-b");
    // Both damaged: an error naming both files; nothing is deleted.
    flip(&path);
    flip(&copy);
    let listed = meta::list_streams(vfs, root()).expect("list");
    assert!(
        matches!(&listed[1].1, Err(StoreError::Corrupt(why))
        if why.contains("B/meta.cfg") && why.contains("B/meta.bak")),
        "{:?}",
        listed[1].1
    );
    assert!(disk.exists(&path) && disk.exists(&copy), "never deleted");
    // A stream directory without any config is reported too.
    disk.remove_file(&path).expect("rm");
    disk.remove_file(&copy).expect("rm");
    let listed = meta::list_streams(vfs, root()).expect("list");
    assert!(matches!(&listed[1].1, Err(StoreError::Io(_))));
}

#[test]
fn stream_store_lives_in_its_directory() {
    let disk = SimDisk::new();
    meta::create_stream(&disk, root(), "S", b"s").expect("create");
    let dir = meta::stream_msgs_dir(root(), "S");
    let mut s = FileStore::open(&dir, StoreConfig::default(), disk.shared()).expect("open");
    s.append("a", None, b"1").expect("append");
    s.sync().expect("sync");
    drop(s);
    disk.crash();
    let s = FileStore::open(&dir, StoreConfig::default(), disk.shared()).expect("open");
    assert_eq!(s.state().msgs, 1);
}

fn consumer_script(c: &mut dyn ConsumerStore) {
    for (d, s) in [(1, 10), (2, 11), (3, 12), (4, 14)] {
        c.update_delivered(d, s, 1, 100 + d as i64)
            .expect("delivered");
    }
    c.update_delivered(5, 11, 2, 200).expect("redelivered");
    c.update_ack(1, 10).expect("ack");
    c.update_ack(3, 12).expect("ack");
    let st = c.state();
    assert_eq!(
        st.delivered,
        SequencePair {
            consumer: 5,
            stream: 14
        }
    );
    assert_eq!(
        st.ack_floor,
        SequencePair {
            consumer: 4,
            stream: 10
        }
    );
    assert_eq!(st.pending.keys().copied().collect::<Vec<_>>(), vec![11, 14]);
    assert_eq!(
        st.pending[&11],
        PendingAck {
            consumer_seq: 5,
            ts: 200
        }
    );
    assert_eq!(st.redelivered.get(&11), Some(&1));
    c.update_ack(5, 11).expect("ack");
    c.update_ack(4, 14).expect("ack");
    let st = c.state();
    assert!(st.pending.is_empty() && st.redelivered.is_empty());
    assert_eq!(st.ack_floor, st.delivered);
}

#[test]
fn memory_consumer_state() {
    consumer_script(&mut MemConsumerStore::new());
}

#[test]
fn file_consumer_state_survives_reopen_crash_and_torn_tail() {
    let disk = SimDisk::new();
    let dir = meta::create_consumer(&disk, root(), "S", "C", b"c").expect("create");
    let mut c = FileConsumerStore::open(&dir, disk.shared()).expect("open");
    consumer_script(&mut c);
    c.update_delivered(6, 20, 1, 300).expect("delivered");
    c.sync().expect("sync");
    let want = c.state().clone();
    c.update_delivered(7, 21, 1, 301).expect("not synced");
    drop(c);
    disk.crash();
    let c = FileConsumerStore::open(&dir, disk.shared()).expect("open");
    assert_eq!(c.state(), &want);
    drop(c);
    // A torn tail: append garbage after the valid log.
    let log = dir.join("state.log");
    let f = disk.open(&log, false).expect("log");
    let len = f.len().expect("len");
    f.write_at(len, &[40, 0, 0, 0, 1, 9, 9]).expect("garbage");
    let mut c = FileConsumerStore::open(&dir, disk.shared()).expect("open");
    assert_eq!(c.state(), &want);
    c.update_ack(6, 20).expect("ack");
    c.sync().expect("sync");
    drop(c);
    let c = FileConsumerStore::open(&dir, disk.shared()).expect("open");
    assert!(c.state().pending.is_empty());
}

/// `write_out` writes without fsync and hands the file back: the state is
/// durable only once that file's `sync` ran, and a later `sync` fsyncs again
/// because it cannot know whether the handed-out one finished (or failed).
#[test]
fn consumer_state_written_out_is_durable_only_after_its_fsync() {
    let disk = SimDisk::new();
    let dir = meta::create_consumer(&disk, root(), "S", "C", b"c").expect("create");
    let open = || FileConsumerStore::open(&dir, disk.shared()).expect("open");
    // Written out, never fsynced: lost in a crash.
    let mut c = open();
    assert!(c.write_out().expect("nothing owed").is_none());
    c.update_delivered(1, 10, 1, 100).expect("delivered");
    let _unsynced = c.write_out().expect("write").expect("an fsync is owed");
    drop(c);
    disk.crash();
    assert_eq!(open().state(), &ConsumerState::default());
    // Written out and the handed-out file fsynced: durable.
    let mut c = open();
    c.update_delivered(1, 10, 1, 100).expect("delivered");
    c.write_out()
        .expect("write")
        .expect("owed")
        .sync()
        .expect("fsync");
    let first = c.state().clone();
    drop(c);
    disk.crash();
    assert_eq!(open().state(), &first);
    // Handed out, not yet fsynced, then `sync` with nothing new: it fsyncs anyway.
    let mut c = open();
    c.update_delivered(2, 11, 1, 101).expect("delivered");
    let _pending = c.write_out().expect("write").expect("owed");
    c.sync().expect("sync");
    let second = c.state().clone();
    drop(c);
    disk.crash();
    assert_eq!(open().state(), &second);
    assert_ne!(second, first);
}

/// Damage inside the log (valid records after it): the consumer resumes from
/// the state before the damage, which is never ahead of the real one, and the
/// damaged file is kept. A record of an unknown kind with a valid checksum (a
/// newer format) refuses the open and changes nothing.
#[test]
fn damaged_consumer_log_resets_to_a_safe_state() {
    let disk = SimDisk::new();
    let dir = meta::create_consumer(&disk, root(), "S", "C", b"c").expect("create");
    let mut c = FileConsumerStore::open(&dir, disk.shared()).expect("open");
    for i in 1..=3u64 {
        c.update_delivered(i, i, 1, 10).expect("delivered");
    }
    c.update_ack(1, 1).expect("ack");
    c.sync().expect("sync");
    let before = c.state().clone();
    c.update_ack(2, 2).expect("ack");
    c.update_delivered(4, 4, 1, 10).expect("delivered");
    c.update_ack(3, 3).expect("ack");
    c.sync().expect("sync");
    drop(c);
    let log = dir.join("state.log");
    let data = disk.read_file(&log).expect("read");
    // Flip a bit in the ack of 2 (the first record after `before`).
    let ack2 = data.len() - 25 - 41 - 25;
    let f = disk.open(&log, false).expect("log");
    f.write_at(ack2 as u64 + 10, &[data[ack2 + 10] ^ 4])
        .expect("flip");
    drop(f);
    let c = FileConsumerStore::open(&dir, disk.shared()).expect("open");
    assert_eq!(c.state(), &before, "the state before the damage");
    assert!(c.state().pending.contains_key(&2) && c.state().pending.contains_key(&3));
    assert_eq!(c.state().delivered.stream, 3, "4 is delivered again");
    assert!(
        disk.exists(&dir.join("state.log.damaged")),
        "damaged log kept"
    );
    drop(c);
    let c = FileConsumerStore::open(&dir, disk.shared()).expect("reopen");
    assert_eq!(c.state(), &before, "the new log holds that state");
    drop(c);
    // A checksummed record of kind 9.
    let mut rec = vec![13, 0, 0, 0, 9, 1, 2, 3, 4];
    let crc = crc32fast::hash(&rec);
    rec.extend_from_slice(&crc.to_le_bytes());
    let f = disk.open(&log, false).expect("log");
    let len = f.len().expect("len");
    f.write_at(len, &rec).expect("append");
    drop(f);
    let err = FileConsumerStore::open(&dir, disk.shared()).expect_err("newer format refused");
    assert!(err.to_string().contains("newer format"), "{err}");
    assert_eq!(
        disk.read_file(&log).expect("read").len() as u64,
        len + 13,
        "untouched"
    );
}

#[test]
fn file_consumer_log_is_compacted() {
    let disk = SimDisk::new();
    let dir = meta::create_consumer(&disk, root(), "S", "C", b"c").expect("create");
    let mut c = FileConsumerStore::open(&dir, disk.shared()).expect("open");
    for i in 1..=5000u64 {
        c.update_delivered(i, i, 1, i as i64).expect("delivered");
        if i > 3 {
            c.update_ack(i - 3, i - 3).expect("ack");
        }
        if i % 100 == 0 {
            c.sync().expect("sync");
        }
    }
    c.sync().expect("sync");
    let want = c.state().clone();
    assert_eq!(want.pending.len(), 3);
    let size = disk.read_file(&dir.join("state.log")).expect("read").len();
    assert!(size < 128 * 1024, "log compacted, {size} bytes");
    drop(c);
    let mut c = FileConsumerStore::open(&dir, disk.shared()).expect("open");
    assert_eq!(c.state(), &want);
    let mut reset = want.clone();
    reset.pending.clear();
    reset.ack_floor = reset.delivered;
    c.set_state(reset.clone()).expect("set");
    c.sync().expect("sync");
    drop(c);
    let c = FileConsumerStore::open(&dir, disk.shared()).expect("open");
    assert_eq!(c.state(), &reset);
}

#[test]
fn open_helpers_pick_the_storage_kind() {
    let disk = SimDisk::new();
    meta::create_stream(&disk, root(), "F", b"f").expect("create");
    let cfg = StoreConfig::default();
    let mut f = open_stream_store(root(), "F", cfg.clone(), disk.shared()).expect("file");
    f.append("a", None, b"1").expect("append");
    f.close().expect("close");
    drop(f);
    assert!(disk.exists(&meta::stream_msgs_dir(root(), "F").join("0000000001.idx")));
    let mem = StoreConfig {
        storage: StorageKind::Memory,
        ..cfg
    };
    let m = open_stream_store(root(), "M", mem, disk.shared()).expect("mem");
    assert_eq!(m.state().msgs, 0);
    let mut c = open_consumer_store(root(), "F", "c", StorageKind::File, disk.shared()).expect("c");
    c.update_delivered(1, 1, 1, 1).expect("delivered");
    c.sync().expect("sync");
    assert!(open_stream_store(root(), "a/b", StoreConfig::default(), disk.shared()).is_err());
}

/// Both copies damaged: creating the entry again adopts its directory (a
/// stream keeps its stored data; a consumer's old state log is set aside), and
/// a config of a newer format version is refused and never overwritten.
#[test]
fn creating_again_over_damaged_copies_keeps_the_data() {
    let disk = SimDisk::new();
    let vfs: &dyn Vfs = &disk;
    let dir = meta::create_stream(vfs, root(), "S", b"old").expect("create");
    let blk = dir.join("msgs").join("0000000001.blk");
    meta::write_atomic(vfs, &blk, b"stored messages").expect("write");
    let cdir = meta::create_consumer(vfs, root(), "S", "C", b"c").expect("consumer");
    meta::write_atomic(vfs, &cdir.join("state.log"), b"old state").expect("write");
    let flip = |p: &Path| {
        disk.open(p, false)
            .expect("open")
            .write_at(17, b"X")
            .expect("damage");
    };
    for d in [&dir, &cdir] {
        flip(&d.join(meta::META_NAME));
        flip(&d.join(meta::META_BACKUP));
    }
    assert!(meta::read_config(vfs, &dir).is_err());
    meta::create_stream(vfs, root(), "S", b"new").expect("created again");
    assert_eq!(meta::read_config(vfs, &dir).expect("new config"), b"new");
    assert_eq!(disk.read_file(&blk).expect("kept"), b"stored messages");
    meta::create_consumer(vfs, root(), "S", "C", b"c2").expect("consumer again");
    assert_eq!(meta::read_config(vfs, &cdir).expect("new config"), b"c2");
    assert!(!disk.exists(&cdir.join("state.log")), "starts fresh");
    assert_eq!(
        disk.read_file(&cdir.join("state.log.damaged"))
            .expect("kept"),
        b"old state"
    );
    // Valid now: a second create is refused as before.
    assert!(matches!(
        meta::create_stream(vfs, root(), "S", b"x"),
        Err(StoreError::AlreadyExists(_))
    ));
    // A newer format version: refused by name, never overwritten.
    let path = dir.join(meta::META_NAME);
    let mut data = disk.read_file(&path).expect("read");
    data[8..12].copy_from_slice(&2u32.to_le_bytes());
    let n = data.len() - 4;
    let crc = crc32fast::hash(&data[..n]);
    data[n..].copy_from_slice(&crc.to_le_bytes());
    meta::write_atomic(vfs, &path, &data).expect("write");
    let err = meta::read_config(vfs, &dir).expect_err("newer");
    assert!(
        err.to_string().contains("version 2") && err.to_string().contains("S/meta.cfg"),
        "{err}"
    );
    let err = meta::create_stream(vfs, root(), "S", b"y").expect_err("never overwritten");
    assert!(err.to_string().contains("version 2"), "{err}");
    assert_eq!(disk.read_file(&path).expect("read"), data, "untouched");
}
