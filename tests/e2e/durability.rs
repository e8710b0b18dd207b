//! Crash safety: every message the server acknowledged is present and intact after a
//! SIGKILL at an arbitrary point of a publish burst, then a restart. Also purge and
//! stream delete give their disk space back.

use std::path::Path;
use std::time::Duration;

use async_nats::jetstream::{self, stream};
use futures::StreamExt;
use futures::stream::FuturesOrdered;
use rill_tests::TestServer;

const ROUNDS: usize = 10;
const WINDOW: usize = 32;

fn payload(round: usize, i: usize) -> String {
    format!("r{round}-m{i}-{}", "x".repeat(i % 200))
}

/// Publishes until the server goes away; returns the acknowledged (seq, payload) pairs.
async fn publish_until_killed(url: String, round: usize) -> Vec<(u64, String)> {
    let Ok(client) = async_nats::connect(url).await else {
        return Vec::new();
    };
    let js = jetstream::ContextBuilder::new()
        .timeout(Duration::from_millis(500))
        .build(client);
    let mut inflight = FuturesOrdered::new();
    let mut acked = Vec::new();
    for i in 0.. {
        let body = payload(round, i);
        let Ok(ack) = js
            .publish(format!("crash.{round}"), body.clone().into())
            .await
        else {
            break;
        };
        inflight.push_back(async move { (ack.await, body) });
        if inflight.len() >= WINDOW {
            match inflight.next().await {
                Some((Ok(ack), body)) => acked.push((ack.sequence, body)),
                _ => break,
            }
        }
    }
    while let Some((r, body)) = inflight.next().await {
        if let Ok(ack) = r {
            acked.push((ack.sequence, body));
        }
    }
    acked
}

async fn verify(server: &TestServer, acked: &[(u64, String)]) {
    let js = server.jetstream().await;
    let s = js.get_stream("CRASH").await.expect("stream after crash");
    for (seq, body) in acked {
        let msg = s
            .get_raw_message(*seq)
            .await
            .unwrap_or_else(|e| panic!("acked seq {seq} missing after crash: {e}"));
        assert_eq!(
            std::str::from_utf8(&msg.payload).ok(),
            Some(body.as_str()),
            "seq {seq}"
        );
    }
}

#[tokio::test]
async fn acked_messages_survive_sigkill() {
    let mut server = TestServer::start().await;
    let js = server.jetstream().await;
    js.create_stream(stream::Config {
        name: "CRASH".into(),
        subjects: vec!["crash.>".into()],
        ..Default::default()
    })
    .await
    .expect("create");
    let mut total = 0;
    for round in 0..ROUNDS {
        let task = tokio::spawn(publish_until_killed(server.url(), round));
        // Kill at a different point of the burst each round.
        tokio::time::sleep(Duration::from_millis(30 + 37 * round as u64)).await;
        server.kill();
        let acked = task.await.expect("publisher task");
        server.restart().await;
        verify(&server, &acked).await;
        total += acked.len();
    }
    assert!(total > 0, "nothing was acknowledged");
    let info = server
        .jetstream()
        .await
        .get_stream("CRASH")
        .await
        .expect("stream")
        .info()
        .await
        .expect("info")
        .state
        .clone();
    assert!(info.messages >= total as u64, "{} < {total}", info.messages);
}

fn dir_size(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

#[tokio::test]
async fn purge_and_delete_reclaim_disk() {
    let server = TestServer::start().await;
    let js = server.jetstream().await;
    let mut s = js
        .create_stream(stream::Config {
            name: "BIG".into(),
            subjects: vec!["big".into()],
            ..Default::default()
        })
        .await
        .expect("create");
    let body = bytes::Bytes::from(vec![7u8; 64 * 1024]);
    for _ in 0..64 {
        js.publish("big", body.clone())
            .await
            .expect("pub")
            .await
            .expect("ack");
    }
    let dir = server.store_dir().join("store").join("jetstream");
    let full = dir_size(&dir);
    assert!(full > 4 * 1024 * 1024, "{full}");
    s.purge().await.expect("purge");
    let purged = dir_size(&dir);
    assert!(purged < 1024 * 1024, "after purge: {purged}");
    js.publish("big", body.clone())
        .await
        .expect("pub")
        .await
        .expect("ack");
    assert_eq!(s.info().await.expect("info").state.messages, 1);
    js.delete_stream("BIG").await.expect("delete");
    assert!(!dir.join("$G/streams/BIG").exists());
}
