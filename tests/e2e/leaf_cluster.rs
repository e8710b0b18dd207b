//! Leaf nodes and routes together: a leaf attached to one server of a two-server rill
//! cluster hears the interest of the whole cluster and the cluster hears the leaf's, so
//! messages cross route and leaf link in both directions, queue groups included (a
//! queue group whose members are all on the leaf gets each message from the far server
//! once). Run with a rill leaf and with a nats-server leaf; and in a mixed cluster (a
//! nats-server and a rill server) with a leaf on each member, of either kind. Also a
//! JetStream push consumer's deliveries to a subscriber on another cluster member.

use bytes::Bytes;
use futures::StreamExt;
use rill_tests::ServerKind::{self, Nats, Rill};
use rill_tests::cluster::{Cluster, NodeSpec};
use rill_tests::free_port;

use crate::leaf::{WAIT, leaf, next, wait_interest, wait_linked};

async fn leaf_of_a_cluster(leaf_kind: ServerKind) {
    let cluster = Cluster::start_with(&[Rill, Rill], |spec: NodeSpec| NodeSpec {
        config: (spec.name == "n1").then(|| "leafnodes { listen: \"127.0.0.1:-1\" }\n".into()),
        ..spec
    })
    .await;
    let (n1, n2) = (&cluster.nodes[0], &cluster.nodes[1]);
    let port = n1.ports().leafnodes.expect("n1 leaf port");
    let edge = leaf(
        leaf_kind,
        "edge",
        &format!("url: \"nats-leaf://127.0.0.1:{port}\""),
        "",
    )
    .await;
    wait_linked(&edge, 1).await;
    let (far, l) = (n2.client().await, edge.client().await);

    // Leaf subscriber, publisher on the server the leaf is not attached to.
    let mut down = l.subscribe("down").await.expect("leaf sub");
    wait_interest(&l, &far).await;
    far.publish("down", Bytes::from_static(b"from n2"))
        .await
        .expect("pub");
    assert_eq!(
        next(&mut down).await.payload,
        Bytes::from_static(b"from n2")
    );

    // Subscriber on n2, publisher on the leaf.
    let mut up = far.subscribe("up").await.expect("n2 sub");
    wait_interest(&far, &l).await;
    l.publish("up", Bytes::from_static(b"from edge"))
        .await
        .expect("pub");
    assert_eq!(
        next(&mut up).await.payload,
        Bytes::from_static(b"from edge")
    );

    // A queue group with members on the leaf only: each message from n2 once.
    let mut q1 = l.queue_subscribe("work", "q".into()).await.expect("qsub");
    let mut q2 = l.queue_subscribe("work", "q".into()).await.expect("qsub");
    wait_interest(&l, &far).await;
    for i in 0..20 {
        far.publish("work", Bytes::from(format!("{i}")))
            .await
            .expect("pub");
    }
    far.flush().await.expect("flush");
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while seen.len() < 20 && tokio::time::Instant::now() < deadline {
        tokio::select! {
            Some(m) = q1.next() => seen.push(m.payload),
            Some(m) = q2.next() => seen.push(m.payload),
            _ = tokio::time::sleep(std::time::Duration::from_millis(200)) => {}
        }
    }
    let extra = tokio::time::timeout(std::time::Duration::from_millis(300), async {
        tokio::select! { m = q1.next() => m, m = q2.next() => m }
    })
    .await;
    assert_eq!(seen.len(), 20, "each queued message reached the leaf");
    assert!(extra.is_err(), "a queued message arrived twice");

    // The leaf's interest goes when its subscriber does.
    drop(down);
    l.flush().await.expect("flush");
    n2.wait_no_interest("down").await;
}

#[tokio::test]
async fn a_rill_leaf_of_one_cluster_member_reaches_the_whole_cluster() {
    leaf_of_a_cluster(Rill).await;
}

#[tokio::test]
async fn a_nats_server_leaf_of_one_cluster_member_reaches_the_whole_cluster() {
    leaf_of_a_cluster(Nats).await;
}

