//! Stream limits and admin operations through the raw `$JS.API` and async-nats:
//! discard old/new (msgs, bytes, per subject), max_msg_size, max_age expiry,
//! first_seq, purge variants, message get/delete, deny flags, direct get statuses,
//! update, create conflicts, interest retention without consumers, `$JS.API.INFO`,
//! and a server without JetStream.

use std::time::Duration;

use async_nats::jetstream::stream;
use rill_tests::{ServerOpts, TestServer, check_for};
use serde_json::{Value, json};

use crate::js_dedupe::publish;
use crate::js_streams::{api, redact};

async fn create(client: &async_nats::Client, cfg: Value) -> Value {
    let name = cfg["name"].as_str().expect("name").to_owned();
    api(
        client,
        &format!("$JS.API.STREAM.CREATE.{name}"),
        &cfg.to_string(),
    )
    .await
}

async fn state(client: &async_nats::Client, name: &str) -> Value {
    api(client, &format!("$JS.API.STREAM.INFO.{name}"), "").await["state"].clone()
}

#[tokio::test]
async fn discard_new_limits_refuse_with_store_failed() {
    let server = TestServer::start().await;
    let c = server.client().await;
    create(&c, json!({"name": "S", "subjects": ["s.>"], "max_msgs": 2, "discard": "new", "max_msg_size": 10})).await;
    create(
        &c,
        json!({"name": "B", "subjects": ["b.>"], "max_bytes": 100, "discard": "new"}),
    )
    .await;
    create(&c, json!({"name": "P", "subjects": ["p.>"], "max_msgs_per_subject": 1, "discard": "new", "discard_new_per_subject": true})).await;
    publish(&c, "s.a", &[], "1").await;
    publish(&c, "s.a", &[], "2").await;
    let full = publish(&c, "s.a", &[], "3").await;
    assert_eq!(full["error"]["description"], "maximum messages exceeded");
    let big = publish(&c, "s.b", &[], &"x".repeat(20)).await;
    insta::assert_json_snapshot!("max_msg_size", big);
    assert_eq!(publish(&c, "b.a", &[], &"x".repeat(50)).await["seq"], 1);
    let bytes = publish(&c, "b.a", &[], &"x".repeat(50)).await;
    assert_eq!(bytes["error"]["description"], "maximum bytes exceeded");
    assert_eq!(publish(&c, "p.a", &[], "x").await["seq"], 1);
    let per = publish(&c, "p.a", &[], "x").await;
    assert_eq!(
        per["error"]["description"],
        "maximum messages per subject exceeded"
    );
    assert_eq!(publish(&c, "p.b", &[], "x").await["seq"], 2);
}

