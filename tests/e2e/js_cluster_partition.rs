//! A network partition of an R3 stream's group (issue 20), made with the fault-injecting
//! proxy: the seed server n1 (which dials no routes) leads the stream, and every route
//! to it goes through the proxy; cutting and refusing there isolates n1. The minority
//! side (n1, the old leader) acks no publish; the majority (n2, n3) elects a leader and
//! takes publishes; after healing, every replica holds the same messages and every
//! acknowledged one exactly once. Three nats-server 2.15.1, then three rill servers (one
//! test each, to stay under a minute), with the same checks.

use std::time::{Duration, Instant};

use rill_tests::ServerKind::{self, Nats, Rill};
use rill_tests::cluster::{Cluster, ELECTION, Node, NodeSpec, api, create_replicated};
use rill_tests::proxy::FaultProxy;
use serde_json::{Value, json};

use crate::js_cluster::{info_until, stream_leader};
use crate::js_cluster_leader::{each_replica, publish, stepdown};

/// What a publish on the minority side got.
#[derive(Debug, PartialEq)]
enum Minority {
    NoResponders,
    TimedOut,
    Other(String),
}

async fn publish_minority(client: &async_nats::Client) -> Minority {
    use async_nats::RequestErrorKind as K;
    let req = client.request("p.minority", "m".into());
    match tokio::time::timeout(Duration::from_secs(2), req).await {
        Ok(Ok(msg)) => Minority::Other(String::from_utf8_lossy(&msg.payload).into_owned()),
        Ok(Err(e)) if e.kind() == K::NoResponders => Minority::NoResponders,
        Ok(Err(e)) => Minority::Other(e.to_string()),
        Err(_) => Minority::TimedOut,
    }
}

