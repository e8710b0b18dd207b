//! Atomic batch publish (ADR-50), rill beside nats-server: the replies to a run of batch
//! publishes (staged, committed, refused), what is stored, the limits, and that nothing
//! of a batch is visible before its commit.

use rill_tests::{ServerKind, ServerOpts, TestServer};
use serde_json::{Value, json};

use super::{BOTH, api, stored};

/// Publishes as a request; the reply as JSON, or `"<empty>"` for a staged message.
async fn send(client: &async_nats::Client, subject: &str, hdrs: &[(&str, &str)]) -> Value {
    let mut headers = async_nats::HeaderMap::new();
    for (k, v) in hdrs {
        headers.append(*k, *v);
    }
    let reply = client
        .request_with_headers(subject.to_owned(), headers, "x".into())
        .await
        .expect("publish");
    if reply.payload.is_empty() {
        return json!("<empty>");
    }
    serde_json::from_slice(&reply.payload).expect("ack")
}

/// `Nats-Batch-Id`, `Nats-Batch-Sequence` and, when given, `Nats-Batch-Commit`.
fn batch<'a>(id: &'a str, seq: &'a str, commit: Option<&'a str>) -> Vec<(&'a str, &'a str)> {
    let mut h = vec![("Nats-Batch-Id", id), ("Nats-Batch-Sequence", seq)];
    h.extend(commit.map(|c| ("Nats-Batch-Commit", c)));
    h
}

/// A header block's lines sorted (async-nats sends headers in no fixed order).
fn sorted_lines(block: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = block.lines().filter(|l| !l.is_empty()).collect();
    lines.sort_unstable();
    lines
}

async fn messages(client: &async_nats::Client, stream: &str) -> Value {
    let info = api(client, &format!("STREAM.INFO.{stream}"), json!({})).await;
    info["state"]["messages"].clone()
}

