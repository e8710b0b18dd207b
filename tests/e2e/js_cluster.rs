//! JetStream clustering (issue 20): three rill servers with JetStream form one meta
//! group over their routes (`/jsz` `meta_cluster`), elect a new leader when the leader
//! is killed with SIGKILL, and take the restarted server back as a member. Streams with
//! more than one replica are still refused (nats-server's 10074) until replicated
//! streams land.

use std::time::{Duration, Instant};

use rill_tests::ServerKind::{self, Nats, Rill};
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

/// Accounts for the stepdown test: `A` with JetStream, `SYS` the system account.
const ACCOUNTS: &str = r#"
accounts {
  SYS { users [{ user: sys, password: sys }] }
  A { jetstream: enabled, users [{ user: a, password: a }] }
}
system_account: SYS
"#;

async fn connect(node: &Node, user: &str) -> async_nats::Client {
    async_nats::ConnectOptions::with_user_and_password(user.into(), user.into())
        .connect(node.url())
        .await
        .expect("connect")
}

/// Asks for a meta stepdown until some server answers (none does while an election
/// runs); the answer's JSON.
async fn stepdown(client: &async_nats::Client, body: &'static str) -> Value {
    let deadline = Instant::now() + ELECTION;
    loop {
        let req = client.request("$JS.API.META.LEADER.STEPDOWN", body.into());
        if let Ok(Ok(msg)) = tokio::time::timeout(Duration::from_secs(9), req).await {
            return serde_json::from_slice(&msg.payload).expect("JSON reply");
        }
        assert!(Instant::now() < deadline, "no stepdown answer");
    }
}

/// `$JS.API.META.LEADER.STEPDOWN` as nats-server 2.15.1 answers it: only the system
/// account, bad JSON and an unknown preferred server refused with its errors, and the
/// leadership moves (to the preferred server when one is named).
async fn meta_stepdown_on(kind: ServerKind) {
    let cluster = Cluster::start_with(&[kind, kind, kind], |mut spec| {
        spec.jetstream = true;
        spec.config = Some(ACCOUNTS.to_string());
        // nats-server wants configured routes when a system account is set; the seed
        // node gets one that leads nowhere.
        if spec.name == "n1" {
            spec.routes.push("nats://127.0.0.1:1".to_string());
        }
        spec
    })
    .await;
    let first = wait_leader(&cluster, None).await;
    let sys = connect(cluster.node(1), "sys").await;
    let a = connect(cluster.node(1), "a").await;

    let ignored = a.request("$JS.API.META.LEADER.STEPDOWN", "".into());
    let ignored = tokio::time::timeout(Duration::from_millis(1500), ignored).await;
    assert!(
        !matches!(ignored, Ok(Ok(_))),
        "{kind:?}: only the system account is answered"
    );

    let bad = stepdown(&sys, "{bad").await;
    assert_eq!(
        bad["type"],
        "io.nats.jetstream.api.v1.meta_leader_stepdown_response"
    );
    assert_eq!(bad["error"]["err_code"], 10025, "{kind:?}: {bad}");
    let unknown = stepdown(&sys, r#"{"placement":{"preferred":"nX"}}"#).await;
    assert_eq!(
        unknown["error"],
        serde_json::json!({"code": 400, "err_code": 10005,
            "description": "preferred server \"nX\" not known"}),
        "{kind:?}"
    );

    let done = stepdown(&sys, "").await;
    assert_eq!(done["success"], true, "{kind:?}: {done}");
    let second = wait_leader(&cluster, Some(&first)).await;
    let target = ["n1", "n2", "n3"]
        .into_iter()
        .find(|n| *n != second)
        .expect("a non-leader");
    let body: &'static str = match target {
        "n1" => r#"{"placement":{"preferred":"n1"}}"#,
        "n2" => r#"{"placement":{"preferred":"n2"}}"#,
        _ => r#"{"placement":{"preferred":"n3"}}"#,
    };
    assert_eq!(stepdown(&sys, body).await["success"], true, "{kind:?}");
    let third = wait_leader(&cluster, Some(&second)).await;
    assert_eq!(third, target, "{kind:?}: the preferred server leads");
}

/// The meta leader every running node reports through `/jsz` (nats-server shows it
/// there too), once they agree and it is not `not`.
async fn wait_leader(cluster: &Cluster, not: Option<&str>) -> String {
    let deadline = Instant::now() + ELECTION;
    loop {
        let mut leaders = Vec::new();
        for node in &cluster.nodes {
            leaders.push(
                meta(node).await["leader"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            );
        }
        let agreed = !leaders[0].is_empty()
            && Some(leaders[0].as_str()) != not
            && leaders.iter().all(|l| *l == leaders[0]);
        if agreed {
            return leaders[0].clone();
        }
        assert!(
            Instant::now() < deadline,
            "no agreed meta leader: {leaders:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn meta_leader_stepdown_as_nats_server() {
    meta_stepdown_on(Nats).await;
    meta_stepdown_on(Rill).await;
}
