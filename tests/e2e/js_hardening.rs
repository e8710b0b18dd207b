//! Hostile and careless JetStream clients (issue 16): names that cannot be files, handlers
//! that fail, malformed API subjects, oversized headers, deletes that fail on disk and the
//! end of the sequence space. Each test checks that the server answers with an error and
//! keeps serving everyone else, against nats-server 2.15.1 too where the two should match.

use std::time::Duration;

use async_nats::HeaderMap;
use rill_tests::{ServerKind, ServerOpts, TestServer};
use serde_json::{Value, json};

const BOTH: [ServerKind; 2] = [ServerKind::Rill, ServerKind::Nats];

/// How long any API reply may take here.
const REPLY: Duration = Duration::from_secs(5);

/// A request's JSON reply, or `None` when no reply came (timeout).
async fn try_api(client: &async_nats::Client, subject: &str, body: &str) -> Option<Value> {
    let req = client.request(subject.to_owned(), body.to_owned().into());
    match tokio::time::timeout(REPLY, req).await {
        Ok(Ok(msg)) => Some(serde_json::from_slice(&msg.payload).expect("JSON reply")),
        Ok(Err(e)) => panic!("request {subject:?}: {e}"),
        Err(_) => None,
    }
}

async fn api(client: &async_nats::Client, subject: &str, body: &str) -> Value {
    try_api(client, subject, body)
        .await
        .unwrap_or_else(|| panic!("no reply to {subject:?}"))
}

fn err_code(v: &Value) -> u64 {
    v["error"]["err_code"].as_u64().unwrap_or_default()
}

/// The API still answers: account info and a new stream.
async fn still_serving(client: &async_nats::Client, name: &str) {
    let info = api(client, "$JS.API.INFO", "").await;
    assert!(info.get("error").is_none(), "{info}");
    let body = json!({"name": name, "subjects": [format!("{name}.>")]}).to_string();
    let created = api(client, &format!("$JS.API.STREAM.CREATE.{name}"), &body).await;
    assert!(created.get("error").is_none(), "{created}");
}

async fn create(client: &async_nats::Client, cfg: Value) -> Value {
    let name = cfg["name"].as_str().expect("name").to_owned();
    let r = api(
        client,
        &format!("$JS.API.STREAM.CREATE.{name}"),
        &cfg.to_string(),
    )
    .await;
    assert!(r.get("error").is_none(), "{r}");
    r
}

async fn publish(client: &async_nats::Client, subject: &str, headers: HeaderMap) -> Value {
    let req = client.request_with_headers(subject.to_owned(), headers, "x".into());
    let msg = tokio::time::timeout(REPLY, req)
        .await
        .expect("PubAck in time")
        .expect("PubAck");
    serde_json::from_slice(&msg.payload).expect("PubAck JSON")
}

fn rill_with_faults(faults: &str) -> ServerOpts {
    ServerOpts {
        env: vec![("RILL_FAULTS".into(), faults.into())],
        ..ServerOpts::default()
    }
}

/// A NUL in a stream name used to panic the stream thread's naming and end the account's
/// only API dispatcher. Both servers refuse it with an error and keep serving; rill also
/// refuses every other control character (nats-server creates `a\u{1}b`).
#[tokio::test]
async fn names_with_control_characters_are_refused_and_the_api_keeps_serving() {
    for kind in BOTH {
        let server = TestServer::start_with(ServerOpts::kind(kind)).await;
        let c = server.client().await;
        let name = "a\0b";
        let body = json!({"name": name, "subjects": ["nul"]}).to_string();
        let r = api(&c, &format!("$JS.API.STREAM.CREATE.{name}"), &body).await;
        assert!(r.get("error").is_some(), "{kind:?}: {r}");
        if kind == ServerKind::Rill {
            for name in ["a\0b", "a\u{1}b", "a\u{7f}b", "a\u{85}b"] {
                let body = json!({"name": name, "subjects": ["ctl"]}).to_string();
                let r = api(&c, &format!("$JS.API.STREAM.CREATE.{name}"), &body).await;
                assert_eq!(err_code(&r), 10052, "{name:?}: {r}");
                assert_eq!(
                    r["error"]["description"],
                    "stream name can not contain whitespace or control characters"
                );
            }
            let body = json!({"stream_name": "OK", "config": {"durable_name": "c\u{1}"}});
            create(&c, json!({"name": "OK", "subjects": ["ok"]})).await;
            let r = api(&c, "$JS.API.CONSUMER.CREATE.OK.c\u{1}", &body.to_string()).await;
            assert_eq!(err_code(&r), 10052, "{r}");
        }
        still_serving(&c, "AFTER").await;
    }
}

