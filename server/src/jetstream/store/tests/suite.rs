//! The shared suite: every test is written once against `dyn StreamStore` and
//! instantiated for the memory store and the file store (real files in a tempdir).

use std::time::Duration;

use super::super::*;

/// How a test gets (and re-gets) a store of one kind.
pub(crate) trait Harness {
    /// A fresh store with `cfg`.
    fn open(&mut self, cfg: StoreConfig) -> Box<dyn StreamStore>;
    /// Closes and reopens (the memory store just comes back as it is).
    fn reopen(&mut self, store: Box<dyn StreamStore>) -> Box<dyn StreamStore>;
    /// The accounted size of a message for this kind of store.
    fn size(&self, subj: usize, hdr: usize, payload: usize) -> u64;
}

#[derive(Default)]
pub(crate) struct MemHarness;

impl Harness for MemHarness {
    fn open(&mut self, cfg: StoreConfig) -> Box<dyn StreamStore> {
        Box::new(MemStore::new(cfg))
    }
    fn reopen(&mut self, store: Box<dyn StreamStore>) -> Box<dyn StreamStore> {
        store
    }
    fn size(&self, s: usize, h: usize, p: usize) -> u64 {
        mem_msg_size(s, h, p)
    }
}

pub(crate) struct FileHarness {
    dir: tempfile::TempDir,
    n: u32,
}

impl FileHarness {
    pub(crate) fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
            n: 0,
        }
    }
    fn current(&self) -> std::path::PathBuf {
        self.dir.path().join(self.n.to_string())
    }
}

impl Harness for FileHarness {
    fn open(&mut self, cfg: StoreConfig) -> Box<dyn StreamStore> {
        let cfg = StoreConfig {
            block_size: cfg.block_size.min(4096),
            ..cfg
        };
        self.n += 1;
        Box::new(FileStore::open(&self.current(), cfg, StdFs::shared()).expect("open"))
    }
    fn reopen(&mut self, mut store: Box<dyn StreamStore>) -> Box<dyn StreamStore> {
        let cfg = store.config().clone();
        store.close().expect("close");
        drop(store);
        Box::new(FileStore::open(&self.current(), cfg, StdFs::shared()).expect("reopen"))
    }
    fn size(&self, s: usize, h: usize, p: usize) -> u64 {
        file_msg_size(s, h, p)
    }
}

fn cfg() -> StoreConfig {
    StoreConfig::default()
}

fn put(s: &mut dyn StreamStore, subj: &str, payload: &str) -> u64 {
    s.append(subj, None, payload.as_bytes()).expect("append").0
}

fn payload(s: &dyn StreamStore, seq: u64) -> String {
    let m = s.load(seq).expect("load");
    String::from_utf8(m.payload.to_vec()).expect("utf8")
}

const HDR: &[u8] = b"NATS/1.0\r\nA: b\r\n\r\n";

pub(crate) fn append_and_load(h: &mut dyn Harness) {
    let mut s = h.open(cfg());
    let (seq, ts) = s.append("a.b", Some(HDR), b"hello").expect("append");
    assert_eq!(seq, 1);
    assert!(ts > 0);
    assert_eq!(put(s.as_mut(), "a.c", "world"), 2);
    let m = s.load(1).expect("load");
    assert_eq!((m.seq, m.ts, m.subject_str()), (1, ts, "a.b"));
    assert_eq!(m.headers.as_deref(), Some(HDR));
    assert_eq!(&m.payload[..], b"hello");
    assert_eq!(s.load(2).expect("load").headers, None);
    assert!(matches!(s.load(0), Err(StoreError::NotFound)));
    assert!(matches!(s.load(3), Err(StoreError::NotFound)));
    assert!(matches!(
        s.append("a. b", None, b""),
        Err(StoreError::InvalidSubject)
    ));
    assert!(matches!(
        s.append("", None, b""),
        Err(StoreError::InvalidSubject)
    ));
    let st = s.state();
    assert_eq!(
        (st.msgs, st.first_seq, st.last_seq, st.num_subjects),
        (2, 1, 2, 2)
    );
    assert_eq!(st.bytes, h.size(3, HDR.len(), 5) + h.size(3, 0, 5));
    assert_eq!(st.first_ts, ts);
    let s = h.reopen(s);
    assert_eq!(s.state(), st);
    assert_eq!(s.load(1).expect("load").headers.as_deref(), Some(HDR));
}

