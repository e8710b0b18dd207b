//! Property test: random operation sequences give identical observable results
//! on the memory store (the oracle) and the file store, including across reopens.

use std::path::Path;

use proptest::prelude::*;

use super::super::*;

const SUBJECTS: [&str; 6] = ["a", "b", "a.b", "c.d.e", "k.1", "k.2"];
const FILTERS: [&str; 6] = [">", "a", "k.*", "c.>", "*.b", "zz"];

#[derive(Debug, Clone)]
enum Op {
    Append {
        subj: usize,
        len: usize,
        hdr: bool,
    },
    Remove(u64),
    Erase(u64),
    PurgeAll,
    PurgeFilter {
        filter: usize,
        keep: Option<u64>,
        seq: Option<u64>,
    },
    PurgeKeep(u64),
    Compact(u64),
    Skip(u64),
    Limits {
        max_msgs: i64,
        max_bytes: i64,
        per_subject: i64,
        discard_new: bool,
    },
    Sync,
    Close,
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => (0..SUBJECTS.len(), 0..200usize, any::<bool>())
            .prop_map(|(subj, len, hdr)| Op::Append { subj, len, hdr }),
        3 => (0..40u64).prop_map(Op::Remove),
        1 => (0..40u64).prop_map(Op::Erase),
        1 => Just(Op::PurgeAll),
        2 => (0..FILTERS.len(), proptest::option::of(0..4u64), proptest::option::of(0..40u64))
            .prop_map(|(filter, keep, seq)| Op::PurgeFilter { filter, keep, seq }),
        1 => (0..10u64).prop_map(Op::PurgeKeep),
        1 => (0..50u64).prop_map(Op::Compact),
        1 => (0..5u64).prop_map(Op::Skip),
        1 => (-1..20i64, prop_oneof![Just(-1i64), 200..4000i64], -1..4i64, any::<bool>())
            .prop_map(|(max_msgs, max_bytes, per_subject, discard_new)| Op::Limits {
                max_msgs, max_bytes, per_subject, discard_new,
            }),
        2 => Just(Op::Sync),
        1 => Just(Op::Close),
        1 => Just(Op::Reopen),
    ]
}

/// Relative sequences are mapped into the current range so most hit something.
fn rel(s: &dyn StreamStore, r: u64) -> u64 {
    let st = s.state();
    st.first_seq.saturating_sub(2) + r
}

fn apply(s: &mut dyn StreamStore, op: &Op) -> Result<String, String> {
    let r = match op {
        Op::Append { subj, len, hdr } => {
            let hdr = hdr.then_some(&b"NATS/1.0\r\nX: y\r\n\r\n"[..]);
            let body: Vec<u8> = (0..*len).map(|i| (i % 251) as u8).collect();
            let ts = 1_000 + s.state().last_seq as i64;
            s.append_at(SUBJECTS[*subj], hdr, &body, ts)
                .map(|r| format!("{r:?}"))
        }
        Op::Remove(r) => s.remove(rel(s, *r)).map(|()| String::new()),
        Op::Erase(r) => s.erase(rel(s, *r)).map(|()| String::new()),
        Op::PurgeAll => s.purge(&PurgeRequest::default()).map(|n| n.to_string()),
        Op::PurgeFilter { filter, keep, seq } => {
            let seq = seq.map(|r| rel(s, r));
            let req = PurgeRequest {
                filter: Some(FILTERS[*filter].into()),
                seq,
                keep: *keep,
            };
            s.purge(&req).map(|n| n.to_string())
        }
        Op::PurgeKeep(k) => s
            .purge(&PurgeRequest {
                keep: Some(*k),
                ..Default::default()
            })
            .map(|n| n.to_string()),
        Op::Compact(r) => s.compact(rel(s, *r)).map(|n| n.to_string()),
        Op::Skip(n) => s.skip_msgs(*n).map(|n| n.to_string()),
        Op::Limits {
            max_msgs,
            max_bytes,
            per_subject,
            discard_new,
        } => {
            let mut c = s.config().clone();
            c.max_msgs = *max_msgs;
            c.max_bytes = *max_bytes;
            c.max_msgs_per_subject = *per_subject;
            c.discard = if *discard_new {
                Discard::New
            } else {
                Discard::Old
            };
            s.update_config(c).map(|()| String::new())
        }
        Op::Sync | Op::Close | Op::Reopen => Ok(String::new()),
    };
    r.map_err(|e| format!("{e}"))
}

fn observe(s: &dyn StreamStore) -> String {
    let mut out = format!("{:?}\n{:?}\n", s.state(), s.deleted());
    let st = s.state();
    for seq in st.first_seq.saturating_sub(1)..=st.last_seq + 1 {
        out += &format!("{seq}: {:?}\n", s.load(seq).map_err(|e| e.to_string()));
    }
    for f in FILTERS {
        out += &format!("{f} {:?}\n", s.subjects(f));
        out += &format!(
            "last {:?}\n",
            s.load_last(f).map(|m| m.seq).map_err(|e| e.to_string())
        );
        for start in [0, st.first_seq + 1, st.last_seq] {
            out += &format!("next {:?}\n", s.load_next(start, f).map(|m| m.seq).ok());
        }
    }
    out
}

fn open_file(dir: &Path, vfs: &SimDisk, cfg: StoreConfig) -> FileStore {
    FileStore::open(dir, cfg, vfs.shared()).expect("open")
}

fn run(ops: &[Op]) -> Result<(), TestCaseError> {
    let disk = SimDisk::new();
    let dir = Path::new("/sim/s");
    // An index cache of three messages: every block's entries leave memory
    // and are loaded again as the operations go.
    let cfg = StoreConfig {
        block_size: 600,
        index_cache: 3 * 32,
        ..StoreConfig::default()
    };
    let mut oracle = MemStore::with_file_sizes(cfg.clone());
    let mut file = open_file(dir, &disk, cfg);
    for (i, op) in ops.iter().enumerate() {
        match op {
            Op::Sync => file.sync().expect("sync"),
            Op::Close => {
                file.close().expect("close");
                let c = file.config().clone();
                drop(file);
                file = open_file(dir, &disk, c);
            }
            Op::Reopen => {
                file.sync().expect("sync");
                let c = file.config().clone();
                drop(file);
                file = open_file(dir, &disk, c);
            }
            _ => {}
        }
        let want = apply(&mut oracle, op);
        let got = apply(&mut file, op);
        prop_assert_eq!(&got, &want, "op {} {:?}", i, op);
        prop_assert_eq!(observe(&file), observe(&oracle), "after op {} {:?}", i, op);
    }
    file.close().expect("close");
    let c = file.config().clone();
    drop(file);
    let file = open_file(dir, &disk, c);
    prop_assert_eq!(observe(&file), observe(&oracle), "after final reopen");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]
    #[test]
    fn file_store_matches_memory_store(ops in proptest::collection::vec(op(), 1..120)) {
        run(&ops)?;
    }
}
