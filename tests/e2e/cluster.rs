//! Clusters on loopback: rill servers routed together, a mixed cluster with nats-server,
//! failover of clients, a restarted server rejoining, refused routes, lame duck, and
//! routes recovering from cuts, partitions and delay injected by a TCP proxy.
//!
//! Every server picks its own ports (read back from its ports file); every test waits
//! for conditions with bounded polling and kills its processes on drop.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use rill_tests::ServerKind::{Nats, Rill};
use rill_tests::cluster::{Cluster, Node, NodeSpec};
use rill_tests::proxy::FaultProxy;
use rill_tests::raw::Conn;
use rill_tests::{check_for, sync};

use crate::websocket_frames::RawWs;

/// How long a message may take to show up.
const WAIT: Duration = Duration::from_secs(5);

async fn next(sub: &mut async_nats::Subscriber) -> async_nats::Message {
    tokio::time::timeout(WAIT, sub.next())
        .await
        .expect("a message in time")
        .expect("subscription open")
}

/// Messages already waiting (or arriving within a short grace period).
async fn drain(sub: &mut async_nats::Subscriber) -> Vec<async_nats::Message> {
    let mut got = Vec::new();
    while let Ok(Some(msg)) = tokio::time::timeout(Duration::from_millis(300), sub.next()).await {
        got.push(msg);
    }
    got
}

/// Answers requests on `subject` with their own payload, from `client`.
async fn echo_service(client: &async_nats::Client, subject: &str) -> tokio::task::JoinHandle<()> {
    let mut requests = client
        .subscribe(subject.to_string())
        .await
        .expect("subscribe service");
    let client = client.clone();
    tokio::spawn(async move {
        while let Some(req) = requests.next().await {
            if let Some(reply) = req.reply {
                let _ = client.publish(reply, req.payload).await;
            }
        }
    })
}

/// Plain, queue, request/reply and header traffic from a client of `from` to clients of
/// `to` (server names as the nodes call each other).
async fn exchange(from: &Node, to: &Node) {
    let (tx, rx) = (from.client().await, to.client().await);
    let prefix = format!("x.{}.{}", from.name(), to.name());
    let mut plain = rx.subscribe(format!("{prefix}.*")).await.expect("sub");
    let mut queue = rx
        .queue_subscribe(format!("{prefix}.q"), "workers".into())
        .await
        .expect("queue sub");
    let service = echo_service(&rx, &format!("{prefix}.svc")).await;
    sync(&rx).await;
    for subject in [
        format!("{prefix}.*"),
        format!("{prefix}.q"),
        format!("{prefix}.svc"),
    ] {
        from.wait_interest(to.name(), &subject).await;
    }
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("X-Trace", "t-1");
    tx.publish_with_headers(format!("{prefix}.h"), headers, "with headers".into())
        .await
        .expect("publish");
    tx.publish(format!("{prefix}.q"), "to the group".into())
        .await
        .expect("publish");
    let first = next(&mut plain).await;
    assert_eq!(first.payload, "with headers");
    let trace = first.headers.as_ref().and_then(|h| h.get("X-Trace"));
    assert_eq!(trace.map(|v| v.as_str()), Some("t-1"));
    assert_eq!(next(&mut queue).await.payload, "to the group");
    assert_eq!(next(&mut plain).await.payload, "to the group");
    let reply = tx
        .request(format!("{prefix}.svc"), "ping".into())
        .await
        .expect("request across the route");
    assert_eq!(reply.payload, "ping");
    service.abort();
}

