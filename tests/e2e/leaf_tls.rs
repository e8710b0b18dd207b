//! Leaf links over TLS, in every pairing of rill and nats-server (hub and leaf): the hub's
//! `leafnodes { tls {} }` with client certificates required (`verify: true`) and the
//! remote's `tls {}` presenting one; TLS started after the hub's INFO (the default) and
//! before anything (`handshake_first` on both sides); a leaf with an untrusted
//! certificate, and one without a `tls {}` block, get no link.
//!
//! Facts from nats-server 2.15.1: a hub with `tls {}` sends its INFO in plain text with
//! `tls_required: true` (and `tls_verify: true`, `auth_required: true` with `verify`),
//! and the leaf then starts TLS; with `handshake_first` the hub sends nothing until the
//! TLS handshake is done, and both sides must say so.

use bytes::Bytes;
use rill_tests::ServerKind::{self, Nats, Rill};
use rill_tests::{TestServer, check_for};

use crate::leaf::{WAIT, hub, leaf, leaf_port, leafnodes, next, wait_interest, wait_linked};
use crate::tls::Certs;

/// The hub's `tls {}` block (server certificate, client certificates verified).
fn hub_tls(certs: &Certs, first: bool) -> String {
    format!(
        "tls {{ cert_file: \"{}\", key_file: \"{}\", ca_file: \"{}\", verify: true, timeout: 2, handshake_first: {first} }}",
        certs.path("server-cert.pem").display(),
        certs.path("server-key.pem").display(),
        certs.path("ca.pem").display(),
    )
}

/// A remote's `tls {}` block presenting the client certificate `cert`.
fn remote_tls(certs: &Certs, cert: &str, first: bool) -> String {
    format!(
        "tls {{ cert_file: \"{}\", key_file: \"{}\", ca_file: \"{}\", timeout: 2, handshake_first: {first} }}",
        certs.path(&format!("{cert}-cert.pem")).display(),
        certs.path(&format!("{cert}-key.pem")).display(),
        certs.path("ca.pem").display(),
    )
}

/// A hub and a leaf linked over TLS; a message each way.
async fn linked_over_tls(certs: &Certs, hub_kind: ServerKind, leaf_kind: ServerKind, first: bool) {
    let hub = hub(hub_kind, "hub", &hub_tls(certs, first)).await;
    let port = leaf_port(&hub).await;
    let remote = format!(
        "url: \"nats-leaf://127.0.0.1:{port}\", {}",
        remote_tls(certs, "client", first)
    );
    let leaf = leaf(leaf_kind, "edge", &remote, "").await;
    wait_linked(&hub, 1).await;
    round_trip(&hub, &leaf).await;
}

/// A message from the leaf to a hub subscriber and one from the hub to a leaf subscriber.
pub(crate) async fn round_trip(hub: &TestServer, leaf: &TestServer) {
    let (h, l) = (hub.client().await, leaf.client().await);
    let mut up = h.subscribe("up").await.expect("hub sub");
    wait_interest(&h, &l).await;
    l.publish("up", Bytes::from_static(b"to-hub"))
        .await
        .expect("pub");
    assert_eq!(next(&mut up).await.payload, Bytes::from_static(b"to-hub"));
    let mut down = l.subscribe("down").await.expect("leaf sub");
    wait_interest(&l, &h).await;
    h.publish("down", Bytes::from_static(b"to-edge"))
        .await
        .expect("pub");
    assert_eq!(
        next(&mut down).await.payload,
        Bytes::from_static(b"to-edge")
    );
}

#[tokio::test]
async fn leaf_links_over_mutual_tls_in_every_pairing() {
    let certs = Certs::generate();
    for (hub_kind, leaf_kind) in [(Rill, Rill), (Rill, Nats), (Nats, Rill)] {
        linked_over_tls(&certs, hub_kind, leaf_kind, false).await;
    }
}

#[tokio::test]
async fn leaf_links_with_tls_handshake_first_in_every_pairing() {
    let certs = Certs::generate();
    for (hub_kind, leaf_kind) in [(Rill, Rill), (Rill, Nats), (Nats, Rill)] {
        linked_over_tls(&certs, hub_kind, leaf_kind, true).await;
    }
}

/// A rill hub sends its INFO in plain text with `tls_required`/`tls_verify`, as nats-server,
/// and its `/varz` leaf block says so too.
#[tokio::test]
async fn a_tls_hub_announces_tls_in_its_plain_info_like_nats_server() {
    let certs = Certs::generate();
    for kind in [Rill, Nats] {
        let hub = hub(kind, "hub", &hub_tls(&certs, false)).await;
        let port = leaf_port(&hub).await;
        let conn = rill_tests::raw::Conn::connect(port).await;
        let info = conn.info();
        assert_eq!(
            (
                &info["tls_required"],
                &info["tls_verify"],
                &info["auth_required"]
            ),
            (
                &serde_json::json!(true),
                &serde_json::json!(true),
                &serde_json::json!(true)
            ),
            "{kind:?}"
        );
        let varz = rill_tests::cluster::http_get(hub.monitoring_port(), "/varz")
            .await
            .and_then(|b| serde_json::from_str::<serde_json::Value>(&b).ok())
            .expect("varz");
        assert_eq!(
            (&varz["leaf"]["tls_required"], &varz["leaf"]["tls_verify"]),
            (&serde_json::json!(true), &serde_json::json!(true)),
            "{kind:?}"
        );
    }
}

/// A leaf whose certificate the hub's CA did not sign gets no link (the hub logs the
/// TLS failure); a leaf without a `tls {}` block under a TLS hub says what it needs.
#[tokio::test]
async fn untrusted_or_missing_leaf_tls_gets_no_link() {
    let certs = Certs::generate();
    let hub = hub(Rill, "hub", &hub_tls(&certs, false)).await;
    let port = leaf_port(&hub).await;
    let rogue = leaf(
        Rill,
        "rogue",
        &format!(
            "url: \"nats-leaf://127.0.0.1:{port}\", {}",
            remote_tls(&certs, "rogue", false)
        ),
        "",
    )
    .await;
    let plain = leaf(
        Rill,
        "plain",
        &format!("url: \"nats-leaf://127.0.0.1:{port}\""),
        "",
    )
    .await;
    check_for(WAIT, || async {
        hub.logs().contains("TLS handshake error") && plain.logs().contains("the hub requires TLS")
    })
    .await;
    assert_eq!(leafnodes(&hub).await, 0, "{}", rogue.logs());
}
