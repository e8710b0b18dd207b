//! Leaf nodes: a hub and a leaf on loopback, in every pairing of rill and nats-server,
//! exchanging messages both ways (plain, queue groups, request/reply, headers); account
//! binding by leaf credentials; `deny_imports`/`deny_exports`; loop detection; the
//! monitoring endpoints; and a leaf link cut by a fault-injecting proxy while a leaf
//! client publishes, counting what reached the hub.
//!
//! Every server picks its own ports (a hub's leaf port is read from its ports file, or
//! for nats-server from its `Listening for leafnode connections on` log line); every
//! wait is a bounded poll on state.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use rill_tests::ServerKind::{self, Nats, Rill};
use rill_tests::proxy::FaultProxy;
use rill_tests::{ServerOpts, TestServer, check_for, sync};

/// How long a message or a link may take to show up.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// The leaf port of a hub: from its ports file (rill) or its log (nats-server).
pub(crate) async fn leaf_port(server: &TestServer) -> u16 {
    if let Some(port) = server.ports().leafnodes {
        return port;
    }
    let mut found = None;
    check_for(WAIT, || {
        found = server.logs().lines().find_map(|line| {
            let (_, addr) = line.split_once("Listening for leafnode connections on ")?;
            addr.trim().rsplit(':').next()?.parse().ok()
        });
        std::future::ready(found.is_some())
    })
    .await;
    found.unwrap_or_default()
}

/// A hub of `kind` with `extra` inside its `leafnodes {}` block.
pub(crate) async fn hub(kind: ServerKind, name: &str, extra: &str) -> TestServer {
    TestServer::start_with(ServerOpts {
        kind,
        jetstream: false,
        monitoring: true,
        config: Some(format!(
            "server_name: {name}\nleafnodes {{ listen: \"127.0.0.1:-1\"\n{extra}\n}}\n"
        )),
        ..ServerOpts::default()
    })
    .await
}

/// A leaf of `kind` whose one remote is `remote` (the inside of a `remotes` entry),
/// with `extra` at the top level of its config.
pub(crate) async fn leaf(kind: ServerKind, name: &str, remote: &str, extra: &str) -> TestServer {
    TestServer::start_with(ServerOpts {
        kind,
        jetstream: false,
        monitoring: true,
        config: Some(format!(
            "server_name: {name}\n{extra}\nleafnodes {{ reconnect: \"200ms\", remotes: [ {{ {remote} }} ] }}\n"
        )),
        ..ServerOpts::default()
    })
    .await
}

pub(crate) async fn next(sub: &mut async_nats::Subscriber) -> async_nats::Message {
    tokio::time::timeout(WAIT, sub.next())
        .await
        .expect("a message in time")
        .expect("subscription open")
}

/// The number of leaf links `/leafz` of `server` shows.
pub(crate) async fn leafnodes(server: &TestServer) -> u64 {
    let port = server.monitoring_port();
    let body = rill_tests::cluster::http_get(port, "/leafz").await;
    body.and_then(|b| serde_json::from_str::<serde_json::Value>(&b).ok())
        .and_then(|v| v["leafnodes"].as_u64())
        .unwrap_or(0)
}

pub(crate) async fn wait_linked(server: &TestServer, n: u64) {
    check_for(WAIT, || async { leafnodes(server).await == n }).await;
}

/// Waits until a subscription made on `sub_side` (after every earlier one of that
/// client) is known on the other side: probes published from `pub_side` get through.
/// Interest travels in order over one link, so earlier subscriptions are known too.
pub(crate) async fn wait_interest(sub_side: &async_nats::Client, pub_side: &async_nats::Client) {
    let probe = format!("probe.{}", sub_side.new_inbox().replace('.', "_"));
    let mut sub = sub_side.subscribe(probe.clone()).await.expect("probe sub");
    sync(sub_side).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        pub_side
            .publish(probe.clone(), Bytes::from_static(b"?"))
            .await
            .expect("probe");
        pub_side.flush().await.expect("flush");
        if let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(100), sub.next()).await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "interest did not cross the leaf link"
        );
    }
}

