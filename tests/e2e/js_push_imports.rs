//! Push deliveries across a stream import, against rill and nats-server side by side:
//! account B uses account A's JetStream through imports (the `$JS.API` under a prefix,
//! ack and flow-control replies, and A's deliveries to B's inbox prefix), and a KV
//! watcher in B sees the key's last value and the later ones (issue 14's `kv - cross
//! account history`: the deliveries never reached B, then the create reply reported the
//! first push as delivered and the watcher, an ordered consumer, reset to the start).

use std::time::Duration;

use async_nats::jetstream;
use futures::StreamExt;
use rill_tests::{ServerKind, ServerOpts, TestServer};
use serde_json::{Value, json};

use crate::js_dedupe::publish;
use crate::js_streams::api;

/// Each test runs against rill, then nats-server.
const KINDS: [ServerKind; 2] = [ServerKind::Rill, ServerKind::Nats];

const ACCOUNTS: &str = r#"
accounts {
  A {
    jetstream: enabled
    users: [{user: a, password: a}]
    exports: [
      {service: "$JS.API.>"}
      {service: "$JS.ACK.>"}
      {service: "$JS.FC.>"}
      {stream: "forB.>", accounts: [B]}
    ]
  }
  B {
    users: [{user: b, password: b}]
    imports: [
      {service: {account: A, subject: "$JS.API.>"}, to: "JS.A.API.>"}
      {service: {account: A, subject: "$JS.ACK.>"}}
      {service: {account: A, subject: "$JS.FC.>"}}
      {stream: {account: A, subject: "forB.>"}}
    ]
  }
}
"#;

/// Starts `kind` with accounts A (JetStream, exports) and B (imports), a KV-style stream
/// `KV_hist` in A holding `A`, `B`, `C` under `$KV.hist.k`, and A's connection.
async fn bucket_in_a(kind: ServerKind) -> (TestServer, async_nats::Client) {
    let server = TestServer::start_with(ServerOpts {
        config: Some(ACCOUNTS.to_owned()),
        ..ServerOpts::kind(kind)
    })
    .await;
    let a = async_nats::ConnectOptions::with_user_and_password("a".into(), "a".into())
        .connect(server.url())
        .await
        .expect("connect a");
    // The bucket as async-nats makes it, created by A through the plain API.
    let cfg = json!({"name": "KV_hist", "subjects": ["$KV.hist.>"], "max_msgs_per_subject": 10,
        "allow_rollup_hdrs": true, "deny_delete": true, "allow_direct": true, "discard": "new"});
    let r = api(&a, "$JS.API.STREAM.CREATE.KV_hist", &cfg.to_string()).await;
    assert!(r.get("error").is_none(), "{kind:?}: {r}");
    for v in ["A", "B", "C"] {
        publish(&a, "$KV.hist.k", &[], v).await;
    }
    (server, a)
}

/// B's connection, its inboxes under the prefix A's stream export reaches.
async fn connect_b(server: &TestServer) -> async_nats::Client {
    async_nats::ConnectOptions::with_user_and_password("b".into(), "b".into())
        .custom_inbox_prefix("forB")
        .connect(server.url())
        .await
        .expect("connect b")
}

#[tokio::test]
async fn a_kv_watcher_in_an_importing_account_sees_the_entries() {
    let mut seen = Vec::new();
    for kind in KINDS {
        let (server, a) = bucket_in_a(kind).await;
        let b = connect_b(&server).await;
        let js = jetstream::with_prefix(b, "JS.A.API");
        let store = js.get_key_value("hist").await.expect("bucket via import");
        let mut watch = store.watch_with_history("k").await.expect("watch");
        // The last value, then what is put afterwards.
        let mut values = Vec::new();
        while values.len() < 2 {
            let entry = tokio::time::timeout(Duration::from_secs(10), watch.next())
                .await
                .unwrap_or_else(|_| panic!("{kind:?}: watched {values:?}"))
                .expect("watch open")
                .expect("entry");
            values.push(String::from_utf8_lossy(&entry.value).into_owned());
            if values.len() == 1 {
                publish(&a, "$KV.hist.k", &[], "D").await;
            }
        }
        seen.push(values);
    }
    assert_eq!(seen[0], seen[1]);
    assert_eq!(seen[0], ["C", "D"]);
}

