//! A server with routes or a leaf-node listener exits at once on SIGTERM, as nats-server
//! 2.15.1 does (a few ms): rill waited 5 s for its own route and leaf tables, then logged
//! 'Some connections did not close in time'. nats.py's
//! `test_cluster_reconnect_sequential_shutdown` stops cluster members one by one and
//! waits for its client to reconnect only once the stopped process has exited: its
//! client had long reconnected by then, so the test missed the event.

use std::time::{Duration, Instant};

use rill_tests::ServerKind;
use rill_tests::cluster::Cluster;

use super::BOTH;
use crate::leaf;

/// More than nats-server ever needs here, well under the 5 s rill waited.
const PROMPTLY: Duration = Duration::from_secs(3);

/// How long the first member of a three-server cluster takes to exit after SIGTERM.
async fn cluster_member_stop(kind: ServerKind) -> Duration {
    let mut cluster = Cluster::start(&[kind; 3]).await;
    let client = cluster.node(0).client().await;
    client.flush().await.expect("flush");
    let node = &mut cluster.nodes[0];
    let start = Instant::now();
    node.signal("-TERM");
    while !node.exited() && start.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let took = start.elapsed();
    assert!(
        !node.logs().contains("did not close in time"),
        "{kind:?}: {}",
        node.logs()
    );
    took
}

#[tokio::test]
async fn a_cluster_member_exits_at_once_on_sigterm_as_nats_server() {
    for kind in BOTH {
        let took = cluster_member_stop(kind).await;
        assert!(took < PROMPTLY, "{kind:?} took {took:?} to exit");
    }
}

#[tokio::test]
async fn a_leaf_hub_and_its_leaf_exit_at_once_on_sigterm_as_nats_server() {
    for kind in BOTH {
        let mut hub = leaf::hub(kind, "hub", "").await;
        let url = format!("url: \"nats://127.0.0.1:{}\"", leaf::leaf_port(&hub).await);
        let mut edge = leaf::leaf(kind, "edge", &url, "").await;
        leaf::wait_linked(&hub, 1).await;
        for (what, server) in [("hub", &mut hub), ("leaf", &mut edge)] {
            let start = Instant::now();
            server.stop().await;
            let took = start.elapsed();
            assert!(took < PROMPTLY, "{kind:?} {what} took {took:?} to exit");
            assert!(
                !server.logs().contains("did not close in time"),
                "{kind:?} {what}"
            );
        }
    }
}
