//! Accounts, exports/imports and user permissions on a two-server cluster, against rill
//! and nats-server side by side: a message that crosses a route keeps its account, an
//! import carries it between accounts on the server where the importer's client is, a
//! user's publish and subscribe permissions hold whichever server the other side is on,
//! and interest that existed before the route came up (the imports' internal
//! subscriptions, made when the server starts) reaches the peer.

use std::time::Duration;

use async_nats::ConnectOptions;
use futures::StreamExt;
use rill_tests::ServerKind::{self, Nats, Rill};
use rill_tests::cluster::{Cluster, Node};
use rill_tests::sync;

/// How long a message may take to show up.
const WAIT: Duration = Duration::from_secs(5);

const ACCOUNTS: &str = r#"
accounts {
  A: {
    users: [
      { user: a, password: a }
      { user: limited, password: l, permissions: {
          publish: { allow: ["feed.>"], deny: ["feed.secret"] }
          subscribe: { allow: ["feed.>"], deny: ["feed.hidden"] } } }
    ]
    exports: [ { stream: "feed.>" }, { service: "svc.echo" } ]
  }
  B: {
    users: [ { user: b, password: b } ]
    imports: [
      { stream: { account: A, subject: "feed.>" } }
      { service: { account: A, subject: "svc.echo" } }
    ]
  }
}
"#;

async fn login(node: &Node, user: &str, password: &str) -> async_nats::Client {
    ConnectOptions::with_user_and_password(user.into(), password.into())
        .connect(node.url())
        .await
        .unwrap_or_else(|e| panic!("{user} on {}: {e}\n{}", node.name(), node.logs()))
}

/// Publishes `subject` from `tx` until `sub` sees it (the interest has crossed the
/// route), then takes the extra copies of the probe off `sub`.
async fn until_seen(tx: &async_nats::Client, subject: &str, sub: &mut async_nats::Subscriber) {
    let deadline = tokio::time::Instant::now() + WAIT * 3;
    loop {
        tx.publish(subject.to_string(), "probe".into())
            .await
            .expect("probe");
        if let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(100), sub.next()).await {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{subject} never arrived"
        );
    }
    tx.flush().await.expect("flush");
    drain(sub).await;
}

/// Takes what is waiting off `sub` (what arrives within a short grace period).
async fn drain(sub: &mut async_nats::Subscriber) {
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(300), sub.next()).await {}
}

/// The subjects `sub` receives up to and including `marker`.
async fn until_marker(sub: &mut async_nats::Subscriber, marker: &str) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        let msg = tokio::time::timeout(WAIT, sub.next())
            .await
            .unwrap_or_else(|_| panic!("no {marker} after {seen:?}"))
            .expect("subscription open");
        seen.push(msg.subject.to_string());
        if msg.subject.as_str() == marker {
            return seen;
        }
    }
}

