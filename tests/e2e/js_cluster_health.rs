//! `/healthz` of a JetStream cluster's server (issue 20), side by side with nats-server
//! 2.15.1: a server killed while its peers take messages for an R3 stream and an R3
//! consumer acks some, then restarted, answers 503 `{"status":"unavailable","error":…}`
//! with nats-server's messages while it finds the meta leader and its replicas catch
//! up, then 200 `{"status":"ok"}`; `?js-enabled-only` and `?js-server-only` answer 200
//! all along.

use std::time::{Duration, Instant};

use async_nats::jetstream;
use futures::StreamExt;
use rill_tests::ServerKind::{self, Nats, Rill};
use rill_tests::cluster::{Cluster, ELECTION, api, create_replicated};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The paths polled.
const PATHS: [&str; 3] = [
    "/healthz",
    "/healthz?js-enabled-only=true",
    "/healthz?js-server-only=true",
];

/// `GET <path>` on `port`: the status and the body as JSON (`None`: nothing listens yet).
async fn get(port: u16, path: &str) -> Option<(u16, Value)> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut raw))
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, serde_json::from_str(body).unwrap_or(Value::Null)))
}

/// Polls the three paths on `port` until `/healthz` answered 200 after at least one
/// 503 (or [`ELECTION`] passed): every distinct answer of each path, in order.
async fn watch(port: u16) -> Vec<(&'static str, u16, Value)> {
    let mut seen: Vec<(&'static str, u16, Value)> = Vec::new();
    let deadline = Instant::now() + ELECTION + ELECTION;
    let mut unavailable = false;
    while Instant::now() < deadline {
        for path in PATHS {
            let Some((status, body)) = get(port, path).await else {
                continue;
            };
            let last = seen.iter().rev().find(|(p, _, _)| *p == path);
            if last.is_none_or(|(_, s, b)| *s != status || *b != body) {
                seen.push((path, status, body));
            }
            if path == PATHS[0] {
                if status == 503 {
                    unavailable = true;
                } else if status == 200 && unavailable {
                    return seen;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "no 503 then 200 from /healthz within {:?}: {seen:?}",
        ELECTION + ELECTION
    );
}

/// Whether `error` is one of nats-server 2.15.1's messages for a restarting member of
/// this test's groups (stream `S`, consumer `D`).
fn known(error: &str) -> bool {
    const META: [&str; 3] = [
        "JetStream is still recovering meta layer",
        "JetStream has not established contact with a meta leader",
        "JetStream is not current with the meta leader",
    ];
    let group = ["stream '$G > S'", "consumer '$G > S > D'"]
        .iter()
        .any(|g| {
            [
                "group node unhealthy",
                "stream catching up",
                "consumer catching up",
            ]
            .iter()
            .any(|why| error == format!("JetStream {g} is not current: {why}"))
        });
    META.contains(&error) || group
}

/// The leader of the stream and of the consumer, as their INFO says.
async fn leaders(client: &async_nats::Client) -> Vec<String> {
    let mut names = Vec::new();
    for subject in ["$JS.API.STREAM.INFO.S", "$JS.API.CONSUMER.INFO.S.D"] {
        let deadline = Instant::now() + ELECTION;
        loop {
            let info = api(client, subject, "").await;
            if let Some(leader) = info["cluster"]["leader"].as_str() {
                names.push(leader.to_string());
                break;
            }
            assert!(Instant::now() < deadline, "{subject}: {info}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    names
}

/// What one kind showed, compared between the kinds: the shape of its 503 answers,
/// its last `/healthz` answer, and the statuses of the JetStream-only checks.
async fn restart_on(kind: ServerKind) -> Value {
    let mut cluster = Cluster::jetstream(kind, 3).await;
    let client = cluster.node(0).client().await;
    let body = r#"{"name":"S","subjects":["s.>"],"num_replicas":3}"#;
    create_replicated(&client, "S", body).await;
    let consumer = api(
        &client,
        "$JS.API.CONSUMER.DURABLE.CREATE.S.D",
        r#"{"stream_name":"S","config":{"durable_name":"D","ack_policy":"explicit"}}"#,
    )
    .await;
    assert!(consumer["error"].is_null(), "{consumer}");
    let leaders = leaders(&client).await;
    let victim = (1..3)
        .find(|i| !leaders.iter().any(|l| l == cluster.node(*i).name()))
        .or_else(|| (0..3).find(|i| !leaders.iter().any(|l| l == cluster.node(*i).name())))
        .expect("a server leading neither");
    // A client on a server that stays up.
    let client = cluster.node((victim + 1) % 3).client().await;
    // Every member current before the kill (a follower may still be applying).
    let port = cluster.node(victim).monitor_port();
    let deadline = Instant::now() + ELECTION;
    while get(port, PATHS[0]).await != Some((200, json!({"status": "ok"}))) {
        assert!(
            Instant::now() < deadline,
            "{kind:?}: never current before the kill"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cluster.nodes[victim].kill();

    let js = jetstream::new(client.clone());
    for i in 0..300 {
        let ack = js
            .publish(format!("s.{i}"), "m".into())
            .await
            .expect("publish");
        ack.await.expect("acked by the two left");
    }
    let d = js
        .get_consumer_from_stream::<jetstream::consumer::pull::Config, _, _>("D", "S")
        .await
        .expect("consumer");
    let mut batch = d.fetch().max_messages(20).messages().await.expect("fetch");
    while let Some(Ok(msg)) = batch.next().await {
        msg.double_ack().await.expect("ack answered");
    }

    let watcher = tokio::spawn(watch(port));
    cluster.nodes[victim].restart().await;
    let seen = watcher.await.expect("watcher");
    let node = cluster.node(victim).name().to_string();
    let healthz: Vec<&(&str, u16, Value)> =
        seen.iter().filter(|(p, _, _)| *p == PATHS[0]).collect();
    for (_, status, body) in &healthz {
        if *status == 503 {
            let error = body["error"].as_str().unwrap_or_default();
            assert!(known(error), "{kind:?} {node}: {body}");
        }
    }
    // nats-server answers 500 'failed to be ready for connections' for a few ms at start.
    let js_only: std::collections::BTreeSet<u16> = seen
        .iter()
        .filter(|(p, s, _)| *p != PATHS[0] && *s != 500)
        .map(|(_, s, _)| *s)
        .collect();
    let unavailable = healthz
        .iter()
        .find(|(_, s, _)| *s == 503)
        .map(|(_, _, b)| b.clone())
        .expect("a 503");
    let mut shape: Vec<&String> = unavailable.as_object().expect("object").keys().collect();
    shape.sort();
    json!({
        "unavailable_keys": shape,
        "unavailable_status": unavailable["status"],
        "last": healthz.last().map(|(_, s, b)| json!([s, b])),
        "js_only_statuses": js_only,
    })
}

#[tokio::test]
async fn a_restarted_server_reports_not_current_until_it_caught_up_as_nats_server() {
    let nats = restart_on(Nats).await;
    insta::assert_json_snapshot!("js_cluster_healthz_restart", nats);
    let rill = restart_on(Rill).await;
    assert_eq!(rill, nats);
}
