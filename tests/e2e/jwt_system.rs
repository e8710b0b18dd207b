//! The system account: `$SYS.REQ.SERVER.*` and `$SYS.REQ.ACCOUNT.*` requests, connect and
//! disconnect events, and account JWT updates pushed over `$SYS.REQ.CLAIMS.UPDATE`, each
//! run against rill and nats-server 2.15.1.
//!
//! Field names are compared key path by key path with nats-server's replies; rill leaves
//! out only nats-server's own internals (`feature_flags`, `gomaxprocs`, the
//! `*_to_clients` / `*_from_clients` splits that exist for routes, and `rtt`).

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use rill_tests::jwt::{Account, now};
use rill_tests::{ServerKind, TestServer};
use serde_json::{Value, json};

use crate::jwt_auth::{Setup, hold};

const WAIT: Duration = Duration::from_secs(5);
const KINDS: [ServerKind; 2] = [ServerKind::Rill, ServerKind::Nats];

/// Keys nats-server sends that rill does not (Go runtime or cluster internals).
const NATS_ONLY: &[&str] = &[
    "feature_flags",
    "gomaxprocs",
    "sent_to_clients",
    "received_from_clients",
    "rtt",
    "gateways",
    "routes",
    "leafs",
];

const CONFIG: &str = "accounts {\n  SYS { users [{user: sys, password: sys}] }\n  APP { users [{user: app, password: app}] }\n}\nsystem_account: SYS\n";

/// Every key path of `v` (`server.name`, `statsz.sent.msgs`), array elements as `[]`.
fn paths(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                if NATS_ONLY.contains(&k.as_str()) {
                    continue;
                }
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                out.insert(p.clone());
                paths(v, &p, out);
            }
        }
        Value::Array(a) => {
            if let Some(first) = a.first() {
                paths(first, &format!("{prefix}[]"), out);
            }
        }
        _ => {}
    }
}

fn key_paths(v: &Value) -> Vec<String> {
    let mut out = BTreeSet::new();
    paths(v, "", &mut out);
    out.into_iter().collect()
}

async fn request(client: &async_nats::Client, subject: String, body: &str) -> Value {
    let reply = tokio::time::timeout(
        WAIT,
        client.request(subject.clone(), Bytes::from(body.to_string())),
    )
    .await
    .unwrap_or_else(|_| panic!("no reply on {subject}"))
    .unwrap_or_else(|e| panic!("request {subject}: {e}"));
    serde_json::from_slice(&reply.payload).expect("JSON reply")
}

/// Which key paths of each reply the two servers share, and any path one has alone.
#[tokio::test]
async fn server_requests_answer_with_nats_server_fields() {
    let mut shapes: Vec<Vec<String>> = Vec::new();
    for kind in KINDS {
        let server = TestServer::with_config(kind, CONFIG).await;
        let sys = async_nats::ConnectOptions::with_user_and_password("sys".into(), "sys".into())
            .connect(server.url())
            .await
            .expect("system user connects");
        let _app = async_nats::ConnectOptions::with_user_and_password("app".into(), "app".into())
            .name("app-client")
            .connect(server.url())
            .await
            .expect("app user connects");
        let ping = request(&sys, "$SYS.REQ.SERVER.PING".into(), "").await;
        let id = ping["server"]["id"]
            .as_str()
            .expect("server id")
            .to_string();
        let mut shape = Vec::new();
        for (label, subject, body) in [
            ("PING", "$SYS.REQ.SERVER.PING".to_string(), ""),
            ("PING.HEALTHZ", "$SYS.REQ.SERVER.PING.HEALTHZ".into(), ""),
            ("<id>.STATSZ", format!("$SYS.REQ.SERVER.{id}.STATSZ"), ""),
            ("<id>.CONNZ", format!("$SYS.REQ.SERVER.{id}.CONNZ"), "{}"),
            ("ACCOUNT.APP.CONNZ", "$SYS.REQ.ACCOUNT.APP.CONNZ".into(), ""),
        ] {
            let reply = request(&sys, subject, body).await;
            shape.push(format!("{label}: {}", key_paths(&reply).join(" ")));
        }
        let connz = request(&sys, "$SYS.REQ.ACCOUNT.APP.CONNZ".into(), "").await;
        assert_eq!(
            connz["data"]["num_connections"],
            json!(1),
            "{kind:?}: APP has one client"
        );
        let varz = request(&sys, format!("$SYS.REQ.SERVER.{id}.VARZ"), "").await;
        assert_eq!(varz["data"]["server_id"], json!(id), "{kind:?}");
        shapes.push(shape);
    }
    for (rill, nats) in shapes[0].iter().zip(&shapes[1]) {
        let r: BTreeSet<&str> = rill.split(' ').collect();
        let n: BTreeSet<&str> = nats.split(' ').collect();
        // Connection details differ in optional fields; the envelope must match exactly.
        let missing: Vec<_> = n
            .difference(&r)
            .filter(|p| !p.contains("connections[]"))
            .collect();
        assert!(missing.is_empty(), "rill lacks {missing:?} in {rill}");
    }
    insta::assert_snapshot!(shapes[0].join("\n"));
}

