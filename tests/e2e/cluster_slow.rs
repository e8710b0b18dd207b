//! A route that cannot keep up, side by side with nats-server 2.15.1 (`write_deadline: 2s`).
//!
//! A fake peer completes the route handshake, asks for `slow.>` and then reads slowly, later
//! not at all, while a client floods `slow.x`. Recorded from nats-server: a route write that
//! passes the deadline having written something is logged (`Slow Consumer Detected:
//! WriteDeadline of 2s exceeded with …`) and counted in `/varz`
//! `slow_consumer_stats.routes`, and the route stays; once a deadline passes with nothing
//! written the route is closed (`Router connection closed: Slow Consumer (Write Deadline)`).
//! Meanwhile the healthy route to the other server carries every message and requests
//! across it stay quick.

use std::time::{Duration, Instant};

use futures::StreamExt;
use rill_tests::ServerKind::{self, Nats, Rill};
use rill_tests::check_for;
use rill_tests::cluster::{Cluster, Node};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// The fake peer's server id.
const FAKE_ID: &str = "NFAKEROUTESLOWPEER";

/// Longest a phase may take.
const PHASE: Duration = Duration::from_secs(40);

/// Connects a fake route to `port` with a tiny receive buffer, subscribes to `slow.>`
/// and waits until the server answered its PING (so the subscription is in place).
async fn fake_route(port: u16) -> (OwnedReadHalf, OwnedWriteHalf) {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .set_recv_buffer_size(4096)
        .expect("small receive buffer");
    let stream = socket
        .connect(([127, 0, 0, 1], port).into())
        .await
        .expect("connect to the route port");
    let (mut read, mut write) = stream.into_split();
    let connect = serde_json::json!({
        "echo": true, "verbose": false, "pedantic": false, "tls_required": false,
        "headers": true, "name": FAKE_ID, "cluster": "C1",
    });
    let info = serde_json::json!({
        "server_id": FAKE_ID, "server_name": "fake", "version": "2.15.1", "proto": 3,
        "host": "127.0.0.1", "port": 1, "headers": true, "max_payload": 1_048_576,
        "cluster": "C1", "compression": "off",
    });
    let hello = format!("CONNECT {connect}\r\nINFO {info}\r\nRS+ $G slow.>\r\nPING\r\n");
    write.write_all(hello.as_bytes()).await.expect("handshake");
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !String::from_utf8_lossy(&seen).contains("PONG\r\n") {
        let n = tokio::time::timeout_at(deadline, read.read(&mut buf))
            .await
            .expect("PONG in time")
            .expect("read");
        assert!(n > 0, "route closed during the handshake: {seen:?}");
        seen.extend_from_slice(&buf[..n]);
    }
    (read, write)
}

/// Reads `chunk` bytes every `every` (a peer that keeps up with little).
fn trickle(mut read: OwnedReadHalf, chunk: usize, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut buf = vec![0u8; chunk];
        loop {
            tokio::time::sleep(every).await;
            if read.read(&mut buf).await.is_ok_and(|n| n == 0) {
                return;
            }
        }
    })
}

