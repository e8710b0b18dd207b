//! On-disk format version 1 keeps opening: `tests/golden/store-v1/` is a store
//! written by rill (one file stream with a deleted message and headers, one
//! durable consumer with acks, stopped cleanly so it has an index snapshot). A
//! real server started on a copy serves it exactly, with and without the
//! snapshot (the scan path). A later format change must keep these passing, so
//! it cannot strand users' data.
//!
//! `cargo test -p rill-tests --test e2e write_golden_store -- --ignored` rewrites
//! the files (only for a new format version, in a new directory).

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull, stream};
use futures::StreamExt;
use rill_tests::{ServerOpts, TestServer};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("golden/store-v1")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read dir").flatten() {
        let dst = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), &dst).expect("copy");
        }
    }
}

fn body(i: u64) -> String {
    format!("golden-{i}")
}

async fn serve(store: &Path) -> TestServer {
    TestServer::start_with(ServerOpts {
        jetstream: false,
        args: vec!["-js".into(), "-sd".into(), store.display().to_string()],
        ..ServerOpts::default()
    })
    .await
}

async fn check(store: &Path) {
    let server = serve(store).await;
    let js = server.jetstream().await;
    let mut s = js.get_stream("GOLD").await.expect("stream");
    let st = s.info().await.expect("info").state.clone();
    assert_eq!(
        (st.messages, st.first_sequence, st.last_sequence),
        (4, 1, 5)
    );
    for seq in [1, 2, 4, 5] {
        let m = s.get_raw_message(seq).await.expect("message");
        assert_eq!(m.payload, body(seq).as_bytes(), "seq {seq}");
        assert_eq!(m.subject.as_str(), format!("gold.{}", seq % 2));
    }
    let m = s.get_raw_message(2).await.expect("message");
    let h = m.headers;
    assert_eq!(h.get("X-Golden").map(|v| v.as_str()), Some("yes"));
    assert!(s.get_raw_message(3).await.is_err(), "deleted stays deleted");
    let c: jetstream::consumer::PullConsumer = s.get_consumer("C").await.expect("consumer");
    let ci = c.cached_info();
    assert_eq!(ci.ack_floor.stream_sequence, 2, "{ci:?}");
    let mut batch = c.fetch().max_messages(10).messages().await.expect("fetch");
    let mut got = Vec::new();
    while let Some(m) = tokio::time::timeout(Duration::from_secs(5), batch.next())
        .await
        .expect("in time")
    {
        let m = m.expect("msg");
        got.push(m.info().expect("info").stream_sequence);
        m.ack().await.expect("ack");
    }
    assert_eq!(got, vec![4, 5], "the consumer resumes after its acks");
    let ack = js
        .publish("gold.x", "new".into())
        .await
        .expect("pub")
        .await
        .expect("ack");
    assert_eq!(ack.sequence, 6);
}

#[tokio::test]
async fn golden_store_v1_opens_with_its_snapshot() {
    let tmp = tempfile::tempdir().expect("tmp");
    copy_dir(&golden_dir(), tmp.path());
    let msgs = tmp.path().join("jetstream/$G/streams/GOLD/msgs");
    assert!(
        msgs.join("index.snap").exists(),
        "the golden store has a snapshot"
    );
    check(tmp.path()).await;
}

#[tokio::test]
async fn golden_store_v1_opens_by_scanning() {
    let tmp = tempfile::tempdir().expect("tmp");
    copy_dir(&golden_dir(), tmp.path());
    let msgs = tmp.path().join("jetstream/$G/streams/GOLD/msgs");
    std::fs::remove_file(msgs.join("index.snap")).expect("remove snapshot");
    check(tmp.path()).await;
}

#[tokio::test]
#[ignore = "writes tests/golden/store-v1; run only for a new format version"]
async fn write_golden_store() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut server = serve(tmp.path()).await;
    let js = server.jetstream().await;
    let s = js
        .create_stream(stream::Config {
            name: "GOLD".into(),
            subjects: vec!["gold.>".into()],
            ..Default::default()
        })
        .await
        .expect("create");
    for i in 1..=5u64 {
        let mut h = async_nats::HeaderMap::new();
        if i == 2 {
            h.insert("X-Golden", "yes");
        }
        js.publish_with_headers(format!("gold.{}", i % 2), h, body(i).into())
            .await
            .expect("pub")
            .await
            .expect("ack");
    }
    s.delete_message(3).await.expect("delete");
    let c = s
        .create_consumer(pull::Config {
            durable_name: Some("C".into()),
            ..Default::default()
        })
        .await
        .expect("consumer");
    let mut batch = c.fetch().max_messages(2).messages().await.expect("fetch");
    while let Some(m) = batch.next().await {
        m.expect("msg").double_ack().await.expect("ack");
    }
    server.stop().await;
    let out = golden_dir();
    let _ = std::fs::remove_dir_all(&out);
    copy_dir(&tmp.path().join("jetstream"), &out.join("jetstream"));
}
