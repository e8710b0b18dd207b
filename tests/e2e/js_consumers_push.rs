//! Pull status messages on the wire, push consumers (heartbeats, flow control, queue
//! groups, headers only), ordered consumers, KV watch and object-store reads.

use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, pull, push};
use async_nats::jetstream::{self, kv, object_store, stream};
use async_nats::{StatusCode, Subscriber};
use futures::StreamExt;
use rill_tests::{TestServer, sync};
use tokio::io::AsyncReadExt;

const WAIT: Duration = Duration::from_secs(5);

async fn setup(server: &TestServer, msgs: usize) -> jetstream::Context {
    let js = server.jetstream().await;
    js.create_stream(stream::Config {
        name: "S".into(),
        subjects: vec!["s.>".into()],
        ..Default::default()
    })
    .await
    .expect("create stream");
    for i in 1..=msgs {
        js.publish(format!("s.{i}"), format!("m{i}").into())
            .await
            .expect("publish")
            .await
            .expect("ack");
    }
    js
}

async fn next(sub: &mut Subscriber) -> async_nats::Message {
    tokio::time::timeout(WAIT, sub.next())
        .await
        .expect("message in time")
        .expect("subscription open")
}

fn header<'a>(m: &'a async_nats::Message, name: &str) -> Option<&'a str> {
    m.headers.as_ref()?.get(name).map(|v| v.as_str())
}

async fn create(js: &jetstream::Context, body: serde_json::Value) {
    let name = body["durable_name"].as_str().expect("durable").to_owned();
    let req = serde_json::json!({"stream_name": "S", "config": body});
    let client = js.client();
    let r = client
        .request(
            format!("$JS.API.CONSUMER.CREATE.S.{name}"),
            req.to_string().into(),
        )
        .await
        .expect("create");
    let v: serde_json::Value = serde_json::from_slice(&r.payload).expect("json");
    assert!(v.get("error").is_none(), "{v}");
}