async fn story(kind: ServerKind) -> Value {
    let server = TestServer::start_with(ServerOpts::kind(kind)).await;
    let client = server.client().await;
    for cfg in [
        json!({"name":"A","subjects":["a.>"],"allow_atomic":true,"allow_msg_ttl":true}),
        json!({"name":"B","subjects":["b.>"]}),
        json!({"name":"E","subjects":["e.>"],"allow_atomic":true,"max_msgs":3,"discard":"new"}),
    ] {
        let name = cfg["name"].as_str().unwrap_or_default().to_owned();
        let r = api(&client, &format!("STREAM.CREATE.{name}"), cfg).await;
        assert!(r.get("error").is_none(), "{r}");
    }
    let mut out = serde_json::Map::new();
    let mut note = |k: &str, v: Value| {
        out.insert(format!("{:02} {k}", out.len()), v);
    };
    note(
        "disabled",
        send(&client, "b.1", &batch("x", "1", None)).await,
    );
    note(
        "staged 1",
        send(&client, "a.1", &batch("b1", "1", None)).await,
    );
    note(
        "staged 2",
        send(&client, "a.2", &batch("b1", "2", None)).await,
    );
    note("nothing visible yet", messages(&client, "A").await);
    let commit = [batch("b1", "3", Some("1")), vec![("X-App", "1")]].concat();
    note("commit", send(&client, "a.3", &commit).await);
    note(
        "eob staged",
        send(&client, "a.4", &batch("b2", "1", None)).await,
    );
    note(
        "eob",
        send(&client, "a.5", &batch("b2", "2", Some("eob"))).await,
    );
    let steps: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("missing seq", vec![("Nats-Batch-Id", "b3")]),
        ("seq 0", batch("b4", "0", None)),
        ("bad seq", batch("b4", "x", None)),
        ("starts at 2", batch("b5", "2", None)),
        ("gap 1", batch("b6", "1", None)),
        ("gap 3", batch("b6", "3", None)),
        ("after gap", batch("b6", "2", Some("1"))),
        ("bad commit 1", batch("b7", "1", None)),
        ("bad commit 2", batch("b7", "2", Some("yes"))),
        ("commit at once", batch("b8", "1", Some("1"))),
        ("eob alone", batch("b9", "1", Some("eob"))),
        ("empty id", batch("", "1", Some("1"))),
        (
            "unsupported",
            [
                batch("b10", "1", Some("1")),
                vec![("Nats-Expected-Last-Msg-Id", "m")],
            ]
            .concat(),
        ),
        (
            "dup 1",
            [batch("b11", "1", None), vec![("Nats-Msg-Id", "m")]].concat(),
        ),
        (
            "dup 2",
            [batch("b11", "2", Some("1")), vec![("Nats-Msg-Id", "m")]].concat(),
        ),
        ("last seq 1", batch("b12", "1", None)),
        (
            "last seq 2",
            [
                batch("b12", "2", Some("1")),
                vec![("Nats-Expected-Last-Sequence", "1")],
            ]
            .concat(),
        ),
        (
            "subj seq 1",
            [
                batch("b13", "1", None),
                vec![("Nats-Expected-Last-Subject-Sequence", "0")],
            ]
            .concat(),
        ),
        (
            "subj seq 2",
            [
                batch("b13", "2", Some("1")),
                vec![("Nats-Expected-Last-Subject-Sequence", "0")],
            ]
            .concat(),
        ),
        (
            "ttl",
            [batch("b14", "1", Some("1")), vec![("Nats-TTL", "1h")]].concat(),
        ),
        (
            "rollup",
            [batch("b15", "1", Some("1")), vec![("Nats-Rollup", "sub")]].concat(),
        ),
    ];
    for (name, hdrs) in &steps {
        let subject = if name.starts_with("subj seq") {
            "a.9"
        } else {
            "a.1"
        };
        note(name, send(&client, subject, hdrs).await);
    }
    let id65 = "x".repeat(65);
    note(
        "id 65",
        send(&client, "a.1", &batch(&id65, "1", None)).await,
    );
    for seq in ["1", "2", "3"] {
        send(&client, "e.1", &batch("e", seq, None)).await;
    }
    note(
        "discard new",
        send(&client, "e.1", &batch("e", "4", Some("1"))).await,
    );
    note("discard new stored", messages(&client, "E").await);
    // Limits: 1000 messages a batch, 50 open batches a stream.
    for seq in 1..=1000 {
        let mut headers = async_nats::HeaderMap::new();
        headers.append("Nats-Batch-Id", "big");
        headers.append("Nats-Batch-Sequence", seq.to_string().as_str());
        client
            .publish_with_headers("a.big", headers, "x".into())
            .await
            .expect("publish");
    }
    note(
        "1001st",
        send(&client, "a.big", &batch("big", "1001", None)).await,
    );
    let mut refused_at = Value::Null;
    for n in 0..52 {
        let id = format!("open{n}");
        let r = send(&client, "a.o", &batch(&id, "1", None)).await;
        if r != json!("<empty>") {
            refused_at = json!({"open": n, "reply": r});
            break;
        }
    }
    note("too many open", refused_at);
    note(
        "open one commits",
        send(&client, "a.o", &batch("open0", "2", Some("1"))).await,
    );
    let kept: Vec<Value> = stored(&client, "A")
        .await
        .into_iter()
        .map(|mut m| {
            m.as_object_mut().map(|o| o.remove("seq"));
            m["hdrs"] = json!(sorted_lines(m["hdrs"].as_str().unwrap_or_default()));
            m
        })
        .collect();
    note("stored", json!(kept));
    let mirror = json!({"name":"M","mirror":{"name":"A"},"allow_atomic":true});
    note(
        "mirror",
        api(&client, "STREAM.CREATE.M", mirror).await["error"].clone(),
    );
    Value::Object(out)
}

#[tokio::test]
async fn atomic_batches_answer_and_store_like_nats_server() {
    let mut seen = Vec::new();
    for kind in BOTH {
        seen.push(story(kind).await);
    }
    insta::assert_json_snapshot!(seen[0]);
    assert_eq!(seen[0], seen[1]);
}

#[tokio::test]
async fn committed_batches_survive_a_restart_and_open_ones_do_not() {
    let mut server = TestServer::start().await;
    let client = server.client().await;
    let cfg = json!({"name":"A","subjects":["a.>"],"allow_atomic":true});
    api(&client, "STREAM.CREATE.A", cfg).await;
    send(&client, "a.1", &batch("done", "1", None)).await;
    let ack = send(&client, "a.2", &batch("done", "2", Some("1"))).await;
    assert_eq!(ack["count"], 2, "{ack}");
    assert_eq!(
        send(&client, "a.3", &batch("open", "1", None)).await,
        "<empty>"
    );
    drop(client);
    server.restart().await;
    let client = server.client().await;
    assert_eq!(messages(&client, "A").await, 2);
    let after = send(&client, "a.3", &batch("open", "2", Some("1"))).await;
    assert_eq!(after["error"]["err_code"], 10176, "{after}");
}
