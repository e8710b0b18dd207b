//! End-to-end tests of the harness and of the `rill` CLI binary run against a server process.

use std::time::Duration;

use futures::StreamExt;
use rill_tests::{ServerKind, ServerOpts, TestServer, check_for, raw};

/// The server kind the CLI tests run against (flip to `Rill` once its JetStream lands).
const KIND: ServerKind = ServerKind::Nats;

async fn server(kind: ServerKind) -> TestServer {
    TestServer::start_with(ServerOpts::kind(kind)).await
}

#[tokio::test]
async fn harness_pub_sub_and_raw_frames() {
    let srv = server(KIND).await;
    assert!(srv.url().ends_with(&srv.port().to_string()));
    let client = srv.client().await;
    let mut sub = client.subscribe("smoke.>").await.unwrap();
    client.publish("smoke.a", "hi".into()).await.unwrap();
    let msg = tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&msg.payload[..], b"hi");

    let mut conn = raw::Conn::connect(srv.port()).await;
    assert_eq!(conn.info()["port"], srv.port());
    conn.send(b"CONNECT {\"verbose\":false}\r\nPING\r\n").await;
    assert_eq!(conn.read_line().await, "PONG\r\n");
    conn.send(b"SUB raw.x 1\r\nPUB raw.x 3\r\nabc\r\n").await;
    assert_eq!(conn.read_line().await, "MSG raw.x 1 3\r\n");
    assert_eq!(conn.read_exact(5).await, b"abc\r\n");
}

#[tokio::test]
async fn harness_restart_keeps_store_and_kill_is_abrupt() {
    let mut srv = server(KIND).await;
    let js = async_nats::jetstream::new(srv.client().await);
    js.create_stream(async_nats::jetstream::stream::Config {
        name: "SMOKE".into(),
        subjects: vec!["smoke.>".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    js.publish("smoke.1", "one".into())
        .await
        .unwrap()
        .await
        .unwrap();

    let port = srv.port();
    srv.restart().await;
    assert_eq!(srv.port(), port);
    let js = async_nats::jetstream::new(srv.client().await);
    let mut stream = js.get_stream("SMOKE").await.unwrap();
    assert_eq!(stream.info().await.unwrap().state.messages, 1);

    srv.kill();
    assert!(srv.pid().is_none());
    srv.restart().await;
    let client = srv.client().await;
    let js = async_nats::jetstream::new(client);
    check_for(Duration::from_secs(5), || {
        let js = js.clone();
        async move { js.get_stream("SMOKE").await.is_ok() }
    })
    .await;
    assert!(srv.logs().contains("restarting server"));
}

#[tokio::test]
async fn harness_config_file_is_passed() {
    let srv = TestServer::start_with(ServerOpts {
        kind: KIND,
        jetstream: false,
        config: Some("max_payload: 2048\n".into()),
        ..ServerOpts::default()
    })
    .await;
    let conn = raw::Conn::connect(srv.port()).await;
    assert_eq!(conn.info()["max_payload"], 2048);
}