/// Messages both ways between a hub and its leaf: plain, headers, queue groups (each
/// message to one member) and request/reply with a service on the other side.
async fn exchange(hub_kind: ServerKind, leaf_kind: ServerKind) {
    let hub = hub(hub_kind, "hub", "").await;
    let port = leaf_port(&hub).await;
    let leaf = leaf(
        leaf_kind,
        "edge",
        &format!("url: \"nats-leaf://127.0.0.1:{port}\""),
        "",
    )
    .await;
    wait_linked(&hub, 1).await;
    let (h, l) = (hub.client().await, leaf.client().await);

    // Hub subscribers, leaf publisher.
    let mut plain = h.subscribe("up.>").await.expect("sub");
    let mut q1 = h.queue_subscribe("work", "q".into()).await.expect("qsub");
    let mut q2 = h.queue_subscribe("work", "q".into()).await.expect("qsub");
    wait_interest(&h, &l).await;
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("K", "V");
    l.publish_with_headers("up.1", headers, Bytes::from_static(b"hello"))
        .await
        .expect("pub");
    for i in 0..20 {
        l.publish("work", Bytes::from(format!("{i}")))
            .await
            .expect("pub");
    }
    sync(&l).await;
    let got = next(&mut plain).await;
    assert_eq!(got.payload, Bytes::from_static(b"hello"));
    assert_eq!(
        got.headers
            .as_ref()
            .and_then(|h| h.get("K"))
            .map(|v| v.as_str()),
        Some("V")
    );
    let mut seen = 0;
    let deadline = tokio::time::Instant::now() + WAIT;
    while seen < 20 && tokio::time::Instant::now() < deadline {
        tokio::select! {
            Some(_) = q1.next() => seen += 1,
            Some(_) = q2.next() => seen += 1,
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
    assert_eq!(seen, 20, "each queued message once");
    // Nothing more: no duplicates.
    let extra = tokio::time::timeout(Duration::from_millis(300), async {
        tokio::select! { m = q1.next() => m, m = q2.next() => m }
    })
    .await;
    assert!(extra.is_err(), "a queued message arrived twice");

    // Leaf service, hub requester; and the other way round.
    let mut svc = l.subscribe("svc.edge").await.expect("svc");
    let lc = l.clone();
    let service = tokio::spawn(async move {
        while let Some(req) = svc.next().await {
            if let Some(reply) = req.reply {
                let _ = lc.publish(reply, req.payload).await;
            }
        }
    });
    wait_interest(&l, &h).await;
    let answer = tokio::time::timeout(WAIT, h.request("svc.edge", Bytes::from_static(b"ping")))
        .await
        .expect("answer in time")
        .expect("answer");
    assert_eq!(answer.payload, Bytes::from_static(b"ping"));
    let mut down = l.subscribe("down").await.expect("sub");
    wait_interest(&l, &h).await;
    h.publish("down", Bytes::from_static(b"to-edge"))
        .await
        .expect("pub");
    assert_eq!(
        next(&mut down).await.payload,
        Bytes::from_static(b"to-edge")
    );
    service.abort();
}

#[tokio::test]
async fn rill_hub_and_rill_leaf_exchange_messages_both_ways() {
    exchange(Rill, Rill).await;
}

#[tokio::test]
async fn nats_server_leaf_under_a_rill_hub() {
    exchange(Rill, Nats).await;
}

#[tokio::test]
async fn rill_leaf_under_a_nats_server_hub() {
    exchange(Nats, Rill).await;
}

/// Leaf credentials bind the link to the account named in the hub's `authorization`;
/// bad credentials are refused; `deny_exports`/`deny_imports` of the remote filter both
/// ways.
#[tokio::test]
async fn leaf_credentials_bind_accounts_and_deny_lists_filter() {
    // Clients of the hub log in as a (account A) or b (account B).
    let hub = TestServer::start_with(ServerOpts {
        kind: Rill,
        jetstream: false,
        monitoring: true,
        config: Some(
            "server_name: hub\naccounts { A { users: [ {user: a, password: a} ] }, \
             B { users: [ {user: b, password: b} ] } }\n\
             leafnodes { listen: \"127.0.0.1:-1\", authorization { users: [ \
             {user: edge, password: s3cret, account: A} ] } }\n"
                .into(),
        ),
        ..ServerOpts::default()
    })
    .await;
    let port = leaf_port(&hub).await;
    let bad = leaf(
        Rill,
        "intruder",
        &format!("url: \"nats-leaf://edge:wrong@127.0.0.1:{port}\""),
        "",
    )
    .await;
    let leaf = leaf(
        Rill,
        "edge",
        &format!(
            "url: \"nats-leaf://edge:s3cret@127.0.0.1:{port}\", deny_exports: [\"t.secret.>\"], \
             deny_imports: [\"n.noise.>\"]"
        ),
        "",
    )
    .await;
    wait_linked(&hub, 1).await;
    check_for(WAIT, || async {
        bad.logs().contains("Authorization Violation")
    })
    .await;
    let connect = |user: &'static str| {
        let url = hub.url();
        async move {
            async_nats::ConnectOptions::with_user_and_password(user.into(), user.into())
                .connect(url)
                .await
                .expect("hub client")
        }
    };
    let (a, b, l) = (connect("a").await, connect("b").await, leaf.client().await);
    let mut in_a = a.subscribe("t.>").await.expect("sub A");
    let mut in_b = b.subscribe("t.>").await.expect("sub B");
    wait_interest(&a, &l).await;
    l.publish("t.secret.plan", Bytes::from_static(b"no"))
        .await
        .expect("pub");
    l.publish("t.report", Bytes::from_static(b"yes"))
        .await
        .expect("pub");
    l.flush().await.expect("flush");
    let got = next(&mut in_a).await;
    assert_eq!(
        (got.subject.as_str(), &got.payload[..]),
        ("t.report", &b"yes"[..]),
        "deny_exports kept t.secret.plan on the leaf"
    );
    let leaked = tokio::time::timeout(Duration::from_millis(500), in_b.next()).await;
    assert!(leaked.is_err(), "account B saw a message of account A");
    let mut on_leaf = l.subscribe("n.>").await.expect("leaf sub");
    wait_interest(&l, &a).await;
    a.publish("n.noise.x", Bytes::from_static(b"no"))
        .await
        .expect("pub");
    a.publish("n.news", Bytes::from_static(b"yes"))
        .await
        .expect("pub");
    a.flush().await.expect("flush");
    let mut subjects = Vec::new();
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(500), on_leaf.next()).await {
        subjects.push(m.subject.to_string());
    }
    assert_eq!(
        subjects,
        vec!["n.news".to_string()],
        "deny_imports kept n.noise.x out"
    );
}

