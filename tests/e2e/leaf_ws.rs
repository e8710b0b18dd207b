//! Leaf links over WebSocket, in every pairing of rill and nats-server: a hub with
//! `websocket {}` and `leafnodes {}` takes leafs whose remote URL is `ws://` or
//! `wss://` on its WebSocket port; messages both ways, leaf credentials binding the
//! account, a URL path and permessage-deflate (`ws_compression`), `wss://` with the
//! hub verified against the remote's `ca_file`; and a hub without a leaf port refusing.
//!
//! Facts from nats-server 2.15.1: the leaf asks for `<url path>/leafnode` in its
//! upgrade request, which is how the hub tells it from a client; the leaf protocol then
//! runs inside binary messages as over TCP (INFO first, CONNECT, `LS+`, `LMSG`); a hub
//! whose `leafnodes {}` has no port logs `Not configured to accept leaf node
//! connections` and closes the connection.

use bytes::Bytes;
use futures::StreamExt;
use rill_tests::ServerKind::{self, Nats, Rill};
use rill_tests::{ServerOpts, TestServer, check_for};

use crate::leaf::{WAIT, leaf, leafnodes, next, wait_interest, wait_linked};
use crate::leaf_tls::round_trip;
use crate::tls::Certs;

/// A hub of `kind` with `websocket { <ws> }` and a leaf port (`leafnodes { <leaf> }`).
async fn ws_hub(kind: ServerKind, ws: &str, leaf: &str, extra: &str) -> TestServer {
    TestServer::start_with(ServerOpts {
        kind,
        jetstream: false,
        monitoring: true,
        config: Some(format!(
            "server_name: hub\n{extra}\nwebsocket {{ listen: \"127.0.0.1:-1\"\n{ws}\n}}\n\
             leafnodes {{ listen: \"127.0.0.1:-1\"\n{leaf}\n}}\n"
        )),
        ..ServerOpts::default()
    })
    .await
}

fn ws_port(server: &TestServer) -> u16 {
    server
        .ports()
        .websocket
        .unwrap_or_else(|| panic!("no websocket port\n{}", server.logs()))
}

/// A leaf of `leaf_kind` linked over `ws://` to a hub of `hub_kind`: a message each way,
/// queue groups and request/reply through the link.
async fn linked_over_ws(hub_kind: ServerKind, leaf_kind: ServerKind) {
    let hub = ws_hub(hub_kind, "no_tls: true", "", "").await;
    let remote = format!("url: \"ws://127.0.0.1:{}\"", ws_port(&hub));
    let leaf = leaf(leaf_kind, "edge", &remote, "").await;
    wait_linked(&hub, 1).await;
    wait_linked(&leaf, 1).await;
    round_trip(&hub, &leaf).await;
    let (h, l) = (hub.client().await, leaf.client().await);
    let mut svc = l
        .queue_subscribe("svc", "workers".into())
        .await
        .expect("svc");
    let lc = l.clone();
    let service = tokio::spawn(async move {
        while let Some(req) = svc.next().await {
            if let Some(reply) = req.reply {
                let _ = lc.publish(reply, req.payload).await;
            }
        }
    });
    wait_interest(&l, &h).await;
    for i in 0..10 {
        let body = Bytes::from(format!("req-{i}"));
        let answer = tokio::time::timeout(WAIT, h.request("svc", body.clone()))
            .await
            .expect("answer in time")
            .expect("answer");
        assert_eq!(answer.payload, body);
    }
    service.abort();
}

#[tokio::test]
async fn leaf_links_over_websocket_in_every_pairing() {
    for (hub_kind, leaf_kind) in [(Rill, Rill), (Rill, Nats), (Nats, Rill)] {
        linked_over_ws(hub_kind, leaf_kind).await;
    }
}

