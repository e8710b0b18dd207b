//! More mirrors and sources against rill and nats-server side by side: start positions
//! (`opt_start_seq`, `opt_start_time`), filters and subject transforms on mirrors and
//! sources, the configurations a mirror refuses, sources removed by `STREAM.UPDATE`, a
//! KV bucket's mirror serving its direct gets (a read replica, read by async-nats and
//! nats-py), and a source and a mirror of a stream in another account (`external` API
//! and deliver prefixes through exports and imports).

use std::collections::BTreeSet;

use async_nats::jetstream::{self, kv};
use rill_tests::{ServerOpts, TestServer, check_for, side_by_side, side_by_side_with};
use serde_json::{Value, json};

use crate::js_dedupe::publish;
use crate::js_nats_py::nats_py_available;
use crate::js_sources::{WAIT, create, info, messages, wait_msgs};
use crate::js_streams::api;

/// `first_seq`, `last_seq` and `messages` of a stream.
async fn seqs(c: &async_nats::Client, name: &str) -> Value {
    let s = &info(c, name).await["state"];
    json!([s["first_seq"], s["last_seq"], s["messages"]])
}

#[tokio::test]
async fn start_positions_filters_and_transforms_as_nats_server() {
    let seen = side_by_side(async |_, _, c| {
        create(c, json!({"name": "O", "subjects": ["o.>"]})).await;
        for i in 0..8 {
            let subject = if i % 2 == 0 { "o.a" } else { "o.b" };
            publish(c, subject, &[], &format!("m{}", i + 1)).await;
        }
        let sixth = api(c, "$JS.API.STREAM.MSG.GET.O", r#"{"seq":6}"#).await;
        let t6 = sixth["message"]["time"].clone();
        let copies = [
            (
                "MS",
                5,
                json!({"mirror": {"name": "O", "opt_start_seq": 4}}),
            ),
            (
                "MT",
                3,
                json!({"mirror": {"name": "O", "opt_start_time": t6}}),
            ),
            (
                "MF",
                4,
                json!({"mirror": {"name": "O", "filter_subject": "o.a"}}),
            ),
            (
                "MX",
                4,
                json!({"mirror": {"name": "O", "subject_transforms": [{"src": "o.b", "dest": "x.b"}]}}),
            ),
            (
                "SS",
                2,
                json!({"sources": [{"name": "O", "opt_start_seq": 5, "filter_subject": "o.a"}]}),
            ),
            (
                "ST",
                3,
                json!({"sources": [{"name": "O", "opt_start_time": t6,
                    "subject_transforms": [{"src": "o.*", "dest": "t.{{wildcard(1)}}"}]}]}),
            ),
        ];
        let mut got = Vec::new();
        for (name, n, mut cfg) in copies {
            cfg["name"] = json!(name);
            create(c, cfg).await;
            wait_msgs(c, name, n).await;
            got.push((name, messages(c, name).await, seqs(c, name).await));
        }
        // What arrives later follows the same filters.
        publish(c, "o.a", &[], "m9").await;
        publish(c, "o.b", &[], "m10").await;
        for (name, n) in [
            ("MS", 7),
            ("MT", 5),
            ("MF", 5),
            ("MX", 5),
            ("SS", 3),
            ("ST", 5),
        ] {
            wait_msgs(c, name, n).await;
        }
        got.push(("MF after", messages(c, "MF").await, seqs(c, "MF").await));
        got.push(("MX after", messages(c, "MX").await, seqs(c, "MX").await));
        format!("{got:#?}")
    })
    .await;
    insta::assert_snapshot!(seen);
}

#[tokio::test]
async fn configurations_a_mirror_refuses_as_nats_server() {
    let seen = side_by_side(async |_, _, c| {
        create(c, json!({"name": "O", "subjects": ["o.>"]})).await;
        create(c, json!({"name": "M", "mirror": {"name": "O"}})).await;
        let refused = [
            json!({"name": "X1", "mirror": {"name": "O"}, "subjects": ["m.>"]}),
            json!({"name": "X2", "mirror": {"name": "O", "opt_start_seq": 2,
                "opt_start_time": "2026-01-01T00:00:00Z"}}),
            json!({"name": "X3", "mirror": {"name": "O"}, "sources": [{"name": "O"}]}),
            json!({"name": "X4", "mirror": {"name": "O", "filter_subject": "o.a",
                "subject_transforms": [{"src": "o.b", "dest": "x"}, {"src": "o.c", "dest": "y"}]}}),
            json!({"name": "X5", "mirror": {"name": "O", "subject_transforms": [{"src": "o.*", "dest": "x.{{wildcard(2)}}"}]}}),
            json!({"name": "X6", "mirror": {"name": "O"}, "first_seq": 5}),
        ];
        let mut errors = Vec::new();
        for cfg in refused {
            let name = cfg["name"].as_str().unwrap_or_default().to_owned();
            let r = api(
                c,
                &format!("$JS.API.STREAM.CREATE.{name}"),
                &cfg.to_string(),
            )
            .await;
            errors.push(r["error"].clone());
        }
        // Neither the mirror's origin nor its start can be changed afterwards.
        for mirror in [
            json!({"name": "O", "opt_start_seq": 3}),
            json!({"name": "P"}),
        ] {
            let r = api(
                c,
                "$JS.API.STREAM.UPDATE.M",
                &json!({"name": "M", "mirror": mirror}).to_string(),
            )
            .await;
            errors.push(r["error"].clone());
        }
        // A publish carrying the mirror's name as the expected stream is the origin's
        // to refuse: a mirror listens to no subject.
        let ack = publish(c, "o.a", &[("Nats-Expected-Stream", "M")], "x").await;
        errors.push(ack["error"].clone());
        errors
    })
    .await;
    insta::assert_json_snapshot!(seen);
}

#[tokio::test]
async fn sources_removed_by_stream_update_stop_copying_as_nats_server() {
    let seen = side_by_side(async |kind, _, c| {
        create(c, json!({"name": "A", "subjects": ["a.>"]})).await;
        create(c, json!({"name": "B", "subjects": ["b.>"]})).await;
        let r = create(
            c,
            json!({"name": "S", "sources": [{"name": "A"}, {"name": "B"}]}),
        )
        .await;
        publish(c, "a.1", &[], "a1").await;
        publish(c, "b.1", &[], "b1").await;
        wait_msgs(c, "S", 2).await;
        let mut cfg = r["config"].clone();
        cfg["sources"] = json!([{"name": "A"}]);
        let u = api(c, "$JS.API.STREAM.UPDATE.S", &cfg.to_string()).await;
        assert!(u.get("error").is_none(), "{kind:?}: {u}");
        publish(c, "b.2", &[], "b2").await;
        publish(c, "a.2", &[], "a2").await;
        // A's later message is copied; B's, published before it, never is.
        wait_msgs(c, "S", 3).await;
        publish(c, "a.3", &[], "a3").await;
        wait_msgs(c, "S", 4).await;
        let mut subjects: Vec<String> = messages(c, "S").await.into_iter().map(|m| m.1).collect();
        subjects.sort();
        let names: Vec<Value> = info(c, "S").await["sources"]
            .as_array()
            .map(|a| a.iter().map(|s| s["name"].clone()).collect())
            .unwrap_or_default();
        (subjects, names)
    })
    .await;
    assert_eq!(seen.0, ["a.1", "a.2", "a.3", "b.1"]);
}

/// Which streams answered `n` direct gets of `subject` in stream `stream`.
async fn direct_answerers(
    c: &async_nats::Client,
    stream: &str,
    subject: &str,
    n: usize,
) -> BTreeSet<String> {
    let mut by = BTreeSet::new();
    for _ in 0..n {
        let m = c
            .request(format!("$JS.API.DIRECT.GET.{stream}.{subject}"), "".into())
            .await
            .expect("direct get");
        let answered = m
            .headers
            .as_ref()
            .and_then(|h| h.get("Nats-Stream"))
            .map(|v| v.to_string());
        by.insert(answered.unwrap_or_else(|| format!("no stream: {m:?}")));
    }
    by
}

/// nats-py reads `keys` of bucket `bucket` and prints `key=value` lines.
async fn nats_py_kv_read(url: &str, bucket: &str, keys: &[&str]) -> String {
    let script = r#"
import asyncio, sys
import nats
async def main(url, bucket, keys):
    nc = await nats.connect(url)
    kv = await nc.jetstream().key_value(bucket)
    for k in keys:
        e = await kv.get(k)
        print(f"{k}={e.value.decode()}")
    await nc.close()
asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3:]))
"#;
    let out = tokio::process::Command::new("python3")
        .args(["-c", script, url, bucket])
        .args(keys)
        .output()
        .await
        .expect("run python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A KV bucket's mirror made by async-nats (`mirror_direct`) answers the bucket's direct
/// gets with the origin (one of them per request), so KV reads by async-nats and nats-py
/// are served by the replica too, and it keeps answering when the origin is gone.
#[tokio::test]
async fn a_kv_mirror_is_a_read_replica_as_nats_server() {
    let seen = side_by_side(async |_, server, c| {
        let js = jetstream::new(c.clone());
        let bucket = js
            .create_key_value(kv::Config {
                bucket: "cfg".into(),
                ..Default::default()
            })
            .await
            .expect("bucket");
        bucket.put("k1", "v1".into()).await.expect("put");
        bucket.put("k2", "v2".into()).await.expect("put");
        js.create_key_value(kv::Config {
            bucket: "replica".into(),
            mirror: Some(jetstream::stream::Source {
                name: "cfg".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("replica");
        wait_msgs(c, "KV_replica", 2).await;
        let cfg = info(c, "KV_replica").await["config"].clone();
        let answerers = direct_answerers(c, "KV_cfg", "$KV.cfg.k1", 40).await;
        let value = bucket.get("k2").await.expect("get");
        let py = if nats_py_available() {
            nats_py_kv_read(&server.url(), "cfg", &["k1", "k2"]).await
        } else {
            "k1=v1\nk2=v2\n".to_owned()
        };
        js.delete_stream("KV_cfg").await.expect("delete origin");
        let after = direct_answerers(c, "KV_cfg", "$KV.cfg.k1", 3).await;
        json!({
            "mirror": cfg["mirror"],
            "mirror_direct": cfg["mirror_direct"],
            "answered_by": answerers,
            "async_nats_k2": value.map(|v| String::from_utf8_lossy(&v).into_owned()),
            "nats_py": py,
            "answered_without_origin": after,
        })
    })
    .await;
    insta::assert_json_snapshot!(seen);
}

/// Account ORIGIN holds stream O and lets COPY create consumers on it (service
/// exports), answer their flow control, and receive their deliveries (a stream export).
const ACCOUNTS: &str = r#"
accounts {
  ORIGIN {
    jetstream: enabled
    users: [{user: o, password: o}]
    exports: [
      {service: "$JS.API.CONSUMER.CREATE.O"}
      {service: "$JS.API.CONSUMER.CREATE.O.>"}
      {service: "$JS.FC.>"}
      {stream: "deliver.copy.>"}
    ]
  }
  COPY {
    jetstream: enabled
    users: [{user: c, password: c}]
    imports: [
      {service: {account: ORIGIN, subject: "$JS.API.CONSUMER.CREATE.O"}, to: "JS.origin.API.CONSUMER.CREATE.O"}
      {service: {account: ORIGIN, subject: "$JS.API.CONSUMER.CREATE.O.>"}, to: "JS.origin.API.CONSUMER.CREATE.O.>"}
      {service: {account: ORIGIN, subject: "$JS.FC.>"}}
      {stream: {account: ORIGIN, subject: "deliver.copy.>"}}
    ]
  }
}
"#;

/// A client of `server` as `user` (password: the same).
pub(crate) async fn connect_as(server: &TestServer, user: &str) -> async_nats::Client {
    async_nats::ConnectOptions::with_user_and_password(user.into(), user.into())
        .connect(server.url())
        .await
        .expect("connect")
}

/// A source and a mirror in account COPY of stream O in account ORIGIN, through the
/// `external` API prefix and deliver prefix that its imports provide.
#[tokio::test]
async fn a_source_and_a_mirror_from_another_account_as_nats_server() {
    let opts = |kind| ServerOpts {
        config: Some(ACCOUNTS.to_owned()),
        ..ServerOpts::kind(kind)
    };
    let seen = side_by_side_with(opts, async |_, server| {
        let o = connect_as(server, "o").await;
        let c = connect_as(server, "c").await;
        create(&o, json!({"name": "O", "subjects": ["o.>"]})).await;
        for i in 0..5 {
            publish(&o, "o.x", &[], &format!("m{i}")).await;
        }
        let external = json!({"api": "JS.origin.API", "deliver": "deliver.copy"});
        create(
            &c,
            json!({"name": "S", "sources": [{"name": "O", "external": external, "filter_subject": "o.>"}]}),
        )
        .await;
        create(
            &c,
            json!({"name": "M", "mirror": {"name": "O", "external": external}}),
        )
        .await;
        wait_msgs(&c, "S", 5).await;
        wait_msgs(&c, "M", 5).await;
        for i in 5..8 {
            publish(&o, "o.y", &[], &format!("m{i}")).await;
        }
        wait_msgs(&c, "S", 8).await;
        wait_msgs(&c, "M", 8).await;
        check_for(WAIT, || async {
            let i = info(&c, "S").await;
            i["sources"][0]["seq"] == 8 && i["sources"][0]["lag"] == 0
        })
        .await;
        let i = info(&c, "S").await;
        let m = info(&c, "M").await;
        json!({
            "source": messages(&c, "S").await,
            "mirror": messages(&c, "M").await,
            "origin": messages(&o, "O").await,
            "source_info": [i["sources"][0]["name"], i["sources"][0]["external"], i["sources"][0]["filter_subject"]],
            "mirror_info": [m["mirror"]["name"], m["mirror"]["external"], m["mirror"]["lag"]],
        })
    })
    .await;
    assert_eq!(seen["mirror"], seen["origin"]);
    insta::assert_json_snapshot!(seen);
}
