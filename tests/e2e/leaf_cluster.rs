//! Leaf nodes and routes together: a leaf attached to one server of a two-server rill
//! cluster hears the interest of the whole cluster and the cluster hears the leaf's, so
//! messages cross route and leaf link in both directions, queue groups included (a
//! queue group whose members are all on the leaf gets each message from the far server
//! once). Run with a rill leaf and with a nats-server leaf.

use bytes::Bytes;
use futures::StreamExt;
use rill_tests::ServerKind::{self, Nats, Rill};
use rill_tests::cluster::{Cluster, NodeSpec};

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
