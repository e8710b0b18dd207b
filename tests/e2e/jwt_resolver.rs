//! The directory resolver beyond updates: `$SYS.REQ.CLAIMS.DELETE` (what `nsc` sends to
//! prune accounts), lookups of unknown accounts, claim updates and deletes reaching every
//! server of a cluster (each server's resolver hears the request over the routes), and
//! the default `$SYS` system account outside operator mode, and a full resolver that
//! missed an update while down catching up (`$SYS.REQ.CLAIMS.PACK`). Side by side with
//! nats-server 2.15.1.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use rill_tests::cluster::{Cluster, Node};
use rill_tests::jwt::{Account, Operator, User, now, sign};
use rill_tests::{ServerKind, TestServer};
use serde_json::{Value, json};

use crate::jwt_auth::{Setup, hold};

const WAIT: Duration = Duration::from_secs(5);
const KINDS: [ServerKind; 2] = [ServerKind::Rill, ServerKind::Nats];

/// A full-resolver config over `dir` with the system account preloaded.
pub(crate) fn full_config(setup: &Setup, dir: &Path, extra: &str) -> String {
    let op = setup
        .operator
        .jwt(json!({"system_account": setup.sys.public()}));
    let sys_jwt = setup.operator.account_jwt(&setup.sys, json!({}));
    format!(
        "operator: {op}\nsystem_account: {sys}\nresolver {{ type: full, dir: \"{}\"{extra} }}\nresolver_preload: {{ {sys}: {sys_jwt} }}\n",
        dir.display(),
        sys = setup.sys.public(),
    )
}

/// Connects with a user JWT, signing the nonce with its seed.
pub(crate) async fn connect_user(url: String, user: &User) -> Result<async_nats::Client, String> {
    let key = std::sync::Arc::new(
        nkeys::KeyPair::from_seed(&user.key.seed().expect("seed")).expect("seed"),
    );
    async_nats::ConnectOptions::with_jwt(user.jwt.clone(), move |nonce| {
        let key = key.clone();
        async move { key.sign(&nonce).map_err(async_nats::AuthError::new) }
    })
    .connect(url)
    .await
    .map_err(|e| e.to_string())
}

/// A request's JSON reply without the `server` object (it names the server).
async fn ask(client: &async_nats::Client, subject: String, body: String) -> Value {
    let msg = tokio::time::timeout(WAIT, client.request(subject, body.into()))
        .await
        .expect("reply in time")
        .expect("reply");
    let mut v: Value = serde_json::from_slice(&msg.payload).expect("JSON reply");
    if let Some(m) = v.as_object_mut() {
        m.remove("server");
    }
    v
}

/// A claims delete request for `accounts`, as `nsc` makes it: a generic JWT the
/// operator signs about `sub`.
fn delete_request(signer: &nkeys::KeyPair, sub: &str, nats: Value) -> String {
    sign(signer, json!({"sub": sub, "nats": nats}))
}

/// `reply` with each key of `roles` replaced by its role's name.
fn by_role(reply: Value, roles: &[(String, &str)]) -> Value {
    let mut text = reply.to_string();
    for (key, role) in roles {
        text = text.replace(key.as_str(), role);
    }
    serde_json::from_str(&text).expect("still JSON")
}