#[tokio::test]
async fn connect_and_disconnect_events() {
    let mut shapes = Vec::new();
    for kind in KINDS {
        let server = TestServer::with_config(kind, CONFIG).await;
        let sys = async_nats::ConnectOptions::with_user_and_password("sys".into(), "sys".into())
            .connect(server.url())
            .await
            .expect("system user connects");
        let mut events = sys
            .subscribe("$SYS.ACCOUNT.APP.*")
            .await
            .expect("subscribe");
        sys.flush().await.expect("flush");
        let app = async_nats::ConnectOptions::with_user_and_password("app".into(), "app".into())
            .name("app-client")
            .connect(server.url())
            .await
            .expect("app connects");
        drop(app);
        let mut got = Vec::new();
        while got.len() < 2 {
            let msg = tokio::time::timeout(WAIT, events.next())
                .await
                .expect("event")
                .expect("open");
            let v: Value = serde_json::from_slice(&msg.payload).expect("JSON event");
            got.push(format!(
                "{} {}: {}",
                msg.subject,
                v["type"],
                key_paths(&v).join(" ")
            ));
        }
        shapes.push(got);
    }
    assert_eq!(
        shapes[0], shapes[1],
        "rill (left) and nats-server (right) differ"
    );
    insta::assert_snapshot!(shapes[0].join("\n"));
}

/// A system account user for operator-mode tests.
fn sys_client_opts(setup: &Setup) -> (String, String) {
    let user = setup.sys.user("sys", json!({}));
    (user.jwt.clone(), user.key.seed().expect("seed"))
}

pub(crate) async fn connect_jwt(
    server: &TestServer,
    jwt: String,
    seed: String,
) -> async_nats::Client {
    let key = std::sync::Arc::new(nkeys::KeyPair::from_seed(&seed).expect("seed"));
    async_nats::ConnectOptions::with_jwt(jwt, move |nonce| {
        let key = key.clone();
        async move { key.sign(&nonce).map_err(async_nats::AuthError::new) }
    })
    .connect(server.url())
    .await
    .expect("connect with JWT")
}

