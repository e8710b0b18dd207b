//! Exactly-once publishing: `Nats-Msg-Id` dedupe (also across a restart), the
//! `Nats-Expected-*` headers with nats-server's error codes, `Nats-Rollup`, sealed
//! and `no_ack` streams. Raw requests check the PubAck JSON exactly.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::message::PublishMessage;
use rill_tests::{ServerKind, ServerOpts, TestServer};
use serde_json::{Value, json};

use crate::js_streams::api;

/// Publishes with headers as a request and returns the PubAck JSON.
pub(crate) async fn publish(
    client: &async_nats::Client,
    subject: &str,
    headers: &[(&str, &str)],
    payload: &str,
) -> Value {
    let mut h = HeaderMap::new();
    for (k, v) in headers {
        h.insert(*k, *v);
    }
    let msg = client
        .request_with_headers(subject.to_owned(), h, payload.to_owned().into())
        .await
        .expect("publish request");
    serde_json::from_slice(&msg.payload).expect("PubAck JSON")
}

fn err_code(v: &Value) -> u64 {
    v["error"]["err_code"].as_u64().unwrap_or_default()
}

async fn create(client: &async_nats::Client, cfg: Value) {
    let name = cfg["name"].as_str().expect("name").to_owned();
    let r = api(
        client,
        &format!("$JS.API.STREAM.CREATE.{name}"),
        &cfg.to_string(),
    )
    .await;
    assert!(r.get("error").is_none(), "{r}");
}

#[tokio::test]
async fn msg_id_dedupes_within_window_and_across_restart() {
    let mut server = TestServer::start().await;
    let c = server.client().await;
    create(&c, json!({"name": "D", "subjects": ["d.>"]})).await;
    let first = publish(&c, "d.a", &[("Nats-Msg-Id", "m1")], "x").await;
    assert_eq!(first, json!({"stream": "D", "seq": 1}));
    let dup = publish(&c, "d.a", &[("Nats-Msg-Id", "m1")], "x").await;
    assert_eq!(dup, json!({"stream": "D", "seq": 1, "duplicate": true}));
    server.restart().await;
    let c = server.client().await;
    let dup = publish(&c, "d.a", &[("Nats-Msg-Id", "m1")], "x").await;
    assert_eq!(dup, json!({"stream": "D", "seq": 1, "duplicate": true}));
    let js = async_nats::jetstream::new(c.clone());
    let ack = js
        .send_publish(
            "d.b",
            PublishMessage::build().message_id("m2").payload("y".into()),
        )
        .await
        .expect("publish")
        .await
        .expect("ack");
    assert_eq!((ack.sequence, ack.duplicate), (2, false));
    let info = api(&c, "$JS.API.STREAM.INFO.D", "").await;
    assert_eq!(info["state"]["messages"], 2);
}

/// `Nats-Expected-Last-Msg-Id` compares with the id of the message stored last, also after a
/// clean stop and after SIGKILL (rill reads it when first asked, not at open); the same answers as
/// nats-server 2.15.1.
#[tokio::test]
async fn expected_last_msg_id_holds_across_a_restart_as_nats_server() {
    let mut seen = Vec::new();
    for kind in [ServerKind::Nats, ServerKind::Rill] {
        let mut answers = Vec::new();
        for kill in [false, true] {
            let mut server = TestServer::start_with(ServerOpts::kind(kind)).await;
            let c = server.client().await;
            create(&c, json!({"name": "L", "subjects": ["l.>"]})).await;
            publish(&c, "l.a", &[("Nats-Msg-Id", "id1")], "1").await;
            if kill {
                server.kill();
            }
            server.restart().await;
            let c = server.client().await;
            for expected in ["zz", "id1", "id1", ""] {
                let h = [("Nats-Expected-Last-Msg-Id", expected)];
                answers.push(publish(&c, "l.a", &h, "x").await);
            }
        }
        seen.push(answers);
    }
    assert_eq!(seen[1], seen[0], "rill (right) against nats-server (left)");
    insta::assert_json_snapshot!("expected_last_msg_id_after_restart", seen[1]);
}

