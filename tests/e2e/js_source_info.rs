//! What `STREAM.INFO` says of a mirror and a source (`mirror` / `sources`: `active`,
//! `lag`, `seq` and the `error` object) while their origin is missing, made, deleted,
//! or in an account that does not let the copy in, against rill and nats-server 2.15.1
//! side by side (issue 21). `active` (nanoseconds since the last contact, -1 before the
//! first) varies from run to run: the snapshots keep only which of the two it is.
//!
//! Recorded from 2.15.1: an origin that does not exist gives `stream not found`
//! (404/10059) at once, `active` -1; once the origin is made the copy finds it on its
//! retry timer and the error goes; once it is deleted the error comes back (about 10 s
//! later on 2.15.1, 4 s on rill) and `active` keeps counting from the last contact. An
//! origin account that does not export its API shows no error at all: the consumer
//! create goes unanswered and is retried without a word.

use std::time::Duration;

use rill_tests::{ServerOpts, check_for, side_by_side, side_by_side_with};
use serde_json::{Value, json};

use crate::js_dedupe::publish;
use crate::js_mirrors::connect_as;
use crate::js_sources::{create, info};
use crate::js_streams::api;

/// How long a copy may take to notice its origin came or went: nats-server retries
/// about every 10 s, more under load.
const NOTICE: Duration = Duration::from_secs(60);

/// A `mirror` or `sources[i]` block with `active` reduced to what does not vary.
fn shape(block: &Value) -> Value {
    let mut b = block.clone();
    if let Some(active) = b.get("active").and_then(Value::as_i64) {
        b["active"] = json!(if active < 0 { "never" } else { "ns ago" });
    }
    b
}

/// The `mirror` of `M` and the `sources` of `S`, shaped.
async fn blocks(c: &async_nats::Client) -> Value {
    let m = info(c, "M").await;
    let s = info(c, "S").await;
    let sources: Vec<Value> = s["sources"]
        .as_array()
        .map(|a| a.iter().map(shape).collect())
        .unwrap_or_default();
    json!({"mirror": shape(&m["mirror"]), "sources": sources, "held": [m["state"]["messages"], s["state"]["messages"]]})
}

/// True once both copies show an error (`want`) or none (`None`).
fn errors_are(b: &Value, want: Option<u64>) -> bool {
    let code = |v: &Value| v.get("error").map(|e| e["err_code"].as_u64());
    [&b["mirror"], &b["sources"][0]]
        .iter()
        .all(|v| code(v) == want.map(Some))
}

#[tokio::test]
async fn info_follows_the_origin_missing_made_and_deleted_as_nats_server() {
    let seen = side_by_side(async |kind, _, c| {
        create(c, json!({"name": "M", "mirror": {"name": "O"}})).await;
        create(c, json!({"name": "S", "sources": [{"name": "O"}]})).await;
        let mut steps = Vec::new();
        let mut settle = async |when: &str, want: Option<u64>, held: u64| {
            check_for(NOTICE, || async {
                let b = blocks(c).await;
                errors_are(&b, want) && b["held"] == json!([held, held])
            })
            .await;
            let b = blocks(c).await;
            assert!(errors_are(&b, want), "{kind:?} {when}: {b}");
            steps.push(json!({when: b}));
        };
        settle("origin missing", Some(10059), 0).await;
        create(c, json!({"name": "O", "subjects": ["o.>"]})).await;
        for i in 0..3 {
            publish(c, &format!("o.{i}"), &[], "x").await;
        }
        settle("origin made", None, 3).await;
        api(c, "$JS.API.STREAM.DELETE.O", "").await;
        settle("origin deleted", Some(10059), 3).await;
        steps
    })
    .await;
    insta::assert_json_snapshot!(seen);
}

/// Accounts ORIGIN and COPY, with neither exports nor imports between them.
const STRANGERS: &str = r#"
accounts {
  ORIGIN { jetstream: enabled, users: [{user: o, password: o}] }
  COPY { jetstream: enabled, users: [{user: c, password: c}] }
}
"#;

/// A copy whose `external` API prefix nothing answers (the origin's account exports
/// nothing) shows no error: nats-server 2.15.1 showed none for 40 s. The wait below is
/// longer than rill's consumer create timeout and retry (5 s + 1 s), after which rill
/// used to show `source consumer create timed out`.
#[tokio::test]
async fn an_origin_account_that_exports_nothing_shows_no_error_as_nats_server() {
    let opts = |kind| ServerOpts {
        config: Some(STRANGERS.to_owned()),
        ..ServerOpts::kind(kind)
    };
    let seen = side_by_side_with(opts, async |_, server| {
        let o = connect_as(server, "o").await;
        let c = connect_as(server, "c").await;
        create(&o, json!({"name": "O", "subjects": ["o.>"]})).await;
        publish(&o, "o.x", &[], "x").await;
        let external = json!({"api": "$JS.ORIGIN.API", "deliver": "copy"});
        create(
            &c,
            json!({"name": "M", "mirror": {"name": "O", "external": external}}),
        )
        .await;
        create(
            &c,
            json!({"name": "S", "sources": [{"name": "O", "external": external}]}),
        )
        .await;
        tokio::time::sleep(Duration::from_secs(7)).await;
        blocks(&c).await
    })
    .await;
    assert!(errors_are(&seen, None), "{seen}");
    insta::assert_json_snapshot!(seen);
}