/// An account JWT pushed over `$SYS.REQ.CLAIMS.UPDATE` revokes a connected user at once.
#[tokio::test]
async fn claim_update_revokes_a_live_user() {
    for kind in KINDS {
        let setup = Setup::new(json!({}));
        let server = TestServer::with_config(kind, &setup.config()).await;
        let user = setup.app.user("victim", json!({}));
        let mut conn = hold(&server, &user).await;

        let (jwt, seed) = sys_client_opts(&setup);
        let sys = connect_jwt(&server, jwt, seed).await;
        let revoking = setup.operator.account_jwt(
            &setup.app,
            json!({"revocations": {user.public(): now() + 5}}),
        );
        // The MEMORY resolver takes updates per account (nats-server has no responder on
        // `$SYS.REQ.CLAIMS.UPDATE` then).
        let update = format!("$SYS.REQ.ACCOUNT.{}.CLAIMS.UPDATE", setup.app.public());
        let reply = request(&sys, update.clone(), &revoking).await;
        assert_eq!(
            reply["data"]["message"],
            json!("jwt updated"),
            "{kind:?}: {reply}"
        );
        assert_eq!(
            reply["data"]["account"],
            json!(setup.app.public()),
            "{kind:?}"
        );
        let got = conn.read_until_contains(b"Revoked", WAIT).await;
        assert!(
            String::from_utf8_lossy(&got).contains("-ERR 'User Authentication Revoked'"),
            "{kind:?}: {got:?}"
        );
        assert!(conn.is_closed_within(WAIT).await, "{kind:?}");

        // A JWT not signed by the operator is refused with nats-server's words.
        let rogue = rill_tests::jwt::Operator::new().account_jwt(&setup.app, json!({}));
        let reply = request(&sys, update, &rogue).await;
        assert_eq!(reply["error"]["code"], json!(500), "{kind:?}: {reply}");
    }
}

/// With the full resolver, an account that did not exist at start is pushed, its users
/// connect, and it is still known after a restart (stored in the resolver directory).
#[tokio::test]
async fn full_resolver_takes_new_accounts_and_keeps_them() {
    for kind in KINDS {
        let setup = Setup::new(json!({}));
        let dir = tempfile::tempdir().expect("tempdir");
        let op = setup
            .operator
            .jwt(json!({"system_account": setup.sys.public()}));
        let sys_jwt = setup.operator.account_jwt(&setup.sys, json!({}));
        let config = format!(
            "operator: {op}\nsystem_account: {}\nresolver {{ type: full, dir: \"{}\" }}\nresolver_preload: {{ {}: {sys_jwt} }}\n",
            setup.sys.public(),
            dir.path().display(),
            setup.sys.public()
        );
        let mut server = TestServer::with_config(kind, &config).await;
        let late = Account::new("LATE");
        let user = late.user("u", json!({}));
        let seed = user.key.seed().expect("seed");
        let (jwt, sys_seed) = sys_client_opts(&setup);
        let sys = connect_jwt(&server, jwt.clone(), sys_seed.clone()).await;
        let late_jwt = setup.operator.account_jwt(&late, json!({}));
        let reply = request(&sys, "$SYS.REQ.CLAIMS.UPDATE".into(), &late_jwt).await;
        assert_eq!(reply["data"]["code"], json!(200), "{kind:?}: {reply}");
        let lookup = sys
            .request(
                format!("$SYS.REQ.ACCOUNT.{}.CLAIMS.LOOKUP", late.public()),
                Bytes::new(),
            )
            .await
            .expect("lookup");
        assert_eq!(
            String::from_utf8_lossy(&lookup.payload),
            late_jwt,
            "{kind:?}"
        );
        connect_jwt(&server, user.jwt.clone(), seed.clone()).await;
        drop(sys);
        server.restart().await;
        connect_jwt(&server, user.jwt.clone(), seed).await;
    }
}

/// `rill server ping|ls|info` over the system account, against both servers.
#[tokio::test]
async fn cli_server_ping_ls_info() {
    for kind in KINDS {
        let server = TestServer::with_config(kind, CONFIG).await;
        let cli = rill_tests::cli::Cli::new(server.url());
        let run = |sub: &'static str| {
            let args = ["--user", "sys", "--password", "sys", "server", sub];
            let cli = &cli;
            async move { cli.ok(&args).await }
        };
        let ping = run("ping").await;
        assert!(ping.contains("1 server(s) answered"), "{kind:?}: {ping}");
        let ls = run("ls").await;
        assert!(
            ls.starts_with("Name") && ls.lines().count() == 3,
            "{kind:?}: {ls}"
        );
        let info = run("info").await;
        assert!(
            info.contains("Server Information") && info.contains("Subscriptions"),
            "{kind:?}: {info}"
        );
    }
}

