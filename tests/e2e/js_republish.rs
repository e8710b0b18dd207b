//! A stream's `subject_transform` and `republish`, against rill and nats-server side by
//! side: the subject messages are stored under, and the core NATS copies republished
//! once stored (subject, headers, payload; `headers_only` with `Nats-Msg-Size`), KV
//! buckets with `republish` included.

use std::time::Duration;

use futures::StreamExt;
use rill_tests::{ServerKind, ServerOpts, TestServer, sync};
use serde_json::json;

use crate::js_dedupe::publish;
use crate::js_streams::api;

const WAIT: Duration = Duration::from_secs(5);
const KINDS: [ServerKind; 2] = [ServerKind::Rill, ServerKind::Nats];

/// Subject, headers (the time stamp's value left out) and payload of a republished copy.
fn show(m: &async_nats::Message) -> String {
    let mut out = format!("{} reply={:?}", m.subject, m.reply);
    if let Some(h) = &m.headers {
        let mut lines: Vec<String> = h
            .iter()
            .map(|(k, v)| {
                let v: Vec<&str> = v.iter().map(|v| v.as_str()).collect();
                if k.to_string() == "Nats-Time-Stamp" {
                    return format!("{k}: <time>");
                }
                format!("{k}: {}", v.join(","))
            })
            .collect();
        lines.sort();
        out.push_str(&format!(" [{}]", lines.join("; ")));
    }
    out.push_str(&format!(" {:?}", String::from_utf8_lossy(&m.payload)));
    out
}

/// Creates `stream`, subscribes to `listen`, publishes `msgs` and returns what arrived.
async fn republished(kind: ServerKind, stream: serde_json::Value, listen: &str) -> Vec<String> {
    let server = TestServer::start_with(ServerOpts::kind(kind)).await;
    let c = server.client().await;
    let name = stream["name"].as_str().expect("name").to_owned();
    let r = api(
        &c,
        &format!("$JS.API.STREAM.CREATE.{name}"),
        &stream.to_string(),
    )
    .await;
    assert!(r.get("error").is_none(), "{kind:?}: {r}");
    let mut sub = c.subscribe(listen.to_owned()).await.expect("subscribe");
    sync(&c).await;
    for (subject, headers) in [
        ("in.a", vec![("X-A", "1")]),
        ("in.b", vec![]),
        ("in.a", vec![]),
    ] {
        let ack = publish(&c, subject, &headers, "hello").await;
        assert!(ack.get("error").is_none(), "{kind:?}: {ack}");
    }
    let mut out = Vec::new();
    for _ in 0..3 {
        let m = tokio::time::timeout(WAIT, sub.next())
            .await
            .expect("in time");
        out.push(show(&m.expect("open")));
    }
    let m = api(
        &c,
        &format!("$JS.API.STREAM.MSG.GET.{name}"),
        r#"{"seq":3}"#,
    )
    .await;
    out.push(format!("stored: {}", m["message"]["subject"]));
    out
}

#[tokio::test]
async fn republish_after_a_subject_transform_matches_nats_server() {
    let stream = json!({
        "name": "RP", "subjects": ["in.>"],
        "subject_transform": {"src": "in.*", "dest": "st.{{wildcard(1)}}"},
        "republish": {"src": "st.>", "dest": "out.>"},
    });
    let rill = republished(ServerKind::Rill, stream.clone(), "out.>").await;
    let nats = republished(ServerKind::Nats, stream, "out.>").await;
    assert_eq!(rill, nats);
    insta::assert_debug_snapshot!(rill);
}

#[tokio::test]
async fn headers_only_republish_matches_nats_server() {
    let stream = json!({
        "name": "HO", "subjects": ["in.>"],
        "republish": {"src": "in.a", "dest": "meta.a", "headers_only": true},
    });
    for kind in KINDS {
        let server = TestServer::start_with(ServerOpts::kind(kind)).await;
        let c = server.client().await;
        let r = api(&c, "$JS.API.STREAM.CREATE.HO", &stream.to_string()).await;
        assert!(r.get("error").is_none(), "{kind:?}: {r}");
        let mut sub = c.subscribe("meta.>").await.expect("subscribe");
        sync(&c).await;
        publish(&c, "in.b", &[], "not republished").await;
        publish(&c, "in.a", &[], "12345").await;
        let m = tokio::time::timeout(WAIT, sub.next())
            .await
            .expect("in time");
        let m = m.expect("open");
        assert_eq!(m.subject.as_str(), "meta.a", "{kind:?}");
        assert!(m.payload.is_empty(), "{kind:?}");
        let h = m.headers.expect("headers");
        assert_eq!(
            h.get("Nats-Msg-Size").map(|v| v.as_str()),
            Some("5"),
            "{kind:?}"
        );
        assert_eq!(
            h.get("Nats-Sequence").map(|v| v.as_str()),
            Some("2"),
            "{kind:?}"
        );
        assert_eq!(
            h.get("Nats-Last-Sequence").map(|v| v.as_str()),
            Some("0"),
            "{kind:?}"
        );
    }
}

