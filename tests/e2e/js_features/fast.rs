//! Fast batch publish (`allow_batched`, ADR-50 fast ingest), rill beside nats-server:
//! the flow acks, gaps, errors and PubAcks a publisher gets on its batch's reply
//! subjects (`<prefix>.<id>.<flow>.<gap>.<seq>.<op>.$FI`), what is stored, and the
//! server's limit on open batches.

use futures::{FutureExt, StreamExt};
use rill_tests::{ServerKind, ServerOpts, TestServer};
use serde_json::{Value, json};

use super::{BOTH, api, stored};

/// The reply subjects' prefix the transcript listens on.
const PREFIX: &str = "FBR";

/// One message of a fast batch: its batch sequence, operation (0 start, 1 append,
/// 2 commit, 3 commit without storing, 4 ping) and headers.
struct Msg<'a> {
    seq: u64,
    op: u8,
    hdrs: &'a [(&'a str, &'a str)],
}

const fn m(seq: u64, op: u8) -> Msg<'static> {
    Msg { seq, op, hdrs: &[] }
}

/// A publisher of fast batch messages and the transcript of what comes back.
struct Fast {
    client: async_nats::Client,
    replies: async_nats::Subscriber,
}

impl Fast {
    async fn new(client: async_nats::Client) -> Self {
        let replies = client
            .subscribe(format!("{PREFIX}.>"))
            .await
            .expect("subscribe");
        Self { client, replies }
    }