/// A mixed cluster, a nats-server (n1) and a rill server (n2), with a leaf on each:
/// messages go leaf -> member -> route -> member -> leaf both ways, request/reply with
/// the service on one leaf and the requester on the other, and a queue group with
/// members on both leafs gets each message published on n1 once.
async fn leafs_of_a_mixed_cluster(on_nats: ServerKind, on_rill: ServerKind) {
    let ports = [free_port(), free_port()];
    let cluster = Cluster::start_with(&[Nats, Rill], |spec: NodeSpec| {
        let port = if spec.name == "n1" {
            ports[0]
        } else {
            ports[1]
        };
        NodeSpec {
            config: Some(format!("leafnodes {{ listen: \"127.0.0.1:{port}\" }}\n")),
            ..spec
        }
    })
    .await;
    let n1 = &cluster.nodes[0];
    let remote = |port: u16| format!("url: \"nats-leaf://127.0.0.1:{port}\"");
    let a = leaf(on_nats, "edge-a", &remote(ports[0]), "").await;
    let b = leaf(on_rill, "edge-b", &remote(ports[1]), "").await;
    wait_linked(&a, 1).await;
    wait_linked(&b, 1).await;
    let (ca, cb, c1) = (a.client().await, b.client().await, n1.client().await);

    // Both ways between the two leafs, across both members and the route.
    let mut on_b = cb.subscribe("b.in").await.expect("sub");
    wait_interest(&cb, &ca).await;
    ca.publish("b.in", Bytes::from_static(b"a to b"))
        .await
        .expect("pub");
    assert_eq!(next(&mut on_b).await.payload, Bytes::from_static(b"a to b"));
    let mut on_a = ca.subscribe("a.in").await.expect("sub");
    wait_interest(&ca, &cb).await;
    cb.publish("a.in", Bytes::from_static(b"b to a"))
        .await
        .expect("pub");
    assert_eq!(next(&mut on_a).await.payload, Bytes::from_static(b"b to a"));

    // A service on leaf a answers a requester on leaf b.
    let mut service = ca.subscribe("svc.time").await.expect("service");
    wait_interest(&ca, &cb).await;
    let responder = {
        let ca = ca.clone();
        tokio::spawn(async move {
            let req = next(&mut service).await;
            let reply = req.reply.expect("a reply subject");
            ca.publish(reply, Bytes::from_static(b"noon"))
                .await
                .expect("reply");
            ca.flush().await.expect("flush");
        })
    };
    let answer = tokio::time::timeout(WAIT, cb.request("svc.time", Bytes::new()))
        .await
        .expect("answer in time")
        .expect("answer");
    assert_eq!(answer.payload, Bytes::from_static(b"noon"));
    responder.await.expect("responder");

    // A queue group with a member on each leaf: each message from n1 goes to one.
    let mut qa = ca
        .queue_subscribe("jobs", "workers".into())
        .await
        .expect("qsub");
    let mut qb = cb
        .queue_subscribe("jobs", "workers".into())
        .await
        .expect("qsub");
    wait_interest(&ca, &c1).await;
    wait_interest(&cb, &c1).await;
    for i in 0..40 {
        c1.publish("jobs", Bytes::from(format!("{i}")))
            .await
            .expect("pub");
    }
    c1.flush().await.expect("flush");
    let mut seen = std::collections::BTreeMap::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while seen.values().sum::<u32>() < 40 && tokio::time::Instant::now() < deadline {
        tokio::select! {
            Some(m) = qa.next() => *seen.entry(m.payload).or_insert(0) += 1,
            Some(m) = qb.next() => *seen.entry(m.payload).or_insert(0) += 1,
            _ = tokio::time::sleep(std::time::Duration::from_millis(200)) => {}
        }
    }
    let extra = tokio::time::timeout(std::time::Duration::from_millis(300), async {
        tokio::select! { m = qa.next() => m, m = qb.next() => m }
    })
    .await;
    assert_eq!(seen.len(), 40, "every queued message reached a leaf");
    assert!(
        seen.values().all(|&n| n == 1),
        "a queued message arrived twice"
    );
    assert!(extra.is_err(), "a queued message arrived twice");
}

#[tokio::test]
async fn rill_leafs_of_a_mixed_nats_server_and_rill_cluster() {
    leafs_of_a_mixed_cluster(Rill, Rill).await;
}