#[tokio::test]
async fn invalid_transforms_and_republish_cycles_get_nats_servers_errors() {
    let cases = [
        json!({"name": "T1", "subjects": ["a.>"], "subject_transform": {"src": "a.*", "dest": "b.$2"}}),
        json!({"name": "T2", "subjects": ["a.>"], "republish": {"src": "a.>", "dest": "a.>"}}),
        json!({"name": "T3", "subjects": ["a.>"], "republish": {"src": "a.*", "dest": "b.{{nope(1)}}"}}),
    ];
    for case in cases {
        let mut errors = Vec::new();
        for kind in KINDS {
            let server = TestServer::start_with(ServerOpts::kind(kind)).await;
            let c = server.client().await;
            let name = case["name"].as_str().expect("name");
            let r = api(
                &c,
                &format!("$JS.API.STREAM.CREATE.{name}"),
                &case.to_string(),
            )
            .await;
            errors.push(r["error"].clone());
        }
        assert!(errors[0].is_object(), "{case}: {errors:?}");
        assert_eq!(errors[0], errors[1], "{case}");
    }
}

/// Creates KV bucket `bucket` with `republish` through async-nats, listens on
/// `listen`, puts, updates, deletes and purges a key, and returns what arrived and the
/// bucket stream's `republish` config.
async fn kv_republished(
    kind: ServerKind,
    bucket: &str,
    republish: async_nats::jetstream::stream::Republish,
    listen: &str,
) -> Vec<String> {
    use async_nats::jetstream::kv;
    let server = TestServer::start_with(ServerOpts::kind(kind)).await;
    let c = server.client().await;
    let js = async_nats::jetstream::new(c.clone());
    let kv = js
        .create_key_value(kv::Config {
            bucket: bucket.to_owned(),
            history: 5,
            republish: Some(republish),
            ..Default::default()
        })
        .await
        .expect("bucket");
    let mut sub = c.subscribe(listen.to_owned()).await.expect("subscribe");
    sync(&c).await;
    kv.put("hello.world", "Hello World!".into())
        .await
        .expect("put");
    kv.put("hello.world", "again".into()).await.expect("update");
    kv.put("other", "x".into()).await.expect("put");
    kv.delete("hello.world").await.expect("delete");
    kv.purge("other").await.expect("purge");
    let mut out = Vec::new();
    for _ in 0..5 {
        let m = tokio::time::timeout(WAIT, sub.next())
            .await
            .unwrap_or_else(|_| panic!("{kind:?}: in time, after {out:?}"));
        out.push(show(&m.expect("open")));
    }
    let info = api(&c, &format!("$JS.API.STREAM.INFO.KV_{bucket}"), "").await;
    out.push(format!("config: {}", info["config"]["republish"]));
    out
}

/// nats.py `test_kv_republish` as an e2e test (issue 21): a KV bucket with
/// `republish` hands every put, delete and purge to core subscribers once stored (the
/// KV operation headers included), whole or headers only.
#[tokio::test]
async fn kv_buckets_republish_as_nats_server() {
    use async_nats::jetstream::stream::Republish;
    let whole = || Republish {
        source: ">".into(),
        destination: "bar.>".into(),
        headers_only: false,
    };
    let headers = || Republish {
        source: ">".into(),
        destination: "quux.>".into(),
        headers_only: true,
    };
    let mut seen = Vec::new();
    for (bucket, republish, listen) in [
        ("TEST_UPDATE", whole(), "bar.>"),
        ("HEADERS", headers(), "quux.>"),
    ] {
        let rill = kv_republished(ServerKind::Rill, bucket, republish.clone(), listen).await;
        let nats = kv_republished(ServerKind::Nats, bucket, republish, listen).await;
        assert_eq!(rill, nats, "rill (left) and nats-server (right) differ");
        seen.push(rill);
    }
    insta::assert_debug_snapshot!(seen);
}