/// A handler that panics (injected) is answered with 500 and the API carries on; a
/// request that panics on a stream's own task leaves the stream serving.
#[tokio::test]
async fn a_failing_handler_gets_500_and_the_api_keeps_serving() {
    let faults = "api.panic=$JS.API.STREAM.INFO.BOOM,stream.panic=S";
    let server = TestServer::start_with(rill_with_faults(faults)).await;
    let c = server.client().await;
    for _ in 0..3 {
        let r = api(&c, "$JS.API.STREAM.INFO.BOOM", "").await;
        assert_eq!(r["error"]["code"], 500, "{r}");
        assert_eq!(err_code(&r), 10051, "{r}");
        assert_eq!(r["type"], "io.nats.jetstream.api.v1.stream_info_response");
    }
    create(&c, json!({"name": "S", "subjects": ["s"]})).await;
    let r = api(&c, "$JS.API.STREAM.INFO.S", "").await;
    assert_eq!(r["error"]["code"], 500, "{r}");
    let ack = publish(&c, "s", HeaderMap::new()).await;
    assert_eq!(ack["seq"], 1, "the stream still stores: {ack}");
    let names = api(&c, "$JS.API.STREAM.NAMES", "").await;
    assert_eq!(names["streams"], json!(["S"]));
    still_serving(&c, "AFTER").await;
}

/// Every `$JS.API` subject that names no operation gets `400 bad request` (nats-server
/// stays silent and the client times out); a subject with an empty token gets
/// no-responders from both servers.
#[tokio::test]
async fn malformed_api_subjects_get_an_error_reply() {
    let server = TestServer::start().await;
    let c = server.client().await;
    for subject in [
        "$JS.API.STREAM.INFO",
        "$JS.API.STREAM.CREATE",
        "$JS.API.STREAM.FOO",
        "$JS.API.STREAM.NAMES.x",
        "$JS.API.STREAM.MSG.GET",
        "$JS.API.STREAM.MSG.FOO.x",
        "$JS.API.CONSUMER.INFO.x",
        "$JS.API.CONSUMER.INFO.x.y.z",
        "$JS.API.CONSUMER.DELETE.a",
        "$JS.API.CONSUMER.NAMES",
        "$JS.API.CONSUMER.DURABLE.CREATE.a",
        "$JS.API.CONSUMER.FOO.a.b",
    ] {
        let r = api(&c, subject, "{}").await;
        assert_eq!(r["error"]["code"], 400, "{subject}: {r}");
        assert_eq!(err_code(&r), 10003, "{subject}: {r}");
    }
    for kind in BOTH {
        let server = TestServer::start_with(ServerOpts::kind(kind)).await;
        let c = server.client().await;
        for subject in ["$JS.API.STREAM.INFO..", "$JS.API.STREAM.DELETE..."] {
            let r = c.request(subject, "".into()).await;
            let no_responders = matches!(
                &r,
                Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders
            );
            assert!(no_responders, "{kind:?} {subject}: {r:?}");
        }
        still_serving(&c, "AFTER").await;
    }
}

