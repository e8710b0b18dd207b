//! Damaged block files: a real server started on a store whose block file was
//! damaged (bits flipped in one record, a zeroed 512-byte "dead sector") after a
//! clean stop (the index-snapshot path) and after a SIGKILL (the scan path)
//! keeps the stream, serves every intact message before and after the damage to
//! a real client, never serves damaged bytes, reports the loss in `STREAM.INFO`
//! (`state.lost`), and takes the next publish with the next sequence. A durable
//! consumer moves past the lost messages.
//!
//! The test finds records in the block file by their unique payloads and uses
//! the documented record layout (28 bytes before the subject, a 4-byte checksum
//! after the payload) to know which records a damaged byte range touches.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull, stream};
use futures::StreamExt;
use futures::stream::FuturesOrdered;
use rill_tests::TestServer;
use serde_json::Value;

const N: u64 = 3000;
const SUBJECT: &str = "dmg.a";

fn payload(seq: u64) -> String {
    format!("m-{seq:06}-{}", "p".repeat(128 - 9))
}

fn block_file(server: &TestServer) -> PathBuf {
    server
        .store_dir()
        .join("store/jetstream/$G/streams/DMG/msgs/0000000001.blk")
}

/// Byte ranges of the records in a block file, by sequence (the documented
/// layout: a 40-byte block header, then records starting with their length
/// (u32) and holding their sequence (u64) at offset 12).
fn record_ranges(data: &[u8]) -> Vec<(u64, (usize, usize))> {
    let mut out = Vec::new();
    let mut pos = 40;
    while pos + 20 <= data.len() {
        let len = u32::from_le_bytes(data[pos..pos + 4].try_into().expect("4")) as usize;
        let seq = u64::from_le_bytes(data[pos + 12..pos + 20].try_into().expect("8"));
        assert_eq!(
            &data[pos + 28 + SUBJECT.len()..pos + 28 + SUBJECT.len() + 128],
            payload(seq).as_bytes()
        );
        out.push((seq, (pos, pos + len)));
        pos += len;
    }
    out
}

/// Damages the block: flips 3 bits in one record and zeroes 512 bytes across
/// others. Returns the sequences whose records the damage touches.
fn damage(server: &TestServer) -> BTreeSet<u64> {
    let path = block_file(server);
    let mut data = std::fs::read(&path).expect("block");
    let ranges = record_ranges(&data);
    assert_eq!(ranges.len() as u64, N);
    let (_, (a, _)) = ranges[1732];
    for bit in [3, 17, 40] {
        data[a + 40 + bit / 8] ^= 1 << (bit % 8);
    }
    let (_, (b, _)) = ranges[2199];
    let zero = (b + 100, b + 612);
    data[zero.0..zero.1].fill(0);
    std::fs::write(&path, &data).expect("write block");
    ranges
        .iter()
        .filter(|(_, (s, e))| (*s <= a + 45 && a + 40 < *e) || (*s < zero.1 && zero.0 < *e))
        .map(|(q, _)| *q)
        .collect()
}

async fn fill(js: &jetstream::Context) {
    js.create_stream(stream::Config {
        name: "DMG".into(),
        subjects: vec!["dmg.>".into()],
        ..Default::default()
    })
    .await
    .expect("create");
    let mut acks = FuturesOrdered::new();
    for seq in 1..=N {
        acks.push_back(
            js.publish(SUBJECT, payload(seq).into())
                .await
                .expect("pub")
                .into_future(),
        );
        if acks.len() >= 64 {
            acks.next().await.expect("ack").expect("acked");
        }
    }
    while let Some(r) = acks.next().await {
        r.expect("acked");
    }
}

/// Acknowledges the first 100 messages through a durable pull consumer.
async fn consume_first_100(js: &jetstream::Context) {
    let c = js
        .get_stream("DMG")
        .await
        .expect("stream")
        .create_consumer(pull::Config {
            durable_name: Some("C".into()),
            ..Default::default()
        })
        .await
        .expect("consumer");
    let mut batch = c.fetch().max_messages(100).messages().await.expect("fetch");
    while let Some(m) = batch.next().await {
        m.expect("msg").double_ack().await.expect("ack");
    }
}

