//! Subject trie: match and insert with 10k and 100k subscriptions of mixed
//! literal and wildcard subjects, with the match cache warm (repeated subjects)
//! and cold (a fresh subject every time).

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rill_server::router::Sublist;

/// A deterministic mix: 80% literal `svc.<region>.<n>.events`, 10% `svc.<region>.*.events`, 10% `svc.<region>.<n>.>`.
fn filters(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let region = i % 16;
            match i % 10 {
                0 => format!("svc.r{region}.*.events"),
                1 => format!("svc.r{region}.n{i}.>"),
                _ => format!("svc.r{region}.n{i}.events"),
            }
        })
        .collect()
}

fn build(n: usize) -> Sublist<u32> {
    let list = Sublist::new();
    for (i, f) in filters(n).iter().enumerate() {
        list.insert(f, None, i as u32);
    }
    list
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("sublist");
    group.throughput(Throughput::Elements(1));
    for n in [10_000usize, 100_000] {
        let list = build(n);
        let subjects: Vec<Bytes> = (0..4096)
            .map(|i| Bytes::from(format!("svc.r{}.n{}.events", i % 16, i * 7 % n)))
            .collect();
        group.bench_with_input(BenchmarkId::new("match_cached", n), &n, |b, _| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % 64;
                std::hint::black_box(list.matches(&subjects[i]));
            });
        });
        group.bench_with_input(BenchmarkId::new("match_uncached", n), &n, |b, _| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % subjects.len();
                // A subscription change on an unrelated subject keeps the trie the same
                // size but evicts nothing; unique subjects beyond the cache size miss.
                let s = Bytes::from(format!("svc.r{}.x{i}.events", i % 16));
                std::hint::black_box(list.matches(&s));
            });
        });
        group.bench_with_input(BenchmarkId::new("insert_remove", n), &n, |b, _| {
            let mut i = 0u32;
            b.iter(|| {
                i = i.wrapping_add(1);
                let f = format!("svc.r{}.new{}.events", i % 16, i % 1000);
                list.insert(&f, None, u32::MAX - i);
                list.remove(&f, None, &(u32::MAX - i));
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
