//! Replicated consumers' bookkeeping on R3 streams (issue 20), three nats-server 2.15.1
//! first, then three rill servers, with the same checks:
//! - interest and work-queue retention: an ack on a replicated consumer removes the
//!   message on every replica of the stream, so whichever server leads the stream after
//!   a failover holds no acked message; every consumer of such a stream has the
//!   stream's replicas (another count is refused, 10134; an ephemeral is R3 too);
//! - every replica counts every replicated consumer (STREAM.INFO, $JS.API.INFO);
//!   ephemerals get the replicas they ask for; a replicated ephemeral that is inactive
//!   is removed everywhere and stays removed; CONSUMER.LEADER.STEPDOWN's refusals.
//!
//! Each server's view is read by making it the stream's leader in turn.

use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use rill_tests::ServerKind::{self, Nats, Rill};
use rill_tests::cluster::{Cluster, ELECTION, api, create_replicated};
use serde_json::Value;

use crate::js_cluster_leader::{each_replica, publish};

/// Creates durable pull consumer `name` of `stream` (explicit acks, `filter` if any).
async fn durable(client: &async_nats::Client, stream: &str, name: &str, filter: &str) {
    let body = format!(
        r#"{{"stream_name":"{stream}","config":{{"durable_name":"{name}","ack_policy":"explicit","filter_subject":"{filter}"}}}}"#
    );
    let created = api(
        client,
        &format!("$JS.API.CONSUMER.CREATE.{stream}.{name}"),
        &body,
    )
    .await;
    assert!(created["error"].is_null(), "{created}");
}

/// Fetches messages of consumer `name` until `want` were acked (each ack answered by
/// the server); acks those whose stream sequence `ack` accepts and leaves the others.
async fn ack_where(
    client: &async_nats::Client,
    stream: &str,
    name: &str,
    want: usize,
    ack: impl Fn(u64) -> bool,
) {
    let js = jetstream::new(client.clone());
    let c: consumer::PullConsumer = js
        .get_consumer_from_stream(name, stream)
        .await
        .expect("consumer");
    let mut acked = 0;
    let deadline = Instant::now() + ELECTION;
    while acked < want {
        assert!(Instant::now() < deadline, "{name}: {acked} of {want} acked");
        let Ok(mut batch) = c
            .fetch()
            .max_messages(10)
            .expires(Duration::from_secs(1))
            .messages()
            .await
        else {
            continue;
        };
        while let Some(Ok(msg)) = batch.next().await {
            if ack(msg.info().expect("JetStream message").stream_sequence) {
                msg.double_ack().await.expect("ack answered");
                acked += 1;
            }
        }
    }
}

/// The stream's state as its leader reports it, times and bytes left out (the
/// publishes' `Nats-Msg-Id` headers count on from one kind of server to the next).
async fn state(client: &async_nats::Client, stream: &str) -> Value {
    let info = api(client, &format!("$JS.API.STREAM.INFO.{stream}"), "").await;
    let mut state = info["state"].clone();
    for time in ["first_ts", "last_ts", "bytes"] {
        state.as_object_mut().expect("state").remove(time);
    }
    state
}