#[tokio::test]
async fn three_rill_servers_share_interest_queue_groups_and_requests() {
    let cluster = Cluster::start(&[Rill, Rill, Rill]).await;
    let (n1, n2, n3) = (cluster.node(0), cluster.node(1), cluster.node(2));
    let (c1, c2, c3) = (n1.client().await, n2.client().await, n3.client().await);
    let mut plain = c2.subscribe("orders.*").await.expect("sub");
    let mut q2 = c2
        .queue_subscribe("orders.new", "workers".into())
        .await
        .expect("sub");
    let mut q3 = c3
        .queue_subscribe("orders.new", "workers".into())
        .await
        .expect("sub");
    let service = echo_service(&c3, "svc.echo").await;
    sync(&c2).await;
    sync(&c3).await;
    n1.wait_interest("n2", "orders.*").await;
    n1.wait_interest("n2", "orders.new").await;
    n1.wait_interest("n3", "orders.new").await;
    n1.wait_interest("n3", "svc.echo").await;

    // From n1: every message to the plain subscriber, one queue member each in the cluster.
    for i in 0..20 {
        c1.publish("orders.new", i.to_string().into())
            .await
            .expect("publish");
    }
    for i in 0..20 {
        assert_eq!(next(&mut plain).await.payload, i.to_string());
    }
    let (in2, in3) = (drain(&mut q2).await, drain(&mut q3).await);
    assert_eq!(
        in2.len() + in3.len(),
        20,
        "each message to one member of the group"
    );
    // From n2: its local member is preferred, as nats-server does.
    for _ in 0..10 {
        c2.publish("orders.new", "local".into())
            .await
            .expect("publish");
    }
    assert_eq!(drain(&mut q2).await.len(), 10);
    assert!(drain(&mut q3).await.is_empty());
    drain(&mut plain).await;

    let reply = c1
        .request("svc.echo", "ping".into())
        .await
        .expect("request");
    assert_eq!(reply.payload, "ping");

    // Interest goes with unsubscribe and with the connection.
    plain.unsubscribe().await.expect("unsubscribe");
    n1.wait_no_interest("orders.*").await;
    service.abort();
    drop(c3);
    n1.wait_no_interest("svc.echo").await;
    let err = c1
        .request("svc.echo", "ping".into())
        .await
        .expect_err("nobody answers now");
    assert_eq!(err.kind(), async_nats::RequestErrorKind::NoResponders);

    let routez = n1.monitor("/routez").await;
    assert_eq!(routez["num_routes"], 2);
    let route = &routez["routes"][0];
    let mut keys: Vec<&String> = route.as_object().expect("route").keys().collect();
    keys.sort();
    insta::assert_json_snapshot!("routez_route_keys", keys);
    let varz = n1.monitor("/varz").await;
    assert_eq!(varz["routes"], 2);
    assert_eq!(varz["slow_consumer_stats"]["routes"], 0);
    let metrics = rill_tests::cluster::http_get(n1.monitor_port(), "/metrics")
        .await
        .expect("/metrics");
    assert!(metrics.contains("\nrill_routes 2\n"), "{metrics}");
    let sent = metrics
        .lines()
        .find_map(|l| l.strip_prefix("rill_route_out_msgs_total "))
        .and_then(|v| v.parse::<u64>().ok());
    assert!(sent.is_some_and(|n| n >= 20), "{metrics}");
    assert_eq!(varz["cluster"]["name"], "C1");
    assert_eq!(varz["cluster"]["cluster_port"], n1.cluster_port());
    assert!(
        n1.logs()
            .contains("Listening for route connections on 127.0.0.1:")
    );
    assert!(n1.logs().contains("- Route connection created"));
}

#[tokio::test]
async fn a_mixed_cluster_with_nats_server_carries_messages_both_ways() {
    // rill seeds; nats-server joins through it; the second rill joins through the first
    // and learns about nats-server by gossip, so routes are dialled and accepted both ways.
    let cluster = Cluster::start(&[Rill, Nats, Rill]).await;
    let (nats, rill) = (cluster.node(1), cluster.node(2));
    exchange(nats, rill).await;
    exchange(rill, nats).await;
    exchange(cluster.node(0), nats).await;
}

