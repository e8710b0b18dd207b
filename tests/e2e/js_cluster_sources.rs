//! Sources of a replicated origin in a JetStream cluster: the origin's identity
//! (`Nats-Stream-Identity`, which the origin puts on its answer to a sourcing
//! consumer's create) reaches the copying stream wherever the create arrives, so the
//! copies carry it in `Nats-Stream-Source` and a source follows its origin when that is
//! deleted and made again. Three nats-server 2.15.1 servers first, then three rill
//! servers, with the same checks (issue 21).

use std::time::Duration;

use rill_tests::ServerKind::{self, Nats, Rill};
use rill_tests::check_for;
use rill_tests::cluster::{Cluster, api, create_replicated};
use serde_json::{Value, json};

use crate::js_cluster::stream_leader;
use crate::js_cluster_leader::publish;
use crate::js_sources::stored;

/// nats-server finds a made-again origin on its source retry timer (12 s on a quiet
/// machine, more under load; rill: 5 s).
const FOLLOW: Duration = Duration::from_secs(45);

/// What one kind of cluster showed.
#[derive(Debug, PartialEq)]
struct Seen {
    /// Every member answered the sourcing consumer create with one identity.
    one_identity: bool,
    /// The source's copies: (subject, payload, header without the identity), and
    /// whether each copy's identity is the one its origin answered with.
    copies: Vec<(String, String, String, bool)>,
}

/// A consumer create as a source sends it, made on `client`; the answer's
/// `Nats-Stream-Identity` header.
async fn sourcing_create(client: &async_nats::Client, n: usize) -> Option<String> {
    let cfg = json!({
        "name": format!("JS_SRC_probe{n}"),
        "deliver_subject": format!("$JS.S.probe{n}"),
        "deliver_policy": "all",
        "ack_policy": "none",
        "max_deliver": 1,
        "idle_heartbeat": 1_000_000_000_u64,
        "flow_control": true,
        "inactive_threshold": 10_000_000_000_u64,
        "mem_storage": true,
        "direct": true,
        "sourcing": true,
    });
    let body = json!({"stream_name": "O", "config": cfg}).to_string();
    let msg = client
        .request("$JS.API.CONSUMER.CREATE.O", body.into())
        .await
        .expect("consumer create answered");
    let answer: Value = serde_json::from_slice(&msg.payload).expect("JSON");
    assert!(answer["error"].is_null(), "{answer}");
    let headers = msg.headers?;
    headers.get("Nats-Stream-Identity").map(|v| v.to_string())
}

/// The identity the origin answers with, asked on every member; `None` unless all
/// answered with the same one.
async fn identity_from_every_member(cluster: &Cluster) -> Option<String> {
    let mut ids = Vec::new();
    for (n, node) in cluster.nodes.iter().enumerate() {
        ids.push(sourcing_create(&node.client().await, n).await);
    }
    let first = ids[0].clone().filter(|id| id.len() == 8);
    first.filter(|id| ids.iter().all(|other| other.as_deref() == Some(id)))
}

async fn source_of_r3_on(kind: ServerKind) -> Seen {
    let cluster = Cluster::jetstream(kind, 3).await;
    let origin = r#"{"name":"O","subjects":["o.>"],"num_replicas":3}"#;
    let first = cluster.node(0).client().await;
    create_replicated(&first, "O", origin).await;
    for i in 0..3 {
        assert!(publish(&first, &format!("o.old{i}")).await.is_some());
    }
    let old = identity_from_every_member(&cluster).await;
    // The source lives on a member that does not lead the origin, so its consumer
    // create travels to the leader.
    let leader = stream_leader(&cluster, "O").await;
    let other = cluster
        .nodes
        .iter()
        .find(|n| n.name() != leader)
        .expect("a follower");
    let client = other.client().await;
    let source = json!({"name": "S", "num_replicas": 1, "sources": [{"name": "O"}]});
    let created = api(&client, "$JS.API.STREAM.CREATE.S", &source.to_string()).await;
    assert!(created["error"].is_null(), "{kind:?}: {created}");
    wait_msgs(&client, 3, FOLLOW).await;

    api(&first, "$JS.API.STREAM.DELETE.O", "").await;
    create_replicated(&first, "O", origin).await;
    for i in 0..2 {
        assert!(publish(&first, &format!("o.new{i}")).await.is_some());
    }
    let new = identity_from_every_member(&cluster).await;
    wait_msgs(&client, 5, FOLLOW).await;
    let copies = stored(&client, "S").await;
    let copies = copies
        .into_iter()
        .enumerate()
        .map(|(i, (_, subject, data, header))| {
            let fields: Vec<&str> = header.split(' ').collect();
            let want = if i < 3 { &old } else { &new };
            let same = want.as_deref().is_some_and(|w| fields.get(5) == Some(&w));
            (subject, data, fields[..5.min(fields.len())].join(" "), same)
        })
        .collect();
    Seen {
        one_identity: old.is_some() && new.is_some() && old != new,
        copies,
    }
}

