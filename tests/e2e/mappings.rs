//! Server and account `mappings {}`, run against rill and nats-server side by side: the
//! subject a `>` subscriber receives for each published subject, weighted splits,
//! per-account mappings, permissions on the mapped subject, mapped publishes into a
//! stream, a reload that replaces the mappings, and cluster-scoped destinations.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use rill_tests::{ServerKind, ServerOpts, TestServer};

use crate::reload_auth::reload;

const WAIT: Duration = Duration::from_secs(5);
const KINDS: [ServerKind; 2] = [ServerKind::Rill, ServerKind::Nats];

/// (source, destination, published subject, subject received), as nats-server 2.15.1 does.
const TABLE: &[(&str, &str, &str, &str)] = &[
    ("a1", "b1", "a1", "b1"),
    ("a2.*", "b2.$1", "a2.x", "b2.x"),
    (
        "a3.*.*",
        "b3.{{wildcard(2)}}.{{wildcard(1)}}",
        "a3.x.y",
        "b3.y.x",
    ),
    ("a4.>", "b4.>", "a4.x.y.z", "b4.x.y.z"),
    ("p1.*", "q1.{{partition(3,1)}}", "p1.customerid2", "q1.2"),
    ("p2.*.*", "q2.{{partition(10,1,2)}}", "p2.2.b", "q2.9"),
    ("p3.x", "q3.{{partition(5)}}", "p3.x", "q3.3"),
    ("s1.*", "t1.{{split(1,-)}}", "s1.-a--b-", "t1.a.b"),
    (
        "sl.*",
        "tl.{{SplitFromLeft(1,4)}}",
        "sl.1234567",
        "tl.1234.567",
    ),
    (
        "sr.*",
        "tr.{{splitFromRight(1,4)}}",
        "sr.1234567",
        "tr.123.4567",
    ),
    (
        "cl.*",
        "ul.{{sliceFromLeft(1,2)}}",
        "cl.1234567",
        "ul.12.34.56.7",
    ),
    (
        "cr.*",
        "ur.{{sliceFromRight(1,2)}}",
        "cr.1234567",
        "ur.1.23.45.67",
    ),
    ("lf.*", "mf.{{left(1,3)}}", "lf.abcdef", "mf.abc"),
    ("rt.*", "mt.{{right(1,3)}}", "rt.abcdef", "mt.def"),
    ("e1.*", "f1.$0", "e1.x", "f1.e1"),
    ("w1", "w1.{{wildcard(1)}}x", "w1", "w1.{{wildcard(1)}}x"),
];

fn table_config() -> String {
    let mut c = String::from("mappings {\n");
    for (src, dest, _, _) in TABLE {
        if !src.starts_with('w') {
            c.push_str(&format!("  \"{src}\": \"{dest}\"\n"));
        }
    }
    c.push_str("  \"w1\": \"w1.{{wildcard(1)}}x\"\n}\n");
    c
}

/// A `>` subscription, ready once it got a probe message back.
async fn all(client: &async_nats::Client) -> async_nats::Subscriber {
    let mut sub = client.subscribe(">").await.expect("subscribe");
    client
        .publish("_probe", "".into())
        .await
        .expect("publish probe");
    let m = tokio::time::timeout(WAIT, sub.next())
        .await
        .expect("probe in time");
    assert_eq!(m.expect("open").subject.as_str(), "_probe");
    sub
}

/// Publishes each subject and returns the subject a `>` subscriber got for it.
async fn received(client: &async_nats::Client, subjects: &[&str]) -> Vec<String> {
    let mut sub = all(client).await;
    let mut out = Vec::new();
    for s in subjects {
        client
            .publish(s.to_string(), "x".into())
            .await
            .expect("publish");
        let m = tokio::time::timeout(WAIT, sub.next())
            .await
            .expect("delivered in time")
            .expect("open");
        out.push(m.subject.to_string());
    }
    out
}