#[tokio::test]
async fn a_client_fails_over_and_a_restarted_server_rejoins() {
    let mut cluster = Cluster::start(&[Rill, Rill, Rill]).await;
    // The client is told about n1 only; INFO's connect_urls tells it about the others.
    let subscriber = async_nats::connect(cluster.node(0).url())
        .await
        .expect("connect to n1");
    let urls = subscriber.server_info().connect_urls;
    assert_eq!(urls.len(), 3, "{urls:?}");
    // /varz lists them too, as nats-server's does once routes are up.
    let varz = cluster.node(0).monitor("/varz").await;
    assert_eq!(
        varz["connect_urls"].as_array().map(Vec::len),
        Some(3),
        "{varz}"
    );
    let mut ticks = subscriber.subscribe("ticks").await.expect("sub");
    sync(&subscriber).await;
    let publisher = cluster.node(2).client().await;
    cluster.node(2).wait_interest("n1", "ticks").await;
    publisher
        .publish("ticks", "before".into())
        .await
        .expect("pub");
    assert_eq!(next(&mut ticks).await.payload, "before");

    cluster.nodes[0].kill();
    // It reconnects to n2 or n3 and subscribes again; ticks reach it from n3.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        publisher
            .publish("ticks", "after".into())
            .await
            .expect("pub");
        match tokio::time::timeout(Duration::from_millis(200), ticks.next()).await {
            Ok(Some(msg)) if msg.payload == "after" => break,
            _ if tokio::time::Instant::now() > deadline => panic!("no tick after failover"),
            _ => {}
        }
    }

    cluster.nodes[0].restart().await;
    cluster.wait_mesh().await;
    let back = cluster.node(0).client().await;
    let mut again = back.subscribe("again").await.expect("sub");
    sync(&back).await;
    cluster.node(1).wait_interest("n1", "again").await;
    let sender = cluster.node(1).client().await;
    sender.publish("again", "hi".into()).await.expect("pub");
    sender.flush().await.expect("flush");
    assert_eq!(next(&mut again).await.payload, "hi");
}

#[tokio::test]
async fn lame_duck_tells_clients_and_peers() {
    let lame = "lame_duck_grace_period: \"1s\"\nlame_duck_duration: \"30s\"\n";
    let cluster = Cluster::start_with(&[Rill, Rill], |mut spec| {
        spec.config = Some(lame.to_string());
        spec
    })
    .await;
    let (n1, n2) = (cluster.node(0), cluster.node(1));
    let mut on_n1 = Conn::connect(n1.ports().client).await;
    on_n1
        .send(b"CONNECT {\"protocol\":1,\"verbose\":false}\r\nPING\r\n")
        .await;
    let mut on_n2 = Conn::connect(n2.ports().client).await;
    on_n2
        .send(b"CONNECT {\"protocol\":1,\"verbose\":false}\r\nPING\r\n")
        .await;
    let n1_url = format!("127.0.0.1:{}", n1.ports().client);
    let urls = on_n2.info()["connect_urls"].to_string();
    assert!(urls.contains(&n1_url), "{urls}");
    n1.signal("-USR2");
    let told = on_n1.read_until_contains(b"\"ldm\":true", WAIT).await;
    assert!(String::from_utf8_lossy(&told).contains("\"ldm\":true"));
    // n2 stops pointing its clients at n1.
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::time::Instant::now() < deadline {
        let Some(line) = on_n2.try_read_line(Duration::from_millis(200)).await else {
            continue;
        };
        if line.starts_with("INFO ") && !line.contains(&n1_url) {
            seen = line;
            break;
        }
    }
    assert!(
        seen.contains("connect_urls"),
        "no INFO without n1's URL: {seen:?}"
    );
}

/// `127.0.0.1:<port>` of `node`'s WebSocket port.
fn ws_host_port(node: &Node) -> String {
    let port = node.ports().websocket.expect("a websocket port");
    format!("127.0.0.1:{port}")
}

