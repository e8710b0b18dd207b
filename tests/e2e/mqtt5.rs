//! MQTT 5 on rill, beyond nats-server (which refuses MQTT 5 clients): properties ↔ NATS
//! headers and reply subjects, topic aliases, shared subscriptions as queue groups, the
//! client's maximum packet size, session expiry, and server DISCONNECT reasons. Driven by
//! paho-mqtt's MQTT 5 client.

use std::time::Duration;

use futures::StreamExt;
use rill_tests::ServerKind;
use serde_json::json;

use crate::mqtt::{msgs, paho, scenario, scenario_with, start};

#[tokio::test]
async fn mqtt5_properties_travel_as_nats_headers_and_reply_subjects() {
    if !paho() {
        return;
    }
    let (server, port) = start(ServerKind::Rill, "", "").await;
    let nats = server.client().await;
    let mut seen = nats.subscribe("sensors.>").await.expect("subscribe");
    rill_tests::sync(&nats).await;
    let steps = json!([
        {"op": "connect", "name": "dev", "v": 5},
        {"op": "sub", "name": "dev", "filter": "cmd/#", "sub_id": 7},
        {"op": "pub", "name": "dev", "topic": "sensors/t1", "payload": "21",
         "props": {"user": [["unit", "celsius"]], "response_topic": "replies/dev",
                   "correlation": "req-1", "alias": 3}},
        {"op": "pub", "name": "dev", "topic": "", "payload": "22", "props": {"alias": 3}},
        {"op": "pause"},
        {"op": "wait_msgs", "name": "dev", "count": 1},
    ]);
    let out = scenario_with(port, &steps, |_| {
        let nats = nats.clone();
        async move {
            let mut h = async_nats::HeaderMap::new();
            h.insert("origin", "ops");
            nats.publish_with_reply_and_headers("cmd.dev", "_INBOX.r1", h, "reboot".into())
                .await
                .expect("publish");
            nats.flush().await.expect("flush");
        }
    })
    .await;
    let first = tokio::time::timeout(Duration::from_secs(5), seen.next())
        .await
        .expect("first")
        .expect("message");
    let h = first.headers.clone().unwrap_or_default();
    assert_eq!(first.subject.as_str(), "sensors.t1");
    assert_eq!(h.get("unit").map(|v| v.as_str()), Some("celsius"));
    // The correlation data rides in the reply subject so a NATS responder's reply
    // carries it back (see mqtt5_request_reply_through_a_nats_responder).
    assert_eq!(
        first.reply.as_ref().map(|r| r.as_str()),
        Some("$MQTT.reply.cmVxLTE.replies.dev")
    );
    assert_eq!(h.get("Nmqtt-Corr").map(|v| v.as_str()), Some("cmVxLTE="));
    let second = tokio::time::timeout(Duration::from_secs(5), seen.next())
        .await
        .expect("second, sent by topic alias")
        .expect("message");
    assert_eq!(
        (second.subject.as_str(), &second.payload[..]),
        ("sensors.t1", &b"22"[..])
    );
    let got = msgs(&out, "dev");
    assert_eq!(got.len(), 1, "{out}");
    let props = &got[0]["props"];
    assert_eq!(got[0]["topic"], "cmd/dev");
    assert_eq!(props["UserProperty"], json!([["origin", "ops"]]));
    assert_eq!(props["ResponseTopic"], "_INBOX/r1");
    assert_eq!(props["SubscriptionIdentifier"], json!([7]));
}

#[tokio::test]
async fn mqtt5_shared_subscriptions_share_work_with_nats_queue_subscribers() {
    if !paho() {
        return;
    }
    let (server, port) = start(ServerKind::Rill, "", "").await;
    let nats = server.client().await;
    let mut worker = nats
        .queue_subscribe("jobs.>", "g".into())
        .await
        .expect("queue subscribe");
    rill_tests::sync(&nats).await;
    let mut steps = vec![
        json!({"op": "connect", "name": "a", "v": 5}),
        json!({"op": "sub", "name": "a", "filter": "$share/g/jobs/#", "qos": 1}),
        json!({"op": "connect", "name": "b", "v": 5}),
        json!({"op": "sub", "name": "b", "filter": "$share/g/jobs/#", "qos": 1}),
        json!({"op": "connect", "name": "p", "v": 5}),
    ];
    for i in 0..30 {
        steps.push(json!({"op": "pub", "name": "p", "topic": format!("jobs/{i}"), "payload": "x"}));
    }
    steps.push(json!({"op": "sleep", "secs": 0.5}));
    let out = scenario(port, &json!(steps)).await;
    assert_eq!(
        out["a"]["subacks"],
        json!([[0]]),
        "shared subscriptions get QoS 0"
    );
    let mut nats_got = 0;
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(200), worker.next()).await {
        nats_got += 1;
    }
    let (a, b) = (msgs(&out, "a").len(), msgs(&out, "b").len());
    assert_eq!(
        a + b + nats_got,
        30,
        "each job once: a={a} b={b} nats={nats_got}"
    );
}

