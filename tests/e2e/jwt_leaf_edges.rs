//! Leaf links in operator mode at their edges, side by side with nats-server 2.15.1: a
//! leaf whose user JWT expires while linked, the hub's log line for a refused leaf, and
//! leafs over WebSocket checked as connection type `LEAFNODE_WS`.
//!
//! Observed on nats-server (hub and leaf of the same kind): when the leaf user's JWT
//! expires the hub sends `-ERR 'User Authentication Expired'` (the leaf logs `Leafnode
//! Error 'User Authentication Expired'`) and logs `Leafnode connection closed:
//! Authentication Expired`, within a second of the expiry; the leaf's next attempts are
//! refused, the hub logging `[ERR] ... - authentication error` and `Leafnode connection
//! closed: Authentication Failure`. Over WebSocket, a user allowed only `LEAFNODE_WS`
//! links and one allowed only `LEAFNODE` is refused.

use std::time::{Duration, Instant};

use rill_tests::ServerKind::{self, Nats, Rill};
use rill_tests::jwt::now;
use rill_tests::{ServerOpts, TestServer, check_for};
use serde_json::json;

use crate::jwt_auth::Setup;
use crate::jwt_leaf::{closed_with, hub, leaf_of, write_creds};
use crate::leaf::{leaf, wait_linked};

/// How long past the expiry the hub may take to close the link (a loaded machine).
const SLACK: Duration = Duration::from_secs(5);

#[tokio::test]
async fn a_leaf_whose_user_jwt_expires_is_closed_as_nats_server() {
    for kind in [Nats, Rill] {
        let setup = Setup::new(json!({}));
        let hub = hub(kind, &setup).await;
        let dir = tempfile::tempdir().expect("dir");
        let lasts = 3;
        let user = setup.app.user("edge", json!({"exp": now() + lasts}));
        let creds = write_creds(dir.path(), "edge", &user);
        let leaf = leaf_of(kind, "edge", &hub, Some(&creds)).await;
        wait_linked(&hub, 1).await;
        let linked = Instant::now();
        let expired = "Leafnode connection closed: Authentication Expired";
        let within = Duration::from_secs(lasts as u64) + SLACK;
        check_for(within, || std::future::ready(hub.logs().contains(expired))).await;
        let took = linked.elapsed();
        let told = "Leafnode Error 'User Authentication Expired'";
        check_for(SLACK, || std::future::ready(leaf.logs().contains(told))).await;
        // The leaf tries again with the expired JWT and is refused.
        check_for(SLACK, || {
            std::future::ready(closed_with(&hub, "Authentication Failure") > 0)
        })
        .await;
        let logs = hub.logs();
        assert!(
            logs.lines()
                .any(|l| l.contains("[ERR]") && l.ends_with("- authentication error")),
            "{kind:?}: the hub logs nats-server's line for a refused leaf\n{logs}"
        );
        eprintln!("{kind:?}: the link closed {took:?} after it was up (JWT for {lasts} s)");
    }
}

/// A hub of `kind` in operator mode with a WebSocket port for leafs.
async fn ws_hub(kind: ServerKind, setup: &Setup) -> TestServer {
    TestServer::start_with(ServerOpts {
        kind,
        jetstream: false,
        monitoring: true,
        config: Some(format!(
            "server_name: hub\n{}websocket {{ listen: \"127.0.0.1:-1\", no_tls: true }}\n\
             leafnodes {{ listen: \"127.0.0.1:-1\" }}\n",
            setup.config()
        )),
        ..ServerOpts::default()
    })
    .await
}

#[tokio::test]
async fn websocket_leafs_are_checked_as_leafnode_ws_as_nats_server() {
    let mut seen = Vec::new();
    for kind in [Nats, Rill] {
        let setup = Setup::new(json!({}));
        let hub = ws_hub(kind, &setup).await;
        let port = hub.ports().websocket.expect("websocket port");
        let dir = tempfile::tempdir().expect("dir");
        let ws_user = json!({"allowed_connection_types": ["LEAFNODE_WS"]});
        let tcp_user = json!({"allowed_connection_types": ["LEAFNODE"]});
        let ws_creds = write_creds(dir.path(), "ws", &setup.app.user("ws", ws_user));
        let tcp_creds = write_creds(dir.path(), "tcp", &setup.app.user("tcp", tcp_user));
        let remote = |creds: &std::path::Path| {
            format!(
                "url: \"ws://127.0.0.1:{port}\", credentials: \"{}\"",
                creds.display()
            )
        };
        let _refused = leaf(kind, "tcp", &remote(&tcp_creds), "").await;
        check_for(SLACK, || {
            std::future::ready(closed_with(&hub, "Authentication Failure") > 0)
        })
        .await;
        let _linked = leaf(kind, "ws", &remote(&ws_creds), "").await;
        wait_linked(&hub, 1).await;
        seen.push(crate::leaf::leafnodes(&hub).await);
    }
    assert_eq!(seen, [1, 1], "one link each: the LEAFNODE_WS user's");
}