pub(crate) fn empty_store_state(h: &mut dyn Harness) {
    let s = h.open(cfg());
    let st = s.state();
    assert_eq!(
        (st.msgs, st.first_seq, st.last_seq, st.first_ts),
        (0, 1, 0, 0)
    );
    assert!(matches!(s.load_next(1, ">"), Err(StoreError::NotFound)));
    assert!(matches!(s.load_last(">"), Err(StoreError::NotFound)));
    let s = h.reopen(s);
    assert_eq!(s.state().first_seq, 1);
}

pub(crate) fn remove_and_deleted(h: &mut dyn Harness) {
    let mut s = h.open(cfg());
    for i in 1..=5 {
        put(s.as_mut(), "x", &format!("m{i}"));
    }
    s.remove(2).expect("remove");
    s.erase(4).expect("erase");
    assert!(matches!(s.load(2), Err(StoreError::Deleted)));
    assert!(matches!(s.remove(2), Err(StoreError::Deleted)));
    assert!(matches!(s.remove(9), Err(StoreError::NotFound)));
    let st = s.state();
    assert_eq!(
        (st.msgs, st.num_deleted, st.first_seq, st.last_seq),
        (3, 2, 1, 5)
    );
    assert_eq!(s.deleted(), vec![2, 4]);
    s.remove(1).expect("remove");
    assert_eq!(s.state().first_seq, 3);
    let ts5 = s.load(5).expect("load").ts;
    s.remove(5).expect("remove last");
    assert_eq!(s.state().last_ts, ts5);
    let st = s.state();
    assert_eq!((st.msgs, st.last_seq, st.num_deleted), (1, 5, 2));
    assert_eq!(s.deleted(), vec![4, 5]);
    s.sync().expect("sync");
    let mut s = h.reopen(s);
    assert_eq!(s.state(), st);
    assert_eq!(payload(s.as_ref(), 3), "m3");
    assert_eq!(put(s.as_mut(), "x", "m6"), 6);
}

pub(crate) fn remove_all_keeps_last_seq(h: &mut dyn Harness) {
    let mut s = h.open(cfg());
    for _ in 0..3 {
        put(s.as_mut(), "x", "m");
    }
    for seq in 1..=3 {
        s.remove(seq).expect("remove");
    }
    let st = s.state();
    assert_eq!(
        (st.msgs, st.first_seq, st.last_seq, st.num_deleted),
        (0, 4, 3, 0)
    );
    let mut s = h.reopen(s);
    assert_eq!(s.state().first_seq, 4);
    assert_eq!(put(s.as_mut(), "x", "m"), 4);
}

fn filter_fixture(h: &mut dyn Harness) -> Box<dyn StreamStore> {
    let mut s = h.open(cfg());
    for subj in ["a.1", "b.1", "a.2", "c.x.y", "b.2", "a.1"] {
        put(s.as_mut(), subj, subj);
    }
    s
}

pub(crate) fn load_next_with_filters(h: &mut dyn Harness) {
    let s = filter_fixture(h);
    let next = |start, f: &str| s.load_next(start, f).map(|m| m.seq).ok();
    assert_eq!(next(1, "a.*"), Some(1));
    assert_eq!(next(2, "a.*"), Some(3));
    assert_eq!(next(4, "a.*"), Some(6));
    assert_eq!(next(7, "a.*"), None);
    assert_eq!(next(2, "a.1"), Some(6));
    assert_eq!(next(1, "b.2"), Some(5));
    assert_eq!(next(6, "b.2"), None);
    assert_eq!(next(1, "c.>"), Some(4));
    assert_eq!(next(1, "zz"), None);
    assert_eq!(next(4, ">"), Some(4));
    assert_eq!(next(4, ""), Some(4));
    let multi = |start, f: &[&str]| s.load_next_multi(start, f).map(|m| m.seq).ok();
    assert_eq!(multi(2, &["c.>", "a.2"]), Some(3));
    assert_eq!(multi(4, &["c.>", "a.2"]), Some(4));
    assert_eq!(multi(5, &["c.>", "a.2"]), None);
    assert_eq!(multi(1, &[]), Some(1));
    let m = s.load_next(2, "*.2").expect("next");
    assert_eq!(
        (m.seq, m.subject_str(), &m.payload[..]),
        (3, "a.2", &b"a.2"[..])
    );
}

