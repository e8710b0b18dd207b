//! Subject delete markers (ADR-43) and consumer reset rules (ADR-60), rill beside
//! nats-server: the same stored messages (subjects, headers, payloads, sequences) after
//! `Nats-TTL` and `max_age` removals, and the same reset answers per deliver policy.

use rill_tests::{ServerOpts, TestServer};
use serde_json::{Value, json};

use super::{BOTH, api, stored, wait_stored};

const SECOND: u64 = 1_000_000_000;

async fn publish(client: &async_nats::Client, subject: &str, hdrs: &[(&str, &str)], body: &str) {
    let ack = super::publish(client, subject, hdrs, body).await;
    assert!(ack.get("error").is_none(), "{subject}: {ack}");
}

fn subjects(msgs: &[Value]) -> Vec<&str> {
    msgs.iter()
        .map(|m| m["subject"].as_str().unwrap_or_default())
        .collect()
}

fn is_marker(m: &Value) -> bool {
    m["hdrs"]
        .as_str()
        .is_some_and(|h| h.contains("Nats-Marker-Reason"))
}

/// The observable story of one server: stored messages after publishing, once the
/// TTLs ran out (markers in place), and once the markers expired.
async fn ttl_story(kind: rill_tests::ServerKind) -> Value {
    let server = TestServer::start_with(ServerOpts::kind(kind)).await;
    let client = server.client().await;
    let cfg = json!({"name":"M","subjects":["m.>"],"allow_msg_ttl":true,
        "subject_delete_marker_ttl": 2 * SECOND, "allow_rollup_hdrs": true});
    let created = api(&client, "STREAM.CREATE.M", cfg).await;
    assert!(created.get("error").is_none(), "{created}");
    publish(&client, "m.purged", &[], "p").await;
    let purged = api(&client, "STREAM.PURGE.M", json!({"filter":"m.purged"})).await;
    assert_eq!(purged["purged"], 1, "{purged}");
    publish(&client, "m.ttl", &[("Nats-TTL", "1s")], "x").await;
    let kv_purge = [("KV-Operation", "PURGE"), ("Nats-TTL", "1s")];
    publish(&client, "m.kv", &kv_purge, "").await;
    publish(&client, "m.two", &[("Nats-TTL", "1s")], "a").await;
    publish(&client, "m.two", &[], "b").await;
    publish(&client, "m.keep", &[("Nats-TTL", "1h")], "k").await;
    let published = stored(&client, "M").await;
    let marked = wait_stored(&client, "M", |m| {
        let s = subjects(m);
        !s.contains(&"m.kv")
            && m.iter().any(is_marker)
            && s.iter().filter(|s| **s == "m.two").count() == 1
    })
    .await;
    let after = wait_stored(&client, "M", |m| !m.iter().any(is_marker)).await;
    let info = api(&client, "STREAM.INFO.M", json!({})).await;

    let aged = json!({"name":"A","subjects":["a.>"],"max_age": SECOND,
        "subject_delete_marker_ttl": SECOND});
    let created = api(&client, "STREAM.CREATE.A", aged).await;
    assert!(created.get("error").is_none(), "{created}");
    publish(&client, "a.one", &[], "1").await;
    let aged_marker = wait_stored(&client, "A", |m| m.iter().any(is_marker)).await;
    wait_stored(&client, "A", <[Value]>::is_empty).await;
    let aged_info = api(&client, "STREAM.INFO.A", json!({})).await;
    json!({
        "published": published,
        "markers_in_place": marked,
        "markers_expired": after,
        "last_seq": info["state"]["last_seq"],
        "max_age_marker": aged_marker,
        "max_age_last_seq": aged_info["state"]["last_seq"],
        "max_age_config": {
            "allow_msg_ttl": created["config"]["allow_msg_ttl"],
            "allow_rollup_hdrs": created["config"]["allow_rollup_hdrs"],
        },
    })
}

#[tokio::test]
async fn ttl_and_max_age_removals_leave_subject_delete_markers_like_nats_server() {
    let rill = ttl_story(rill_tests::ServerKind::Rill).await;
    insta::assert_json_snapshot!(rill);
    let nats = ttl_story(rill_tests::ServerKind::Nats).await;
    assert_eq!(rill, nats);
}

