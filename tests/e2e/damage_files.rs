//! Damage to the store's other files, through a real server and real clients:
//! a durable consumer's `state.log` damaged in the middle (after a clean stop
//! and after a SIGKILL) resets that consumer to its state before the damage, so
//! every unacknowledged message is delivered again and none is skipped; a
//! damaged stream `meta.cfg` is served from its copy `meta.bak`; with both
//! copies damaged the stream is not restored, the log names both files, and
//! creating the stream again adopts its stored messages; a block written by a
//! newer format version is refused by name and left untouched.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull, stream};
use futures::StreamExt;
use rill_tests::TestServer;
use serde_json::Value;

const N: u64 = 200;

fn stream_dir(server: &TestServer) -> PathBuf {
    server.store_dir().join("store/jetstream/$G/streams/DF")
}

fn stream_config() -> stream::Config {
    stream::Config {
        name: "DF".into(),
        subjects: vec!["df.>".into()],
        ..Default::default()
    }
}

async fn fill(js: &jetstream::Context) {
    js.create_stream(stream_config()).await.expect("create");
    for i in 1..=N {
        js.publish("df.a", format!("m{i}").into())
            .await
            .expect("pub")
            .await
            .expect("ack");
    }
}

async fn consumer(js: &jetstream::Context) -> pull::Stream {
    let c = js
        .get_stream("DF")
        .await
        .expect("stream")
        .get_or_create_consumer(
            "C",
            pull::Config {
                durable_name: Some("C".into()),
                ack_wait: Duration::from_secs(1),
                ..Default::default()
            },
        )
        .await
        .expect("consumer");
    c.messages().await.expect("messages")
}

/// Receives `n` messages (acking each when `ack`); returns their stream sequences.
async fn take(msgs: &mut pull::Stream, n: usize, ack: bool) -> Vec<u64> {
    let mut out = Vec::new();
    while out.len() < n {
        let m = tokio::time::timeout(Duration::from_secs(20), msgs.next())
            .await
            .expect("in time")
            .expect("open")
            .expect("msg");
        out.push(m.info().expect("info").stream_sequence);
        if ack {
            m.double_ack().await.expect("ack");
        }
    }
    out
}

async fn api(server: &TestServer, subject: &str) -> Value {
    let reply = server
        .client()
        .await
        .request(subject.to_string(), "".into())
        .await
        .expect("request");
    serde_json::from_slice(&reply.payload).expect("json")
}

/// Flips one byte in the middle of the consumer's state log, so that whole,
/// checksummed records follow the damage.
fn damage_state_log(server: &TestServer) {
    let path = stream_dir(server).join("consumers/C/state.log");
    let mut data = std::fs::read(&path).expect("state.log");
    assert!(data.len() > 2000, "acks are logged: {} bytes", data.len());
    let at = data.len() / 2;
    data[at] ^= 0x5a;
    std::fs::write(&path, &data).expect("write");
}

async fn consumer_state_damage(crash: bool) {
    let mut server = TestServer::start().await;
    let js = server.jetstream().await;
    fill(&js).await;
    let mut msgs = consumer(&js).await;
    let acked = take(&mut msgs, 100, true).await;
    assert_eq!(acked, (1..=100).collect::<Vec<_>>());
    drop(msgs);
    if crash {
        server.kill();
    } else {
        server.stop().await;
    }
    damage_state_log(&server);
    server.restart().await;

    let info = api(&server, "$JS.API.CONSUMER.INFO.DF.C").await;
    let floor = info["ack_floor"]["stream_seq"].as_u64().expect("ack floor");
    assert!(floor < 100, "reset to a state before the damage: {info}");
    let logs = server.logs();
    assert!(logs.contains("consumer state damaged"), "said so: {logs}");
    assert!(
        stream_dir(&server)
            .join("consumers/C/state.log.damaged")
            .exists(),
        "the damaged log is kept"
    );

    // Every message after the restored ack floor comes (again); none is skipped.
    let js = server.jetstream().await;
    let mut msgs = consumer(&js).await;
    let want: BTreeSet<u64> = (floor + 1..=N).collect();
    let mut got = BTreeSet::new();
    while !want.is_subset(&got) {
        got.extend(take(&mut msgs, 1, true).await);
    }
    assert!(got.iter().all(|q| *q > floor), "{got:?}");

    // The new log holds the progress: after another restart nothing is pending.
    drop(msgs);
    server.restart().await;
    let info = api(&server, "$JS.API.CONSUMER.INFO.DF.C").await;
    assert_eq!(info["ack_floor"]["stream_seq"], N, "{info}");
    assert_eq!(info["num_pending"], 0, "{info}");
}

