//! System requests in a cluster: a ping sent to one server of a two-server rill cluster
//! reaches both over the route, and both answer, each counting two active servers
//! (`rill server ping` counts them). An ordinary account's own requests: its connections
//! (`$SYS.REQ.ACCOUNT.PING.CONNZ`) are answered by every server, `$SYS.REQ.USER.INFO` only
//! by the requester's.

use std::collections::BTreeSet;
use std::time::Duration;

use futures::StreamExt;
use rill_tests::ServerKind::Rill;
use rill_tests::cluster::Cluster;
use serde_json::Value;

const CONFIG: &str = "accounts {\n  SYS { users [{user: sys, password: sys}] }\n  APP { users [{user: app, password: app}] }\n}\nsystem_account: SYS\n";

/// Every reply to one request on `subject` within `window`.
async fn replies(client: &async_nats::Client, subject: &str, window: Duration) -> Vec<Value> {
    let inbox = client.new_inbox();
    let mut replies = client
        .subscribe(inbox.clone())
        .await
        .expect("subscribe inbox");
    client
        .publish_with_reply(subject.to_string(), inbox, "".into())
        .await
        .expect("request");
    let mut all = Vec::new();
    let deadline = tokio::time::Instant::now() + window;
    while let Ok(Some(msg)) = tokio::time::timeout_at(deadline, replies.next()).await {
        all.push(serde_json::from_slice(&msg.payload).expect("JSON reply"));
    }
    all
}

/// The names of the servers that answer one `$SYS.REQ.SERVER.PING` within `window`, with
/// the `active_servers` each counts.
async fn ping(sys: &async_nats::Client, window: Duration) -> BTreeSet<(String, u64)> {
    let mut names = BTreeSet::new();
    for reply in replies(sys, "$SYS.REQ.SERVER.PING", window).await {
        let name = reply["server"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let active = reply["statsz"]["active_servers"]
            .as_u64()
            .unwrap_or_default();
        names.insert((name, active));
    }
    names
}

#[tokio::test]
async fn every_server_of_a_cluster_answers_a_ping() {
    let cluster = Cluster::start_with(&[Rill, Rill], |mut spec| {
        spec.config = Some(CONFIG.to_string());
        spec
    })
    .await;
    let n1 = cluster.node(0);
    let sys = async_nats::ConnectOptions::with_user_and_password("sys".into(), "sys".into())
        .connect(n1.url())
        .await
        .expect("sys connects");
    // The second server's interest in the ping subject travels over the route.
    let want: BTreeSet<(String, u64)> = [("n1".to_string(), 2), ("n2".to_string(), 2)].into();
    let mut got = BTreeSet::new();
    for _ in 0..20 {
        got = ping(&sys, Duration::from_millis(500)).await;
        if got == want {
            break;
        }
    }
    assert_eq!(got, want, "{}", cluster.node(1).logs());
    let cli = rill_tests::cli::Cli::new(n1.url());
    let out = cli
        .ok(&["--user", "sys", "--password", "sys", "server", "ping"])
        .await;
    assert!(out.contains("2 server(s) answered"), "{out}");
}

#[tokio::test]
async fn account_requests_in_a_cluster() {
    let cluster = Cluster::start_with(&[Rill, Rill], |mut spec| {
        spec.config = Some(CONFIG.to_string());
        spec
    })
    .await;
    let mut apps = Vec::new();
    for i in 0..2 {
        let app = async_nats::ConnectOptions::with_user_and_password("app".into(), "app".into())
            .connect(cluster.node(i).url())
            .await
            .expect("app connects");
        apps.push(app);
    }
    // Each server counts the one APP client it has, once the other's interest arrived.
    let want: BTreeSet<(String, u64)> = [("n1".to_string(), 1), ("n2".to_string(), 1)].into();
    let mut got = BTreeSet::new();
    for _ in 0..20 {
        let answers = replies(
            &apps[0],
            "$SYS.REQ.ACCOUNT.PING.CONNZ",
            Duration::from_millis(500),
        );
        got = answers
            .await
            .iter()
            .map(|r| {
                let name = r["server"]["name"].as_str().unwrap_or_default().to_string();
                (
                    name,
                    r["data"]["num_connections"].as_u64().unwrap_or_default(),
                )
            })
            .collect();
        if got == want {
            break;
        }
    }
    assert_eq!(got, want, "{}", cluster.node(1).logs());
    for (i, app) in apps.iter().enumerate() {
        let info = replies(app, "$SYS.REQ.USER.INFO", Duration::from_millis(500)).await;
        assert_eq!(info.len(), 1, "one answer: {info:?}");
        assert_eq!(info[0]["server"]["name"], format!("n{}", i + 1), "{info:?}");
        assert_eq!(info[0]["data"]["user"], "app", "{info:?}");
    }
}
