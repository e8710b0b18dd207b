//! Counter streams (ADR-49), rill beside nats-server: the PubAcks (`val`, errors) of a
//! run of `Nats-Incr` publishes, the stored bodies, and the config rules.

use rill_tests::{ServerKind, ServerOpts, TestServer};
use serde_json::{Value, json};

use super::{BOTH, api, publish, stored, wait_stored};

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

/// The last message of `subject` in `stream` once `stream` holds `n` messages: its
/// headers (sorted, `Nats-Stream-Source` without the origin's identity, which differs
/// from run to run) and body.
async fn last_of(client: &async_nats::Client, stream: &str, n: usize, subject: &str) -> Value {
    let msgs = wait_stored(client, stream, |m| m.len() == n).await;
    let last = msgs
        .iter()
        .rev()
        .find(|m| m["subject"] == subject)
        .unwrap_or_else(|| panic!("no {subject} in {stream}: {msgs:?}"));
    let mut lines: Vec<String> = last["hdrs"]
        .as_str()
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| match l.strip_prefix("Nats-Stream-Source: ") {
            Some(v) => {
                let five: Vec<&str> = v.split(' ').take(5).collect();
                format!("Nats-Stream-Source: {}", five.join(" "))
            }
            None => l.to_owned(),
        })
        .collect();
    lines.sort_unstable();
    json!({"hdrs": lines, "data": last["data"]})
}

async fn incr(client: &async_nats::Client, subject: &str, by: &str) -> Value {
    publish(client, subject, &[("Nats-Incr", by)], "").await
}

/// Counters sourced into a counter stream add up, as nats-server 2.15.1 sums them: each
/// copy adds the change of its origin's counter, `Nats-Counter-Sources` keeps every
/// origin's value and is carried on by the aggregate's own increments; a purged origin
/// that counts again from zero takes its share down; an aggregate with a value of its
/// own before the source came keeps it; a stream without counters copies the counters
/// as they are.
async fn sourced(kind: ServerKind) -> Value {
    let server = TestServer::start_with(ServerOpts::kind(kind)).await;
    let c = server.client().await;
    for n in ["C1", "C2"] {
        let cfg = json!({"name": n, "subjects": [format!("{}.>", n.to_lowercase())], "allow_msg_counter": true});
        api(&c, &format!("STREAM.CREATE.{n}"), cfg).await;
    }
    for (subject, by) in [("c1.x", "5"), ("c1.x", "2"), ("c2.x", "10"), ("c1.y", "1")] {
        incr(&c, subject, by).await;
    }
    let from = |n: &str| json!({"name": n, "subject_transforms": [{"src": format!("{}.>", n.to_lowercase()), "dest": "agg.>"}]});
    let agg = json!({"name": "AGG", "subjects": ["agg.>"], "allow_msg_counter": true,
        "sources": [from("C1"), from("C2")]});
    let created = api(&c, "STREAM.CREATE.AGG", agg).await;
    assert!(created.get("error").is_none(), "{kind:?}: {created}");
    // The two sources' copies interleave in any order: the sum and the sources' values
    // are the same whichever came last.
    let mut first = last_of(&c, "AGG", 4, "agg.x").await;
    first["hdrs"] = json!(first["hdrs"].as_array().map(|h| {
        h.iter()
            .filter(|l| {
                l.as_str()
                    .is_some_and(|l| l.starts_with("Nats-Counter-Sources"))
            })
            .cloned()
            .collect::<Vec<_>>()
    }));
    let mut seen = vec![first, last_of(&c, "AGG", 4, "agg.y").await];
    incr(&c, "c2.x", "-3").await;
    seen.push(last_of(&c, "AGG", 5, "agg.x").await);
    let own = incr(&c, "agg.x", "100").await;
    seen.push(json!({"ack_val": own["val"]}));
    seen.push(last_of(&c, "AGG", 6, "agg.x").await);
    api(&c, "STREAM.PURGE.C1", json!({"filter": "c1.x"})).await;
    incr(&c, "c1.x", "4").await;
    seen.push(last_of(&c, "AGG", 7, "agg.x").await);

    // An aggregate with a value of its own before the source is added.
    let own = json!({"name": "AG", "subjects": ["c9.>"], "allow_msg_counter": true});
    api(&c, "STREAM.CREATE.AG", own.clone()).await;
    incr(&c, "c9.x", "1000").await;
    let mut with_source = own;
    with_source["sources"] =
        json!([{"name": "C2", "subject_transforms": [{"src": "c2.>", "dest": "c9.>"}]}]);
    let updated = api(&c, "STREAM.UPDATE.AG", with_source).await;
    assert!(updated.get("error").is_none(), "{kind:?}: {updated}");
    seen.push(last_of(&c, "AG", 3, "c9.x").await);

    // A stream without counters copies them as they are.
    let plain = json!({"name": "PLAIN", "subjects": ["plain.>"], "sources": [{"name": "C2"}]});
    api(&c, "STREAM.CREATE.PLAIN", plain).await;
    seen.push(last_of(&c, "PLAIN", 2, "c2.x").await);
    json!(seen)
}

#[tokio::test]
async fn sourced_counters_add_up_like_nats_server() {
    let mut seen = Vec::new();
    for kind in BOTH {
        seen.push(sourced(kind).await);
    }
    insta::assert_json_snapshot!(seen[0]);
    assert_eq!(seen[0], seen[1]);
}
