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
