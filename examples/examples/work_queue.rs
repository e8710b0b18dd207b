//! A work queue: several workers pull jobs from one work-queue stream, ack what they
//! finish, and a poison job that always fails ends up in a dead-letter stream.
//!
//! ```text
//! NATS_URL=nats://127.0.0.1:4222 cargo run -p rill-examples --example work_queue
//! ```
//!
//! The dead-letter republish is a rill extension (consumer metadata
//! `rill.dead_letter_subject`); against nats-server you get the
//! `MAX_DELIVERIES` advisory only.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail};
use async_nats::jetstream::consumer::{AckPolicy, PullConsumer, pull};
use async_nats::jetstream::{self, AckKind, stream};
use futures::StreamExt;

const JOBS: usize = 20;
const WORKERS: usize = 3;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let client = async_nats::connect(&url).await.context("connect")?;
    let js = jetstream::new(client);
    for name in ["JOBS", "DEAD_JOBS"] {
        let _ = js.delete_stream(name).await;
    }
    js.create_stream(stream::Config {
        name: "JOBS".into(),
        subjects: vec!["jobs.>".into()],
        retention: stream::RetentionPolicy::WorkQueue,
        ..Default::default()
    })
    .await?;
    let mut dead = js
        .create_stream(stream::Config {
            name: "DEAD_JOBS".into(),
            subjects: vec!["dlq.jobs".into()],
            ..Default::default()
        })
        .await?;
    let consumer: PullConsumer = js
        .get_stream("JOBS")
        .await?
        .create_consumer(pull::Config {
            durable_name: Some("workers".into()),
            ack_policy: AckPolicy::Explicit,
            ack_wait: Duration::from_secs(5),
            max_deliver: 3,
            metadata: [("rill.dead_letter_subject".into(), "dlq.jobs".into())].into(),
            ..Default::default()
        })
        .await?;
    for i in 0..JOBS {
        js.publish(format!("jobs.resize.{i}"), format!("image-{i}").into())
            .await?
            .await?;
    }
    js.publish("jobs.resize.poison", "corrupt-image".into())
        .await?
        .await?;

    let done = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for w in 0..WORKERS {
        let (c, done) = (consumer.clone(), Arc::clone(&done));
        tasks.push(tokio::spawn(async move { worker(w, c, done).await }));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while done.load(Ordering::Relaxed) < JOBS || dead.info().await?.state.messages < 1 {
        if tokio::time::Instant::now() > deadline {
            bail!("timed out: {} jobs done", done.load(Ordering::Relaxed));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for t in &tasks {
        t.abort();
    }
    let letter = dead.get_raw_message(1).await?;
    let reason = letter
        .headers
        .get("Rill-Dead-Letter-Reason")
        .map(|v| v.to_string())
        .unwrap_or_default();
    let left = js.get_stream("JOBS").await?.info().await?.state.messages;
    println!(
        "processed {} jobs with {WORKERS} workers",
        done.load(Ordering::Relaxed)
    );
    println!(
        "dead letter: {} ({}), reason {reason}",
        String::from_utf8_lossy(&letter.payload),
        letter
            .headers
            .get("Nats-Subject")
            .map(|v| v.to_string())
            .unwrap_or_default()
    );
    println!("jobs left in the work queue: {left}");
    if left != 0 {
        bail!("work queue not empty");
    }
    Ok(())
}

/// Pulls jobs in small batches; a job that cannot be processed is NAKed so it is
/// retried until `max_deliver`, then dead-lettered.
async fn worker(id: usize, consumer: PullConsumer, done: Arc<AtomicUsize>) -> anyhow::Result<()> {
    loop {
        let mut batch = consumer
            .batch()
            .max_messages(5)
            .expires(Duration::from_millis(500))
            .messages()
            .await?;
        while let Some(msg) = batch.next().await {
            let Ok(msg) = msg else { break };
            if msg.payload.starts_with(b"corrupt") {
                msg.ack_with(AckKind::Nak(None)).await.ok();
                continue;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
            msg.double_ack().await.ok();
            let n = done.fetch_add(1, Ordering::Relaxed) + 1;
            if n <= JOBS {
                println!("worker {id}: {} done", msg.subject);
            }
        }
    }
}
