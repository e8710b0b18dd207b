//! An R3 stream's leader answers its `$JS.API` requests wherever they arrive, hands
//! its leadership over on `STREAM.LEADER.STEPDOWN`, and the stream refuses publishes
//! without a quorum and takes them again when a peer returns; three nats-server 2.15.1
//! servers first, then three rill servers, with the same checks (issue 20).

use std::time::{Duration, Instant};

use rill_tests::ServerKind::{self, Nats, Rill};
use rill_tests::cluster::{Cluster, ELECTION, Node, api, api_once, create_replicated};
use serde_json::{Value, json};

use crate::js_cluster::{info_until, stream_leader};

/// Creates the R3 stream `name` on `subject.>` and publishes `n` messages with acks.
async fn r3_with_messages(cluster: &Cluster, name: &str, subject: &str, n: u64) {
    let client = cluster.node(0).client().await;
    let body = format!(r#"{{"name":"{name}","subjects":["{subject}.>"],"num_replicas":3}}"#);
    create_replicated(&client, name, &body).await;
    for i in 1..=n {
        assert_eq!(publish(&client, &format!("{subject}.{i}")).await, Some(i));
    }
}

/// Publishes with an ack, retried while the stream elects a leader (a `Nats-Msg-Id`
/// makes a retry of a publish that was stored without an ack a duplicate); the
/// sequence.
pub(crate) async fn publish(client: &async_nats::Client, subject: &str) -> Option<u64> {
    publish_with(client, subject, None).await
}

/// As [`publish`], with a `Nats-TTL` header when `ttl` is given.
pub(crate) async fn publish_with(
    client: &async_nats::Client,
    subject: &str,
    ttl: Option<&str>,
) -> Option<u64> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut headers = async_nats::HeaderMap::new();
    // Fixed width: the id's length counts in a stream's `bytes`, and the counter is
    // shared by every test of the process (tests in parallel reach three digits in
    // one cluster and not in the other it is compared with).
    headers.insert("Nats-Msg-Id", format!("{subject}-{id:09}").as_str());
    if let Some(ttl) = ttl {
        headers.insert("Nats-TTL", ttl);
    }
    let deadline = Instant::now() + ELECTION;
    while Instant::now() < deadline {
        let req = client.request_with_headers(subject.to_string(), headers.clone(), "m".into());
        if let Ok(Ok(msg)) = tokio::time::timeout(Duration::from_secs(2), req).await {
            let ack: Value = serde_json::from_slice(&msg.payload).expect("JSON ack");
            // nats-server answers a retry whose original is still being stored
            // `{"seq":0,"duplicate":true}`: ask again for the sequence.
            if let Some(seq) = ack["seq"].as_u64().filter(|s| *s > 0) {
                return Some(seq);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

fn index(cluster: &Cluster, name: &str) -> usize {
    cluster
        .nodes
        .iter()
        .position(|n| n.name() == name)
        .expect("a node of that name")
}

/// One stepdown request's answer; `None` when nothing answers within `wait`.
pub(crate) async fn stepdown(
    node: &Node,
    stream: &str,
    body: &str,
    wait: Duration,
) -> Option<Value> {
    let client = node.client().await;
    let req = client.request(
        format!("$JS.API.STREAM.LEADER.STEPDOWN.{stream}"),
        body.to_string().into(),
    );
    let msg = tokio::time::timeout(wait, req).await.ok()?.ok()?;
    Some(serde_json::from_slice(&msg.payload).expect("JSON reply"))
}

/// Waits until the stream's leader is not `old`; the new one.
pub(crate) async fn new_leader(cluster: &Cluster, stream: &str, old: &str) -> String {
    let deadline = Instant::now() + ELECTION;
    loop {
        let leader = stream_leader(cluster, stream).await;
        if leader != old {
            return leader;
        }
        assert!(Instant::now() < deadline, "{old} still leads {stream}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn leader_answers_on(kind: ServerKind) {
    let cluster = Cluster::jetstream(kind, 3).await;
    r3_with_messages(&cluster, "L", "l", 5).await;
    let leader = stream_leader(&cluster, "L").await;

    // Every server gives the leader's view: the same leader and leader_since, both
    // followers current (a follower knows neither).
    let mut views = Vec::new();
    for node in &cluster.nodes {
        let info = info_until(node, "L", |i| {
            i["cluster"]["replicas"]
                .as_array()
                .is_some_and(|r| r.len() == 2 && r.iter().all(|p| p["current"] == true))
        })
        .await;
        assert_eq!(info["state"]["messages"], 5, "{kind:?}: {info}");
        views.push((
            info["cluster"]["leader"].clone(),
            info["cluster"]["leader_since"].clone(),
        ));
    }
    assert!(views.iter().all(|v| *v == views[0]), "{kind:?}: {views:?}");
    assert_eq!(views[0].0, leader.as_str());

    let follower = cluster
        .nodes
        .iter()
        .find(|n| n.name() != leader)
        .expect("a follower");
    let wait = Duration::from_secs(5);
    let type_ = "io.nats.jetstream.api.v1.stream_leader_stepdown_response";
    let bad = stepdown(follower, "L", "{bad", wait).await.expect("answer");
    assert_eq!(bad["type"], type_, "{kind:?}");
    assert_eq!(bad["error"]["err_code"], 10025, "{kind:?}: {bad}");
    let missing = stepdown(follower, "NOPE", "", wait).await.expect("answer");
    assert_eq!(
        missing,
        json!({"type": type_, "error": {"code": 404, "err_code": 10059,
            "description": "stream not found"}}),
        "{kind:?}"
    );
    let unknown = stepdown(follower, "L", r#"{"placement":{"preferred":"nX"}}"#, wait)
        .await
        .expect("answer");
    assert_eq!(
        unknown["error"],
        json!({"code": 400, "err_code": 10005,
            "description": "preferred server \"nX\" not known"}),
        "{kind:?}"
    );
    let itself = format!(r#"{{"placement":{{"preferred":"{leader}"}}}}"#);
    let itself = stepdown(follower, "L", &itself, wait)
        .await
        .expect("answer");
    assert_eq!(
        itself["error"],
        json!({"code": 400, "err_code": 10005,
            "description": format!("preferred server {leader:?} is already leader")}),
        "{kind:?}"
    );

    // A stepdown is answered at once; a second one during the election is not.
    let done = stepdown(follower, "L", "", wait).await.expect("answer");
    assert_eq!(done, json!({"type": type_, "success": true}), "{kind:?}");
    let during = stepdown(follower, "L", "", Duration::from_millis(500)).await;
    assert_eq!(during, None, "{kind:?}: no answer during the election");
    let second = new_leader(&cluster, "L", &leader).await;
    let client = follower.client().await;
    assert_eq!(publish(&client, "l.6").await, Some(6), "{kind:?}");

    // To a preferred server.
    let target = ["n1", "n2", "n3"]
        .into_iter()
        .find(|n| *n != second)
        .expect("a non-leader");
    let body = format!(r#"{{"placement":{{"preferred":"{target}"}}}}"#);
    let deadline = Instant::now() + ELECTION;
    let moved = loop {
        // Retried while the last election settles (no answer then).
        if let Some(v) = stepdown(cluster.node(0), "L", &body, wait).await {
            break v;
        }
        assert!(Instant::now() < deadline, "{kind:?}: no stepdown answer");
    };
    assert_eq!(moved["success"], true, "{kind:?}: {moved}");
    assert_eq!(new_leader(&cluster, "L", &second).await, target, "{kind:?}");
    assert_eq!(publish(&client, "l.7").await, Some(7), "{kind:?}");
    for node in &cluster.nodes {
        info_until(node, "L", |i| i["state"]["messages"] == 7).await;
    }
}

#[tokio::test]
async fn r3_stream_leader_answers_and_steps_down_as_nats_server() {
    leader_answers_on(Nats).await;
    leader_answers_on(Rill).await;
}

/// What a publish gets: its sequence, no responders, or nothing in time.
#[derive(Debug, PartialEq)]
enum Published {
    Acked,
    NoResponders,
    TimedOut,
}

async fn try_publish(client: &async_nats::Client, subject: &str) -> Published {
    use async_nats::RequestErrorKind as K;
    let req = client.request(subject.to_string(), "q".into());
    match tokio::time::timeout(Duration::from_secs(2), req).await {
        Ok(Ok(msg)) if msg.payload.starts_with(br#"{"stream""#) => Published::Acked,
        Ok(Err(e)) if e.kind() == K::NoResponders => Published::NoResponders,
        Ok(other) => panic!("unexpected answer: {other:?}"),
        Err(_) => Published::TimedOut,
    }
}

/// Publishes until the answer is `want` (at most `within`); every other answer seen
/// on the way.
async fn publish_until(
    client: &async_nats::Client,
    want: Published,
    within: Duration,
    what: &str,
) -> Vec<Published> {
    let deadline = Instant::now() + within;
    let mut seen = Vec::new();
    loop {
        let got = try_publish(client, "q.1").await;
        if got == want {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: no {want:?} within {within:?}: {seen:?}"
        );
        seen.push(got);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// With two of three servers gone the stream's leader stops taking publishes (they
/// time out, then get no responders: nats-server's leader gives up after about 20 s,
/// rill's after 3 s), and the stream takes them again once one server returns.
async fn quorum_loss_on(kind: ServerKind) {
    let mut cluster = Cluster::jetstream(kind, 3).await;
    r3_with_messages(&cluster, "Q", "q", 3).await;
    let leader = stream_leader(&cluster, "Q").await;
    let keep = index(&cluster, &leader);
    let client = cluster.nodes[keep].client().await;
    let others: Vec<usize> = (0..3).filter(|i| *i != keep).collect();
    for i in &others {
        cluster.nodes[*i].kill();
    }
    let lost = Instant::now();
    let what = format!("{kind:?} after the quorum went");
    let within = Duration::from_secs(40);
    let before = publish_until(&client, Published::NoResponders, within, &what).await;
    assert!(
        before.iter().all(|p| *p == Published::TimedOut),
        "{kind:?}: {before:?}"
    );
    let refused_after = lost.elapsed();
    cluster.nodes[others[0]].restart().await;
    let what = format!("{kind:?} after a peer returned");
    // While the returning peer rejoins and the group elects, a publish may be refused
    // (no responders) or go unanswered for the 2 s a try waits: on a loaded machine the
    // election outlasts a try (the likely cause of this test's one failure, which
    // demanded no responders only). Any other answer still fails in try_publish.
    let back = publish_until(&client, Published::Acked, Duration::from_secs(30), &what).await;
    eprintln!("{kind:?}: until acked again: {back:?}");
    eprintln!("{kind:?}: publishes refused {refused_after:?} after the quorum went");
}

#[tokio::test]
async fn r3_stream_without_quorum_refuses_publishes_as_nats_server() {
    quorum_loss_on(Nats).await;
    quorum_loss_on(Rill).await;
}

/// Makes each server in turn the stream's leader (a stepdown to it) and returns what
/// `read` saw there: with every request answered by the leader, this is how a test
/// sees each replica.
pub(crate) async fn each_replica<F, Fut, T>(cluster: &Cluster, stream: &str, read: F) -> Vec<T>
where
    F: Fn(async_nats::Client) -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let all: Vec<String> = cluster.nodes.iter().map(|n| n.name().to_string()).collect();
    each_member(cluster, stream, &all, read).await
}

/// As [`each_replica`], for the servers named in `members` only (a stream with fewer
/// replicas than servers).
pub(crate) async fn each_member<F, Fut, T>(
    cluster: &Cluster,
    stream: &str,
    members: &[String],
    read: F,
) -> Vec<T>
where
    F: Fn(async_nats::Client) -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let mut out = Vec::new();
    let nodes = cluster
        .nodes
        .iter()
        .filter(|n| members.iter().any(|m| m == n.name()));
    for node in nodes {
        let want = node.name().to_string();
        let body = format!(r#"{{"placement":{{"preferred":"{want}"}}}}"#);
        let deadline = Instant::now() + ELECTION;
        while stream_leader(cluster, stream).await != want {
            // No answer while an election runs; "already leader" once it is done.
            let _ = stepdown(node, stream, &body, Duration::from_secs(2)).await;
            assert!(Instant::now() < deadline, "{want} never led {stream}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        out.push(read(node.client().await).await);
    }
    out
}

/// The stream's state with the deleted sequences, and every message left, as the
/// leader reports them.
async fn replica_view(client: async_nats::Client, stream: &str) -> (Value, Vec<Value>) {
    let subject = format!("$JS.API.STREAM.INFO.{stream}");
    let info = api(&client, &subject, r#"{"deleted_details":true}"#).await;
    let mut state = info["state"].clone();
    for time in ["first_ts", "last_ts"] {
        state.as_object_mut().expect("state").remove(time);
    }
    let (first, last) = (
        state["first_seq"].as_u64().unwrap_or_default(),
        state["last_seq"].as_u64().unwrap_or_default(),
    );
    let mut msgs = Vec::new();
    for seq in first..=last {
        let subject = format!("$JS.API.STREAM.MSG.GET.{stream}");
        let got = api(&client, &subject, &format!(r#"{{"seq":{seq}}}"#)).await;
        let m = &got["message"];
        if !m.is_null() {
            msgs.push(json!([m["seq"], m["subject"], m["data"]]));
        }
    }
    (state, msgs)
}

/// Deletes and purges (filter, keep, seq) sent to a follower's server: the answers,
/// and each replica's state and messages afterwards. Each request is sent once: asked
/// again after a late answer, a delete would answer with the first one's effect (the
/// cause of this test's one failure under load, answers differing).
async fn purge_and_delete_on(kind: ServerKind) -> (Vec<Value>, (Value, Vec<Value>)) {
    let cluster = Cluster::jetstream(kind, 3).await;
    let client = cluster.node(0).client().await;
    create_replicated(
        &client,
        "P",
        r#"{"name":"P","subjects":["p.>"],"num_replicas":3}"#,
    )
    .await;
    for i in 1..=20u64 {
        let subject = if i % 2 == 1 { "p.a" } else { "p.b" };
        assert_eq!(publish(&client, subject).await, Some(i), "{kind:?}");
    }
    let leader = stream_leader(&cluster, "P").await;
    let follower = cluster
        .nodes
        .iter()
        .find(|n| n.name() != leader)
        .expect("a follower");
    let at = follower.client().await;
    let mut answers = Vec::new();
    for (op, body) in [
        ("MSG.DELETE", r#"{"seq":3}"#),
        ("MSG.DELETE", r#"{"seq":3}"#),
        ("MSG.DELETE", r#"{"seq":99}"#),
        ("MSG.DELETE", r#"{"seq":4,"no_erase":true}"#),
        ("PURGE", r#"{"filter":"p.a","keep":2}"#),
        ("PURGE", r#"{"seq":10}"#),
        ("PURGE", r#"{"filter":"p.b","seq":16}"#),
    ] {
        answers.push(api_once(&at, &format!("$JS.API.STREAM.{op}.P"), body).await);
    }
    for i in 21..=23u64 {
        assert_eq!(publish(&at, "p.b").await, Some(i), "{kind:?}");
    }
    answers.push(api_once(&at, "$JS.API.STREAM.PURGE.P", r#"{"filter":"p.a"}"#).await);
    let views = each_replica(&cluster, "P", |c| replica_view(c, "P")).await;
    for (node, view) in cluster.nodes.iter().zip(&views) {
        assert_eq!(*view, views[0], "{kind:?}: {} differs", node.name());
    }
    (answers, views[0].clone())
}

#[tokio::test]
async fn r3_purge_and_delete_reach_every_replica_as_nats_server() {
    let nats = purge_and_delete_on(Nats).await;
    let rill = purge_and_delete_on(Rill).await;
    assert_eq!(rill.0, nats.0, "answers");
    assert_eq!(rill.1, nats.1, "what is left");
    assert!(!rill.1.1.is_empty(), "messages are left: {:?}", rill.1);
}

/// The stream's state (without times) and every `step`-th message, as the leader
/// reports them.
async fn sampled_view(client: async_nats::Client, stream: &str, step: u64) -> (Value, Vec<Value>) {
    let info = api(&client, &format!("$JS.API.STREAM.INFO.{stream}"), "").await;
    let mut state = info["state"].clone();
    for time in ["first_ts", "last_ts"] {
        state.as_object_mut().expect("state").remove(time);
    }
    let last = state["last_seq"].as_u64().unwrap_or_default();
    let mut msgs = Vec::new();
    for seq in (1..=last).step_by(usize::try_from(step).expect("step")) {
        let subject = format!("$JS.API.STREAM.MSG.GET.{stream}");
        let got = api(&client, &subject, &format!(r#"{{"seq":{seq}}}"#)).await;
        let m = &got["message"];
        msgs.push(json!([m["seq"], m["subject"], m["data"], m["time"]]));
    }
    (state, msgs)
}

/// Publishes on `<prefix>.<i>` for every `i` in `range`, 64 at a time, each acked
/// (retried through elections as [`publish`]); the sequences, ascending.
async fn publish_many(
    client: &async_nats::Client,
    prefix: &str,
    range: std::ops::RangeInclusive<u64>,
) -> Vec<u64> {
    let all: Vec<u64> = range.collect();
    let mut seqs = Vec::new();
    for window in all.chunks(64) {
        let acks = futures::future::join_all(window.iter().map(|i| {
            let subject = format!("{prefix}.{i}");
            async move { publish(client, &subject).await }
        }))
        .await;
        seqs.extend(acks.into_iter().map(|s| s.expect("an ack")));
    }
    seqs.sort_unstable();
    seqs
}

/// Messages published while a follower is down: more than a stream group's snapshot
/// interval (1024 entries on rill), so the leader's log no longer holds the ones the
/// follower missed and it catches up from a snapshot.
const WHILE_DOWN: u64 = 1500;

/// A follower that was down while 1500 messages were stored, and one whose store was
/// wiped, both rejoin and end identical to the leader (each server in turn made
/// leader and read).
async fn catch_up_on(kind: ServerKind) {
    let mut cluster = Cluster::jetstream(kind, 3).await;
    r3_with_messages(&cluster, "W", "w", 20).await;
    let leader = stream_leader(&cluster, "W").await;
    let followers: Vec<usize> = (0..3)
        .filter(|i| cluster.nodes[*i].name() != leader)
        .collect();
    let client = cluster.nodes[index(&cluster, &leader)].client().await;
    let started = Instant::now();

    cluster.nodes[followers[0]].kill();
    let last = 20 + WHILE_DOWN;
    let seqs = publish_many(&client, "w", 21..=last).await;
    assert_eq!(seqs, (21..=last).collect::<Vec<_>>(), "{kind:?}");
    cluster.nodes[followers[0]].restart().await;

    let wiped = &mut cluster.nodes[followers[1]];
    wiped.kill();
    std::fs::remove_dir_all(wiped.dir().join("store")).expect("wipe the store");
    wiped.restart().await;
    cluster.wait_mesh().await;
    let total = last + 10;
    let seqs = publish_many(&client, "w", last + 1..=total).await;
    assert_eq!(seqs, (last + 1..=total).collect::<Vec<_>>(), "{kind:?}");
    for node in &cluster.nodes {
        info_until(node, "W", |i| i["state"]["messages"] == total).await;
    }
    let views = each_replica(&cluster, "W", |c| sampled_view(c, "W", 37)).await;
    for (node, view) in cluster.nodes.iter().zip(&views) {
        assert_eq!(view, &views[0], "{kind:?}: {} differs", node.name());
    }
    assert_eq!(views[0].0["messages"], total, "{kind:?}");
    if kind == Rill {
        for i in followers {
            let node = &cluster.nodes[i];
            assert!(
                node.logs().contains("caught up from a snapshot"),
                "{} rejoined without a snapshot:\n{}",
                node.name(),
                node.logs()
            );
        }
    }
    eprintln!("{kind:?}: caught up in {:?}", started.elapsed());
}

#[tokio::test]
async fn r3_replicas_behind_or_wiped_catch_up_as_nats_server() {
    catch_up_on(Nats).await;
    catch_up_on(Rill).await;
}
