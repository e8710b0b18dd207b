//! Leaf nodes under a hub in operator mode, in every pairing of rill and nats-server
//! 2.15.1: a leaf whose remote has `credentials` (a `.creds` file generated here) is
//! bound to its user's account, keeps to the user JWT's permissions (publish: what the
//! leaf may send into the hub; subscribe: what the hub sends it), and the account JWT's
//! `limits.leaf` caps the account's leaf connections.
//!
//! Observed on nats-server and required of rill: the hub's `/leafz` shows the link in
//! the user's account; of what each side publishes, only what the permissions allow
//! arrives; a second leaf over `limits.leaf` 1 gets `-ERR 'maximum account active
//! connections exceeded'` (the leaf logs `Leafnode Error '…'`, the hub `Leafnode
//! connection closed: Maximum Account Connections Exceeded`); a leaf without
//! credentials, or whose user may not connect as a leaf node, is closed with
//! `Authentication Failure`.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use rill_tests::ServerKind::{self, Nats, Rill};
use rill_tests::{ServerOpts, TestServer, check_for};
use serde_json::{Value, json};

use crate::jwt_auth::Setup;
use crate::leaf::{WAIT, leaf, leaf_port, leafnodes, wait_linked};

/// What the leaf publishes, and the one of them its user may send.
const LEAF_SENDS: [&str; 3] = ["a.x", "c.x", "b.x"];
/// What the hub publishes, and the one of them the leaf's user may receive.
const HUB_SENDS: [&str; 4] = ["b.y", "b.no", "c.y", "a.y"];

/// What one pairing shows.
#[derive(Debug, PartialEq)]
struct Seen {
    /// The hub's `/leafz` puts the link in the leaf user's account.
    bound_to_the_users_account: bool,
    /// What hub clients received of [`LEAF_SENDS`].
    hub_got: Vec<String>,
    /// What leaf clients received of [`HUB_SENDS`].
    leaf_got: Vec<String>,
    /// The hub's close reason for each refused leaf: over the limit, no credentials,
    /// a user limited to standard connections.
    refused: Vec<&'static str>,
    /// Leaf links on the hub at the end.
    links_after: u64,
}

/// A hub of `kind` in operator mode (APP allows one leaf connection).
pub(crate) async fn hub(kind: ServerKind, setup: &Setup) -> TestServer {
    TestServer::start_with(ServerOpts {
        kind,
        jetstream: false,
        monitoring: true,
        config: Some(format!(
            "server_name: hub\n{}leafnodes {{ listen: \"127.0.0.1:-1\" }}\n",
            setup.config()
        )),
        ..ServerOpts::default()
    })
    .await
}

/// A leaf of `kind` named `name` dialling `hub` with the creds file `creds`, if any.
pub(crate) async fn leaf_of(
    kind: ServerKind,
    name: &str,
    hub: &TestServer,
    creds: Option<&Path>,
) -> TestServer {
    let port = leaf_port(hub).await;
    let creds = creds.map_or_else(String::new, |p| {
        format!(", credentials: \"{}\"", p.display())
    });
    leaf(
        kind,
        name,
        &format!("url: \"nats-leaf://127.0.0.1:{port}\"{creds}"),
        "",
    )
    .await
}

pub(crate) fn write_creds(
    dir: &Path,
    name: &str,
    user: &rill_tests::jwt::User,
) -> std::path::PathBuf {
    let path = dir.join(format!("{name}.creds"));
    std::fs::write(&path, user.creds()).expect("write creds");
    path
}

/// Subscribes `subjects` and the markers `[end, ready]` on `sub_side` and publishes
/// `ready` from `pub_side` until it arrives: interest travels in order over the link,
/// so the other subscriptions are known beyond it too.
async fn subscribe_all(
    sub_side: &async_nats::Client,
    pub_side: &async_nats::Client,
    subjects: &[&str],
    [end, ready]: [&str; 2],
) -> futures::stream::SelectAll<async_nats::Subscriber> {
    let mut subs = futures::stream::SelectAll::new();
    for subject in subjects.iter().chain([&end, &ready]) {
        subs.push(sub_side.subscribe(subject.to_string()).await.expect("sub"));
    }
    sub_side.flush().await.expect("flush");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        pub_side
            .publish(ready.to_string(), Bytes::new())
            .await
            .expect("pub");
        pub_side.flush().await.expect("flush");
        match tokio::time::timeout(Duration::from_millis(100), subs.next()).await {
            Ok(Some(m)) if m.subject.as_str() == ready => break,
            _ => assert!(
                tokio::time::Instant::now() < deadline,
                "{ready} never crossed"
            ),
        }
    }
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(50), subs.next()).await {}
    subs
}