/// `connect_urls` of a fresh async-nats client of `node` over WebSocket.
async fn ws_connect_urls(node: &Node) -> (async_nats::Client, Vec<String>) {
    let url = format!("ws://{}", ws_host_port(node));
    let client = async_nats::connect(&url).await.expect("connect over ws");
    let mut urls = client.server_info().connect_urls;
    urls.sort();
    (client, urls)
}

#[tokio::test]
async fn websocket_clients_are_told_the_clusters_websocket_urls_like_nats_server() {
    // Route INFO carries ws_connect_urls both ways (rill <-> nats-server); a WebSocket
    // client's INFO lists every server's WebSocket port as connect_urls, a plain
    // client's only client ports; a server joining later reaches WebSocket clients too.
    let ws = "websocket { host: 127.0.0.1, port: -1, no_tls: true }\n";
    let with_ws = |mut spec: NodeSpec| {
        spec.config = Some(ws.to_string());
        spec
    };
    let cluster = Cluster::start_with(&[Rill, Nats], with_ws).await;
    let (rill, nats) = (cluster.node(0), cluster.node(1));
    let mut both = vec![ws_host_port(rill), ws_host_port(nats)];
    both.sort();
    let (on_rill, urls) = ws_connect_urls(rill).await;
    assert_eq!(urls, both, "a WebSocket client of rill");
    let (_on_nats, urls) = ws_connect_urls(nats).await;
    assert_eq!(urls, both, "a WebSocket client of nats-server");
    let plain = rill.client().await.server_info().connect_urls;
    let mut clients = vec![
        format!("127.0.0.1:{}", rill.ports().client),
        format!("127.0.0.1:{}", nats.ports().client),
    ];
    clients.sort();
    let mut plain_sorted = plain.clone();
    plain_sorted.sort();
    assert_eq!(plain_sorted, clients, "a plain client of rill");

    // async-nats keeps the first INFO only: a raw WebSocket client sees the update.
    drop(on_rill);
    let ws_url = format!("ws://{}", ws_host_port(rill));
    let (mut raw, _) = RawWs::connect(&ws_url, None).await;
    let hello = b"CONNECT {\"protocol\":1,\"verbose\":false}\r\nPING\r\n";
    raw.send(true, false, 2, hello).await;
    raw.data_until(b"PONG\r\n").await;
    let third = Node::start(with_ws(
        NodeSpec::new(Rill, "n3").routes([rill.route_url()]),
    ))
    .await;
    let joined = ws_host_port(&third);
    let (told, _) = raw.data_until(joined.as_bytes()).await;
    let told = String::from_utf8_lossy(&told);
    let info = told
        .lines()
        .rev()
        .find(|l| l.starts_with("INFO "))
        .unwrap_or_default();
    assert!(!info.contains("ws_connect_urls"), "{info}");
    assert!(
        !info.contains(&format!(":{}", rill.ports().client)),
        "{info}"
    );
}

#[tokio::test]
async fn mismatched_cluster_names_and_bad_route_credentials_are_refused() {
    let n1 = Node::start(NodeSpec {
        config: Some("cluster { authorization { user: route, password: s3cret } }".into()),
        ..NodeSpec::new(Rill, "n1")
    })
    .await;
    let port = n1.cluster_port();
    let other = Node::start(NodeSpec {
        cluster: "C2".into(),
        ..NodeSpec::new(Rill, "other").routes([format!("nats://route:s3cret@127.0.0.1:{port}")])
    })
    .await;
    let wrong = Node::start(
        NodeSpec::new(Rill, "wrong").routes([format!("nats://route:nope@127.0.0.1:{port}")]),
    )
    .await;
    let right = Node::start(
        NodeSpec::new(Rill, "right").routes([format!("nats://route:s3cret@127.0.0.1:{port}")]),
    )
    .await;
    check_for(WAIT, || async { right.peers().await == 1 }).await;
    let name_refused = "Rejecting connection, cluster name";
    check_for(WAIT, || async {
        other.logs().contains(name_refused) || n1.logs().contains(name_refused)
    })
    .await;
    check_for(WAIT, || async {
        n1.logs().contains("Authorization Violation")
    })
    .await;
    assert_eq!(
        n1.peers().await,
        1,
        "only the route with the right name and credentials"
    );
    // A refused dialler counts the route for a moment after each redial, until the
    // seed answers its CONNECT with -ERR: wait for a moment between redials.
    check_for(WAIT, || async {
        (other.peers().await, wrong.peers().await) == (0, 0)
    })
    .await;
}

