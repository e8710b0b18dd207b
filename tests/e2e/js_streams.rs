//! JetStream streams through async-nats: the STREAM.* API, publish → PubAck,
//! persistence across restarts, file and memory storage, and the raw API JSON.

use async_nats::jetstream::{self, stream};
use futures::TryStreamExt;
use rill_tests::TestServer;
use serde_json::Value;

/// Sends a raw `$JS.API` request and returns the JSON reply.
pub(crate) async fn api(client: &async_nats::Client, subject: &str, body: &str) -> Value {
    let msg = client
        .request(subject.to_owned(), body.to_owned().into())
        .await
        .unwrap_or_else(|e| panic!("request {subject}: {e}"));
    serde_json::from_slice(&msg.payload).expect("JSON reply")
}

fn stream_config(name: &str, subjects: &[&str], storage: stream::StorageType) -> stream::Config {
    stream::Config {
        name: name.to_owned(),
        subjects: subjects.iter().map(|s| (*s).to_owned()).collect(),
        storage,
        ..Default::default()
    }
}

async fn create_publish_info(storage: stream::StorageType) {
    let server = TestServer::start().await;
    let js = server.jetstream().await;
    let mut s = js
        .create_stream(stream_config("ORDERS", &["orders.>"], storage))
        .await
        .expect("create");
    assert_eq!(s.cached_info().config.storage, storage);
    for i in 1..=3u64 {
        let ack = js
            .publish(format!("orders.{i}"), "hello".into())
            .await
            .expect("publish")
            .await
            .expect("ack");
        assert_eq!(ack.sequence, i);
        assert_eq!(ack.stream, "ORDERS");
        assert!(!ack.duplicate);
    }
    let info = s.info().await.expect("info");
    assert_eq!(info.state.messages, 3);
    assert_eq!(info.state.first_sequence, 1);
    assert_eq!(info.state.last_sequence, 3);
    let msg = s.get_raw_message(2).await.expect("get");
    assert_eq!(msg.subject.as_str(), "orders.2");
    assert_eq!(&msg.payload[..], b"hello");
    let names: Vec<String> = js.stream_names().try_collect().await.expect("names");
    assert_eq!(names, ["ORDERS"]);
    let infos: Vec<_> = js.streams().try_collect().await.expect("list");
    assert_eq!(infos.len(), 1);
    assert!(js.delete_stream("ORDERS").await.expect("delete").success);
    let names: Vec<String> = js.stream_names().try_collect().await.expect("names");
    assert!(names.is_empty());
}

#[tokio::test]
async fn file_stream_create_publish_info_delete() {
    create_publish_info(stream::StorageType::File).await;
}

#[tokio::test]
async fn memory_stream_create_publish_info_delete() {
    create_publish_info(stream::StorageType::Memory).await;
}

#[tokio::test]
async fn publish_without_stream_gets_no_responders() {
    let server = TestServer::start().await;
    let js = server.jetstream().await;
    let err = js
        .publish("nowhere", "x".into())
        .await
        .expect("publish")
        .await
        .expect_err("no stream");
    assert_eq!(
        err.kind(),
        jetstream::context::PublishErrorKind::StreamNotFound
    );
}

#[tokio::test]
async fn streams_and_messages_survive_restart() {
    let mut server = TestServer::start().await;
    {
        let js = server.jetstream().await;
        js.create_stream(stream_config(
            "KEEP",
            &["keep.*"],
            stream::StorageType::File,
        ))
        .await
        .expect("create");
        for i in 0..10 {
            js.publish("keep.a", format!("m{i}").into())
                .await
                .expect("publish")
                .await
                .expect("ack");
        }
    }
    server.restart().await;
    let js = server.jetstream().await;
    let mut s = js.get_stream("KEEP").await.expect("stream after restart");
    let info = s.info().await.expect("info");
    assert_eq!(info.state.messages, 10);
    let last = s
        .get_last_raw_message_by_subject("keep.a")
        .await
        .expect("last");
    assert_eq!(&last.payload[..], b"m9");
    let ack = js
        .publish("keep.b", "after".into())
        .await
        .expect("publish")
        .await
        .expect("ack");
    assert_eq!(ack.sequence, 11);
}

/// Redacts the fields that change from run to run.
pub(crate) fn redact(mut v: Value) -> Value {
    fn walk(v: &mut Value) {
        match v {
            Value::Object(map) => {
                for (k, val) in map.iter_mut() {
                    match k.as_str() {
                        "created" | "ts" | "first_ts" | "last_ts" | "time" | "leader" => {
                            *val = Value::String("[redacted]".into());
                        }
                        "_nats.ver" => *val = Value::String("[version]".into()),
                        _ => walk(val),
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut v);
    v
}

#[tokio::test]
async fn stream_api_json_replies() {
    let server = TestServer::start().await;
    let c = server.client().await;
    let create = api(
        &c,
        "$JS.API.STREAM.CREATE.S",
        r#"{"name":"S","subjects":["s.>"],"max_msgs":2,"discard":"new","max_msg_size":10}"#,
    )
    .await;
    insta::assert_json_snapshot!("stream_create", redact(create));
    let pub1 = c.request("s.a", "1".into()).await.expect("pub");
    insta::assert_json_snapshot!(
        "pub_ack",
        serde_json::from_slice::<Value>(&pub1.payload).expect("json")
    );
    c.request("s.a", "2".into()).await.expect("pub");
    let full = c.request("s.a", "3".into()).await.expect("pub");
    insta::assert_json_snapshot!(
        "pub_ack_max_msgs",
        serde_json::from_slice::<Value>(&full.payload).expect("json")
    );
    let info = api(
        &c,
        "$JS.API.STREAM.INFO.S",
        r#"{"subjects_filter":">","deleted_details":true}"#,
    )
    .await;
    insta::assert_json_snapshot!("stream_info_subjects", redact(info));
    let names = api(&c, "$JS.API.STREAM.NAMES", r#"{"subject":"s.x"}"#).await;
    insta::assert_json_snapshot!("stream_names", names);
    let missing = api(&c, "$JS.API.STREAM.INFO.NOPE", "").await;
    insta::assert_json_snapshot!("stream_info_not_found", missing);
    let delete = api(&c, "$JS.API.STREAM.DELETE.S", "").await;
    insta::assert_json_snapshot!("stream_delete", delete);
}

#[tokio::test]
async fn fire_and_forget_burst_is_stored_without_drops() {
    const N: u64 = 50_000;
    let server = TestServer::start().await;
    let js = server.jetstream().await;
    let mut s = js
        .create_stream(stream_config(
            "BURST",
            &["burst"],
            stream::StorageType::File,
        ))
        .await
        .expect("create");
    let client = server.client().await;
    for _ in 0..N {
        client
            .publish("burst", "0123456789abcdef".into())
            .await
            .expect("publish");
    }
    rill_tests::sync(&client).await;
    rill_tests::check_for(std::time::Duration::from_secs(30), || {
        let mut s = s.clone();
        async move { s.info().await.map(|i| i.state.messages).unwrap_or(0) == N }
    })
    .await;
    assert_eq!(s.info().await.expect("info").state.last_sequence, N);
}