pub(crate) fn load_last_and_subjects(h: &mut dyn Harness) {
    let mut s = filter_fixture(h);
    assert_eq!(s.load_last("a.1").expect("last").seq, 6);
    assert_eq!(s.load_last("b.*").expect("last").seq, 5);
    assert_eq!(s.load_last(">").expect("last").seq, 6);
    assert!(matches!(s.load_last("q"), Err(StoreError::NotFound)));
    let a1 = SubjectState {
        msgs: 2,
        first: 1,
        last: 6,
    };
    assert_eq!(s.subject_state("a.1"), Some(a1));
    assert_eq!(s.subject_state("a.*"), None);
    let subs = s.subjects("a.*");
    assert_eq!(
        subs,
        vec![
            ("a.1".into(), a1),
            (
                "a.2".into(),
                SubjectState {
                    msgs: 1,
                    first: 3,
                    last: 3
                }
            )
        ]
    );
    assert_eq!(s.subjects(">").len(), 5);
    s.remove(6).expect("remove");
    assert_eq!(
        s.subject_state("a.1"),
        Some(SubjectState {
            msgs: 1,
            first: 1,
            last: 1
        })
    );
    assert_eq!(s.load_last("a.*").expect("last").seq, 3);
    s.remove(1).expect("remove");
    assert_eq!(s.subject_state("a.1"), None);
    assert_eq!(s.state().num_subjects, 4);
    let s = h.reopen(s);
    assert_eq!(s.subjects(">").len(), 4);
    assert_eq!(
        s.subject_state("b.1"),
        Some(SubjectState {
            msgs: 1,
            first: 2,
            last: 2
        })
    );
}

pub(crate) fn purge_all(h: &mut dyn Harness) {
    let mut s = filter_fixture(h);
    let last_ts = s.load(6).expect("load").ts;
    let purged = s.purge(&PurgeRequest::default()).expect("purge");
    // Like nats-server, the last timestamp survives the purge.
    assert_eq!(s.state().last_ts, last_ts);
    assert_eq!(purged, 6);
    let st = s.state();
    assert_eq!(
        (
            st.msgs,
            st.bytes,
            st.first_seq,
            st.last_seq,
            st.num_subjects
        ),
        (0, 0, 7, 6, 0)
    );
    let mut s = h.reopen(s);
    assert_eq!(s.state(), st);
    assert_eq!(put(s.as_mut(), "a", "x"), 7);
    assert_eq!(s.state().first_seq, 7);
}

pub(crate) fn purge_variants(h: &mut dyn Harness) {
    let mut s = filter_fixture(h);
    let req = |f: Option<&str>, seq: Option<u64>, keep: Option<u64>| PurgeRequest {
        filter: f.map(str::to_owned),
        seq,
        keep,
    };
    // filter + keep: a.* has 1,3,6; keep the newest 1.
    assert_eq!(s.purge(&req(Some("a.*"), None, Some(1))).expect("purge"), 2);
    assert_eq!(s.load_next(1, "a.*").expect("next").seq, 6);
    // filter + seq: b.* below 5 → removes 2.
    assert_eq!(s.purge(&req(Some("b.*"), Some(5), None)).expect("purge"), 1);
    assert_eq!(s.subject_state("b.2").map(|x| x.msgs), Some(1));
    // plain filter
    assert_eq!(s.purge(&req(Some("c.x.y"), None, None)).expect("purge"), 1);
    let st = s.state();
    assert_eq!((st.msgs, st.first_seq), (2, 5));
    // keep newest N without a filter
    for _ in 0..4 {
        put(s.as_mut(), "d", "d");
    }
    assert_eq!(s.purge(&req(None, None, Some(3))).expect("purge"), 3);
    assert_eq!(s.state().first_seq, 8);
    assert_eq!(s.purge(&req(None, None, Some(10))).expect("purge"), 0);
    // seq without a filter: compact below 9
    assert_eq!(s.purge(&req(Some(">"), Some(9), None)).expect("purge"), 1);
    assert_eq!(s.state().first_seq, 9);
    // seq past the end moves the first sequence
    assert_eq!(s.purge(&req(None, Some(100), None)).expect("purge"), 2);
    let st = s.state();
    assert_eq!((st.msgs, st.first_seq, st.last_seq), (0, 100, 99));
    let mut s = h.reopen(s);
    assert_eq!(s.state(), st);
    assert_eq!(put(s.as_mut(), "a", "x"), 100);
}

