//! JetStream per account, against rill and nats-server alike: with accounts configured,
//! each account with `jetstream: enabled` (or limits) has its own streams under
//! `<store_dir>/jetstream/<account>/streams/`, and every other account — `$G` included —
//! gets `503 / 10039 "JetStream not enabled for account"` from the API.

use async_nats::jetstream;
use futures::{StreamExt, TryStreamExt};
use rill_tests::{ServerKind, ServerOpts, TestServer};
use serde_json::Value;

const KINDS: [ServerKind; 2] = [ServerKind::Rill, ServerKind::Nats];

const CONFIG: &str = r#"
accounts {
  A: { users: [{ user: a, password: p }], jetstream: enabled }
  B: { users: [{ user: b, password: p }] }
  C: { users: [{ user: c, password: p }], jetstream: { max_mem: 1M, max_file: 10M, max_streams: 2, max_consumers: 1 } }
}
authorization { users: [{ user: g, password: p }] }
"#;

async fn server(kind: ServerKind) -> TestServer {
    TestServer::start_with(ServerOpts {
        kind,
        jetstream: true,
        config: Some(CONFIG.to_string()),
        ..ServerOpts::default()
    })
    .await
}

async fn client(server: &TestServer, user: &str) -> async_nats::Client {
    async_nats::ConnectOptions::with_user_and_password(user.into(), "p".into())
        .connect(server.url())
        .await
        .unwrap_or_else(|e| panic!("connect {user}: {e}\n{}", server.logs()))
}

/// The raw reply to a `$JS.API` request.
async fn api_raw(client: &async_nats::Client, subject: &str, body: &str) -> String {
    let msg = client
        .request(subject.to_owned(), body.to_owned().into())
        .await
        .unwrap_or_else(|e| panic!("request {subject}: {e}"));
    String::from_utf8_lossy(&msg.payload).into_owned()
}

async fn api(client: &async_nats::Client, subject: &str, body: &str) -> Value {
    serde_json::from_str(&api_raw(client, subject, body).await).expect("JSON reply")
}

async fn create(js: &jetstream::Context, name: &str) {
    js.create_stream(jetstream::stream::Config {
        name: name.to_owned(),
        subjects: vec![format!("{}.>", name.to_lowercase())],
        ..Default::default()
    })
    .await
    .unwrap_or_else(|e| panic!("create {name}: {e}"));
}

async fn messages(js: &jetstream::Context, name: &str) -> u64 {
    let mut stream = js.get_stream(name).await.expect("get stream");
    stream.info().await.expect("info").state.messages
}

const NOT_ENABLED: &str =
    r#""error":{"code":503,"err_code":10039,"description":"JetStream not enabled for account"}"#;

#[tokio::test]
async fn accounts_without_jetstream_are_told_so() {
    for kind in KINDS {
        let server = server(kind).await;
        for user in ["b", "g"] {
            let nc = client(&server, user).await;
            let info = api_raw(&nc, "$JS.API.INFO", "").await;
            let want = format!(
                r#"{{"type":"io.nats.jetstream.api.v1.account_info_response",{NOT_ENABLED}}}"#
            );
            assert_eq!(info, want, "{kind:?} {user}");
            let names = api_raw(&nc, "$JS.API.STREAM.NAMES", "").await;
            let want = format!(
                r#"{{"type":"io.nats.jetstream.api.v1.stream_names_response",{NOT_ENABLED},"total":0,"offset":0,"limit":0,"streams":null}}"#
            );
            assert_eq!(names, want, "{kind:?} {user}");
            let create = r#"{"name":"S","subjects":["s.>"]}"#;
            let reply = api(&nc, "$JS.API.STREAM.CREATE.S", create).await;
            assert_eq!(
                reply["error"]["err_code"], 10039,
                "{kind:?} {user}: {reply}"
            );
        }
    }
}

