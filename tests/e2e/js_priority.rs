//! Priority groups on pull consumers (ADR-42: `overflow`, `pinned_client`, `prioritized`,
//! `$JS.API.CONSUMER.UNPIN`, the pin advisories), driven by nats-py over the raw `$JS` API
//! (`tests/e2e/py/priority_groups.py`) against rill and nats-server 2.15.1: both must answer
//! every step alike (pin ids are named by order of appearance).

use rill_tests::{ServerKind, ServerOpts, TestServer};
use serde_json::Value;

use crate::js_nats_py::nats_py_available;

const SCRIPT: &str = include_str!("py/priority_groups.py");

async fn run(kind: ServerKind) -> Value {
    let server = TestServer::start_with(ServerOpts::kind(kind)).await;
    let run = tokio::process::Command::new("python3")
        .args(["-c", SCRIPT, &server.port().to_string()])
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(60), run)
        .await
        .expect("the scenario finished within 60 s")
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{kind:?}: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{kind:?}: {e}: {stdout}"))
}

#[tokio::test]
async fn priority_groups_behave_as_on_nats_server() {
    if !nats_py_available() {
        eprintln!("nats-py not installed; skipping");
        return;
    }
    let rill = run(ServerKind::Rill).await;
    let nats = run(ServerKind::Nats).await;
    for (r, n) in rill["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .zip(nats["steps"].as_array().expect("steps"))
    {
        assert_eq!(r, n, "rill and nats-server differ at {}", n[0]);
    }
    assert_eq!(rill, nats);
    insta::assert_json_snapshot!("priority_groups", rill);
}

/// Two pull requests sent together (one write) to a `prioritized` consumer with messages
/// waiting: the one with the lower priority number is served first, though it was sent
/// second, as on nats-server 2.15.1 (which queues every request of one read before the
/// consumer looks). Rounds of a priority-1 then a priority-0 request of 3 messages each.
async fn served_together(kind: ServerKind) -> Vec<(u64, Vec<String>)> {
    use futures::StreamExt;
    let server = TestServer::start_with(ServerOpts::kind(kind)).await;
    let client = server.client().await;
    let js = async_nats::jetstream::new(client.clone());
    js.create_stream(async_nats::jetstream::stream::Config {
        name: "P".into(),
        subjects: vec!["p.>".into()],
        ..Default::default()
    })
    .await
    .expect("stream");
    for i in 0..12 {
        js.publish(format!("p.{i}"), "x".into())
            .await
            .expect("publish")
            .await
            .expect("ack");
    }
    let cfg = serde_json::json!({"stream_name": "P", "config": {"durable_name": "C",
        "ack_policy": "none", "priority_policy": "prioritized", "priority_groups": ["G"]}});
    let created = client
        .request("$JS.API.CONSUMER.CREATE.P.C", cfg.to_string().into())
        .await
        .expect("consumer");
    let created: Value = serde_json::from_slice(&created.payload).expect("json");
    assert!(created.get("error").is_none(), "{kind:?}: {created}");
    let mut seen = Vec::new();
    for round in 0..2 {
        let mut inboxes = Vec::new();
        for priority in [1, 0] {
            let inbox = client.new_inbox();
            let sub = client.subscribe(inbox.clone()).await.expect("subscribe");
            inboxes.push((priority, inbox, sub));
        }
        client.flush().await.expect("flush");
        for (priority, inbox, _) in &inboxes {
            let body = serde_json::json!({"batch": 3, "expires": 2_000_000_000_u64,
                "group": "G", "priority": priority});
            client
                .publish_with_reply(
                    "$JS.API.CONSUMER.MSG.NEXT.P.C",
                    inbox.clone(),
                    body.to_string().into(),
                )
                .await
                .expect("pull");
        }
        client.flush().await.expect("flush");
        for (priority, _, mut sub) in inboxes {
            let mut got = Vec::new();
            while got.len() < 3 {
                let next = tokio::time::timeout(std::time::Duration::from_secs(5), sub.next());
                let msg = next.await.expect("a message in time").expect("message");
                got.push(msg.subject.to_string());
            }
            seen.push((priority, got));
        }
        assert_eq!(seen.len(), 2 * (round + 1));
    }
    seen
}

#[tokio::test]
async fn prioritized_requests_sent_together_are_served_by_priority_as_nats_server() {
    let rill = served_together(ServerKind::Rill).await;
    let nats = served_together(ServerKind::Nats).await;
    assert_eq!(rill, nats, "rill (left) and nats-server (right) differ");
    assert_eq!(nats[1], (0, vec!["p.0".into(), "p.1".into(), "p.2".into()]));
}
