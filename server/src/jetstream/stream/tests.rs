//! The stream actor through its handle: publish → PubAck after the batch, reads,
//! consumer registry and interest / work-queue removal.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use rill_protocol::jsapi::{RetentionPolicy, StorageType, StreamConfig, Timestamp};

use super::*;
use crate::jetstream::validate::check_stream_config;
use crate::router::ByteString;
use crate::router::{Delivery, Msg, Subscriber, Subscription};

#[derive(Debug, Default)]
struct Inbox(Mutex<Vec<Bytes>>);

impl Subscriber for Inbox {
    fn owner_id(&self) -> u64 {
        7
    }
    fn deliver(&self, _sub: &Subscription, msg: &Msg<'_>) -> Delivery {
        self.0.lock().expect("lock").push(msg.payload_bytes());
        Delivery::Queued
    }
}

#[derive(Debug)]
struct Link {
    filters: Vec<String>,
    needs: AtomicBool,
}

impl ConsumerLink for Link {
    fn name(&self) -> &str {
        "c"
    }
    fn filters(&self) -> Vec<String> {
        self.filters.clone()
    }
    fn needs_ack(&self, _seq: u64) -> bool {
        self.needs.load(Ordering::Relaxed)
    }
    fn stop(&self) {}
}

/// A memory stream `T` on `t.>` with `retention`, in `account`.
fn params(retention: RetentionPolicy, account: &Arc<Account>) -> Spawn {
    let cfg = StreamConfig {
        name: "T".into(),
        subjects: vec!["t.>".into()],
        storage: StorageType::Memory,
        retention,
        ..StreamConfig::default()
    };
    Spawn {
        cfg: check_stream_config(cfg, false).expect("valid config"),
        created: Timestamp::ZERO,
        root: None,
        create: true,
        account: Arc::clone(account),
        usage: AccountUsage::default(),
        domain: String::new(),
        server_id: "S".into(),
        sync: SyncPolicy::Always,
        index_cache: None,
        replicated: false,
        batches: Default::default(),
    }
}

async fn start(retention: RetentionPolicy) -> (StreamHandle, Arc<Account>, Arc<Inbox>) {
    let account = Arc::new(Account::new("$G"));
    let inbox = Arc::new(Inbox::default());
    let sub = Subscription::new(
        Bytes::from_static(b"1"),
        Bytes::from_static(b"inbox"),
        None,
        Arc::clone(&inbox) as Arc<dyn Subscriber>,
    );
    account.router.subscribe(&sub);
    let (handle, _subs) = spawn(params(retention, &account)).await.expect("spawn");
    (handle, account, inbox)
}

#[test]
fn the_store_opens_with_the_servers_index_cache() {
    let account = Arc::new(Account::new("$G"));
    let mut p = params(RetentionPolicy::Limits, &account);
    let default = crate::jetstream::store::DEFAULT_INDEX_CACHE;
    assert_eq!(p.store_config().index_cache, default);
    p.index_cache = Some(64 * 1024);
    let cfg = p.store_config();
    assert_eq!((cfg.index_cache, cfg.max_msgs), (64 * 1024, -1));
}

fn publish(account: &Account, subject: &'static str) {
    let fanout = account.router.publish(
        9,
        true,
        &Msg::new(
            &ByteString::from_static(subject),
            Some(&ByteString::from_static("inbox")),
            None,
            &Bytes::from_static(b"x"),
        ),
    );
    assert_eq!(fanout.delivered, 1);
}

async fn wait_seq(handle: &StreamHandle, seq: u64) {
    let mut w = handle.last_seq_watch();
    tokio::time::timeout(Duration::from_secs(5), w.wait_for(|&s| s >= seq))
        .await
        .expect("in time")
        .expect("watch open");
}

