//! The `mqtt {}` block as nats-server 2.15.1 takes it, side by side: the `/varz` `mqtt`
//! block, TLS with client certificates mapped to users (`verify_and_map`) through paho,
//! MQTT-only credentials (`authorization {}`) and `no_auth_user`. The ports file gets an
//! `mqtt` entry from rill only (nats-server writes none).

use rill_tests::{ServerKind, TestServer};
use serde_json::{Value, json};

use crate::mqtt::{http_get_json, msgs, on_both, paho, scenario};
use crate::tls::Certs;

/// The `/varz` `mqtt` block of `server` (monitoring on `http`), its port checked against
/// `port` and taken out (it differs between the servers).
async fn varz_mqtt(http: u16, port: u16) -> Value {
    let varz = http_get_json(&format!("http://127.0.0.1:{http}/varz")).await;
    let mut block = varz["mqtt"].clone();
    assert_eq!(block["port"], port, "{block}");
    if let Some(o) = block.as_object_mut() {
        o.remove("port");
    }
    block
}

/// The ports file's `mqtt` entry is rill's addition: nats-server 2.15.1 has none.
fn check_ports_file(kind: ServerKind, server: &TestServer, port: u16) {
    let expected = match kind {
        ServerKind::Rill => Some(port),
        _ => None,
    };
    assert_eq!(server.ports().mqtt, expected, "{kind:?}");
}

#[tokio::test]
async fn the_varz_mqtt_block_and_ports_file_match_nats_server() {
    let top = "http: 127.0.0.1:-1\nauthorization { users: [{user: bob, password: pw}] }";
    let extra = "ack_wait: \"10s\"\n max_ack_pending: 50\n no_auth_user: bob\n js_domain: hub\n \
                 authorization { timeout: 3 }";
    let seen = on_both(extra, top, async |kind, server, port| {
        check_ports_file(kind, &server, port);
        varz_mqtt(server.monitoring_port(), port).await
    })
    .await;
    insta::assert_json_snapshot!("mqtt_varz", seen);
    // Unset and zero settings are left out, as nats-server leaves them out.
    let zero = "ack_wait: \"0s\"\n max_ack_pending: 0";
    let seen = on_both(zero, "http: 127.0.0.1:-1", async |_, server, port| {
        varz_mqtt(server.monitoring_port(), port).await
    })
    .await;
    assert_eq!(seen, json!({"host": "127.0.0.1", "tls_timeout": 2}));
}

#[tokio::test]
async fn mqtt_tls_with_mapped_client_certificates_matches_nats_server() {
    if !paho() {
        return;
    }
    let certs = Certs::generate();
    let top = "http: 127.0.0.1:-1\nauthorization { users: [\n  \
         { user: \"device-42@iot.example\", permissions: { publish: \"dev.>\", subscribe: [\"dev\", \"dev.>\"] } }\n] }";
    let extra = certs.tls_block("verify_and_map: true");
    let tls = |name: Option<&str>| {
        let path = |f: String| certs.path(&f).display().to_string();
        let mut t = json!({"ca": path("ca.pem".into())});
        if let Some(n) = name {
            t["cert"] = json!(path(format!("{n}-cert.pem")));
            t["key"] = json!(path(format!("{n}-key.pem")));
        }
        t
    };
    let steps = json!([
        {"op": "connect", "name": "dev", "v": 4, "tls": tls(Some("client"))},
        {"op": "sub", "name": "dev", "filter": "dev/#"},
        {"op": "sub", "name": "dev", "filter": "other/#"},
        {"op": "pub", "name": "dev", "topic": "dev/t1", "payload": "over tls"},
        {"op": "pub", "name": "dev", "topic": "other/t1", "payload": "denied"},
        {"op": "wait_msgs", "name": "dev", "count": 1},
        {"op": "connect", "name": "unmapped", "v": 4, "tls": tls(Some("unmapped"))},
        {"op": "connect", "name": "rogue", "v": 4, "tls": tls(Some("rogue"))},
        {"op": "connect", "name": "nocert", "v": 4, "tls": tls(None)},
        {"op": "sleep", "secs": 0.3},
    ]);
    let seen = on_both(&extra, top, async |kind, server, port| {
        assert!(
            server
                .logs()
                .contains("Listening for MQTT clients on tls://"),
            "{kind:?}"
        );
        let out = scenario(port, &steps).await;
        let refused = |name: &str| out[name]["connack"] != json!(0);
        json!({
            "dev_connack": out["dev"]["connack"],
            "dev_subacks": out["dev"]["subacks"],
            "dev_got": msgs(&out, "dev"),
            "unmapped_connack": out["unmapped"]["connack"],
            "rogue_refused": refused("rogue"),
            "nocert_refused": refused("nocert"),
            "varz": varz_mqtt(server.monitoring_port(), port).await,
        })
    })
    .await;
    let mut seen = seen;
    // The certificate's expiry is generated; its presence is what is compared.
    assert!(seen["varz"]["tls_cert_not_after"].is_string(), "{seen}");
    seen["varz"]["tls_cert_not_after"] = json!("<generated>");
    insta::assert_json_snapshot!("mqtt_tls_verify_and_map", seen);
}

#[tokio::test]
async fn mqtt_only_credentials_and_no_auth_user_match_nats_server() {
    if !paho() {
        return;
    }
    let top = r#"authorization { users: [
        { user: bob, password: builder, permissions: { publish: "b.>", subscribe: ["b", "b.>"] } },
        { user: alice, password: wonder }
    ] }"#;
    // An MQTT-only user needs a server without users (nats-server refuses both at start,
    // and so does rill: see config::load::tests).
    let own = "authorization { user: meter, password: m3ter }";
    let steps = json!([
        {"op": "connect", "name": "meter", "v": 4, "user": "meter", "password": "m3ter"},
        {"op": "connect", "name": "wrong", "v": 4, "user": "meter", "password": "nope"},
        {"op": "connect", "name": "anon", "v": 4},
    ]);
    let seen = on_both(own, "", async |_, _, port| {
        let out = scenario(port, &steps).await;
        json!(["meter", "wrong", "anon"].map(|n| out[n]["connack"].clone()))
    })
    .await;
    assert_eq!(
        seen,
        json!([0, 135, 135]),
        "only the MQTT credentials log in (paho shows 3.1.1 refusals as 135)"
    );
    let steps = json!([
        {"op": "connect", "name": "anon", "v": 4},
        {"op": "sub", "name": "anon", "filter": "b/#"},
        {"op": "sub", "name": "anon", "filter": "a/#"},
        {"op": "connect", "name": "alice", "v": 4, "user": "alice", "password": "wonder"},
        {"op": "pub", "name": "alice", "topic": "b/1", "payload": "to bob"},
        {"op": "wait_msgs", "name": "anon", "count": 1},
        {"op": "connect", "name": "wrong", "v": 4, "user": "alice", "password": "nope"},
    ]);
    let seen = on_both("no_auth_user: bob", top, async |_, _, port| {
        let out = scenario(port, &steps).await;
        json!({
            "anon_connack": out["anon"]["connack"],
            "anon_subacks": out["anon"]["subacks"],
            "anon_got": msgs(&out, "anon"),
            "alice_connack": out["alice"]["connack"],
            "wrong_connack": out["wrong"]["connack"],
        })
    })
    .await;
    insta::assert_json_snapshot!("mqtt_no_auth_user", seen);
}