#[tokio::test]
async fn every_mapping_function_maps_as_nats_server() {
    let config = table_config();
    let subjects: Vec<&str> = TABLE.iter().map(|r| r.2).collect();
    let want: Vec<&str> = TABLE.iter().map(|r| r.3).collect();
    for kind in KINDS {
        let server = TestServer::with_config(kind, &config).await;
        let client = server.client().await;
        assert_eq!(received(&client, &subjects).await, want, "{kind:?}");
    }
}

#[tokio::test]
async fn an_invalid_mapping_stops_the_server_with_nats_servers_reason() {
    for kind in KINDS {
        let dir = tempfile::tempdir().expect("tmp");
        let conf = dir.path().join("bad.conf");
        std::fs::write(&conf, "mappings { \"foo.*\": \"bar.$2\" }\n").expect("write");
        let out = std::process::Command::new(kind.bin())
            .args(["-c", conf.to_str().expect("utf-8 path"), "-p", "-1"])
            .output()
            .expect("run server");
        let text = String::from_utf8_lossy(&out.stderr).to_string()
            + &String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success(), "{kind:?}: {text}");
        assert!(
            text.contains(
                "Error adding mapping for \"foo.*\" to \"bar.$2\" : invalid mapping \
                 destination: wildcard index out of range in $2: [2]"
            ),
            "{kind:?}: {text}"
        );
    }
}

/// How many of `n` publishes on `subject` arrived on each subject.
async fn spread(client: &async_nats::Client, subject: &str, n: usize) -> BTreeMap<String, usize> {
    let mut sub = all(client).await;
    for _ in 0..n {
        client
            .publish(subject.to_owned(), "x".into())
            .await
            .expect("publish");
    }
    let mut counts = BTreeMap::new();
    for _ in 0..n {
        let m = tokio::time::timeout(WAIT, sub.next())
            .await
            .expect("delivered in time")
            .expect("open");
        *counts.entry(m.subject.to_string()).or_insert(0) += 1;
    }
    counts
}

#[tokio::test]
async fn weighted_mappings_split_traffic_and_keep_the_remainder() {
    let config = "mappings {\n  ab: [ {destination: ab.v1, weight: 50%}, {destination: ab.v2, weight: 50%} ]\n  \
                  canary: [ {destination: canary.new, weight: 20%} ]\n  \
                  full: { destination: full.v2, weight: 100% }\n}\n";
    for kind in KINDS {
        let server = TestServer::with_config(kind, config).await;
        let client = server.client().await;
        let ab = spread(&client, "ab", 400).await;
        let keys: Vec<&String> = ab.keys().collect();
        assert_eq!(keys, ["ab.v1", "ab.v2"], "{kind:?}: {ab:?}");
        let canary = spread(&client, "canary", 400).await;
        let keys: Vec<&String> = canary.keys().collect();
        // The 80% remainder stays on the published subject.
        assert_eq!(keys, ["canary", "canary.new"], "{kind:?}: {canary:?}");
        assert!(
            canary["canary"] > canary["canary.new"],
            "{kind:?}: {canary:?}"
        );
        let full = spread(&client, "full", 20).await;
        assert_eq!(full.get("full.v2"), Some(&20), "{kind:?}: {full:?}");
    }
}

const ACCOUNTS: &str = "mappings { g: g.mapped }\n\
    accounts {\n  A { users: [ {user: a, password: a, permissions: { publish: [\"ok.>\", \"_probe\"] } } ]\n    \
    mappings { \"in.*\": \"ok.$1\", \"denied\": \"no.thanks\" } }\n  \
    B { users: [ {user: b, password: b} ] }\n}\n\
    no_auth_user: b\n";

async fn login(server: &TestServer, user: &str) -> async_nats::Client {
    async_nats::ConnectOptions::with_user_and_password(user.into(), user.into())
        .connect(server.url())
        .await
        .expect("connect")
}