#[tokio::test]
async fn pull_status_messages_match_nats_server() {
    let server = TestServer::start().await;
    let js = setup(&server, 1).await;
    create(&js, serde_json::json!({"durable_name": "C", "ack_policy": "explicit", "max_waiting": 1, "max_batch": 10})).await;
    create(&js, serde_json::json!({"durable_name": "P", "deliver_subject": "dlv.p", "ack_policy": "explicit"})).await;
    let client = server.client().await;
    let mut inbox = client.subscribe("in.>").await.expect("sub");
    sync(&client).await;
    let pull = |reply: &'static str, body: &'static str, consumer: &'static str| {
        let client = client.clone();
        async move {
            client
                .publish_with_reply(
                    format!("$JS.API.CONSUMER.MSG.NEXT.S.{consumer}"),
                    reply,
                    body.into(),
                )
                .await
                .expect("pull");
        }
    };
    pull("in.1", r#"{"batch":5,"no_wait":true}"#, "C").await;
    assert_eq!(&next(&mut inbox).await.payload[..], b"m1");
    let m = next(&mut inbox).await;
    assert_eq!(m.status, Some(StatusCode::NOT_FOUND));
    assert_eq!(m.description.as_deref(), Some("No Messages"));

    pull("in.2", r#"{"batch":5,"expires":300000000}"#, "C").await;
    let m = next(&mut inbox).await;
    assert_eq!(m.status, Some(StatusCode::TIMEOUT));
    assert_eq!(m.description.as_deref(), Some("Request Timeout"));
    assert_eq!(header(&m, "Nats-Pending-Messages"), Some("5"));
    assert_eq!(header(&m, "Nats-Pending-Bytes"), Some("0"));

    pull("in.3", r#"{"batch":50}"#, "C").await;
    let m = next(&mut inbox).await;
    assert_eq!(m.status, Some(StatusCode::from_u16(409).expect("code")));
    assert_eq!(
        m.description.as_deref(),
        Some("Exceeded MaxRequestBatch of 10")
    );

    pull(
        "in.4",
        r#"{"batch":5,"expires":2000000000,"idle_heartbeat":500000000}"#,
        "C",
    )
    .await;
    pull("in.5", r#"{"batch":5,"expires":2000000000}"#, "C").await;
    let m = next(&mut inbox).await;
    assert_eq!(m.subject.as_str(), "in.5");
    assert_eq!(m.description.as_deref(), Some("Exceeded MaxWaiting"));
    let hb = next(&mut inbox).await;
    assert_eq!(hb.subject.as_str(), "in.4");
    assert_eq!(hb.status, Some(StatusCode::IDLE_HEARTBEAT));
    assert_eq!(header(&hb, "Nats-Last-Stream"), Some("1"));

    pull("in.6", "1", "P").await;
    let m = next(&mut inbox).await;
    assert_eq!(m.description.as_deref(), Some("Consumer is push based"));

    pull("in.7", "1", "NOPE").await;
    let m = next(&mut inbox).await;
    assert_eq!(m.status, Some(StatusCode::NO_RESPONDERS));

    js.get_stream("S")
        .await
        .expect("stream")
        .delete_consumer("C")
        .await
        .expect("delete");
    let m = next(&mut inbox).await;
    assert_eq!(m.subject.as_str(), "in.4");
    assert_eq!(m.description.as_deref(), Some("Consumer Deleted"));

    create(
        &js,
        serde_json::json!({"durable_name": "B", "ack_policy": "explicit"}),
    )
    .await;
    pull(
        "in.8",
        r#"{"batch":5,"max_bytes":10,"expires":1000000000}"#,
        "B",
    )
    .await;
    let m = next(&mut inbox).await;
    assert_eq!(
        m.description.as_deref(),
        Some("Message Size Exceeds MaxBytes")
    );
}

#[tokio::test]
async fn push_heartbeats_and_flow_control() {
    let server = TestServer::start().await;
    let js = setup(&server, 600).await;
    let client = server.client().await;
    let mut sub = client.subscribe("dlv.push").await.expect("sub");
    sync(&client).await;
    create(
        &js,
        serde_json::json!({"durable_name": "P", "deliver_subject": "dlv.push", "ack_policy": "none",
            "idle_heartbeat": 200000000, "flow_control": true}),
    )
    .await;
    let mut got = 0;
    let mut fc = 0;
    while got < 600 {
        let m = next(&mut sub).await;
        match m.status {
            None => got += 1,
            Some(StatusCode::IDLE_HEARTBEAT)
                if m.description.as_deref() == Some("FlowControl Request") =>
            {
                fc += 1;
                let reply = m.reply.clone().expect("fc reply");
                client.publish(reply, "".into()).await.expect("answer fc");
            }
            Some(_) => {}
        }
    }
    assert!(fc >= 1, "flow control requested");
    let hb = loop {
        let m = next(&mut sub).await;
        if m.description.as_deref() == Some("Idle Heartbeat") {
            break m;
        }
    };
    assert_eq!(header(&hb, "Nats-Last-Stream"), Some("600"));
    assert_eq!(header(&hb, "Nats-Last-Consumer"), Some("600"));
}

#[tokio::test]
async fn push_consumer_with_queue_group_and_headers_only() {
    let server = TestServer::start().await;
    let js = setup(&server, 4).await;
    let stream = js.get_stream("S").await.expect("stream");
    let c = stream
        .create_consumer(push::Config {
            durable_name: Some("Q".into()),
            deliver_subject: "dlv.q".into(),
            deliver_group: Some("workers".into()),
            ack_policy: AckPolicy::Explicit,
            headers_only: true,
            ..Default::default()
        })
        .await
        .expect("push consumer");
    let mut msgs = c.messages().await.expect("messages");
    for i in 1..=4 {
        let m = tokio::time::timeout(WAIT, msgs.next())
            .await
            .expect("in time")
            .expect("open")
            .expect("msg");
        assert!(m.payload.is_empty());
        let size = m
            .headers
            .as_ref()
            .and_then(|h| h.get("Nats-Msg-Size"))
            .map(|v| v.to_string());
        assert_eq!(size.as_deref(), Some("2"), "message {i}");
        m.ack().await.expect("ack");
    }
}

#[tokio::test]
async fn ordered_consumer_reads_everything_and_recreates() {
    let server = TestServer::start().await;
    let js = setup(&server, 300).await;
    let stream = js.get_stream("S").await.expect("stream");
    let mut msgs = stream
        .create_consumer(pull::OrderedConfig {
            name: Some("ord".into()),
            ..Default::default()
        })
        .await
        .expect("ordered")
        .messages()
        .await
        .expect("messages");
    for i in 1..=150u64 {
        let m = tokio::time::timeout(WAIT, msgs.next())
            .await
            .expect("in time")
            .expect("open")
            .expect("msg");
        assert_eq!(m.info().expect("info").stream_sequence, i);
    }
    stream
        .delete_consumer("ord")
        .await
        .expect("delete under the client");
    for i in 151..=300u64 {
        let m = tokio::time::timeout(Duration::from_secs(20), msgs.next())
            .await
            .expect("in time")
            .expect("open")
            .expect("msg");
        assert_eq!(m.info().expect("info").stream_sequence, i);
    }
}

#[tokio::test]
async fn kv_watch_keys_history_and_object_store() {
    let server = TestServer::start().await;
    let js = server.jetstream().await;
    let kv = js
        .create_key_value(kv::Config {
            bucket: "cfg".into(),
            history: 5,
            ..Default::default()
        })
        .await
        .expect("bucket");
    kv.put("a", "1".into()).await.expect("put");
    kv.put("b", "2".into()).await.expect("put");
    kv.put("a", "3".into()).await.expect("put");
    let mut keys: Vec<String> = kv
        .keys()
        .await
        .expect("keys")
        .map(|k| k.expect("key"))
        .collect()
        .await;
    keys.sort();
    assert_eq!(keys, ["a", "b"]);
    let history: Vec<_> = kv.history("a").await.expect("history").collect().await;
    assert_eq!(history.len(), 2);
    let mut watch = kv.watch_with_history("a").await.expect("watch");
    let e = tokio::time::timeout(WAIT, watch.next())
        .await
        .expect("in time")
        .expect("open")
        .expect("entry");
    assert_eq!(&e.value[..], b"3");
    kv.put("a", "4".into()).await.expect("put");
    let e = tokio::time::timeout(WAIT, watch.next())
        .await
        .expect("in time")
        .expect("open")
        .expect("entry");
    assert_eq!(&e.value[..], b"4");
    kv.delete("a").await.expect("delete");
    let e = tokio::time::timeout(WAIT, watch.next())
        .await
        .expect("in time")
        .expect("open")
        .expect("entry");
    assert_eq!(e.operation, kv::Operation::Delete);

    let store = js
        .create_object_store(object_store::Config {
            bucket: "files".into(),
            ..Default::default()
        })
        .await
        .expect("object store");
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    store
        .put("blob", &mut data.as_slice())
        .await
        .expect("put object");
    let mut obj = store.get("blob").await.expect("get object");
    let mut back = Vec::new();
    obj.read_to_end(&mut back).await.expect("read");
    assert_eq!(back, data);
}

#[tokio::test]
async fn deleting_the_stream_ends_waiting_pulls() {
    let server = TestServer::start().await;
    let js = setup(&server, 0).await;
    create(
        &js,
        serde_json::json!({"durable_name": "C", "ack_policy": "explicit"}),
    )
    .await;
    let client = server.client().await;
    let mut inbox = client.subscribe("in.>").await.expect("sub");
    sync(&client).await;
    client
        .publish_with_reply(
            "$JS.API.CONSUMER.MSG.NEXT.S.C",
            "in.1",
            r#"{"batch":1,"expires":30000000000}"#.into(),
        )
        .await
        .expect("pull");
    sync(&client).await;
    js.delete_stream("S").await.expect("delete stream");
    let m = next(&mut inbox).await;
    assert_eq!(m.description.as_deref(), Some("Consumer Deleted"));
}