/// A leaf with remotes to two hubs that are linked themselves closes a loop: its
/// loop-detection subject comes back over the other link, and the link is closed with
/// `Loop detected`.
#[tokio::test]
async fn a_leaf_loop_is_detected() {
    let a = hub(Rill, "a", "").await;
    let a_port = leaf_port(&a).await;
    let b = hub(
        Rill,
        "b",
        &format!(
            "reconnect: \"200ms\", remotes: [ {{ url: \"nats-leaf://127.0.0.1:{a_port}\" }} ]"
        ),
    )
    .await;
    let b_port = leaf_port(&b).await;
    wait_linked(&a, 1).await;
    let c = leaf(
        Rill,
        "c",
        &format!(
            "url: \"nats-leaf://127.0.0.1:{a_port}\" }}, {{ url: \"nats-leaf://127.0.0.1:{b_port}\""
        ),
        "",
    )
    .await;
    check_for(WAIT, || async {
        [&a, &b, &c]
            .iter()
            .any(|s| s.logs().contains("Loop detected"))
    })
    .await;
}

/// `/leafz`, the `/varz` leaf block and count, and the Prometheus gauge.
#[tokio::test]
async fn monitoring_shows_leaf_links() {
    let hub = hub(Rill, "hub", "").await;
    let port = leaf_port(&hub).await;
    let leaf = leaf(
        Rill,
        "edge",
        &format!("url: \"nats-leaf://127.0.0.1:{port}\""),
        "",
    )
    .await;
    wait_linked(&hub, 1).await;
    wait_linked(&leaf, 1).await;
    let get = |port: u16, path: &'static str| async move {
        let body = rill_tests::cluster::http_get(port, path)
            .await
            .expect("200");
        serde_json::from_str::<serde_json::Value>(&body).unwrap_or(serde_json::Value::String(body))
    };
    let leafz = get(hub.monitoring_port(), "/leafz?subs=1").await;
    let link = &leafz["leafs"][0];
    assert_eq!(link["name"], "edge");
    assert_eq!(link["is_spoke"], false);
    assert_eq!(link["account"], "$G");
    assert!(
        link["subscriptions_list"].as_array().is_some_and(|l| l
            .iter()
            .any(|s| s.as_str().is_some_and(|s| s.starts_with("$LDS.")))),
        "{leafz}"
    );
    let on_leaf = get(leaf.monitoring_port(), "/leafz").await;
    assert_eq!(on_leaf["leafs"][0]["is_spoke"], true);
    assert_eq!(on_leaf["leafs"][0]["name"], "hub");
    let varz = get(hub.monitoring_port(), "/varz").await;
    assert_eq!(varz["leafnodes"], 1);
    assert_eq!(varz["leaf"]["port"], port);
    let metrics = rill_tests::cluster::http_get(hub.monitoring_port(), "/metrics")
        .await
        .expect("metrics");
    assert!(metrics.contains("\nrill_leafnodes 1"), "{metrics}");
    assert!(hub.logs().contains("Leafnode connection created"));
    assert!(
        leaf.logs()
            .contains("Leafnode connection created for account: $G")
    );
}