/// `rill account limits` shows an account's JWT limits (tiers, counts) from
/// `$SYS.REQ.ACCOUNT.<acc>.INFO`, the same against both servers.
#[tokio::test]
async fn cli_account_limits_as_nats_server() {
    let mut outputs = Vec::new();
    for kind in KINDS {
        let revoked = nkeys::KeyPair::new_user().public_key();
        let signer = nkeys::KeyPair::new_account().public_key();
        let setup = Setup::new(json!({
            "limits": {"conn": 5, "leaf": 2, "subs": 100, "payload": 4096, "imports": 3,
                       "mem_storage": 1_048_576, "disk_storage": -1, "streams": 10,
                       "consumer": -1, "max_ack_pending": 1000},
            "signing_keys": [signer],
            "revocations": {revoked: now()},
            "exports": [{"name": "svc", "subject": "svc.>", "type": "service"}]
        }));
        let server = TestServer::with_config(kind, &setup.config()).await;
        let _app_user = hold(&server, &setup.app.user("alice", json!({}))).await;
        let admin = setup.sys.user("admin", json!({}));
        let dir = tempfile::tempdir().expect("tempdir");
        let creds = dir.path().join("admin.creds");
        std::fs::write(&creds, admin.creds()).expect("write creds");
        let cli = rill_tests::cli::Cli::new(server.url());
        let creds = creds.to_string_lossy().to_string();
        let app = setup.app.public();
        let out = cli
            .ok(&["--creds", &creds, "account", "limits", &app])
            .await
            .replace(&app, "<APP>")
            .replace(&setup.operator.key.public_key(), "<OPERATOR>");
        let json = cli
            .ok(&["--creds", &creds, "account", "limits", &app, "--json"])
            .await;
        assert!(json.contains("decoded_jwt"), "{kind:?}: {json}");
        let missing = cli
            .fail(&["--creds", &creds, "account", "limits", &signer])
            .await;
        assert!(missing.contains("has no JWT"), "{kind:?}: {missing}");
        outputs.push(out);
    }
    assert_eq!(outputs[0], outputs[1], "rill and nats-server differ");
    insta::assert_snapshot!("cli_account_limits", outputs[0]);
}

/// `$SYS.REQ.USER.INFO`'s `data` with its permission lists sorted (nats-server lists them
/// in map order) and `expires` (nanoseconds left) checked against `exp_in` seconds and
/// replaced by a placeholder.
fn user_info_data(reply: &Value, exp_in: Option<i64>) -> Value {
    let mut data = reply["data"].clone();
    if let Some(perms) = data["permissions"].as_object_mut() {
        for side in perms.values_mut() {
            for list in side
                .as_object_mut()
                .into_iter()
                .flat_map(|m| m.values_mut())
            {
                if let Some(items) = list.as_array_mut() {
                    items.sort_by_key(Value::to_string);
                }
            }
        }
    }
    if let Some(secs) = exp_in {
        let left = data["expires"].as_i64().expect("expires") / 1_000_000_000;
        assert!(left > secs - 30 && left <= secs, "expires {left}s: {data}");
        data["expires"] = json!("<ns left>");
    }
    data
}

const INFO_CONFIG: &str = r#"accounts {
  SYS { users [{user: sys, password: sys}] }
  APP { users [
    {user: app, password: app, permissions: {
      publish: {allow: ["foo.>", "$SYS.REQ.>", "_INBOX.>"], deny: ["foo.secret"]},
      subscribe: {allow: ["jobs.> workers", "_INBOX.>"]},
      allow_responses: {max: 3, expires: "1m"}}}
    {user: app2, password: app2}
  ] }
}
system_account: SYS
"#;

