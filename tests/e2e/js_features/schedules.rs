//! Message schedules (ADR-51), rill beside nats-server: the PubAck of each schedule
//! publish (errors in nats-server's order), what firings store (headers, bodies,
//! sources, roll-ups, TTLs, one-shot `@at` removal), firing once per period
//! across restarts, and a burst of 5,000 falling due within a second.

use std::time::{Duration, SystemTime};

use rill_protocol::jsapi::Timestamp;
use rill_tests::{ServerKind, ServerOpts, TestServer};
use serde_json::{Value, json};

use super::{BOTH, api, publish, stored, wait_stored};

const STREAM: &str = r#"{"name":"S","subjects":["sched.>","target.>","src.>"],"allow_msg_schedules":true,"allow_msg_ttl":true}"#;

async fn create(client: &async_nats::Client, name: &str, cfg: &str) {
    let cfg: Value = serde_json::from_str(cfg).expect("config");
    let created = api(client, &format!("STREAM.CREATE.{name}"), cfg).await;
    assert!(created.get("error").is_none(), "{created}");
}

/// An RFC 3339 time `secs` from now (negative: in the past), to the second.
fn rfc3339_in(secs: i64) -> String {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let at = (i128::from(now) + i128::from(secs)) * 1_000_000_000;
    Timestamp::from_unix_nanos(at).expect("time").to_string()
}

/// An RFC 3339 time as seconds since the epoch.
fn ts(rfc3339: &str) -> f64 {
    Timestamp::parse(rfc3339).expect("time").unix_nanos() as f64 / 1e9
}

async fn acks_story(kind: ServerKind) -> Value {
    let server = TestServer::start_with(ServerOpts::kind(kind)).await;
    let client = server.client().await;
    create(&client, "S", STREAM).await;
    create(
        &client,
        "N",
        r#"{"name":"N","subjects":["n.>"],"allow_msg_schedules":true}"#,
    )
    .await;
    create(&client, "P", r#"{"name":"P","subjects":["plain.>"]}"#).await;
    let every = ("Nats-Schedule", "@every 1h");
    let target = ("Nats-Schedule-Target", "target.a");
    type Step<'a> = (&'a str, Vec<(&'a str, &'a str)>);
    let steps: Vec<Step> = vec![
        ("sched.a", vec![every]),
        ("sched.a", vec![every, ("Nats-Schedule-Target", "target.>")]),
        ("sched.a", vec![every, ("Nats-Schedule-Target", "sched.a")]),
        ("sched.a", vec![every, ("Nats-Schedule-Target", "other.x")]),
        ("sched.a", vec![("Nats-Schedule", "@every 500ms"), target]),
        ("sched.a", vec![("Nats-Schedule", "@at nope"), target]),
        ("sched.a", vec![("Nats-Schedule", "* * * *"), target]),
        ("sched.a", vec![("Nats-Schedule", "0 0 0 * * 7"), target]),
        ("sched.a", vec![("Nats-Schedule", "0 0 0 L * *"), target]),
        ("sched.a", vec![("Nats-Schedule", "0 0 0 30 2 *"), target]),
        (
            "sched.a",
            vec![("Nats-Schedule", "bad"), ("Nats-Schedule-TTL", "x")],
        ),
        (
            "sched.a",
            vec![
                every,
                ("Nats-Schedule-TTL", "x"),
                ("Nats-Schedule-Target", "zz"),
            ],
        ),
        (
            "sched.a",
            vec![every, target, ("Nats-Schedule-TTL", "500ms")],
        ),
        (
            "sched.a",
            vec![every, target, ("Nats-Schedule-Rollup", "all")],
        ),
        ("sched.a", vec![every, target, ("Nats-Rollup", "all")]),
        (
            "sched.a",
            vec![every, target, ("Nats-Schedule-Source", "src.*")],
        ),
        (
            "sched.a",
            vec![every, target, ("Nats-Schedule-Source", "target.a")],
        ),
        (
            "sched.a",
            vec![every, target, ("Nats-Schedule-Source", "other.x")],
        ),
        (
            "sched.a",
            vec![every, target, ("Nats-Schedule-Time-Zone", "Europe/Berlin")],
        ),
        (
            "sched.a",
            vec![
                ("Nats-Schedule", "0 * * * * *"),
                target,
                ("Nats-Schedule-Time-Zone", "Mars/Base"),
            ],
        ),
        (
            "sched.a",
            vec![every, target, ("Nats-Schedule-Time-Zone", "")],
        ),
        ("sched.a", vec![every, target, ("Nats-Scheduler", "x")]),
        ("target.a", vec![("Nats-Schedule-Next", "purge")]),
        (
            "sched.a",
            vec![every, target, ("Nats-Expected-Stream", "Q")],
        ),
        (
            "n.a",
            vec![
                every,
                ("Nats-Schedule-Target", "n.b"),
                ("Nats-Schedule-TTL", "5s"),
            ],
        ),
        ("plain.a", vec![every, ("Nats-Schedule-Target", "plain.b")]),
        ("plain.a", vec![("Nats-Scheduler", "x")]),
        // Stored: a target alone, an empty pattern, and valid schedules (each one
        // replaces the schedule before it on its subject).
        ("plain.a", vec![("Nats-Schedule-Target", "plain.b")]),
        ("sched.b", vec![("Nats-Schedule", ""), target]),
        (
            "sched.a",
            vec![every, target, ("Nats-Rollup", "sub"), ("X-A", "1")],
        ),
        (
            "sched.a",
            vec![("Nats-Schedule", "@at 2030-01-01T00:00:00+02:00"), target],
        ),
        (
            "sched.a",
            vec![("Nats-Schedule", "@at 2030-01-01T00:00:00.5Z"), target],
        ),
        (
            "sched.c",
            vec![("Nats-Schedule", "0 0 0 ? JAN-MAR WED"), target],
        ),
        (
            "sched.d",
            vec![
                ("Nats-Schedule", "@monthly"),
                target,
                ("Nats-Schedule-Time-Zone", "America/New_York"),
            ],
        ),
        (
            "sched.e",
            vec![
                every,
                target,
                ("Nats-Schedule-TTL", "1m"),
                ("Nats-Schedule-Source", "src.x"),
                ("Nats-Schedule-Rollup", "sub"),
            ],
        ),
    ];
    let mut acks = Vec::new();
    for (subject, hdrs) in &steps {
        acks.push(publish(&client, subject, hdrs, "x").await);
    }
    json!({ "acks": acks, "stored": sorted_headers(stored(&client, "S").await) })
}