/// `$SYS.REQ.CLAIMS.DELETE`: refused requests name nats-server's reason; an accepted one
/// forgets the account (its file renamed to `.jwt.deleted`), ends its live connections
/// with `Account Authentication Expired` and refuses its users; lookups then answer
/// empty. A resolver without `allow_delete` refuses. Replies snapshot, equal for both.
#[tokio::test]
async fn claims_delete_matches_nats_server() {
    let mut replies = Vec::new();
    for kind in KINDS {
        let setup = Setup::new(json!({}));
        let dir = tempfile::tempdir().expect("tempdir");
        let server = TestServer::with_config(
            kind,
            &full_config(&setup, dir.path(), ", allow_delete: true"),
        )
        .await;
        let sys = connect_user(server.url(), &setup.sys.user("sys", json!({})))
            .await
            .expect("sys connects");
        let late = Account::new("LATE");
        let late_jwt = setup.operator.account_jwt(&late, json!({}));
        let reply = ask(&sys, "$SYS.REQ.CLAIMS.UPDATE".into(), late_jwt).await;
        assert_eq!(reply["data"]["code"], json!(200), "{kind:?}: {reply}");
        let user = late.user("u", json!({}));
        let mut live = hold(&server, &user).await;

        let op = &setup.operator.key;
        let op_key = op.public_key();
        let other = Operator::new().key;
        let accounts = json!({"accounts": [late.public()]});
        let cases = [
            (
                "not self signed",
                delete_request(op, &late.public(), accounts.clone()),
            ),
            (
                "untrusted operator",
                delete_request(&other, &other.public_key(), accounts.clone()),
            ),
            ("no list", delete_request(op, &op_key, json!({}))),
            (
                "not an account key",
                delete_request(op, &op_key, json!({"accounts": ["nope"]})),
            ),
            (
                "system account",
                delete_request(op, &op_key, json!({"accounts": [setup.sys.public()]})),
            ),
            ("accepted", delete_request(op, &op_key, accounts.clone())),
        ];
        // Keys differ per run: the snapshot names them by role.
        let roles = [
            (op_key.clone(), "<operator>"),
            (other.public_key(), "<other operator>"),
            (late.public(), "<account>"),
        ];
        let mut seen = Vec::new();
        for (label, token) in cases {
            let reply = ask(&sys, "$SYS.REQ.CLAIMS.DELETE".into(), token).await;
            seen.push(json!({"case": label, "reply": by_role(reply, &roles)}));
        }
        let got = live.read_until_contains(b"Expired", WAIT).await;
        assert!(
            String::from_utf8_lossy(&got).contains("-ERR 'Account Authentication Expired'"),
            "{kind:?}: {got:?}"
        );
        assert!(live.is_closed_within(WAIT).await, "{kind:?}");
        assert!(
            connect_user(server.url(), &user).await.is_err(),
            "{kind:?}: a deleted account's user connected"
        );
        let file = dir.path().join(format!("{}.jwt", late.public()));
        assert!(!file.exists(), "{kind:?}");
        assert!(
            dir.path()
                .join(format!("{}.jwt.deleted", late.public()))
                .exists(),
            "{kind:?}"
        );
        let lookup = sys
            .request(
                format!("$SYS.REQ.ACCOUNT.{}.CLAIMS.LOOKUP", late.public()),
                Bytes::new(),
            )
            .await
            .expect("lookup answered");
        assert!(lookup.payload.is_empty(), "{kind:?}: {lookup:?}");

        // Without allow_delete the request is refused.
        let dir2 = tempfile::tempdir().expect("tempdir");
        let server2 = TestServer::with_config(kind, &full_config(&setup, dir2.path(), "")).await;
        let sys2 = connect_user(server2.url(), &setup.sys.user("sys", json!({})))
            .await
            .expect("sys connects");
        let reply = ask(
            &sys2,
            "$SYS.REQ.CLAIMS.DELETE".into(),
            delete_request(op, &op_key, accounts),
        )
        .await;
        let reply = by_role(reply, &roles);
        seen.push(json!({"case": "delete not enabled", "reply": reply}));
        replies.push(seen);
    }
    assert_eq!(
        replies[0], replies[1],
        "rill (left) and nats-server (right) differ"
    );
    insta::assert_json_snapshot!(replies[0]);
}

/// The config of node `spec.name` of a resolver cluster: a full resolver in a directory
/// of its own under `root`.
fn node_config(setup: &Setup, root: &Path, name: &str) -> String {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).expect("resolver dir");
    full_config(setup, &dir, ", allow_delete: true")
}

