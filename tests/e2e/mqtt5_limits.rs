//! MQTT 5 limits and reason codes on rill (nats-server refuses MQTT 5 clients), driven by
//! paho-mqtt: reason codes in CONNACK, SUBACK, PUBACK and UNSUBACK; topic aliases from
//! the server; the client's receive maximum; server DISCONNECTs with their reasons
//! (packet too large, invalid topic alias, keep-alive timeout, server shutting down); and
//! session expiry removing a session and its QoS 1 consumer.

use std::time::Duration;

use rill_tests::{ServerKind, TestServer, check_for};
use serde_json::{Value, json};

use crate::mqtt::{paho, scenario, scenario_with, start};

/// Everything `name` received, in arrival order: topic, payload, QoS and topic alias.
fn arrivals(out: &Value, name: &str) -> Vec<Value> {
    let list = out[name]["msgs"].as_array().cloned().unwrap_or_default();
    list.iter()
        .map(|m| json!([m["topic"], m["payload"], m["qos"], m["props"]["TopicAlias"]]))
        .collect()
}

#[tokio::test]
async fn mqtt5_reason_codes_in_acks() {
    if !paho() {
        return;
    }
    let top = r#"authorization { users: [
        { user: alice, password: wonder, permissions: { publish: "a.>", subscribe: ["a", "a.>"] } }
    ] }"#;
    let (_server, port) = start(ServerKind::Rill, "", top).await;
    let steps = json!([
        {"op": "connect", "name": "bad", "v": 5, "user": "alice", "password": "nope"},
        {"op": "connect", "name": "alice", "v": 5, "user": "alice", "password": "wonder"},
        {"op": "sub", "name": "alice", "filter": "a/#", "qos": 1},
        {"op": "sub", "name": "alice", "filter": "b/#"},
        {"op": "pub", "name": "alice", "topic": "b/x", "payload": "denied", "qos": 1},
        {"op": "pub", "name": "alice", "topic": "a/x", "payload": "ok", "qos": 1},
        {"op": "unsub", "name": "alice", "filter": "a/#"},
        {"op": "unsub", "name": "alice", "filter": "never/subscribed"},
    ]);
    let out = scenario(port, &steps).await;
    // 0x87 not authorized, 0x11 no subscription existed (paho refuses to send an
    // invalid filter, so 0x8F is left to the unit tests of the topic rules).
    assert_eq!(out["bad"]["connack"], 135, "{out}");
    assert_eq!(out["alice"]["subacks"], json!([[1], [135]]));
    assert_eq!(out["alice"]["pubacks"], json!([135, 0]));
    assert_eq!(out["alice"]["unsubacks"], json!([[0], [17]]));
}

#[tokio::test]
async fn mqtt5_server_sends_topic_aliases_up_to_the_clients_maximum() {
    if !paho() {
        return;
    }
    let (_server, port) = start(ServerKind::Rill, "", "").await;
    let mut steps = vec![
        json!({"op": "connect", "name": "dev", "v": 5, "props": {"topic_alias_max": 2}}),
        json!({"op": "sub", "name": "dev", "filter": "t/#"}),
        json!({"op": "connect", "name": "p", "v": 5}),
    ];
    for (topic, payload) in [
        ("t/a", "1"),
        ("t/a", "2"),
        ("t/b", "3"),
        ("t/c", "4"),
        ("t/b", "5"),
    ] {
        steps.push(json!({"op": "pub", "name": "p", "topic": topic, "payload": payload}));
    }
    steps.push(json!({"op": "wait_msgs", "name": "dev", "count": 5}));
    let out = scenario(port, &json!(steps)).await;
    // paho leaves aliases to the application: an aliased PUBLISH shows an empty topic.
    // The first message on a topic carries it and a new alias, later ones the alias
    // alone; a third topic finds the client's two aliases taken.
    assert_eq!(
        arrivals(&out, "dev"),
        [
            json!(["t/a", "1", 0, 1]),
            json!(["", "2", 0, 1]),
            json!(["t/b", "3", 0, 2]),
            json!(["t/c", "4", 0, null]),
            json!(["", "5", 0, 2]),
        ],
        "{out}"
    );
}

