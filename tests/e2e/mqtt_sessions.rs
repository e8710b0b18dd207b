//! MQTT sessions, QoS 1, retained messages and wills, stored in JetStream: the same
//! MQTT 3.1.1 scenarios against rill and nats-server 2.15.1 (with paho-mqtt), and what
//! MQTT publishes look like to a JetStream stream.

use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};

use crate::mqtt::{mqtt_port, msgs, on_both, paho, scenario, scenario_with};

/// Session settings of the test servers: quick redelivery so a lost PUBACK shows up.
const MQTT: &str = "ack_wait: \"2s\"";

/// `msgs` without the fields that differ by timing only (dup on a redelivery).
fn plain(list: Vec<Value>) -> Vec<Value> {
    list.into_iter()
        .map(|mut m| {
            if let Some(o) = m.as_object_mut() {
                o.remove("dup");
            }
            m
        })
        .collect()
}

/// Messages in topic order, each once: QoS 1 orders messages per topic only (`orders` and
/// `orders/#` are two subscriptions here, whose deliveries interleave as they come), and may
/// deliver twice (a redelivery when a PUBACK is late on a loaded machine).
fn once_each(mut list: Vec<Value>) -> Vec<Value> {
    list.sort_by_key(|m| m["topic"].as_str().map(str::to_owned));
    list.dedup();
    list
}

/// A QoS 1 message delivered but not yet acknowledged when the server stops is delivered
/// again, marked as a duplicate, when the device resumes its session after the restart.
#[tokio::test]
async fn a_qos1_message_in_flight_at_server_stop_is_redelivered_after_restart() {
    if !paho() {
        return;
    }
    let seen = on_both(MQTT, "", async |kind, mut server, port| {
        let pid = server.pid().expect("running");
        let before = json!([
            {"op": "connect", "name": "dev", "id": "dev-2", "v": 4, "clean": false, "manual_ack": true},
            {"op": "sub", "name": "dev", "filter": "jobs/+", "qos": 1},
            {"op": "connect", "name": "shop", "v": 4},
            {"op": "pub", "name": "shop", "topic": "jobs/1", "payload": "in flight", "qos": 1},
            {"op": "wait_msgs", "name": "dev", "count": 1},
            {"op": "pause"},
            {"op": "drop", "name": "dev"},
            {"op": "drop", "name": "shop"},
        ]);
        let first = scenario_with(port, &before, |_| async move {
            // A clean stop (SIGTERM) while the delivery waits for its PUBACK.
            let term = tokio::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
            term.await.expect("kill -TERM");
        })
        .await;
        assert_eq!(msgs(&first, "dev").len(), 1, "{kind:?}: {first}");
        server.restart().await;
        let port = mqtt_port(&server).await;
        let after = json!([
            {"op": "connect", "name": "dev", "id": "dev-2", "v": 4, "clean": false},
            {"op": "wait_msgs", "name": "dev", "count": 1},
        ]);
        let second = scenario(port, &after).await;
        json!({
            "session_present": second["dev"]["session_present"],
            "dev_got": once_each(msgs(&second, "dev")),
        })
    })
    .await;
    assert_eq!(
        seen,
        json!({
            "session_present": true,
            "dev_got": [{"dup": true, "payload": "in flight", "props": {}, "qos": 1, "retain": false, "topic": "jobs/1"}],
        })
    );
}

#[tokio::test]
async fn a_persistent_session_gets_its_qos1_messages_after_disconnect_and_restart() {
    if !paho() {
        return;
    }
    let seen = on_both(MQTT, "", async |kind, mut server, port| {
        let before = json!([
            {"op": "connect", "name": "dev", "id": "dev-1", "v": 4, "clean": false},
            {"op": "sub", "name": "dev", "filter": "orders/#", "qos": 1},
            {"op": "disconnect", "name": "dev"},
            {"op": "connect", "name": "shop", "v": 4},
            {"op": "pub", "name": "shop", "topic": "orders/1", "payload": "one", "qos": 1},
            {"op": "pub", "name": "shop", "topic": "orders/2", "payload": "two", "qos": 1},
            {"op": "pub", "name": "shop", "topic": "orders", "payload": "root", "qos": 1},
            {"op": "pub", "name": "shop", "topic": "status/shop", "payload": "open", "qos": 1, "retain": true},
        ]);
        let first = scenario(port, &before).await;
        assert_eq!(first["dev"]["subacks"], json!([[1]]), "{kind:?}: {first}");
        assert_eq!(
            first["shop"]["pubacks"].as_array().map(Vec::len),
            Some(4),
            "{kind:?}"
        );
        server.restart().await;
        let port = mqtt_port(&server).await;
        let after = json!([
            {"op": "connect", "name": "dev", "id": "dev-1", "v": 4, "clean": false},
            {"op": "wait_msgs", "name": "dev", "count": 3},
            {"op": "connect", "name": "late", "v": 4},
            {"op": "sub", "name": "late", "filter": "status/+", "qos": 1},
            {"op": "wait_msgs", "name": "late", "count": 1},
            {"op": "sleep", "secs": 0.3},
        ]);
        let second = scenario(port, &after).await;
        json!({
            "session_present": second["dev"]["session_present"],
            "dev_got": once_each(plain(msgs(&second, "dev"))),
            "late_got": plain(msgs(&second, "late")),
        })
    })
    .await;
    insta::assert_json_snapshot!("mqtt_session_restart", seen);
}

