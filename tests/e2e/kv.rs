//! Key-value buckets through async-nats's `kv` module, unchanged: put/get/create/
//! update/delete/purge, history limits and the direct get it reads through.
//! Keys, history and watch need consumers (issue 8).

use async_nats::jetstream::kv;
use futures::TryStreamExt;
use rill_tests::TestServer;

async fn bucket(js: &async_nats::jetstream::Context, name: &str, history: i64) -> kv::Store {
    js.create_key_value(kv::Config {
        bucket: name.to_owned(),
        history,
        ..Default::default()
    })
    .await
    .expect("create bucket")
}

#[tokio::test]
async fn put_get_create_update_delete_purge() {
    let server = TestServer::start().await;
    let js = server.jetstream().await;
    let kv = bucket(&js, "cfg", 5).await;
    let r1 = kv.put("a", "one".into()).await.expect("put");
    assert_eq!(r1, 1);
    assert_eq!(
        kv.get("a").await.expect("get").as_deref(),
        Some(&b"one"[..])
    );
    assert_eq!(kv.get("missing").await.expect("get"), None);
    let err = kv.create("a", "dup".into()).await.expect_err("exists");
    assert_eq!(err.kind(), kv::CreateErrorKind::AlreadyExists);
    let r2 = kv.create("b", "bee".into()).await.expect("create");
    assert_eq!(r2, 2);
    let r3 = kv.update("a", "two".into(), r1).await.expect("update");
    assert_eq!(r3, 3);
    let stale = kv.update("a", "three".into(), r1).await;
    assert!(stale.is_err(), "stale revision accepted");
    let entry = kv.entry("a").await.expect("entry").expect("present");
    assert_eq!((entry.revision, &entry.value[..]), (3, &b"two"[..]));
    kv.delete("a").await.expect("delete");
    assert_eq!(kv.get("a").await.expect("get"), None);
    let deleted = kv.entry("a").await.expect("entry");
    assert!(deleted.is_none() || deleted.is_some_and(|e| e.operation == kv::Operation::Delete));
    // create over a delete marker works
    assert_eq!(kv.create("a", "again".into()).await.expect("recreate"), 5);
    kv.purge("b").await.expect("purge");
    assert_eq!(kv.get("b").await.expect("get"), None);
    let status = kv.status().await.expect("status");
    assert_eq!(status.history(), 5);
    assert_eq!(status.bucket(), "cfg");
}

#[tokio::test]
async fn history_is_bounded_and_purge_leaves_one_marker() {
    let server = TestServer::start().await;
    let js = server.jetstream().await;
    let kv = bucket(&js, "h", 3).await;
    for i in 0..10 {
        kv.put("k", format!("v{i}").into()).await.expect("put");
    }
    let mut s = js.get_stream("KV_h").await.expect("stream");
    assert_eq!(s.info().await.expect("info").state.messages, 3);
    kv.purge("k").await.expect("purge");
    assert_eq!(s.info().await.expect("info").state.messages, 1);
    assert_eq!(kv.get("k").await.expect("get"), None);
    // Bucket survives a restart with its contents.
    kv.put("k2", "kept".into()).await.expect("put");
    drop(kv);
    let mut server = server;
    server.restart().await;
    let js = server.jetstream().await;
    let kv = js.get_key_value("h").await.expect("bucket");
    assert_eq!(
        kv.get("k2").await.expect("get").as_deref(),
        Some(&b"kept"[..])
    );
}

#[tokio::test]
async fn keys_history_and_watch() {
    let server = TestServer::start().await;
    let js = server.jetstream().await;
    let kv = bucket(&js, "w", 10).await;
    kv.put("x", "1".into()).await.expect("put");
    kv.put("y", "2".into()).await.expect("put");
    kv.put("x", "3".into()).await.expect("put");
    let mut keys: Vec<String> = kv
        .keys()
        .await
        .expect("keys")
        .try_collect()
        .await
        .expect("keys");
    keys.sort();
    assert_eq!(keys, ["x", "y"]);
    let history: Vec<_> = kv
        .history("x")
        .await
        .expect("history")
        .try_collect()
        .await
        .expect("history");
    assert_eq!(history.len(), 2);
    let mut watch = kv.watch("x").await.expect("watch");
    kv.put("x", "4".into()).await.expect("put");
    let e = tokio::time::timeout(std::time::Duration::from_secs(5), watch.try_next())
        .await
        .expect("in time")
        .expect("watch")
        .expect("entry");
    assert_eq!(&e.value[..], b"4");
}
