//! The subject summary: a clean stop writes every subject's figures in one
//! file, the next open takes them from it instead of each block's index, and a
//! summary that is damaged or no longer describes the blocks is ignored (the
//! blocks' own subject lists are read) and written again at the next clean stop.

use std::path::Path;

use super::super::*;
use super::lazy::{all, body, fill, idx_of, kill, new_disk, open, subjects_consistent};

const SUMMARY: &str = "subjects.sum";

/// Messages spread over `n` subjects of their own (beside `fill`'s seven).
fn spread(s: &mut FileStore, msgs: u64, n: u64) {
    for i in 0..msgs {
        s.append(&format!("k.{}", i % n), None, &body(i))
            .expect("append");
    }
    s.sync().expect("sync");
}

type Seen = (
    StreamState,
    Vec<(u64, String, Vec<u8>)>,
    Vec<(String, SubjectState)>,
);

fn seen(s: &FileStore) -> Seen {
    (s.state(), all(s), s.subjects(">"))
}

/// Opens the store and checks it holds `want`, opened from the summary or not.
fn reopen(dir: &Path, disk: &SimDisk, want: &Seen, summed: bool) -> FileStore {
    let s = open(dir, disk);
    assert_eq!(s.opened_from_summary(), summed, "opened from the summary");
    if summed {
        assert_eq!(s.loaded_blocks(), 0, "nothing loaded at open");
    }
    assert_eq!(s.subjects(">"), want.2);
    assert_eq!(s.state(), want.0);
    assert_eq!(all(&s), want.1);
    subjects_consistent(&s);
    s
}

/// A clean stop writes the summary; the open takes the subjects from it
/// (reading no block's subject list), and the store is the same as with the
/// blocks' lists, before and after changes and another clean stop.
#[test]
fn a_clean_stop_writes_the_summary_and_the_next_open_uses_it() {
    let dir = Path::new("/d/s");
    let disk = new_disk(dir);
    let mut s = open(dir, &disk);
    fill(&mut s, 300);
    spread(&mut s, 900, 250);
    s.close().expect("close");
    let want = seen(&s);
    assert!(s.block_count() > 10, "{} blocks", s.block_count());
    drop(s);
    assert!(disk.exists(&dir.join(SUMMARY)));
    let mut s = reopen(dir, &disk, &want, true);
    for seq in [1, 2, 500, 1200] {
        s.remove(seq).expect("remove");
    }
    s.append("k.new", None, b"after").expect("append");
    s.close().expect("close");
    let want = seen(&s);
    drop(s);
    drop(reopen(dir, &disk, &want, true));
}

/// A damaged summary, one left from an earlier stop, one the blocks changed
/// after (appends, a delete in an old block, a kill), and one whose block index
/// was rewritten or damaged: each is ignored, the store opens as from the
/// blocks' own subject lists, and the next clean stop writes it again.
#[test]
fn a_damaged_or_stale_summary_is_ignored_and_rebuilt() {
    type Spoil = fn(&Path, &SimDisk, &mut FileStore, &[u8]);
    let cases: [(&str, Spoil); 5] = [
        ("damaged", |dir, disk, _, _| {
            let f = disk.open(&dir.join(SUMMARY), false).expect("summary");
            f.write_at(40, &[0xEE]).expect("damage");
        }),
        ("from an earlier stop", |dir, disk, s, earlier| {
            s.append("k.later", None, b"later").expect("append");
            s.close().expect("close");
            let f = disk.open(&dir.join(SUMMARY), false).expect("summary");
            f.set_len(0).expect("truncate");
            f.write_at(0, earlier).expect("the earlier summary");
        }),
        ("appended to, then killed", |_, _, s, _| {
            s.append("k.later", None, b"later").expect("append");
            s.sync().expect("sync");
        }),
        (
            "an old block's message deleted, then killed",
            |_, _, s, _| {
                s.remove(5).expect("remove");
                s.sync().expect("sync: the delete is written");
            },
        ),
        ("a block index's head damaged", |dir, disk, _, _| {
            let f = disk.open(&idx_of(dir, 2), false).expect("idx");
            f.write_at(60, &[0xEE]).expect("damage");
        }),
    ];
    for (case, spoil) in cases {
        let dir = Path::new("/d/s");
        let disk = new_disk(dir);
        let mut s = open(dir, &disk);
        fill(&mut s, 200);
        spread(&mut s, 600, 150);
        s.close().expect("close");
        drop(s);
        let earlier = disk.read_file(&dir.join(SUMMARY)).expect("summary");
        let mut s = open(dir, &disk);
        assert!(s.opened_from_summary(), "{case}");
        spoil(dir, &disk, &mut s, &earlier);
        let want = seen(&s);
        kill(s);
        let mut s = reopen(dir, &disk, &want, false);
        s.close().expect("close");
        drop(s);
        drop(reopen(dir, &disk, &want, true));
    }
}
