//! Scaling a stream and replacing its peers (issue 20): `STREAM.UPDATE` takes a stream
//! from one replica to three and back (five with three servers is refused), and
//! `STREAM.PEER.REMOVE` moves a replica to a spare server (none with three servers and
//! R3: refused), the messages staying on every replica and the `cluster` block showing
//! `current`, `active` and `lag` per replica. Three (then four) nats-server 2.15.1
//! first, then the same number of rill servers, with the same answers.

use std::collections::BTreeSet;
use std::time::Instant;

use rill_tests::ServerKind::{self, Nats, Rill};
use rill_tests::cluster::{Cluster, ELECTION, Node, api, api_once, create_replicated};
use serde_json::{Value, json};

use crate::js_cluster::stream_leader;
use crate::js_cluster_leader::{each_member, each_replica, publish};

fn config(replicas: u32) -> String {
    json!({"name": "S", "subjects": ["s.>"], "num_replicas": replicas}).to_string()
}

/// The stream's state as its leader reports it.
async fn state(client: async_nats::Client) -> Value {
    let info = api(&client, "$JS.API.STREAM.INFO.S", "").await;
    let mut state = info["state"].clone();
    // Times, and bytes (the test's message ids differ in length between runs).
    for field in ["first_ts", "last_ts", "bytes"] {
        state.as_object_mut().expect("state").remove(field);
    }
    state
}

