//! Partitioned workers: per-key ordered, parallel processing, the NATS way to get
//! Kafka-style partitions. A stream's subject transform puts each order event under a
//! partition chosen from its key with `{{partition(n, token)}}` (a stable hash, so every
//! event of a key lands in the same partition); one worker per partition consumes only
//! its partition, so events of one key are handled in order while the partitions run in
//! parallel.
//!
//! ```text
//! NATS_URL=nats://127.0.0.1:4222 cargo run -p rill-examples --example partitioned_workers
//! ```
//!
//! The same partitioning works for core NATS subscribers with a server-level mapping:
//! `mappings { "orders.*": "orders.{{partition(3,1)}}.{{wildcard(1)}}" }`.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use async_nats::jetstream::consumer::{AckPolicy, pull};
use async_nats::jetstream::{self, stream};
use futures::StreamExt;

const PARTITIONS: usize = 3;
const KEYS: usize = 12;
const EVENTS_PER_KEY: usize = 10;

/// What one worker saw: for each key, the event numbers in the order they came.
type Seen = HashMap<String, Vec<usize>>;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let client = async_nats::connect(&url).await.context("connect")?;
    let js = jetstream::new(client);
    let _ = js.delete_stream("ORDERS").await;
    js.create_stream(stream::Config {
        name: "ORDERS".into(),
        subjects: vec!["orders.*".into()],
        subject_transform: Some(stream::SubjectTransform {
            source: "orders.*".into(),
            destination: format!("orders.{{{{partition({PARTITIONS},1)}}}}.{{{{wildcard(1)}}}}"),
        }),
        ..Default::default()
    })
    .await
    .context("create stream")?;

    // Events of all keys, interleaved: order-0 #0, order-1 #0, ..., order-0 #1, ...
    for n in 0..EVENTS_PER_KEY {
        for k in 0..KEYS {
            js.publish(format!("orders.order-{k}"), format!("{n}").into())
                .await?
                .await?;
        }
    }

    let workers: Vec<_> = (0..PARTITIONS)
        .map(|p| tokio::spawn(worker(js.clone(), p)))
        .collect();
    let mut owner: HashMap<String, usize> = HashMap::new();
    let mut total = 0;
    for (p, w) in workers.into_iter().enumerate() {
        let seen = w.await.context("worker task")??;
        for (key, events) in seen {
            ensure!(
                events == (0..EVENTS_PER_KEY).collect::<Vec<_>>(),
                "{key} out of order in partition {p}: {events:?}"
            );
            total += events.len();
            if let Some(other) = owner.insert(key.clone(), p) {
                bail!("{key} seen in partitions {other} and {p}");
            }
        }
    }
    ensure!(owner.len() == KEYS, "{} of {KEYS} keys seen", owner.len());
    let mut sizes = vec![0; PARTITIONS];
    for p in owner.values() {
        sizes[*p] += 1;
    }
    println!(
        "{PARTITIONS} workers processed {total} events of {KEYS} keys; keys per partition {sizes:?}"
    );
    println!("every key stayed in one partition and its events arrived in order");
    Ok(())
}

/// Consumes partition `p` until it is drained; returns the events seen per key.
async fn worker(js: jetstream::Context, p: usize) -> anyhow::Result<Seen> {
    let consumer = js
        .get_stream("ORDERS")
        .await?
        .create_consumer(pull::Config {
            durable_name: Some(format!("partition-{p}")),
            filter_subject: format!("orders.{p}.*"),
            ack_policy: AckPolicy::Explicit,
            ..Default::default()
        })
        .await?;
    let mut seen = Seen::new();
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(50)
        .expires(Duration::from_secs(1))
        .messages()
        .await?;
    loop {
        let next = tokio::time::timeout(Duration::from_secs(2), messages.next()).await;
        let Ok(Some(msg)) = next else { break };
        let msg = msg.map_err(|e| anyhow::anyhow!("{e}"))?;
        let key = msg
            .subject
            .rsplit('.')
            .next()
            .unwrap_or_default()
            .to_owned();
        let n: usize = std::str::from_utf8(&msg.payload)?.parse()?;
        seen.entry(key).or_default().push(n);
        msg.ack().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    Ok(seen)
}