#[tokio::test]
async fn msg_id_window_expires() {
    let server = TestServer::start().await;
    let c = server.client().await;
    create(
        &c,
        json!({"name": "W", "subjects": ["w"], "duplicate_window": 200_000_000}),
    )
    .await;
    assert_eq!(
        publish(&c, "w", &[("Nats-Msg-Id", "a")], "1").await["seq"],
        1
    );
    assert_eq!(
        publish(&c, "w", &[("Nats-Msg-Id", "a")], "1").await["duplicate"],
        true
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let again = publish(&c, "w", &[("Nats-Msg-Id", "a")], "1").await;
    assert_eq!(again, json!({"stream": "W", "seq": 2}));
}

#[tokio::test]
async fn expected_headers_match_nats_server_codes() {
    let server = TestServer::start().await;
    let c = server.client().await;
    create(&c, json!({"name": "E", "subjects": ["e.>"]})).await;
    let r = publish(&c, "e.a", &[("Nats-Expected-Stream", "X")], "x").await;
    insta::assert_json_snapshot!("expected_stream", r);
    let r = publish(&c, "e.a", &[("Nats-Expected-Last-Sequence", "5")], "x").await;
    insta::assert_json_snapshot!("expected_last_seq", r);
    let r = publish(&c, "e.a", &[("Nats-Expected-Last-Msg-Id", "zz")], "x").await;
    insta::assert_json_snapshot!("expected_last_msg_id", r);
    let r = publish(
        &c,
        "e.a",
        &[("Nats-Expected-Last-Subject-Sequence", "3")],
        "x",
    )
    .await;
    assert_eq!(err_code(&r), 10071);
    // Correct expectations succeed.
    let ok = publish(
        &c,
        "e.a",
        &[("Nats-Expected-Last-Sequence", "0"), ("Nats-Msg-Id", "id1")],
        "x",
    )
    .await;
    assert_eq!(ok["seq"], 1);
    let ok = publish(&c, "e.a", &[("Nats-Expected-Last-Msg-Id", "id1")], "x").await;
    assert_eq!(ok["seq"], 2);
    let ok = publish(
        &c,
        "e.b",
        &[("Nats-Expected-Last-Subject-Sequence", "0")],
        "x",
    )
    .await;
    assert_eq!(ok["seq"], 3);
    let ok = publish(
        &c,
        "e.a",
        &[("Nats-Expected-Last-Subject-Sequence", "2")],
        "x",
    )
    .await;
    assert_eq!(ok["seq"], 4);
    let stale = publish(
        &c,
        "e.a",
        &[("Nats-Expected-Last-Subject-Sequence", "2")],
        "x",
    )
    .await;
    assert_eq!(stale["error"]["description"], "wrong last sequence: 4");
    let other_subject = publish(
        &c,
        "e.c",
        &[
            ("Nats-Expected-Last-Subject-Sequence", "3"),
            ("Nats-Expected-Last-Subject-Sequence-Subject", "e.b"),
        ],
        "x",
    )
    .await;
    assert_eq!(other_subject["seq"], 5);
    let stream_ok = publish(&c, "e.a", &[("Nats-Expected-Stream", "E")], "x").await;
    assert_eq!(stream_ok["seq"], 6);
}

#[tokio::test]
async fn rollups_sub_and_all() {
    let server = TestServer::start().await;
    let c = server.client().await;
    create(
        &c,
        json!({"name": "R", "subjects": ["r.>"], "allow_rollup_hdrs": true}),
    )
    .await;
    create(&c, json!({"name": "NR", "subjects": ["nr"]})).await;
    for _ in 0..3 {
        publish(&c, "r.a", &[], "x").await;
        publish(&c, "r.b", &[], "y").await;
    }
    assert_eq!(
        publish(&c, "r.a", &[("Nats-Rollup", "sub")], "z").await["seq"],
        7
    );
    let info = api(&c, "$JS.API.STREAM.INFO.R", r#"{"deleted_details":true}"#).await;
    assert_eq!(info["state"]["messages"], 4);
    assert_eq!(info["state"]["deleted"], json!([3, 5]));
    let bad = publish(&c, "r.a", &[("Nats-Rollup", "foo")], "z").await;
    insta::assert_json_snapshot!("rollup_invalid", bad);
    assert_eq!(
        publish(&c, "r.b", &[("Nats-Rollup", "all")], "z").await["seq"],
        8
    );
    let info = api(&c, "$JS.API.STREAM.INFO.R", "").await;
    assert_eq!(info["state"]["messages"], 1);
    assert_eq!(info["state"]["first_seq"], 8);
    let denied = publish(&c, "nr", &[("Nats-Rollup", "sub")], "z").await;
    insta::assert_json_snapshot!("rollup_not_permitted", denied);
}

#[tokio::test]
async fn sealed_and_no_ack_streams() {
    let server = TestServer::start().await;
    let c = server.client().await;
    create(&c, json!({"name": "SE", "subjects": ["se"]})).await;
    let up = api(
        &c,
        "$JS.API.STREAM.UPDATE.SE",
        &json!({"name": "SE", "subjects": ["se"], "sealed": true}).to_string(),
    )
    .await;
    assert_eq!(up["config"]["sealed"], true);
    assert_eq!(up["config"]["deny_purge"], true);
    let r = publish(&c, "se", &[], "x").await;
    insta::assert_json_snapshot!("sealed_publish", r);
    let purge = api(&c, "$JS.API.STREAM.PURGE.SE", "").await;
    assert_eq!(purge["error"]["err_code"], 10109);

    create(
        &c,
        json!({"name": "NA", "subjects": ["na"], "no_ack": true}),
    )
    .await;
    let r = tokio::time::timeout(Duration::from_millis(500), c.request("na", "x".into())).await;
    assert!(!matches!(r, Ok(Ok(_))), "no_ack stream answered: {r:?}");
    let info = api(&c, "$JS.API.STREAM.INFO.NA", "").await;
    assert_eq!(info["state"]["messages"], 1);
}