#[tokio::test]
async fn nats_server_leafs_of_a_mixed_nats_server_and_rill_cluster() {
    leafs_of_a_mixed_cluster(Nats, Nats).await;
}

#[tokio::test]
async fn crossed_leafs_of_a_mixed_nats_server_and_rill_cluster() {
    leafs_of_a_mixed_cluster(Rill, Nats).await;
}

/// A JetStream push consumer on a rill cluster member delivers to a subscriber on a
/// member without JetStream, a nats-server or a rill server: over the route the delivery
/// travels under its deliver subject with the stored subject after its ack reply, as
/// nats-server sends it, and the subscriber sees the stored subject. Its acks travel
/// back over the route to the consumer: nothing stays pending, nothing is redelivered.
/// (The two rill servers with JetStream form the meta group; JetStream in a cluster
/// needs peers with JetStream, on nats-server too.)
async fn push_deliveries_cross_a_route(peer: ServerKind) {
    let cluster = Cluster::start_with(&[Rill, Rill, peer], |spec: NodeSpec| NodeSpec {
        jetstream: spec.name != "n3",
        ..spec
    })
    .await;
    let (n1, n2) = (&cluster.nodes[0], &cluster.nodes[2]);
    let (c1, c2) = (n1.client().await, n2.client().await);
    let mut deliveries = c2.subscribe("deliver.orders").await.expect("sub");
    wait_interest(&c2, &c1).await;
    let js = async_nats::jetstream::new(c1);
    // The meta group elects its leader within seconds of the start.
    let deadline = tokio::time::Instant::now() + WAIT;
    let stream = loop {
        let config = async_nats::jetstream::stream::Config {
            name: "ORDERS".into(),
            subjects: vec!["orders.>".into()],
            ..Default::default()
        };
        match js.create_stream(config).await {
            Ok(stream) => break stream,
            Err(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            Err(e) => panic!("stream create: {e}"),
        }
    };
    stream
        .create_consumer(async_nats::jetstream::consumer::push::Config {
            durable_name: Some("SHIP".into()),
            deliver_subject: "deliver.orders".into(),
            ack_policy: async_nats::jetstream::consumer::AckPolicy::Explicit,
            ack_wait: std::time::Duration::from_secs(1),
            ..Default::default()
        })
        .await
        .expect("push consumer");
    for i in 0..5 {
        js.publish(format!("orders.{i}"), Bytes::from(format!("order {i}")))
            .await
            .expect("publish")
            .await
            .expect("ack");
    }
    for i in 0..5 {
        let m = next(&mut deliveries).await;
        assert_eq!(m.subject.as_str(), format!("orders.{i}"));
        assert_eq!(m.payload, Bytes::from(format!("order {i}")));
        let reply = m.reply.expect("an ack reply");
        assert!(
            reply.starts_with("$JS.ACK.ORDERS.SHIP.") && !reply.contains('@'),
            "{reply}"
        );
        c2.publish(reply, Bytes::new()).await.expect("ack");
    }
    c2.flush().await.expect("flush");
    acks_reach_the_consumer(&js).await;
    // Past ack_wait: an unacked delivery would come again.
    let quiet = tokio::time::timeout(std::time::Duration::from_millis(1500), deliveries.next());
    assert!(quiet.await.is_err(), "an acked message was redelivered");
}

/// Waits (bounded) until the consumer SHIP has every one of its 5 deliveries acked.
async fn acks_reach_the_consumer(js: &async_nats::jetstream::Context) {
    let mut consumer: async_nats::jetstream::consumer::PushConsumer = js
        .get_consumer_from_stream("SHIP", "ORDERS")
        .await
        .expect("consumer");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let info = consumer.info().await.expect("consumer info");
        if info.ack_floor.stream_sequence == 5 && info.num_ack_pending == 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "acks did not reach the consumer: ack floor {:?}, {} pending",
            info.ack_floor,
            info.num_ack_pending
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn push_deliveries_reach_a_nats_server_cluster_peer() {
    push_deliveries_cross_a_route(Nats).await;
}

#[tokio::test]
async fn push_deliveries_reach_a_rill_cluster_peer() {
    push_deliveries_cross_a_route(Rill).await;
}
