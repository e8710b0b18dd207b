//! Auth callout for clients that do not come through the NATS client port: WebSocket
//! clients and MQTT devices, against rill and nats-server 2.15.1 side by side, with the
//! callout service of [`crate::auth_callout`] (`alice` placed in APP with `app.>`, `bob`
//! refused by the service's error).
//!
//! Observed on nats-server and required of rill: both kinds of client are handed to the
//! service (the request's `client_info.type` is `websocket` and `mqtt`, its `kind`
//! `Client`; an MQTT device's request also carries its client id as `mqtt_id` and its
//! password as `pass` and `auth_token`); a placed WebSocket client has the user JWT's permissions, a refused one
//! gets `-ERR 'Authorization Violation'`; a placed MQTT device gets CONNACK 0 and
//! reaches its account, a refused one CONNACK 5 (not authorized; paho
//! reports it as 135).

use std::sync::Arc;

use nkeys::KeyPair;
use rill_tests::ServerKind;
use serde_json::{Value, json};

use crate::auth_callout::{Service, config_mode, service_client, shape};
use crate::mqtt::{msgs, paho, scenario, start};
use crate::websocket::{ws_server, ws_url};
use crate::websocket_frames::RawWs;

const KINDS: [ServerKind; 2] = [ServerKind::Rill, ServerKind::Nats];

/// A service answering for `issuer` (a copy of the key), placing users in APP.
fn service(issuer: &KeyPair) -> Service {
    let key = KeyPair::from_seed(&issuer.seed().expect("seed")).expect("key");
    Service::new(key, None, "APP")
}

/// The protocol lines a WebSocket client logging in as `user` (password `pw`) gets back
/// for `then` and `PING`, up to `until`.
async fn ws_lines(url: &str, user: &str, then: &str, until: &[u8]) -> Vec<String> {
    let (mut ws, _) = RawWs::connect(url, None).await;
    ws.info().await;
    let connect = json!({"verbose": false, "user": user, "pass": "pw"});
    let answer = ws.login(&connect, then, until).await;
    answer.lines().map(str::to_string).collect()
}

/// The first request the service saw, in the shape compared across servers.
fn first_request(service_seen: &std::sync::Mutex<Vec<Value>>) -> Value {
    shape(&service_seen.lock().expect("seen")[0])
}

#[tokio::test]
async fn websocket_clients_are_authorized_by_the_callout_as_nats_server() {
    let mut seen = Vec::new();
    for kind in KINDS {
        let issuer = KeyPair::new_account();
        let config = config_mode(&issuer, None);
        let server = ws_server(kind, "port: -1\nno_tls: true", &config).await;
        let service = service(&issuer);
        let requests = Arc::clone(&service.seen);
        service.start(service_client(&server).await).await;
        let url = ws_url(&server);
        let then = "SUB app.greet 1\r\nPUB app.greet 2\r\nhi\r\nPUB other 1\r\nx\r\n";
        let alice = ws_lines(&url, "alice", then, b"PONG\r\n").await;
        let bob = ws_lines(&url, "bob", "", b"\r\n").await;
        seen.push(json!({"alice": alice, "bob": bob, "request": first_request(&requests)}));
    }
    assert_eq!(
        seen[0], seen[1],
        "rill (left) and nats-server (right) differ"
    );
    assert_eq!(
        seen[1]["request"]["nats"]["client_info"]["type"],
        "websocket"
    );
    insta::assert_json_snapshot!("auth_callout_over_websocket", seen[1]);
}

#[tokio::test]
async fn mqtt_devices_are_authorized_by_the_callout_as_nats_server() {
    if !paho() {
        return;
    }
    let steps = json!([
        {"op": "connect", "name": "alice", "v": 4, "user": "alice", "password": "pw"},
        {"op": "sub", "name": "alice", "filter": "app/greet"},
        {"op": "pub", "name": "alice", "topic": "app/greet", "payload": "hi"},
        {"op": "wait_msgs", "name": "alice", "count": 1},
        {"op": "connect", "name": "bob", "v": 4, "user": "bob", "password": "pw"},
    ]);
    let mut seen = Vec::new();
    for kind in KINDS {
        let issuer = KeyPair::new_account();
        // MQTT keeps its sessions in JetStream: APP must have it.
        let config = config_mode(&issuer, None).replace("APP {}", "APP { jetstream: enabled }");
        let (server, port) = start(kind, "", &config).await;
        let service = service(&issuer);
        let requests = Arc::clone(&service.seen);
        service.start(service_client(&server).await).await;
        let out = scenario(port, &steps).await;
        seen.push(json!({
            "alice": out["alice"]["connack"],
            "alice_got": msgs(&out, "alice"),
            "bob": out["bob"]["connack"],
            "request": first_request(&requests),
        }));
    }
    assert_eq!(
        seen[0], seen[1],
        "rill (left) and nats-server (right) differ"
    );
    assert_eq!(seen[1]["request"]["nats"]["client_info"]["type"], "mqtt");
    insta::assert_json_snapshot!("auth_callout_for_mqtt", seen[1]);
}
