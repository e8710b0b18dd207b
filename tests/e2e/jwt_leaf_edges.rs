//! Leaf links in operator mode at their edges, side by side with nats-server 2.15.1: a
//! leaf whose user JWT expires while linked, the hub's log line for a refused leaf, and
//! leafs over WebSocket checked as connection type `LEAFNODE_WS`.
//!
//! Observed on nats-server (hub and leaf of the same kind): when the leaf user's JWT
//! expires the hub sends `-ERR 'User Authentication Expired'` (the leaf logs `Leafnode
//! Error 'User Authentication Expired'`) and logs `Leafnode connection closed:
//! Authentication Expired`, within a second of the expiry; the leaf's next attempts are
//! refused, the hub logging `[ERR] ... - authentication error` and `Leafnode connection
//! closed: Authentication Failure`. An account JWT update closes a linked leaf as it
//! closes clients (see [`a_leaf_is_closed_by_an_account_jwt_update_as_nats_server`]).
//! Over WebSocket, a user allowed only `LEAFNODE_WS`
//! links and one allowed only `LEAFNODE` is refused.

use std::time::{Duration, Instant};

use rill_tests::ServerKind::{self, Nats, Rill};
use rill_tests::jwt::now;
use rill_tests::{ServerOpts, TestServer, check_for};
use serde_json::json;

use crate::jwt_auth::{Setup, hold};
use crate::jwt_leaf::{closed_with, hub, leaf_of, write_creds};
use crate::jwt_system::connect_jwt;
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

/// How an account JWT update (pushed over `$SYS.REQ.ACCOUNT.<acc>.CLAIMS.UPDATE`) turns
/// against a linked leaf.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Update {
    /// The leaf user is revoked (`revocations`).
    Revoke,
    /// The account now disallows bearer tokens; the leaf user's JWT is one.
    Bearer,
    /// The signing key that issued the leaf user's JWT is removed.
    Signer,
    /// The account's `conn` limit becomes 0.
    NoConnections,
    /// The account's `conn` limit becomes 2 with the leaf and two clients connected.
    TwoConnections,
}

/// What the update did: the hub's close reason for the link (`None`: still linked),
/// the error the leaf logged, and for each of two clients connected after the link
/// whether it was closed and the `-ERR` it got.
#[derive(Debug, PartialEq, Eq)]
struct Closed {
    reason: Option<&'static str>,
    leaf_error: Option<String>,
    clients: Vec<(bool, String)>,
}