/// Waits until `user` can connect to `node` (its account reached that server).
async fn wait_connects(node: &Node, user: &User) {
    let mut last = String::new();
    for _ in 0..50 {
        match connect_user(node.url(), user).await {
            Ok(_) => return,
            Err(e) => last = e,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{} never took the account: {last}\n{}",
        node.name(),
        node.logs()
    );
}

/// In a cluster of rill and nats-server, an account pushed to either server reaches the
/// other over the route (both full resolvers answer the update), and a delete sent to one
/// removes it from both.
#[tokio::test]
async fn claim_updates_and_deletes_reach_every_server_of_a_cluster() {
    let setup = Setup::new(json!({}));
    let root = tempfile::tempdir().expect("tempdir");
    let cluster = Cluster::start_with(&[ServerKind::Rill, ServerKind::Nats], |mut spec| {
        spec.config = Some(node_config(&setup, root.path(), &spec.name));
        spec
    })
    .await;
    let sys_user = setup.sys.user("sys", json!({}));
    let mut pushed = Vec::new();
    for (from, to) in [(0, 1), (1, 0)] {
        let sys = connect_user(cluster.node(from).url(), &sys_user)
            .await
            .expect("sys connects");
        let account = Account::new(&format!("FROM{from}"));
        let jwt = setup.operator.account_jwt(&account, json!({}));
        // The other server's resolver subscribed over the route once the mesh formed; a
        // push may beat that interest, so it is repeated until the account arrives.
        let user = account.user("u", json!({}));
        for _ in 0..20 {
            let reply = ask(&sys, "$SYS.REQ.CLAIMS.UPDATE".into(), jwt.clone()).await;
            assert_eq!(reply["data"]["code"], json!(200), "{reply}");
            if connect_user(cluster.node(to).url(), &user).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        wait_connects(cluster.node(to), &user).await;
        let file = root
            .path()
            .join(cluster.node(to).name())
            .join(format!("{}.jwt", account.public()));
        assert!(file.exists(), "{} stored it", cluster.node(to).name());
        pushed.push((account, user));
    }
    // A delete sent to rill removes both accounts everywhere.
    let sys = connect_user(cluster.node(0).url(), &sys_user)
        .await
        .expect("sys connects");
    let op = &setup.operator.key;
    let keys: Vec<String> = pushed.iter().map(|(a, _)| a.public()).collect();
    let reply = ask(
        &sys,
        "$SYS.REQ.CLAIMS.DELETE".into(),
        delete_request(op, &op.public_key(), json!({"accounts": keys})),
    )
    .await;
    assert_eq!(
        reply["data"]["message"],
        json!("deleted 2 accounts"),
        "{reply}"
    );
    for node in &cluster.nodes {
        for (_, user) in &pushed {
            let mut refused = false;
            for _ in 0..50 {
                if connect_user(node.url(), user).await.is_err() {
                    refused = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert!(refused, "{} still takes a deleted account", node.name());
        }
    }
}

/// A full resolver that was down while an account JWT update was pushed to the other
/// server of its cluster has the update within its catch-up `interval` (1 s here) of
/// coming back, as nats-server: the file in its directory is the new JWT and the user
/// the update revokes is refused there. Measured on nats-server 2.15.1: about 1 s.
#[tokio::test]
async fn a_server_down_during_an_update_catches_up_as_nats_server() {
    let mut seen = Vec::new();
    for kind in KINDS {
        let setup = Setup::new(json!({}));
        let root = tempfile::tempdir().expect("tempdir");
        let user = setup.app.user("u", json!({}));
        let first = setup.operator.account_jwt(&setup.app, json!({}));
        let mut cluster = Cluster::start_with(&[kind, kind], |mut spec| {
            let dir = root.path().join(&spec.name);
            std::fs::create_dir_all(&dir).expect("resolver dir");
            std::fs::write(dir.join(format!("{}.jwt", setup.app.public())), &first)
                .expect("account file");
            spec.config = Some(full_config(&setup, &dir, ", interval: \"1s\""));
            spec
        })
        .await;
        wait_connects(cluster.node(1), &user).await;
        cluster.nodes[1].kill();
        let revoking = json!({"revocations": {user.public(): now() + 60}});
        let update = setup
            .operator
            .account_jwt_issued(&setup.app, revoking, now() + 1);
        let sys_user = setup.sys.user("sys", json!({}));
        let sys = connect_user(cluster.node(0).url(), &sys_user)
            .await
            .expect("sys connects");
        let reply = ask(&sys, "$SYS.REQ.CLAIMS.UPDATE".into(), update.clone()).await;
        assert_eq!(reply["data"]["code"], json!(200), "{kind:?}: {reply}");
        let file = root
            .path()
            .join(cluster.node(1).name())
            .join(format!("{}.jwt", setup.app.public()));
        let stored = || std::fs::read_to_string(&file).unwrap_or_default();
        assert_eq!(stored().trim(), first, "{kind:?}: missed while down");
        let back = std::time::Instant::now();
        cluster.nodes[1].restart().await;
        rill_tests::check_for(Duration::from_secs(10), || {
            std::future::ready(stored().trim() == update)
        })
        .await;
        let took = back.elapsed();
        let refused = connect_user(cluster.node(1).url(), &user).await.is_err();
        eprintln!("{kind:?}: caught up {took:?} after the restart began");
        seen.push(refused);
    }
    assert_eq!(seen, [true, true], "the revoked user is refused on both");
}

/// Outside operator mode, with no `system_account`, the account named `$SYS` is the
/// system account (as nats-server): its users reach the system services, others do not.
#[tokio::test]
async fn default_system_account_is_sys() {
    const CONFIG: &str = "accounts {\n  $SYS { users [{user: admin, password: admin}] }\n  APP { users [{user: app, password: app}] }\n}\n";
    for kind in KINDS {
        let server = TestServer::with_config(kind, CONFIG).await;
        let admin =
            async_nats::ConnectOptions::with_user_and_password("admin".into(), "admin".into())
                .connect(server.url())
                .await
                .expect("admin connects");
        let ping = ask(&admin, "$SYS.REQ.SERVER.PING".into(), String::new()).await;
        assert!(ping["statsz"].is_object(), "{kind:?}: {ping}");
        let idz = admin
            .request("$SYS.REQ.SERVER.PING.IDZ", Bytes::new())
            .await
            .expect("idz");
        let idz: Value = serde_json::from_slice(&idz.payload).expect("JSON");
        assert!(idz["id"].is_string(), "{kind:?}: {idz}");
        let app = async_nats::ConnectOptions::with_user_and_password("app".into(), "app".into())
            .connect(server.url())
            .await
            .expect("app connects");
        let refused = app.request("$SYS.REQ.SERVER.PING", Bytes::new()).await;
        assert!(
            matches!(&refused, Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders),
            "{kind:?}: {refused:?}"
        );
    }
}
