//! Operator mode for MQTT devices, side by side with nats-server 2.15.1: the MQTT
//! password carries the user JWT (paho, MQTT 3.1.1; nats-server takes no MQTT 5).
//!
//! Observed on nats-server and required of rill: with no nonce to sign, only a bearer
//! user JWT is admitted (CONNACK 0) and a plain one refused (CONNACK 5, not authorized,
//! which paho reports as 135); the JWT's `allowed_connection_types` name MQTT devices
//! `MQTT` (an MQTT-only user connects, a STANDARD-only or WEBSOCKET-only one is
//! refused); a password that is no JWT is refused; an admitted device publishes and
//! subscribes in its account.

use std::time::Duration;

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

/// A device logging in as `name` with `password`.
fn login(name: &str, password: &str) -> serde_json::Value {
    json!({"op": "connect", "name": name, "v": 4, "user": "device", "password": password})
}

/// What happened to live MQTT devices of a server of `kind` (see
/// [`live_mqtt_devices_meet_expiry_revocation_and_the_conn_limit_as_nats_server`]).
async fn live_devices(kind: ServerKind) -> serde_json::Value {
    let js =
        json!({"limits": {"mem_storage": -1, "disk_storage": -1, "streams": -1, "consumer": -1}});
    let setup = Setup::new(js.clone());
    let (server, port) = start(kind, "", &setup.config()).await;
    let bearer = |name: &str, extra: serde_json::Value| {
        let mut nats = json!({"bearer_token": true});
        rill_tests::jwt::merge(&mut nats, extra);
        setup.app.user(name, nats)
    };
    let short = bearer("short", json!({"exp": rill_tests::jwt::now() + 2}));
    let expiry = json!([login("short", &short.jwt), {"op": "wait_disconnect", "name": "short", "timeout": 8}]);
    let started = std::time::Instant::now();
    let out = scenario(port, &expiry).await;
    let took = started.elapsed();
    eprintln!("{kind:?}: the 2 s JWT ended the device after {took:?}");
    let expired_in_time = (Duration::from_secs(1)..Duration::from_secs(7)).contains(&took);
    let [a, b, c, d] = ["a", "b", "c", "d"].map(|n| bearer(n, json!({})));
    let steps = json!([
        login("a", &a.jwt), login("b", &b.jwt), login("c", &c.jwt),
        {"op": "pause"},
        {"op": "wait_disconnect", "name": "a", "timeout": 5},
        {"op": "pause"},
        {"op": "wait_disconnect", "name": "c", "timeout": 5},
        {"op": "sleep", "secs": 0.5},
        login("d", &d.jwt),
        {"op": "sleep", "secs": 0.3},
    ]);
    let sys_user = setup.sys.user("sys", json!({}));
    let seed = sys_user.key.seed().expect("seed");
    let sys = crate::jwt_system::connect_jwt(&server, sys_user.jwt.clone(), seed).await;
    let revoked = json!({"revocations": {a.public(): rill_tests::jwt::now() + 5}});
    let mut limited = revoked.clone();
    rill_tests::jwt::merge(&mut limited, json!({"limits": {"conn": 1}}));
    let updates = [revoked, limited];
    let live = crate::mqtt::scenario_with(port, &steps, |i| {
        let mut claims = js.clone();
        rill_tests::jwt::merge(&mut claims, updates[i].clone());
        let jwt = setup.operator.account_jwt(&setup.app, claims);
        let subject = format!("$SYS.REQ.ACCOUNT.{}.CLAIMS.UPDATE", setup.app.public());
        let sys = sys.clone();
        async move {
            let reply = sys.request(subject, jwt.into()).await.expect("update");
            let text = String::from_utf8_lossy(&reply.payload).to_string();
            assert!(text.contains("jwt updated"), "{kind:?}: {text}");
        }
    })
    .await;
    let seen = |out: &serde_json::Value, n: &str| json!({"connack": out[n]["connack"], "disconnect": out[n]["disconnect"]});
    json!({
        "expired": seen(&out, "short"),
        "expired_in_time": expired_in_time,
        "revoked": seen(&live, "a"),
        "oldest_kept": seen(&live, "b"),
        "newest_over_the_limit": seen(&live, "c"),
        "connect_at_the_limit": seen(&live, "d"),
    })
}

/// A live MQTT device is held to its user JWT's expiry, to revocations and to the
/// account's `conn` limit as NATS clients are (issue 25), side by side with nats-server
/// 2.15.1: the JWT expiring ends the connection; an account JWT update revoking the user
/// ends it; an update lowering the limit to 1 ends the newer of two devices and keeps
/// the older; a device connecting at the limit is refused.
#[tokio::test]
async fn live_mqtt_devices_meet_expiry_revocation_and_the_conn_limit_as_nats_server() {
    if !paho() {
        return;
    }
    let nats = live_devices(ServerKind::Nats).await;
    eprintln!("nats-server: {nats}");
    let rill = live_devices(ServerKind::Rill).await;
    assert_eq!(rill, nats, "rill (left) and nats-server (right) differ");
    insta::assert_json_snapshot!("jwt_mqtt_live", nats);
}