/// A header block of 65535 bytes is stored, one byte more is refused with 10097 (also
/// when it is one huge `Nats-Msg-Id`, which must not enter the duplicate window).
#[tokio::test]
async fn js_publish_header_limit_matches_nats_server() {
    for kind in BOTH {
        let server = TestServer::start_with(ServerOpts::kind(kind)).await;
        let c = server.client().await;
        create(&c, json!({"name": "H", "subjects": ["h"]})).await;
        // "NATS/1.0\r\n" + "X: " + value + "\r\n" + "\r\n"
        let overhead = "NATS/1.0\r\nX: \r\n\r\n".len();
        for (total, stored) in [(65_535, true), (65_536, false)] {
            let mut h = HeaderMap::new();
            h.insert("X", "v".repeat(total - overhead).as_str());
            let ack = publish(&c, "h", h).await;
            assert_eq!(
                ack.get("error").is_none(),
                stored,
                "{kind:?} {total}: {ack}"
            );
            if !stored {
                assert_eq!(err_code(&ack), 10097, "{kind:?}: {ack}");
            }
        }
        let id = "i".repeat(200_000);
        for _ in 0..2 {
            let mut h = HeaderMap::new();
            h.insert("Nats-Msg-Id", id.as_str());
            let ack = publish(&c, "h", h).await;
            assert_eq!(err_code(&ack), 10097, "{kind:?}: {ack}");
        }
        let info = api(&c, "$JS.API.STREAM.INFO.H", "").await;
        assert_eq!(info["state"]["messages"], 1, "{kind:?}: {info}");
    }
}

/// The longest accepted names (255 bytes) can be deleted, stream and consumer, and stay
/// deleted after a restart.
#[tokio::test]
async fn longest_names_are_deletable() {
    for kind in BOTH {
        let mut server = TestServer::start_with(ServerOpts::kind(kind)).await;
        let c = server.client().await;
        let stream = "s".repeat(255);
        let consumer = "c".repeat(255);
        create(&c, json!({"name": stream, "subjects": ["long"]})).await;
        assert_eq!(publish(&c, "long", HeaderMap::new()).await["seq"], 1);
        let body = json!({"stream_name": stream, "config": {"durable_name": consumer, "ack_policy": "explicit"}});
        let r = api(
            &c,
            &format!("$JS.API.CONSUMER.CREATE.{stream}.{consumer}"),
            &body.to_string(),
        )
        .await;
        assert!(r.get("error").is_none(), "{kind:?}: {r}");
        let r = api(
            &c,
            &format!("$JS.API.CONSUMER.DELETE.{stream}.{consumer}"),
            "",
        )
        .await;
        assert_eq!(r["success"], true, "{kind:?}: {r}");
        let r = api(&c, &format!("$JS.API.STREAM.DELETE.{stream}"), "").await;
        assert_eq!(r["success"], true, "{kind:?}: {r}");
        drop(c);
        server.restart().await;
        let c = server.client().await;
        let names = api(&c, "$JS.API.STREAM.NAMES", "").await;
        assert_eq!(names["total"], 0, "{kind:?}: {names}");
    }
}

/// A delete whose disk step fails (injected) reports the error and changes nothing: the
/// consumer and the stream keep working and are still there after a restart.
#[tokio::test]
async fn a_delete_that_fails_on_disk_changes_nothing() {
    let faults = "stream.delete=VICTIM,consumer.delete=DUR";
    let mut server = TestServer::start_with(rill_with_faults(faults)).await;
    let c = server.client().await;
    create(&c, json!({"name": "VICTIM", "subjects": ["v"]})).await;
    assert_eq!(publish(&c, "v", HeaderMap::new()).await["seq"], 1);
    let body = json!({"stream_name": "VICTIM", "config": {"durable_name": "DUR", "ack_policy": "explicit"}});
    let r = api(&c, "$JS.API.CONSUMER.CREATE.VICTIM.DUR", &body.to_string()).await;
    assert!(r.get("error").is_none(), "{r}");
    let r = api(&c, "$JS.API.CONSUMER.DELETE.VICTIM.DUR", "").await;
    assert_eq!(r["error"]["code"], 500, "{r}");
    let r = api(&c, "$JS.API.STREAM.DELETE.VICTIM", "").await;
    assert_eq!(r["error"]["code"], 500, "{r}");
    assert_eq!(publish(&c, "v", HeaderMap::new()).await["seq"], 2);
    let r = api(&c, "$JS.API.CONSUMER.INFO.VICTIM.DUR", "").await;
    assert_eq!(r["num_pending"], 2, "{r}");
    drop(c);
    server.restart().await;
    let c = server.client().await;
    let info = api(&c, "$JS.API.STREAM.INFO.VICTIM", "").await;
    assert_eq!(info["state"]["messages"], 2, "{info}");
    let r = api(&c, "$JS.API.CONSUMER.INFO.VICTIM.DUR", "").await;
    assert!(r.get("error").is_none(), "{r}");
}

