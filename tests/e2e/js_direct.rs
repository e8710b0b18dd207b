//! `$JS.API.DIRECT.GET` batch forms (checked against nats-server 2.15.1): `batch`
//! with `next_by_subj`, and `multi_last` with `up_to_seq`, each ending in `204 EOB`.

use std::time::Duration;

use futures::StreamExt;
use rill_tests::{ServerKind, ServerOpts, TestServer};
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

/// A batch over a stream of a few thousand messages (with a gap and two subjects):
/// every message once, in order, with the same `Nats-Num-Pending` / `Nats-Last-Sequence`
/// as nats-server, also from the middle, filtered, and cut by `max_bytes`. rill sends
/// each message as it reads it and counts the pending ones once (it used to rescan the
/// rest of the stream per message: seconds for 10,000, with the stream's ingest held).
#[tokio::test]
async fn direct_get_large_batches_match_nats_server() {
    const N: usize = 3000;
    let mut answers = Vec::new();
    for kind in [ServerKind::Rill, ServerKind::Nats] {
        let server = TestServer::start_with(ServerOpts::kind(kind)).await;
        let c = server.client().await;
        let cfg = json!({"name": "D", "subjects": ["d.>"], "allow_direct": true});
        let r = api(&c, "$JS.API.STREAM.CREATE.D", &cfg.to_string()).await;
        assert!(r.get("error").is_none(), "{r}");
        for i in 0..N {
            let subject = if i % 3 == 0 { "d.a" } else { "d.b" };
            c.publish(subject, "x".into()).await.expect("publish");
        }
        c.flush().await.expect("flush");
        // The last one with an ack: the stream has them all once it is stored.
        publish(&c, "d.b", &[], "x").await;
        let del = api(&c, "$JS.API.STREAM.MSG.DELETE.D", r#"{"seq":100}"#).await;
        assert_eq!(del["success"], true, "{del}");
        let bodies = [
            json!({"seq": 1, "batch": N + 10}),
            json!({"seq": 1500, "batch": N}),
            json!({"seq": 50, "batch": N, "next_by_subj": "d.a"}),
            json!({"seq": 10, "batch": N, "max_bytes": 2000}),
        ];
        let mut rows = Vec::new();
        for body in bodies {
            rows.push(batch(&c, &body.to_string()).await);
        }
        assert_eq!(
            rows[0].len(),
            N + 1,
            "{kind:?}: N messages less one deleted, EOB"
        );
        answers.push(rows);
    }
    for (i, (ours, theirs)) in answers[0].iter().zip(&answers[1]).enumerate() {
        let differ = ours.iter().zip(theirs).position(|(a, b)| a != b);
        let at = differ.unwrap_or(ours.len().min(theirs.len()));
        assert!(
            differ.is_none() && ours.len() == theirs.len(),
            "batch {i}: rill sent {} replies, nats-server {}; from reply {at}: rill {:?}, nats-server {:?}",
            ours.len(),
            theirs.len(),
            &ours[at..ours.len().min(at + 3)],
            &theirs[at..theirs.len().min(at + 3)],
        );
    }
}