#[tokio::test]
async fn wills_retained_messages_and_clean_sessions_match_nats_server() {
    if !paho() {
        return;
    }
    let seen = on_both(MQTT, "", async |_kind, _server, port| {
        let steps = json!([
            {"op": "connect", "name": "watch", "v": 4},
            {"op": "sub", "name": "watch", "filter": "wills/#", "qos": 1},
            {"op": "connect", "name": "dev", "id": "dev-w", "v": 4,
             "will": {"topic": "wills/dev-w", "payload": "gone", "qos": 1, "retain": true}},
            {"op": "connect", "name": "tidy", "id": "dev-t", "v": 4,
             "will": {"topic": "wills/dev-t", "payload": "never sent"}},
            {"op": "disconnect", "name": "tidy"},
            {"op": "drop", "name": "dev"},
            {"op": "wait_msgs", "name": "watch", "count": 1},
            {"op": "connect", "name": "later", "v": 4},
            {"op": "sub", "name": "later", "filter": "wills/+", "qos": 0},
            {"op": "wait_msgs", "name": "later", "count": 1},
            {"op": "pub", "name": "later", "topic": "wills/dev-w", "payload": "", "retain": true, "qos": 1},
            {"op": "connect", "name": "last", "v": 4, "clean": true},
            {"op": "sub", "name": "last", "filter": "wills/#"},
            {"op": "sleep", "secs": 0.5},
            {"op": "connect", "name": "fresh", "id": "dev-1", "v": 4, "clean": true},
        ]);
        let out = scenario(port, &steps).await;
        json!({
            "watch_got": plain(msgs(&out, "watch")),
            "later_got": plain(msgs(&out, "later")),
            "last_got": plain(msgs(&out, "last")),
            "fresh_session_present": out["fresh"]["session_present"],
        })
    })
    .await;
    insta::assert_json_snapshot!("mqtt_will_retained", seen);
}

#[tokio::test]
async fn qos1_mqtt_publishes_land_in_a_jetstream_stream() {
    if !paho() {
        return;
    }
    let seen = on_both(MQTT, "", async |_kind, server, port| {
        let js = server.jetstream().await;
        js.create_stream(async_nats::jetstream::stream::Config {
            name: "DEVICES".into(),
            subjects: vec!["telemetry.>".into()],
            ..Default::default()
        })
        .await
        .expect("create stream");
        let steps = json!([
            {"op": "connect", "name": "dev", "v": 4},
            {"op": "pub", "name": "dev", "topic": "telemetry/boiler/temp", "payload": "71", "qos": 1},
            {"op": "pub", "name": "dev", "topic": "telemetry/boiler/state", "payload": "on", "qos": 0},
        ]);
        scenario(port, &steps).await;
        let stream = js.get_stream("DEVICES").await.expect("stream");
        let consumer = stream
            .create_consumer(async_nats::jetstream::consumer::pull::Config::default())
            .await
            .expect("consumer");
        let mut batch = consumer
            .fetch()
            .max_messages(2)
            .expires(Duration::from_secs(2))
            .messages()
            .await
            .expect("fetch");
        let mut got = Vec::new();
        while let Some(Ok(m)) = batch.next().await {
            let qos = m
                .headers
                .as_ref()
                .and_then(|h| h.get("Nmqtt-Pub"))
                .map(|v| v.to_string());
            got.push(json!({"subject": m.subject.as_str(), "payload": String::from_utf8_lossy(&m.payload), "Nmqtt-Pub": qos}));
        }
        json!(got)
    })
    .await;
    insta::assert_json_snapshot!("mqtt_into_stream", seen);
}
