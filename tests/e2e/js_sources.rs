//! Mirrors and sources against rill and nats-server side by side: a mirror copies with
//! the origin's sequences and refuses publishes, sources aggregate with filters and
//! transforms and mark each copy with `Nats-Stream-Source`, `STREAM.INFO` reports them,
//! sources are added by `STREAM.UPDATE`, a mirror becomes a normal stream when its
//! mirror config is removed; and (rill) copying survives restarts with no gap and no
//! duplicate.

use std::time::Duration;

use rill_tests::{TestServer, check_for, side_by_side};
use serde_json::{Value, json};

use crate::js_dedupe::publish;
use crate::js_streams::api;

pub(crate) const WAIT: Duration = Duration::from_secs(15);

pub(crate) async fn create(c: &async_nats::Client, cfg: Value) -> Value {
    let name = cfg["name"].as_str().expect("name").to_owned();
    let r = api(
        c,
        &format!("$JS.API.STREAM.CREATE.{name}"),
        &cfg.to_string(),
    )
    .await;
    assert!(r.get("error").is_none(), "{r}");
    r
}

pub(crate) async fn info(c: &async_nats::Client, name: &str) -> Value {
    api(c, &format!("$JS.API.STREAM.INFO.{name}"), "{}").await
}

/// Waits until stream `name` holds `n` messages.
pub(crate) async fn wait_msgs(c: &async_nats::Client, name: &str, n: u64) {
    wait_msgs_for(WAIT, c, name, n).await;
}

/// [`wait_msgs`] with a wait of its own, for copies that follow a retry timer.
async fn wait_msgs_for(wait: Duration, c: &async_nats::Client, name: &str, n: u64) {
    check_for(wait, || async {
        info(c, name).await["state"]["messages"] == json!(n)
    })
    .await;
}

/// (seq, subject, payload, Nats-Stream-Source) of every message of `name`, the header
/// without the origin's identity (its sixth field, which differs from run to run).
pub(crate) async fn messages(
    c: &async_nats::Client,
    name: &str,
) -> Vec<(u64, String, String, String)> {
    let cut = |v: String| v.split(' ').take(5).collect::<Vec<_>>().join(" ");
    stored(c, name)
        .await
        .into_iter()
        .map(|(seq, subject, data, source)| (seq, subject, data, cut(source)))
        .collect()
}

/// (seq, subject, payload, whole Nats-Stream-Source) of every message of `name`.
pub(crate) async fn stored(
    c: &async_nats::Client,
    name: &str,
) -> Vec<(u64, String, String, String)> {
    let last = info(c, name).await["state"]["last_seq"]
        .as_u64()
        .unwrap_or(0);
    let mut out = Vec::new();
    for seq in 1..=last {
        let r = api(
            c,
            &format!("$JS.API.STREAM.MSG.GET.{name}"),
            &json!({"seq": seq}).to_string(),
        )
        .await;
        let Some(m) = r.get("message") else { continue };
        let b64 = |k: &str| {
            use base64::Engine;
            let text = m[k].as_str().unwrap_or_default();
            let raw = base64::engine::general_purpose::STANDARD
                .decode(text)
                .unwrap_or_default();
            String::from_utf8_lossy(&raw).to_string()
        };
        let hdrs = b64("hdrs");
        let source = hdrs
            .lines()
            .find_map(|l| l.strip_prefix("Nats-Stream-Source: "))
            .map(str::to_owned)
            .unwrap_or_default();
        out.push((
            seq,
            m["subject"].as_str().unwrap_or_default().to_owned(),
            b64("data"),
            source,
        ));
    }
    out
}