#[tokio::test]
async fn mqtt5_limits_expiry_and_disconnect_reasons() {
    if !paho() {
        return;
    }
    let (server, port) = start(ServerKind::Rill, "", "").await;
    let big = "x".repeat(400);
    let steps = json!([
        {"op": "connect", "name": "small", "v": 5, "props": {"max_packet": 200}},
        {"op": "sub", "name": "small", "filter": "m/#"},
        {"op": "connect", "name": "keep", "id": "keeper", "v": 5, "props": {"session_expiry": 60}},
        {"op": "sub", "name": "keep", "filter": "q/#", "qos": 1},
        {"op": "disconnect", "name": "keep"},
        {"op": "connect", "name": "p", "v": 5},
        {"op": "pub", "name": "p", "topic": "m/big", "payload": big},
        {"op": "pub", "name": "p", "topic": "m/small", "payload": "ok"},
        {"op": "pub", "name": "p", "topic": "q/1", "payload": "kept", "qos": 1},
        {"op": "wait_msgs", "name": "small", "count": 1},
        {"op": "connect", "name": "back", "id": "keeper", "v": 5, "clean": false},
        {"op": "wait_msgs", "name": "back", "count": 1},
        {"op": "connect", "name": "thief", "id": "keeper", "v": 5, "clean": false},
        {"op": "sleep", "secs": 0.5},
    ]);
    let out = scenario(port, &steps).await;
    let small: Vec<_> = msgs(&out, "small")
        .iter()
        .map(|m| m["topic"].clone())
        .collect();
    assert_eq!(
        small,
        [json!("m/small")],
        "the 400-byte message exceeds the client's maximum"
    );
    assert_eq!(out["back"]["session_present"], true, "{out}");
    assert_eq!(msgs(&out, "back")[0]["payload"], "kept");
    // 0x8E: session taken over.
    assert_eq!(out["back"]["disconnect"], 142, "{out}");
    drop(server);
}

#[tokio::test]
async fn mqtt5_request_reply_through_a_nats_responder() {
    if !paho() {
        return;
    }
    let (server, port) = start(ServerKind::Rill, "", "").await;
    let nats = server.client().await;
    let mut requests = nats.subscribe("svc.echo").await.expect("subscribe");
    let responder = nats.clone();
    let serve = tokio::spawn(async move {
        let mut served = Vec::new();
        while let Some(m) = requests.next().await {
            let Some(reply) = m.reply.clone() else {
                continue;
            };
            served.push(reply.to_string());
            let answer = format!("echo {}", String::from_utf8_lossy(&m.payload));
            responder
                .publish(reply, answer.into())
                .await
                .expect("reply");
            responder.flush().await.expect("flush");
        }
        served
    });
    rill_tests::sync(&nats).await;
    let steps = json!([
        {"op": "connect", "name": "req", "v": 5},
        {"op": "sub", "name": "req", "filter": "resp/req"},
        {"op": "connect", "name": "old", "v": 4},
        {"op": "sub", "name": "old", "filter": "resp/#"},
        {"op": "pub", "name": "req", "topic": "svc/echo", "payload": "one",
         "props": {"response_topic": "resp/req", "correlation": "abc-1"}},
        {"op": "wait_msgs", "name": "req", "count": 1},
        {"op": "pub", "name": "req", "topic": "svc/echo", "payload": "two",
         "props": {"response_topic": "resp/req"}},
        {"op": "wait_msgs", "name": "req", "count": 2},
        {"op": "wait_msgs", "name": "old", "count": 2},
    ]);
    let out = scenario(port, &steps).await;
    let got = crate::mqtt::msgs(&out, "req");
    let seen: Vec<_> = got
        .iter()
        .map(|m| json!([m["topic"], m["payload"], m["props"]]))
        .collect();
    assert_eq!(
        seen,
        [
            json!(["resp/req", "echo one", {"CorrelationData": "abc-1"}]),
            json!(["resp/req", "echo two", {}]),
        ],
        "{out}"
    );
    let old: Vec<_> = msgs(&out, "old")
        .iter()
        .map(|m| m["payload"].clone())
        .collect();
    assert_eq!(
        old,
        ["echo one", "echo two"],
        "3.1.1 subscribers get the reply too"
    );
    serve.abort();
}