/// Reads the whole stream with an ordered consumer: (seq, payload) pairs.
async fn read_all(js: &jetstream::Context, expect: usize) -> Vec<(u64, String)> {
    let mut msgs = js
        .get_stream("DMG")
        .await
        .expect("stream")
        .create_consumer(pull::OrderedConfig::default())
        .await
        .expect("ordered")
        .messages()
        .await
        .expect("messages");
    let mut out = Vec::new();
    while out.len() < expect {
        let m = tokio::time::timeout(Duration::from_secs(10), msgs.next())
            .await
            .expect("in time")
            .expect("open")
            .expect("msg");
        let seq = m.info().expect("info").stream_sequence;
        out.push((seq, String::from_utf8_lossy(&m.payload).into_owned()));
    }
    out
}

async fn stream_state(server: &TestServer) -> Value {
    let client = server.client().await;
    let reply = client
        .request("$JS.API.STREAM.INFO.DMG", "".into())
        .await
        .expect("info");
    let info: Value = serde_json::from_slice(&reply.payload).expect("json");
    info["state"].clone()
}

async fn damaged_store_keeps_the_stream(crash: bool) {
    let mut server = TestServer::start().await;
    let js = server.jetstream().await;
    fill(&js).await;
    consume_first_100(&js).await;
    if crash {
        server.kill();
    } else {
        server.stop().await;
    }
    let damaged = damage(&server);
    assert!(damaged.len() >= 5, "{damaged:?}");
    server.restart().await;
    let js = server.jetstream().await;

    let intact: Vec<u64> = (1..=N).filter(|q| !damaged.contains(q)).collect();
    let got = read_all(&js, intact.len()).await;
    let seqs: Vec<u64> = got.iter().map(|(q, _)| *q).collect();
    assert_eq!(seqs, intact, "exactly the intact messages, in order");
    for (seq, body) in &got {
        assert_eq!(body, &payload(*seq), "seq {seq} served intact");
    }

    let state = stream_state(&server).await;
    assert_eq!(state["messages"], intact.len() as u64, "{state}");
    assert_eq!(state["last_seq"], N, "{state}");
    let lost: BTreeSet<u64> = state["lost"]["msgs"]
        .as_array()
        .expect("state.lost.msgs")
        .iter()
        .filter_map(Value::as_u64)
        .collect();
    assert_eq!(lost, damaged, "loss reported: {state}");
    assert!(
        state["lost"]["bytes"].as_u64().unwrap_or(0) > 0 || crash,
        "{state}"
    );
    assert!(server.logs().contains("lost"), "loss logged");

    // The durable consumer resumes after its acks and moves past the damage.
    let c: jetstream::consumer::PullConsumer = js
        .get_stream("DMG")
        .await
        .expect("stream")
        .get_consumer("C")
        .await
        .expect("consumer");
    let want: BTreeSet<u64> = intact[100..].iter().copied().collect();
    let mut delivered = BTreeSet::new();
    for _ in 0..100 {
        if want.is_subset(&delivered) {
            break;
        }
        let mut batch = c.fetch().max_messages(500).messages().await.expect("fetch");
        while let Some(m) = batch.next().await {
            let m = m.expect("msg");
            let seq = m.info().expect("info").stream_sequence;
            assert!(!damaged.contains(&seq), "lost seq {seq} delivered");
            delivered.insert(seq);
            m.ack().await.expect("ack");
        }
    }
    assert!(
        want.is_subset(&delivered),
        "every intact message after the acks delivered"
    );

    // Still writable, with the next sequence.
    let ack = js
        .publish(SUBJECT, "after".into())
        .await
        .expect("pub")
        .await
        .expect("ack");
    assert_eq!(ack.sequence, N + 1);
}

#[tokio::test]
async fn damage_after_a_clean_stop_costs_only_the_damaged_records() {
    damaged_store_keeps_the_stream(false).await;
}

#[tokio::test]
async fn damage_after_a_crash_costs_only_the_damaged_records() {
    damaged_store_keeps_the_stream(true).await;
}