/// The state of `stream` with each server as its leader: each waits (bounded) until it
/// shows `expected`, the first leader's state once the acks were answered.
async fn every_replica(cluster: &Cluster, stream: &str, expected: &Value) -> Vec<Value> {
    each_replica(cluster, stream, |client| async move {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let seen = state(&client, stream).await;
            if &seen == expected || Instant::now() > deadline {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
}

/// What one kind of server showed.
#[derive(Debug, PartialEq)]
struct Seen {
    work_queue: Vec<Value>,
    interest: Vec<Value>,
    r1_refused: Value,
    ephemeral_group: String,
    ephemeral_replicas: usize,
}

async fn retention_on(kind: ServerKind) -> Seen {
    let cluster = Cluster::jetstream(kind, 3).await;
    let client = cluster.node(0).client().await;
    let wq = r#"{"name":"WQ","subjects":["wq.>"],"retention":"workqueue","num_replicas":3}"#;
    create_replicated(&client, "WQ", wq).await;
    let interest = r#"{"name":"IN","subjects":["in.>"],"retention":"interest","num_replicas":3}"#;
    create_replicated(&client, "IN", interest).await;

    // Work queue: 6 messages, 4 acked.
    durable(&client, "WQ", "W", "").await;
    for i in 1..=6 {
        assert_eq!(publish(&client, &format!("wq.{i}")).await, Some(i));
    }
    ack_where(&client, "WQ", "W", 4, |s| s <= 4).await;

    // Interest: a message before any consumer is not kept; A wants everything, B
    // only in.b. A acks all, B acks two of its four: what is left is B's other two.
    assert_eq!(publish(&client, "in.x").await, Some(1));
    durable(&client, "IN", "A", "").await;
    durable(&client, "IN", "B", "in.b").await;
    for (i, subject) in ["in.a", "in.a", "in.b", "in.b", "in.b", "in.b"]
        .iter()
        .enumerate()
    {
        assert_eq!(publish(&client, subject).await, Some(i as u64 + 2));
    }
    ack_where(&client, "IN", "A", 6, |_| true).await;
    ack_where(&client, "IN", "B", 2, |s| s <= 5).await;

    // Consumers of an interest stream have the stream's replicas.
    let r1 = r#"{"stream_name":"IN","config":{"durable_name":"R1","ack_policy":"explicit","num_replicas":1}}"#;
    let refused = api(&client, "$JS.API.CONSUMER.CREATE.IN.R1", r1).await;
    let eph = r#"{"stream_name":"IN","config":{"ack_policy":"explicit","inactive_threshold":60000000000}}"#;
    let eph = api(&client, "$JS.API.CONSUMER.CREATE.IN", eph).await;
    assert!(eph["error"].is_null(), "{kind:?}: {eph}");

    let first = state(&client, "WQ").await;
    let work_queue = every_replica(&cluster, "WQ", &first).await;
    let first = state(&client, "IN").await;
    let interest = every_replica(&cluster, "IN", &first).await;
    Seen {
        work_queue,
        interest,
        r1_refused: refused["error"].clone(),
        ephemeral_group: eph["cluster"]["raft_group"]
            .as_str()
            .unwrap_or_default()
            .chars()
            .take(6)
            .collect(),
        ephemeral_replicas: eph["cluster"]["replicas"].as_array().map_or(0, Vec::len),
    }
}

#[tokio::test]
async fn acked_messages_leave_every_replica_as_on_nats_server() {
    let nats = retention_on(Nats).await;
    for s in &nats.work_queue {
        assert_eq!(
            (&s["messages"], &s["first_seq"]),
            (&2.into(), &5.into()),
            "{nats:?}"
        );
    }
    for s in &nats.interest {
        assert_eq!(
            (&s["messages"], &s["first_seq"]),
            (&2.into(), &6.into()),
            "{nats:?}"
        );
    }
    assert_eq!(nats.r1_refused["err_code"], 10134, "{nats:?}");
    assert_eq!(
        (nats.ephemeral_group.as_str(), nats.ephemeral_replicas),
        ("C-R3F-", 2)
    );
    let rill = retention_on(Rill).await;
    assert_eq!(rill, nats);
}

/// What one kind of server showed of replicated consumers' bookkeeping.
#[derive(Debug, PartialEq)]
struct Kept {
    /// raft_group prefix and members other than the leader, for an ephemeral of
    /// num_replicas 3, 2, 0 and 1.
    ephemerals: Vec<(String, usize)>,
    /// STREAM.INFO consumer_count with each server as the stream's leader (a durable
    /// and the R3 and R2 ephemerals).
    counted: Vec<Value>,
    /// $JS.API.INFO `consumers` on each server.
    account: Vec<Value>,
    /// CONSUMER.LEADER.STEPDOWN errors: an unknown server, the leader itself, a cluster
    /// with no server, tags no server has, a body that is not JSON.
    stepdowns: Vec<Value>,
    /// CONSUMER.NAMES count and STREAM.INFO consumer_count with each server as the
    /// stream's leader, once the inactive ephemerals are gone.
    left: Vec<(usize, Value)>,
}

/// An ephemeral consumer of `stream` with `num_replicas` and `inactive` ns; its answer.
async fn ephemeral(
    client: &async_nats::Client,
    stream: &str,
    replicas: u64,
    inactive: u64,
) -> Value {
    let body = format!(
        r#"{{"stream_name":"{stream}","config":{{"ack_policy":"explicit","num_replicas":{replicas},"inactive_threshold":{inactive}}}}}"#
    );
    let created = api(client, &format!("$JS.API.CONSUMER.CREATE.{stream}"), &body).await;
    assert!(created["error"].is_null(), "{created}");
    created
}

/// The group prefix and the members other than the leader of a created consumer.
fn group(created: &Value) -> (String, usize) {
    let group = created["cluster"]["raft_group"]
        .as_str()
        .unwrap_or_default();
    let members = created["cluster"]["replicas"]
        .as_array()
        .map_or(0, Vec::len);
    (group.chars().take(6).collect(), members)
}

/// The consumers' names of stream `K`.
async fn names(client: &async_nats::Client) -> Vec<Value> {
    let names = api(client, "$JS.API.CONSUMER.NAMES.K", "").await;
    names["consumers"].as_array().cloned().unwrap_or_default()
}

async fn bookkeeping_on(kind: ServerKind) -> Kept {
    const LONG: u64 = 60_000_000_000;
    const SHORT: u64 = 1_000_000_000;
    let cluster = Cluster::jetstream(kind, 3).await;
    let client = cluster.node(0).client().await;
    let body = r#"{"name":"K","subjects":["k.>"],"num_replicas":3}"#;
    create_replicated(&client, "K", body).await;
    assert_eq!(publish(&client, "k.1").await, Some(1));
    durable(&client, "K", "D", "").await;
    let mut ephemerals = Vec::new();
    for replicas in [3, 2] {
        ephemerals.push(group(&ephemeral(&client, "K", replicas, LONG).await));
    }
    let count = |client: async_nats::Client| async move {
        state(&client, "K").await["consumer_count"].clone()
    };
    let counted = each_replica(&cluster, "K", count).await;
    let mut account = Vec::new();
    for node in &cluster.nodes {
        let info = api(&node.client().await, "$JS.API.INFO", "").await;
        account.push(info["consumers"].clone());
    }

    let info = api(&client, "$JS.API.CONSUMER.INFO.K.D", "").await;
    let leader = info["cluster"]["leader"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut stepdowns = Vec::new();
    for body in [
        r#"{"placement":{"preferred":"nowhere"}}"#.to_string(),
        format!(r#"{{"placement":{{"preferred":"{leader}"}}}}"#),
        r#"{"placement":{"cluster":"elsewhere"}}"#.to_string(),
        r#"{"placement":{"tags":["nowhere"]}}"#.to_string(),
    ] {
        let answer = api(&client, "$JS.API.CONSUMER.LEADER.STEPDOWN.K.D", &body).await;
        let error = answer["error"].to_string().replace(&leader, "<leader>");
        stepdowns.push(serde_json::from_str(&error).expect("JSON"));
    }
    let junk = api(&client, "$JS.API.CONSUMER.LEADER.STEPDOWN.K.D", "junk").await;
    stepdowns.push(junk);

    // Ephemerals inactive for a second expire, the replicated one by its group's
    // leader; no stream or consumer leader brings it back.
    ephemerals.push(group(&ephemeral(&client, "K", 0, SHORT).await));
    let short = ephemeral(&client, "K", 3, SHORT).await;
    let short_name = short["name"].clone();
    ephemerals.push(group(&short));
    let deadline = Instant::now() + ELECTION;
    while names(&client).await.len() != 3 {
        assert!(
            Instant::now() < deadline,
            "{kind:?}: {:?}",
            names(&client).await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let left = |client: async_nats::Client| {
        let short_name = short_name.clone();
        async move {
            let names = names(&client).await;
            assert!(
                !names.contains(&short_name),
                "{kind:?}: {short_name} is back"
            );
            (
                names.len(),
                state(&client, "K").await["consumer_count"].clone(),
            )
        }
    };
    let left = each_replica(&cluster, "K", left).await;
    Kept {
        ephemerals,
        counted,
        account,
        stepdowns,
        left,
    }
}

#[tokio::test]
async fn replicated_consumers_are_counted_expire_and_step_down_as_nats_server() {
    let nats = bookkeeping_on(Nats).await;
    assert_eq!(nats.counted, vec![Value::from(3); 3], "{nats:?}");
    assert_eq!(nats.left, vec![(3, Value::from(3)); 3], "{nats:?}");
    let rill = bookkeeping_on(Rill).await;
    assert_eq!(rill, nats);
}
