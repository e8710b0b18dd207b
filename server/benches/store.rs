//! Store benchmarks: append (group commit and lazy sync), load by sequence,
//! next-by-filter over 1M messages, open/recover time with every block indexed
//! (after a clean stop), with the sealed ones indexed (after a crash) and with
//! none, with 100k subjects from the subject summary and without it, the clean
//! stop itself, and the replay path (a consumer reading every
//! message in order after a restart).

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rill_server::jetstream::store::{FileStore, PurgeRequest, StdFs, StoreConfig, StreamStore};

const BIG: u64 = 1_000_000;

fn open(dir: &Path) -> FileStore {
    FileStore::open(dir, StoreConfig::default(), StdFs::shared()).expect("open")
}

fn bench_append(c: &mut Criterion) {
    let mut g = c.benchmark_group("append");
    g.measurement_time(Duration::from_secs(3));
    for size in [16usize, 1024] {
        let payload = vec![0xabu8; size];
        for (mode, every) in [("group_commit_100", 100u64), ("lazy", 0)] {
            g.throughput(Throughput::Bytes(size as u64));
            let dir = tempfile::tempdir().expect("tempdir");
            let mut s = open(dir.path());
            let mut n = 0u64;
            g.bench_with_input(BenchmarkId::new(mode, size), &payload, |b, p| {
                b.iter(|| {
                    s.append("bench.append", None, p).expect("append");
                    n += 1;
                    if every > 0 && n.is_multiple_of(every) {
                        s.sync().expect("sync");
                    }
                    if n.is_multiple_of(500_000) {
                        // Keep the disk footprint bounded; amortised over 500k appends.
                        s.purge(&PurgeRequest::default()).expect("purge");
                    }
                })
            });
        }
    }
    g.finish();
}

/// KV-style: 100k keys, history 1, updates round robin (each append replaces one).
fn bench_kv_update(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = StoreConfig {
        max_msgs_per_subject: 1,
        ..StoreConfig::default()
    };
    let mut s = FileStore::open(dir.path(), cfg, StdFs::shared()).expect("open");
    let keys: Vec<String> = (0..100_000).map(|i| format!("$KV.b.k{i}")).collect();
    for k in &keys {
        s.append(k, None, b"v0").expect("append");
    }
    let mut g = c.benchmark_group("append_kv");
    g.throughput(Throughput::Bytes(64));
    let mut i = 0usize;
    g.bench_function("update_100k_keys_history_1", |b| {
        b.iter(|| {
            i = (i + 1) % keys.len();
            s.append(&keys[i], None, &[1u8; 64]).expect("append");
        })
    });
    g.finish();
}

fn filled(n: u64, payload: usize) -> (tempfile::TempDir, FileStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = open(dir.path());
    let body = vec![7u8; payload];
    for i in 0..n {
        let subj = if i % 100_000 == 99_999 {
            "rare.x".to_string()
        } else {
            format!("s.{}", i % 100)
        };
        s.append(&subj, None, &body).expect("append");
    }
    s.sync().expect("sync");
    (dir, s)
}

fn bench_load(c: &mut Criterion) {
    let (_dir, s) = filled(100_000, 128);
    let mut g = c.benchmark_group("load");
    g.throughput(Throughput::Bytes(128));
    let mut x = 1u64;
    g.bench_function("by_seq_128B_of_100k", |b| {
        b.iter(|| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            black_box(s.load(1 + (x >> 33) % 100_000).expect("load"));
        })
    });
    let mut seq = 0u64;
    g.bench_function("sequential_128B_of_100k", |b| {
        b.iter(|| {
            seq = seq % 100_000 + 1;
            black_box(s.load(seq).expect("load"));
        })
    });
    g.finish();
}

fn bench_next_by_filter(c: &mut Criterion) {
    let (_dir, s) = filled(BIG, 16);
    let mut g = c.benchmark_group("next_by_filter_1M");
    let mut x = 1u64;
    let mut start = move || {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        1 + (x >> 33) % (BIG - 200_000)
    };
    for filter in ["s.42", "s.*", "rare.>", "rare.x"] {
        g.bench_function(filter, |b| {
            b.iter(|| black_box(s.load_next(start(), filter).expect("next")))
        });
    }
    g.finish();
}