/// Waits until the stream's leader reports `n` other replicas, every one current and
/// heard from (`active` set), none of them `not`; the `cluster` block.
async fn settled(node: &Node, n: usize, not: Option<&str>) -> Value {
    let client = node.client().await;
    let deadline = Instant::now() + ELECTION;
    loop {
        let info = api(&client, "$JS.API.STREAM.INFO.S", "").await;
        let cluster = info["cluster"].clone();
        let replicas = cluster["replicas"].as_array().cloned().unwrap_or_default();
        let done = replicas.len() == n
            && replicas.iter().all(|r| {
                r["current"] == true && r["active"].as_u64() > Some(0) && r["name"].as_str() != not
            })
            && cluster["leader"].as_str().is_some_and(|l| Some(l) != not);
        if done {
            return cluster;
        }
        assert!(
            Instant::now() < deadline,
            "{}: never {n} current replicas: {info}",
            node.name()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The keys each replica entry carries, and that their names are the other members.
fn replica_keys(cluster: &Value) -> BTreeSet<String> {
    let replicas = cluster["replicas"].as_array().cloned().unwrap_or_default();
    replicas
        .iter()
        .flat_map(|r| r.as_object().expect("replica").keys().cloned())
        .collect()
}

/// What one kind of cluster answered, compared between the kinds.
#[derive(Debug, PartialEq)]
struct Scaled {
    up: (Value, Value),
    keys: BTreeSet<String>,
    states: Vec<Value>,
    r5: Value,
    refusals: Vec<Value>,
    down: (Value, Value),
    after: Value,
}

/// R1 → R3 (with messages), R5 refused, PEER.REMOVE's refusals, then R3 → R1.
async fn scaling_on(kind: ServerKind) -> Scaled {
    let cluster = Cluster::jetstream(kind, 3).await;
    let client = cluster.node(0).client().await;
    create_replicated(&client, "S", &config(1)).await;
    for i in 1..=5u64 {
        assert_eq!(
            publish(&client, &format!("s.{i}")).await,
            Some(i),
            "{kind:?}"
        );
    }
    let up = api(&client, "$JS.API.STREAM.UPDATE.S", &config(3)).await;
    let up = (up["error"].clone(), up["config"]["num_replicas"].clone());
    let leader = stream_leader(&cluster, "S").await;
    let at = cluster.nodes.iter().find(|n| n.name() == leader).unwrap();
    let block = settled(at, 2, None).await;
    let keys = replica_keys(&block);
    let states = each_replica(&cluster, "S", state).await;

    let r5 = api(&client, "$JS.API.STREAM.UPDATE.S", &config(5)).await["error"].clone();
    let follower = block["replicas"][0]["name"].as_str().unwrap().to_string();
    let member = json!({ "peer": follower }).to_string();
    let mut refusals = Vec::new();
    for (stream, body) in [
        ("S", ""),
        ("S", "{}"),
        ("S", r#"{"peer":"nX"}"#),
        ("NOPE", r#"{"peer":"n1"}"#),
        ("S", member.as_str()),
    ] {
        let subject = format!("$JS.API.STREAM.PEER.REMOVE.{stream}");
        // 503 (peer remap failed) is an answer here, not a leader being elected.
        let answer = api_once(&client, &subject, body).await;
        refusals.push(json!([answer["type"], answer["error"], answer["success"]]));
    }
    let bad = api_once(&client, "$JS.API.STREAM.PEER.REMOVE.S", "{x").await;
    refusals.push(bad["error"]["err_code"].clone());

    for i in 6..=8u64 {
        assert_eq!(
            publish(&client, &format!("s.{i}")).await,
            Some(i),
            "{kind:?}"
        );
    }
    let down = api(&client, "$JS.API.STREAM.UPDATE.S", &config(1)).await;
    let down = (
        down["error"].clone(),
        down["config"]["num_replicas"].clone(),
    );
    let deadline = Instant::now() + ELECTION;
    let after = loop {
        let info = api(&client, "$JS.API.STREAM.INFO.S", "").await;
        if info["cluster"]["replicas"].is_null() && info["state"]["messages"] == 8 {
            break state(client.clone()).await;
        }
        assert!(Instant::now() < deadline, "{kind:?}: never R1: {info}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    Scaled {
        up,
        keys,
        states,
        r5,
        refusals,
        down,
        after,
    }
}

#[tokio::test]
async fn a_stream_scales_from_one_replica_to_three_and_back_as_nats_server() {
    let nats = scaling_on(Nats).await;
    let rill = scaling_on(Rill).await;
    assert_eq!(rill, nats);
    assert_eq!(nats.up.1, 3);
    assert!(nats.states.iter().all(|s| s["messages"] == 5), "{nats:?}");
    assert_eq!(nats.after["messages"], 8);
}

/// What one kind of four-server cluster did when the R3 stream's leader was removed.
#[derive(Debug, PartialEq)]
struct Moved {
    answer: Value,
    replaced: bool,
    states: Vec<Value>,
    acked: Option<u64>,
}

/// An R3 stream on four servers: PEER.REMOVE of its leader succeeds, the spare server
/// takes the replica, every member ends with the messages, publishes go on.
async fn replace_on(kind: ServerKind) -> Moved {
    let cluster = Cluster::jetstream(kind, 4).await;
    let client = cluster.node(0).client().await;
    create_replicated(&client, "S", &config(3)).await;
    for i in 1..=5u64 {
        assert_eq!(
            publish(&client, &format!("s.{i}")).await,
            Some(i),
            "{kind:?}"
        );
    }
    let leader = stream_leader(&cluster, "S").await;
    let at = cluster.nodes.iter().find(|n| n.name() != leader).unwrap();
    let before = settled(at, 2, None).await;
    let mut old: BTreeSet<String> = replica_names(&before);
    old.insert(leader.clone());
    let body = json!({ "peer": leader }).to_string();
    let answer = api_once(&client, "$JS.API.STREAM.PEER.REMOVE.S", &body).await;
    let after = settled(at, 2, Some(&leader)).await;
    let mut now = replica_names(&after);
    now.insert(after["leader"].as_str().unwrap().to_string());
    let spare = cluster
        .nodes
        .iter()
        .map(|n| n.name().to_string())
        .find(|n| !old.contains(n))
        .unwrap();
    let replaced = now.len() == 3 && now.contains(&spare) && !now.contains(&leader);
    let members: Vec<String> = now.into_iter().collect();
    let states = each_member(&cluster, "S", &members, state).await;
    let acked = publish(&client, "s.6").await;
    Moved {
        answer,
        replaced,
        states,
        acked,
    }
}

fn replica_names(cluster: &Value) -> BTreeSet<String> {
    let replicas = cluster["replicas"].as_array().cloned().unwrap_or_default();
    replicas
        .iter()
        .filter_map(|r| r["name"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn a_removed_peer_is_replaced_by_a_spare_server_as_nats_server() {
    let nats = replace_on(Nats).await;
    let rill = replace_on(Rill).await;
    assert_eq!(rill, nats);
    assert!(nats.replaced, "{nats:?}");
    assert_eq!(nats.acked, Some(6));
}