#[tokio::test]
async fn a_mirror_copies_with_the_origins_sequences_as_nats_server() {
    side_by_side(async |kind, _, c| {
        create(c, json!({"name": "O", "subjects": ["o.>"]})).await;
        for i in 0..6 {
            publish(c, &format!("o.{}", i % 3), &[], &format!("m{i}")).await;
        }
        api(c, "$JS.API.STREAM.MSG.DELETE.O", r#"{"seq":2}"#).await;
        create(
            c,
            json!({"name": "M", "mirror": {"name": "O", "opt_start_seq": 1}}),
        )
        .await;
        wait_msgs(c, "M", 5).await;
        let copied = messages(c, "M").await;
        assert_eq!(copied, messages(c, "O").await, "{kind:?}");
        let i = info(c, "M").await;
        assert_eq!(i["mirror"]["name"], "O", "{kind:?}: {i}");
        assert_eq!(i["mirror"]["lag"], 0, "{kind:?}: {i}");
        assert!(
            i["mirror"]["active"].as_i64().is_some_and(|a| a >= 0),
            "{kind:?}: {i}"
        );
        // Later messages follow.
        publish(c, "o.new", &[], "late").await;
        wait_msgs(c, "M", 6).await;
        // A mirror takes no subjects.
        let r = api(
            c,
            "$JS.API.STREAM.UPDATE.M",
            &json!({"name": "M", "mirror": {"name": "O", "opt_start_seq": 1}, "subjects": ["m.>"]})
                .to_string(),
        )
        .await;
        (copied, r["error"].clone())
    })
    .await;
}

#[tokio::test]
async fn sources_aggregate_with_filters_and_transforms_as_nats_server() {
    let seen = side_by_side(async |kind, _, c| {
        create(c, json!({"name": "A", "subjects": ["a.>"]})).await;
        create(c, json!({"name": "B", "subjects": ["b.>"]})).await;
        for i in 0..4 {
            publish(c, &format!("a.{}", i % 2), &[], &format!("a{i}")).await;
            publish(c, &format!("b.{i}"), &[], &format!("b{i}")).await;
        }
        create(c, json!({"name": "S", "subjects": ["s.>"], "sources": [
            {"name": "A", "filter_subject": "a.1"},
            {"name": "B", "subject_transforms": [{"src": "b.*", "dest": "from-b.{{wildcard(1)}}"}]},
        ]})).await;
        wait_msgs(c, "S", 6).await;
        let mut got = messages(c, "S").await;
        // Sources interleave in any order; compare them sorted.
        got.sort_by(|x, y| x.3.cmp(&y.3));
        let got: Vec<(String, String, String)> =
            got.into_iter().map(|(_, s, d, h)| (s, d, h)).collect();
        // Both sources caught up (their last origin sequence is 4, nothing left).
        check_for(WAIT, || async {
            let i = info(c, "S").await;
            let caught_up = |s: &Value| s["seq"] == 4 && s["lag"] == 0;
            i["sources"]
                .as_array()
                .is_some_and(|a| a.len() == 2 && a.iter().all(caught_up))
        })
        .await;
        let i = info(c, "S").await;
        // nats-server lists sources in no fixed order.
        let mut sources: Vec<(String, Value, Value)> = i["sources"]
            .as_array()
            .expect("sources")
            .iter()
            .map(|s| {
                (
                    s["name"].as_str().unwrap_or_default().to_owned(),
                    s["lag"].clone(),
                    s["seq"].clone(),
                )
            })
            .collect();
        sources.sort_by(|x, y| x.0.cmp(&y.0));
        // Adding a source with STREAM.UPDATE starts copying it.
        create(c, json!({"name": "C", "subjects": ["c.>"]})).await;
        publish(c, "c.x", &[], "c").await;
        let mut cfg = i["config"].clone();
        cfg["sources"]
            .as_array_mut()
            .expect("array")
            .push(json!({"name": "C"}));
        let r = api(c, "$JS.API.STREAM.UPDATE.S", &cfg.to_string()).await;
        assert!(r.get("error").is_none(), "{kind:?}: {r}");
        wait_msgs(c, "S", 7).await;
        (got, sources)
    })
    .await;
    insta::assert_debug_snapshot!(seen);
}

/// nats-server 2.15 writes the origin's identity as the sixth field of
/// `Nats-Stream-Source` (it answers a sourcing consumer's create with
/// `Nats-Stream-Identity`): the same for every message of one origin, another once the
/// origin is deleted and made again under its name, whose messages are then copied from
/// its first sequence (before, rill waited for the old origin's next sequence forever).
#[tokio::test]
async fn a_source_follows_its_origin_deleted_and_made_again_as_nats_server() {
    side_by_side(async |kind, _, c| {
        create(c, json!({"name": "O", "subjects": ["o.>"]})).await;
        for i in 0..3 {
            publish(c, &format!("o.{i}"), &[], "old").await;
        }
        create(c, json!({"name": "S", "sources": [{"name": "O"}]})).await;
        wait_msgs(c, "S", 3).await;
        api(c, "$JS.API.STREAM.DELETE.O", "").await;
        create(c, json!({"name": "O", "subjects": ["o.>"]})).await;
        for i in 0..2 {
            publish(c, &format!("o.new{i}"), &[], "new").await;
        }
        // nats-server 2.15.1 finds the new origin on its source retry timer: 12 s on a
        // quiet machine, more under load (rill: 5 s).
        wait_msgs_for(Duration::from_secs(45), c, "S", 5).await;
        let copies = stored(c, "S").await;
        let identities: Vec<String> = copies
            .iter()
            .map(|(_, _, _, h)| h.split(' ').nth(5).unwrap_or_default().to_owned())
            .collect();
        assert!(
            identities.iter().all(|id| id.len() == 8),
            "{kind:?}: {copies:?}"
        );
        let (old, new) = (&identities[0], &identities[3]);
        assert_ne!(
            old, new,
            "{kind:?}: the made-again origin has another identity"
        );
        assert!(
            identities[..3].iter().all(|id| id == old)
                && identities[3..].iter().all(|id| id == new),
            "{kind:?}: {copies:?}"
        );
        let i = info(c, "S").await;
        (messages(c, "S").await, i["sources"][0]["seq"].clone())
    })
    .await;
}

/// A mirror keeps its origin's sequences, so unlike a source it does not start over
/// when the origin is deleted and made again: nats-server 2.15.1 (recorded) creates its
/// next consumer from the sequence after the last it holds, whatever identity the new
/// origin answers with, and copies the new origin's messages from that sequence on
/// (here o.new3 and o.new4 at 4 and 5; the new origin's first three are never copied).
#[tokio::test]
async fn a_mirror_goes_on_at_its_next_sequence_when_its_origin_is_made_again_as_nats_server() {
    side_by_side(async |_, _, c| {
        create(c, json!({"name": "O", "subjects": ["o.>"]})).await;
        for i in 0..3 {
            publish(c, &format!("o.old{i}"), &[], "old").await;
        }
        create(c, json!({"name": "M", "mirror": {"name": "O"}})).await;
        wait_msgs(c, "M", 3).await;
        api(c, "$JS.API.STREAM.DELETE.O", "").await;
        create(c, json!({"name": "O", "subjects": ["o.>"]})).await;
        for i in 0..5 {
            publish(c, &format!("o.new{i}"), &[], "new").await;
        }
        wait_msgs_for(Duration::from_secs(45), c, "M", 5).await;
        let i = info(c, "M").await;
        (messages(c, "M").await, i["mirror"]["lag"].clone())
    })
    .await;
}

#[tokio::test]
async fn removing_the_mirror_config_makes_a_normal_stream() {
    side_by_side(async |kind, _, c| {
        create(c, json!({"name": "O", "subjects": ["o.>"]})).await;
        for i in 0..3 {
            publish(c, "o.x", &[], &format!("{i}")).await;
        }
        let r = create(c, json!({"name": "M", "mirror": {"name": "O"}})).await;
        wait_msgs(c, "M", 3).await;
        let mut cfg = r["config"].clone();
        cfg.as_object_mut().expect("object").remove("mirror");
        cfg["subjects"] = json!(["m.>"]);
        let r = api(c, "$JS.API.STREAM.UPDATE.M", &cfg.to_string()).await;
        assert!(r.get("error").is_none(), "{kind:?}: {r}");
        assert!(r["config"].get("mirror").is_none(), "{kind:?}: {r}");
        let ack = publish(c, "m.own", &[], "mine").await;
        assert_eq!(ack["seq"], 4, "{kind:?}: {ack}");
        publish(c, "o.x", &[], "not copied").await;
        wait_msgs(c, "O", 4).await;
        assert_eq!(info(c, "M").await["state"]["messages"], 4, "{kind:?}");
    })
    .await;
}

/// Origin sequences a source copied, from its `Nats-Stream-Source` headers.
async fn sourced_seqs(c: &async_nats::Client, name: &str) -> Vec<u64> {
    messages(c, name)
        .await
        .iter()
        .filter_map(|m| m.3.split(' ').nth(1).and_then(|s| s.parse().ok()))
        .collect()
}

#[tokio::test]
async fn mirrors_and_sources_resume_after_restarts_with_no_gap_and_no_duplicate() {
    let mut server = TestServer::start().await;
    let mut c = server.client().await;
    create(&c, json!({"name": "O", "subjects": ["o.>"]})).await;
    create(&c, json!({"name": "M", "mirror": {"name": "O"}})).await;
    create(&c, json!({"name": "S", "sources": [{"name": "O"}]})).await;
    let mut published = 0u64;
    for round in 0..3 {
        for i in 0..40 {
            publish(&c, &format!("o.{}", i % 4), &[], &format!("r{round}-{i}")).await;
            published += 1;
        }
        if round == 1 {
            // Restart while copies may still be in flight.
            server.restart().await;
            c = server.client().await;
        }
        wait_msgs(&c, "M", published).await;
        wait_msgs(&c, "S", published).await;
    }
    server.restart().await;
    c = server.client().await;
    publish(&c, "o.last", &[], "after the last restart").await;
    published += 1;
    wait_msgs(&c, "M", published).await;
    wait_msgs(&c, "S", published).await;
    let origin = messages(&c, "O").await;
    assert_eq!(messages(&c, "M").await, origin);
    let want: Vec<u64> = (1..=published).collect();
    assert_eq!(sourced_seqs(&c, "S").await, want);
}

/// "Last Seen" varies from run to run.
fn steady(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("Last Seen: ") {
            Some(at) => format!("{}Last Seen: [AGO]", &l[..at]),
            None => l.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn cli_adds_mirrors_sources_republish_and_transforms_and_shows_lag() {
    let server = TestServer::start().await;
    let cli = rill_tests::cli::Cli::new(server.url());
    let port = server.port();
    cli.ok(&["stream", "add", "O", "--subjects", "o.>", "--defaults"])
        .await;
    cli.ok(&["stream", "add", "P", "--subjects", "p.>", "--defaults"])
        .await;
    for s in ["o.a", "o.b", "p.a"] {
        cli.ok(&["pub", s, "x"]).await;
    }
    cli.ok(&["stream", "add", "M", "--mirror", "O", "--defaults"])
        .await;
    cli.ok(&[
        "stream",
        "add",
        "S",
        "--source",
        "O:o.a",
        "--source",
        "P",
        "--subjects",
        "in.*",
        "--transform-source",
        "in.*",
        "--transform-destination",
        "st.$1",
        "--republish-source",
        "st.>",
        "--republish-destination",
        "out.>",
        "--republish-headers",
        "--defaults",
    ])
    .await;
    let c = server.client().await;
    wait_msgs(&c, "M", 2).await;
    wait_msgs(&c, "S", 2).await;
    let m = cli.ok(&["stream", "info", "M"]).await;
    insta::assert_snapshot!(
        "cli_mirror_info",
        steady(&rill_tests::cli::redact(&m, port))
    );
    let s = cli.ok(&["stream", "info", "S"]).await;
    insta::assert_snapshot!(
        "cli_sources_info",
        steady(&rill_tests::cli::redact(&s, port))
    );
    let j: Value =
        serde_json::from_str(&cli.ok(&["stream", "info", "S", "--json"]).await).expect("json");
    assert_eq!(
        j["config"]["republish"],
        json!({"src": "st.>", "dest": "out.>", "headers_only": true})
    );
    assert_eq!(
        j["config"]["subject_transform"],
        json!({"src": "in.*", "dest": "st.$1"})
    );
}

/// A consumer-create request as the origin's account sees it, with the per-run parts
/// (hash, deliver token) blanked.
fn create_request_shape(m: &async_nats::Message) -> Value {
    let subject = m.subject.to_string();
    let body: Value = serde_json::from_slice(&m.payload).unwrap_or(Value::Null);
    let cfg = &body["config"];
    let name = cfg["name"].as_str().unwrap_or("<none>");
    let kind = name.rsplit_once('_').map_or(name, |(k, _)| k);
    json!({
        "subject": subject.replace(name, "<name>"),
        "reply_prefix": m.reply.as_ref().map(|r| r.split('.').take(2).collect::<Vec<_>>().join(".")),
        "name_kind": kind,
        "deliver_prefix": cfg["deliver_subject"].as_str().and_then(|d| d.rsplit_once('.')).map(|(p, _)| p),
        "ack_policy": cfg["ack_policy"],
        "max_deliver": cfg["max_deliver"],
        "flow_control": cfg["flow_control"],
        "idle_heartbeat": cfg["idle_heartbeat"],
        "inactive_threshold": cfg["inactive_threshold"],
        "filter_subject": cfg["filter_subject"],
        "direct": cfg["direct"],
        "sourcing": cfg["sourcing"],
        "metadata": cfg["metadata"],
    })
}

/// How the copies' consumers on the origin look to clients, against both servers: each
/// is created through `$JS.API.CONSUMER.CREATE` as a `direct`, `sourcing` push consumer
/// (`JS_MIRROR_…` / `JS_SRC_…`, the copying account and stream in its metadata), is left
/// out of CONSUMER.NAMES, CONSUMER.LIST and the origin's `consumer_count`, and is
/// counted in the account's `consumers`.
#[tokio::test]
async fn the_copies_consumers_on_the_origin_are_hidden_as_nats_server() {
    use futures::StreamExt;
    let seen = side_by_side(async |_, _, c| {
        create(c, json!({"name": "O", "subjects": ["o.>"]})).await;
        publish(c, "o.x", &[], "one").await;
        let mut creates = c
            .subscribe("$JS.API.CONSUMER.CREATE.>")
            .await
            .expect("subscribe");
        c.flush().await.expect("flush");
        create(c, json!({"name": "M", "mirror": {"name": "O"}})).await;
        create(
            c,
            json!({"name": "S", "sources": [{"name": "O", "filter_subject": "o.x"}]}),
        )
        .await;
        wait_msgs(c, "M", 1).await;
        wait_msgs(c, "S", 1).await;
        let mut requests = Vec::new();
        while requests.len() < 2 {
            let m = tokio::time::timeout(WAIT, creates.next())
                .await
                .expect("consumer creates in time")
                .expect("subscription open");
            requests.push(create_request_shape(&m));
        }
        requests.sort_by_key(|r| r["name_kind"].to_string());
        let names = api(c, "$JS.API.CONSUMER.NAMES.O", "{}").await;
        let list = api(c, "$JS.API.CONSUMER.LIST.O", "{}").await;
        let account = api(c, "$JS.API.INFO", "").await;
        json!({
            "requests": requests,
            "names": names["consumers"],
            "names_total": names["total"],
            "list": list["consumers"],
            "list_total": list["total"],
            "consumer_count": info(c, "O").await["state"]["consumer_count"],
            "account_consumers": account["consumers"],
        })
    })
    .await;
    insta::assert_json_snapshot!(seen);
}