/// Every account asks `$SYS.REQ.USER.INFO` about itself, and its own connections over
/// `$SYS.REQ.SERVER.PING.CONNZ`, `$SYS.REQ.ACCOUNT.PING.CONNZ` and `.STATZ`, as
/// nats-server imports them into each account; the system account asks an account's
/// `LEAFZ`. The same answers (fields) on both servers.
#[tokio::test]
async fn user_info_and_account_pings_as_nats_server() {
    let mut results = Vec::new();
    for kind in KINDS {
        let server = TestServer::with_config(kind, INFO_CONFIG).await;
        let mut out = Vec::new();
        let mut clients = Vec::new();
        for user in ["app", "app2", "sys"] {
            let client =
                async_nats::ConnectOptions::with_user_and_password(user.into(), user.into())
                    .connect(server.url())
                    .await
                    .expect("connects");
            let reply = request(&client, "$SYS.REQ.USER.INFO".into(), "").await;
            out.push(format!(
                "{user} USER.INFO: {}",
                user_info_data(&reply, None)
            ));
            clients.push(client);
        }
        let app2 = &clients[1];
        for subject in [
            "$SYS.REQ.SERVER.PING.CONNZ",
            "$SYS.REQ.ACCOUNT.PING.CONNZ",
            "$SYS.REQ.ACCOUNT.PING.STATZ",
        ] {
            let reply = request(app2, subject.into(), "").await;
            let data = &reply["data"];
            let counted = data["num_connections"]
                .as_u64()
                .or_else(|| data["account_statz"][0]["conns"].as_u64());
            assert_eq!(counted, Some(2), "{kind:?} {subject}: {reply}");
            // The envelope; a connection's own fields are /connz's (monitoring tests).
            let envelope: Vec<String> = key_paths(&reply)
                .into_iter()
                .filter(|p| !p.starts_with("data.connections[]."))
                .collect();
            out.push(format!("app2 {subject}: {}", envelope.join(" ")));
        }
        let leafz = request(&clients[2], "$SYS.REQ.ACCOUNT.APP.LEAFZ".into(), "").await;
        assert_eq!(leafz["data"]["leafnodes"], json!(0), "{kind:?}: {leafz}");
        out.push(format!(
            "sys ACCOUNT.APP.LEAFZ: {}",
            key_paths(&leafz).join(" ")
        ));
        results.push(out);
    }
    assert_eq!(
        results[0], results[1],
        "rill (left) and nats-server (right) differ"
    );
    insta::assert_snapshot!(results[0].join("\n"));
}

/// A JWT user's `$SYS.REQ.USER.INFO`: its public key, the account's key and name, the
/// JWT's permissions and the time left before the JWT expires, as nats-server.
#[tokio::test]
async fn jwt_user_info_as_nats_server() {
    let mut results = Vec::new();
    for kind in KINDS {
        let setup = Setup::new(json!({}));
        let server = TestServer::with_config(kind, &setup.config()).await;
        let user = setup.app.user(
            "dev",
            json!({"exp": now() + 3600,
                   "pub": {"allow": ["$SYS.REQ.USER.INFO", "dev.>"], "deny": ["dev.x"]},
                   "sub": {"allow": ["_INBOX.>"]},
                   "resp": {"max": 1, "ttl": 5_000_000_000_i64}}),
        );
        let client = connect_jwt(&server, user.jwt.clone(), user.key.seed().expect("seed")).await;
        let reply = request(&client, "$SYS.REQ.USER.INFO".into(), "").await;
        let data = user_info_data(&reply, Some(3600))
            .to_string()
            .replace(&user.public(), "<USER>")
            .replace(&setup.app.public(), "<APP>");
        results.push(data);
    }
    assert_eq!(
        results[0], results[1],
        "rill (left) and nats-server (right) differ"
    );
    insta::assert_snapshot!(results[0]);
}