/// A durable pull consumer of account A is fetched and acked from account B through the
/// imported `$JS.API` (under a prefix) and `$JS.ACK.>`, its messages reaching B's inbox
/// prefix through the stream import (nats.js's `jetstream - cross account pull`: rill
/// delivered nothing, a response crossing back kept routing by A's response subject).
#[tokio::test]
async fn a_pull_consumer_is_fetched_and_acked_through_the_imported_api() {
    let mut seen = Vec::new();
    for kind in KINDS {
        let (server, a) = bucket_in_a(kind).await;
        let req = json!({"stream_name": "KV_hist", "config": {"durable_name": "me",
            "ack_policy": "explicit"}});
        let r = api(&a, "$JS.API.CONSUMER.CREATE.KV_hist.me", &req.to_string()).await;
        assert!(r.get("error").is_none(), "{kind:?}: {r}");
        let b = connect_b(&server).await;
        let js = jetstream::with_prefix(b, "JS.A.API");
        let consumer: jetstream::consumer::PullConsumer = js
            .get_consumer_from_stream("me", "KV_hist")
            .await
            .expect("consumer via import");
        // One message per request, as nats.js's `next()`: the export's responses are
        // singletons, so nats-server ends a request's route after its first message.
        let mut got = Vec::new();
        for _ in 0..4 {
            let mut batch = consumer
                .fetch()
                .max_messages(1)
                .expires(Duration::from_secs(1))
                .messages()
                .await
                .expect("fetch");
            let next = tokio::time::timeout(Duration::from_secs(5), batch.next())
                .await
                .unwrap_or_else(|_| panic!("{kind:?}: fetched {got:?}"));
            let Some(msg) = next else {
                break;
            };
            let msg = msg.expect("message");
            got.push((
                msg.subject.to_string(),
                String::from_utf8_lossy(&msg.payload).into_owned(),
            ));
            msg.double_ack().await.expect("ack through the import");
        }
        let info = api(&a, "$JS.API.CONSUMER.INFO.KV_hist.me", "").await;
        seen.push((got, info["ack_floor"]["stream_seq"].clone()));
    }
    assert_eq!(seen[0], seen[1]);
    assert_eq!(seen[0].0.len(), 3, "{:?}", seen[0]);
    assert_eq!(seen[0].1, 3);
}

/// The create reply of a push consumer whose deliver subject has interest reports the
/// state before the first push: delivered `{0, start - 1}`, the message still pending.
#[tokio::test]
async fn a_push_consumer_create_reply_reports_the_state_before_the_first_delivery() {
    let mut replies = Vec::new();
    for kind in KINDS {
        let (_server, a) = bucket_in_a(kind).await;
        let mut inbox = a.subscribe("dlv").await.expect("subscribe");
        a.flush().await.expect("flush");
        let req = json!({"stream_name": "KV_hist", "config": {"deliver_subject": "dlv",
            "deliver_policy": "last_per_subject", "filter_subject": "$KV.hist.k",
            "ack_policy": "none", "flow_control": true, "idle_heartbeat": 5_000_000_000u64}});
        let r = api(&a, "$JS.API.CONSUMER.CREATE.KV_hist", &req.to_string()).await;
        let first = tokio::time::timeout(Duration::from_secs(5), inbox.next())
            .await
            .expect("first delivery")
            .expect("open");
        assert_eq!(&first.payload[..], b"C", "{kind:?}");
        let fields = |k: &str| -> Value { r.get(k).cloned().unwrap_or(Value::Null) };
        replies.push(
            json!({"delivered": fields("delivered"), "ack_floor": fields("ack_floor"),
            "num_pending": fields("num_pending"), "num_ack_pending": fields("num_ack_pending")}),
        );
    }
    assert_eq!(replies[0], replies[1]);
    insta::assert_json_snapshot!(replies[0]);
}

/// A push consumer whose deliver subject reaches another account through a stream import
/// waits for that account's subscriber: created by B before B subscribes (as async-nats's
/// ordered consumers do), its first message is not pushed into an import nobody hears.
#[tokio::test]
async fn a_push_consumer_waits_for_the_importing_subscriber() {
    for kind in KINDS {
        let (server, _a) = bucket_in_a(kind).await;
        let b = connect_b(&server).await;
        let req = json!({"stream_name": "KV_hist", "config": {"deliver_subject": "forB.late",
            "deliver_policy": "last_per_subject", "filter_subject": "$KV.hist.k",
            "ack_policy": "none"}});
        let r = api(&b, "JS.A.API.CONSUMER.CREATE.KV_hist", &req.to_string()).await;
        assert!(r.get("error").is_none(), "{kind:?}: {r}");
        assert_ne!(
            r["push_bound"],
            json!(true),
            "{kind:?}: nobody subscribes yet: {r}"
        );
        // Longer than the consumer's look for interest in other accounts.
        tokio::time::sleep(Duration::from_millis(400)).await;
        let mut late = b.subscribe("forB.late").await.expect("subscribe");
        let first = tokio::time::timeout(Duration::from_secs(5), late.next())
            .await
            .unwrap_or_else(|_| panic!("{kind:?}: the waiting message never came"))
            .expect("open");
        assert_eq!(&first.payload[..], b"C", "{kind:?}");
        let seq = first.reply.as_deref().unwrap_or_default().split('.').nth(6);
        assert_eq!(
            seq,
            Some("1"),
            "{kind:?}: consumer sequence of {:?}",
            first.reply
        );
    }
}