pub(crate) fn compact_and_skip(h: &mut dyn Harness) {
    let mut s = h.open(cfg());
    for _ in 0..10 {
        put(s.as_mut(), "x", "m");
    }
    assert_eq!(s.compact(4).expect("compact"), 3);
    assert_eq!(s.state().first_seq, 4);
    assert_eq!(s.compact(2).expect("compact"), 0);
    assert_eq!(s.skip_msgs(5).expect("skip"), 15);
    let st = s.state();
    assert_eq!(
        (st.msgs, st.first_seq, st.last_seq, st.num_deleted),
        (7, 4, 15, 5)
    );
    let mut s = h.reopen(s);
    assert_eq!(s.state(), st);
    assert_eq!(put(s.as_mut(), "x", "m"), 16);
    assert_eq!(s.compact(50).expect("compact"), 8);
    assert_eq!(s.skip_msgs(10).expect("skip"), 59);
    let st = s.state();
    assert_eq!((st.msgs, st.first_seq, st.last_seq), (0, 60, 59));
    let s = h.reopen(s);
    assert_eq!(s.state(), st);
}

pub(crate) fn limit_max_msgs(h: &mut dyn Harness) {
    let mut s = h.open(StoreConfig {
        max_msgs: 3,
        ..cfg()
    });
    for i in 1..=5 {
        put(s.as_mut(), "x", &i.to_string());
    }
    let st = s.state();
    assert_eq!((st.msgs, st.first_seq, st.last_seq), (3, 3, 5));
    let mut s = h.open(StoreConfig {
        max_msgs: 2,
        discard: Discard::New,
        ..cfg()
    });
    put(s.as_mut(), "x", "1");
    put(s.as_mut(), "x", "2");
    assert!(matches!(
        s.append("x", None, b"3"),
        Err(StoreError::MaxMsgs)
    ));
    assert_eq!(s.state().last_seq, 2);
}

pub(crate) fn limit_max_bytes(h: &mut dyn Harness) {
    let one = h.size(1, 0, 10);
    let mut s = h.open(StoreConfig {
        max_bytes: (one * 3) as i64,
        ..cfg()
    });
    for _ in 0..5 {
        put(s.as_mut(), "x", "0123456789");
    }
    let st = s.state();
    assert_eq!((st.msgs, st.bytes, st.first_seq), (3, one * 3, 3));
    assert!(matches!(
        s.append("x", None, &[0; 200]),
        Err(StoreError::MaxBytes)
    ));
    // Like nats-server, discard new refuses when the new total would reach the limit.
    let mut s = h.open(StoreConfig {
        max_bytes: (one * 2 + 1) as i64,
        discard: Discard::New,
        ..cfg()
    });
    put(s.as_mut(), "x", "0123456789");
    put(s.as_mut(), "x", "0123456789");
    assert!(matches!(
        s.append("x", None, b"0123456789"),
        Err(StoreError::MaxBytes)
    ));
}

