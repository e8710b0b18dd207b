//! Pull requests (issue 14 item 4, issue 16 item 10): what nats-server refuses at once
//! with `400 Bad Request` instead of waiting, and `no_wait` with `expires`, which waits
//! for a first message (the probe nats.py sends before its lingering request), and the
//! `409 Server Shutdown` a stopping server sends to waiting pulls.

use std::time::Duration;

use async_nats::jetstream::{consumer, stream};
use bytes::Bytes;
use futures::StreamExt;
use rill_tests::{ServerKind, ServerOpts, TestServer};

use super::BOTH;

/// A server with stream `S` on `s.>` and the durable pull consumer `C`.
async fn setup(kind: ServerKind) -> (TestServer, async_nats::Client) {
    let server = TestServer::start_with(ServerOpts::kind(kind)).await;
    let client = server.client().await;
    let js = async_nats::jetstream::new(client.clone());
    let stream = js
        .create_stream(stream::Config {
            name: "S".into(),
            subjects: vec!["s.>".into()],
            ..Default::default()
        })
        .await
        .expect("stream");
    stream
        .create_consumer(consumer::pull::Config {
            durable_name: Some("C".into()),
            ..Default::default()
        })
        .await
        .expect("consumer");
    (server, client)
}

/// Sends a pull request with `body` and returns what reached its inbox within `wait`:
/// `"<status> <description>"` for a status, `"msg <payload>"` for a message.
async fn pull(client: &async_nats::Client, body: &str, wait: Duration) -> Vec<String> {
    let inbox = client.new_inbox();
    let mut sub = client.subscribe(inbox.clone()).await.expect("subscribe");
    client
        .publish_with_reply(
            "$JS.API.CONSUMER.MSG.NEXT.S.C",
            inbox,
            Bytes::copy_from_slice(body.as_bytes()),
        )
        .await
        .expect("publish");
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    while let Ok(Some(msg)) = tokio::time::timeout_at(deadline, sub.next()).await {
        match msg.status {
            Some(status) => {
                let description = msg.description.unwrap_or_default();
                seen.push(format!("{} {description}", u16::from(status)));
            }
            None => seen.push(format!("msg {}", String::from_utf8_lossy(&msg.payload))),
        }
    }
    seen
}

#[tokio::test]
async fn bad_pull_requests_get_400_at_once() {
    let cases = [
        // Too large for a batch: not batch 1.
        r#"{"batch":18446744073709551616,"expires":2000000000}"#,
        r#"{"batch":"x","expires":2000000000}"#,
        // An idle heartbeat must be at most half the expiry.
        r#"{"batch":1,"expires":1000000000,"idle_heartbeat":600000000}"#,
        r#"{"batch":1,"idle_heartbeat":100000000}"#,
        // Priority fields on a consumer without priority groups.
        r#"{"batch":1,"expires":2000000000,"min_pending":3}"#,
        r#"{"batch":1,"expires":2000000000,"id":"pin"}"#,
    ];
    let mut answers: Vec<Vec<Vec<String>>> = Vec::new();
    for kind in BOTH {
        let (_server, client) = setup(kind).await;
        let mut per_case = Vec::new();
        for body in cases {
            // Each answer comes at once: well before the request's own expiry.
            let seen = pull(&client, body, Duration::from_millis(800)).await;
            assert_eq!(seen.len(), 1, "{kind:?} {body}: {seen:?}");
            assert!(
                seen[0].starts_with("400 Bad Request - "),
                "{kind:?} {body}: {seen:?}"
            );
            per_case.push(seen);
        }
        answers.push(per_case);
    }
    // The descriptions match nats-server's, except the JSON decoder's own words.
    for (i, body) in cases.iter().enumerate().skip(2) {
        assert_eq!(answers[0][i], answers[1][i], "{body}");
    }
}

#[tokio::test]
async fn no_wait_with_expires_waits_for_the_first_message() {
    for kind in BOTH {
        let (_server, client) = setup(kind).await;
        // Nothing arrives: the request lives until it expires.
        let seen = pull(
            &client,
            r#"{"batch":5,"expires":500000000,"no_wait":true}"#,
            Duration::from_millis(1500),
        )
        .await;
        assert_eq!(seen, ["408 Request Timeout"], "{kind:?}");
        // A message published while it waits is delivered, then 404 ends it.
        let publisher = client.clone();
        let publish = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            publisher
                .publish("s.late", "late".into())
                .await
                .expect("publish");
        });
        let seen = pull(
            &client,
            r#"{"batch":5,"expires":2000000000,"no_wait":true}"#,
            Duration::from_millis(1200),
        )
        .await;
        publish.await.expect("publisher");
        assert_eq!(seen, ["msg late", "404 No Messages"], "{kind:?}");
    }
}

/// nats.py `test_ordered_consumer_messages_server_restart`: a stopping server answers
/// waiting pulls `409 Server Shutdown` with what they still wanted, so the client pulls
/// again once reconnected instead of waiting for an expiry the old server never sends.
#[tokio::test]
async fn a_stopping_server_releases_waiting_pulls_with_409_server_shutdown() {
    let mut seen = Vec::new();
    for kind in BOTH {
        let (mut server, client) = setup(kind).await;
        let inbox = client.new_inbox();
        let mut sub = client.subscribe(inbox.clone()).await.expect("sub");
        client
            .publish_with_reply(
                "$JS.API.CONSUMER.MSG.NEXT.S.C",
                inbox,
                r#"{"batch":10,"max_bytes":4096,"expires":60000000000}"#.into(),
            )
            .await
            .expect("pull");
        let js = async_nats::jetstream::new(client.clone());
        rill_tests::check_for(Duration::from_secs(10), || {
            let js = js.clone();
            async move {
                let mut c: consumer::PullConsumer = js
                    .get_consumer_from_stream("C", "S")
                    .await
                    .expect("consumer");
                c.info().await.is_ok_and(|i| i.num_waiting == 1)
            }
        })
        .await;
        server.stop().await;
        let msg = tokio::time::timeout(Duration::from_secs(10), sub.next())
            .await
            .unwrap_or_else(|_| panic!("{kind:?}: no status before the connection closed"))
            .expect("a message");
        let headers = msg.headers.as_ref().expect("status headers");
        seen.push((
            msg.status.map(u16::from),
            msg.description.clone(),
            headers.get("Nats-Pending-Messages").map(|v| v.to_string()),
            headers.get("Nats-Pending-Bytes").map(|v| v.to_string()),
        ));
    }
    assert_eq!(seen[0], seen[1], "rill vs nats-server");
    assert_eq!(seen[0].0, Some(409));
    assert_eq!(seen[0].1.as_deref(), Some("Server Shutdown"));
}