/// Links a leaf to a hub of `kind`, connects two clients of the leaf's account, pushes
/// the account JWT `update` makes and reports what closed.
async fn update_under_a_leaf(kind: ServerKind, update: Update) -> Closed {
    let signer = nkeys::KeyPair::new_account();
    let setup = Setup::new(json!({"signing_keys": [signer.public_key()]}));
    let hub = hub(kind, &setup).await;
    let dir = tempfile::tempdir().expect("dir");
    let user = match update {
        Update::Bearer => setup.app.user("edge", json!({"bearer_token": true})),
        Update::Signer => setup.app.user_signed_by(&signer, "edge", json!({})),
        _ => setup.app.user("edge", json!({})),
    };
    let leaf = leaf_of(
        kind,
        "edge",
        &hub,
        Some(&write_creds(dir.path(), "edge", &user)),
    )
    .await;
    wait_linked(&hub, 1).await;
    let mut clients = Vec::new();
    for name in ["first", "second"] {
        clients.push(hold(&hub, &setup.app.user(name, json!({}))).await);
    }
    let claims = match update {
        Update::Revoke => json!({"revocations": {user.public(): now() + 5}}),
        Update::Bearer => json!({"limits": {"disallow_bearer": true}}),
        Update::Signer => json!({}),
        Update::NoConnections => json!({"limits": {"conn": 0}}),
        Update::TwoConnections => json!({"limits": {"conn": 2}}),
    };
    let sys_user = setup.sys.user("sys", json!({}));
    let seed = sys_user.key.seed().expect("seed");
    let sys = connect_jwt(&hub, sys_user.jwt.clone(), seed).await;
    let subject = format!("$SYS.REQ.ACCOUNT.{}.CLAIMS.UPDATE", setup.app.public());
    let jwt = setup.operator.account_jwt(&setup.app, claims);
    let reply = sys.request(subject, jwt.into()).await.expect("update");
    assert!(
        String::from_utf8_lossy(&reply.payload).contains("jwt updated"),
        "{kind:?} {update:?}: {reply:?}"
    );
    let reasons = [
        "Credentials Revoked",
        "Authentication Failure",
        "Maximum Account Connections Exceeded",
    ];
    let reason = match update {
        Update::TwoConnections => None,
        _ => {
            let closed = || reasons.into_iter().find(|r| closed_with(&hub, r) > 0);
            check_for(SLACK, || std::future::ready(closed().is_some())).await;
            closed()
        }
    };
    let mut seen = Vec::new();
    for conn in &mut clients {
        let (got, _) = conn
            .read_until_contains_or_close(b"-ERR", Duration::from_secs(1))
            .await;
        let closed = conn.is_closed_within(Duration::from_millis(300)).await;
        let text = String::from_utf8_lossy(&got);
        let err = text
            .lines()
            .find(|l| l.starts_with("-ERR"))
            .unwrap_or_default();
        seen.push((closed, err.to_string()));
    }
    let logs = leaf.logs();
    let leaf_error = logs
        .lines()
        .find_map(|l| l.split_once("Leafnode Error ").map(|(_, e)| e.to_string()));
    Closed {
        reason,
        leaf_error,
        clients: seen,
    }
}

/// A linked leaf's account JWT is updated against it; the hub closes it as nats-server
/// 2.15.1 does (measured): revoked, `-ERR 'User Authentication Revoked'` and "Credentials
/// Revoked"; a bearer JWT the account now refuses, `-ERR 'Authorization Violation'` and
/// "Authentication Failure"; its signing key removed, "Authentication Failure" without
/// a word. The account's `conn` limit counts the leaf with the clients on an update (not
/// at connect): at 0 every one goes, at 2 the oldest two (the leaf and the first
/// client) stay.
#[tokio::test]
async fn a_leaf_is_closed_by_an_account_jwt_update_as_nats_server() {
    let updates = [
        Update::Revoke,
        Update::Bearer,
        Update::Signer,
        Update::NoConnections,
        Update::TwoConnections,
    ];
    for update in updates {
        let mut nats = update_under_a_leaf(Nats, update).await;
        let mut rill = update_under_a_leaf(Rill, update).await;
        eprintln!("{update:?}: {nats:?}");
        if update == Update::NoConnections {
            // The hub closes the link right after its -ERR, and the leaf does not always
            // read it before it sees the close (nats-server 1 run in 3, rill under load).
            (nats.leaf_error, rill.leaf_error) = (None, None);
        }
        assert_eq!(rill, nats, "{update:?}: rill then nats-server");
        let too_many = "-ERR 'maximum account active connections exceeded'";
        let (reason, error, clients) = match update {
            Update::Revoke => ("Credentials Revoked", "'User Authentication Revoked'", 0),
            Update::Bearer => ("Authentication Failure", "'Authorization Violation'", 0),
            Update::Signer => ("Authentication Failure", "'Authorization Violation'", 0),
            Update::NoConnections => ("Maximum Account Connections Exceeded", "", 2),
            Update::TwoConnections => {
                let stay = (false, String::new());
                assert_eq!(nats.reason, None);
                assert_eq!(nats.clients, [stay, (true, too_many.to_string())]);
                continue;
            }
        };
        assert_eq!(nats.reason, Some(reason), "{update:?}");
        if update != Update::NoConnections {
            assert_eq!(nats.leaf_error.as_deref(), Some(error), "{update:?}");
        }
        let closed = nats.clients.iter().filter(|(c, e)| *c && e == too_many);
        assert_eq!(closed.count(), clients, "{update:?}: {:?}", nats.clients);
    }
}