#[tokio::test]
async fn acks_and_batch_reads() {
    let (handle, account, inbox) = start(RetentionPolicy::Limits).await;
    for s in ["t.a", "t.b", "t.a"] {
        publish(&account, s);
    }
    wait_seq(&handle, 3).await;
    let state = handle.state().await.expect("state");
    assert_eq!(state.msgs, 3);
    let acks = inbox.0.lock().expect("lock").clone();
    assert_eq!(acks.len(), 3);
    assert_eq!(&acks[2][..], br#"{"stream":"T","seq":3}"#);
    let batch = handle
        .load_batch(1, vec!["t.a".into()], 10, 0)
        .await
        .expect("batch");
    let seqs: Vec<u64> = batch.msgs.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, [1, 3]);
    assert_eq!(batch.last_seq, 3);
    let one = handle.load_batch(1, vec![], 10, 1).await.expect("batch");
    assert_eq!(one.msgs.len(), 1, "max_bytes still returns one message");
    let next = handle.load_next(2, vec![]).await.expect("next");
    assert_eq!(next.map(|m| m.seq), Some(2));
    assert!(handle.load(9).await.expect("load").is_none());
    assert!(
        handle
            .load_last("t.b".into())
            .await
            .expect("last")
            .is_some()
    );
}

#[tokio::test]
async fn workqueue_removes_acked_at_once() {
    let (handle, account, _inbox) = start(RetentionPolicy::WorkQueue).await;
    publish(&account, "t.a");
    publish(&account, "t.b");
    wait_seq(&handle, 2).await;
    assert_eq!(handle.remove_acked(vec![1]).await.expect("remove"), 1);
    assert_eq!(handle.state().await.expect("state").msgs, 1);
}

#[tokio::test]
async fn interest_keeps_what_a_consumer_needs() {
    let (handle, account, _inbox) = start(RetentionPolicy::Interest).await;
    publish(&account, "t.a");
    wait_seq(&handle, 1).await;
    assert_eq!(
        handle.state().await.expect("state").msgs,
        0,
        "no interest: dropped"
    );
    let link = Arc::new(Link {
        filters: vec!["t.a".into()],
        needs: AtomicBool::new(true),
    });
    handle.register_consumer(Arc::clone(&link) as Arc<dyn ConsumerLink>);
    assert_eq!(handle.consumer_count(), 1);
    publish(&account, "t.a");
    publish(&account, "t.b");
    wait_seq(&handle, 3).await;
    assert_eq!(
        handle.state().await.expect("state").msgs,
        1,
        "t.b has no interest"
    );
    assert_eq!(handle.remove_acked(vec![2]).await.expect("remove"), 0);
    link.needs.store(false, Ordering::Relaxed);
    assert_eq!(handle.remove_acked(vec![2]).await.expect("remove"), 1);
    publish(&account, "t.a");
    wait_seq(&handle, 4).await;
    assert_eq!(handle.state().await.expect("state").msgs, 1);
    handle.unregister_consumer("c").await.expect("unregister");
    assert_eq!(handle.state().await.expect("state").msgs, 0);
}

/// A replica applies a schedule at the time its leader stored it: its first due time
/// counts from then, not from when the replica got to it, so the leader's timer
/// rounds find it due on every replica alike.
#[tokio::test]
async fn a_replicated_schedule_is_due_from_its_entrys_time() {
    let account = Arc::new(Account::new("$G"));
    let mut p = params(RetentionPolicy::Limits, &account);
    p.cfg.allow_msg_schedules = true;
    p.replicated = true;
    let (handle, _subs) = spawn(p).await.expect("spawn");
    let stored = crate::jetstream::store::now_ns() - 3_600_000_000_000;
    let due = handle
        .call(move |core| {
            let h = b"NATS/1.0\r\nNats-Schedule: @every 1m\r\nNats-Schedule-Target: t.out\r\n\r\n";
            let ack = core.apply_replicated(b"t.s", Some(h), b"x", stored);
            assert!(ack.is_some_and(|a| a.error.is_none()));
            Ok(core.timers_due())
        })
        .await
        .expect("call");
    // A minute after `stored`, to the whole second (an hour later when counted from
    // the replica's clock).
    let minute = stored + 59_000_000_000..=stored + 60_000_000_000;
    assert!(
        due.is_some_and(|d| minute.contains(&d)),
        "{due:?} vs {stored}"
    );
}