/// Publishes 100 messages of 1 KiB on `slow.x` every 100 ms (about 1 MiB/s) until aborted;
/// the count published so far is in the returned counter.
fn flood(
    client: async_nats::Client,
) -> (
    tokio::task::JoinHandle<()>,
    std::sync::Arc<std::sync::atomic::AtomicU64>,
) {
    use std::sync::atomic::Ordering;
    let count = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counting = std::sync::Arc::clone(&count);
    let task = tokio::spawn(async move {
        let payload = bytes::Bytes::from(vec![b'x'; 1024]);
        loop {
            for _ in 0..100 {
                if client.publish("slow.x", payload.clone()).await.is_err() {
                    return;
                }
                counting.fetch_add(1, Ordering::Relaxed);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    (task, count)
}

/// `/varz` `slow_consumer_stats.routes`.
async fn slow_routes(node: &Node) -> u64 {
    node.monitor("/varz").await["slow_consumer_stats"]["routes"]
        .as_u64()
        .unwrap_or_default()
}

/// True while `node` lists the fake peer in `/routez`.
async fn has_fake(node: &Node) -> bool {
    let routez = node.monitor("/routez").await;
    routez["routes"]
        .as_array()
        .is_some_and(|r| r.iter().any(|r| r["remote_id"] == FAKE_ID))
}

/// Requests `svc` (answered on the other server) from `client` until `done` holds,
/// returning the slowest answer.
async fn requests_until(
    client: &async_nats::Client,
    what: &str,
    mut done: impl AsyncFnMut() -> bool,
) -> Duration {
    let deadline = Instant::now() + PHASE;
    let mut slowest = Duration::ZERO;
    loop {
        let start = Instant::now();
        client
            .request("svc", "ping".into())
            .await
            .expect("request across the healthy route");
        slowest = slowest.max(start.elapsed());
        if done().await {
            return slowest;
        }
        assert!(Instant::now() < deadline, "no {what} within {PHASE:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn slow_route_scenario(kind: ServerKind) {
    let cluster = Cluster::start_with(&[kind, kind], |mut spec| {
        spec.config = Some("write_deadline: \"2s\"\n".into());
        spec
    })
    .await;
    let (n1, n2) = (cluster.node(0), cluster.node(1));
    let on_n2 = n2.client().await;
    let mut copies = on_n2.subscribe("slow.>").await.expect("sub");
    let mut service = on_n2.subscribe("svc").await.expect("service");
    let answering = on_n2.clone();
    let server = tokio::spawn(async move {
        while let Some(req) = service.next().await {
            if let Some(reply) = req.reply {
                let _ = answering.publish(reply, req.payload).await;
            }
        }
    });
    rill_tests::sync(&on_n2).await;
    n1.wait_interest("n2", "slow.>").await;
    n1.wait_interest("n2", "svc").await;
    let received = tokio::spawn(async move {
        let mut n = 0u64;
        while tokio::time::timeout(Duration::from_secs(10), copies.next())
            .await
            .is_ok_and(|m| m.is_some())
        {
            n += 1;
        }
        n
    });

    let (read, _write) = fake_route(n1.cluster_port()).await;
    let reader = trickle(read, 32 * 1024, Duration::from_millis(250));
    let publisher = n1.client().await;
    let (flooding, published) = flood(publisher.clone());
    let requester = n1.client().await;

    // Slow but reading: counted as a slow consumer, the route stays.
    let slowest = requests_until(&requester, "slow consumer", async || {
        slow_routes(n1).await >= 1
    })
    .await;
    assert!(
        has_fake(n1).await,
        "{kind:?}: the slow route was kept\n{}",
        n1.logs()
    );
    assert!(
        n1.logs()
            .contains("Slow Consumer Detected: WriteDeadline of 2s exceeded with"),
        "{kind:?}\n{}",
        n1.logs()
    );

    // Not reading at all: closed once a deadline passes with nothing written.
    reader.abort();
    let closed = "connection closed: Slow Consumer (Write Deadline)";
    let slowest = slowest.max(
        requests_until(&requester, "route close", async || {
            n1.logs().contains(closed)
        })
        .await,
    );
    flooding.abort();
    check_for(Duration::from_secs(10), || async { !has_fake(n1).await }).await;
    assert!(
        slowest < Duration::from_secs(1),
        "{kind:?}: a request took {slowest:?} while a route was slow"
    );

    // The healthy route carried every message.
    rill_tests::sync(&publisher).await;
    let sent = published.load(std::sync::atomic::Ordering::Relaxed);
    let got = received.await.expect("counter");
    assert_eq!(got, sent, "{kind:?}: messages over the healthy route");
    server.abort();
}

#[tokio::test]
async fn a_slow_route_is_counted_then_closed_without_blocking_others_like_nats_server() {
    for kind in [Nats, Rill] {
        slow_route_scenario(kind).await;
    }
}