#[tokio::test]
async fn account_mappings_apply_to_their_account_and_permissions_see_the_mapped_subject() {
    for kind in KINDS {
        let server = TestServer::with_config(kind, ACCOUNTS).await;
        let a = login(&server, "a").await;
        // `in.x` is not in a's publish permissions, its mapped `ok.x` is.
        assert_eq!(received(&a, &["in.x"]).await, ["ok.x"], "{kind:?}");
        // `denied` maps to a subject a may not publish: nothing arrives.
        let mut sub = all(&a).await;
        a.publish("denied", "x".into()).await.expect("publish");
        a.publish("ok.after", "x".into()).await.expect("publish");
        let m = tokio::time::timeout(WAIT, sub.next())
            .await
            .expect("in time");
        assert_eq!(m.expect("open").subject.as_str(), "ok.after", "{kind:?}");
        // The top-level mappings belong to $G, not to account B.
        let b = login(&server, "b").await;
        assert_eq!(received(&b, &["g"]).await, ["g"], "{kind:?}");
    }
}

#[tokio::test]
async fn a_mapped_publish_is_stored_under_the_mapped_subject() {
    for kind in KINDS {
        let server = TestServer::start_with(ServerOpts {
            kind,
            config: Some(
                "mappings { \"orders.*\": \"orders.{{partition(3,1)}}.{{wildcard(1)}}\" }\n".into(),
            ),
            ..ServerOpts::default()
        })
        .await;
        let js = server.jetstream().await;
        js.create_stream(async_nats::jetstream::stream::Config {
            name: "ORDERS".into(),
            subjects: vec!["orders.*.*".into()],
            ..Default::default()
        })
        .await
        .expect("create stream");
        let ack = js
            .publish("orders.customerid2", "x".into())
            .await
            .expect("publish");
        assert_eq!(ack.await.expect("ack").sequence, 1, "{kind:?}");
        let stream = js.get_stream("ORDERS").await.expect("stream");
        let m = stream.get_raw_message(1).await.expect("message 1");
        assert_eq!(m.subject.as_str(), "orders.2.customerid2", "{kind:?}");
    }
}

#[tokio::test]
async fn a_reload_replaces_the_mappings() {
    for kind in KINDS {
        let server = TestServer::with_config(kind, "mappings { m: m.one }\n").await;
        let client = server.client().await;
        assert_eq!(received(&client, &["m"]).await, ["m.one"], "{kind:?}");
        reload(&server, "mappings { m: m.two, n: n.new }\n").await;
        assert_eq!(
            received(&client, &["m", "n"]).await,
            ["m.two", "n.new"],
            "{kind:?}"
        );
        reload(&server, "mappings {}\n").await;
        assert_eq!(received(&client, &["m"]).await, ["m"], "{kind:?}");
    }
}

/// Cluster-scoped destinations (`cluster:` in a mapping's weighted list): a server uses
/// the destinations of its own cluster when the mapping has any, else the ones without
/// a cluster; a mapping with none for its cluster leaves the subject as it is. Recorded
/// from nats-server 2.15.1 and checked on both, for servers in clusters `east`, `west`
/// and `north` and one outside any cluster.
#[tokio::test]
async fn cluster_scoped_mappings_follow_the_servers_cluster() {
    let mappings = "mappings {\n\
        \"orders\": [ {destination: \"orders.east\", weight: 100%, cluster: \"east\"},\n\
                      {destination: \"orders.west\", weight: 100%, cluster: \"west\"},\n\
                      {destination: \"orders.any\", weight: 100%} ]\n\
        \"jobs\": [ {destination: \"jobs.east\", weight: 100%, cluster: \"east\"} ]\n\
        }\n";
    let subjects = ["orders", "jobs"];
    let want = [
        ("east", ["orders.east", "jobs.east"]),
        ("west", ["orders.west", "jobs"]),
        ("north", ["orders.any", "jobs"]),
        ("", ["orders.any", "jobs"]),
    ];
    for kind in KINDS {
        for (cluster, expected) in want {
            let block = match cluster {
                "" => String::new(),
                name => format!("cluster {{ name: {name}, listen: \"127.0.0.1:-1\" }}\n"),
            };
            let server = TestServer::with_config(kind, &format!("{block}{mappings}")).await;
            let got = received(&server.client().await, &subjects).await;
            assert_eq!(got, expected, "{kind:?} in cluster {cluster:?}");
        }
    }
}
