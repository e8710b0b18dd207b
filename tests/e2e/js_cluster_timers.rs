//! An R3 stream's timers act once for the whole group: messages expire by `max_age`
//! and by `Nats-TTL`, and subject delete markers are stored, at the same sequences on
//! every replica, through a leader change; three nats-server 2.15.1 first, then three
//! rill servers, with the same end state (issue 20).

use std::time::Duration;

use rill_tests::ServerKind::{self, Nats, Rill};
use rill_tests::cluster::{Cluster, api, create_replicated};
use serde_json::Value;

use crate::js_cluster::{info_until, stream_leader};
use crate::js_cluster_leader::{each_replica, new_leader, publish_with, stepdown};

/// The stream's state without times, as its leader reports it.
async fn state(client: async_nats::Client) -> Value {
    let info = api(&client, "$JS.API.STREAM.INFO.T", "").await;
    let mut state = info["state"].clone();
    for time in ["first_ts", "last_ts"] {
        state.as_object_mut().expect("state").remove(time);
    }
    state
}

/// Publishes `t.a` (no TTL), `t.b` (1 s) and `t.c` (2 s) to an R3 stream with a 3 s
/// `max_age` and 1 s delete markers, moves the leadership once `t.b` expired, and
/// returns each replica's state once everything (markers too) expired.
async fn timers_on(kind: ServerKind) -> Vec<Value> {
    let cluster = Cluster::jetstream(kind, 3).await;
    let client = cluster.node(0).client().await;
    let config = r#"{"name":"T","subjects":["t.>"],"num_replicas":3,"max_age":3000000000,
        "allow_msg_ttl":true,"subject_delete_marker_ttl":1000000000}"#;
    create_replicated(&client, "T", config).await;
    for (subject, ttl) in [("t.a", None), ("t.b", Some("1s")), ("t.c", Some("2s"))] {
        let seq = publish_with(&client, subject, ttl).await;
        assert!(seq.is_some(), "{kind:?}: {subject} acked");
    }
    let node = cluster.node(1);
    info_until(node, "T", |i| i["state"]["last_seq"].as_u64() >= Some(4)).await;
    let leader = stream_leader(&cluster, "T").await;
    let done = stepdown(node, "T", "", Duration::from_secs(5)).await;
    assert_eq!(
        done.as_ref().map(|d| &d["success"]),
        Some(&Value::Bool(true)),
        "{kind:?}: {done:?}"
    );
    new_leader(&cluster, "T", &leader).await;
    let wait = Duration::from_secs(30);
    let end = tokio::time::timeout(wait, async {
        loop {
            let s = state(node.client().await).await;
            if s["messages"] == 0 && s["last_seq"].as_u64() > Some(3) {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{kind:?}: the stream never emptied"));
    let views = each_replica(&cluster, "T", state).await;
    for (node, view) in cluster.nodes.iter().zip(&views) {
        assert_eq!(*view, end, "{kind:?}: {} differs", node.name());
    }
    views
}

#[tokio::test]
async fn r3_stream_expires_once_with_the_same_markers_everywhere_as_nats_server() {
    let nats = timers_on(Nats).await;
    let rill = timers_on(Rill).await;
    assert_eq!(rill[0], nats[0], "end state");
}
