//! Replicated consumers (issue 20): a durable consumer of an R3 stream keeps its state
//! in its own group, so it continues on another server when its leader is killed with
//! SIGKILL, without redelivering what was acked (in-flight messages may come again, as
//! on nats-server); CONSUMER.INFO shows the group's `cluster` block,
//! CONSUMER.LEADER.STEPDOWN moves it, and every new leader is announced by
//! nats-server's LEADER_ELECTED advisories; `/jsz?consumers=1` lists it on every member
//! with its group. Three nats-server 2.15.1 first, then three rill servers, with the
//! same checks.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, AckKind, consumer};
use futures::StreamExt;
use rill_tests::ServerKind::{self, Nats, Rill};
use rill_tests::cluster::{Cluster, ELECTION, Node, api, create_replicated};
use serde_json::Value;

/// Creates the R3 stream `name` on `<subject>.>` through `node` and publishes `n`
/// messages with acks.
async fn r3_stream(node: &Node, name: &str, subject: &str, n: u64) {
    let client = node.client().await;
    let body = format!(r#"{{"name":"{name}","subjects":["{subject}.>"],"num_replicas":3}}"#);
    create_replicated(&client, name, &body).await;
    publish(&client, subject, 1..=n).await;
}

/// Publishes `<subject>.<i>` for each `i` with an ack, retried while the stream elects a
/// leader (`Nats-Msg-Id` makes a retry a duplicate).
async fn publish(client: &async_nats::Client, subject: &str, seqs: std::ops::RangeInclusive<u64>) {
    let js = jetstream::new(client.clone());
    for i in seqs {
        let deadline = Instant::now() + ELECTION;
        loop {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", format!("{subject}-{i}").as_str());
            let ack = js
                .publish_with_headers(format!("{subject}.{i}"), headers, "m".into())
                .await;
            let done = match ack {
                Ok(ack) => tokio::time::timeout(Duration::from_secs(2), ack).await,
                Err(_) => Ok(Err(async_nats::jetstream::context::PublishError::new(
                    async_nats::jetstream::context::PublishErrorKind::TimedOut,
                ))),
            };
            if matches!(done, Ok(Ok(_))) {
                break;
            }
            assert!(Instant::now() < deadline, "publish {subject}.{i}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The consumer's CONSUMER.INFO as `node` answers it, once `done` holds.
async fn consumer_info(
    node: &Node,
    stream: &str,
    name: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let client = node.client().await;
    let deadline = Instant::now() + ELECTION;
    loop {
        let info = api(
            &client,
            &format!("$JS.API.CONSUMER.INFO.{stream}.{name}"),
            "",
        )
        .await;
        if done(&info) {
            return info;
        }
        assert!(Instant::now() < deadline, "{}: {info}", node.name());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn leader(info: &Value) -> String {
    info["cluster"]["leader"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn index(cluster: &Cluster, name: &str) -> usize {
    cluster
        .nodes
        .iter()
        .position(|n| n.name() == name)
        .expect("a node of that name")
}

/// The consumer `name` of `stream` through `client`, retried while its group elects a
/// leader after a failover.
async fn pull_consumer(
    client: &async_nats::Client,
    stream: &str,
    name: &str,
) -> consumer::Consumer<consumer::pull::Config> {
    let js = jetstream::new(client.clone());
    let deadline = Instant::now() + ELECTION;
    loop {
        if let Ok(c) = js.get_consumer_from_stream(name, stream).await {
            return c;
        }
        assert!(Instant::now() < deadline, "consumer {name} never came back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Fetches up to `n` messages (waiting at most `wait`), acking each with `ack` (the
/// double ack waits for the server's answer); their stream sequences.
async fn fetch(
    c: &consumer::Consumer<consumer::pull::Config>,
    n: usize,
    wait: Duration,
    ack: bool,
) -> Vec<u64> {
    let Ok(mut batch) = c.fetch().max_messages(n).expires(wait).messages().await else {
        return Vec::new();
    };
    let mut seqs = Vec::new();
    while let Some(Ok(msg)) = batch.next().await {
        seqs.push(msg.info().expect("JetStream message").stream_sequence);
        if ack {
            msg.double_ack().await.expect("ack answered");
        }
    }
    seqs
}

/// What one kind of server did, compared between the kinds.
#[derive(Debug, PartialEq)]
struct PullSeen {
    group_prefix: String,
    replicas: usize,
    too_many: Value,
    first: Vec<u64>,
    in_flight: Vec<u64>,
    floor_after: u64,
    rest: BTreeSet<u64>,
}

async fn pull_failover_on(kind: ServerKind) -> PullSeen {
    let mut cluster = Cluster::jetstream(kind, 3).await;
    r3_stream(cluster.node(0), "C", "c", 10).await;
    let n1 = cluster.node(0).client().await;
    let js = jetstream::new(n1.clone());
    let too_many = api(
        &n1,
        "$JS.API.CONSUMER.DURABLE.CREATE.C.R5",
        r#"{"stream_name":"C","config":{"durable_name":"R5","ack_policy":"explicit","num_replicas":5}}"#,
    )
    .await;
    let stream = js.get_stream("C").await.expect("stream");
    let config = consumer::pull::Config {
        durable_name: Some("D".into()),
        ack_policy: consumer::AckPolicy::Explicit,
        ack_wait: Duration::from_secs(2),
        ..Default::default()
    };
    stream.create_consumer(config).await.expect("consumer");
    let info = consumer_info(cluster.node(0), "C", "D", |i| !leader(i).is_empty()).await;
    let group = info["cluster"]["raft_group"].as_str().unwrap_or_default();
    let replicas = info["cluster"]["replicas"].as_array().map_or(0, Vec::len);

    // On n1's connection: four acked (each ack answered), two delivered and not acked.
    let d = pull_consumer(&n1, "C", "D").await;
    let first = fetch(&d, 4, Duration::from_secs(5), true).await;
    let in_flight = fetch(&d, 2, Duration::from_secs(5), false).await;
    let old = leader(&consumer_info(cluster.node(0), "C", "D", |_| true).await);
    let victim = index(&cluster, &old);
    cluster.nodes[victim].kill();

    // Another server's client finds the consumer under a new leader, at the right place.
    let other = (victim + 1) % 3;
    let after = consumer_info(cluster.node(other), "C", "D", |i| {
        !leader(i).is_empty() && leader(i) != old
    })
    .await;
    let floor_after = after["ack_floor"]["stream_seq"]
        .as_u64()
        .unwrap_or_default();
    let client = cluster.node(other).client().await;
    let d = pull_consumer(&client, "C", "D").await;
    let mut rest = BTreeSet::new();
    let deadline = Instant::now() + ELECTION;
    while !(5..=10).all(|s| rest.contains(&s)) && Instant::now() < deadline {
        rest.extend(fetch(&d, 10, Duration::from_secs(2), true).await);
    }
    PullSeen {
        group_prefix: group.chars().take(6).collect(),
        replicas,
        too_many: too_many["error"].clone(),
        first,
        in_flight,
        floor_after,
        rest,
    }
}

#[tokio::test]
async fn a_durable_pull_consumer_survives_its_leader_as_on_nats_server() {
    let nats = pull_failover_on(Nats).await;
    assert_eq!(nats.group_prefix, "C-R3F-", "{nats:?}");
    assert_eq!(nats.replicas, 2, "{nats:?}");
    assert_eq!(nats.first, [1, 2, 3, 4], "{nats:?}");
    assert_eq!(nats.in_flight, [5, 6], "{nats:?}");
    assert_eq!(nats.floor_after, 4, "{nats:?}");
    // Nothing acked comes again; the in-flight two may, after ack_wait.
    assert_eq!(nats.rest, (5..=10).collect(), "{nats:?}");
    assert_eq!(nats.too_many["err_code"], 10126, "{nats:?}");
    let rill = pull_failover_on(Rill).await;
    assert_eq!(rill, nats);
}

/// A durable push consumer on a subscriber of a server that does not lead it: steps
/// down on request (answered at once, another server leads), then its leader is
/// killed and delivery goes on from where the acks were, every message once acked.
async fn push_failover_on(kind: ServerKind) -> (Value, BTreeSet<u64>, BTreeSet<u64>) {
    let mut cluster = Cluster::jetstream(kind, 3).await;
    r3_stream(cluster.node(0), "P", "p", 5).await;
    let n1 = cluster.node(0).client().await;
    let create = r#"{"stream_name":"P","config":{"durable_name":"PUSH","deliver_subject":"push.out","ack_policy":"explicit","ack_wait":2000000000}}"#;
    let created = api(&n1, "$JS.API.CONSUMER.DURABLE.CREATE.P.PUSH", create).await;
    assert!(created["error"].is_null(), "{kind:?}: {created}");
    let first =
        leader(&consumer_info(cluster.node(0), "P", "PUSH", |i| !leader(i).is_empty()).await);
    let stepdown = api(&n1, "$JS.API.CONSUMER.LEADER.STEPDOWN.P.PUSH", "").await;
    let second = leader(
        &consumer_info(cluster.node(0), "P", "PUSH", |i| {
            !leader(i).is_empty() && leader(i) != first
        })
        .await,
    );
    let victim = index(&cluster, &second);
    let listener = (victim + 1) % 3;
    let client = cluster.node(listener).client().await;
    let mut sub = client.subscribe("push.out").await.expect("subscribe");

    // The first five, each acked with an answer, then the leader dies.
    let mut before = BTreeSet::new();
    let mut after = BTreeSet::new();
    let deadline = Instant::now() + ELECTION;
    while before.len() < 5 && Instant::now() < deadline {
        let Ok(Some(msg)) = tokio::time::timeout(Duration::from_secs(1), sub.next()).await else {
            continue;
        };
        let msg = jetstream::Message {
            message: msg,
            context: jetstream::new(client.clone()),
        };
        before.insert(msg.info().expect("JetStream message").stream_sequence);
        msg.double_ack().await.expect("ack answered");
    }
    cluster.nodes[victim].kill();
    publish(&client, "p", 6..=8).await;
    let deadline = Instant::now() + ELECTION;
    while !(6..=8).all(|s| after.contains(&s)) && Instant::now() < deadline {
        let Ok(Some(msg)) = tokio::time::timeout(Duration::from_secs(1), sub.next()).await else {
            continue;
        };
        let msg = jetstream::Message {
            message: msg,
            context: jetstream::new(client.clone()),
        };
        after.insert(msg.info().expect("JetStream message").stream_sequence);
        let _ = msg.ack_with(AckKind::Ack).await;
    }
    (stepdown, before, after)
}

#[tokio::test]
async fn a_durable_push_consumer_steps_down_and_survives_its_leader_as_on_nats_server() {
    let nats = push_failover_on(Nats).await;
    assert_eq!(nats.0["success"], true, "{nats:?}");
    assert_eq!(nats.1, (1..=5).collect(), "{nats:?}");
    assert_eq!(nats.2, (6..=8).collect(), "{nats:?}");
    let rill = push_failover_on(Rill).await;
    assert_eq!(rill, nats);
}

/// One `*.LEADER_ELECTED` advisory: subject, type, stream, consumer, leader, members.
type Elected = (String, String, String, String, String, usize);

/// The advisories a replicated stream and its durable consumer send when their groups
/// elect leaders: on create, and the consumer's again after a stepdown, naming the
/// leader that STREAM.INFO / CONSUMER.INFO show and every member.
async fn advisories_on(kind: ServerKind) -> (Elected, Elected, Elected) {
    let cluster = Cluster::jetstream(kind, 3).await;
    let n1 = cluster.node(0).client().await;
    let mut events = n1
        .subscribe("$JS.EVENT.ADVISORY.*.LEADER_ELECTED.>")
        .await
        .expect("subscribe");
    n1.flush().await.expect("flush");
    r3_stream(cluster.node(0), "E", "e", 1).await;
    let body = r#"{"stream_name":"E","config":{"durable_name":"ED","ack_policy":"explicit"}}"#;
    let created = api(&n1, "$JS.API.CONSUMER.DURABLE.CREATE.E.ED", body).await;
    assert!(created["error"].is_null(), "{kind:?}: {created}");
    let first = leader(&consumer_info(cluster.node(0), "E", "ED", |i| !leader(i).is_empty()).await);
    let stepdown = api(&n1, "$JS.API.CONSUMER.LEADER.STEPDOWN.E.ED", "").await;
    assert_eq!(stepdown["success"], true, "{kind:?}: {stepdown}");
    let second = leader(
        &consumer_info(cluster.node(0), "E", "ED", |i| {
            !leader(i).is_empty() && leader(i) != first
        })
        .await,
    );
    let stream_leader = crate::js_cluster::stream_leader(&cluster, "E").await;
    let mut seen: Vec<Elected> = Vec::new();
    let want = |seen: &[Elected]| {
        seen.iter()
            .any(|e| e.2 == "E" && e.3.is_empty() && e.4 == stream_leader)
            && seen.iter().any(|e| e.3 == "ED" && e.4 == first)
            && seen.iter().any(|e| e.3 == "ED" && e.4 == second)
    };
    let deadline = Instant::now() + ELECTION;
    while !want(&seen) && Instant::now() < deadline {
        let Ok(Some(msg)) = tokio::time::timeout(Duration::from_secs(1), events.next()).await
        else {
            continue;
        };
        let v: Value = serde_json::from_slice(&msg.payload).expect("JSON advisory");
        let text = |k: &str| v[k].as_str().unwrap_or_default().to_string();
        seen.push((
            msg.subject.to_string(),
            text("type"),
            text("stream"),
            text("consumer"),
            text("leader"),
            v["replicas"].as_array().map_or(0, Vec::len),
        ));
    }
    let pick = |f: &dyn Fn(&Elected) -> bool| {
        let e = seen.iter().find(|e| f(e)).cloned();
        let mut e = e.unwrap_or_else(|| panic!("{kind:?}: {seen:?}"));
        e.4 = String::from("<leader>");
        e
    };
    (
        pick(&|e| e.3.is_empty() && e.4 == stream_leader),
        pick(&|e| e.3 == "ED" && e.4 == first),
        pick(&|e| e.3 == "ED" && e.4 == second),
    )
}

#[tokio::test]
async fn leader_elected_advisories_as_nats_server() {
    let nats = advisories_on(Nats).await;
    assert_eq!(
        nats.0,
        (
            "$JS.EVENT.ADVISORY.STREAM.LEADER_ELECTED.E".into(),
            "io.nats.jetstream.advisory.v1.stream_leader_elected".into(),
            "E".into(),
            String::new(),
            "<leader>".into(),
            3
        )
    );
    assert_eq!(nats.1.0, "$JS.EVENT.ADVISORY.CONSUMER.LEADER_ELECTED.E.ED");
    assert_eq!(nats.1.5, 3);
    assert_eq!(nats.1, nats.2);
    let rill = advisories_on(Rill).await;
    assert_eq!(rill, nats);
}

/// One server's `/jsz?consumers=1` detail of a consumer, the volatile parts redacted:
/// whether this server leads it, and the members it lists compared with the other
/// servers' names.
fn jsz_detail(me: &str, all: &[String], d: &Value) -> Value {
    let cluster = &d["cluster"];
    let mut others: Vec<String> = cluster["replicas"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|p| p["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    others.sort();
    let expected: Vec<String> = all.iter().filter(|n| *n != me).cloned().collect();
    let leads = cluster["leader"] == me;
    // The leader hears from every member: `active` (ns since) is known for each.
    let active = cluster["replicas"].as_array().is_some_and(|r| {
        r.iter()
            .all(|p| p["active"].as_u64().is_some_and(|a| a > 0))
    });
    serde_json::json!({
        "leads": leads,
        "leader_hears_every_member": !leads || active,
        "name": d["name"],
        "stream_name": d["stream_name"],
        "delivered": d["delivered"]["stream_seq"],
        "ack_floor": d["ack_floor"]["stream_seq"],
        "num_ack_pending": d["num_ack_pending"],
        "num_pending": d["num_pending"],
        "cluster": {
            "name": cluster["name"],
            "raft_group": cluster["raft_group"].as_str().map(|g| g.chars().take(6).collect::<String>()),
            "leader_known": cluster["leader"].as_str().is_some_and(|l| all.iter().any(|n| n == l)),
            "lists_the_other_servers": others == expected,
        },
    })
}

/// Every server's `/jsz?consumers=1` view of stream J's durable JD after 3 of 5
/// messages were delivered and acked, and one more delivered (not acked), once the
/// followers applied it.
async fn jsz_on(kind: ServerKind) -> Vec<Value> {
    let cluster = Cluster::jetstream(kind, 3).await;
    r3_stream(cluster.node(0), "J", "j", 5).await;
    let client = cluster.node(0).client().await;
    let body = r#"{"stream_name":"J","config":{"durable_name":"JD","ack_policy":"explicit"}}"#;
    let created = api(&client, "$JS.API.CONSUMER.DURABLE.CREATE.J.JD", body).await;
    assert!(created["error"].is_null(), "{kind:?}: {created}");
    let c = pull_consumer(&client, "J", "JD").await;
    assert_eq!(
        fetch(&c, 3, Duration::from_secs(5), true).await,
        vec![1, 2, 3]
    );
    assert_eq!(fetch(&c, 1, Duration::from_secs(5), false).await, vec![4]);
    let all: Vec<String> = cluster.nodes.iter().map(|n| n.name().to_string()).collect();
    let mut views = Vec::new();
    for node in &cluster.nodes {
        let deadline = Instant::now() + ELECTION;
        loop {
            let jsz = node.monitor("/jsz?consumers=1").await;
            let detail = jsz["account_details"][0]["stream_detail"]
                .as_array()
                .and_then(|s| s.iter().find(|s| s["name"] == "J"))
                .and_then(|s| s["consumer_detail"].as_array())
                .and_then(|c| c.iter().find(|c| c["name"] == "JD"))
                .map(|d| jsz_detail(node.name(), &all, d));
            if let Some(d) = detail.filter(|d| d["delivered"] == 4 && d["ack_floor"] == 3) {
                views.push(d);
                break;
            }
            assert!(Instant::now() < deadline, "{kind:?} {}: {jsz}", node.name());
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    // The leader's view first (its num_pending counts the stream; a follower's is 0).
    views.sort_by_key(|v| v["leads"] != true);
    views
}

#[tokio::test]
async fn jsz_lists_replicated_consumers_on_every_member_as_nats_server() {
    let nats = jsz_on(Nats).await;
    insta::assert_json_snapshot!("js_cluster_jsz_consumer_detail", nats);
    let rill = jsz_on(Rill).await;
    assert_eq!(rill, nats);
}
