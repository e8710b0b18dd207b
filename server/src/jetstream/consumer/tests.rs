//! Actor tests over a bare `MemStore` ([`StoreSource`]) and a real [`Router`], with a
//! paused tokio clock for the timers.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rill_protocol::headers;
use rill_protocol::jsapi::{
    AckPolicy, ConsumerConfig, ConsumerName, DeliverPolicy, Nanos, StreamName, Timestamp,
};
use tokio::sync::mpsc;

use super::*;
use crate::account::Account;
use crate::jetstream::store::{MemStore, StorageKind, StoreConfig, StreamStore};
use crate::router::ByteString;
use crate::router::{Delivery, Msg, Subscriber, Subscription};

#[derive(Debug, Clone)]
struct Got {
    subject: String,
    reply: Option<String>,
    headers: Option<Bytes>,
    payload: Bytes,
}

impl Got {
    fn status(&self) -> Option<u16> {
        self.headers.as_ref().and_then(|h| headers::status(h))
    }
}

#[derive(Debug)]
struct Collect(mpsc::UnboundedSender<Got>);

impl Subscriber for Collect {
    fn owner_id(&self) -> u64 {
        99
    }
    fn deliver(&self, _sub: &Subscription, m: &Msg<'_>) -> Delivery {
        let _ = self.0.send(Got {
            subject: m.subject.to_owned(),
            reply: m.reply.map(str::to_owned),
            headers: m.headers_bytes(),
            payload: m.payload_bytes(),
        });
        Delivery::Queued
    }
}

struct Env {
    account: Arc<Account>,
    src: StoreSource,
    handle: ConsumerHandle,
}

fn listen(account: &Arc<Account>, subject: &str) -> mpsc::UnboundedReceiver<Got> {
    let (tx, rx) = mpsc::unbounded_channel();
    let owner: Arc<dyn Subscriber> = Arc::new(Collect(tx));
    let sub = Subscription::new(
        Bytes::from_static(b"1"),
        Bytes::copy_from_slice(subject.as_bytes()),
        None,
        owner,
    );
    account.router.subscribe(&sub);
    std::mem::forget(sub);
    rx
}

fn publish(account: &Account, subject: &str, reply: Option<&str>, payload: &[u8]) {
    let s = ByteString::from(subject);
    let r = reply.map(ByteString::from);
    let p = Bytes::copy_from_slice(payload);
    account
        .router
        .publish(1, true, &Msg::new(&s, r.as_ref(), None, &p));
}

fn explicit() -> ConsumerConfig {
    ConsumerConfig {
        durable_name: "C".into(),
        ack_policy: AckPolicy::Explicit,
        ack_wait: Nanos::from_secs(30),
        max_deliver: -1,
        max_waiting: 512,
        max_ack_pending: 1000,
        ..ConsumerConfig::default()
    }
}

async fn env(cfg: ConsumerConfig, msgs: usize, workqueue: bool) -> Env {
    let store = MemStore::new(StoreConfig {
        storage: StorageKind::Memory,
        ..StoreConfig::default()
    });
    let src = StoreSource::new(Box::new(store), workqueue);
    for i in 0..msgs {
        let subj = format!("s.{}", i % 3);
        src.append(&subj, None, format!("m{}", i + 1).as_bytes())
            .expect("append");
    }
    start_env(cfg, src, workqueue).await
}

/// Starts consumer `C` on stream `S` over `src`, in a fresh `$G` account.
async fn start_env(cfg: ConsumerConfig, src: StoreSource, remove_acked: bool) -> Env {
    let account = Arc::new(Account::new("$G"));
    let (handle, _) = start(StartSpec {
        stream: StreamName::new("S").expect("name"),
        name: ConsumerName::new("C").expect("name"),
        config: cfg,
        created: Timestamp::default(),
        source: src.clone(),
        outbox: Outbox::new(Arc::clone(&account)),
        persist: None,
        registry: Registry::new(),
        interest: false,
        remove_acked,
        sync_interval: Duration::from_millis(100),
        restored: false,
        store: None,
    })
    .await
    .expect("start");
    Env {
        account,
        src,
        handle,
    }
}

async fn recv(rx: &mut mpsc::UnboundedReceiver<Got>) -> Got {
    tokio::time::timeout(Duration::from_secs(120), rx.recv())
        .await
        .expect("timely message")
        .expect("open channel")
}

fn pull(e: &Env, inbox: &str, body: &str) {
    publish(
        &e.account,
        "$JS.API.CONSUMER.MSG.NEXT.S.C",
        Some(inbox),
        body.as_bytes(),
    );
}

fn ack(e: &Env, m: &Got, payload: &str) {
    let reply = m.reply.clone().expect("ack subject");
    publish(&e.account, &reply, None, payload.as_bytes());
}