#[tokio::test]
async fn mqtt5_message_expiry_drops_stored_copies_and_sends_what_is_left() {
    if !paho() {
        return;
    }
    let (server, port) = start(ServerKind::Rill, "", "").await;
    let steps = json!([
        {"op": "connect", "name": "away", "id": "exp-1", "v": 5, "props": {"session_expiry": 60}},
        {"op": "sub", "name": "away", "filter": "e/#", "qos": 1},
        {"op": "disconnect", "name": "away"},
        {"op": "connect", "name": "live", "v": 5},
        {"op": "sub", "name": "live", "filter": "e/#"},
        {"op": "connect", "name": "p", "v": 5},
        {"op": "pub", "name": "p", "topic": "e/short", "payload": "s", "qos": 1, "props": {"expiry": 1}},
        {"op": "pub", "name": "p", "topic": "e/long", "payload": "l", "qos": 1, "props": {"expiry": 100}},
        {"op": "pub", "name": "p", "topic": "e/rshort", "payload": "rs", "retain": true, "props": {"expiry": 1}},
        {"op": "pub", "name": "p", "topic": "e/rlong", "payload": "rl", "retain": true, "props": {"expiry": 100}},
        {"op": "wait_msgs", "name": "live", "count": 4},
        {"op": "sleep", "secs": 2.2},
        {"op": "connect", "name": "away", "id": "exp-1", "v": 5, "clean": false, "props": {"session_expiry": 60}},
        {"op": "wait_msgs", "name": "away", "count": 1},
        {"op": "connect", "name": "late", "v": 5},
        {"op": "sub", "name": "late", "filter": "e/#"},
        {"op": "wait_msgs", "name": "late", "count": 1},
        {"op": "sleep", "secs": 0.5},
    ]);
    let out = scenario(port, &steps).await;
    let expiry = |m: &serde_json::Value| m["props"]["MessageExpiryInterval"].as_u64();
    let live = msgs(&out, "live");
    let live: Vec<_> = live
        .iter()
        .map(|m| (m["payload"].clone(), expiry(m)))
        .collect();
    assert_eq!(live.len(), 4, "{out}");
    for (payload, left) in &live {
        let full = if payload.as_str().is_some_and(|p| p.ends_with('s')) {
            1
        } else {
            100
        };
        assert!(
            left.is_some_and(|l| l > 0 && l <= full),
            "{payload}: {left:?}"
        );
    }
    // Over two seconds later: the 1 s messages are gone, the others carry what is left.
    let away = msgs(&out, "away");
    assert_eq!(away.len(), 1, "only the unexpired QoS 1 message: {out}");
    assert_eq!(away[0]["payload"], "l");
    assert!(expiry(&away[0]).is_some_and(|l| l < 100 && l > 90), "{out}");
    let late = msgs(&out, "late");
    assert_eq!(late.len(), 1, "only the unexpired retained message: {out}");
    assert_eq!(
        (late[0]["payload"].as_str(), late[0]["retain"].as_bool()),
        (Some("rl"), Some(true))
    );
    assert!(expiry(&late[0]).is_some_and(|l| l < 100 && l > 90), "{out}");
    drop(server);
}

/// MQTT 5 names why a filter is refused: 0x8F Topic Filter Invalid for a malformed filter or
/// shared subscription, per filter, with the valid ones granted and delivering.
#[tokio::test]
async fn mqtt5_invalid_topic_filters_get_reason_0x8f() {
    if !paho() {
        return;
    }
    let (server, port) = start(ServerKind::Rill, "", "").await;
    let steps = json!([
        {"op": "connect", "name": "s", "v": 5},
        {"op": "sub", "name": "s", "filter": "a/#/b", "unchecked": true},
        {"op": "sub", "name": "s", "filter": "sport+", "unchecked": true},
        {"op": "sub", "name": "s", "filter": "$share//t", "unchecked": true},
        {"op": "sub", "name": "s", "filter": "$share/g+/t", "unchecked": true},
        {"op": "sub", "name": "s", "filter": "ok/+", "qos": 1},
        {"op": "connect", "name": "p", "v": 5},
        {"op": "pub", "name": "p", "topic": "ok/1", "payload": "still here"},
        {"op": "wait_msgs", "name": "s", "count": 1},
    ]);
    let out = scenario(port, &steps).await;
    assert_eq!(
        out["s"]["subacks"],
        json!([[0x8F], [0x8F], [0x8F], [0x8F], [1]]),
        "{out}"
    );
    assert_eq!(msgs(&out, "s")[0]["payload"], "still here");
    drop(server);
}