/// What the clients of a two-server cluster of `kind` see.
async fn run(kind: ServerKind) -> Vec<String> {
    let cluster = Cluster::start_with(&[kind, kind], |mut spec| {
        spec.config = Some(ACCOUNTS.to_string());
        spec
    })
    .await;
    let (n1, n2) = (cluster.node(0), cluster.node(1));
    let (a1, a2) = (login(n1, "a", "a").await, login(n2, "a", "a").await);
    let (b1, b2) = (login(n1, "b", "b").await, login(n2, "b", "b").await);
    let (lim1, lim2) = (
        login(n1, "limited", "l").await,
        login(n2, "limited", "l").await,
    );
    let mut report = Vec::new();

    // A stream import: the importer's clients on both servers get A's message once each.
    let mut b1_feed = b1.subscribe("feed.>").await.expect("sub");
    let mut b2_feed = b2.subscribe("feed.>").await.expect("sub");
    let mut b1_private = b1.subscribe("private.>").await.expect("sub");
    sync(&b1).await;
    sync(&b2).await;
    until_seen(&a2, "feed.probe", &mut b1_feed).await;
    until_seen(&a2, "feed.probe", &mut b2_feed).await;
    drain(&mut b1_feed).await;
    a2.publish("private.x", "not exported".into())
        .await
        .expect("pub");
    a2.publish("feed.x", "from A on n2".into())
        .await
        .expect("pub");
    a2.publish("feed.end", "marker".into()).await.expect("pub");
    report.push(format!(
        "b on n1: {:?}",
        until_marker(&mut b1_feed, "feed.end").await
    ));
    report.push(format!(
        "b on n2: {:?}",
        until_marker(&mut b2_feed, "feed.end").await
    ));
    let leaked = tokio::time::timeout(Duration::from_millis(300), b1_private.next()).await;
    report.push(format!("b on n1 private: {}", leaked.is_ok()));

    // A service import: B's request on n1 reaches A's responder on n2 and comes back;
    // one from n2 too, and the responder sees each request once.
    let mut service = a2.subscribe("svc.echo").await.expect("sub");
    sync(&a2).await;
    let responder = {
        let a2 = a2.clone();
        tokio::spawn(async move {
            let mut seen = Vec::new();
            while let Ok(Some(req)) = tokio::time::timeout(WAIT, service.next()).await {
                if req.payload == "count" {
                    return seen;
                }
                seen.push(req.payload.clone());
                if let Some(reply) = req.reply {
                    let _ = a2.publish(reply, req.payload).await;
                }
            }
            seen
        })
    };
    let deadline = tokio::time::Instant::now() + WAIT * 3;
    let answer = loop {
        let asked = b1.request("svc.echo", "ping".into());
        match tokio::time::timeout(Duration::from_secs(1), asked).await {
            Ok(Ok(msg)) => break msg,
            _ => assert!(tokio::time::Instant::now() < deadline, "no service answer"),
        }
    };
    report.push(format!("service answer: {:?}", answer.payload));
    let local = tokio::time::timeout(WAIT, b2.request("svc.echo", "from n2".into())).await;
    report.push(format!(
        "service answer on n2: {:?}",
        local.map(|r| r.map(|m| m.payload))
    ));
    b1.request("svc.echo", "once".into()).await.expect("answer");
    a2.publish("svc.echo", "count".into()).await.expect("pub");
    let seen = responder.await.expect("responder");
    let tail: Vec<_> = seen.iter().skip_while(|p| *p != "from n2").collect();
    report.push(format!("requests seen by the responder: {tail:?}"));

    // Subscribe permissions: a denied subject is not delivered to an allowed wildcard.
    let mut lim1_feed = lim1.subscribe("feed.>").await.expect("sub");
    lim1.flush().await.expect("flush");
    until_seen(&a2, "feed.probe", &mut lim1_feed).await;
    a2.publish("feed.hidden", "denied".into())
        .await
        .expect("pub");
    a2.publish("feed.end", "marker".into()).await.expect("pub");
    report.push(format!(
        "limited on n1: {:?}",
        until_marker(&mut lim1_feed, "feed.end").await
    ));

    // Publish permissions: a denied publish on n2 reaches nobody on n1.
    let mut a1_feed = a1.subscribe("feed.>").await.expect("sub");
    sync(&a1).await;
    until_seen(&lim2, "feed.probe", &mut a1_feed).await;
    lim2.publish("feed.secret", "denied".into())
        .await
        .expect("pub");
    lim2.publish("feed.end", "marker".into())
        .await
        .expect("pub");
    report.push(format!(
        "a on n1: {:?}",
        until_marker(&mut a1_feed, "feed.end").await
    ));
    report
}

#[tokio::test]
async fn accounts_imports_and_permissions_hold_across_routes_as_nats_server() {
    let nats = run(Nats).await;
    let rill = run(Rill).await;
    assert_eq!(rill, nats, "rill vs nats-server");
    insta::assert_debug_snapshot!(rill);
}

