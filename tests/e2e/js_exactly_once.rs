//! Runs `examples/exactly_once.rs` (the built example binary) against a server that
//! is restarted, and then SIGKILLed and restarted, while the example publishes:
//! every order must be stored exactly once.

use std::process::Stdio;
use std::time::Duration;

use rill_tests::{TestServer, check_for, target_dir};

const ORDERS: usize = 3000;

/// The example binary, built on demand (`cargo build -p rill-examples --example exactly_once`).
fn example_bin() -> std::path::PathBuf {
    let bin = target_dir().join("examples").join("exactly_once");
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = std::process::Command::new(cargo)
            .args(["build", "-p", "rill-examples", "--example", "exactly_once"])
            .status()
            .expect("run cargo build");
        assert!(status.success(), "building the example failed");
    }
    bin
}

async fn stored(server: &TestServer) -> u64 {
    let Ok(client) = async_nats::connect(server.url()).await else {
        return 0;
    };
    let js = async_nats::jetstream::new(client);
    match js.get_stream("ORDERS").await {
        Ok(mut s) => s.info().await.map_or(0, |i| i.state.messages),
        Err(_) => 0,
    }
}

#[tokio::test]
async fn example_stores_each_order_once_across_restarts() {
    let mut server = TestServer::start().await;
    let child = tokio::process::Command::new(example_bin())
        .args(["--server", &server.url(), "--orders", &ORDERS.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn example");
    check_for(Duration::from_secs(20), || async {
        stored(&server).await >= 500
    })
    .await;
    server.restart().await;
    check_for(Duration::from_secs(20), || async {
        stored(&server).await >= 1500
    })
    .await;
    server.kill();
    server.restart().await;
    let out = tokio::time::timeout(Duration::from_secs(90), child.wait_with_output())
        .await
        .expect("example finished in time")
        .expect("example output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "example failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("every order stored exactly once"),
        "{stdout}"
    );
    assert_eq!(stored(&server).await, ORDERS as u64);
}
