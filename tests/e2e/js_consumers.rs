//! JetStream pull consumers through async-nats: the CONSUMER.* API, deliver and ack
//! policies, every ack kind, redelivery, backoff, max_deliver with advisories and the
//! dead-letter subject, max_ack_pending, pull status messages, pause and reset, work
//! queues, and a durable consumer that resumes after a restart.

use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use async_nats::jetstream::{self, AckKind, stream};
use futures::StreamExt;
use rill_tests::{TestServer, sync};

const WAIT: Duration = Duration::from_secs(5);

async fn setup(server: &TestServer, retention: stream::RetentionPolicy) -> jetstream::Context {
    let js = server.jetstream().await;
    js.create_stream(stream::Config {
        name: "S".into(),
        subjects: vec!["s.>".into()],
        retention,
        ..Default::default()
    })
    .await
    .expect("create stream");
    js
}

async fn publish(js: &jetstream::Context, n: usize) {
    for i in 1..=n {
        js.publish(format!("s.{}", i % 3), format!("m{i}").into())
            .await
            .expect("publish")
            .await
            .expect("ack");
    }
}

async fn durable(js: &jetstream::Context, cfg: pull::Config) -> PullConsumer {
    js.get_stream("S")
        .await
        .expect("stream")
        .create_consumer(cfg)
        .await
        .expect("create consumer")
}

fn explicit(name: &str) -> pull::Config {
    pull::Config {
        durable_name: Some(name.into()),
        ack_policy: AckPolicy::Explicit,
        ..Default::default()
    }
}

/// Fetches up to `n` messages without waiting (404 ends the batch).
async fn fetch(c: &PullConsumer, n: usize) -> Vec<jetstream::Message> {
    let mut batch = c.fetch().max_messages(n).messages().await.expect("fetch");
    let mut out = Vec::new();
    while let Some(m) = tokio::time::timeout(WAIT, batch.next())
        .await
        .expect("in time")
    {
        out.push(m.expect("message"));
    }
    out
}

/// Waits up to `expires` for `n` messages.
async fn batch(c: &PullConsumer, n: usize, expires: Duration) -> Vec<jetstream::Message> {
    let mut b = c
        .batch()
        .max_messages(n)
        .expires(expires)
        .messages()
        .await
        .expect("batch");
    let mut out = Vec::new();
    while let Some(m) = tokio::time::timeout(expires + WAIT, b.next())
        .await
        .expect("in time")
    {
        match m {
            Ok(m) => out.push(m),
            Err(_) => break,
        }
    }
    out
}

fn payloads(msgs: &[jetstream::Message]) -> Vec<String> {
    msgs.iter()
        .map(|m| String::from_utf8_lossy(&m.payload).into_owned())
        .collect()
}

#[tokio::test]
async fn pull_fetch_ack_and_info() {
    let server = TestServer::start().await;
    let js = setup(&server, stream::RetentionPolicy::Limits).await;
    publish(&js, 10).await;
    let mut c = durable(&js, explicit("C")).await;
    let msgs = fetch(&c, 4).await;
    assert_eq!(payloads(&msgs), ["m1", "m2", "m3", "m4"]);
    let info = msgs[0].info().expect("info");
    assert_eq!(
        (info.stream_sequence, info.consumer_sequence, info.delivered),
        (1, 1, 1)
    );
    assert_eq!(info.pending, 9);
    for m in &msgs {
        m.ack().await.expect("ack");
    }
    msgs[0]
        .double_ack()
        .await
        .expect("double ack of an acked message is answered");
    let info = c.info().await.expect("info").clone();
    assert_eq!(info.delivered.stream_sequence, 4);
    assert_eq!(info.ack_floor.stream_sequence, 4);
    assert_eq!(info.num_ack_pending, 0);
    assert_eq!(info.num_pending, 6);
    let stream = js.get_stream("S").await.expect("stream");
    let names: Vec<String> = stream
        .consumer_names()
        .map(|n| n.expect("name"))
        .collect()
        .await;
    assert_eq!(names, ["C"]);
    let list: Vec<_> = stream.consumers().collect().await;
    assert_eq!(list.len(), 1);
    stream.delete_consumer("C").await.expect("delete");
    assert!(stream.consumer_info("C").await.is_err());
}

