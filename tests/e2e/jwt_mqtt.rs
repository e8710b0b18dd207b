//! Operator mode for MQTT devices, side by side with nats-server 2.15.1: the MQTT
//! password carries the user JWT (paho, MQTT 3.1.1; nats-server takes no MQTT 5).
//!
//! Observed on nats-server and required of rill: with no nonce to sign, only a bearer
//! user JWT is admitted (CONNACK 0) and a plain one refused (CONNACK 5, not authorized,
//! which paho reports as 135); the JWT's `allowed_connection_types` name MQTT devices
//! `MQTT` (an MQTT-only user connects, a STANDARD-only or WEBSOCKET-only one is
//! refused); a password that is no JWT is refused; an admitted device publishes and
//! subscribes in its account.

use rill_tests::ServerKind;
use rill_tests::jwt::User;
use serde_json::json;

use crate::jwt_auth::Setup;
use crate::mqtt::{msgs, paho, scenario, start};

/// A device that logs in with `password`, subscribes to `dev/#` and publishes there.
fn device(name: &str, password: &str) -> serde_json::Value {
    json!([
        {"op": "connect", "name": name, "v": 4, "user": "device", "password": password},
        {"op": "sub", "name": name, "filter": "dev/#"},
        {"op": "pub", "name": name, "topic": format!("dev/{name}"), "payload": name},
        {"op": "sleep", "secs": 0.3},
    ])
}

#[tokio::test]
async fn mqtt_devices_log_in_with_user_jwts_as_nats_server() {
    if !paho() {
        return;
    }
    let mut seen = Vec::new();
    for kind in [ServerKind::Rill, ServerKind::Nats] {
        // MQTT keeps its sessions in JetStream: APP's JWT allows it.
        let js = json!({"limits": {"mem_storage": -1, "disk_storage": -1, "streams": -1, "consumer": -1}});
        let setup = Setup::new(js);
        let (_server, port) = start(kind, "", &setup.config()).await;
        let user = |name, nats| -> User { setup.app.user(name, nats) };
        let bearer = |types: serde_json::Value| {
            let mut nats = json!({"bearer_token": true});
            if !types.is_null() {
                nats["allowed_connection_types"] = types;
            }
            user("device", nats).jwt
        };
        let cases = [
            ("bearer", bearer(json!(null))),
            ("mqtt_only", bearer(json!(["MQTT"]))),
            ("standard_only", bearer(json!(["STANDARD"]))),
            ("websocket_only", bearer(json!(["WEBSOCKET"]))),
            ("signed_jwt", user("device", json!({})).jwt),
            ("not_a_jwt", "secret".to_string()),
        ];
        let mut got = serde_json::Map::new();
        for (name, password) in cases {
            let out = scenario(port, &device(name, &password)).await;
            let answer = json!({"connack": out[name]["connack"], "msgs": msgs(&out, name)});
            got.insert(name.to_string(), answer);
        }
        seen.push(serde_json::Value::Object(got));
    }
    assert_eq!(
        seen[0], seen[1],
        "rill (left) and nats-server (right) differ"
    );
    assert_eq!(
        seen[1]["bearer"]["connack"], 0,
        "nats-server admits a bearer JWT"
    );
    insta::assert_json_snapshot!("jwt_mqtt_logins", seen[1]);
}