/// Three servers whose routes to n1 all pass through `proxy` (n2 and n3 seed to it,
/// and n1 dials no one), with an R3 stream `P` led by n1.
async fn partitionable(kind: ServerKind) -> (Cluster, FaultProxy) {
    let n1 = Node::start(NodeSpec {
        jetstream: true,
        routes: vec!["nats://127.0.0.1:1".to_string()],
        ..NodeSpec::new(kind, "n1")
    })
    .await;
    let target = format!("127.0.0.1:{}", n1.cluster_port())
        .parse()
        .expect("addr");
    let proxy = FaultProxy::start(target).await;
    let mut nodes = vec![n1];
    for name in ["n2", "n3"] {
        let spec = NodeSpec {
            jetstream: true,
            ..NodeSpec::new(kind, name).routes([proxy.url("nats")])
        };
        nodes.push(Node::start(spec).await);
    }
    let cluster = Cluster { nodes };
    cluster.wait_mesh().await;
    let client = cluster.node(0).client().await;
    let body = json!({"name": "P", "subjects": ["p.>"], "num_replicas": 3}).to_string();
    create_replicated(&client, "P", &body).await;
    let deadline = Instant::now() + ELECTION;
    while stream_leader(&cluster, "P").await != "n1" {
        let prefer = r#"{"placement":{"preferred":"n1"}}"#;
        let _ = stepdown(cluster.node(0), "P", prefer, Duration::from_secs(2)).await;
        assert!(Instant::now() < deadline, "{kind:?}: n1 never led P");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    (cluster, proxy)
}

/// Every message of the stream, as (seq, subject, payload).
async fn messages(client: async_nats::Client) -> Vec<Value> {
    let info = api(&client, "$JS.API.STREAM.INFO.P", "").await;
    let last = info["state"]["last_seq"].as_u64().unwrap_or_default();
    let mut out = Vec::new();
    for seq in 1..=last {
        let body = json!({ "seq": seq }).to_string();
        let got = api(&client, "$JS.API.STREAM.MSG.GET.P", &body).await;
        let m = &got["message"];
        if !m.is_null() {
            out.push(json!([m["seq"], m["subject"], m["data"]]));
        }
    }
    out
}

/// [`messages`] once the leader that answers holds `want` of them (at most
/// [`ELECTION`]): a replica made leader right after the healing may still be applying
/// the entries it missed (nats-server 2.15.1's n1 answered with its 3 messages of
/// before the partition once in 7 runs, and with all 8 a moment later).
async fn messages_once_caught_up(client: async_nats::Client, want: usize) -> Vec<Value> {
    let deadline = Instant::now() + ELECTION;
    loop {
        let got = messages(client.clone()).await;
        if got.len() >= want || Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn partition_on(kind: ServerKind) {
    let started = Instant::now();
    let (cluster, proxy) = partitionable(kind).await;
    let (minority, majority) = (
        cluster.node(0).client().await,
        cluster.node(1).client().await,
    );
    let mut acked = Vec::new();
    for i in 1..=3 {
        acked.push((
            publish(&minority, &format!("p.before{i}")).await,
            format!("p.before{i}"),
        ));
    }

    // The partition: every route to n1 closed, new ones refused.
    proxy.set_refuse(true);
    proxy.cut();
    // The majority elects a leader of its own and takes publishes.
    for i in 1..=3 {
        let subject = format!("p.during{i}");
        acked.push((publish(&majority, &subject).await, subject));
    }
    // The minority acks nothing: its publishes time out or find no responder.
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(publish_minority(&minority).await);
    }
    let acks = |s: &Minority| matches!(s, Minority::Other(p) if p.contains("\"seq\""));
    assert!(
        !seen.iter().any(acks),
        "{kind:?}: the minority acked: {seen:?}"
    );
    eprintln!("{kind:?}: minority publishes: {seen:?}");

    proxy.heal();
    cluster.wait_mesh().await;
    for i in 1..=2 {
        let subject = format!("p.after{i}");
        acked.push((publish(&minority, &subject).await, subject));
    }
    // The old leader reports its own view until it hears the new term: wait until
    // every server answers with every acknowledged message and, as the leader sees
    // them, every follower is current (nats-server 2.15.1 does
    // not hand the leadership to a follower still catching up: n1 never led within 20 s
    // once in 7 runs when asked at once).
    let caught_up = |i: &Value| {
        let followers = i["cluster"]["replicas"].as_array().map(Vec::as_slice);
        i["state"]["messages"] == acked.len()
            && followers.is_some_and(|r| r.len() == 2 && r.iter().all(|r| r["current"] == true))
    };
    for node in &cluster.nodes {
        info_until(node, "P", caught_up).await;
    }
    let want = acked.len();
    let views = each_replica(&cluster, "P", |c| messages_once_caught_up(c, want)).await;
    for (node, view) in cluster.nodes.iter().zip(&views) {
        assert_eq!(view, &views[0], "{kind:?}: {} differs", node.name());
    }
    for (seq, subject) in &acked {
        let seq = seq.unwrap_or_else(|| panic!("{kind:?}: {subject} not acked"));
        let found: Vec<&Value> = views[0]
            .iter()
            .filter(|m| m[1] == subject.as_str())
            .collect();
        assert_eq!(found.len(), 1, "{kind:?}: {subject} stored once: {found:?}");
        assert_eq!(
            found[0][0], seq,
            "{kind:?}: {subject} at its acked sequence"
        );
    }
    assert!(
        views[0].iter().all(|m| m[1] != "p.minority"),
        "{kind:?}: {views:?}"
    );
    let took = started.elapsed();
    eprintln!("{kind:?}: partition test took {took:?}");
    assert!(took < Duration::from_secs(60), "{kind:?}: {took:?}");
}

#[tokio::test]
async fn a_partitioned_minority_acks_nothing_and_replicas_converge_on_nats_server() {
    partition_on(Nats).await;
}

#[tokio::test]
async fn a_partitioned_minority_acks_nothing_and_replicas_converge_on_rill_as_on_nats_server() {
    partition_on(Rill).await;
}
