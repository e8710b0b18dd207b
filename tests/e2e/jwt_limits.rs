//! Account JWT limits and who may sign accounts, run against rill and nats-server 2.15.1
//! side by side:
//! - `conn`: the account's clients on this server; one more gets `-ERR 'maximum account
//!   active connections exceeded'` and is closed, and a freed slot takes a new client;
//! - operator signing keys: an account JWT signed by a signing key listed in the operator
//!   JWT is trusted; one signed by a key the operator does not list is not, and its users
//!   are refused (the server still starts, unless that account is the system account);
//!   with `strict_signing_key_usage` only signing keys sign: neither the operator's key
//!   (accounts) nor an account's own key (users);
//! - JetStream: the account JWT's limits (streams, storage, consumers, max ack pending)
//!   are the account's, and a claim update changes them without a restart.

use std::time::Duration;

use rill_tests::jwt::{Account, Operator, User};
use rill_tests::{ServerKind, ServerOpts, TestServer};
use serde_json::{Value, json};

use crate::jwt_auth::{Setup, attempt, hold};

const KINDS: [ServerKind; 2] = [ServerKind::Rill, ServerKind::Nats];
const AUTH_VIOLATION: &str = "-ERR 'Authorization Violation'";

#[tokio::test]
async fn account_conn_limit_refuses_the_next_client() {
    for kind in KINDS {
        let setup = Setup::new(json!({"limits": {"conn": 2}}));
        let server = TestServer::with_config(kind, &setup.config()).await;
        let user = setup.app.user("alice", json!({}));
        let first = hold(&server, &user).await;
        let _second = hold(&server, &user).await;
        let (lines, closed) = attempt(&server, &user, true, "").await;
        assert_eq!(
            lines,
            ["-ERR 'maximum account active connections exceeded'"],
            "{kind:?}"
        );
        assert!(closed, "{kind:?}");
        // Another account is not limited by APP's count.
        let sys_user = setup.sys.user("admin", json!({}));
        let _sys = hold(&server, &sys_user).await;
        // A closed connection frees its slot (once the server has seen it go).
        drop(first);
        let mut freed = false;
        for _ in 0..50 {
            let (lines, closed) = attempt(&server, &user, true, "").await;
            if lines.iter().any(|l| l == "PONG") && !closed {
                freed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(freed, "{kind:?}: no slot after a client left");
    }
}

/// The MEMORY-resolver config for `operator` (its JWT given) and preloaded accounts.
fn config(operator_jwt: &str, sys: &Account, accounts: &[(&Account, String)]) -> String {
    let mut preload = String::new();
    for (account, jwt) in accounts {
        preload.push_str(&format!("  {}: {jwt}\n", account.public()));
    }
    format!(
        "operator: {operator_jwt}\nsystem_account: {}\nresolver: MEMORY\nresolver_preload: {{\n{preload}}}\n",
        sys.public()
    )
}

#[tokio::test]
async fn operator_signing_keys_sign_accounts() {
    for kind in KINDS {
        let operator = Operator::new();
        let signing = nkeys::KeyPair::new_operator();
        let stranger = nkeys::KeyPair::new_operator();
        let op_jwt = operator.jwt(json!({"signing_keys": [signing.public_key()]}));
        let (sys, good, bad) = (
            Account::new("SYS"),
            Account::new("GOOD"),
            Account::new("BAD"),
        );
        let accounts = [
            (&sys, operator.account_jwt(&sys, json!({}))),
            (
                &good,
                operator.account_jwt_signed_by(&signing, &good, json!({})),
            ),
            (
                &bad,
                operator.account_jwt_signed_by(&stranger, &bad, json!({})),
            ),
        ];
        let server = TestServer::with_config(kind, &config(&op_jwt, &sys, &accounts)).await;
        let (lines, closed) = attempt(&server, &good.user("g", json!({})), true, "").await;
        assert_eq!(lines, ["PONG"], "{kind:?}: signed by a signing key");
        assert!(!closed, "{kind:?}");
        let (lines, closed) = attempt(&server, &bad.user("b", json!({})), true, "").await;
        assert_eq!(lines, [AUTH_VIOLATION], "{kind:?}: signed by a stranger");
        assert!(closed, "{kind:?}");
    }
}

/// With `strict_signing_key_usage`, neither the operator's key may sign accounts nor an
/// account's own key its users: only signing keys.
#[tokio::test]
async fn strict_signing_key_usage_refuses_identity_keys() {
    for kind in KINDS {
        let operator = Operator::new();
        let signing = nkeys::KeyPair::new_operator();
        let op_jwt = operator.jwt(json!({
            "signing_keys": [signing.public_key()], "strict_signing_key_usage": true
        }));
        let (sys, good, app) = (
            Account::new("SYS"),
            Account::new("GOOD"),
            Account::new("APP"),
        );
        let user_signer = nkeys::KeyPair::new_account();
        let keys = json!({"signing_keys": [user_signer.public_key()]});
        let accounts = [
            (
                &sys,
                operator.account_jwt_signed_by(&signing, &sys, json!({})),
            ),
            (
                &good,
                operator.account_jwt_signed_by(&signing, &good, keys.clone()),
            ),
            (&app, operator.account_jwt(&app, keys)),
        ];
        let server = TestServer::with_config(kind, &config(&op_jwt, &sys, &accounts)).await;
        let by_signing_keys = good.user_signed_by(&user_signer, "g", json!({}));
        let (lines, closed) = attempt(&server, &by_signing_keys, true, "").await;
        assert_eq!(
            (lines, closed),
            (vec!["PONG".to_string()], false),
            "{kind:?}"
        );
        let refused = [
            ("user signed by the account key", good.user("g2", json!({}))),
            (
                "account signed by the operator key",
                app.user_signed_by(&user_signer, "a", json!({})),
            ),
        ];
        for (what, user) in refused {
            let (lines, closed) = attempt(&server, &user, true, "").await;
            assert_eq!(lines, [AUTH_VIOLATION], "{kind:?}: {what}");
            assert!(closed, "{kind:?}: {what}");
        }
    }
}

/// A client connected with `user`'s credentials.
async fn client(server: &TestServer, user: &User) -> async_nats::Client {
    async_nats::ConnectOptions::with_credentials(&user.creds())
        .expect("creds")
        .connect(server.url())
        .await
        .unwrap_or_else(|e| panic!("connect: {e}\n{}", server.logs()))
}

/// The JSON reply to a request.
async fn request(nc: &async_nats::Client, subject: String, body: String) -> Value {
    let msg = tokio::time::timeout(Duration::from_secs(5), nc.request(subject, body.into()))
        .await
        .expect("reply in time")
        .expect("reply");
    serde_json::from_slice(&msg.payload).expect("JSON reply")
}

async fn create_stream(nc: &async_nats::Client, name: &str) -> Value {
    let body = json!({"name": name, "subjects": [format!("{}.>", name.to_lowercase())],
                      "storage": "file", "max_bytes": 1024});
    request(
        nc,
        format!("$JS.API.STREAM.CREATE.{name}"),
        body.to_string(),
    )
    .await
}

/// The account JWT's JetStream limits are the account's: JetStream on for an account
/// whose JWT allows storage (and not for the others), its stream count and storage
/// limits enforced, and raised by a claim update without a restart.
#[tokio::test]
async fn account_jwt_jetstream_limits_apply() {
    let js = |streams: i64| {
        json!({"limits": {"mem_storage": -1, "disk_storage": 1_048_576, "streams": streams,
                          "consumer": 4, "max_ack_pending": 100}})
    };
    for kind in KINDS {
        let setup = Setup::new(js(1));
        let server = TestServer::start_with(ServerOpts {
            kind,
            jetstream: true,
            config: Some(setup.config()),
            ..ServerOpts::default()
        })
        .await;
        let app = client(&server, &setup.app.user("alice", json!({}))).await;
        let info = request(&app, "$JS.API.INFO".into(), String::new()).await;
        let limits = &info["limits"];
        assert_eq!(
            (
                &limits["max_streams"],
                &limits["max_storage"],
                &limits["max_consumers"]
            ),
            (&json!(1), &json!(1_048_576), &json!(4)),
            "{kind:?}: {info}"
        );
        assert_eq!(limits["max_ack_pending"], json!(100), "{kind:?}: {info}");
        let sys = client(&server, &setup.sys.user("admin", json!({}))).await;
        let info = request(&sys, "$JS.API.INFO".into(), String::new()).await;
        assert_eq!(info["error"]["err_code"], json!(10039), "{kind:?}: {info}");

        let first = create_stream(&app, "S1").await;
        assert!(first.get("error").is_none(), "{kind:?}: {first}");
        let second = create_stream(&app, "S2").await;
        assert_eq!(
            second["error"]["err_code"],
            json!(10027),
            "{kind:?}: {second}"
        );

        let update = setup.operator.account_jwt(&setup.app, js(2));
        let subject = format!("$SYS.REQ.ACCOUNT.{}.CLAIMS.UPDATE", setup.app.public());
        let reply = request(&sys, subject, update).await;
        assert_eq!(reply["data"]["code"], json!(200), "{kind:?}: {reply}");
        let second = create_stream(&app, "S2").await;
        assert!(second.get("error").is_none(), "{kind:?}: {second}");
    }
}
