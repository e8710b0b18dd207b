//! Object store buckets through async-nats's `object_store` module: chunked puts of
//! a multi-megabyte object with its SHA-256 digest, info, delete. Get and list read
//! chunks through ordered consumers (issue 8).

use async_nats::jetstream::object_store;
use futures::TryStreamExt;
use rill_tests::TestServer;
use tokio::io::AsyncReadExt;

fn blob(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

async fn bucket(js: &async_nats::jetstream::Context) -> object_store::ObjectStore {
    js.create_object_store(object_store::Config {
        bucket: "files".into(),
        ..Default::default()
    })
    .await
    .expect("create bucket")
}

#[tokio::test]
async fn put_info_delete_multi_megabyte_object() {
    let server = TestServer::start().await;
    let js = server.jetstream().await;
    let store = bucket(&js).await;
    let data = blob(3 * 1024 * 1024 + 17);
    let meta = store
        .put("big.bin", &mut data.as_slice())
        .await
        .expect("put");
    assert_eq!(meta.size, data.len());
    assert!(meta.chunks > 20, "chunks: {}", meta.chunks);
    let info = store.info("big.bin").await.expect("info");
    assert_eq!(info.size, data.len());
    assert_eq!(info.digest, meta.digest);
    let mut s = js.get_stream("OBJ_files").await.expect("stream");
    let before = s.info().await.expect("info").state.messages;
    assert_eq!(before, meta.chunks as u64 + 1);
    // Replacing the object purges the old chunks.
    let small = blob(1000);
    store
        .put("big.bin", &mut small.as_slice())
        .await
        .expect("replace");
    assert_eq!(s.info().await.expect("info").state.messages, 2);
    store.delete("big.bin").await.expect("delete");
    let gone = store.info("big.bin").await.expect("info of deleted");
    assert!(gone.deleted);
    assert_eq!(s.info().await.expect("info").state.messages, 1);
}

#[tokio::test]
async fn get_and_list_objects() {
    let server = TestServer::start().await;
    let js = server.jetstream().await;
    let store = bucket(&js).await;
    let data = blob(2 * 1024 * 1024 + 5);
    store.put("a.bin", &mut data.as_slice()).await.expect("put");
    store.put("b.txt", &mut &b"hello"[..]).await.expect("put");
    let mut obj = store.get("a.bin").await.expect("get");
    let mut back = Vec::new();
    obj.read_to_end(&mut back).await.expect("read");
    assert_eq!(back, data);
    let mut names: Vec<String> = store
        .list()
        .await
        .expect("list")
        .map_ok(|i| i.name)
        .try_collect()
        .await
        .expect("list");
    names.sort();
    assert_eq!(names, ["a.bin", "b.txt"]);
}