/// The last sequence a stream assigns is 2^64-2: after it every publish is refused with
/// a clear error (nats-server wraps to 0 and acks two messages with one sequence), and
/// nothing is lost or renumbered across a restart.
#[tokio::test]
async fn sequence_space_ends_with_a_clear_error() {
    const LAST: u64 = u64::MAX - 1;
    let mut server = TestServer::start().await;
    let c = server.client().await;
    create(&c, json!({"name": "P", "subjects": ["p"]})).await;
    assert_eq!(publish(&c, "p", HeaderMap::new()).await["seq"], 1);
    let r = api(
        &c,
        "$JS.API.STREAM.PURGE.P",
        &json!({"seq": LAST}).to_string(),
    )
    .await;
    assert_eq!(r["success"], true, "{r}");
    assert_eq!(publish(&c, "p", HeaderMap::new()).await["seq"], LAST);
    for _ in 0..2 {
        let ack = publish(&c, "p", HeaderMap::new()).await;
        assert_eq!(err_code(&ack), 10077, "{ack}");
        assert_eq!(
            ack["error"]["description"], "stream sequence space exhausted",
            "{ack}"
        );
    }
    create(
        &c,
        json!({"name": "W", "subjects": ["w"], "first_seq": u64::MAX}),
    )
    .await;
    assert_eq!(err_code(&publish(&c, "w", HeaderMap::new()).await), 10077);
    drop(c);
    server.restart().await;
    let c = server.client().await;
    let info = api(&c, "$JS.API.STREAM.INFO.P", "").await;
    let state = &info["state"];
    assert_eq!(
        (&state["messages"], &state["last_seq"]),
        (&json!(1), &json!(LAST)),
        "{info}"
    );
    assert!(state.get("num_deleted").is_none(), "{info}");
    assert_eq!(err_code(&publish(&c, "p", HeaderMap::new()).await), 10077);
}

/// A stream whose ingest queue overflows (shrunk to 4 by an injected fault) may drop a
/// burst's messages, but never silently: every message sent is either stored or counted
/// in `/jsz` (stream detail `ingest_dropped`) and `/metrics`, and a drop is logged.
#[tokio::test]
async fn dropped_publishes_are_counted() {
    const N: u64 = 3000;
    let server = TestServer::start_with(ServerOpts {
        monitoring: true,
        env: vec![("RILL_FAULTS".into(), "stream.queue=Q".into())],
        ..ServerOpts::default()
    })
    .await;
    let http = server.monitoring_port();
    let c = server.client().await;
    create(
        &c,
        json!({"name": "Q", "subjects": ["q"], "storage": "memory"}),
    )
    .await;
    for _ in 0..N {
        c.publish("q", "x".into()).await.expect("publish");
    }
    c.flush().await.expect("flush");
    let counts = || async {
        let jsz = crate::monitoring::get_json(http, "/jsz?streams=true").await;
        let s = &jsz["account_details"][0]["stream_detail"][0];
        let stored = s["state"]["messages"].as_u64().unwrap_or_default();
        (stored, s["ingest_dropped"].as_u64().unwrap_or_default())
    };
    rill_tests::check_for(Duration::from_secs(30), || async {
        let (stored, dropped) = counts().await;
        stored + dropped == N
    })
    .await;
    let (_, dropped) = counts().await;
    let (_, metrics) = crate::monitoring::get(http, "/metrics").await;
    let row = format!("rill_stream_dropped_messages{{stream=\"Q\"}} {dropped}");
    assert!(metrics.contains(&row), "{metrics}");
    if dropped > 0 {
        assert!(
            server.logs().contains("message dropped"),
            "{}",
            server.logs()
        );
    }
    still_serving(&c, "AFTER").await;
}
