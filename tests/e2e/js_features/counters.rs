//! Counter streams (ADR-49), rill beside nats-server: the PubAcks (`val`, errors) of a
//! run of `Nats-Incr` publishes, the stored bodies, and the config rules.

use rill_tests::{ServerKind, ServerOpts, TestServer};
use serde_json::{Value, json};

use super::{BOTH, api, publish, stored};

async fn story(kind: ServerKind) -> Value {
    let server = TestServer::start_with(ServerOpts::kind(kind)).await;
    let client = server.client().await;
    let created = api(
        &client,
        "STREAM.CREATE.K",
        json!({"name":"K","subjects":["k.>"],"allow_msg_counter":true}),
    )
    .await;
    assert!(created.get("error").is_none(), "{created}");
    api(
        &client,
        "STREAM.CREATE.P",
        json!({"name":"P","subjects":["p.>"]}),
    )
    .await;
    let big = "100000000000000000000000000000";
    type Step<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str);
    let steps: Vec<Step> = vec![
        ("k.a", vec![("Nats-Incr", "1")], ""),
        ("k.a", vec![("Nats-Incr", "+5")], ""),
        ("k.a", vec![("Nats-Incr", "-10")], ""),
        ("k.a", vec![("Nats-Incr", big)], ""),
        ("k.a", vec![("Nats-Incr", "0")], ""),
        ("k.a", vec![("Nats-Incr", "abc")], ""),
        ("k.a", vec![("Nats-Incr", "1_000")], ""),
        ("k.a", vec![("Nats-Incr", "")], ""),
        ("k.a", vec![("Nats-Incr", "1")], "payload"),
        ("k.a", vec![], ""),
        ("k.b", vec![("Nats-Incr", "2"), ("Nats-Msg-Id", "x")], ""),
        ("k.b", vec![("Nats-Incr", "2"), ("Nats-Msg-Id", "x")], ""),
        (
            "k.b",
            vec![("Nats-Incr", "2"), ("Nats-Expected-Last-Sequence", "0")],
            "",
        ),
        ("k.b", vec![("Nats-Incr", "2"), ("Nats-Rollup", "sub")], ""),
        ("k.b", vec![("Nats-Incr", "2"), ("Nats-TTL", "5s")], ""),
        ("k.b", vec![("Nats-Incr", "-3"), ("Foo", "bar")], ""),
        ("p.a", vec![("Nats-Incr", "2")], ""),
    ];
    let mut acks = Vec::new();
    for (subject, hdrs, body) in &steps {
        acks.push(publish(&client, subject, hdrs, body).await);
    }
    // The value continues from the subject's last remaining message.
    let deleted = api(&client, "STREAM.MSG.DELETE.K", json!({"seq": 7})).await;
    assert_eq!(deleted["success"], true, "{deleted}");
    acks.push(publish(&client, "k.b", &[("Nats-Incr", "1")], "").await);
    let update = api(
        &client,
        "STREAM.UPDATE.K",
        json!({"name":"K","subjects":["k.>"]}),
    )
    .await;
    let ttl = json!({"name":"K2","subjects":["k2"],"allow_msg_counter":true,"allow_msg_ttl":true});
    let with_ttl = api(&client, "STREAM.CREATE.K2", ttl).await;
    let mut msgs = stored(&client, "K").await;
    // The client's header map does not keep the order headers were added in.
    for m in &mut msgs {
        let mut lines: Vec<&str> = m["hdrs"].as_str().unwrap_or_default().lines().collect();
        lines.sort_unstable();
        m["hdrs"] = json!(lines.join("|"));
    }
    json!({
        "acks": acks,
        "stored": msgs,
        "update_error": update["error"],
        "ttl_error": with_ttl["error"],
    })
}

#[tokio::test]
async fn counter_increments_answer_and_store_like_nats_server() {
    let mut seen = Vec::new();
    for kind in BOTH {
        seen.push(story(kind).await);
    }
    insta::assert_json_snapshot!(seen[0]);
    assert_eq!(seen[0], seen[1]);
}