#[tokio::test]
async fn deliver_policies() {
    let server = TestServer::start().await;
    let js = setup(&server, stream::RetentionPolicy::Limits).await;
    publish(&js, 5).await;
    let t3 = {
        let s = js.get_stream("S").await.expect("stream");
        s.get_raw_message(3).await.expect("msg 3").time
    };
    let cases: Vec<(&str, DeliverPolicy, Vec<&str>)> = vec![
        (
            "all",
            DeliverPolicy::All,
            vec!["m1", "m2", "m3", "m4", "m5"],
        ),
        ("last", DeliverPolicy::Last, vec!["m5"]),
        ("new", DeliverPolicy::New, vec![]),
        (
            "seq",
            DeliverPolicy::ByStartSequence { start_sequence: 4 },
            vec!["m4", "m5"],
        ),
        (
            "time",
            DeliverPolicy::ByStartTime { start_time: t3 },
            vec!["m3", "m4", "m5"],
        ),
        ("lps", DeliverPolicy::LastPerSubject, vec!["m3", "m4", "m5"]),
    ];
    for (name, policy, want) in cases {
        let c = durable(
            &js,
            pull::Config {
                deliver_policy: policy,
                // Not `filter_subject`: async-nats would put the wildcard into the create
                // subject, which rill's core currently refuses (see the report).
                filter_subjects: vec!["s.>".into()],
                ..explicit(name)
            },
        )
        .await;
        assert_eq!(payloads(&fetch(&c, 10).await), want, "{name}");
    }
    let c = durable(
        &js,
        pull::Config {
            filter_subjects: vec!["s.1".into(), "s.2".into()],
            ..explicit("filtered")
        },
    )
    .await;
    assert_eq!(payloads(&fetch(&c, 10).await), ["m1", "m2", "m4", "m5"]);
}

#[tokio::test]
async fn ack_policies_none_and_all() {
    let server = TestServer::start().await;
    let js = setup(&server, stream::RetentionPolicy::Limits).await;
    publish(&js, 4).await;
    let mut none = durable(
        &js,
        pull::Config {
            ack_policy: AckPolicy::None,
            ..explicit("none")
        },
    )
    .await;
    assert_eq!(fetch(&none, 10).await.len(), 4);
    let info = none.info().await.expect("info").clone();
    assert_eq!(info.num_ack_pending, 0);
    assert_eq!(info.ack_floor.stream_sequence, 4);
    let mut all = durable(
        &js,
        pull::Config {
            ack_policy: AckPolicy::All,
            ..explicit("all")
        },
    )
    .await;
    let msgs = fetch(&all, 10).await;
    msgs[2].double_ack().await.expect("ack 3");
    let info = all.info().await.expect("info").clone();
    assert_eq!(info.num_ack_pending, 1);
    assert_eq!(info.ack_floor.stream_sequence, 3);
}

