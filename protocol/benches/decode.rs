//! Decode throughput of PUB frames (16 B and 1 KiB payloads) on one core.

use bytes::BytesMut;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rill_protocol::ClientDecoder;

const FRAMES: usize = 10_000;

fn frames(payload: usize) -> BytesMut {
    let mut buf = BytesMut::new();
    let body = vec![b'x'; payload];
    for _ in 0..FRAMES {
        buf.extend_from_slice(format!("PUB bench.subject.foo {payload}\r\n").as_bytes());
        buf.extend_from_slice(&body);
        buf.extend_from_slice(b"\r\n");
    }
    buf
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode_pub");
    for payload in [16usize, 1024] {
        let input = frames(payload);
        group.throughput(Throughput::Elements(FRAMES as u64));
        group.bench_with_input(BenchmarkId::from_parameter(payload), &input, |b, input| {
            b.iter_batched_ref(
                || input.clone(),
                |buf| {
                    let mut dec = ClientDecoder::default();
                    let mut n = 0;
                    while let Ok(Some(op)) = dec.decode(buf) {
                        std::hint::black_box(op);
                        n += 1;
                    }
                    assert_eq!(n, FRAMES);
                },
                criterion::BatchSize::LargeInput,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