/// A leaf client publishes steadily while the proxy between leaf and hub cuts the link:
/// the leaf reconnects, re-sends its interest, and the hub subscriber counts what
/// arrived. Core NATS is at-most-once: what was published while the link was down is
/// lost, everything published once it is back arrives, nothing twice.
#[tokio::test]
async fn a_cut_leaf_link_reconnects_and_interest_is_resent() {
    let hub = hub(Rill, "hub", "").await;
    let port = leaf_port(&hub).await;
    let proxy = FaultProxy::start(([127, 0, 0, 1], port).into()).await;
    let leaf = leaf(
        Rill,
        "edge",
        &format!("url: \"{}\"", proxy.url("nats-leaf")),
        "",
    )
    .await;
    wait_linked(&hub, 1).await;
    let (h, l) = (hub.client().await, leaf.client().await);
    // A subscriber on the leaf too: its interest must reach the hub again after the cut.
    let mut on_leaf = l.subscribe("down").await.expect("leaf sub");
    let mut on_hub = h.subscribe("data").await.expect("hub sub");
    wait_interest(&h, &l).await;
    wait_interest(&l, &h).await;
    let publisher = {
        let l = l.clone();
        tokio::spawn(async move {
            for i in 0..600u32 {
                l.publish("data", Bytes::from(i.to_be_bytes().to_vec()))
                    .await
                    .expect("pub");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            sync(&l).await;
        })
    };
    tokio::time::sleep(Duration::from_millis(600)).await;
    proxy.cut();
    check_for(WAIT, || async {
        leafnodes(&hub).await == 0 || proxy.open_connections() == 0
    })
    .await;
    wait_linked(&hub, 1).await;
    publisher.await.expect("publisher");
    let mut seen = std::collections::BTreeSet::new();
    let mut dupes = 0;
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(500), on_hub.next()).await {
        let n = u32::from_be_bytes(m.payload[..4].try_into().expect("4 bytes"));
        if !seen.insert(n) {
            dupes += 1;
        }
    }
    eprintln!(
        "leaf link cut while publishing: {} of 600 reached the hub",
        seen.len()
    );
    assert_eq!(dupes, 0, "no message twice");
    assert!(seen.contains(&599), "messages after the reconnect arrive");
    // The leaf's interest was re-sent on the new link.
    h.publish("down", Bytes::from_static(b"after"))
        .await
        .expect("pub");
    assert_eq!(
        next(&mut on_leaf).await.payload,
        Bytes::from_static(b"after")
    );
    assert!(
        leaf.logs()
            .matches("Leafnode connection created for account")
            .count()
            >= 2
    );
}