/// Credentials in the `ws://` URL bind the link to the hub's account `A`; the URL has
/// a path, and both sides compress (`ws_compression` on the remote, `compression` on
/// the hub's WebSocket port). A large message crosses in one piece.
async fn bound_and_compressed(hub_kind: ServerKind, leaf_kind: ServerKind) {
    let hub = ws_hub(
        hub_kind,
        "no_tls: true, compression: true",
        "authorization { users: [ {user: edge, password: s3cret, account: A} ] }",
        "accounts { A { users: [ {user: a, password: a} ] }, B { users: [ {user: b, password: b} ] } }",
    )
    .await;
    let remote = format!(
        "url: \"ws://edge:s3cret@127.0.0.1:{}/gateway/site1\", ws_compression: true",
        ws_port(&hub)
    );
    let leaf = leaf(leaf_kind, "edge", &remote, "").await;
    wait_linked(&hub, 1).await;
    let leafz = rill_tests::cluster::http_get(hub.monitoring_port(), "/leafz")
        .await
        .expect("leafz");
    let leafz: serde_json::Value = serde_json::from_str(&leafz).expect("json");
    assert_eq!(leafz["leafs"][0]["account"], "A", "{leafz}");
    let connect = |user: &'static str| {
        let url = hub.url();
        async move {
            async_nats::ConnectOptions::with_user_and_password(user.into(), user.into())
                .connect(url)
                .await
                .expect("hub client")
        }
    };
    let (a, b, l) = (connect("a").await, connect("b").await, leaf.client().await);
    let mut in_a = a.subscribe("t.>").await.expect("sub A");
    let mut in_b = b.subscribe("t.>").await.expect("sub B");
    wait_interest(&a, &l).await;
    let big = Bytes::from(
        (0..200_000u32)
            .map(|i| b"sensor reading "[(i % 15) as usize])
            .collect::<Vec<u8>>(),
    );
    l.publish("t.big", big.clone()).await.expect("pub");
    l.flush().await.expect("flush");
    assert_eq!(next(&mut in_a).await.payload, big);
    let leaked = tokio::time::timeout(std::time::Duration::from_millis(300), in_b.next()).await;
    assert!(leaked.is_err(), "account B saw a message of account A");
}

#[tokio::test]
async fn websocket_leaf_credentials_path_and_compression_in_every_pairing() {
    for (hub_kind, leaf_kind) in [(Rill, Rill), (Rill, Nats), (Nats, Rill)] {
        bound_and_compressed(hub_kind, leaf_kind).await;
    }
}

/// `wss://`: the hub's WebSocket port has TLS, the remote verifies it against its
/// `ca_file`; a remote whose CA does not know the hub gets no link.
#[tokio::test]
async fn leaf_links_over_secure_websocket_in_every_pairing() {
    let certs = Certs::generate();
    let ws_tls = format!(
        "tls {{ cert_file: \"{}\", key_file: \"{}\" }}",
        certs.path("server-cert.pem").display(),
        certs.path("server-key.pem").display(),
    );
    let ca = certs.path("ca.pem").display().to_string();
    for (hub_kind, leaf_kind) in [(Rill, Rill), (Rill, Nats), (Nats, Rill)] {
        let hub = ws_hub(hub_kind, &ws_tls, "", "").await;
        let remote = format!(
            "url: \"wss://127.0.0.1:{}\", tls {{ ca_file: \"{ca}\", timeout: 2 }}",
            ws_port(&hub)
        );
        let leaf = leaf(leaf_kind, "edge", &remote, "").await;
        wait_linked(&hub, 1).await;
        round_trip(&hub, &leaf).await;
    }
    // A CA that did not sign the hub's certificate: no link.
    let other = Certs::generate();
    let hub = ws_hub(Rill, &ws_tls, "", "").await;
    let remote = format!(
        "url: \"wss://127.0.0.1:{}\", tls {{ ca_file: \"{}\", timeout: 2 }}",
        ws_port(&hub),
        other.path("ca.pem").display()
    );
    let leaf = leaf(Rill, "edge", &remote, "").await;
    check_for(WAIT, || async {
        leaf.logs().contains("TLS handshake error")
    })
    .await;
    assert_eq!(leafnodes(&hub).await, 0);
}

/// A hub with `websocket {}` and no leaf port refuses leaf connections
/// on the WebSocket port, as nats-server does, with the same log line.
#[tokio::test]
async fn a_hub_without_a_leaf_port_refuses_websocket_leafs() {
    for kind in [Rill, Nats] {
        let hub = TestServer::start_with(ServerOpts {
            kind,
            jetstream: false,
            monitoring: true,
            config: Some(
                "server_name: hub\nwebsocket { listen: \"127.0.0.1:-1\", no_tls: true }\n".into(),
            ),
            ..ServerOpts::default()
        })
        .await;
        let remote = format!("url: \"ws://127.0.0.1:{}\"", ws_port(&hub));
        let leaf = leaf(Rill, "edge", &remote, "").await;
        check_for(WAIT, || async {
            hub.logs()
                .contains("Not configured to accept leaf node connections")
        })
        .await;
        assert_eq!(leafnodes(&leaf).await, 0, "{kind:?}");
    }
}