#[tokio::test]
async fn discard_old_limits_drop_the_oldest() {
    let server = TestServer::start().await;
    let c = server.client().await;
    create(
        &c,
        json!({"name": "O", "subjects": ["o.>"], "max_msgs": 3, "max_msgs_per_subject": 2}),
    )
    .await;
    for i in 0..5 {
        publish(&c, "o.a", &[], &i.to_string()).await;
    }
    publish(&c, "o.b", &[], "b1").await;
    publish(&c, "o.c", &[], "c1").await;
    let st = state(&c, "O").await;
    assert_eq!(st["messages"], 3);
    assert_eq!(st["last_seq"], 7);
    let first = api(&c, "$JS.API.STREAM.MSG.GET.O", r#"{"seq":5}"#).await;
    assert_eq!(first["message"]["subject"], "o.a");
}

#[tokio::test]
async fn max_age_expires_on_a_timer() {
    let server = TestServer::start().await;
    let c = server.client().await;
    create(&c, json!({"name": "A", "subjects": ["a"], "max_age": 300_000_000, "duplicate_window": 100_000_000})).await;
    publish(&c, "a", &[], "x").await;
    publish(&c, "a", &[], "y").await;
    assert_eq!(state(&c, "A").await["messages"], 2);
    check_for(Duration::from_secs(5), || async {
        state(&c, "A").await["messages"] == 0
    })
    .await;
    assert_eq!(state(&c, "A").await["first_seq"], 3);
}

#[tokio::test]
async fn first_seq_purge_and_message_delete() {
    let server = TestServer::start().await;
    let c = server.client().await;
    let f = create(
        &c,
        json!({"name": "F", "subjects": ["f.>"], "first_seq": 100}),
    )
    .await;
    assert_eq!(f["state"]["first_seq"], 100);
    for s in ["f.a", "f.b", "f.a", "f.b", "f.a"] {
        publish(&c, s, &[], "x").await;
    }
    assert_eq!(publish(&c, "f.c", &[], "x").await["seq"], 105);
    let keep = api(&c, "$JS.API.STREAM.PURGE.F", r#"{"filter":"f.a","keep":1}"#).await;
    assert_eq!(
        keep,
        json!({"type": "io.nats.jetstream.api.v1.stream_purge_response", "success": true, "purged": 2})
    );
    let del = api(&c, "$JS.API.STREAM.MSG.DELETE.F", r#"{"seq":101}"#).await;
    assert_eq!(del["success"], true);
    let again = api(&c, "$JS.API.STREAM.MSG.DELETE.F", r#"{"seq":101}"#).await;
    insta::assert_json_snapshot!("msg_delete_missing", again);
    let gone = api(&c, "$JS.API.STREAM.MSG.GET.F", r#"{"seq":101}"#).await;
    insta::assert_json_snapshot!("msg_get_missing", gone);
    let last = api(&c, "$JS.API.STREAM.MSG.GET.F", r#"{"last_by_subj":"f.b"}"#).await;
    assert_eq!(last["message"]["seq"], 103);
    let next = api(
        &c,
        "$JS.API.STREAM.MSG.GET.F",
        r#"{"seq":100,"next_by_subj":"f.b"}"#,
    )
    .await;
    assert_eq!(next["message"]["seq"], 103);
    let upto = api(&c, "$JS.API.STREAM.PURGE.F", r#"{"seq":104}"#).await;
    assert_eq!(upto["purged"], 1);
    let all = api(&c, "$JS.API.STREAM.PURGE.F", "").await;
    assert_eq!(all["purged"], 2);
    let st = state(&c, "F").await;
    assert_eq!(
        (st["messages"].clone(), st["first_seq"].clone()),
        (json!(0), json!(106))
    );
}

#[tokio::test]
async fn deny_flags_and_direct_get_statuses() {
    let server = TestServer::start().await;
    let c = server.client().await;
    create(&c, json!({"name": "D", "subjects": ["d.>"], "deny_delete": true, "deny_purge": true, "allow_direct": true})).await;
    create(&c, json!({"name": "ND", "subjects": ["nd"]})).await;
    publish(&c, "d.a", &[("Nats-Msg-Id", "m1")], "x").await;
    publish(&c, "d.a", &[], "y").await;
    insta::assert_json_snapshot!(
        "msg_delete_denied",
        api(&c, "$JS.API.STREAM.MSG.DELETE.D", r#"{"seq":1}"#).await
    );
    insta::assert_json_snapshot!("purge_denied", api(&c, "$JS.API.STREAM.PURGE.D", "").await);

    let by_seq = c
        .request("$JS.API.DIRECT.GET.D", r#"{"seq":1}"#.into())
        .await
        .expect("direct");
    let h = by_seq.headers.expect("headers");
    assert_eq!(h.get("Nats-Stream").map(|v| v.as_str()), Some("D"));
    assert_eq!(h.get("Nats-Sequence").map(|v| v.as_str()), Some("1"));
    assert_eq!(h.get("Nats-Subject").map(|v| v.as_str()), Some("d.a"));
    assert_eq!(h.get("Nats-Msg-Id").map(|v| v.as_str()), Some("m1"));
    assert!(h.get("Nats-Time-Stamp").is_some());
    let last = c
        .request("$JS.API.DIRECT.GET.D.d.a", "".into())
        .await
        .expect("direct");
    assert_eq!(&last.payload[..], b"y");
    let status = |m: async_nats::Message| (m.status.map(u16::from), m.description);
    let missing = c
        .request("$JS.API.DIRECT.GET.D", r#"{"seq":99}"#.into())
        .await
        .expect("direct");
    assert_eq!(
        status(missing),
        (Some(404), Some("Message Not Found".into()))
    );
    let empty = c
        .request("$JS.API.DIRECT.GET.D", "".into())
        .await
        .expect("direct");
    assert_eq!(status(empty), (Some(408), Some("Empty Request".into())));
    let bad = c
        .request("$JS.API.DIRECT.GET.D", "{bad".into())
        .await
        .expect("direct");
    assert_eq!(status(bad), (Some(408), Some("Malformed Request".into())));
    let no_direct = c
        .request("$JS.API.DIRECT.GET.ND", r#"{"seq":1}"#.into())
        .await;
    assert!(
        no_direct.is_err(),
        "direct get without allow_direct must get no responders"
    );
}

#[tokio::test]
async fn create_conflicts_update_and_errors() {
    let server = TestServer::start().await;
    let c = server.client().await;
    let js = server.jetstream().await;
    create(&c, json!({"name": "U", "subjects": ["u.a"]})).await;
    let same = create(&c, json!({"name": "U", "subjects": ["u.a"]})).await;
    assert_eq!(same["did_create"], true);
    insta::assert_json_snapshot!(
        "create_name_exists",
        create(&c, json!({"name": "U", "subjects": ["u.b"]})).await
    );
    insta::assert_json_snapshot!(
        "create_overlap",
        create(&c, json!({"name": "V", "subjects": ["u.*"]})).await
    );
    insta::assert_json_snapshot!(
        "create_invalid",
        create(&c, json!({"name": "X", "max_age": -1})).await
    );
    insta::assert_json_snapshot!(
        "create_bad_json",
        api(&c, "$JS.API.STREAM.CREATE.X", "{").await
    );
    let updated = api(
        &c,
        "$JS.API.STREAM.UPDATE.U",
        &json!({"name": "U", "subjects": ["u.a", "u.b"], "max_msgs": 5}).to_string(),
    )
    .await;
    insta::assert_json_snapshot!("stream_update", redact(updated));
    assert_eq!(publish(&c, "u.b", &[], "x").await["seq"], 1);
    let storage = api(
        &c,
        "$JS.API.STREAM.UPDATE.U",
        &json!({"name": "U", "subjects": ["u.a"], "storage": "memory"}).to_string(),
    )
    .await;
    assert_eq!(storage["error"]["err_code"], 10052);
    let missing = api(
        &c,
        "$JS.API.STREAM.UPDATE.NOPE",
        &json!({"name": "NOPE"}).to_string(),
    )
    .await;
    assert_eq!(missing["error"]["err_code"], 10059);
    let not_empty = api(&c, "$JS.API.STREAM.DELETE.U", r#"{"x":1}"#).await;
    assert_eq!(not_empty["error"]["err_code"], 10038);
    // async-nats sees the typed errors.
    let err = js
        .create_stream(stream::Config {
            name: "V".into(),
            subjects: vec!["u.>".into()],
            ..Default::default()
        })
        .await
        .expect_err("overlap");
    assert!(err.to_string().contains("subjects overlap"), "{err}");
}

#[tokio::test]
async fn names_list_paging_and_account_info() {
    let server = TestServer::start().await;
    let c = server.client().await;
    for i in 0..3 {
        create(
            &c,
            json!({"name": format!("N{i}"), "subjects": [format!("n{i}.>")]}),
        )
        .await;
    }
    create(
        &c,
        json!({"name": "M", "subjects": ["m"], "storage": "memory", "max_bytes": 1024}),
    )
    .await;
    publish(&c, "n1.x", &[], "hello").await;
    publish(&c, "m", &[], "hello").await;
    let names = api(&c, "$JS.API.STREAM.NAMES", r#"{"offset":1}"#).await;
    assert_eq!(names["total"], 4);
    assert_eq!(names["streams"], json!(["N0", "N1", "N2"]));
    let filtered = api(&c, "$JS.API.STREAM.NAMES", r#"{"subject":"n2.a"}"#).await;
    assert_eq!(filtered["streams"], json!(["N2"]));
    let list = api(&c, "$JS.API.STREAM.LIST", r#"{"offset":3}"#).await;
    assert_eq!(
        (list["total"].clone(), list["limit"].clone()),
        (json!(4), json!(256))
    );
    assert_eq!(list["streams"][0]["config"]["name"], "N2");
    let info = api(&c, "$JS.API.INFO", "").await;
    insta::assert_json_snapshot!("account_info", info);
}

#[tokio::test]
async fn interest_stream_without_consumers_keeps_nothing() {
    let server = TestServer::start().await;
    let c = server.client().await;
    create(
        &c,
        json!({"name": "I", "subjects": ["i"], "retention": "interest"}),
    )
    .await;
    assert_eq!(publish(&c, "i", &[], "x").await["seq"], 1);
    let st = state(&c, "I").await;
    assert_eq!(
        (
            st["messages"].clone(),
            st["first_seq"].clone(),
            st["last_seq"].clone()
        ),
        (json!(0), json!(2), json!(1))
    );
}

#[tokio::test]
async fn without_jetstream_the_api_has_no_responders() {
    let server = TestServer::start_with(ServerOpts {
        jetstream: false,
        ..ServerOpts::default()
    })
    .await;
    let c = server.client().await;
    for subject in ["$JS.API.INFO", "$JS.API.STREAM.CREATE.S"] {
        let err = c
            .request(subject, "{}".into())
            .await
            .expect_err("no responders");
        assert_eq!(err.kind(), async_nats::RequestErrorKind::NoResponders);
    }
}

#[tokio::test]
async fn server_limits_domain_and_api_level() {
    let server = TestServer::start_with(ServerOpts {
        config: Some(
            "jetstream { max_file_store: 1MB, max_memory_store: 1MB, domain: hub }".into(),
        ),
        ..ServerOpts::default()
    })
    .await;
    let c = server.client().await;
    let big = create(
        &c,
        json!({"name": "B", "subjects": ["b"], "max_bytes": 2_000_000}),
    )
    .await;
    insta::assert_json_snapshot!("create_storage_exceeded", big);
    let bigm = create(
        &c,
        json!({"name": "M", "subjects": ["m"], "max_bytes": 2_000_000, "storage": "memory"}),
    )
    .await;
    assert_eq!(bigm["error"]["err_code"], 10028);
    create(&c, json!({"name": "S", "subjects": ["s"]})).await;
    let ack = publish(&c, "s", &[], "x").await;
    assert_eq!(ack, json!({"stream": "S", "seq": 1, "domain": "hub"}));
    let chunk = "x".repeat(100_000);
    let mut last = Value::Null;
    for _ in 0..12 {
        last = publish(&c, "s", &[], &chunk).await;
    }
    insta::assert_json_snapshot!("publish_insufficient_resources", last);
    let info = api(&c, "$JS.API.INFO", "").await;
    assert_eq!(info["domain"], "hub");
    assert_eq!(info["api"]["errors"], 2);
    let mut h = async_nats::HeaderMap::new();
    h.insert("Nats-Required-Api-Level", "9");
    let msg = c
        .request_with_headers("$JS.API.STREAM.INFO.S", h, "".into())
        .await
        .expect("request");
    let level: Value = serde_json::from_slice(&msg.payload).expect("json");
    insta::assert_json_snapshot!("required_api_level", level);
}

#[tokio::test]
async fn lazy_sync_interval_mode_acks_and_persists() {
    let mut server = TestServer::start_with(ServerOpts {
        config: Some("jetstream { sync_interval: \"100ms\" }".into()),
        ..ServerOpts::default()
    })
    .await;
    let c = server.client().await;
    create(&c, json!({"name": "L", "subjects": ["l"]})).await;
    for i in 1..=100 {
        assert_eq!(publish(&c, "l", &[], "x").await["seq"], i);
    }
    server.restart().await;
    let c = server.client().await;
    assert_eq!(state(&c, "L").await["messages"], 100);
}

#[tokio::test]
async fn metadata_is_stored_and_echoed() {
    let mut server = TestServer::start().await;
    let c = server.client().await;
    let created = create(
        &c,
        json!({"name": "MD", "subjects": ["md"], "metadata": {"owner": "ops"}}),
    )
    .await;
    assert_eq!(created["config"]["metadata"]["owner"], "ops");
    assert_eq!(created["config"]["metadata"]["_nats.req.level"], "0");
    server.restart().await;
    let c = server.client().await;
    let info = api(&c, "$JS.API.STREAM.INFO.MD", "").await;
    assert_eq!(info["config"]["metadata"]["owner"], "ops");
    assert!(info["config"]["metadata"]["_nats.ver"].is_string());
    let list = api(&c, "$JS.API.STREAM.LIST", "").await;
    assert_eq!(
        list["streams"][0]["config"]["metadata"],
        json!({"owner": "ops", "_nats.req.level": "0"})
    );
}

#[tokio::test]
async fn fast_batch_streams_are_created_at_api_level_4_not_refused() {
    let server = TestServer::start().await;
    let c = server.client().await;
    // Every stream feature rill accepts on the wire is implemented now; fast batches
    // (allow_batched) were the last refused (10049) and need API level 4.
    let r = create(
        &c,
        json!({"name": "T", "subjects": ["t"], "allow_batched": true}),
    )
    .await;
    assert!(r.get("error").is_none(), "{r}");
    assert_eq!(r["config"]["allow_batched"], true);
    assert_eq!(r["config"]["metadata"]["_nats.req.level"], "4");
}

#[tokio::test]
async fn per_message_ttl_expires_and_survives_restart() {
    let mut server = TestServer::start().await;
    let c = server.client().await;
    create(
        &c,
        json!({"name": "T", "subjects": ["t"], "allow_msg_ttl": true}),
    )
    .await;
    create(&c, json!({"name": "N", "subjects": ["n"]})).await;
    let disabled = publish(&c, "n", &[("Nats-TTL", "1s")], "x").await;
    assert_eq!(disabled["error"]["err_code"], 10166);
    for bad in ["soon", "500ms"] {
        let r = publish(&c, "t", &[("Nats-TTL", bad)], "x").await;
        assert_eq!(r["error"]["err_code"], 10165, "{bad}");
    }
    assert_eq!(publish(&c, "t", &[("Nats-TTL", "1")], "x").await["seq"], 1);
    assert_eq!(
        publish(&c, "t", &[("Nats-TTL", "never")], "x").await["seq"],
        2
    );
    assert_eq!(publish(&c, "t", &[("Nats-TTL", "2s")], "x").await["seq"], 3);
    server.restart().await;
    let c = server.client().await;
    check_for(Duration::from_secs(10), || async {
        state(&c, "T").await["messages"] == 1
    })
    .await;
    assert_eq!(state(&c, "T").await["first_seq"], 2);
}