pub(crate) fn limit_per_subject(h: &mut dyn Harness) {
    let mut s = h.open(StoreConfig {
        max_msgs_per_subject: 2,
        ..cfg()
    });
    for subj in ["k.a", "k.b", "k.a", "k.a", "k.b", "k.a"] {
        put(s.as_mut(), subj, subj);
    }
    assert_eq!(
        s.subject_state("k.a"),
        Some(SubjectState {
            msgs: 2,
            first: 4,
            last: 6
        })
    );
    assert_eq!(
        s.subject_state("k.b"),
        Some(SubjectState {
            msgs: 2,
            first: 2,
            last: 5
        })
    );
    assert_eq!(s.state().msgs, 4);
    let mut c = cfg();
    c.max_msgs_per_subject = 1;
    c.discard = Discard::New;
    c.discard_new_per_subject = true;
    let mut s = h.open(c.clone());
    put(s.as_mut(), "k", "1");
    assert!(matches!(
        s.append("k", None, b"2"),
        Err(StoreError::MaxMsgsPerSubject)
    ));
    // Without discard_new_per_subject the per-subject limit replaces, even with max_msgs full.
    c.discard_new_per_subject = false;
    c.max_msgs = 1;
    let mut s = h.open(c);
    put(s.as_mut(), "k", "1");
    assert_eq!(put(s.as_mut(), "k", "2"), 2);
    assert!(matches!(
        s.append("j", None, b"3"),
        Err(StoreError::MaxMsgs)
    ));
    assert_eq!(payload(s.as_ref(), 2), "2");
}

pub(crate) fn limit_msg_size(h: &mut dyn Harness) {
    let mut s = h.open(StoreConfig {
        max_msg_size: 8,
        ..cfg()
    });
    put(s.as_mut(), "x", "12345678");
    assert!(matches!(
        s.append("x", None, b"123456789"),
        Err(StoreError::MessageTooLarge)
    ));
    assert!(matches!(
        s.append("x", Some(b"NATS/1.0\r\n\r\n"), b""),
        Err(StoreError::MessageTooLarge)
    ));
}

pub(crate) fn limit_max_age(h: &mut dyn Harness) {
    let age = Duration::from_secs(60);
    let mut s = h.open(StoreConfig {
        max_age: age,
        ..cfg()
    });
    let now = now_ns();
    let sec = 1_000_000_000;
    for i in 0..5 {
        s.append_at("x", None, b"m", now - (50 - i * 10) * sec)
            .expect("append");
    }
    assert_eq!(s.next_expiry(), Some(now - 50 * sec + 60 * sec));
    assert_eq!(s.expire(now + 25 * sec).expect("expire"), 2);
    assert_eq!(s.state().first_seq, 3);
    assert_eq!(s.expire(now + 25 * sec).expect("expire"), 0);
    // Appending also expires.
    s.append_at("x", None, b"m", now + 45 * sec)
        .expect("append");
    assert_eq!(s.state().first_seq, 5);
    s.update_config(StoreConfig {
        max_age: Duration::ZERO,
        ..cfg()
    })
    .expect("update");
    assert_eq!(s.next_expiry(), None);
}

pub(crate) fn update_config_trims(h: &mut dyn Harness) {
    let mut s = h.open(cfg());
    for i in 0..10 {
        put(s.as_mut(), if i % 2 == 0 { "e" } else { "o" }, "m");
    }
    let mut c = cfg();
    c.max_msgs_per_subject = 3;
    s.update_config(c.clone()).expect("update");
    assert_eq!(s.state().msgs, 6);
    c.max_msgs = 4;
    s.update_config(c.clone()).expect("update");
    let st = s.state();
    assert_eq!((st.msgs, st.first_seq), (4, 7));
    c.max_bytes = (h.size(1, 0, 1) * 2) as i64;
    s.update_config(c).expect("update");
    assert_eq!(s.state().msgs, 2);
    assert_eq!(s.config().max_msgs, 4);
}

pub(crate) fn many_messages_across_blocks(h: &mut dyn Harness) {
    let mut s = h.open(StoreConfig {
        block_size: 1024,
        ..cfg()
    });
    for i in 0..500u64 {
        let subj = format!("s.{}", i % 7);
        s.append(&subj, None, format!("payload-{i}").as_bytes())
            .expect("append");
    }
    s.sync().expect("sync");
    for seq in (1..=500).filter(|q| q % 3 == 0) {
        s.remove(seq).expect("remove");
    }
    s.purge(&PurgeRequest {
        seq: Some(100),
        ..Default::default()
    })
    .expect("purge");
    s.purge(&PurgeRequest {
        filter: Some("s.3".into()),
        ..Default::default()
    })
    .expect("purge");
    let st = s.state();
    let s = h.reopen(s);
    assert_eq!(s.state(), st);
    for seq in 100..=500u64 {
        match s.load(seq) {
            Ok(m) => assert_eq!(&m.payload[..], format!("payload-{}", seq - 1).as_bytes()),
            Err(StoreError::Deleted) => assert!(seq % 3 == 0 || (seq - 1) % 7 == 3),
            Err(e) => panic!("seq {seq}: {e}"),
        }
    }
    assert_eq!(s.load_next(100, "s.4").expect("next").seq, 103);
}