#[tokio::test]
async fn nak_progress_term_and_redelivery_in_order() {
    let server = TestServer::start().await;
    let js = setup(&server, stream::RetentionPolicy::Limits).await;
    publish(&js, 4).await;
    let client = server.client().await;
    let mut adv = client
        .subscribe("$JS.EVENT.ADVISORY.CONSUMER.*.S.C")
        .await
        .expect("sub");
    sync(&client).await;
    let mut c = durable(
        &js,
        pull::Config {
            ack_wait: Duration::from_millis(800),
            ..explicit("C")
        },
    )
    .await;
    let msgs = fetch(&c, 4).await;
    msgs[0].ack_with(AckKind::Nak(None)).await.expect("nak");
    msgs[1].ack_with(AckKind::Term).await.expect("term");
    msgs[2].ack_with(AckKind::Progress).await.expect("wpi");
    msgs[3].double_ack().await.expect("ack");
    let mut kinds = Vec::new();
    while kinds.len() < 2 {
        let m = tokio::time::timeout(WAIT, adv.next())
            .await
            .expect("advisory")
            .expect("open");
        if !m.subject.contains(".CREATED.") {
            kinds.push(m.subject.to_string());
        }
    }
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "$JS.EVENT.ADVISORY.CONSUMER.MSG_NAKED.S.C",
            "$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.S.C"
        ]
    );
    let again = fetch(&c, 4).await;
    assert_eq!(
        payloads(&again),
        ["m1"],
        "the nak'd message comes straight back"
    );
    assert_eq!(again[0].info().expect("info").delivered, 2);
    // m3 was in progress and m1 is unacked again: once both ack waits passed, they
    // come back in stream order.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let later = fetch(&c, 4).await;
    assert_eq!(payloads(&later), ["m1", "m3"]);
    for m in &later {
        m.double_ack().await.expect("ack");
    }
    let info = c.info().await.expect("info").clone();
    assert_eq!(info.num_ack_pending, 0);
    assert_eq!(info.ack_floor.stream_sequence, 4);
}

#[tokio::test]
async fn nak_with_delay_and_backoff() {
    let server = TestServer::start().await;
    let js = setup(&server, stream::RetentionPolicy::Limits).await;
    publish(&js, 1).await;
    let c = durable(
        &js,
        pull::Config {
            backoff: vec![Duration::from_millis(300), Duration::from_millis(900)],
            max_deliver: 4,
            ..explicit("C")
        },
    )
    .await;
    let t0 = tokio::time::Instant::now();
    let first = batch(&c, 1, Duration::from_secs(2)).await;
    assert_eq!(first.len(), 1);
    let second = batch(&c, 1, Duration::from_secs(3)).await;
    assert_eq!(second[0].info().expect("info").delivered, 2);
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(280),
        "first backoff {waited:?}"
    );
    second[0]
        .ack_with(AckKind::Nak(Some(Duration::from_millis(500))))
        .await
        .expect("nak");
    let t1 = tokio::time::Instant::now();
    let third = batch(&c, 1, Duration::from_secs(3)).await;
    assert_eq!(third[0].info().expect("info").delivered, 3);
    assert!(
        t1.elapsed() >= Duration::from_millis(450),
        "nak delay {:?}",
        t1.elapsed()
    );
}

#[tokio::test]
async fn max_deliver_advisory_and_dead_letter_stream() {
    let server = TestServer::start().await;
    let js = setup(&server, stream::RetentionPolicy::WorkQueue).await;
    let dlq = js
        .create_stream(stream::Config {
            name: "DLQ".into(),
            subjects: vec!["dlq.>".into()],
            ..Default::default()
        })
        .await
        .expect("dlq stream");
    let client = server.client().await;
    let mut adv = client
        .subscribe("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.>")
        .await
        .expect("sub");
    sync(&client).await;
    let mut hdrs = async_nats::HeaderMap::new();
    hdrs.insert("Order-Id", "42");
    js.publish_with_headers("s.poison", hdrs, "bad".into())
        .await
        .expect("pub")
        .await
        .expect("ack");
    let c = durable(
        &js,
        pull::Config {
            ack_wait: Duration::from_millis(300),
            max_deliver: 2,
            metadata: [(
                "rill.dead_letter_subject".to_owned(),
                "dlq.orders".to_owned(),
            )]
            .into(),
            ..explicit("W")
        },
    )
    .await;
    let got = batch(&c, 3, Duration::from_secs(2)).await;
    assert_eq!(got.len(), 2, "delivered max_deliver times");
    let a = tokio::time::timeout(WAIT, adv.next())
        .await
        .expect("advisory")
        .expect("open");
    let v: serde_json::Value = serde_json::from_slice(&a.payload).expect("json");
    assert_eq!(v["type"], "io.nats.jetstream.advisory.v1.max_deliver");
    assert_eq!(v["stream_seq"], 1);
    assert_eq!(v["deliveries"], 2);
    rill_tests::check_for(WAIT, || {
        let mut dlq = dlq.clone();
        async move {
            dlq.info()
                .await
                .map(|i| i.state.messages == 1)
                .unwrap_or(false)
        }
    })
    .await;
    let dead = dlq.get_raw_message(1).await.expect("dead letter");
    assert_eq!(&dead.payload[..], b"bad");
    let h = dead.headers;
    assert_eq!(h.get("Order-Id").map(|v| v.as_str()), Some("42"));
    assert_eq!(
        h.get("Rill-Dead-Letter-Reason").map(|v| v.as_str()),
        Some("max_deliveries")
    );
    assert_eq!(h.get("Nats-Subject").map(|v| v.as_str()), Some("s.poison"));
    let mut s = js.get_stream("S").await.expect("stream");
    assert_eq!(
        s.info().await.expect("info").state.messages,
        0,
        "removed from the work queue"
    );
}