/// JetStream at the edge: the leaf runs JetStream in domain `edge`; a client of the hub
/// uses a JetStream context scoped to that domain (`$JS.edge.API.>`) to create a stream
/// on the leaf, publishes into it through the link, and reads it back.
#[tokio::test]
async fn hub_clients_reach_the_leafs_jetstream_domain() {
    let hub = hub(Rill, "hub", "").await;
    let port = leaf_port(&hub).await;
    let leaf = TestServer::start_with(ServerOpts {
        kind: Rill,
        jetstream: true,
        monitoring: true,
        config: Some(format!(
            "server_name: edge\njetstream {{ domain: edge }}\n\
             leafnodes {{ reconnect: \"200ms\", remotes: [ {{ url: \"nats-leaf://127.0.0.1:{port}\" }} ] }}\n"
        )),
        ..ServerOpts::default()
    })
    .await;
    wait_linked(&hub, 1).await;
    let h = hub.client().await;
    let l = leaf.client().await;
    // The hub knows the domain's API once probes from the hub reach the leaf.
    wait_interest(&l, &h).await;
    let js = async_nats::jetstream::with_domain(h.clone(), "edge");
    let stream = tokio::time::timeout(
        WAIT,
        js.create_stream(async_nats::jetstream::stream::Config {
            name: "SENSORS".into(),
            subjects: vec!["sensor.>".into()],
            ..Default::default()
        }),
    )
    .await
    .expect("stream create in time")
    .expect("stream created on the leaf");
    assert_eq!(stream.cached_info().config.name, "SENSORS");
    // Published on the leaf, and by the hub through the link (acked by the leaf).
    for i in 0..5 {
        l.publish(format!("sensor.{i}"), Bytes::from_static(b"21.5"))
            .await
            .expect("pub");
    }
    sync(&l).await;
    let ack = tokio::time::timeout(WAIT, async {
        js.publish("sensor.hub", Bytes::from_static(b"from hub"))
            .await
            .expect("publish")
            .await
    })
    .await
    .expect("ack in time")
    .expect("ack");
    assert_eq!(ack.stream, "SENSORS");
    let mut stream = js.get_stream("SENSORS").await.expect("stream info");
    let info = stream.info().await.expect("info");
    assert_eq!(info.state.messages, 6);
    let last = stream
        .get_last_raw_message_by_subject("sensor.hub")
        .await
        .expect("last message");
    assert_eq!(last.payload, Bytes::from_static(b"from hub"));
}

/// What a raw leaf connection reads until `until` appears or the link closes (`true`
/// when it closed).
async fn read_leaf(conn: &mut tokio::net::TcpStream, until: &str) -> (String, bool) {
    use tokio::io::AsyncReadExt;
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    let read = tokio::time::timeout(WAIT, async {
        loop {
            match conn.read(&mut buf).await {
                Ok(0) | Err(_) => return true,
                Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
            }
            if seen.contains(until) {
                return false;
            }
        }
    })
    .await;
    (seen, read.expect("the hub answered in time"))
}