pub(crate) fn sync_is_idempotent(h: &mut dyn Harness) {
    let mut s = h.open(cfg());
    s.sync().expect("sync");
    put(s.as_mut(), "x", "m");
    s.sync().expect("sync");
    s.sync().expect("sync again");
    s.close().expect("close");
    let s = h.reopen(s);
    assert_eq!(s.state().msgs, 1);
}

pub(crate) fn wildcard_filters_with_many_subjects(h: &mut dyn Harness) {
    let mut s = h.open(StoreConfig {
        block_size: 1 << 20,
        ..cfg()
    });
    for i in 0..70_000u64 {
        let subj = if i % 1000 == 999 {
            format!("o.{i}")
        } else {
            format!("k.{i}")
        };
        s.append(&subj, None, b"").expect("append");
    }
    assert_eq!(s.load_next(1, "o.*").expect("next").seq, 1000);
    assert_eq!(s.load_next(1001, "o.>").expect("next").seq, 2000);
    assert_eq!(s.load_next(69_001, "o.*").expect("next").seq, 70_000);
    assert_eq!(s.load_next(5, "k.*").expect("next").seq, 5);
    assert_eq!(s.load_last("o.*").expect("last").seq, 70_000);
    assert_eq!(s.subjects("o.*").len(), 70);
    let n = s
        .purge(&PurgeRequest {
            filter: Some("o.*".into()),
            ..Default::default()
        })
        .expect("purge");
    assert_eq!(n, 70);
    assert!(matches!(s.load_next(1, "o.*"), Err(StoreError::NotFound)));
}

/// The last sequence is [`LAST_SEQ`]; after it every append and skip is refused, and
/// nothing wraps (not across a reopen, not after a purge).
pub(crate) fn sequence_space_ends_without_wrapping(h: &mut dyn Harness) {
    let mut s = h.open(cfg());
    s.compact(LAST_SEQ).expect("compact");
    assert_eq!(put(s.as_mut(), "a", "last"), LAST_SEQ);
    for _ in 0..2 {
        assert!(matches!(
            s.append("a", None, b"x"),
            Err(StoreError::SequenceExhausted)
        ));
    }
    assert!(matches!(s.skip_msgs(1), Err(StoreError::SequenceExhausted)));
    s.sync().expect("sync");
    let mut s = h.reopen(s);
    let st = s.state();
    assert_eq!(
        (st.msgs, st.first_seq, st.last_seq),
        (1, LAST_SEQ, LAST_SEQ)
    );
    assert_eq!(payload(s.as_ref(), LAST_SEQ), "last");
    assert_eq!(s.purge(&PurgeRequest::default()).expect("purge"), 1);
    let st = s.state();
    assert_eq!((st.msgs, st.last_seq, st.num_deleted), (0, LAST_SEQ, 0));
    assert!(matches!(
        s.append("a", None, b"x"),
        Err(StoreError::SequenceExhausted)
    ));
}

macro_rules! store_suite {
    ($($name:ident),* $(,)?) => {
        mod mem {
            $( #[test] fn $name() { super::$name(&mut super::MemHarness); } )*
        }
        mod file {
            $( #[test] fn $name() { super::$name(&mut super::FileHarness::new()); } )*
        }
    };
}

store_suite!(
    append_and_load,
    empty_store_state,
    remove_and_deleted,
    remove_all_keeps_last_seq,
    load_next_with_filters,
    load_last_and_subjects,
    purge_all,
    purge_variants,
    compact_and_skip,
    limit_max_msgs,
    limit_max_bytes,
    limit_per_subject,
    limit_msg_size,
    limit_max_age,
    update_config_trims,
    many_messages_across_blocks,
    sync_is_idempotent,
    wildcard_filters_with_many_subjects,
    sequence_space_ends_without_wrapping,
);