#[tokio::test]
async fn damaged_consumer_state_after_a_clean_stop_redelivers_and_skips_nothing() {
    consumer_state_damage(false).await;
}

#[tokio::test]
async fn damaged_consumer_state_after_a_crash_redelivers_and_skips_nothing() {
    consumer_state_damage(true).await;
}

fn flip(path: &std::path::Path) {
    let mut data = std::fs::read(path).expect("read");
    data[20] ^= 0x01;
    std::fs::write(path, data).expect("write");
}

#[tokio::test]
async fn damaged_stream_config_never_loses_the_stream() {
    let mut server = TestServer::start().await;
    let js = server.jetstream().await;
    fill(&js).await;
    server.stop().await;
    let dir = stream_dir(&server);

    // One copy damaged: served from the other, repaired, said by name.
    flip(&dir.join("meta.cfg"));
    server.restart().await;
    let info = api(&server, "$JS.API.STREAM.INFO.DF").await;
    assert_eq!(info["state"]["messages"], N, "{info}");
    let logs = server.logs();
    assert!(
        logs.contains("DF/meta.cfg") && logs.contains("restored from its copy"),
        "{logs}"
    );
    server.stop().await;

    // Both damaged: not restored, both named, the data kept on disk...
    flip(&dir.join("meta.cfg"));
    flip(&dir.join("meta.bak"));
    server.restart().await;
    let info = api(&server, "$JS.API.STREAM.INFO.DF").await;
    assert_eq!(info["error"]["err_code"], 10059, "not restored: {info}");
    let logs = server.logs();
    assert!(
        logs.contains("DF/meta.cfg") && logs.contains("DF/meta.bak"),
        "{logs}"
    );
    // ... and creating it again adopts every stored message.
    let js = server.jetstream().await;
    let s = js
        .create_stream(stream_config())
        .await
        .expect("create again");
    assert_eq!(s.cached_info().state.messages, N);
    let ack = js
        .publish("df.a", "after".into())
        .await
        .expect("pub")
        .await
        .expect("ack");
    assert_eq!(ack.sequence, N + 1);
    server.restart().await;
    let info = api(&server, "$JS.API.STREAM.INFO.DF").await;
    assert_eq!(info["state"]["messages"], N + 1, "{info}");
}

#[tokio::test]
async fn a_block_of_a_newer_format_is_refused_by_name_and_untouched() {
    let mut server = TestServer::start().await;
    let js = server.jetstream().await;
    fill(&js).await;
    server.stop().await;
    let path = stream_dir(&server).join("msgs/0000000001.blk");
    let mut data = std::fs::read(&path).expect("block");
    data[8..12].copy_from_slice(&2u32.to_le_bytes());
    let crc = crc32fast::hash(&data[..32]);
    data[32..36].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&path, &data).expect("write");
    server.restart().await;
    let logs = server.logs();
    assert!(
        logs.contains("0000000001.blk") && logs.contains("format version 2"),
        "{logs}"
    );
    let info = api(&server, "$JS.API.STREAM.INFO.DF").await;
    assert_eq!(info["error"]["err_code"], 10059, "not served: {info}");
    // Creating it again is refused: the newer store is never overwritten.
    let js = server.jetstream().await;
    assert!(js.create_stream(stream_config()).await.is_err());
    server.stop().await;
    assert_eq!(std::fs::read(&path).expect("block"), data, "untouched");
}
