//! JetStream clustering (issue 20): three rill servers with JetStream form one meta
//! group over their routes (`/jsz` `meta_cluster`), elect a new leader when the leader
//! is killed with SIGKILL, and take the restarted server back as a member; streams with
//! three replicas are placed by the meta group, replicate every acknowledged publish to
//! every server and go away everywhere when deleted, side by side with nats-server.

use std::time::{Duration, Instant};

use rill_tests::ServerKind::{self, Nats, Rill};
use rill_tests::cluster::{Cluster, ELECTION, Node, api, create_replicated};
use serde_json::Value;

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
        if Instant::now() > deadline {
            for node in &cluster.nodes {
                eprintln!("--- {} ---\n{}", node.name(), node.logs());
            }
            panic!("no agreed meta leader: {seen:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn three_servers_form_a_meta_group_that_survives_its_leader() {
    let mut cluster = Cluster::jetstream(Rill, 3).await;
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
    let cluster = Cluster::jetstream_with(kind, 3, |mut spec| {
        spec.config = Some(ACCOUNTS.to_string());
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

/// Waits until `done` holds for the STREAM.INFO answer of `node`; returns it.
pub(crate) async fn info_until(node: &Node, stream: &str, done: impl Fn(&Value) -> bool) -> Value {
    let client = node.client().await;
    let deadline = Instant::now() + ELECTION;
    loop {
        let info = api(&client, &format!("$JS.API.STREAM.INFO.{stream}"), "").await;
        if done(&info) {
            return info;
        }
        assert!(
            Instant::now() < deadline,
            "{}: STREAM.INFO never matched: {info}",
            node.name()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// num_replicas checked as nats-server 2.15.1 checks it on three servers, then an R3
/// stream created on n2, published to on n3 with acks, holds every message on every
/// server (STREAM.INFO and MSG.GET on each), shows its `cluster` block, and is gone
/// from every server once deleted on n1.
async fn r3_stream_on(kind: ServerKind) {
    let cluster = Cluster::jetstream(kind, 3).await;
    let first = cluster.node(1).client().await;
    let create =
        |replicas: u32| format!(r#"{{"name":"R","subjects":["r.>"],"num_replicas":{replicas}}}"#);
    let r5 = api(&first, "$JS.API.STREAM.CREATE.R", &create(5)).await;
    assert_eq!(
        r5["error"],
        serde_json::json!({"code": 400, "err_code": 10005,
            "description": "no suitable peers for placement"}),
        "{kind:?}: {r5}"
    );
    let r7 = api(&first, "$JS.API.STREAM.CREATE.R", &create(7)).await;
    assert_eq!(
        r7["error"],
        serde_json::json!({"code": 500, "err_code": 10052,
            "description": "maximum replicas is 5"}),
        "{kind:?}: {r7}"
    );
    let created = create_replicated(&first, "R", &create(3)).await;
    assert_eq!(created["config"]["num_replicas"], 3);
    let group = created["cluster"]["raft_group"]
        .as_str()
        .unwrap_or_default();
    assert!(group.starts_with("S-R3F-"), "{kind:?}: {created}");

    let js = async_nats::jetstream::new(cluster.node(2).client().await);
    const N: u64 = 50;
    for i in 1..=N {
        let deadline = Instant::now() + ELECTION;
        let ack = loop {
            let sent = js.publish(format!("r.{i}"), format!("m{i}").into()).await;
            match sent {
                Ok(ack) => match ack.await {
                    Ok(ack) => break ack,
                    Err(e) => assert!(Instant::now() < deadline, "{kind:?}: {e}"),
                },
                Err(e) => assert!(Instant::now() < deadline, "{kind:?}: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(ack.sequence, i, "{kind:?}");
        assert_eq!(ack.stream, "R");
    }
    for node in &cluster.nodes {
        let info = info_until(node, "R", |i| i["state"]["messages"] == N).await;
        let c = &info["cluster"];
        assert_eq!(c["name"], "C1", "{kind:?}: {info}");
        assert_eq!(c["raft_group"], group, "{kind:?}: {info}");
        assert!(
            !c["leader"].as_str().unwrap_or_default().is_empty(),
            "{info}"
        );
        assert_eq!(c["replicas"].as_array().map(Vec::len), Some(2), "{info}");
    }
    for node in &cluster.nodes {
        let client = node.client().await;
        let got = api(&client, "$JS.API.STREAM.MSG.GET.R", r#"{"seq":25}"#).await;
        assert_eq!(
            got["message"]["subject"],
            "r.25",
            "{kind:?} {}",
            node.name()
        );
    }

    let deleted = api(
        &cluster.node(0).client().await,
        "$JS.API.STREAM.DELETE.R",
        "",
    )
    .await;
    assert_eq!(deleted["success"], true, "{kind:?}: {deleted}");
    for node in &cluster.nodes {
        info_until(node, "R", |i| i["error"]["err_code"] == 10059).await;
    }
}

#[tokio::test]
async fn r3_stream_replicates_as_nats_server() {
    r3_stream_on(Nats).await;
    r3_stream_on(Rill).await;
}

/// The name of the R3 stream's leader, as the first running node that knows one reports it.
pub(crate) async fn stream_leader(cluster: &Cluster, stream: &str) -> String {
    let deadline = Instant::now() + ELECTION;
    loop {
        for node in cluster.nodes.iter().filter(|n| n.pid().is_some()) {
            let client = node.client().await;
            let info = api(&client, &format!("$JS.API.STREAM.INFO.{stream}"), "").await;
            if let Some(leader) = info["cluster"]["leader"].as_str()
                && !leader.is_empty()
            {
                return leader.to_string();
            }
        }
        assert!(Instant::now() < deadline, "no stream leader");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every message of `stream` up to `last`, by sequence, as the server `client` is
/// connected to answers (the stream's leader, wherever the request arrives).
async fn contents(client: async_nats::Client, stream: &str, last: u64) -> Vec<(u64, String)> {
    use base64::Engine as _;
    let mut out = Vec::new();
    for seq in 1..=last {
        let body = format!(r#"{{"seq":{seq}}}"#);
        let got = api(&client, &format!("$JS.API.STREAM.MSG.GET.{stream}"), &body).await;
        if let Some(data) = got["message"]["data"].as_str() {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(data)
                .expect("base64");
            out.push((seq, String::from_utf8(raw).expect("utf8")));
        }
    }
    out
}

/// SIGKILL the R3 stream's leader while a client publishes with acks, over randomized
/// cycles; afterwards every acknowledged message is on every server exactly once, at
/// the sequence its ack named, and the three replicas hold the same messages.
#[tokio::test]
async fn r3_stream_keeps_every_acked_message_when_its_leader_is_killed() {
    let mut cluster = Cluster::jetstream(Rill, 3).await;
    let admin = cluster.node(0).client().await;
    let body = r#"{"name":"K","subjects":["k.>"],"num_replicas":3}"#;
    create_replicated(&admin, "K", body).await;
    let addrs: Vec<async_nats::ServerAddr> = cluster
        .urls()
        .iter()
        .map(|u| u.parse().expect("url"))
        .collect();
    let client = async_nats::connect(addrs.as_slice())
        .await
        .expect("connect");
    let js = async_nats::jetstream::ContextBuilder::new()
        .timeout(Duration::from_secs(2))
        .build(client);
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(u64, String)>::new()));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let publisher = tokio::spawn({
        let (acked, stop) = (acked.clone(), stop.clone());
        async move {
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                i += 1;
                let payload = format!("p{i}");
                let Ok(ack) = js.publish(format!("k.{i}"), payload.clone().into()).await else {
                    continue;
                };
                if let Ok(ack) = ack.await {
                    acked.lock().unwrap().push((ack.sequence, payload));
                }
            }
        }
    });
    let count = || acked.lock().unwrap().len();
    let wait_acks = |more: usize| {
        let start = count();
        async move {
            let deadline = Instant::now() + ELECTION;
            while count() < start + more {
                assert!(Instant::now() < deadline, "publishing did not resume");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    let started = Instant::now();
    for cycle in 0..3u64 {
        wait_acks(20).await;
        let leader = stream_leader(&cluster, "K").await;
        let i = cluster
            .nodes
            .iter()
            .position(|n| n.name() == leader)
            .expect("leader is a node");
        // A random moment within the next 300 ms of publishing.
        let jitter = (started.elapsed().as_nanos() as u64 ^ cycle.wrapping_mul(7919)) % 300;
        tokio::time::sleep(Duration::from_millis(jitter)).await;
        cluster.nodes[i].kill();
        wait_acks(20).await;
        cluster.nodes[i].restart().await;
        cluster.wait_mesh().await;
    }
    wait_acks(20).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    publisher.await.expect("publisher");
    assert!(started.elapsed() < Duration::from_secs(60), "bounded");

    let acked = acked.lock().unwrap().clone();
    let last = acked.iter().map(|(s, _)| *s).max().expect("acks");
    let leader = stream_leader(&cluster, "K").await;
    let leader_node = cluster.nodes.iter().find(|n| n.name() == leader).unwrap();
    let last = info_until(leader_node, "K", |i| {
        i["state"]["last_seq"].as_u64() >= Some(last)
    })
    .await["state"]["last_seq"]
        .as_u64()
        .unwrap();
    // Each replica in turn leads and answers.
    let views =
        crate::js_cluster_leader::each_replica(&cluster, "K", |c| contents(c, "K", last)).await;
    let first = &views[0];
    for (seq, payload) in &acked {
        let found: Vec<_> = first.iter().filter(|(_, p)| p == payload).collect();
        assert_eq!(found.len(), 1, "{payload} stored once: {found:?}");
        assert_eq!(found[0].0, *seq, "{payload} at its acked sequence");
    }
    for (node, view) in cluster.nodes.iter().zip(&views).skip(1) {
        assert_eq!(view, first, "{}", node.name());
    }
}