/// A `cluster { tls {} }` block with `cert` (`server`, `rogue`) from `certs`, verifying peers.
fn route_tls(certs: &crate::tls::Certs, cert: &str) -> String {
    format!(
        "cluster {{ tls {{ cert_file: \"{}\", key_file: \"{}\", ca_file: \"{}\", verify: true, timeout: 2 }} }}\n",
        certs.path(&format!("{cert}-cert.pem")).display(),
        certs.path(&format!("{cert}-key.pem")).display(),
        certs.path("ca.pem").display(),
    )
}

#[tokio::test]
async fn routes_over_mutual_tls_mixed_with_nats_server_refuse_untrusted_peers() {
    let certs = crate::tls::Certs::generate();
    let block = route_tls(&certs, "server");
    // rill seeds, nats-server joins through it, the second rill dials both: TLS routes
    // accepted and dialled by each kind.
    let cluster = Cluster::start_with(&[Rill, Nats, Rill], |mut spec| {
        spec.config = Some(block.clone());
        spec
    })
    .await;
    let (n1, nats, n3) = (cluster.node(0), cluster.node(1), cluster.node(2));
    exchange(nats, n3).await;
    exchange(n3, nats).await;
    exchange(n1, n3).await;

    // A server whose certificate the cluster's CA did not sign gets no route.
    let rogue = Node::start(NodeSpec {
        config: Some(route_tls(&certs, "rogue")),
        ..NodeSpec::new(Rill, "rogue").routes([n1.route_url()])
    })
    .await;
    check_for(WAIT, || async {
        n1.logs().contains("TLS route handshake error")
    })
    .await;
    assert_eq!((rogue.peers().await, n1.peers().await), (0, 2));
    // A plain route to a TLS cluster is refused too.
    let plain = Node::start(NodeSpec::new(Rill, "plain").routes([n1.route_url()])).await;
    check_for(WAIT, || async {
        plain.logs().contains("Error trying to connect to route")
    })
    .await;
    assert_eq!((plain.peers().await, n1.peers().await), (0, 2));
}