#[tokio::test]
async fn max_ack_pending_blocks_until_acked() {
    let server = TestServer::start().await;
    let js = setup(&server, stream::RetentionPolicy::Limits).await;
    publish(&js, 5).await;
    let c = durable(
        &js,
        pull::Config {
            max_ack_pending: 2,
            ..explicit("C")
        },
    )
    .await;
    let first = batch(&c, 5, Duration::from_millis(500)).await;
    assert_eq!(payloads(&first), ["m1", "m2"]);
    first[0].double_ack().await.expect("ack");
    let next = batch(&c, 5, Duration::from_millis(500)).await;
    assert_eq!(payloads(&next), ["m3"]);
}

#[tokio::test]
async fn workqueue_removes_acked_messages() {
    let server = TestServer::start().await;
    let js = setup(&server, stream::RetentionPolicy::WorkQueue).await;
    publish(&js, 3).await;
    let c = durable(&js, explicit("W")).await;
    for m in fetch(&c, 3).await {
        m.double_ack().await.expect("ack");
    }
    let mut s = js.get_stream("S").await.expect("stream");
    rill_tests::check_for(WAIT, || {
        let mut s = s.clone();
        async move {
            s.info()
                .await
                .map(|i| i.state.messages == 0)
                .unwrap_or(false)
        }
    })
    .await;
    assert_eq!(s.info().await.expect("info").state.first_sequence, 4);
}

#[tokio::test]
async fn pause_and_reset() {
    let server = TestServer::start().await;
    let js = setup(&server, stream::RetentionPolicy::Limits).await;
    publish(&js, 3).await;
    let c = durable(&js, explicit("C")).await;
    let stream = js.get_stream("S").await.expect("stream");
    let later = async_nats::datetime::add_std_duration(
        async_nats::datetime::now(),
        Duration::from_secs(3600),
    )
    .expect("time");
    let r = stream.pause_consumer("C", later).await.expect("pause");
    assert!(r.paused);
    assert!(
        fetch(&c, 3).await.is_empty(),
        "paused consumers deliver nothing"
    );
    let r = stream.resume_consumer("C").await.expect("resume");
    assert!(!r.paused);
    let msgs = fetch(&c, 3).await;
    assert_eq!(msgs.len(), 3);
    msgs[0].double_ack().await.expect("ack");
    let r = stream.reset_consumer("C", None).await.expect("reset");
    assert_eq!(r.reset_seq, 2);
    assert_eq!(payloads(&fetch(&c, 3).await), ["m2", "m3"]);
    let r = stream
        .reset_consumer("C", Some(1))
        .await
        .expect("reset to 1");
    assert_eq!(r.reset_seq, 1);
    assert_eq!(payloads(&fetch(&c, 3).await), ["m1", "m2", "m3"]);
}

