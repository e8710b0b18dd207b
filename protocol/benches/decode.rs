//! Decode throughput of PUB frames (16 B and 1 KiB payloads) on one core.
//!
//! The input is fed to the decoder the way the server reads a socket: 64 KiB at a
//! time appended to the read buffer, then every whole frame decoded and dropped.
//! The copy into the buffer is part of the measurement, and the decoder reads
//! bytes that were just written, as it does after a `read`. Decoder and buffer
//! live across iterations, as they live as long as a connection.

use bytes::BytesMut;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rill_protocol::ClientDecoder;

const FRAMES: usize = 10_000;

/// What one socket read hands the decoder.
const READ_SIZE: usize = 64 * 1024;

fn frames(payload: usize) -> Vec<u8> {
    let mut buf = Vec::new();
    let body = vec![b'x'; payload];
    for _ in 0..FRAMES {
        buf.extend_from_slice(format!("PUB bench.subject.foo {payload}\r\n").as_bytes());
        buf.extend_from_slice(&body);
        buf.extend_from_slice(b"\r\n");
    }
    buf
}

/// Decodes `input` read by read; returns the number of ops.
fn decode_all(dec: &mut ClientDecoder, buf: &mut BytesMut, input: &[u8]) -> usize {
    let mut n = 0;
    for read in input.chunks(READ_SIZE) {
        if buf.capacity() - buf.len() < READ_SIZE {
            buf.reserve(READ_SIZE);
        }
        buf.extend_from_slice(read);
        while let Ok(Some(op)) = dec.decode(buf) {
            std::hint::black_box(op);
            n += 1;
        }
    }
    n
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode_pub");
    for payload in [16usize, 1024] {
        let input = frames(payload);
        let mut dec = ClientDecoder::default();
        let mut buf = BytesMut::with_capacity(2 * READ_SIZE);
        assert_eq!(decode_all(&mut dec, &mut buf, &input), FRAMES);
        group.throughput(Throughput::Elements(FRAMES as u64));
        group.bench_with_input(BenchmarkId::from_parameter(payload), &input, |b, input| {
            b.iter(|| decode_all(&mut dec, &mut buf, input));
        });
    }
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