#[tokio::test]
async fn mqtt5_receive_maximum_holds_back_unacknowledged_messages() {
    if !paho() {
        return;
    }
    let (_server, port) = start(ServerKind::Rill, "", "").await;
    let mut steps = vec![
        json!({"op": "connect", "name": "dev", "v": 5, "props": {"receive_max": 2}, "manual_ack": true}),
        json!({"op": "sub", "name": "dev", "filter": "w/#", "qos": 1}),
        json!({"op": "connect", "name": "p", "v": 5}),
    ];
    for i in 1..=5 {
        steps.push(
            json!({"op": "pub", "name": "p", "topic": "w/q", "payload": format!("q{i}"), "qos": 1}),
        );
    }
    steps.extend([
        json!({"op": "wait_msgs", "name": "dev", "count": 3, "timeout": 1.5}),
        json!({"op": "mark", "name": "dev", "label": "before"}),
        json!({"op": "ack", "name": "dev", "count": 2}),
        json!({"op": "wait_msgs", "name": "dev", "count": 5, "timeout": 1.5}),
        json!({"op": "mark", "name": "dev", "label": "after"}),
        json!({"op": "ack", "name": "dev", "count": 3}),
    ]);
    let out = scenario(port, &json!(steps)).await;
    // Two in flight: a third waits (1.5 s here) until PUBACKs free the window.
    assert_eq!(
        out["dev"]["marks"],
        json!({"before": 2, "after": 4}),
        "{out}"
    );
}

#[tokio::test]
async fn mqtt5_server_disconnects_with_reasons() {
    if !paho() {
        return;
    }
    let (server, port) = start(ServerKind::Rill, "", "max_payload: 1024").await;
    let big = "x".repeat(2000);
    let steps = json!([
        {"op": "connect", "name": "big", "v": 5},
        {"op": "pub", "name": "big", "topic": "x/y", "payload": big, "wait_ack": false},
        {"op": "wait_disconnect", "name": "big"},
        {"op": "connect", "name": "alias", "v": 5},
        {"op": "pub", "name": "alias", "topic": "x/z", "payload": "a", "props": {"alias": 100}},
        {"op": "wait_disconnect", "name": "alias"},
        {"op": "connect", "name": "idle", "v": 5, "keepalive": 1},
        {"op": "stall", "name": "idle", "secs": 2.5},
        {"op": "wait_disconnect", "name": "idle"},
        {"op": "connect", "name": "shut", "v": 5},
        {"op": "pause"},
        {"op": "wait_disconnect", "name": "shut"},
    ]);
    let pid = server.pid().expect("server pid");
    let out = scenario_with(port, &steps, |_| async move {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        assert!(status.is_ok_and(|s| s.success()), "SIGTERM the server");
    })
    .await;
    let reasons = ["big", "alias", "idle", "shut"].map(|n| out[n]["disconnect"].clone());
    // 0x95 packet too large, 0x94 topic alias invalid, 0x8D keep-alive timeout,
    // 0x8B server shutting down.
    assert_eq!(reasons, [149, 148, 141, 139].map(|c| json!(c)), "{out}");
}

/// Consumers of the `$MQTT_msgs` stream (one per QoS 1 subscription of a session).
async fn qos1_consumers(server: &TestServer) -> usize {
    let js = server.jetstream().await;
    let mut stream = js.get_stream("$MQTT_msgs").await.expect("$MQTT_msgs");
    let info = stream.info().await.expect("stream info");
    info.state.consumer_count
}

#[tokio::test]
async fn mqtt5_session_expiry_removes_the_session_and_its_consumer() {
    if !paho() {
        return;
    }
    let (server, port) = start(ServerKind::Rill, "", "").await;
    let steps = json!([
        {"op": "connect", "name": "s", "id": "exp-s", "v": 5, "props": {"session_expiry": 1}},
        {"op": "sub", "name": "s", "filter": "q/#", "qos": 1},
        {"op": "disconnect", "name": "s"},
        {"op": "pause"},
        {"op": "connect", "name": "back", "id": "exp-s", "v": 5, "clean": false, "props": {"session_expiry": 1}},
    ]);
    let kept = std::sync::Arc::new(std::sync::Mutex::new(None));
    let out = scenario_with(port, &steps, |_| {
        let kept = std::sync::Arc::clone(&kept);
        let server = &server;
        async move {
            let now = qos1_consumers(server).await;
            *kept.lock().expect("kept") = Some(now);
            // The session outlives its connection by one second, then goes.
            check_for(Duration::from_secs(10), || async {
                qos1_consumers(server).await == 0
            })
            .await;
        }
    })
    .await;
    let kept = *kept.lock().expect("kept");
    assert_eq!(kept, Some(1), "the consumer outlives the connection");
    assert_eq!(out["back"]["session_present"], false, "{out}");
}
