//! The cluster in `/jsz` and in the `cluster` blocks of STREAM.INFO and CONSUMER.INFO
//! (issue 20), side by side with nats-server 2.15.1: `meta_cluster` with
//! `quorum_needed`, `pending*` and `snapshot`, `ha_assets`, and the blocks of replicated
//! groups with `system_account` and `traffic_account` (none for one replica), on the
//! leaders and on every member's `/jsz`, where a follower lists its leader as current with
//! the time since it heard it.

use std::time::{Duration, Instant};

use async_nats::jetstream;
use rill_tests::ServerKind::{self, Nats, Rill};
use rill_tests::cluster::{Cluster, ELECTION, api, create_replicated};
use serde_json::{Value, json};

/// The sorted keys of an object.
fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    k.sort();
    k
}

/// Each server's `/jsz?streams=1&consumers=1`, once every server counts `ha` groups
/// and knows the meta leader.
async fn jsz_all(cluster: &Cluster, ha: u64) -> Vec<Value> {
    let deadline = Instant::now() + ELECTION;
    loop {
        let mut docs = Vec::new();
        for node in &cluster.nodes {
            docs.push(node.monitor("/jsz?streams=1&consumers=1").await);
        }
        let settled = docs.iter().all(|d| {
            d["ha_assets"] == ha
                && d["meta_cluster"]["leader"].is_string()
                && d["meta_cluster"]["pending"] == 0
        });
        if settled {
            return docs;
        }
        assert!(Instant::now() < deadline, "never settled: {docs:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The `cluster` block of stream `name` in a `/jsz` document.
fn stream_block(doc: &Value, name: &str) -> Value {
    doc["account_details"][0]["stream_detail"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == name))
        .map_or(Value::Null, |s| s["cluster"].clone())
}

/// The `cluster` block of consumer `name` of stream `stream` in a `/jsz` document.
fn consumer_block(doc: &Value, stream: &str, name: &str) -> Value {
    doc["account_details"][0]["stream_detail"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == stream))
        .and_then(|s| s["consumer_detail"].as_array())
        .and_then(|c| c.iter().find(|c| c["name"] == name))
        .map_or(Value::Null, |c| c["cluster"].clone())
}

/// How a follower's block lists the other members: whether each is the leader,
/// `current`, and whether `active` is set (nats-server 2.15.1: the leader current and
/// heard from, the other follower neither).
fn as_a_follower_sees(block: &Value) -> Value {
    let leader = &block["leader"];
    let mut seen: Vec<Value> = block["replicas"]
        .as_array()
        .map(|r| {
            r.iter()
                .map(|p| {
                    json!({"leader": p["name"] == *leader, "current": p["current"],
                        "active": p["active"].as_u64().unwrap_or_default() > 0})
                })
                .collect()
        })
        .unwrap_or_default();
    seen.sort_by_key(Value::to_string);
    json!(seen)
}

/// The first document in which `block` is a follower's (no `leader_since`).
fn on_a_follower(docs: &[Value], block: impl Fn(&Value) -> Value) -> Value {
    docs.iter()
        .map(block)
        .find(|b| b["leader_since"].is_null() && b["replicas"].is_array())
        .map_or(Value::Null, |b| as_a_follower_sees(&b))
}

async fn on(kind: ServerKind) -> Value {
    let cluster = Cluster::jetstream(kind, 3).await;
    let client = cluster.node(0).client().await;
    create_replicated(
        &client,
        "S",
        r#"{"name":"S","subjects":["s.>"],"num_replicas":3}"#,
    )
    .await;
    create_replicated(
        &client,
        "R1",
        r#"{"name":"R1","subjects":["r1.>"],"num_replicas":1}"#,
    )
    .await;
    for (stream, name, replicas) in [("S", "D", 0), ("S", "C1", 1), ("R1", "E", 0)] {
        let body = json!({"stream_name": stream, "config": {
            "durable_name": name, "ack_policy": "explicit", "num_replicas": replicas}});
        let subject = format!("$JS.API.CONSUMER.DURABLE.CREATE.{stream}.{name}");
        let created = api(&client, &subject, &body.to_string()).await;
        assert!(created["error"].is_null(), "{kind:?} {name}: {created}");
    }
    let js = jetstream::new(client.clone());
    for subject in ["s.1", "s.2", "r1.1"] {
        js.publish(subject, "m".into())
            .await
            .expect("publish")
            .await
            .expect("ack");
    }
    let s = api(&client, "$JS.API.STREAM.INFO.S", "").await;
    let r1 = api(&client, "$JS.API.STREAM.INFO.R1", "").await;
    let mut consumer_blocks = json!({});
    for (stream, name) in [("S", "D"), ("S", "C1"), ("R1", "E")] {
        let c = api(
            &client,
            &format!("$JS.API.CONSUMER.INFO.{stream}.{name}"),
            "",
        )
        .await;
        consumer_blocks[name] = json!(keys(&c["cluster"]));
    }

    // Meta, S's group and D's group: three on every server.
    let docs = jsz_all(&cluster, 3).await;
    let leader = docs[0]["meta_cluster"]["leader"].clone();
    let on_leader = docs
        .iter()
        .find(|d| {
            d["meta_cluster"]["replicas"]
                .as_array()
                .is_some_and(|r| r.iter().all(|p| p["name"] != leader))
        })
        .expect("the meta leader's document");
    let meta = &on_leader["meta_cluster"];
    let follower = docs
        .iter()
        .find(|d| {
            d["meta_cluster"]["replicas"]
                .as_array()
                .is_some_and(|r| r.iter().any(|p| p["name"] == leader))
        })
        .expect("a follower's document");
    let mut stream_views: Vec<Vec<String>> =
        docs.iter().map(|d| keys(&stream_block(d, "S"))).collect();
    stream_views.sort();
    let peers: Vec<&Value> = docs.iter().map(|d| &d["meta_cluster"]["peer"]).collect();
    json!({
        "meta_keys": keys(meta),
        "meta_peer_is_the_leaders_everywhere": peers.iter().all(|p| *p == peers[0]),
        "meta": {
            "cluster_size": meta["cluster_size"],
            "quorum_needed": meta["quorum_needed"],
            "pending_requests": meta["pending_requests"],
            "pending_infos": meta["pending_infos"],
            "snapshot_keys": keys(&meta["snapshot"]),
            "replicas_on_leader": meta["replicas"].as_array().map(|r| r.iter()
                .map(|p| json!([keys(p), p["current"]])).collect::<Vec<_>>()),
            "replica_keys_on_a_follower": follower["meta_cluster"]["replicas"].as_array()
                .map(|r| r.iter().map(keys).collect::<Vec<_>>()),
        },
        "followers_see": {
            "meta": as_a_follower_sees(&follower["meta_cluster"]),
            "stream": on_a_follower(&docs, |d| stream_block(d, "S")),
            "consumer": on_a_follower(&docs, |d| consumer_block(d, "S", "D")),
        },
        "ha_assets": docs.iter().map(|d| d["ha_assets"].clone()).collect::<Vec<_>>(),
        "stream_info_cluster_keys": {"S": keys(&s["cluster"]), "R1": keys(&r1["cluster"])},
        "stream_info_traffic": [s["cluster"]["system_account"].clone(),
                                s["cluster"]["traffic_account"].clone()],
        "consumer_info_cluster_keys": consumer_blocks,
        "jsz_stream_block_keys_per_member": stream_views,
        "jsz_r1_block": keys(&stream_block(&docs.iter().find(|d| !stream_block(d, "R1").is_null())
            .cloned().unwrap_or_default(), "R1")),
    })
}

#[tokio::test]
async fn jsz_and_cluster_blocks_show_the_groups_as_nats_server() {
    let nats = on(Nats).await;
    insta::assert_json_snapshot!("js_cluster_jsz_groups", nats);
    let rill = on(Rill).await;
    assert_eq!(rill, nats);
}

/// Each server's `$JS.API.INFO` counts (streams, consumers, memory, storage), once all
/// three report the bytes every server's `/jsz` holds, summed (a server hears its peers'
/// shares after a while: nats-server 2.15.1 within about two seconds).
async fn account_info_everywhere(cluster: &Cluster) -> Vec<Value> {
    let deadline = Instant::now() + ELECTION;
    loop {
        let (mut memory, mut storage) = (0, 0);
        for node in &cluster.nodes {
            let jsz = node.monitor("/jsz").await;
            memory += jsz["memory"].as_u64().unwrap_or_default();
            storage += jsz["storage"].as_u64().unwrap_or_default();
        }
        let mut seen = Vec::new();
        for node in &cluster.nodes {
            let info = api(&node.client().await, "$JS.API.INFO", "").await;
            seen.push(
                json!({"streams": info["streams"], "consumers": info["consumers"],
                "memory": info["memory"], "storage": info["storage"]}),
            );
        }
        let summed = seen
            .iter()
            .all(|s| *s == seen[0] && s["memory"] == memory && s["storage"] == storage);
        if summed {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "never the sum of every server's bytes ({memory}, {storage}): {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// An R3 file stream, an R3 memory stream and an R1 file stream with messages, a
/// replicated durable and an R1 durable: every server's `$JS.API.INFO` reports the
/// account's totals over the cluster (every replica's bytes), not its own share.
async fn account_info_on(kind: ServerKind) -> Vec<Value> {
    let cluster = Cluster::jetstream(kind, 3).await;
    let client = cluster.node(0).client().await;
    for (name, storage, replicas) in [("S", "file", 3), ("M", "memory", 3), ("T", "file", 1)] {
        let subject = name.to_lowercase();
        let body = json!({"name": name, "subjects": [format!("{subject}.>")],
            "storage": storage, "num_replicas": replicas});
        create_replicated(&client, name, &body.to_string()).await;
    }
    let js = jetstream::new(client.clone());
    for subject in ["s.1", "s.2", "s.3", "m.1", "t.1"] {
        js.publish(subject, "hello".into())
            .await
            .expect("publish")
            .await
            .expect("ack");
    }
    for (stream, name) in [("S", "D"), ("T", "E")] {
        let body = json!({"stream_name": stream, "config": {
            "durable_name": name, "ack_policy": "explicit"}});
        let subject = format!("$JS.API.CONSUMER.DURABLE.CREATE.{stream}.{name}");
        let created = api(&client, &subject, &body.to_string()).await;
        assert!(created["error"].is_null(), "{kind:?} {name}: {created}");
    }
    account_info_everywhere(&cluster).await
}

#[tokio::test]
async fn account_info_counts_the_whole_cluster_as_nats_server() {
    let nats = account_info_on(Nats).await;
    assert_eq!(nats[0]["streams"], 3, "{nats:?}");
    let rill = account_info_on(Rill).await;
    assert_eq!(rill, nats);
}
