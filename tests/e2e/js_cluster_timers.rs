//! An R3 stream's timers act once for the whole group: messages expire by `max_age`
//! and by `Nats-TTL`, and subject delete markers are stored, at the same sequences on
//! every replica, through a leader change; message schedules fire once per due time
//! for the whole group (not once per replica) and go on under a new leader (issue
//! 22). Three nats-server 2.15.1 first, then three rill servers, with the same end
//! state (issue 20).

use std::time::Duration;

use rill_tests::ServerKind::{self, Nats, Rill};
use rill_tests::cluster::{Cluster, api, create_replicated};
use serde_json::{Value, json};

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

/// Publishes a schedule through `client`; panics unless it is acked.
async fn schedule(
    client: &async_nats::Client,
    subject: &str,
    spec: &str,
    target: &str,
    body: &str,
) {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Schedule", spec);
    headers.insert("Nats-Schedule-Target", target);
    let ack = client
        .request_with_headers(subject.to_owned(), headers, body.to_owned().into())
        .await
        .expect("publish");
    let ack: Value = serde_json::from_slice(&ack.payload).expect("ack");
    assert!(ack["error"].is_null(), "{subject}: {ack}");
}

/// `@at` `secs` seconds from now, to the second.
fn at_in(secs: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let at = i128::from(now + secs) * 1_000_000_000;
    let at = rill_protocol::jsapi::Timestamp::from_unix_nanos(at).expect("time");
    format!("@at {at}")
}

/// Messages per subject of stream S, as the server `client` reaches reports them.
async fn per_subject(client: &async_nats::Client) -> Value {
    let info = api(
        client,
        "$JS.API.STREAM.INFO.S",
        r#"{"subjects_filter":">"}"#,
    )
    .await;
    info["state"]["subjects"].clone()
}

/// Waits (bounded) until the counts per subject satisfy `done`.
async fn counts_until(client: &async_nats::Client, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let counts = per_subject(client).await;
        if done(&counts) {
            return counts;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never reached: {counts}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every message of stream S as `[subject, body]`, and the times (seconds since the
/// epoch) of those on `target.e`, as the server `client` reaches reports them.
async fn messages(client: async_nats::Client) -> (Vec<Value>, Vec<f64>) {
    let info = api(&client, "$JS.API.STREAM.INFO.S", "").await;
    let last = info["state"]["last_seq"].as_u64().unwrap_or_default();
    let (mut msgs, mut every) = (Vec::new(), Vec::new());
    for seq in 1..=last {
        let got = api(
            &client,
            "$JS.API.STREAM.MSG.GET.S",
            &format!(r#"{{"seq":{seq}}}"#),
        )
        .await;
        let m = &got["message"];
        if m.is_null() {
            continue;
        }
        if m["subject"] == "target.e" {
            let time = m["time"].as_str().unwrap_or_default();
            let ns = rill_protocol::jsapi::Timestamp::parse(time)
                .expect("time")
                .unix_nanos();
            every.push(ns as f64 / 1e9);
        }
        msgs.push(json!([m["subject"], m["data"]]));
    }
    (msgs, every)
}

/// On an R3 stream: an `@every 1s` schedule and two `@at` ones, one due before and one
/// after the leadership moves. Each due time fires once for the group: the `@at`
/// firings are stored once each and their schedules removed, the `@every` firings are
/// at least half a second apart (a firing per replica would store two or three at
/// once), and it goes on firing under the new leader; then, with the `@every` schedule
/// purged, every replica holds the same messages.
async fn schedules_on(kind: ServerKind) -> Value {
    let cluster = Cluster::jetstream(kind, 3).await;
    let client = cluster.node(0).client().await;
    let config = r#"{"name":"S","subjects":["sched.>","target.>"],"num_replicas":3,
        "allow_msg_schedules":true}"#;
    create_replicated(&client, "S", config).await;
    schedule(&client, "sched.e", "@every 1s", "target.e", "E").await;
    schedule(&client, "sched.a1", &at_in(2), "target.a", "A1").await;
    schedule(&client, "sched.a2", &at_in(7), "target.a", "A2").await;
    counts_until(&client, |c| {
        c["target.a"] == 1 && c["target.e"].as_u64() >= Some(2)
    })
    .await;
    let leader = stream_leader(&cluster, "S").await;
    let node = cluster.node(1);
    let done = stepdown(node, "S", "", Duration::from_secs(5)).await;
    assert_eq!(
        done.as_ref().map(|d| &d["success"]),
        Some(&Value::Bool(true)),
        "{kind:?}: {done:?}"
    );
    new_leader(&cluster, "S", &leader).await;
    let moved = per_subject(&client).await["target.e"]
        .as_u64()
        .unwrap_or_default();
    let end = counts_until(&client, |c| {
        c["target.a"] == 2 && c["target.e"].as_u64() >= Some(moved + 2)
    })
    .await;
    assert!(
        end.get("sched.a1").is_none() && end.get("sched.a2").is_none(),
        "{kind:?}: {end}"
    );
    let purged = api(&client, "$JS.API.STREAM.PURGE.S", r#"{"filter":"sched.e"}"#).await;
    assert_eq!(purged["success"], true, "{kind:?}: {purged}");
    let views = each_replica(&cluster, "S", messages).await;
    for (node, view) in cluster.nodes.iter().zip(&views) {
        assert_eq!(view.0, views[0].0, "{kind:?}: {} differs", node.name());
    }
    let (msgs, every) = &views[0];
    let gaps_ok = every.windows(2).all(|w| w[1] - w[0] >= 0.5);
    assert!(
        gaps_ok,
        "{kind:?}: @every firings closer than 0.5 s: {every:?}"
    );
    let at_bodies: Vec<&Value> = msgs
        .iter()
        .filter(|m| m[0] == "target.a")
        .map(|m| &m[1])
        .collect();
    json!({ "at_firings": at_bodies, "every_fired": every.len() >= 4, "left": msgs.iter().filter(|m| m[0] != "target.e").count() })
}

#[tokio::test]
async fn r3_schedules_fire_once_for_the_group_through_a_leader_change_as_nats_server() {
    let nats = schedules_on(Nats).await;
    let rill = schedules_on(Rill).await;
    assert_eq!(rill, nats);
}