/// A leaf that asks its hub for a literal subject the hub keeps to itself (the client
/// JetStream API of a hub in its own domain) gets a permissions violation and the link
/// is closed, as nats-server does; wildcard interest covering the same subjects is
/// accepted (filtered message by message), and so is ordinary interest.
async fn hub_closes_a_leaf_asking_for_its_jetstream_api(kind: ServerKind) {
    use tokio::io::AsyncWriteExt;
    let hub = TestServer::start_with(ServerOpts {
        kind,
        jetstream: true,
        monitoring: true,
        config: Some(
            "server_name: hub\njetstream { domain: hub }\nleafnodes { listen: \"127.0.0.1:-1\" }\n"
                .into(),
        ),
        ..ServerOpts::default()
    })
    .await;
    let port = leaf_port(&hub).await;
    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("leaf port");
    read_leaf(&mut conn, "\r\n").await;
    let connect =
        r#"CONNECT {"name":"probe","hub":false,"headers":true,"domain":"edge","jetstream":true}"#;
    conn.write_all(format!("{connect}\r\nPING\r\n").as_bytes())
        .await
        .expect("connect");
    assert!(read_leaf(&mut conn, "PONG").await.0.contains("PONG"));
    for allowed in ["sensor.>", "$JS.API.>", "$KV.B.>", "$JS.edge.API.INFO"] {
        conn.write_all(format!("LS+ {allowed}\r\nPING\r\n").as_bytes())
            .await
            .expect("LS+");
        let (seen, closed) = read_leaf(&mut conn, "PONG").await;
        assert!(!closed && !seen.contains("-ERR"), "{allowed}: {seen}");
    }
    conn.write_all(b"LS+ $JS.API.INFO\r\nPING\r\n")
        .await
        .expect("LS+");
    let (seen, closed) = read_leaf(&mut conn, "never").await;
    assert!(closed, "the link stays open: {seen}");
    assert_eq!(
        seen,
        "-ERR 'Permissions Violation for Subscription to \"$JS.API.INFO\"'\r\n"
    );
    check_for(WAIT, || async {
        let logs = hub.logs();
        logs.contains("Subscription Violation on \"$JS.API.INFO\" - Check other side configuration")
            && logs.contains("Leafnode connection closed: Protocol Violation")
    })
    .await;
}

#[tokio::test]
async fn a_rill_hub_closes_a_leaf_asking_for_its_jetstream_api() {
    hub_closes_a_leaf_asking_for_its_jetstream_api(Rill).await;
}

#[tokio::test]
async fn a_nats_server_hub_closes_a_leaf_asking_for_its_jetstream_api() {
    hub_closes_a_leaf_asking_for_its_jetstream_api(Nats).await;
}

/// A leaf link's op whose subject is not UTF-8 (nats-server passes such bytes on; rill's
/// subjects are text from every wire inward) is dropped alone and logged: the link stays
/// up, the interest and message around it flow, a hub client never sees the bad subject.
#[tokio::test]
async fn a_rill_hub_drops_a_leaf_op_whose_subject_is_not_text() {
    use tokio::io::AsyncWriteExt;
    let hub = TestServer::start_with(ServerOpts {
        config: Some("server_name: hub\nleafnodes { listen: \"127.0.0.1:-1\" }\n".into()),
        ..ServerOpts::kind(Rill)
    })
    .await;
    let client = hub.client().await;
    let mut bad = client.subscribe("bad.*").await.expect("subscribe");
    let mut seen = client.subscribe("good").await.expect("subscribe");
    sync(&client).await;
    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", leaf_port(&hub).await))
        .await
        .expect("leaf port");
    read_leaf(&mut conn, "\r\n").await;
    let connect = r#"CONNECT {"name":"probe","hub":false,"headers":true}"#;
    conn.write_all(format!("{connect}\r\nPING\r\n").as_bytes())
        .await
        .expect("connect");
    assert!(read_leaf(&mut conn, "PONG").await.0.contains("PONG"));
    conn.write_all(b"LS+ bad.\xff\r\nLMSG bad.\xfe 2\r\nno\r\nLMSG good 2\r\nok\r\nPING\r\n")
        .await
        .expect("ops");
    let (answer, closed) = read_leaf(&mut conn, "PONG").await;
    assert!(!closed && !answer.contains("-ERR"), "{answer}");
    let got = tokio::time::timeout(WAIT, seen.next())
        .await
        .expect("a message")
        .expect("subscription open");
    assert_eq!(&got.payload[..], b"ok");
    sync(&client).await;
    assert!(futures::FutureExt::now_or_never(bad.next()).is_none());
    check_for(WAIT, || async {
        let logs = hub.logs();
        logs.contains("Leafnode op dropped: Invalid Subject")
            && logs.contains("Leafnode op dropped: Invalid Publish Subject")
    })
    .await;
}
