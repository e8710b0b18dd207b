//! Item 6 of issue 14 (nats.js `tls - available connects with or without`): with
//! `allow_non_tls: true` next to `tls {}`, INFO says `tls_available` instead of
//! `tls_required` and clients connect on the one port with or without TLS.

use std::time::Duration;

use async_nats::ConnectOptions;
use rill_tests::{ServerOpts, TestServer};
use serde_json::Value;
use tokio::io::AsyncReadExt;

use super::BOTH;
use crate::tls::Certs;

const WAIT: Duration = Duration::from_secs(10);

async fn round_trip(opts: ConnectOptions, url: &str) {
    let client = tokio::time::timeout(WAIT, opts.max_reconnects(Some(0)).connect(url))
        .await
        .expect("connect in time")
        .expect("connect");
    let reply = tokio::time::timeout(WAIT, async {
        let mut sub = client.subscribe("avail").await.expect("sub");
        client.flush().await.expect("flush");
        client.publish("avail", "hi".into()).await.expect("pub");
        futures::StreamExt::next(&mut sub).await
    })
    .await
    .expect("message in time")
    .expect("message");
    assert_eq!(reply.payload.as_ref(), b"hi");
}

/// The TLS fields of the INFO a raw TCP connection reads first.
async fn info_tls_fields(port: u16) -> (Value, Value) {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("tcp");
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(WAIT, stream.read(&mut buf))
        .await
        .expect("INFO in time")
        .expect("read");
    let line = String::from_utf8_lossy(&buf[..n]);
    let json = line
        .trim()
        .strip_prefix("INFO ")
        .expect("INFO line")
        .to_owned();
    let info: Value = serde_json::from_str(&json).expect("INFO json");
    (info["tls_required"].clone(), info["tls_available"].clone())
}

#[tokio::test]
async fn tls_available_serves_clients_with_and_without_tls() {
    let certs = Certs::generate();
    let config = format!("{}allow_non_tls: true\n", certs.tls_block(""));
    let mut seen = Vec::new();
    for kind in BOTH {
        let server = TestServer::start_with(ServerOpts {
            kind,
            jetstream: false,
            config: Some(config.clone()),
            ..ServerOpts::default()
        })
        .await;
        seen.push(info_tls_fields(server.port()).await);
        round_trip(ConnectOptions::new(), &server.url()).await;
        round_trip(certs.client_opts(), &server.url()).await;
    }
    assert_eq!(seen[0], seen[1], "rill vs nats-server");
    assert_eq!(seen[0], (Value::Null, Value::Bool(true)));
}