#[tokio::test]
async fn durable_resumes_after_restart_without_redelivering_acked() {
    let mut server = TestServer::start().await;
    {
        let js = setup(&server, stream::RetentionPolicy::Limits).await;
        publish(&js, 10).await;
        let c = durable(&js, explicit("D")).await;
        let msgs = fetch(&c, 6).await;
        for m in &msgs[..4] {
            m.double_ack().await.expect("ack");
        }
    }
    server.restart().await;
    let js = server.jetstream().await;
    let stream = js.get_stream("S").await.expect("stream after restart");
    let mut c: PullConsumer = stream.get_consumer("D").await.expect("consumer restored");
    let info = c.info().await.expect("info").clone();
    assert_eq!(info.ack_floor.stream_sequence, 4);
    assert_eq!(info.delivered.stream_sequence, 6);
    assert_eq!(info.num_ack_pending, 2);
    assert_eq!(info.num_pending, 4);
    let rest = fetch(&c, 10).await;
    assert_eq!(payloads(&rest), ["m7", "m8", "m9", "m10"]);
    for m in &rest {
        let seq = m.info().expect("info").stream_sequence;
        assert!(seq > 4, "acked message {seq} redelivered");
        m.double_ack().await.expect("ack");
    }
}

#[tokio::test]
async fn ephemeral_consumer_goes_away_when_inactive() {
    let server = TestServer::start().await;
    let js = setup(&server, stream::RetentionPolicy::Limits).await;
    let stream = js.get_stream("S").await.expect("stream");
    let c: PullConsumer = stream
        .create_consumer(pull::Config {
            inactive_threshold: Duration::from_millis(300),
            ..Default::default()
        })
        .await
        .expect("ephemeral");
    let name = c.cached_info().name.clone();
    assert_eq!(name.len(), 8);
    rill_tests::check_for(WAIT, || {
        let stream = stream.clone();
        let name = name.clone();
        async move { stream.consumer_info(&name).await.is_err() }
    })
    .await;
}

#[tokio::test]
async fn acks_sent_as_requests_survive_a_crash() {
    let mut server = TestServer::start().await;
    {
        let js = setup(&server, stream::RetentionPolicy::Limits).await;
        publish(&js, 6).await;
        let c = durable(&js, explicit("D")).await;
        for m in fetch(&c, 3).await {
            m.double_ack().await.expect("ack recorded before the reply");
        }
    }
    server.kill();
    server.restart().await;
    let js = server.jetstream().await;
    let stream = js.get_stream("S").await.expect("stream after crash");
    let mut c: PullConsumer = stream.get_consumer("D").await.expect("consumer restored");
    assert_eq!(c.info().await.expect("info").ack_floor.stream_sequence, 3);
    assert_eq!(payloads(&fetch(&c, 10).await), ["m4", "m5", "m6"]);
}

#[tokio::test]
async fn update_changes_filter_and_limits() {
    let server = TestServer::start().await;
    let js = setup(&server, stream::RetentionPolicy::Limits).await;
    publish(&js, 6).await;
    let c = durable(&js, explicit("U")).await;
    assert_eq!(payloads(&fetch(&c, 1).await), ["m1"]);
    let stream = js.get_stream("S").await.expect("stream");
    let c: PullConsumer = stream
        .update_consumer(pull::Config {
            filter_subjects: vec!["s.0".into()],
            max_ack_pending: 50,
            ..explicit("U")
        })
        .await
        .expect("update");
    assert_eq!(c.cached_info().config.max_ack_pending, 50);
    assert_eq!(payloads(&fetch(&c, 10).await), ["m3", "m6"]);
}

#[tokio::test]
async fn interest_stream_keeps_messages_until_every_consumer_acked() {
    let server = TestServer::start().await;
    let js = setup(&server, stream::RetentionPolicy::Interest).await;
    let a = durable(&js, explicit("A")).await;
    let b = durable(&js, explicit("B")).await;
    publish(&js, 3).await;
    let mut s = js.get_stream("S").await.expect("stream");
    for m in fetch(&a, 3).await {
        m.double_ack().await.expect("ack");
    }
    assert_eq!(
        s.info().await.expect("info").state.messages,
        3,
        "B still needs them"
    );
    for m in fetch(&b, 3).await {
        m.double_ack().await.expect("ack");
    }
    rill_tests::check_for(WAIT, || {
        let mut s = s.clone();
        async move {
            s.info()
                .await
                .map(|i| i.state.messages == 0)
                .unwrap_or(false)
        }
    })
    .await;
}
