//! Simulated power loss: every acknowledged (synced) message and every created
//! stream survives a crash at any point, intact; nothing else is made up.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use proptest::prelude::*;

use super::super::*;

#[derive(Debug, Clone)]
enum Op {
    Append { subj: u8, len: usize },
    Sync,
    Remove(u64),
    Erase(u64),
    Skip(u64),
    PurgeAll,
    Compact(u64),
    Close,
    Crash { torn: Option<u64> },
    CreateStream(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => (0..3u8, 0..300usize).prop_map(|(subj, len)| Op::Append { subj, len }),
        4 => Just(Op::Sync),
        3 => (0..30u64).prop_map(Op::Remove),
        1 => (0..30u64).prop_map(Op::Erase),
        1 => (1..4u64).prop_map(Op::Skip),
        1 => Just(Op::PurgeAll),
        1 => (0..30u64).prop_map(Op::Compact),
        1 => Just(Op::Close),
        3 => proptest::option::of(any::<u64>()).prop_map(|torn| Op::Crash { torn }),
        1 => (0..4u8).prop_map(Op::CreateStream),
    ]
}

#[derive(Default)]
struct Model {
    /// Synced messages not (durably) deleted.
    acked: BTreeMap<u64, Vec<u8>>,
    /// Every message appended since the last crash (what may legitimately exist).
    ever: BTreeMap<u64, Vec<u8>>,
    /// Deletes not yet synced.
    maybe_deleted: BTreeSet<u64>,
    unsynced: BTreeMap<u64, Vec<u8>>,
    streams: BTreeSet<String>,
    /// Last sequence at the last sync: it must never go back.
    synced_last: u64,
}

const ROOT: &str = "/sim/js";

fn open(disk: &SimDisk, dir: &Path) -> FileStore {
    // A small index cache, so blocks' entries leave memory between crashes.
    let cfg = StoreConfig {
        block_size: 700,
        index_cache: 8 * 32,
        ..StoreConfig::default()
    };
    FileStore::open(dir, cfg, disk.shared()).expect("open")
}

fn present(s: &FileStore) -> BTreeMap<u64, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut next = 0;
    while let Ok(m) = s.load_next(next, ">") {
        out.insert(m.seq, m.payload.to_vec());
        next = m.seq + 1;
    }
    out
}

fn check_after_crash(s: &FileStore, m: &mut Model, disk: &SimDisk) -> Result<(), TestCaseError> {
    let now = present(s);
    for (seq, p) in &m.acked {
        match now.get(seq) {
            Some(got) => prop_assert_eq!(got, p, "acked seq {} changed", seq),
            None => prop_assert!(m.maybe_deleted.contains(seq), "acked seq {} lost", seq),
        }
    }
    for (seq, got) in &now {
        prop_assert_eq!(
            Some(got),
            m.ever.get(seq),
            "seq {} was never written like this",
            seq
        );
    }
    prop_assert!(
        s.state().last_seq >= m.synced_last,
        "last sequence went back"
    );
    let listed = meta::list_streams(disk, Path::new(ROOT)).expect("list");
    for name in &m.streams {
        let found = listed.iter().find(|(n, _)| n == name);
        prop_assert!(
            found.is_some_and(|(_, c)| c.as_ref().is_ok_and(|c| c == name.as_bytes())),
            "stream {} lost",
            name
        );
    }
    m.acked = now.clone();
    m.ever = now;
    m.maybe_deleted.clear();
    m.unsynced.clear();
    Ok(())
}

fn step(s: &mut FileStore, m: &mut Model, op: &Op, disk: &SimDisk) {
    match op {
        Op::Append { subj, len } => {
            let body: Vec<u8> = (0..*len)
                .map(|i| (i as u8).wrapping_mul(*subj + 3))
                .collect();
            let (seq, _) = s.append(&format!("c.{subj}"), None, &body).expect("append");
            m.unsynced.insert(seq, body.clone());
            m.ever.insert(seq, body);
        }
        Op::Sync => {
            s.sync().expect("sync");
            m.synced_last = s.state().last_seq;
            m.acked.append(&mut m.unsynced);
            for d in std::mem::take(&mut m.maybe_deleted) {
                m.acked.remove(&d);
            }
        }
        Op::Remove(r) | Op::Erase(r) => {
            let seq = s.state().first_seq + r;
            let res = match op {
                Op::Erase(_) => s.erase(seq),
                _ => s.remove(seq),
            };
            if res.is_ok() {
                m.maybe_deleted.insert(seq);
            }
        }
        Op::Skip(n) => {
            s.skip_msgs(*n).expect("skip");
        }
        Op::PurgeAll | Op::Compact(_) => {
            let before: Vec<u64> = present(s).into_keys().collect();
            match op {
                Op::PurgeAll => s.purge(&PurgeRequest::default()).map(|_| ()),
                Op::Compact(r) => s.compact(s.state().first_seq + r).map(|_| ()),
                _ => Ok(()),
            }
            .expect("purge");
            let after = present(s);
            m.maybe_deleted
                .extend(before.into_iter().filter(|q| !after.contains_key(q)));
        }
        Op::CreateStream(n) => {
            let name = format!("S{n}");
            if meta::create_stream(disk, Path::new(ROOT), &name, name.as_bytes()).is_ok() {
                m.streams.insert(name);
            }
        }
        Op::Close | Op::Crash { .. } => {}
    }
}

fn run(ops: &[Op]) -> Result<(), TestCaseError> {
    let disk = SimDisk::new();
    let root = PathBuf::from(ROOT);
    meta::create_stream(&disk, &root, "main", b"main").expect("create");
    let dir = meta::stream_msgs_dir(&root, "main");
    let mut m = Model::default();
    m.streams.insert("main".into());
    let mut s = open(&disk, &dir);
    for op in ops {
        match op {
            Op::Close => {
                s.close().expect("close");
                m.synced_last = s.state().last_seq;
                m.acked.append(&mut m.unsynced);
                for d in std::mem::take(&mut m.maybe_deleted) {
                    m.acked.remove(&d);
                }
                drop(s);
                s = open(&disk, &dir);
            }
            Op::Crash { torn } => {
                drop(s);
                match torn {
                    Some(seed) => disk.crash_torn(*seed),
                    None => disk.crash(),
                }
                s = open(&disk, &dir);
                check_after_crash(&s, &mut m, &disk)?;
            }
            _ => step(&mut s, &mut m, op, &disk),
        }
    }
    drop(s);
    disk.crash();
    let s = open(&disk, &dir);
    check_after_crash(&s, &mut m, &disk)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]
    #[test]
    fn acknowledged_data_survives_power_loss(ops in proptest::collection::vec(op(), 1..80)) {
        run(&ops)?;
    }
}
