//! JetStream 2.11–2.14 stream and consumer features (issue 22), each checked against
//! rill and the reference nats-server side by side where both apply.
//!
//! - `markers`: subject delete markers (`subject_delete_marker_ttl`) placed when
//!   `max_age` or a `Nats-TTL` removes a subject's last message; consumer reset rules.
//! - `counters`: `Nats-Incr` publishes on counter streams.
//! - `batches`: atomic batch publish (`Nats-Batch-*`), its errors and limits.
//! - `fast`: fast batch publish (`allow_batched`): flow acks, gaps, errors, limits.
//! - `schedules`: message schedules (`Nats-Schedule`), their errors, firings and
//!   restarts.

mod batches;
mod counters;
mod fast;
mod markers;
mod schedules;

use base64::Engine;
use rill_tests::ServerKind;
use serde_json::{Value, json};

/// Both servers, rill first.
pub(crate) const BOTH: [ServerKind; 2] = [ServerKind::Rill, ServerKind::Nats];

/// A `$JS.API` request with a JSON body; the JSON reply.
pub(crate) async fn api(client: &async_nats::Client, subject: &str, body: Value) -> Value {
    let reply = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        client.request(format!("$JS.API.{subject}"), body.to_string().into()),
    )
    .await
    .unwrap_or_else(|_| panic!("{subject}: timed out"))
    .unwrap_or_else(|e| panic!("{subject}: {e}"));
    serde_json::from_slice(&reply.payload).expect("json reply")
}

/// Publishes `body` with `hdrs` as a request; the PubAck (or error) as JSON.
pub(crate) async fn publish(
    client: &async_nats::Client,
    subject: &str,
    hdrs: &[(&str, &str)],
    body: &str,
) -> Value {
    let mut headers = async_nats::HeaderMap::new();
    for (k, v) in hdrs {
        headers.append(*k, *v);
    }
    let ack = client
        .request_with_headers(subject.to_owned(), headers, body.to_owned().into())
        .await
        .expect("publish");
    serde_json::from_slice(&ack.payload).expect("ack")
}

/// Waits (bounded, 15 s) until `stream`'s stored messages satisfy `done`; returns them.
pub(crate) async fn wait_stored(
    client: &async_nats::Client,
    stream: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let mut last = Vec::new();
    for _ in 0..750 {
        last = stored(client, stream).await;
        if done(&last) {
            return last;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("{stream} never reached the expected state: {last:?}");
}

/// Every stored message of `stream` as `{seq, subject, hdrs, data}` (headers and payload
/// as text).
pub(crate) async fn stored(client: &async_nats::Client, stream: &str) -> Vec<Value> {
    let info = api(client, &format!("STREAM.INFO.{stream}"), json!({})).await;
    let first = info["state"]["first_seq"].as_u64().unwrap_or(0).max(1);
    let last = info["state"]["last_seq"].as_u64().unwrap_or(0);
    let mut out = Vec::new();
    for seq in first..=last {
        let r = api(
            client,
            &format!("STREAM.MSG.GET.{stream}"),
            json!({ "seq": seq }),
        )
        .await;
        let Some(m) = r.get("message") else {
            continue;
        };
        let text = |k: &str| {
            let b = base64::engine::general_purpose::STANDARD
                .decode(m[k].as_str().unwrap_or_default())
                .expect("base64");
            String::from_utf8_lossy(&b).into_owned()
        };
        out.push(json!({"seq": seq, "subject": m["subject"], "hdrs": text("hdrs"), "data": text("data")}));
    }
    out
}