/// Waits until `S` holds `n` messages.
async fn wait_msgs(client: &async_nats::Client, n: u64, wait: Duration) {
    check_for(wait, || async {
        api(client, "$JS.API.STREAM.INFO.S", "").await["state"]["messages"] == json!(n)
    })
    .await;
}

#[tokio::test]
async fn a_source_of_an_r3_origin_carries_its_identity_and_follows_it_made_again() {
    let nats = source_of_r3_on(Nats).await;
    let rill = source_of_r3_on(Rill).await;
    assert!(nats.one_identity, "{nats:?}");
    assert!(nats.copies.iter().all(|c| c.3), "{nats:?}");
    assert_eq!(rill, nats, "rill (left) and nats-server (right) differ");
}

/// A stream's name and the sorted (name, cluster) pairs of its `alternates`.
type StreamAlternates = (String, Vec<(String, String)>);

/// What a client sees of mirrors in a cluster, asked on every member: the names and
/// list of the account's streams (wherever they live) and the `alternates` of each
/// stream's info (the stream and its mirrors; order aside: nats-server's order among
/// streams of one cluster varies).
#[derive(Debug, PartialEq)]
struct Alternates {
    /// `STREAM.NAMES` with the subject filter `A`, then without.
    names: Vec<(Value, Value)>,
    /// `STREAM.LIST`: (name, leader named, alternates absent) per stream.
    list: Vec<Vec<(String, bool, bool)>>,
    /// `STREAM.INFO` of each stream: sorted (name, cluster) pairs of its alternates.
    alternates: Vec<Vec<StreamAlternates>>,
}

async fn alternates_on(kind: ServerKind) -> Alternates {
    let cluster = Cluster::jetstream(kind, 3).await;
    let first = cluster.node(0).client().await;
    let second = cluster.node(1).client().await;
    create_replicated(&first, "src", r#"{"name":"src","subjects":["A","B"]}"#).await;
    create_replicated(
        &second,
        "mirror",
        r#"{"name":"mirror","mirror":{"name":"src"}}"#,
    )
    .await;
    create_replicated(&first, "lone", r#"{"name":"lone","subjects":["L"]}"#).await;
    let mut seen = Alternates {
        names: Vec::new(),
        list: Vec::new(),
        alternates: Vec::new(),
    };
    for node in &cluster.nodes {
        let client = node.client().await;
        let names = |filter: &'static str| {
            let client = client.clone();
            async move {
                let body = json!({ "subject": filter }).to_string();
                api(&client, "$JS.API.STREAM.NAMES", &body).await["streams"].clone()
            }
        };
        seen.names.push((names("A").await, names("").await));
        let list = api(&client, "$JS.API.STREAM.LIST", "").await;
        let list = list["streams"].as_array().cloned().unwrap_or_default();
        seen.list.push(
            list.iter()
                .map(|s| {
                    let name = s["config"]["name"].as_str().unwrap_or_default().to_string();
                    (
                        name,
                        s["cluster"]["leader"].is_string(),
                        s["alternates"].is_null(),
                    )
                })
                .collect(),
        );
        let mut infos = Vec::new();
        for stream in ["lone", "mirror", "src"] {
            let info = api(&client, &format!("$JS.API.STREAM.INFO.{stream}"), "").await;
            let alts = info["alternates"].as_array().cloned().unwrap_or_default();
            let mut alts: Vec<(String, String)> = alts
                .iter()
                .map(|a| (a["name"].to_string(), a["cluster"].to_string()))
                .collect();
            alts.sort();
            infos.push((stream.to_string(), alts));
        }
        seen.alternates.push(infos);
    }
    seen
}

/// nats.js `jetstream - mirror alternates` and `streams - mirrors` (issue 21): a stream
/// found by subject on any member, and the mirror among its alternates.
#[tokio::test]
async fn mirrors_are_alternates_and_every_member_lists_every_stream_as_nats_server() {
    let nats = alternates_on(Nats).await;
    let rill = alternates_on(Rill).await;
    let src = nats.alternates[0].iter().find(|(s, _)| s == "src");
    assert_eq!(src.map(|(_, a)| a.len()), Some(2), "{nats:?}");
    assert_eq!(nats.names[1].0, json!(["src"]), "{nats:?}");
    assert_eq!(rill, nats, "rill (left) and nats-server (right) differ");
}