    /// Publishes `msgs` of batch `id` (`flow` and `gap` as the reply subject spells
    /// them) on `subject`, then returns every reply they got, as `[reply tail, body]`.
    async fn send(
        &mut self,
        subject: &str,
        id: &str,
        flow: &str,
        gap: &str,
        msgs: &[Msg<'_>],
    ) -> Value {
        for msg in msgs {
            let reply = format!("{PREFIX}.{id}.{flow}.{gap}.{}.{}.$FI", msg.seq, msg.op);
            self.raw(subject, &reply, msg.hdrs).await;
        }
        self.settle(subject).await
    }

    async fn raw(&self, subject: &str, reply: &str, hdrs: &[(&str, &str)]) {
        let mut headers = async_nats::HeaderMap::new();
        for (k, v) in hdrs {
            headers.append(*k, *v);
        }
        self.client
            .publish_with_reply_and_headers(
                subject.to_owned(),
                reply.to_owned(),
                headers,
                "x".into(),
            )
            .await
            .expect("publish");
    }

    /// The replies so far: a plain publish on the same stream is answered after every
    /// message sent before it, so once its PubAck is back the earlier replies are in.
    async fn settle(&mut self, subject: &str) -> Value {
        let sync = format!("{}.sync", subject.split('.').next().unwrap_or(subject));
        self.client
            .request(sync, "".into())
            .await
            .expect("sync publish");
        let mut out = Vec::new();
        while let Some(Some(msg)) = self.replies.next().now_or_never() {
            let tail = msg
                .subject
                .trim_start_matches(PREFIX)
                .trim_start_matches('.');
            let body: Value = serde_json::from_slice(&msg.payload).unwrap_or(Value::Null);
            out.push(json!([tail, body]));
        }
        Value::Array(out)
    }
}

async fn create_all(client: &async_nats::Client) {
    for cfg in [
        json!({"name":"NB","subjects":["nb.>"]}),
        json!({"name":"FB","subjects":["fb.>"],"allow_batched":true}),
        json!({"name":"FX","subjects":["fx.>"],"allow_batched":true}),
        json!({"name":"FD","subjects":["fd.>"],"allow_batched":true,"max_msgs":4,"discard":"new"}),
    ] {
        let name = cfg["name"].as_str().unwrap_or_default().to_owned();
        let r = api(client, &format!("STREAM.CREATE.{name}"), cfg).await;
        assert!(r.get("error").is_none(), "{r}");
    }
}

async fn story(kind: ServerKind) -> Value {
    let server = TestServer::start_with(ServerOpts::kind(kind)).await;
    let client = server.client().await;
    create_all(&client).await;
    let mut f = Fast::new(client.clone()).await;
    let mut out = serde_json::Map::new();
    let mut note = |k: &str, v: Value| {
        out.insert(format!("{:02} {k}", out.len()), v);
    };
    note(
        "not enabled",
        f.send("nb.a", "n", "10", "ok", &[m(1, 0)]).await,
    );
    let appends: Vec<Msg> = (2..=12).map(|s| m(s, 1)).collect();
    note(
        "start flow 5",
        f.send("fb.a", "b1", "5", "fail", &[m(1, 0)]).await,
    );
    note(
        "appends 2-12",
        f.send("fb.a", "b1", "5", "fail", &appends).await,
    );
    note(
        "commit 13",
        f.send("fb.a", "b1", "5", "fail", &[m(13, 2)]).await,
    );
    note(
        "eob",
        f.send("fb.b", "b2", "10", "ok", &[m(1, 0), m(2, 1), m(3, 3)])
            .await,
    );
    let gapped = [m(1, 0), m(2, 1), m(5, 1), m(6, 1), m(7, 2)];
    note("gap ok", f.send("fb.c", "b3", "10", "ok", &gapped).await);
    let gapped = [m(1, 0), m(2, 1), m(4, 1), m(5, 1)];
    note(
        "gap fail",
        f.send("fb.d", "b4", "10", "fail", &gapped).await,
    );
    let back = [m(1, 0), m(2, 1), m(2, 1), m(3, 2)];
    note("repeat ends", f.send("fb.d", "b5", "10", "ok", &back).await);
    let restart = [m(1, 0), m(2, 1), m(1, 0), m(2, 1)];
    note(
        "restart ends",
        f.send("fb.d", "b6", "10", "ok", &restart).await,
    );
    note(
        "single commit",
        f.send("fb.e", "b7", "10", "ok", &[m(1, 2)]).await,
    );
    note(
        "flow 0",
        f.send("fb.e", "f0", "0", "ok", &[m(1, 0), m(2, 2)]).await,
    );
    note(
        "flow 600",
        f.send("fb.e", "f6", "600", "ok", &[m(1, 0), m(2, 2)]).await,
    );
    for (name, reply) in [
        ("bad gap", "FBR.p1.10.maybe.1.0.$FI"),
        ("bad op", "FBR.p2.10.ok.1.9.$FI"),
        ("seq 0", "FBR.p3.10.ok.0.0.$FI"),
        ("start at 2", "FBR.p4.10.ok.2.0.$FI"),
        ("append at 1", "FBR.p5.10.ok.1.1.$FI"),
        ("eob at 1", "FBR.p6.10.ok.1.3.$FI"),
        ("unknown", "FBR.p7.10.ok.3.1.$FI"),
        ("unknown ping", "FBR.p8.10.ok.3.4.$FI"),
        ("short", "FBR.10.ok.1.0.$FI"),
    ] {
        f.raw("fb.e", reply, &[]).await;
        note(name, f.settle("fb.e").await);
    }
    let long = "x".repeat(65);
    note("id 65", f.send("fb.e", &long, "10", "ok", &[m(1, 0)]).await);
    let pinged: Vec<Msg> = (1..=25).map(|s| m(s, u8::from(s > 1))).collect();
    note(
        "ping batch",
        f.send("fb.f", "pg", "10", "ok", &pinged).await,
    );
    note(
        "ping at last",
        f.send("fb.f", "pg", "10", "ok", &[m(25, 4)]).await,
    );
    note(
        "ping ahead",
        f.send("fb.f", "pg", "10", "ok", &[m(30, 4)]).await,
    );
    note(
        "commit behind",
        f.send("fb.f", "pg", "10", "ok", &[m(26, 2)]).await,
    );
    let ahead = [m(1, 0), m(2, 1), m(5, 4)];
    note(
        "ping ahead fail",
        f.send("fb.f", "pf", "10", "fail", &ahead).await,
    );
    errors(&mut f, &mut note).await;
    note("slow start", slow_start(&mut f).await);
    note("server limit", limit(&mut f).await);
    let kept: Vec<Value> = stored(&client, "FB")
        .await
        .into_iter()
        .filter(|m| m["subject"] == "fb.b")
        .collect();
    note("eob stored", json!(kept));
    for s in ["FB", "FD"] {
        let info = api(&client, &format!("STREAM.INFO.{s}"), json!({})).await;
        note(&format!("{s} messages"), info["state"]["messages"].clone());
    }
    Value::Object(out)
}

/// Messages the stream refuses, in both gap modes.
async fn errors(f: &mut Fast, note: &mut impl FnMut(&str, Value)) {
    let bad_seq = [("Nats-Expected-Last-Sequence", "1")];
    let bad_id = [("Nats-Expected-Last-Msg-Id", "nope")];
    let rollup = [("Nats-Rollup", "sub")];
    let dup = [("Nats-Msg-Id", "same")];
    let with = |seq, op, hdrs| Msg { seq, op, hdrs };
    let msgs = [m(1, 0), with(2, 1, &bad_seq[..]), m(3, 2)];
    note("refused ok", f.send("fb.g", "e1", "10", "ok", &msgs).await);
    note(
        "refused fail",
        f.send("fb.g", "e2", "10", "fail", &msgs).await,
    );
    let first = [with(1, 0, &bad_seq[..]), m(2, 2)];
    note(
        "first refused fail",
        f.send("fb.g", "e3", "10", "fail", &first).await,
    );
    let msgs = [m(1, 0), with(2, 1, &bad_id[..]), m(3, 2)];
    note(
        "last msg id",
        f.send("fb.g", "e4", "10", "fail", &msgs).await,
    );
    let msgs = [m(1, 0), with(2, 1, &rollup[..]), m(3, 2)];
    note("rollup", f.send("fb.g", "e5", "10", "ok", &msgs).await);
    let msgs = [with(1, 0, &dup[..]), with(2, 1, &dup[..]), m(3, 2)];
    note(
        "duplicate id",
        f.send("fb.g", "e6", "10", "ok", &msgs).await,
    );
    let msgs: Vec<Msg> = (1..=6)
        .map(|s| m(s, if s == 6 { 2 } else { u8::from(s > 1) }))
        .collect();
    note("discard new", f.send("fd.a", "e7", "10", "ok", &msgs).await);
}

/// A batch started while another is open on the stream starts at flow 1 and doubles it
/// at each ack; one on another stream does not.
async fn slow_start(f: &mut Fast) -> Value {
    let mut out = vec![f.send("fb.h", "s1", "10", "ok", &[m(1, 0)]).await];
    out.push(f.send("fx.h", "x1", "10", "ok", &[m(1, 0)]).await);
    let msgs: Vec<Msg> = (1..=30).map(|s| m(s, u8::from(s > 1))).collect();
    out.push(f.send("fb.h", "s2", "10", "ok", &msgs).await);
    for (s, id) in [("fb.h", "s1"), ("fb.h", "s2"), ("fx.h", "x1")] {
        let seq = if id == "s2" { 31 } else { 2 };
        out.push(f.send(s, id, "10", "ok", &[m(seq, 2)]).await);
    }
    json!(out)
}

/// 1000 open fast batches on a stream; the next one is refused until one ends, while
/// another stream still takes one. The flow acks shrink as the stream's batches share
/// its flow.
async fn limit(f: &mut Fast) -> Value {
    let mut replies = Vec::new();
    for chunk in 0..20 {
        for i in chunk * 50..(chunk + 1) * 50 {
            f.raw("fb.l", &format!("{PREFIX}.L{i}.100.ok.1.0.$FI"), &[])
                .await;
        }
        replies.push(f.settle("fb.l").await);
    }
    let over = f.send("fb.l", "over", "10", "ok", &[m(1, 0)]).await;
    let other = f.send("fx.l", "other", "10", "ok", &[m(1, 0)]).await;
    let ended = f.send("fb.l", "L0", "10", "ok", &[m(2, 2)]).await;
    let again = f.send("fb.l", "over", "10", "ok", &[m(1, 0)]).await;
    json!({"first 50 starts": replies[0], "last 50 starts": replies[19], "1001st": over,
        "other stream": other, "one ends": ended, "then": again})
}

#[tokio::test]
async fn fast_batches_answer_and_store_like_nats_server() {
    let mut seen = Vec::new();
    for kind in BOTH {
        seen.push(story(kind).await);
    }
    insta::assert_json_snapshot!(seen[0]);
    for (step, rill) in seen[0].as_object().into_iter().flatten() {
        assert_eq!(rill, &seen[1][step], "{step}");
    }
    assert_eq!(seen[0], seen[1]);
}

/// What a publisher sees of a batch left 10 s without a message: nothing is sent when
/// it goes, and its next message is answered as unknown, for fast and atomic batches
/// alike (the atomic one with its `incomplete` error).
async fn timeout_story(kind: ServerKind) -> Value {
    let server = TestServer::start_with(ServerOpts::kind(kind)).await;
    let client = server.client().await;
    let cfg = json!({"name":"FB","subjects":["fb.>"],"allow_batched":true,"allow_atomic":true});
    api(&client, "STREAM.CREATE.FB", cfg).await;
    let mut f = Fast::new(client.clone()).await;
    let started = f.send("fb.a", "t", "10", "ok", &[m(1, 0), m(2, 1)]).await;
    let mut h = async_nats::HeaderMap::new();
    h.append("Nats-Batch-Id", "atom");
    h.append("Nats-Batch-Sequence", "1");
    let staged = client
        .request_with_headers("fb.b", h, "x".into())
        .await
        .expect("stage");
    // The servers' batch timeout: nothing to wait on but the clock.
    tokio::time::sleep(std::time::Duration::from_millis(10_600)).await;
    let in_between = f.settle("fb.a").await;
    let after = f.send("fb.a", "t", "10", "ok", &[m(3, 2)]).await;
    let mut h = async_nats::HeaderMap::new();
    h.append("Nats-Batch-Id", "atom");
    h.append("Nats-Batch-Sequence", "2");
    h.append("Nats-Batch-Commit", "1");
    let commit = client
        .request_with_headers("fb.b", h, "x".into())
        .await
        .expect("commit");
    let commit: Value = serde_json::from_slice(&commit.payload).expect("json");
    let info = api(&client, "STREAM.INFO.FB", json!({})).await;
    json!({
        "fast started": started,
        "atomic staged": String::from_utf8_lossy(&staged.payload),
        "sent while timing out": in_between,
        "fast after": after,
        "atomic after": commit,
        "messages": info["state"]["messages"],
    })
}

#[tokio::test]
async fn batches_left_10s_without_a_message_are_dropped_like_nats_server() {
    let (rill, nats) = tokio::join!(
        timeout_story(ServerKind::Rill),
        timeout_story(ServerKind::Nats)
    );
    insta::assert_json_snapshot!(rill);
    assert_eq!(rill, nats);
}

/// A fast batch of 25 with flow 10 on a stream of a server that syncs always.
async fn synced_batch(kind: ServerKind, env: Vec<(String, String)>) -> Value {
    let server = TestServer::start_with(ServerOpts {
        kind,
        config: Some("jetstream { sync_interval: always }\n".into()),
        env,
        ..ServerOpts::default()
    })
    .await;
    let client = server.client().await;
    create_all(&client).await;
    let mut f = Fast::new(client).await;
    let msgs: Vec<Msg> = (1..=25)
        .map(|s| {
            m(
                s,
                if s == 1 {
                    0
                } else if s == 25 {
                    2
                } else {
                    1
                },
            )
        })
        .collect();
    f.send("fb.a", "s1", "10", "ok", &msgs).await
}

/// With `sync_interval: always` a fast batch gets nats-server's replies (its flow acks
/// leave after the fsyncs of the messages they acknowledge: strace of nats-server
/// 2.15.1 in `stream::fast`'s doc), and rill sends none before the sync: with every
/// sync failing (debug fault `stream.sync`) the acks at 10 and 20 come as errors and
/// the batch's PubAck too (issue 22).
#[tokio::test]
async fn flow_acks_wait_for_the_sync_when_the_stream_syncs_always() {
    let nats = synced_batch(ServerKind::Nats, Vec::new()).await;
    let rill = synced_batch(ServerKind::Rill, Vec::new()).await;
    assert_eq!(
        nats[1],
        json!(["s1.10.ok.10.1.$FI", {"type":"ack","seq":10,"msgs":10}])
    );
    assert_eq!(rill, nats, "rill (left) and nats-server (right) differ");

    let fault = vec![("RILL_FAULTS".to_string(), "stream.sync=FB".to_string())];
    let failing = synced_batch(ServerKind::Rill, fault).await;
    let replies = failing.as_array().cloned().unwrap_or_default();
    let kinds: Vec<(Value, Value)> = replies
        .iter()
        .map(|r| (r[1]["type"].clone(), r[1]["seq"].clone()))
        .collect();
    assert_eq!(
        kinds[..3],
        [
            (json!("ack"), json!(0)),
            (json!("err"), json!(10)),
            (json!("err"), json!(20))
        ],
        "{failing}"
    );
    assert_eq!(replies[3][1]["error"]["code"], json!(503), "{failing}");
}
