//! Core messaging through real async-nats clients: wildcards, queue groups,
//! auto-unsubscribe, echo, headers, request/reply and no-responders.

use std::collections::HashMap;
use std::time::Duration;

use async_nats::{ConnectOptions, HeaderMap};
use futures::StreamExt;
use rill_tests::{TestServer, sync};

const WAIT: Duration = Duration::from_secs(5);

async fn next_payload(sub: &mut async_nats::Subscriber) -> String {
    let msg = tokio::time::timeout(WAIT, sub.next())
        .await
        .expect("message in time")
        .expect("subscription open");
    String::from_utf8_lossy(&msg.payload).into_owned()
}

async fn nothing_more(sub: &mut async_nats::Subscriber) {
    let extra = tokio::time::timeout(Duration::from_millis(200), sub.next()).await;
    assert!(extra.is_err(), "unexpected extra message: {extra:?}");
}

#[tokio::test]
async fn wildcards_route_to_every_matching_subscription() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let mut exact = client.subscribe("orders.eu.new").await.expect("sub");
    let mut star = client.subscribe("orders.*.new").await.expect("sub");
    let mut tail = client.subscribe("orders.>").await.expect("sub");
    let mut other = client.subscribe("orders.*").await.expect("sub");
    sync(&client).await;

    client
        .publish("orders.eu.new", "a".into())
        .await
        .expect("pub");
    client
        .publish("orders.us.new.rush", "b".into())
        .await
        .expect("pub");
    client.flush().await.expect("flush");

    assert_eq!(next_payload(&mut exact).await, "a");
    assert_eq!(next_payload(&mut star).await, "a");
    assert_eq!(next_payload(&mut tail).await, "a");
    assert_eq!(next_payload(&mut tail).await, "b");
    nothing_more(&mut exact).await;
    nothing_more(&mut star).await;
    nothing_more(&mut other).await;
}

#[tokio::test]
async fn queue_group_delivers_each_message_to_exactly_one_member() {
    let server = TestServer::start().await;
    let publisher = server.client().await;
    let mut members = Vec::new();
    for _ in 0..3 {
        let c = server.client().await;
        let sub = c
            .queue_subscribe("jobs.>", "workers".into())
            .await
            .expect("qsub");
        sync(&c).await;
        members.push((c, sub));
    }
    let client = server.client().await;
    let mut plain = client.subscribe("jobs.*").await.expect("sub");
    sync(&client).await;

    const N: usize = 300;
    for i in 0..N {
        publisher
            .publish("jobs.work", i.to_string().into())
            .await
            .expect("pub");
    }
    publisher.flush().await.expect("flush");

    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut per_member = Vec::new();
    for (_, sub) in &mut members {
        let mut n = 0;
        while let Ok(Some(msg)) = tokio::time::timeout(Duration::from_millis(300), sub.next()).await
        {
            *seen
                .entry(String::from_utf8_lossy(&msg.payload).into_owned())
                .or_default() += 1;
            n += 1;
        }
        per_member.push(n);
    }
    assert_eq!(seen.len(), N, "every message delivered to the group");
    assert!(seen.values().all(|&c| c == 1), "no message delivered twice");
    assert!(
        per_member.iter().all(|&n| n > 0),
        "all members got work: {per_member:?}"
    );
    for _ in 0..N {
        next_payload(&mut plain).await;
    }
}

#[tokio::test]
async fn auto_unsubscribe_stops_after_max_deliveries() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let mut sub = client.subscribe("ticks").await.expect("sub");
    sub.unsubscribe_after(3).await.expect("unsub after");
    sync(&client).await;
    for i in 0..10 {
        client
            .publish("ticks", i.to_string().into())
            .await
            .expect("pub");
    }
    client.flush().await.expect("flush");
    let mut got = Vec::new();
    while let Ok(Some(msg)) = tokio::time::timeout(Duration::from_millis(500), sub.next()).await {
        got.push(String::from_utf8_lossy(&msg.payload).into_owned());
    }
    assert_eq!(got, ["0", "1", "2"]);
}

#[tokio::test]
async fn echo_off_suppresses_own_messages() {
    let server = TestServer::start().await;
    let quiet = ConnectOptions::new()
        .no_echo()
        .connect(server.url())
        .await
        .expect("connect");
    let other = server.client().await;
    let mut own = quiet.subscribe("chat").await.expect("sub");
    let mut theirs = other.subscribe("chat").await.expect("sub");
    sync(&quiet).await;
    sync(&other).await;
    quiet
        .publish("chat", "from quiet".into())
        .await
        .expect("pub");
    quiet.flush().await.expect("flush");
    assert_eq!(next_payload(&mut theirs).await, "from quiet");
    nothing_more(&mut own).await;
    other
        .publish("chat", "from other".into())
        .await
        .expect("pub");
    other.flush().await.expect("flush");
    assert_eq!(next_payload(&mut own).await, "from other");
}

#[tokio::test]
async fn headers_travel_end_to_end() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let mut sub = client.subscribe("with.headers").await.expect("sub");
    sync(&client).await;
    let mut headers = HeaderMap::new();
    headers.insert("Trace-Id", "abc-123");
    headers.append("Tag", "one");
    headers.append("Tag", "two");
    client
        .publish_with_headers("with.headers", headers, "body".into())
        .await
        .expect("hpub");
    client.flush().await.expect("flush");
    let msg = tokio::time::timeout(WAIT, sub.next())
        .await
        .expect("in time")
        .expect("msg");
    let got = msg.headers.expect("headers delivered");
    assert_eq!(got.get("Trace-Id").map(|v| v.as_str()), Some("abc-123"));
    let tags: Vec<&str> = got.get_all("Tag").map(|v| v.as_str()).collect();
    assert_eq!(tags, ["one", "two"]);
    assert_eq!(&msg.payload[..], b"body");
}

#[tokio::test]
async fn request_reply_and_no_responders() {
    let server = TestServer::start().await;
    let service = server.client().await;
    let mut requests = service.subscribe("svc.echo").await.expect("sub");
    sync(&service).await;
    let responder = tokio::spawn(async move {
        while let Some(req) = requests.next().await {
            let reply = req.reply.expect("reply subject");
            let body = format!("echo: {}", String::from_utf8_lossy(&req.payload));
            service.publish(reply, body.into()).await.expect("reply");
            service.flush().await.expect("flush");
        }
    });
    let client = server.client().await;
    let answer = client
        .request("svc.echo", "hi".into())
        .await
        .expect("request");
    assert_eq!(&answer.payload[..], b"echo: hi");

    let err = client
        .request("svc.nobody", "hi".into())
        .await
        .expect_err("no responders");
    assert_eq!(err.kind(), async_nats::RequestErrorKind::NoResponders);
    responder.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_connections() {
    let server = TestServer::start().await;
    let subscriber = server.client().await;
    let mut sub = subscriber.subscribe("fan.in").await.expect("sub");
    sync(&subscriber).await;
    let mut tasks = Vec::new();
    for i in 0..1000 {
        let url = server.url();
        tasks.push(tokio::spawn(async move {
            let c = async_nats::connect(url).await.expect("connect");
            c.publish("fan.in", i.to_string().into())
                .await
                .expect("pub");
            c.flush().await.expect("flush");
            c
        }));
    }
    let mut clients = Vec::new();
    for t in tasks {
        clients.push(t.await.expect("task"));
    }
    let mut n = 0;
    while n < 1000 {
        tokio::time::timeout(WAIT, sub.next())
            .await
            .expect("message in time")
            .expect("open");
        n += 1;
    }
    assert_eq!(n, 1000);
}