#[tokio::test]
async fn consumer_reset_follows_the_deliver_policy_like_nats_server() {
    let consumers = [
        ("all", json!({"deliver_policy":"all"})),
        (
            "byseq",
            json!({"deliver_policy":"by_start_sequence","opt_start_seq":3}),
        ),
        (
            "bytime",
            json!({"deliver_policy":"by_start_time","opt_start_time":"2100-01-01T00:00:00Z"}),
        ),
        ("new", json!({"deliver_policy":"new"})),
        ("last", json!({"deliver_policy":"last"})),
    ];
    let mut seen = Vec::new();
    for kind in BOTH {
        let server = TestServer::start_with(ServerOpts::kind(kind)).await;
        let client = server.client().await;
        api(
            &client,
            "STREAM.CREATE.R",
            json!({"name":"R","subjects":["r.>"]}),
        )
        .await;
        for i in 0..5 {
            publish(&client, &format!("r.{i}"), &[], "x").await;
        }
        let mut answers = Vec::new();
        for (name, cfg) in &consumers {
            let mut cfg = cfg.clone();
            cfg["durable_name"] = json!(name);
            cfg["ack_policy"] = json!("explicit");
            let body = json!({"stream_name":"R","config":cfg});
            let created = api(&client, &format!("CONSUMER.CREATE.R.{name}"), body).await;
            assert!(created.get("error").is_none(), "{created}");
            for seq in [0, 1, 2, 3, 4, 9] {
                let r = api(
                    &client,
                    &format!("CONSUMER.RESET.R.{name}"),
                    json!({"seq": seq}),
                )
                .await;
                answers.push(json!({
                    "consumer": name, "seq": seq,
                    "error": r.get("error"), "reset_seq": r["reset_seq"],
                }));
            }
        }
        seen.push(Value::Array(answers));
    }
    insta::assert_json_snapshot!(seen[0]);
    assert_eq!(seen[0], seen[1]);
}

/// What a KV watcher (async-nats) sees of a key that ages out of a bucket with
/// `limit_markers`: its put, then the server's `MaxAge` marker as a purge; a get after
/// it finds nothing, and the marker goes after its own TTL.
async fn kv_watch_story(kind: rill_tests::ServerKind) -> Value {
    use futures::StreamExt;
    let server = TestServer::start_with(ServerOpts::kind(kind)).await;
    let js = async_nats::jetstream::new(server.client().await);
    let kv = js
        .create_key_value(async_nats::jetstream::kv::Config {
            bucket: "AGED".into(),
            max_age: std::time::Duration::from_secs(1),
            limit_markers: Some(std::time::Duration::from_secs(2)),
            ..Default::default()
        })
        .await
        .expect("bucket");
    let mut watch = kv.watch_all().await.expect("watch");
    kv.put("k", "v".into()).await.expect("put");
    let mut watched = Vec::new();
    for _ in 0..2 {
        let next = tokio::time::timeout(std::time::Duration::from_secs(10), watch.next()).await;
        let entry = next.expect("an entry in time").expect("entry").expect("ok");
        watched.push(json!({
            "key": entry.key,
            "op": format!("{:?}", entry.operation),
            "value": String::from_utf8_lossy(&entry.value),
            "revision": entry.revision,
        }));
    }
    let after = kv.get("k").await.expect("get");
    let after = after.map(|v| String::from_utf8_lossy(&v).into_owned());
    let client = server.client().await;
    let left = wait_stored(&client, "KV_AGED", <[Value]>::is_empty).await;
    json!({"watched": watched, "get_after_expiry": after, "left_after_marker_ttl": left.len()})
}

#[tokio::test]
async fn kv_watchers_see_the_max_age_marker_like_nats_server() {
    let rill = kv_watch_story(rill_tests::ServerKind::Rill).await;
    let nats = kv_watch_story(rill_tests::ServerKind::Nats).await;
    assert_eq!(rill, nats);
    insta::assert_json_snapshot!(rill);
}

/// nats-py's KV watcher on the same bucket (`tests/e2e/py/kv_markers.py`), skipped
/// without nats-py.
#[tokio::test]
async fn nats_py_kv_watchers_see_the_max_age_marker_like_nats_server() {
    if !crate::js_nats_py::nats_py_available() {
        eprintln!("nats-py not installed; skipping");
        return;
    }
    let mut seen = Vec::new();
    for kind in BOTH {
        let server = TestServer::start_with(ServerOpts::kind(kind)).await;
        let out = tokio::process::Command::new("python3")
            .args(["-c", KV_MARKERS_PY, &server.port().to_string()])
            .output()
            .await
            .expect("run python3");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{kind:?}: {stdout}\n{stderr}");
        seen.push(stdout);
    }
    assert_eq!(
        seen[0], seen[1],
        "rill (left) and nats-server (right) differ"
    );
    insta::assert_snapshot!(seen[0]);
}

const KV_MARKERS_PY: &str = include_str!("../py/kv_markers.py");
