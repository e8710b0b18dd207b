//! `$JS.API.DIRECT.GET` batch forms (checked against nats-server 2.15.1): `batch`
//! with `next_by_subj`, and `multi_last` with `up_to_seq`, each ending in `204 EOB`.

use std::time::Duration;

use futures::StreamExt;
use rill_tests::TestServer;
use serde_json::json;

use crate::js_dedupe::publish;
use crate::js_streams::api;

/// (sequence or status, Nats-Num-Pending, Nats-Last-Sequence) of every reply up to EOB/404.
async fn batch(client: &async_nats::Client, body: &str) -> Vec<(String, String, String)> {
    let inbox = client.new_inbox();
    let mut sub = client.subscribe(inbox.clone()).await.expect("sub");
    client
        .publish_with_reply("$JS.API.DIRECT.GET.D", inbox, body.to_owned().into())
        .await
        .expect("request");
    let mut out = Vec::new();
    loop {
        let m = tokio::time::timeout(Duration::from_secs(5), sub.next())
            .await
            .expect("reply in time")
            .expect("open");
        let h = m.headers.clone().unwrap_or_default();
        let get = |k: &str| h.get(k).map(|v| v.to_string()).unwrap_or_default();
        let status = m.status.map(|s| u16::from(s).to_string());
        let done = status.is_some();
        out.push((
            status.unwrap_or_else(|| get("Nats-Sequence")),
            get("Nats-Num-Pending"),
            get("Nats-Last-Sequence"),
        ));
        if done {
            return out;
        }
    }
}

fn row(a: &str, b: &str, c: &str) -> (String, String, String) {
    (a.into(), b.into(), c.into())
}

#[tokio::test]
async fn direct_get_batches_and_multi_last() {
    let server = TestServer::start().await;
    let c = server.client().await;
    let r = api(
        &c,
        "$JS.API.STREAM.CREATE.D",
        &json!({"name": "D", "subjects": ["d.>"], "allow_direct": true}).to_string(),
    )
    .await;
    assert!(r.get("error").is_none(), "{r}");
    for s in ["d.a", "d.b", "d.a", "d.c"] {
        publish(&c, s, &[], "x").await;
    }
    assert_eq!(
        batch(&c, r#"{"seq":1,"batch":2}"#).await,
        [row("1", "3", "0"), row("2", "2", "1"), row("204", "2", "2")]
    );
    assert_eq!(
        batch(&c, r#"{"seq":1,"batch":5,"next_by_subj":"d.a"}"#).await,
        [row("1", "1", "0"), row("3", "0", "1"), row("204", "0", "3")]
    );
    assert_eq!(
        batch(&c, r#"{"multi_last":["d.a","d.b"]}"#).await,
        [row("2", "1", "0"), row("3", "0", "2"), row("204", "0", "3")]
    );
    assert_eq!(
        batch(&c, r#"{"multi_last":["d.>"],"up_to_seq":2}"#).await,
        [row("1", "1", "0"), row("2", "0", "1"), row("204", "0", "2")]
    );
    assert_eq!(
        batch(&c, r#"{"seq":10,"batch":2}"#).await,
        [row("404", "", "")]
    );
}