#[tokio::test(start_paused = true)]
async fn pull_batch_then_no_wait_404_then_408() {
    let e = env(explicit(), 3, false).await;
    let mut rx = listen(&e.account, "in.>");
    pull(&e, "in.1", r#"{"batch":2}"#);
    let a = recv(&mut rx).await;
    assert_eq!(a.subject, "s.0");
    assert_eq!(a.payload, "m1");
    let r = a.reply.clone().expect("reply");
    assert!(r.starts_with("$JS.ACK.S.C.1.1.1."), "{r}");
    assert!(r.ends_with(".2"), "{r}");
    let b = recv(&mut rx).await;
    assert_eq!(b.payload, "m2");
    pull(&e, "in.2", r#"{"batch":5,"no_wait":true}"#);
    assert_eq!(recv(&mut rx).await.payload, "m3");
    assert_eq!(recv(&mut rx).await.status(), Some(404));
    pull(&e, "in.3", r#"{"batch":5,"expires":500000000}"#);
    let t = recv(&mut rx).await;
    assert_eq!(t.status(), Some(408));
    assert_eq!(
        &t.headers.expect("headers")[..],
        &b"NATS/1.0 408 Request Timeout\r\nNats-Pending-Messages: 5\r\nNats-Pending-Bytes: 0\r\n\r\n"[..]
    );
    let info = e.handle.info().await.expect("info");
    assert_eq!(info.num_ack_pending, 3);
    assert_eq!(info.delivered.stream_seq, 3);
    assert_eq!(info.num_pending, 0);
}

#[tokio::test(start_paused = true)]
async fn redelivery_after_ack_wait_and_max_deliver_dead_letter() {
    let mut cfg = explicit();
    cfg.ack_wait = Nanos::from_secs(1);
    cfg.max_deliver = 2;
    cfg.metadata
        .insert(DEAD_LETTER_KEY.to_owned(), "dlq.orders".to_owned());
    let e = env(cfg, 1, false).await;
    let mut rx = listen(&e.account, "in.>");
    let mut adv = listen(&e.account, "$JS.EVENT.ADVISORY.>");
    let mut dlq = listen(&e.account, "dlq.>");
    pull(&e, "in.1", r#"{"batch":5,"expires":10000000000}"#);
    let first = recv(&mut rx).await;
    assert!(
        first
            .reply
            .as_deref()
            .is_some_and(|r| r.starts_with("$JS.ACK.S.C.1.1.1."))
    );
    let second = recv(&mut rx).await;
    assert!(
        second
            .reply
            .as_deref()
            .is_some_and(|r| r.starts_with("$JS.ACK.S.C.2.1.2."))
    );
    let a = recv(&mut adv).await;
    assert_eq!(a.subject, "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.S.C");
    let v: serde_json::Value = serde_json::from_slice(&a.payload).expect("json");
    assert_eq!(v["stream_seq"], 1);
    assert_eq!(v["deliveries"], 2);
    let d = recv(&mut dlq).await;
    assert_eq!(d.subject, "dlq.orders");
    assert_eq!(d.payload, "m1");
    let h = d.headers.expect("headers");
    assert_eq!(
        headers::find(&h, "Rill-Dead-Letter-Reason"),
        Some(&b"max_deliveries"[..])
    );
    assert_eq!(headers::find(&h, "Nats-Sequence"), Some(&b"1"[..]));
    let info = e.handle.info().await.expect("info");
    assert_eq!(info.num_ack_pending, 0);
}

#[tokio::test(start_paused = true)]
async fn acks_nak_term_and_ack_sync_reply() {
    let e = env(explicit(), 3, false).await;
    let mut rx = listen(&e.account, "in.>");
    let mut acks = listen(&e.account, "ackr.>");
    let mut adv = listen(&e.account, "$JS.EVENT.ADVISORY.>");
    pull(&e, "in.1", "3");
    let (m1, m2, m3) = (
        recv(&mut rx).await,
        recv(&mut rx).await,
        recv(&mut rx).await,
    );
    publish(
        &e.account,
        m1.reply.as_deref().unwrap_or_default(),
        Some("ackr.1"),
        b"+ACK",
    );
    assert_eq!(recv(&mut acks).await.payload.len(), 0);
    ack(&e, &m2, "+TERM because");
    let t = recv(&mut adv).await;
    assert_eq!(t.subject, "$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.S.C");
    ack(&e, &m3, "-NAK");
    let n = recv(&mut adv).await;
    assert_eq!(n.subject, "$JS.EVENT.ADVISORY.CONSUMER.MSG_NAKED.S.C");
    pull(&e, "in.2", "1");
    let again = recv(&mut rx).await;
    assert_eq!(again.payload, "m3");
    assert!(
        again
            .reply
            .as_deref()
            .is_some_and(|r| r.starts_with("$JS.ACK.S.C.2.3.4."))
    );
    ack(&e, &again, "");
    crate::jetstream::consumer::tests::settle().await;
    let info = e.handle.info().await.expect("info");
    assert_eq!(info.num_ack_pending, 0);
    assert_eq!(info.ack_floor.stream_seq, 3);
}

pub(super) async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn max_ack_pending_blocks_until_ack() {
    let mut cfg = explicit();
    cfg.max_ack_pending = 2;
    let e = env(cfg, 4, false).await;
    let mut rx = listen(&e.account, "in.>");
    pull(&e, "in.1", r#"{"batch":4,"expires":60000000000}"#);
    let m1 = recv(&mut rx).await;
    let _m2 = recv(&mut rx).await;
    settle().await;
    assert!(rx.try_recv().is_err(), "blocked at max_ack_pending");
    ack(&e, &m1, "+ACK");
    assert_eq!(recv(&mut rx).await.payload, "m3");
}

#[tokio::test(start_paused = true)]
async fn deliver_policies() {
    for (policy, seq, expect) in [
        (DeliverPolicy::Last, 0, "m5"),
        (DeliverPolicy::ByStartSequence, 4, "m4"),
        (DeliverPolicy::LastPerSubject, 0, "m3"),
    ] {
        let mut cfg = explicit();
        cfg.deliver_policy = policy;
        cfg.opt_start_seq = seq;
        let e = env(cfg, 5, false).await;
        let mut rx = listen(&e.account, "in.>");
        pull(&e, "in.1", "1");
        assert_eq!(recv(&mut rx).await.payload, expect, "{policy:?}");
    }
    let mut cfg = explicit();
    cfg.deliver_policy = DeliverPolicy::New;
    let e = env(cfg, 5, false).await;
    let mut rx = listen(&e.account, "in.>");
    pull(&e, "in.1", r#"{"batch":1,"expires":60000000000}"#);
    settle().await;
    assert!(rx.try_recv().is_err());
    e.src.append("s.9", None, b"fresh").expect("append");
    assert_eq!(recv(&mut rx).await.payload, "fresh");
}

#[tokio::test(start_paused = true)]
async fn ack_all_and_workqueue_removal() {
    let mut cfg = explicit();
    cfg.ack_policy = AckPolicy::All;
    let e = env(cfg, 3, true).await;
    let mut rx = listen(&e.account, "in.>");
    pull(&e, "in.1", "3");
    let _ = (recv(&mut rx).await, recv(&mut rx).await);
    let m3 = recv(&mut rx).await;
    ack(&e, &m3, "+ACK");
    tokio::time::sleep(Duration::from_millis(10)).await;
    let info = e.handle.info().await.expect("info");
    assert_eq!(info.num_ack_pending, 0);
    assert_eq!(e.src.msgs(), 0);
}

/// nats.py creates a push consumer, then subscribes its deliver subject: the
/// subscription wakes the consumer at once, not its interest poll (the paused clock
/// never moves).
#[tokio::test(start_paused = true)]
async fn subscribing_the_deliver_subject_wakes_a_push_consumer() {
    let mut cfg = explicit();
    cfg.deliver_subject = "dlv".into();
    cfg.max_waiting = 0;
    let e = env(cfg, 2, false).await;
    settle().await;
    let t0 = tokio::time::Instant::now();
    let mut rx = listen(&e.account, "dlv");
    settle().await;
    assert_eq!(rx.try_recv().expect("delivered at once").payload, "m1");
    assert_eq!(rx.try_recv().expect("delivered at once").payload, "m2");
    assert_eq!(tokio::time::Instant::now(), t0, "no timer was needed");
}

#[tokio::test(start_paused = true)]
async fn push_delivery_heartbeat_and_flow_control() {
    let mut cfg = explicit();
    cfg.deliver_subject = "dlv".into();
    cfg.idle_heartbeat = Nanos::from_secs(1);
    cfg.flow_control = true;
    cfg.max_waiting = 0;
    let e = env(cfg, 2, false).await;
    let mut rx = listen(&e.account, "dlv");
    e.src.append("s.1", None, b"m3").expect("append");
    for want in ["m1", "m2", "m3"] {
        assert_eq!(recv(&mut rx).await.payload, want);
    }
    let hb = recv(&mut rx).await;
    assert_eq!(hb.status(), Some(100));
    assert_eq!(
        headers::find(hb.headers.as_ref().expect("hdr"), "Nats-Last-Stream"),
        Some(&b"3"[..])
    );
}

#[tokio::test(start_paused = true)]
async fn nak_with_delay_waits() {
    let e = env(explicit(), 1, false).await;
    let mut rx = listen(&e.account, "in.>");
    pull(&e, "in.1", r#"{"batch":2,"expires":60000000000}"#);
    let m = recv(&mut rx).await;
    let t0 = tokio::time::Instant::now();
    ack(&e, &m, r#"-NAK {"delay": 5000000000}"#);
    let again = recv(&mut rx).await;
    assert_eq!(again.payload, "m1");
    assert!(t0.elapsed() >= Duration::from_secs(5));
}

#[test]
fn incremental_pending_count_matches_a_full_count() {
    use super::source::{ReadRange, count_pending, read_more};
    let mut store = MemStore::new(StoreConfig {
        storage: StorageKind::Memory,
        ..StoreConfig::default()
    });
    let cases: [Vec<String>; 3] = [vec![], vec!["a.*".into()], vec!["a.1".into(), "b.>".into()]];
    for filters in cases {
        let mut pos = 1;
        let mut prev = None;
        for round in 0..20u64 {
            for i in 0..(round % 7 + 1) {
                let subj = ["a.1", "a.2", "b.x.y", "c"][((round + i) % 4) as usize];
                store.append(subj, None, b"x").expect("append");
            }
            let range = ReadRange {
                start: pos,
                upto: store.state().last_seq,
                filters: &filters,
                max: 3,
                max_bytes: 0,
            };
            let (msgs, after, count) = read_more(&store, range, prev);
            assert!(msgs.iter().all(|m| m.seq >= pos));
            assert_eq!(
                count.pending,
                count_pending(&store, after, &filters),
                "{filters:?} round {round}"
            );
            pos = after;
            prev = Some(count);
        }
    }
}

/// A read stops at the last sequence the consumer was told of, even when the store
/// already holds more (a read queued behind newer publishes), and skips ahead only
/// as far as it looked.
#[test]
fn a_read_stops_at_the_sequence_the_consumer_knows() {
    use super::source::{ReadRange, read_more};
    let mut store = MemStore::new(StoreConfig {
        storage: StorageKind::Memory,
        ..StoreConfig::default()
    });
    for subj in ["a", "b", "b", "a", "a"] {
        store.append(subj, None, b"x").expect("append");
    }
    fn range(start: u64, upto: u64, filters: &[String]) -> ReadRange<'_> {
        ReadRange {
            start,
            upto,
            filters,
            max: 10,
            max_bytes: 0,
        }
    }
    let (msgs, after, _) = read_more(&store, range(1, 2, &[]), None);
    assert_eq!(msgs.iter().map(|m| m.seq).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(after, 3);
    let only_a = ["a".to_owned()];
    let (msgs, after, count) = read_more(&store, range(2, 3, &only_a), None);
    assert!(msgs.is_empty(), "no `a` in 2..=3");
    assert_eq!(
        after, 4,
        "skips to just past what it looked at, not to the store's end"
    );
    assert_eq!(count.pending, 2);
}

async fn env_with(cfg: ConsumerConfig, store: MemStore) -> Env {
    let src = StoreSource::new(Box::new(store), false);
    start_env(cfg, src, false).await
}

#[tokio::test(start_paused = true)]
async fn replay_original_keeps_the_publish_pace() {
    let mut store = MemStore::new(StoreConfig {
        storage: StorageKind::Memory,
        ..StoreConfig::default()
    });
    let t0 = crate::jetstream::store::now_ns();
    store.append_at("s.1", None, b"m1", t0).expect("append");
    store
        .append_at("s.1", None, b"m2", t0 + 2_000_000_000)
        .expect("append");
    let mut cfg = explicit();
    cfg.replay_policy = rill_protocol::jsapi::ReplayPolicy::Original;
    let e = env_with(cfg, store).await;
    let mut rx = listen(&e.account, "in.>");
    pull(&e, "in.1", r#"{"batch":2,"expires":60000000000}"#);
    let start = tokio::time::Instant::now();
    assert_eq!(recv(&mut rx).await.payload, "m1");
    assert!(start.elapsed() < Duration::from_millis(100));
    assert_eq!(recv(&mut rx).await.payload, "m2");
    assert!(
        start.elapsed() >= Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn push_rate_limit_paces_deliveries() {
    let mut cfg = explicit();
    cfg.deliver_subject = "dlv".into();
    cfg.max_waiting = 0;
    // 2 messages of ~50 bytes each at 400 bits/s: about a second apart.
    cfg.rate_limit_bps = 400;
    let e = env(cfg, 3, false).await;
    let mut rx = listen(&e.account, "dlv");
    let start = tokio::time::Instant::now();
    for _ in 0..3 {
        recv(&mut rx).await;
    }
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
}