/// Header lines sorted (the client's header map does not keep their order).
fn sorted_headers(mut msgs: Vec<Value>) -> Vec<Value> {
    for m in &mut msgs {
        let mut lines: Vec<&str> = m["hdrs"].as_str().unwrap_or_default().lines().collect();
        lines.sort_unstable();
        m["hdrs"] = json!(lines.join("|"));
    }
    msgs
}

#[tokio::test]
async fn schedule_publishes_are_answered_like_nats_server() {
    let mut seen = Vec::new();
    for kind in BOTH {
        seen.push(acks_story(kind).await);
    }
    insta::assert_json_snapshot!(seen[0]);
    assert_eq!(seen[0], seen[1]);
}

/// The last message on `subject` of stream S, or `None`.
async fn last(client: &async_nats::Client, subject: &str) -> Option<Value> {
    let r = api(
        client,
        "STREAM.MSG.GET.S",
        json!({ "last_by_subj": subject }),
    )
    .await;
    r.get("message").cloned()
}

/// When message `seq` of stream S was stored (seconds since the epoch).
async fn time_of(client: &async_nats::Client, seq: u64) -> f64 {
    let r = api(client, "STREAM.MSG.GET.S", json!({ "seq": seq })).await;
    ts(r["message"]["time"].as_str().unwrap_or_default())
}

/// The `Nats-Schedule-Next` of a stored message (as text, from `stored`), checked to
/// lie after the message's own time by at most `period` (plus a second of slack).
fn next_of(m: &Value, stored_at: f64, period: f64) -> String {
    let hdrs = m["hdrs"].as_str().unwrap_or_default();
    let next = hdrs
        .lines()
        .find_map(|l| l.strip_prefix("Nats-Schedule-Next: "))
        .unwrap_or_default()
        .to_owned();
    if next != "purge" {
        let ahead = ts(&next) - stored_at;
        assert!(ahead > 0.0 && ahead <= period + 1.0, "{m} at {stored_at}");
    }
    next
}

