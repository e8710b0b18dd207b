//! Streams of one replica in a JetStream cluster, as nats-server runs them: the stream
//! lives on one server (the one that took its create), and clients on every server use
//! it. Stream info, publishes, pull and push consumers, acks, KV puts, gets and watches
//! all work from any member, and the name is taken cluster-wide. The same steps run
//! against three nats-server 2.15.1 and three rill servers and must give the same
//! answers.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, kv, stream};
use bytes::Bytes;
use futures::StreamExt;
use rill_tests::ServerKind::{self, Nats, Rill};
use rill_tests::cluster::Cluster;

/// How long the meta group may take to elect its first leader, and an answer to come.
const WAIT: Duration = Duration::from_secs(15);

/// Creates `config` through `js`, retrying while the meta group elects its first leader.
async fn create_when_ready(js: &jetstream::Context, config: stream::Config) -> stream::Stream {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match js.create_stream(config.clone()).await {
            Ok(stream) => return stream,
            Err(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("stream create: {e}"),
        }
    }
}

/// What the steps saw, compared between the two kinds of server.
#[derive(Debug, PartialEq)]
struct Seen {
    leader_is_creator: bool,
    info_elsewhere: (String, u64),
    acks: Vec<u64>,
    second_create: String,
    fetched: Vec<Bytes>,
    after_acks: (usize, u64),
    names: Vec<String>,
    pushed: Vec<Bytes>,
    kv: (Bytes, Bytes),
    deleted: String,
}

/// Three servers of `kind`, a client and a JetStream context on each, and the stream
/// `ORDERS` (`orders.>`, one replica) created through n1.
async fn orders_on_three(
    kind: ServerKind,
) -> (
    Cluster,
    Vec<async_nats::Client>,
    Vec<jetstream::Context>,
    stream::Stream,
) {
    let cluster = Cluster::jetstream(kind, 3).await;
    let mut clients = Vec::new();
    for node in &cluster.nodes {
        clients.push(node.client().await);
    }
    let js: Vec<jetstream::Context> = clients.iter().cloned().map(jetstream::new).collect();
    let config = stream::Config {
        name: "ORDERS".into(),
        subjects: vec!["orders.>".into()],
        ..Default::default()
    };
    let created = create_when_ready(&js[0], config).await;
    (cluster, clients, js, created)
}

async fn r1_stream_from_every_member(kind: ServerKind) -> Seen {
    let (_cluster, clients, js, mut created) = orders_on_three(kind).await;
    let leader = created.info().await.expect("info").cluster.clone();
    let leader_is_creator = leader.and_then(|c| c.leader).as_deref() == Some("n1");

    // Another member answers about it and takes its publishes.
    let mut elsewhere = js[1].get_stream("ORDERS").await.expect("info on n2");
    let info = elsewhere.info().await.expect("info on n2");
    let info_elsewhere = (info.config.name.clone(), info.state.messages);
    let mut acks = Vec::new();
    for (i, j) in [(2, &js[2]), (1, &js[1])] {
        let ack = j
            .publish(
                format!("orders.{i}"),
                Bytes::from(format!("order via n{}", i + 1)),
            )
            .await
            .expect("publish")
            .await
            .expect("ack");
        acks.push(ack.sequence);
    }
    // The name is taken in the whole cluster.
    let other = stream::Config {
        name: "ORDERS".into(),
        subjects: vec!["other.>".into()],
        ..Default::default()
    };
    let second_create = match js[1].create_stream(other).await {
        Ok(_) => "created twice".to_string(),
        Err(e) => e.kind().to_string(),
    };

    // A pull consumer made, fetched and acked through n2; its state read through n3.
    let orders = js[1].get_stream("ORDERS").await.expect("stream on n2");
    let pull: consumer::PullConsumer = orders
        .create_consumer(consumer::pull::Config {
            durable_name: Some("D".into()),
            ..Default::default()
        })
        .await
        .expect("pull consumer via n2");
    let mut batch = pull
        .fetch()
        .max_messages(2)
        .expires(Duration::from_secs(5))
        .messages()
        .await
        .expect("fetch via n2");
    let mut fetched = Vec::new();
    while let Some(m) = batch.next().await {
        let m = m.expect("message");
        fetched.push(m.payload.clone());
        m.double_ack().await.expect("ack");
    }
    let mut on_n3: consumer::PullConsumer = js[2]
        .get_consumer_from_stream("D", "ORDERS")
        .await
        .expect("consumer via n3");
    let state = on_n3.info().await.expect("consumer info via n3");
    let after_acks = (state.num_ack_pending, state.ack_floor.stream_sequence);
    let mut names: Vec<String> = created
        .consumer_names()
        .map(|n| n.expect("name"))
        .collect()
        .await;
    names.sort();

    // A push consumer made through n3 delivers to a subscriber on n3.
    let mut deliveries = clients[2].subscribe("deliver.orders").await.expect("sub");
    js[2]
        .get_stream("ORDERS")
        .await
        .expect("stream on n3")
        .create_consumer(consumer::push::Config {
            durable_name: Some("P".into()),
            deliver_subject: "deliver.orders".into(),
            ack_policy: consumer::AckPolicy::Explicit,
            ..Default::default()
        })
        .await
        .expect("push consumer via n3");
    let mut pushed = Vec::new();
    for _ in 0..2 {
        let m = tokio::time::timeout(WAIT, deliveries.next())
            .await
            .expect("a push delivery in time")
            .expect("subscription open");
        pushed.push(m.payload.clone());
        let reply = m.reply.expect("ack reply");
        clients[2].publish(reply, Bytes::new()).await.expect("ack");
    }

    // A KV bucket made through n3, written through n1, read and watched through n3.
    let bucket = js[2]
        .create_key_value(kv::Config {
            bucket: "CFG".into(),
            ..Default::default()
        })
        .await
        .expect("bucket via n3");
    let mut watch = bucket.watch("mode").await.expect("watch via n3");
    let writer = js[0].get_key_value("CFG").await.expect("bucket via n1");
    writer
        .put("mode", Bytes::from_static(b"fast"))
        .await
        .expect("put via n1");
    let got = js[1]
        .get_key_value("CFG")
        .await
        .expect("bucket via n2")
        .get("mode")
        .await
        .expect("get via n2")
        .expect("a value");
    let watched = tokio::time::timeout(WAIT, watch.next())
        .await
        .expect("a watch entry in time")
        .expect("watch open")
        .expect("entry");

    // Deleted through n1, gone for n2.
    created.delete_consumer("D").await.expect("delete via n1");
    let deleted = match js[1]
        .get_consumer_from_stream::<consumer::pull::Config, _, _>("D", "ORDERS")
        .await
    {
        Ok(_) => "still there".to_string(),
        Err(e) => e.kind().to_string(),
    };
    Seen {
        leader_is_creator,
        info_elsewhere,
        acks,
        second_create,
        fetched,
        after_acks,
        names,
        pushed,
        kv: (got, watched.value),
        deleted,
    }
}

