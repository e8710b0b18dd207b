//! Exactly-once publishing with `Nats-Msg-Id`.
//!
//! Publishes `--orders N` orders to the `ORDERS` stream, each with the message id
//! `order-<n>`, and retries every order until the server acknowledges it. A retry
//! of an order the server already stored (its ack was lost, e.g. because the
//! server restarted) is answered with `duplicate: true` and not stored again, so
//! however often the publisher retries, each order is stored exactly once. At the
//! end the program checks that: one message per order subject.
//!
//! Run it against `rill-server -js` (or nats-server) and restart the server while
//! it runs:
//!
//! ```text
//! cargo run -p rill-examples --example exactly_once -- --server nats://127.0.0.1:4222 --orders 5000
//! ```
//!
//! Exit status 0 when every order is stored exactly once.

use std::time::Duration;

use anyhow::{Context as _, bail};
use async_nats::jetstream::{self, message::PublishMessage, stream};
use futures::TryStreamExt;

const STREAM: &str = "ORDERS";

#[derive(Debug)]
struct Args {
    server: String,
    orders: usize,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        server: std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into()),
        orders: 1000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--server" | "-s" => args.server = value,
            "--orders" | "-n" => args.orders = value.parse().context("--orders")?,
            other => bail!("unknown flag {other}"),
        }
    }
    Ok(args)
}

#[derive(Debug, Default)]
struct Tally {
    stored: usize,
    duplicates: usize,
    retries: usize,
}

/// Publishes one order until it is acknowledged (stored now or earlier).
async fn publish_order(js: &jetstream::Context, n: usize, tally: &mut Tally) {
    let msg = PublishMessage::build()
        .message_id(format!("order-{n}"))
        .payload(format!("{{\"order\":{n},\"amount\":{}}}", n * 10).into());
    loop {
        let attempt = async {
            let ack = js.send_publish(format!("orders.{n}"), msg.clone()).await?;
            Ok::<_, anyhow::Error>(ack.await?)
        };
        match attempt.await {
            Ok(ack) if ack.duplicate => {
                tally.duplicates += 1;
                return;
            }
            Ok(_) => {
                tally.stored += 1;
                return;
            }
            Err(_) => {
                tally.retries += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Creates the stream if needed (retrying while the server is unreachable).
async fn ensure_stream(js: &jetstream::Context) -> anyhow::Result<()> {
    let cfg = stream::Config {
        name: STREAM.into(),
        subjects: vec!["orders.>".into()],
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    };
    for _ in 0..100 {
        if js.get_or_create_stream(cfg.clone()).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("could not create stream {STREAM}")
}

/// Checks one stored message per order subject.
async fn check_exactly_once(js: &jetstream::Context, orders: usize) -> anyhow::Result<()> {
    let mut s = js.get_stream(STREAM).await?;
    let messages = s.info().await?.state.messages;
    let subjects = s.info_with_subjects("orders.>").await?;
    let counts: Vec<(String, usize)> = subjects.try_collect().await?;
    let wrong: Vec<_> = counts.iter().filter(|(_, c)| *c != 1).collect();
    println!(
        "stream {STREAM}: {} messages, {} order subjects",
        messages,
        counts.len()
    );
    if counts.len() != orders || !wrong.is_empty() || messages != orders as u64 {
        bail!(
            "not exactly once: {} subjects, repeated: {wrong:?}",
            counts.len()
        );
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let client = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connect(&args.server)
        .await?;
    let js = jetstream::ContextBuilder::new()
        .timeout(Duration::from_secs(1))
        .build(client);
    ensure_stream(&js).await?;
    let mut tally = Tally::default();
    for n in 1..=args.orders {
        publish_order(&js, n, &mut tally).await;
    }
    println!(
        "published {} orders: {} stored, {} acknowledged as duplicates, {} retries",
        args.orders, tally.stored, tally.duplicates, tally.retries
    );
    check_exactly_once(&js, args.orders).await?;
    println!("every order stored exactly once");
    Ok(())
}