async fn firing_story(kind: ServerKind) -> Value {
    let server = TestServer::start_with(ServerOpts::kind(kind)).await;
    let client = server.client().await;
    create(&client, "S", STREAM).await;
    let at = format!("@at {}", rfc3339_in(2));
    let past = format!("@at {}", rfc3339_in(-100));
    let target = |t| ("Nats-Schedule-Target", t);
    let steps = [
        (
            "src.temp",
            vec![("X-Src", "1"), ("Nats-Msg-Id", "m1")],
            "21.5",
        ),
        (
            "sched.every",
            vec![
                ("Nats-Schedule", "@every 1s"),
                target("target.every"),
                ("X-User", "u"),
                ("Nats-TTL", "1h"),
            ],
            "E",
        ),
        (
            "sched.at",
            vec![
                ("Nats-Schedule", &at),
                target("target.at"),
                ("Nats-Schedule-TTL", "5m"),
            ],
            "A",
        ),
        (
            "sched.past",
            vec![("Nats-Schedule", &past), target("target.past")],
            "P",
        ),
        (
            "sched.samp",
            vec![
                ("Nats-Schedule", "@every 1s"),
                target("target.samp"),
                ("Nats-Schedule-Source", "src.temp"),
                ("Nats-Schedule-Rollup", "sub"),
            ],
            "",
        ),
        (
            "sched.empty",
            vec![
                ("Nats-Schedule", "@every 1s"),
                target("target.empty"),
                ("Nats-Schedule-Source", "src.none"),
            ],
            "",
        ),
        (
            "sched.cron",
            vec![
                ("Nats-Schedule", "* * * * * *"),
                target("target.cron"),
                ("Nats-Schedule-Time-Zone", "Asia/Kolkata"),
            ],
            "C",
        ),
    ];
    for (subject, hdrs, body) in &steps {
        let ack = publish(&client, subject, hdrs, body).await;
        assert!(ack.get("error").is_none(), "{subject}: {ack}");
    }
    let msgs = wait_stored(&client, "S", |msgs| {
        let on = |s: &str| msgs.iter().filter(|m| m["subject"] == s).count();
        on("sched.at") == 0
            && on("target.at") == 1
            && on("target.samp") == 1
            && on("target.every") >= 2
    })
    .await;
    let mut firsts = serde_json::Map::new();
    for m in &msgs {
        let subject = m["subject"].as_str().unwrap_or_default();
        if !subject.starts_with("target.") || firsts.contains_key(subject) {
            continue;
        }
        let stored_at = time_of(&client, m["seq"].as_u64().unwrap_or_default()).await;
        let next = next_of(m, stored_at, 1.0);
        let mut m = m.clone();
        m["hdrs"] = json!(
            m["hdrs"]
                .as_str()
                .unwrap_or_default()
                .replace(&next, "<next>")
        );
        m["next_zone"] = json!(next.get(19..).unwrap_or(&next));
        m.as_object_mut().map(|o| o.remove("seq"));
        firsts.insert(subject.to_owned(), m);
    }
    let schedules: Vec<&str> = msgs
        .iter()
        .filter_map(|m| m["subject"].as_str().filter(|s| s.starts_with("sched.")))
        .collect();
    json!({ "firings": sorted_headers(firsts.into_iter().map(|(_, v)| v).collect()), "schedules": schedules })
}

#[tokio::test]
async fn schedules_fire_like_nats_server() {
    let mut seen = Vec::new();
    for kind in BOTH {
        seen.push(firing_story(kind).await);
    }
    insta::assert_json_snapshot!(seen[0]);
    assert_eq!(seen[0], seen[1]);
}

/// Times (seconds since the epoch) of the firings stored on `subject`.
async fn firings(client: &async_nats::Client, subject: &str) -> Vec<f64> {
    let info = api(client, "STREAM.INFO.S", json!({})).await;
    let last = info["state"]["last_seq"].as_u64().unwrap_or(0);
    let mut out = Vec::new();
    for seq in 1..=last {
        let r = api(client, "STREAM.MSG.GET.S", json!({ "seq": seq })).await;
        if r["message"]["subject"] == subject {
            out.push(time_of(client, seq).await);
        }
    }
    out
}