#[tokio::test]
async fn routes_recover_from_cuts_partitions_and_delay() {
    // Short route pings, so a silent partition is noticed within a second.
    let pings = "cluster { ping_interval: \"200ms\", ping_max: 2 }";
    let n1 = Node::start(NodeSpec {
        config: Some(pings.into()),
        ..NodeSpec::new(Rill, "n1")
    })
    .await;
    let target = format!("127.0.0.1:{}", n1.cluster_port())
        .parse()
        .expect("addr");
    let proxy = FaultProxy::start(target).await;
    let n2 = Node::start(NodeSpec {
        config: Some(pings.into()),
        ..NodeSpec::new(Rill, "n2").routes([proxy.url("nats")])
    })
    .await;
    let cluster = Cluster {
        nodes: vec![n1, n2],
    };
    cluster.wait_mesh().await;
    let (n1, n2) = (cluster.node(0), cluster.node(1));
    let (c1, c2) = (n1.client().await, n2.client().await);
    let mut sub = c1.subscribe("through.proxy").await.expect("sub");
    sync(&c1).await;

    deliver(n2, &c2, &mut sub, "first").await;

    // A cut: the route closes and n2 dials it again (a new route id).
    let before = route_ids(n1).await;
    proxy.cut();
    check_for(WAIT, || async {
        let now = route_ids(n1).await;
        now.len() == 1 && now != before
    })
    .await;
    deliver(n2, &c2, &mut sub, "after the cut").await;

    // A silent partition: pings go unanswered, both sides drop the route, and each
    // server keeps serving its own clients meanwhile.
    proxy.set_drop(true);
    cluster.wait_peers(0).await;
    for client in [&c1, &c2] {
        sync(client).await;
    }
    proxy.heal();
    cluster.wait_mesh().await;
    deliver(n2, &c2, &mut sub, "after the partition").await;

    // Delay slows the route but loses nothing.
    proxy.set_delay(Duration::from_millis(30));
    deliver(n2, &c2, &mut sub, "delayed").await;
    proxy.heal();
    assert!(n1.logs().contains("Stale Connection") || n2.logs().contains("Stale Connection"));
    let stale = |v: serde_json::Value| v["stale_connection_stats"]["routes"].as_u64();
    let (s1, s2) = (
        stale(n1.monitor("/varz").await),
        stale(n2.monitor("/varz").await),
    );
    assert!(s1.unwrap_or(0) + s2.unwrap_or(0) >= 1, "{s1:?} {s2:?}");
}

/// The ids of `node`'s routes.
async fn route_ids(node: &Node) -> Vec<u64> {
    let routez = node.monitor("/routez").await;
    let routes = routez["routes"].as_array().cloned().unwrap_or_default();
    routes.iter().filter_map(|r| r["rid"].as_u64()).collect()
}

/// Publishes `payload` from `client` (of `from`) once `from` knows n1's interest, and
/// waits for it on `sub`.
async fn deliver(
    from: &Node,
    client: &async_nats::Client,
    sub: &mut async_nats::Subscriber,
    payload: &'static str,
) {
    from.wait_interest("n1", "through.proxy").await;
    client
        .publish("through.proxy", Bytes::from_static(payload.as_bytes()))
        .await
        .expect("pub");
    while next(sub).await.payload != payload {}
}

#[tokio::test]
async fn nats_py_discovers_the_cluster_and_exchanges_messages() {
    if !crate::js_nats_py::nats_py_available() {
        eprintln!("nats-py not installed; skipping");
        return;
    }
    let cluster = Cluster::start(&[Rill, Rill]).await;
    let out = tokio::process::Command::new("python3")
        .args([
            "-c",
            PY_CLUSTER,
            &cluster.node(0).url(),
            &cluster.node(1).url(),
        ])
        .output()
        .await
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    insta::assert_snapshot!("nats_py_cluster_output", stdout);
}

/// nats-py against a two-server cluster: discovery from INFO, a queue group and a
/// request answered across the route.
const PY_CLUSTER: &str = r#"
import asyncio, sys, nats

async def main(url1, url2):
    a = await nats.connect(url1)
    b = await nats.connect(url2)
    print("discovered", len(a.discovered_servers) >= 1)
    got = []
    async def worker(msg):
        got.append(msg.data)
    async def echo(msg):
        await msg.respond(b"echo " + msg.data)
    await a.subscribe("py.work", queue="workers", cb=worker)
    await a.subscribe("py.echo", cb=echo)
    await a.flush()
    for _ in range(100):
        try:
            reply = await b.request("py.echo", b"hi", timeout=0.2)
            break
        except Exception:
            await asyncio.sleep(0.05)
    print("reply", reply.data.decode())
    for i in range(5):
        await b.publish("py.work", str(i).encode())
    await b.flush()
    for _ in range(100):
        if len(got) == 5:
            break
        await asyncio.sleep(0.05)
    print("worked", sorted(int(g) for g in got))
    await a.close()
    await b.close()

asyncio.run(main(sys.argv[1], sys.argv[2]))
"#;