/// Publishes `subjects` then `end` from `pub_side`; the subjects `subs` received before
/// `end` (which follows them over the same link).
async fn exchange(
    pub_side: &async_nats::Client,
    subs: &mut futures::stream::SelectAll<async_nats::Subscriber>,
    subjects: &[&str],
    end: &str,
) -> Vec<String> {
    for subject in subjects.iter().chain([&end]) {
        pub_side
            .publish(subject.to_string(), Bytes::from_static(b"m"))
            .await
            .expect("pub");
    }
    pub_side.flush().await.expect("flush");
    let mut got = Vec::new();
    loop {
        let m = tokio::time::timeout(WAIT, subs.next())
            .await
            .expect("the end marker")
            .expect("open");
        if m.subject.as_str() == end {
            return got;
        }
        got.push(m.subject.to_string());
    }
}

/// The hub's account of its one leaf link.
async fn leaf_account(hub: &TestServer) -> Option<String> {
    let body = rill_tests::cluster::http_get(hub.monitoring_port(), "/leafz").await?;
    let leafz: Value = serde_json::from_str(&body).ok()?;
    leafz["leafs"][0]["account"].as_str().map(str::to_string)
}

/// How many times the hub logged a leaf closed with `reason`.
pub(crate) fn closed_with(hub: &TestServer, reason: &str) -> usize {
    let line = format!("Leafnode connection closed: {reason}");
    hub.logs().matches(&line).count()
}

/// Starts a leaf the hub must refuse and waits for the hub to close it with `reason`.
async fn refused(
    hub: &TestServer,
    leaf: ServerKind,
    creds: Option<&Path>,
    reason: &'static str,
) -> (&'static str, TestServer) {
    let before = closed_with(hub, reason);
    let refused = leaf_of(leaf, "refused", hub, creds).await;
    check_for(WAIT, || {
        std::future::ready(closed_with(hub, reason) > before)
    })
    .await;
    (reason, refused)
}

async fn pairing(hub_kind: ServerKind, leaf_kind: ServerKind) -> Seen {
    let setup = Setup::new(json!({"limits": {"leaf": 1}}));
    let hub = hub(hub_kind, &setup).await;
    let dir = tempfile::tempdir().expect("dir");
    let perms = json!({"pub": {"allow": ["a.>"]}, "sub": {"allow": ["b.>"], "deny": ["b.no"]}});
    let edge = write_creds(dir.path(), "edge", &setup.app.user("edge", perms));
    let app = write_creds(dir.path(), "app", &setup.app.user("app", json!({})));
    let leaf = leaf_of(leaf_kind, "edge", &hub, Some(&edge)).await;
    wait_linked(&hub, 1).await;
    let bound = leaf_account(&hub).await == Some(setup.app.public());
    let h = async_nats::ConnectOptions::with_credentials_file(&app)
        .await
        .expect("read creds")
        .connect(hub.url())
        .await
        .expect("hub client");
    let l = leaf.client().await;
    let mut at_hub = subscribe_all(&h, &l, &LEAF_SENDS, ["a.end", "a.ready"]).await;
    let mut at_leaf = subscribe_all(&l, &h, &HUB_SENDS, ["b.end", "b.ready"]).await;
    let hub_got = exchange(&l, &mut at_hub, &LEAF_SENDS, "a.end").await;
    let leaf_got = exchange(&h, &mut at_leaf, &HUB_SENDS, "b.end").await;

    let over = "Maximum Account Connections Exceeded";
    let (over, second) = refused(&hub, leaf_kind, Some(&edge), over).await;
    let error = "Leafnode Error 'maximum account active connections exceeded'";
    check_for(WAIT, || std::future::ready(second.logs().contains(error))).await;
    drop(second);
    let standard = setup
        .app
        .user("std", json!({"allowed_connection_types": ["STANDARD"]}));
    let standard = write_creds(dir.path(), "std", &standard);
    let (none, _none) = refused(&hub, leaf_kind, None, "Authentication Failure").await;
    let (std, _std) = refused(&hub, leaf_kind, Some(&standard), "Authentication Failure").await;
    Seen {
        bound_to_the_users_account: bound,
        hub_got,
        leaf_got,
        refused: vec![over, none, std],
        links_after: leafnodes(&hub).await,
    }
}

/// Every pairing of hub and leaf sees what nats-server under nats-server sees, which
/// is what the permissions and limits say.
#[tokio::test]
async fn jwt_leafs_bind_accounts_keep_permissions_and_limits_as_nats_server() {
    let reference = pairing(Nats, Nats).await;
    assert_eq!(
        reference,
        Seen {
            bound_to_the_users_account: true,
            hub_got: vec!["a.x".into()],
            leaf_got: vec!["b.y".into()],
            refused: vec![
                "Maximum Account Connections Exceeded",
                "Authentication Failure",
                "Authentication Failure"
            ],
            links_after: 1,
        }
    );
    for (hub, leaf) in [(Rill, Rill), (Rill, Nats), (Nats, Rill)] {
        let seen = pairing(hub, leaf).await;
        assert_eq!(seen, reference, "{hub:?} hub, {leaf:?} leaf");
    }
}