async fn wait_firings(client: &async_nats::Client, subject: &str, n: usize) -> Vec<f64> {
    for _ in 0..500 {
        let seen = firings(client, subject).await;
        if seen.len() >= n {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{subject}: fewer than {n} firings");
}

/// A schedule keeps its period across a restart inside one period (no extra firing),
/// fires once for the periods missed while the server was down, and a pending `@at`
/// fires once after a restart.
#[tokio::test]
async fn schedules_fire_once_per_period_across_restarts() {
    let mut server = TestServer::start_with(ServerOpts::kind(ServerKind::Rill)).await;
    let client = server.client().await;
    create(&client, "S", STREAM).await;
    let every = [
        ("Nats-Schedule", "@every 4s"),
        ("Nats-Schedule-Target", "target.e"),
    ];
    assert!(
        publish(&client, "sched.e", &every, "E")
            .await
            .get("error")
            .is_none()
    );
    let at = format!("@at {}", rfc3339_in(3));
    let once = [
        ("Nats-Schedule", at.as_str()),
        ("Nats-Schedule-Target", "target.at"),
    ];
    assert!(
        publish(&client, "sched.at", &once, "A")
            .await
            .get("error")
            .is_none()
    );
    let first = wait_firings(&client, "target.e", 1).await[0];
    server.restart().await;
    let client = server.client().await;
    let times = wait_firings(&client, "target.e", 2).await;
    assert!(
        times[1] - first >= 3.0,
        "fired again right after the restart: {times:?}"
    );
    assert_eq!(wait_firings(&client, "target.at", 1).await.len(), 1);
    server.stop().await;
    // Down for more than two periods: one firing makes up for them.
    tokio::time::sleep(Duration::from_secs(9)).await;
    server.restart().await;
    let client = server.client().await;
    let after = wait_firings(&client, "target.e", 3).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        firings(&client, "target.e").await.len(),
        after.len(),
        "{after:?}"
    );
    assert!(
        last(&client, "sched.at").await.is_none(),
        "the @at schedule stays removed"
    );
    assert_eq!(firings(&client, "target.at").await.len(), 1);
}

/// Schedules in the burst test, all due within one second.
const BURST: usize = 5000;

/// Publishes [`BURST`] `@at` schedules due `lead` seconds from now and after, spread
/// evenly over one second (schedule `i` on `sched.<i>`, body `i`), each firing into
/// `target.burst`; acks are awaited in windows.
async fn publish_burst(js: &async_nats::jetstream::Context, lead: i64) {
    let first = rfc3339_in(lead);
    let first_ns = Timestamp::parse(&first).expect("time").unix_nanos();
    let step = 1_000_000_000 / BURST as i128;
    let mut acks = Vec::new();
    for i in 0..BURST {
        let due = Timestamp::from_unix_nanos(first_ns + step * i as i128).expect("time");
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Schedule", format!("@at {due}").as_str());
        headers.insert("Nats-Schedule-Target", "target.burst");
        let ack = js
            .publish_with_headers(format!("sched.{i}"), headers, i.to_string().into())
            .await
            .expect("publish");
        acks.push(ack);
        if acks.len() == 500 || i + 1 == BURST {
            for ack in acks.drain(..) {
                ack.await.expect("schedule acked");
            }
        }
    }
}

/// The bodies of the burst's firings in stream order, seen through the stream's
/// `republish` (a core subscription: nothing the test does while it waits reaches the
/// stream and wakes a stalled timer), until all came or 10 s after the last was due.
async fn burst_story(kind: ServerKind) -> (usize, bool) {
    use futures::StreamExt as _;

    let server = TestServer::start_with(ServerOpts::kind(kind)).await;
    let client = server.client().await;
    create(
        &client,
        "B",
        r#"{"name":"B","subjects":["sched.>","target.>"],"allow_msg_schedules":true,
            "republish":{"src":"target.>","dest":"rp.>"}}"#,
    )
    .await;
    let mut firings = client.subscribe("rp.burst").await.expect("subscribe");
    let lead = 6;
    publish_burst(&async_nats::jetstream::new(client.clone()), lead).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(lead as u64 + 1 + 10);
    let mut bodies = Vec::with_capacity(BURST);
    while bodies.len() < BURST {
        let Ok(Some(msg)) = tokio::time::timeout_at(deadline, firings.next()).await else {
            break;
        };
        let body: usize = std::str::from_utf8(&msg.payload)
            .expect("utf-8")
            .parse()
            .expect("index");
        bodies.push(body);
    }
    let in_order = bodies.windows(2).all(|w| w[0] < w[1]);
    (bodies.len(), in_order)
}

/// 5,000 schedules falling due within one second all fire within 10 s of the last due
/// time, in due order, on rill as on nats-server (more than one timer round of rill's:
/// a round fires at most 1,024, and the next must follow at once). The servers run at
/// the same time; nothing is timed but the bound.
#[tokio::test]
async fn a_burst_of_schedules_due_within_a_second_all_fire_in_order_as_nats_server() {
    let (rill, nats) = tokio::join!(burst_story(ServerKind::Rill), burst_story(ServerKind::Nats));
    assert_eq!(nats, (BURST, true), "nats-server");
    assert_eq!(rill, (BURST, true), "rill");
}