#[tokio::test]
async fn each_enabled_account_has_its_own_streams() {
    for kind in KINDS {
        let mut server = server(kind).await;
        let (a, c) = (client(&server, "a").await, client(&server, "c").await);
        let (ja, jc) = (jetstream::new(a.clone()), jetstream::new(c.clone()));
        create(&ja, "ORDERS").await;
        create(&jc, "ORDERS").await;
        for i in 0..3 {
            ja.publish(format!("orders.{i}"), "a".into())
                .await
                .expect("publish a")
                .await
                .expect("ack a");
        }
        jc.publish("orders.x", "c".into())
            .await
            .expect("publish c")
            .await
            .expect("ack c");
        assert_eq!(messages(&ja, "ORDERS").await, 3, "{kind:?}");
        assert_eq!(messages(&jc, "ORDERS").await, 1, "{kind:?}");
        create(&ja, "ONLY_A").await;
        let names: Vec<String> = jc.stream_names().try_collect().await.expect("names");
        assert_eq!(names, ["ORDERS"], "{kind:?}");
        let store = server.store_dir().join("store").join("jetstream");
        for acc in ["A", "C"] {
            let dir = store.join(acc).join("streams").join("ORDERS");
            assert!(dir.is_dir(), "{kind:?}: {} missing", dir.display());
        }
        drop((a, c));
        server.restart().await;
        let (a, c) = (client(&server, "a").await, client(&server, "c").await);
        let (ja, jc) = (jetstream::new(a), jetstream::new(c));
        assert_eq!(messages(&ja, "ORDERS").await, 3, "{kind:?} after restart");
        assert_eq!(messages(&jc, "ORDERS").await, 1, "{kind:?} after restart");
    }
}