/// A service import's response subject carries a random token, nothing derived from a
/// memory address: `_R_.<16 letters or digits>.<n>`, one token per import.
#[tokio::test]
async fn service_import_reply_subjects_carry_a_random_token() {
    let server = rill_tests::TestServer::with_config(Rill, ACCOUNTS).await;
    let node_login = |u: &str, p: &str| {
        ConnectOptions::with_user_and_password(u.into(), p.into()).connect(server.url())
    };
    let (a, b) = (
        node_login("a", "a").await.expect("a"),
        node_login("b", "b").await.expect("b"),
    );
    let mut service = a.subscribe("svc.echo").await.expect("sub");
    sync(&a).await;
    let mut replies = Vec::new();
    for _ in 0..2 {
        let b = b.clone();
        let asked = tokio::spawn(async move { b.request("svc.echo", "ping".into()).await });
        let req = tokio::time::timeout(WAIT, service.next())
            .await
            .expect("request in time")
            .expect("open");
        let reply = req.reply.expect("a reply subject");
        a.publish(reply.clone(), "pong".into())
            .await
            .expect("answer");
        let answer = tokio::time::timeout(WAIT, asked)
            .await
            .expect("answer in time");
        answer.expect("task").expect("answer reached the importer");
        replies.push(reply.to_string());
    }
    let parts: Vec<Vec<&str>> = replies.iter().map(|r| r.split('.').collect()).collect();
    for p in &parts {
        assert_eq!((p.len(), p[0]), (3, "_R_"), "{replies:?}");
        assert_eq!(p[1].len(), 16, "{replies:?}");
        assert!(
            p[1].chars().all(|c| c.is_ascii_alphanumeric()),
            "{replies:?}"
        );
    }
    assert_eq!(
        parts[0][1], parts[1][1],
        "one token per import: {replies:?}"
    );
    assert_ne!(parts[0][2], parts[1][2], "{replies:?}");
}

/// Subscribes `user` on `to`, waits for the interest to reach `from`, publishes 50 numbered
/// messages as `user` on `from` and checks they arrive complete and in order.
async fn in_order(from: &Node, to: &Node, user: &str) {
    let (tx, rx) = (login(from, user, user).await, login(to, user, user).await);
    let subject = format!("pool.{user}.{}", from.name());
    let mut sub = rx.subscribe(subject.clone()).await.expect("sub");
    sync(&rx).await;
    until_seen(&tx, &subject, &mut sub).await;
    for i in 0..50 {
        tx.publish(subject.clone(), i.to_string().into())
            .await
            .expect("publish");
    }
    for i in 0..50 {
        let msg = tokio::time::timeout(WAIT, sub.next())
            .await
            .expect("in time")
            .expect("open");
        assert_eq!(msg.payload, i.to_string(), "{user} from {}", from.name());
    }
}

/// Routes from `node` to the server called `peer`, from `/routez`.
async fn routes_to(node: &Node, peer: &str) -> usize {
    let routez = node.monitor("/routez").await;
    routez["routes"]
        .as_array()
        .map_or(0, |r| r.iter().filter(|r| r["remote_name"] == peer).count())
}

/// Route pooling (nats-server 2.10+, `pool_size: 3` by default): rill accepts the setting and
/// declines the pool, and nats-server then keeps one route to it for every account, as with
/// its own `pool_size: -1`; accounts A and B both travel it both ways, each in order.
#[tokio::test]
async fn a_pooling_nats_server_keeps_one_route_to_rill_for_every_account() {
    let conf = format!("{ACCOUNTS}\ncluster {{ pool_size: 3 }}\n");
    let cluster = Cluster::start_with(&[Rill, Nats], |mut spec| {
        spec.config = Some(conf.clone());
        spec
    })
    .await;
    let (rill, nats) = (cluster.node(0), cluster.node(1));
    for user in ["a", "b"] {
        in_order(rill, nats, user).await;
        in_order(nats, rill, user).await;
    }
    assert_eq!(routes_to(nats, "n1").await, 1, "{}", nats.logs());
    assert_eq!(routes_to(rill, "n2").await, 1, "{}", rill.logs());
}