#[tokio::test]
async fn r1_streams_serve_every_cluster_member_as_nats_server() {
    let nats = r1_stream_from_every_member(Nats).await;
    let rill = r1_stream_from_every_member(Rill).await;
    assert_eq!(nats.info_elsewhere, ("ORDERS".to_string(), 0));
    assert_eq!(nats.acks, [1, 2]);
    assert_eq!(nats.fetched.len(), 2);
    assert_eq!(nats.after_acks, (0, 2));
    assert_eq!(nats.kv.0, Bytes::from_static(b"fast"));
    // nats-server places a stream of one replica anywhere; rill keeps it on the server
    // that took the create.
    assert!(rill.leader_is_creator, "{rill:?}");
    assert_eq!(
        Seen {
            leader_is_creator: rill.leader_is_creator,
            ..nats
        },
        rill
    );
}

/// What a push consumer's subscriber on another member saw and left behind.
#[derive(Debug, PartialEq)]
struct AckedElsewhere {
    delivered: Vec<Bytes>,
    /// `num_ack_pending`, ack floor and `num_redelivered` once every ack went in.
    after_acks: (usize, u64, usize),
}

/// An explicit-ack push consumer whose subscriber sits on another member than the
/// stream: deliveries cross a route one way and acks the other, and the acks must
/// reach the consumer (nothing stays pending, nothing is redelivered).
async fn push_acked_from_another_member(kind: ServerKind) -> AckedElsewhere {
    let (cluster, clients, js, mut created) = orders_on_three(kind).await;
    let info = created.info().await.expect("stream info");
    let leader = info
        .cluster
        .clone()
        .and_then(|c| c.leader)
        .expect("a leader");
    let home = cluster
        .nodes
        .iter()
        .position(|n| n.name() == leader)
        .expect("the leader is a member");
    let away = (home + 1) % cluster.nodes.len();

    let mut deliveries = clients[away].subscribe("deliver.acked").await.expect("sub");
    clients[away].flush().await.expect("flush");
    cluster.nodes[home]
        .wait_interest(cluster.nodes[away].name(), "deliver.acked")
        .await;
    js[home]
        .get_stream("ORDERS")
        .await
        .expect("stream on its leader")
        .create_consumer(consumer::push::Config {
            durable_name: Some("P".into()),
            deliver_subject: "deliver.acked".into(),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: Duration::from_secs(2),
            ..Default::default()
        })
        .await
        .expect("push consumer");
    for i in 1..=3 {
        js[home]
            .publish(format!("orders.{i}"), Bytes::from(format!("o{i}")))
            .await
            .expect("publish")
            .await
            .expect("ack");
    }
    let mut delivered = Vec::new();
    for _ in 0..3 {
        let m = tokio::time::timeout(WAIT, deliveries.next())
            .await
            .expect("a push delivery in time")
            .expect("subscription open");
        delivered.push(m.payload.clone());
        let reply = m.reply.expect("ack reply");
        clients[away]
            .publish(reply, Bytes::new())
            .await
            .expect("ack");
    }
    clients[away].flush().await.expect("flush");

    // The acks travel back over the route: wait (bounded) for the consumer to see them,
    // then past one ack_wait, so an unacked message would have been redelivered.
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut consumer: consumer::PushConsumer = created
        .get_consumer("P")
        .await
        .expect("consumer on the leader");
    loop {
        let state = consumer.info().await.expect("consumer info");
        if state.num_ack_pending == 0 || tokio::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let state = consumer.info().await.expect("consumer info");
    AckedElsewhere {
        delivered,
        after_acks: (
            state.num_ack_pending,
            state.ack_floor.stream_sequence,
            state.num_redelivered,
        ),
    }
}

#[tokio::test]
async fn push_acks_from_another_member_reach_the_consumer_as_nats_server() {
    let nats = push_acked_from_another_member(Nats).await;
    assert_eq!(nats.after_acks, (0, 3, 0), "{nats:?}");
    let rill = push_acked_from_another_member(Rill).await;
    assert_eq!(rill, nats);
}