#[tokio::test]
async fn account_limits_apply_and_show_in_account_info() {
    for kind in KINDS {
        let server = server(kind).await;
        let c = client(&server, "c").await;
        let info = api(&c, "$JS.API.INFO", "").await;
        let limits = &info["limits"];
        assert_eq!(limits["max_memory"], 1_000_000, "{kind:?}: {info}");
        assert_eq!(limits["max_storage"], 10_000_000, "{kind:?}: {info}");
        assert_eq!(limits["max_streams"], 2, "{kind:?}: {info}");
        assert_eq!(limits["max_consumers"], 1, "{kind:?}: {info}");
        let too_big = r#"{"name":"S1","subjects":["s1"],"max_bytes":20000000}"#;
        let reply = api(&c, "$JS.API.STREAM.CREATE.S1", too_big).await;
        assert_eq!(reply["error"]["err_code"], 10047, "{kind:?}: {reply}");
        for name in ["S1", "S2"] {
            let body = format!(r#"{{"name":"{name}","subjects":["{name}"]}}"#);
            let reply = api(&c, &format!("$JS.API.STREAM.CREATE.{name}"), &body).await;
            assert!(reply.get("error").is_none(), "{kind:?}: {reply}");
        }
        let reply = api(&c, "$JS.API.STREAM.CREATE.S3", r#"{"name":"S3"}"#).await;
        assert_eq!(reply["error"]["err_code"], 10027, "{kind:?}: {reply}");
        for (name, code) in [("C1", None), ("C2", Some(10026))] {
            let body = format!(r#"{{"stream_name":"S1","config":{{"durable_name":"{name}"}}}}"#);
            let subject = format!("$JS.API.CONSUMER.CREATE.S1.{name}");
            let reply = api(&c, &subject, &body).await;
            assert_eq!(
                reply["error"]["err_code"].as_u64(),
                code,
                "{kind:?}: {reply}"
            );
        }
    }
}

const ONLY_A: &str = r#"
accounts {
  A: { users: [{ user: a, password: p }], jetstream: enabled }
  B: { users: [{ user: b, password: p }] }
}
"#;

const ONLY_B: &str = r#"
accounts {
  A: { users: [{ user: a, password: p }] }
  B: { users: [{ user: b, password: p }], jetstream: enabled }
}
"#;

#[tokio::test]
async fn reload_turns_jetstream_on_and_off_per_account() {
    for kind in KINDS {
        let server = TestServer::start_with(ServerOpts {
            kind,
            jetstream: true,
            config: Some(ONLY_A.to_string()),
            ..ServerOpts::default()
        })
        .await;
        let (a, b) = (client(&server, "a").await, client(&server, "b").await);
        let ja = jetstream::new(a.clone());
        create(&ja, "KEPT").await;
        ja.publish("kept.1", "x".into())
            .await
            .expect("publish")
            .await
            .expect("ack");
        let err = |v: Value| v["error"]["err_code"].as_u64();
        assert_eq!(
            err(api(&b, "$JS.API.INFO", "").await),
            Some(10039),
            "{kind:?}"
        );

        crate::reload_auth::reload(&server, ONLY_B).await;
        assert_eq!(
            err(api(&a, "$JS.API.INFO", "").await),
            Some(10039),
            "{kind:?}"
        );
        assert_eq!(err(api(&b, "$JS.API.INFO", "").await), None, "{kind:?}");

        crate::reload_auth::reload(&server, ONLY_A).await;
        assert_eq!(
            err(api(&b, "$JS.API.INFO", "").await),
            Some(10039),
            "{kind:?}"
        );
        assert_eq!(messages(&ja, "KEPT").await, 1, "{kind:?}: stream back");
    }
}

const JS_IMPORT: &str = r#"
accounts {
  A: { users: [{ user: a, password: p }], jetstream: enabled, exports: [{ service: "$JS.API.>" }] }
  B: { users: [{ user: b, password: p }], imports: [{ service: { account: A, subject: "$JS.API.>" } }] }
}
"#;

#[tokio::test]
async fn an_imported_jetstream_api_answers_alone() {
    for kind in KINDS {
        let server = TestServer::start_with(ServerOpts {
            kind,
            jetstream: true,
            config: Some(JS_IMPORT.to_string()),
            ..ServerOpts::default()
        })
        .await;
        let a = client(&server, "a").await;
        create(&jetstream::new(a), "SHARED").await;
        let b = client(&server, "b").await;
        let inbox = b.new_inbox();
        let mut replies = b.subscribe(inbox.clone()).await.expect("sub");
        b.publish_with_reply("$JS.API.STREAM.NAMES", inbox, "".into())
            .await
            .expect("publish");
        let first = tokio::time::timeout(std::time::Duration::from_secs(5), replies.next())
            .await
            .expect("a reply")
            .expect("message");
        let names: Value = serde_json::from_slice(&first.payload).expect("JSON");
        assert_eq!(names["streams"], serde_json::json!(["SHARED"]), "{kind:?}");
        let more =
            tokio::time::timeout(std::time::Duration::from_millis(300), replies.next()).await;
        assert!(more.is_err(), "{kind:?}: a second reply {more:?}");
    }
}

const LIMITS_ONE: &str = r#"
accounts {
  C: { users: [{ user: c, password: p }], jetstream: { max_file: 10M, max_streams: 1 } }
}
"#;

const LIMITS_TWO: &str = r#"
accounts {
  C: { users: [{ user: c, password: p }], jetstream: { max_file: 20M, max_streams: 2 } }
}
"#;

/// A reload that changes an account's JetStream limits applies them to what comes next;
/// the streams it has stay.
#[tokio::test]
async fn reload_applies_changed_account_limits() {
    for kind in KINDS {
        let server = TestServer::start_with(ServerOpts {
            kind,
            jetstream: true,
            config: Some(LIMITS_ONE.to_string()),
            ..ServerOpts::default()
        })
        .await;
        let c = client(&server, "c").await;
        let create = |name: &'static str| {
            let c = c.clone();
            async move {
                let body = format!(r#"{{"name":"{name}","subjects":["{name}"]}}"#);
                let reply = api(&c, &format!("$JS.API.STREAM.CREATE.{name}"), &body).await;
                reply["error"]["err_code"].as_u64()
            }
        };
        assert_eq!(create("S1").await, None, "{kind:?}");
        assert_eq!(create("S2").await, Some(10027), "{kind:?}");

        crate::reload_auth::reload(&server, LIMITS_TWO).await;
        let info = api(&c, "$JS.API.INFO", "").await;
        assert_eq!(info["limits"]["max_streams"], 2, "{kind:?}: {info}");
        assert_eq!(
            info["limits"]["max_storage"], 20_000_000,
            "{kind:?}: {info}"
        );
        assert_eq!(info["streams"], 1, "{kind:?}: {info}");
        assert_eq!(create("S2").await, None, "{kind:?}");
        assert_eq!(create("S3").await, Some(10027), "{kind:?}");
    }
}

const SHARED_BUDGET: &str = r#"
jetstream { max_file_store: 10MB }
accounts {
  A: { users: [{ user: a, password: p }], jetstream: enabled }
  B: { users: [{ user: b, password: p }], jetstream: enabled }
}
"#;

/// The server's `max_file_store` is one budget for every account: what one account
/// reserved (`max_bytes`) is not there for another.
#[tokio::test]
async fn accounts_share_the_servers_storage_budget() {
    for kind in KINDS {
        let server = TestServer::start_with(ServerOpts {
            kind,
            jetstream: true,
            config: Some(SHARED_BUDGET.to_string()),
            ..ServerOpts::default()
        })
        .await;
        let create = |user: &'static str, mb: u64| {
            let server = &server;
            async move {
                let c = client(server, user).await;
                let name = format!("S{user}{mb}");
                let body = format!(
                    r#"{{"name":"{name}","subjects":["{name}"],"max_bytes":{}}}"#,
                    mb * 1_000_000
                );
                let reply = api(&c, &format!("$JS.API.STREAM.CREATE.{name}"), &body).await;
                reply["error"]["err_code"].as_u64()
            }
        };
        assert_eq!(create("a", 8).await, None, "{kind:?}");
        assert_eq!(create("b", 8).await, Some(10047), "{kind:?}");
        assert_eq!(create("b", 2).await, None, "{kind:?}: what is left fits");
    }
}
