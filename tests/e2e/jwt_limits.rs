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
//!   are the account's, and a claim update changes them without a restart; each limit,
//!   untiered and per tier, refuses with nats-server's error at the same step, and
//!   `$JS.API.INFO` shows the same limits and tiers.

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

/// One JetStream API step's outcome: `ok`, or the error's code, err_code and description.
fn outcome(reply: &Value) -> String {
    match reply.get("error") {
        Some(e) => format!(
            "{} {} {}",
            e["code"],
            e["err_code"],
            e["description"].as_str().unwrap_or_default()
        ),
        None => "ok".into(),
    }
}

/// `$JS.API.INFO`'s limits and tiers (usage left out: it differs with storage overhead).
fn info_limits(info: &Value) -> String {
    let mut shown = json!({"limits": info["limits"]});
    if let Some(tiers) = info["tiers"].as_object() {
        let limits: serde_json::Map<String, Value> = tiers
            .iter()
            .map(|(name, tier)| (name.clone(), tier["limits"].clone()))
            .collect();
        shown["tiers"] = Value::Object(limits);
    }
    shown.to_string()
}

/// One JetStream API request of a limits scenario: its label, the subject after
/// `$JS.API.` and the body (`null` for none).
type Step = (&'static str, String, Value);

/// The steps of a JetStream limits scenario against a server whose APP account JWT has
/// `limits`: each request's outcome, in order.
async fn limits_steps(kind: ServerKind, limits: Value, steps: &[Step]) -> Vec<String> {
    let setup = Setup::new(json!({ "limits": limits }));
    let server = TestServer::start_with(ServerOpts {
        kind,
        jetstream: true,
        config: Some(setup.config()),
        ..ServerOpts::default()
    })
    .await;
    let app = client(&server, &setup.app.user("alice", json!({}))).await;
    let mut out = Vec::new();
    for (label, subject, body) in steps {
        let body = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        let reply = request(&app, format!("$JS.API.{subject}"), body).await;
        let shown = if subject == "INFO" && reply.get("error").is_none() {
            info_limits(&reply)
        } else {
            outcome(&reply)
        };
        out.push(format!("{label}: {shown}"));
    }
    out
}

/// `$JS.API.INFO`.
fn info(label: &'static str) -> Step {
    (label, "INFO".into(), Value::Null)
}

/// `STREAM.<op>` (CREATE or UPDATE) of stream `name` on `name.>` with `storage` and
/// `max_bytes`, if given.
fn stream(
    label: &'static str,
    op: &str,
    (name, storage, max_bytes): (&str, &str, Option<i64>),
) -> Step {
    let mut cfg = json!({"name": name, "subjects": [format!("{}.>", name.to_lowercase())],
                         "storage": storage});
    if let Some(b) = max_bytes {
        cfg["max_bytes"] = json!(b);
    }
    (label, format!("STREAM.{op}.{name}"), cfg)
}

/// A `STREAM.CREATE` step.
fn create(label: &'static str, name: &str, storage: &str, max_bytes: Option<i64>) -> Step {
    stream(label, "CREATE", (name, storage, max_bytes))
}

/// `CONSUMER.CREATE` of an explicit-ack durable `name` on `stream`, with
/// `max_ack_pending` if given.
fn consumer(label: &'static str, stream: &str, name: &str, max_ack_pending: Option<i64>) -> Step {
    let mut cfg = json!({"durable_name": name, "ack_policy": "explicit"});
    if let Some(m) = max_ack_pending {
        cfg["max_ack_pending"] = json!(m);
    }
    let body = json!({"stream_name": stream, "config": cfg});
    (label, format!("CONSUMER.CREATE.{stream}.{name}"), body)
}

/// The untiered JetStream limits of an account JWT, each refused with nats-server's error
/// at the same step: max_bytes_required, the largest memory and file stream, the
/// account's storage, stream and consumer counts, max_ack_pending.
#[tokio::test]
async fn untiered_jetstream_limits_refuse_as_nats_server() {
    let limits = json!({"mem_storage": 8192, "disk_storage": 16384, "streams": 4, "consumer": 2,
                        "max_ack_pending": 10, "max_bytes_required": true,
                        "mem_max_stream_bytes": 4096, "disk_max_stream_bytes": 8192});
    let steps = [
        info("info"),
        create("no max_bytes", "A", "file", None),
        create("file over stream max", "A", "file", Some(10_000)),
        create("file at stream max", "A", "file", Some(8192)),
        create("memory over stream max", "B", "memory", Some(5000)),
        create("memory at stream max", "B", "memory", Some(4096)),
        create("memory past account", "M", "memory", Some(4097)),
        create("file to account max", "C", "file", Some(8192)),
        create("file past account", "D", "file", Some(1)),
        create("memory fourth", "E", "memory", Some(1024)),
        create("fifth stream", "F", "memory", Some(1)),
        stream(
            "update past stream max",
            "UPDATE",
            ("A", "file", Some(9000)),
        ),
        consumer("consumer ack pending over", "A", "c1", Some(20)),
        consumer("consumer", "A", "c2", None),
        consumer("consumer 2", "A", "c3", Some(5)),
        consumer("consumer 3", "A", "c4", Some(5)),
        info("info after"),
    ];
    let mut results = Vec::new();
    for kind in KINDS {
        results.push(limits_steps(kind, limits.clone(), &steps).await);
    }
    assert_eq!(
        results[0], results[1],
        "rill (left) and nats-server (right) differ"
    );
    insta::assert_snapshot!(results[0].join("\n"));
}

/// Tiered JetStream limits (`tiered_limits` R1 and R3): a single server uses the R1 tier,
/// `$JS.API.INFO` lists the tiers, and an account with only an R3 tier gets nats-server's
/// error for an R1 stream.
#[tokio::test]
async fn tiered_jetstream_limits_as_nats_server() {
    let tier = |streams: i64, disk: i64| {
        json!({"mem_storage": 4096, "disk_storage": disk, "streams": streams, "consumer": 1,
               "max_ack_pending": 7})
    };
    let both = json!({"tiered_limits": {"R1": tier(2, 8192), "R3": tier(5, 65536)}});
    let steps = [
        info("info"),
        create("first", "A", "file", Some(4096)),
        create("too big", "B", "file", Some(8192)),
        create("second", "B", "memory", Some(1024)),
        create("third", "C", "memory", Some(1)),
        consumer("consumer", "A", "c1", None),
        consumer("consumer 2", "A", "c2", None),
        info("info after"),
    ];
    let r3_only = json!({"tiered_limits": {"R3": tier(5, 65536)}});
    let r3_steps = [info("info"), create("R1 stream", "A", "file", Some(4096))];
    // A tier that leaves max_ack_pending (and the largest streams) unset.
    let r1_plain = json!({"tiered_limits": {"R1": {"mem_storage": 4096, "disk_storage": 8192,
                                                   "streams": 2, "consumer": 1}}});
    let mut results = Vec::new();
    for kind in KINDS {
        let mut out = limits_steps(kind, both.clone(), &steps).await;
        out.extend(limits_steps(kind, r3_only.clone(), &r3_steps).await);
        out.extend(limits_steps(kind, r1_plain.clone(), &[info("info")]).await);
        results.push(out);
    }
    assert_eq!(
        results[0], results[1],
        "rill (left) and nats-server (right) differ"
    );
    insta::assert_snapshot!(results[0].join("\n"));
}
