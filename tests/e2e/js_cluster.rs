//! JetStream clustering (issue 20): three rill servers with JetStream form one meta
//! group over their routes (`/jsz` `meta_cluster`), elect a new leader when the leader
//! is killed with SIGKILL, and take the restarted server back as a member. Streams with
//! more than one replica are still refused (nats-server's 10074) until replicated
//! streams land.

use std::time::{Duration, Instant};

use rill_tests::ServerKind::Rill;
use rill_tests::cluster::{Cluster, Node};
use serde_json::Value;

/// How long the group may take to form or to elect a leader.
const ELECTION: Duration = Duration::from_secs(20);

async fn meta(node: &Node) -> Value {
    node.monitor("/jsz").await["meta_cluster"].clone()
}

/// Waits until every running node reports the same leader (not `not`) and a group of
/// `size`; returns the leader's name.
async fn agreed_leader(cluster: &Cluster, size: u64, not: Option<&str>) -> String {
    let deadline = Instant::now() + ELECTION;
    loop {
        let mut seen = Vec::new();
        for node in cluster.nodes.iter().filter(|n| n.pid().is_some()) {
            seen.push(meta(node).await);
        }
        let leader = seen[0]["leader"].as_str().unwrap_or_default().to_string();
        let agreed = !leader.is_empty()
            && Some(leader.as_str()) != not
            && seen.iter().all(|m| {
                m["leader"].as_str() == Some(leader.as_str()) && m["cluster_size"] == size
            });
        if agreed {
            return leader;
        }
        assert!(Instant::now() < deadline, "no agreed meta leader: {seen:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn three_servers_form_a_meta_group_that_survives_its_leader() {
    let mut cluster = Cluster::start_with(&[Rill, Rill, Rill], |mut spec| {
        spec.jetstream = true;
        spec
    })
    .await;
    let leader = agreed_leader(&cluster, 3, None).await;
    let i = cluster
        .nodes
        .iter()
        .position(|n| n.name() == leader)
        .expect("leader is a node");
    let report = meta(&cluster.nodes[i]).await;
    assert_eq!(report["name"], "C1");
    let replicas = report["replicas"]
        .as_array()
        .expect("leader lists replicas");
    assert_eq!(replicas.len(), 2, "{report}");

    cluster.nodes[i].kill();
    let next = agreed_leader(&cluster, 3, Some(&leader)).await;
    assert_ne!(next, leader);

    cluster.nodes[i].restart().await;
    cluster.wait_mesh().await;
    assert!(!agreed_leader(&cluster, 3, None).await.is_empty());

    // Replicated streams are not there yet: refused, not silently kept as one copy.
    let js = async_nats::jetstream::new(cluster.node(0).client().await);
    let err = js
        .create_stream(async_nats::jetstream::stream::Config {
            name: "R3".into(),
            subjects: vec!["r3".into()],
            num_replicas: 3,
            ..Default::default()
        })
        .await
        .expect_err("R3 refused");
    assert!(
        err.to_string().contains("replicas > 1 not supported"),
        "{err}"
    );
}
