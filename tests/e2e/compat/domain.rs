//! Item 7 of issue 14: JetStream domains. With `jetstream { domain: hub }` the API also
//! answers at `$JS.hub.API.>`, and account info and publish acks name the domain.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use futures::StreamExt;
use rill_tests::{ServerKind, ServerOpts, TestServer};
use serde_json::Value;

use super::BOTH;

async fn start(kind: ServerKind, config: &str) -> TestServer {
    TestServer::start_with(ServerOpts {
        kind,
        config: Some(config.to_string()),
        ..ServerOpts::default()
    })
    .await
}

#[tokio::test]
async fn a_client_with_a_domain_uses_the_whole_api_through_it() {
    for kind in BOTH {
        let server = start(kind, "jetstream { domain: hub }\n").await;
        let js = jetstream::with_domain(server.client().await, "hub");
        let info = js
            .query_account()
            .await
            .expect("account info through the domain");
        assert_eq!(info.domain.as_deref(), Some("hub"), "{kind:?}");
        let mut stream = js
            .create_stream(stream::Config {
                name: "D".into(),
                subjects: vec!["d.>".into()],
                allow_direct: true,
                ..Default::default()
            })
            .await
            .expect("create through the domain");
        let ack = js
            .publish("d.1", "one".into())
            .await
            .expect("publish")
            .await
            .expect("ack");
        assert_eq!(ack.domain, "hub", "{kind:?}");
        let direct = stream
            .direct_get(1)
            .await
            .expect("direct get via the domain");
        assert_eq!(direct.payload.as_ref(), b"one");
        let consumer: consumer::PullConsumer = stream
            .create_consumer(consumer::pull::Config {
                durable_name: Some("C".into()),
                ..Default::default()
            })
            .await
            .expect("consumer through the domain");
        let mut batch = consumer
            .fetch()
            .max_messages(1)
            .expires(Duration::from_secs(2))
            .messages()
            .await
            .expect("pull through the domain");
        let msg = batch.next().await.expect("a message").expect("ok");
        assert_eq!(msg.payload.as_ref(), b"one", "{kind:?}");
        assert_eq!(stream.info().await.expect("info").state.messages, 1);
    }
}

/// Which accounts answer at the domain prefix: one with JetStream and one without (the
/// "not enabled" reply) do; one that imports another account's `$JS.API.>` gets
/// no-responders there, as from nats-server.
#[tokio::test]
async fn accounts_answer_at_the_domain_as_nats_server_does() {
    let config = r#"
jetstream { domain: hub }
accounts {
  A: { jetstream: enabled, users: [{user: a, password: a}], exports: [{service: "$JS.API.>"}] }
  B: { users: [{user: b, password: b}], imports: [{service: {account: A, subject: "$JS.API.>"}}] }
  C: { users: [{user: c, password: c}] }
}
"#;
    let mut seen = Vec::new();
    for kind in BOTH {
        let server = start(kind, config).await;
        let mut row = Vec::new();
        for user in ["a", "b", "c"] {
            let client =
                async_nats::ConnectOptions::with_user_and_password(user.into(), user.into())
                    .connect(server.url())
                    .await
                    .expect("connect");
            let answer = match client.request("$JS.hub.API.INFO", "".into()).await {
                Ok(msg) => {
                    let v: Value = serde_json::from_slice(&msg.payload).expect("json");
                    match v["error"]["err_code"].as_u64() {
                        Some(code) => format!("{user}: error {code}"),
                        None => format!("{user}: domain {}", v["domain"]),
                    }
                }
                Err(e) => format!("{user}: {:?}", e.kind()),
            };
            row.push(answer);
        }
        seen.push(row);
    }
    assert_eq!(seen[0], seen[1], "rill vs nats-server");
    assert_eq!(
        seen[0],
        ["a: domain \"hub\"", "b: NoResponders", "c: error 10039"]
    );
}
