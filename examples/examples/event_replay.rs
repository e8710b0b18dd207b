//! Event replay: rebuild a projection (account balances) from an event stream, once
//! from the very beginning and once from a point in time, with ordered consumers.
//!
//! ```text
//! NATS_URL=nats://127.0.0.1:4222 cargo run -p rill-examples --example event_replay
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context as _, bail};
use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use async_nats::jetstream::{self, stream};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
struct Event {
    account: String,
    amount: i64,
}

type Balances = BTreeMap<String, i64>;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let js = jetstream::new(async_nats::connect(&url).await.context("connect")?);
    let _ = js.delete_stream("LEDGER").await;
    let stream = js
        .create_stream(stream::Config {
            name: "LEDGER".into(),
            subjects: vec!["ledger.>".into()],
            ..Default::default()
        })
        .await?;
    let mut expected = Balances::new();
    let mut since_cut = Balances::new();
    let mut cut = None;
    for i in 0..30i64 {
        let account = ["alice", "bob", "carol"][(i % 3) as usize].to_owned();
        let amount = if i % 4 == 3 { -(i * 2) } else { i * 10 };
        let ev = Event {
            account: account.clone(),
            amount,
        };
        let ack = js
            .publish(format!("ledger.{account}"), serde_json::to_vec(&ev)?.into())
            .await?
            .await?;
        *expected.entry(account.clone()).or_default() += amount;
        if i == 20 {
            let msg = stream.get_raw_message(ack.sequence).await?;
            cut = Some(msg.time);
        }
        if i >= 20 {
            *since_cut.entry(account).or_default() += amount;
        }
        if i == 19 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let cut = cut.context("cut time")?;

    let full = replay(&stream, DeliverPolicy::All).await?;
    println!("rebuilt from the start: {full:?}");
    let partial = replay(&stream, DeliverPolicy::ByStartTime { start_time: cut }).await?;
    println!("changes since {cut}: {partial:?}");
    if full != expected || partial != since_cut {
        bail!("projection mismatch: expected {expected:?} and {since_cut:?}");
    }
    println!("projections match the events published");
    Ok(())
}

/// Replays the stream with an ordered consumer until nothing is pending.
async fn replay(stream: &stream::Stream, from: DeliverPolicy) -> anyhow::Result<Balances> {
    let mut msgs = stream
        .create_consumer(pull::OrderedConfig {
            deliver_policy: from,
            ..Default::default()
        })
        .await?
        .messages()
        .await?;
    let mut balances = Balances::new();
    loop {
        let Ok(Some(msg)) = tokio::time::timeout(Duration::from_secs(5), msgs.next()).await else {
            bail!("replay stalled");
        };
        let msg = msg?;
        let ev: Event = serde_json::from_slice(&msg.payload)?;
        *balances.entry(ev.account).or_default() += ev.amount;
        if msg.info().map_err(|e| anyhow::anyhow!("{e}"))?.pending == 0 {
            return Ok(balances);
        }
    }
}