fn remove_block_indexes(dir: &Path) {
    for e in std::fs::read_dir(dir).expect("read dir") {
        let p = e.expect("entry").path();
        if p.extension().is_some_and(|x| x == "idx") {
            std::fs::remove_file(p).expect("rm index");
        }
    }
}

/// Open of a 1M-message store: every block indexed (clean stop), only the
/// sealed blocks indexed (a crash: the rotation checkpoint), and none.
fn bench_open(c: &mut Criterion) {
    let (dir, mut s) = filled(BIG, 16);
    s.sync().expect("sync");
    drop(s);
    let mut g = c.benchmark_group("open_1M_msgs");
    g.sample_size(10);
    g.bench_function("after_crash", |b| {
        b.iter(|| {
            let s = open(dir.path());
            assert_eq!(s.state().msgs, BIG);
        })
    });
    let mut s = open(dir.path());
    s.close().expect("close");
    drop(s);
    g.bench_function("with_block_indexes", |b| {
        b.iter(|| {
            let s = open(dir.path());
            assert_eq!(s.state().msgs, BIG);
        })
    });
    remove_block_indexes(dir.path());
    g.bench_function("full_scan", |b| {
        b.iter(|| {
            let s = open(dir.path());
            assert_eq!(s.state().msgs, BIG);
        })
    });
    g.finish();
    let t = Instant::now();
    let s = open(dir.path());
    eprintln!(
        "one full-scan open: {:?} ({} blocks)",
        t.elapsed(),
        s.block_count()
    );
}

/// Open after a clean stop of 1M messages on 100,000 subjects (10 each, round
/// robin, so every block holds every subject): from the subject summary, and
/// without it (each block index's subject list read).
fn bench_open_many_subjects(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = open(dir.path());
    for i in 0..BIG {
        s.append(&format!("bench.{}", i % 100_000), None, &[7u8; 16])
            .expect("append");
    }
    s.close().expect("close");
    drop(s);
    let summary = dir.path().join("subjects.sum");
    assert!(summary.exists(), "a clean stop writes the summary");
    let mut g = c.benchmark_group("open_1M_msgs_100k_subjects");
    g.sample_size(10);
    g.bench_function("with_subject_summary", |b| {
        b.iter(|| {
            let s = open(dir.path());
            assert_eq!(s.state().num_subjects, 100_000);
        })
    });
    std::fs::remove_file(&summary).expect("rm summary");
    g.bench_function("from_block_indexes", |b| {
        b.iter(|| {
            let s = open(dir.path());
            assert_eq!(s.state().num_subjects, 100_000);
        })
    });
    g.finish();
}

/// The clean stop of a 1M-message store after a few appends: the indexes of
/// the blocks that lack one (the active block's) are written.
fn bench_close(c: &mut Criterion) {
    let (dir, mut s) = filled(BIG, 16);
    s.close().expect("close");
    drop(s);
    let mut g = c.benchmark_group("close_1M_msgs");
    g.sample_size(10);
    g.bench_function("after_100_appends", |b| {
        b.iter_batched(
            || {
                let mut s = open(dir.path());
                for _ in 0..100 {
                    s.append("late", None, b"0123456789abcdef").expect("append");
                }
                s
            },
            |mut s| s.close().expect("close"),
            criterion::BatchSize::PerIteration,
        )
    });
    g.finish();
}

/// The replay path: `load_next` over every message in order, as a consumer
/// replaying the stream does, on a store just reopened from its indexes (so
/// each block is verified on its first load).
fn bench_replay(c: &mut Criterion) {
    let (dir, mut s) = filled(BIG, 16);
    s.close().expect("close");
    drop(s);
    let mut g = c.benchmark_group("replay_1M_msgs");
    g.sample_size(10);
    g.throughput(Throughput::Elements(BIG));
    g.bench_function("load_next_all", |b| {
        b.iter_batched(
            || open(dir.path()),
            |s| {
                let mut next = 1;
                while let Ok(m) = s.load_next(next, ">") {
                    next = m.seq + 1;
                }
                assert_eq!(next, BIG + 1);
            },
            criterion::BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(
    benches,
    bench_append,
    bench_kv_update,
    bench_load,
    bench_next_by_filter,
    bench_open,
    bench_open_many_subjects,
    bench_close,
    bench_replay
);
criterion_main!(benches);
