//! Consumer throughput, rill against nats-server (ignored by default; a benchmark, not a
//! test). Run with release builds:
//!
//! ```text
//! cargo build --release -p rill-server
//! RILL_BENCH_MSGS=200000 cargo test --release -p rill-tests --test e2e js_consumers_bench \
//!     -- --ignored --nocapture --test-threads=1
//! ```
//!
//! Measures pull fetch with explicit acks (batch 100 and 500) and an ordered consumer
//! replaying the whole stream, on a file stream of 128-byte messages.

use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{AckPolicy, PullConsumer, pull};
use async_nats::jetstream::{self, stream};
use futures::StreamExt;
use rill_tests::{ServerKind, ServerOpts, TestServer};

fn msgs() -> usize {
    std::env::var("RILL_BENCH_MSGS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

async fn fill(js: &jetstream::Context, n: usize) {
    js.create_stream(stream::Config {
        name: "BENCH".into(),
        subjects: vec!["bench.>".into()],
        ..Default::default()
    })
    .await
    .expect("stream");
    let payload = bytes::Bytes::from(vec![b'x'; 128]);
    let mut acks = Vec::with_capacity(512);
    for i in 0..n {
        acks.push(
            js.publish(format!("bench.{}", i % 16), payload.clone())
                .await
                .expect("publish"),
        );
        if acks.len() == 512 {
            for a in acks.drain(..) {
                a.await.expect("ack");
            }
        }
    }
    for a in acks {
        a.await.expect("ack");
    }
}

async fn pull_fetch(js: &jetstream::Context, n: usize, batch: usize) -> f64 {
    let c: PullConsumer = js
        .get_stream("BENCH")
        .await
        .expect("stream")
        .create_consumer(pull::Config {
            durable_name: Some(format!("fetch{batch}")),
            ack_policy: AckPolicy::Explicit,
            max_ack_pending: 20_000,
            ..Default::default()
        })
        .await
        .expect("consumer");
    let t0 = Instant::now();
    let mut got = 0;
    while got < n {
        let mut b = c
            .batch()
            .max_messages(batch)
            .expires(Duration::from_secs(2))
            .messages()
            .await
            .expect("batch");
        while let Some(m) = b.next().await {
            let Ok(m) = m else { break };
            m.ack().await.expect("ack");
            got += 1;
        }
    }
    got as f64 / t0.elapsed().as_secs_f64()
}

async fn ordered(js: &jetstream::Context, n: usize) -> f64 {
    let t0 = Instant::now();
    let mut msgs = js
        .get_stream("BENCH")
        .await
        .expect("stream")
        .create_consumer(pull::OrderedConfig::default())
        .await
        .expect("ordered")
        .messages()
        .await
        .expect("messages");
    let mut got = 0;
    while got < n {
        let m = tokio::time::timeout(Duration::from_secs(30), msgs.next())
            .await
            .expect("in time")
            .expect("open")
            .expect("msg");
        drop(m);
        got += 1;
    }
    got as f64 / t0.elapsed().as_secs_f64()
}

async fn run(kind: ServerKind) {
    let server = TestServer::start_with(ServerOpts::kind(kind)).await;
    let js = server.jetstream().await;
    measure(&js, &format!("{kind:?}")).await;
}

async fn measure(js: &jetstream::Context, kind: &str) {
    let n = msgs();
    let t0 = Instant::now();
    fill(js, n).await;
    let fill_rate = n as f64 / t0.elapsed().as_secs_f64();
    let f100 = pull_fetch(js, n, 100).await;
    let f500 = pull_fetch(js, n, 500).await;
    let ord = ordered(js, n).await;
    println!(
        "{kind}: {n} msgs of 128 B | publish (512 in flight) {fill_rate:.0}/s | pull fetch batch 100 + ack {f100:.0}/s | batch 500 + ack {f500:.0}/s | ordered replay {ord:.0}/s"
    );
}

#[tokio::test]
#[ignore = "benchmark; run with --release --ignored"]
async fn js_consumers_bench() {
    if let Ok(url) = std::env::var("RILL_BENCH_URL") {
        // An already running server (e.g. under a profiler).
        let js = jetstream::new(async_nats::connect(url).await.expect("connect"));
        return measure(&js, "external").await;
    }
    run(ServerKind::Nats).await;
    run(ServerKind::Rill).await;
}
