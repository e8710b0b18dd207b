//! Operator mode: user JWTs checked against preloaded account JWTs (`resolver: MEMORY`),
//! every scenario run against rill and nats-server 2.15.1 side by side.
//!
//! Observed on nats-server and required of rill: a good `.creds` file connects; every
//! refused user gets `-ERR 'Authorization Violation'` (expired, wrong signer, revoked,
//! bad nonce signature, source network, connection type, bearer token the account
//! disallows); the user JWT's permissions and limits (subs, payload) apply; scoped
//! signing keys impose their template; a JWT that expires on a live connection ends it
//! with `-ERR 'User Authentication Expired'`.

use std::sync::LazyLock;
use std::time::Duration;

use futures::StreamExt;
use rill_tests::jwt::{Account, Operator, User, now};
use rill_tests::raw::Conn;
use rill_tests::{ServerKind, TestServer};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(5);
const QUIET: Duration = Duration::from_millis(400);
const KINDS: [ServerKind; 2] = [ServerKind::Rill, ServerKind::Nats];

/// An operator with a system account and one application account `APP`.
pub(crate) struct Setup {
    pub(crate) operator: Operator,
    pub(crate) sys: Account,
    pub(crate) app: Account,
    /// `nats` extras of APP's account JWT.
    pub(crate) app_extra: Value,
}

impl Setup {
    pub(crate) fn new(app_extra: Value) -> Self {
        Self {
            operator: Operator::new(),
            sys: Account::new("SYS"),
            app: Account::new("APP"),
            app_extra,
        }
    }

    /// The MEMORY-resolver config with both accounts preloaded.
    pub(crate) fn config(&self) -> String {
        let op = self
            .operator
            .jwt(json!({"system_account": self.sys.public()}));
        let sys = self.operator.account_jwt(&self.sys, json!({}));
        let app = self.operator.account_jwt(&self.app, self.app_extra.clone());
        format!(
            "operator: {op}\nsystem_account: {}\nresolver: MEMORY\nresolver_preload: {{\n  {}: {sys}\n  {}: {app}\n}}\n",
            self.sys.public(),
            self.sys.public(),
            self.app.public()
        )
    }
}

/// A raw connection that sends CONNECT with `user`'s JWT (signing the nonce unless
/// `sign` is false), then `then`, and returns what came back within [`QUIET`] plus
/// whether the server closed the connection.
pub(crate) async fn attempt(
    server: &TestServer,
    user: &User,
    sign: bool,
    then: &str,
) -> (Vec<String>, bool) {
    let mut conn = Conn::connect(server.port()).await;
    let nonce = conn.info()["nonce"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut connect =
        json!({"verbose": false, "pedantic": false, "jwt": user.jwt, "headers": true});
    if sign {
        connect["sig"] = json!(user.sign_nonce(&nonce));
    }
    conn.send(format!("CONNECT {connect}\r\n{then}PING\r\n").as_bytes())
        .await;
    collect(&mut conn).await
}

/// A connection of `user` that stays open (CONNECT answered by PONG).
pub(crate) async fn hold(server: &TestServer, user: &User) -> Conn {
    let mut conn = Conn::connect(server.port()).await;
    let nonce = conn.info()["nonce"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let connect = json!({"verbose": false, "jwt": user.jwt, "sig": user.sign_nonce(&nonce)});
    conn.send(format!("CONNECT {connect}\r\nPING\r\n").as_bytes())
        .await;
    let got = conn
        .read_until_contains(b"PONG\r\n", Duration::from_secs(5))
        .await;
    assert!(
        String::from_utf8_lossy(&got).contains("PONG"),
        "connect: {}",
        String::from_utf8_lossy(&got)
    );
    conn
}

/// The server's answer to a CONNECT and commands that end with `PING`: everything up
/// to the `PONG`, or up to the close of a refused connection. Nothing is cut short by a
/// fixed read window, so a slow answer on a loaded machine is read whole (the reason
/// this test once failed under load: a 400 ms window missed a late `PONG` or close).
/// An answered connection is then watched for [`QUIET`] to see that it stays open.
async fn collect(conn: &mut Conn) -> (Vec<String>, bool) {
    let (got, closed) = conn.read_until_contains_or_close(b"PONG\r\n", WAIT).await;
    let text = String::from_utf8_lossy(&got);
    let closed = match closed {
        Some(true) => true,
        Some(false) => conn.is_closed_within(QUIET).await,
        None => panic!("neither PONG nor a close within {WAIT:?}: {text:?}"),
    };
    let lines = text
        .split("\r\n")
        .filter(|l| !l.is_empty() && *l != "PING")
        .map(str::to_string)
        .collect();
    (lines, closed)
}

#[tokio::test]
async fn creds_file_connects_and_wrong_seed_is_refused() {
    for kind in KINDS {
        let setup = Setup::new(json!({}));
        let server = TestServer::with_config(kind, &setup.config()).await;
        let user = setup.app.user("alice", json!({}));
        let dir = tempfile::tempdir().expect("tempdir");
        let creds = dir.path().join("alice.creds");
        std::fs::write(&creds, user.creds()).expect("write creds");
        let client = async_nats::ConnectOptions::with_credentials_file(&creds)
            .await
            .expect("read creds")
            .connect(server.url())
            .await
            .unwrap_or_else(|e| panic!("{kind:?}: connect with creds: {e}"));
        let mut sub = client.subscribe("greet").await.expect("subscribe");
        client.publish("greet", "hi".into()).await.expect("publish");
        let msg = tokio::time::timeout(WAIT, sub.next())
            .await
            .expect("message");
        assert_eq!(msg.map(|m| m.payload), Some("hi".into()), "{kind:?}");

        // The JWT of one user with another user's seed.
        let other = setup.app.user("mallory", json!({}));
        let forged = User {
            key: nkeys::KeyPair::from_seed(&other.key.seed().expect("seed")).expect("key"),
            jwt: user.jwt.clone(),
        };
        let (lines, closed) = attempt(&server, &forged, true, "").await;
        assert_eq!(lines, ["-ERR 'Authorization Violation'"], "{kind:?}");
        assert!(closed, "{kind:?}");
    }
}

/// Each case: a user made from the setup, whether to sign the nonce, what to send.
type Case = (&'static str, fn(&Setup) -> User, bool, &'static str);

fn cases() -> Vec<Case> {
    vec![
        (
            "plain user",
            |s| s.app.user("u", json!({})),
            true,
            "SUB a 1\r\nPUB a 2\r\nhi\r\n",
        ),
        ("no signature", |s| s.app.user("u", json!({})), false, ""),
        (
            "expired",
            |s| s.app.user("u", json!({"exp": now() - 10})),
            true,
            "",
        ),
        (
            "not yet valid",
            |s| s.app.user("u", json!({"nbf": now() + 3600})),
            true,
            "",
        ),
        (
            "unknown signer",
            |s| {
                s.app
                    .user_signed_by(&nkeys::KeyPair::new_account(), "u", json!({}))
            },
            true,
            "",
        ),
        (
            "pub allow",
            |s| s.app.user("u", json!({"pub": {"allow": ["ok.>"]}})),
            true,
            "PUB ok.1 0\r\n\r\nPUB no.1 0\r\n\r\n",
        ),
        (
            "sub deny",
            |s| s.app.user("u", json!({"sub": {"deny": ["secret"]}})),
            true,
            "SUB secret 1\r\nSUB open 2\r\n",
        ),
        (
            "subs limit",
            |s| s.app.user("u", json!({"subs": 1})),
            true,
            "SUB a 1\r\nSUB b 2\r\n",
        ),
        (
            "payload limit",
            |s| s.app.user("u", json!({"payload": 4})),
            true,
            "PUB a 10\r\n0123456789\r\n",
        ),
        (
            "times now in Tokyo",
            |s| s.app.user("u", tokyo_times(-3600, 3600)),
            true,
            "",
        ),
        (
            "times later in Tokyo",
            |s| s.app.user("u", tokyo_times(7200, 10800)),
            true,
            "",
        ),
        (
            "times in an unknown zone",
            |s| {
                let mut t = tokyo_times(-3600, 3600);
                t["times_location"] = json!("Mars/Olympus_Mons");
                s.app.user("u", t)
            },
            true,
            "",
        ),
        (
            "src refused",
            |s| s.app.user("u", json!({"src": ["10.0.0.0/8"]})),
            true,
            "",
        ),
        (
            "src allowed",
            |s| s.app.user("u", json!({"src": "127.0.0.0/8,10.0.0.0/8"})),
            true,
            "",
        ),
        (
            "websocket only",
            |s| {
                s.app
                    .user("u", json!({"allowed_connection_types": ["WEBSOCKET"]}))
            },
            true,
            "",
        ),
        (
            "bearer",
            |s| s.app.user("u", json!({"bearer_token": true})),
            false,
            "",
        ),
        ("revoked", |s| s.app.user("revoked", json!({})), true, ""),
        (
            "signing key",
            |s| s.app.user_signed_by(&signer(), "u", json!({})),
            true,
            "",
        ),
        (
            "scoped key",
            |s| {
                s.app.user_signed_by(
                    &scoped(),
                    "u",
                    json!({"subs": null, "data": null, "payload": null}),
                )
            },
            true,
            "PUB ok.u 0\r\n\r\nPUB other 0\r\n\r\n",
        ),
        (
            "scoped with perms",
            |s| {
                s.app.user_signed_by(
                    &scoped(),
                    "u",
                    json!({"subs": null, "data": null, "payload": null, "pub": {"allow": [">"]}}),
                )
            },
            true,
            "",
        ),
        (
            "scoped with limits",
            |s| s.app.user_signed_by(&scoped(), "u", json!({})),
            true,
            "",
        ),
    ]
}

/// Signing keys made once per test run, so the account JWT can name them.
static SIGNER: LazyLock<String> = LazyLock::new(new_account_seed);
static SCOPED: LazyLock<String> = LazyLock::new(new_account_seed);

fn new_account_seed() -> String {
    nkeys::KeyPair::new_account().seed().expect("seed")
}

fn signer() -> nkeys::KeyPair {
    nkeys::KeyPair::from_seed(&SIGNER).expect("seed")
}

fn scoped() -> nkeys::KeyPair {
    nkeys::KeyPair::from_seed(&SCOPED).expect("seed")
}

#[tokio::test]
async fn user_jwt_rules_match_nats_server() {
    let mut outcomes: Vec<Vec<String>> = Vec::new();
    for kind in KINDS {
        let setup = Setup::new(json!({}));
        // Users named "revoked" are revoked through the account JWT, so make the
        // revocation entry by user key: build the revoked user first.
        let revoked = setup.app.user("revoked", json!({}));
        let app_extra = json!({
            "revocations": {revoked.public(): now() + 60},
            "signing_keys": [
                signer().public_key(),
                {"kind": "user_scope", "key": scoped().public_key(), "role": "r",
                 "template": {"pub": {"allow": ["ok.{{name()}}"]}, "subs": -1, "data": -1, "payload": -1},
                 "description": ""}
            ]
        });
        let setup = Setup { app_extra, ..setup };
        let server = TestServer::with_config(kind, &setup.config()).await;
        let mut got = Vec::new();
        for (name, make, sign, then) in cases() {
            let user = if name == "revoked" {
                clone_user(&revoked)
            } else {
                make(&setup)
            };
            let (lines, closed) = attempt(&server, &user, sign, then).await;
            got.push(format!("{name}: {lines:?} closed={closed}"));
        }
        outcomes.push(got);
    }
    assert_eq!(
        outcomes[0], outcomes[1],
        "rill (left) and nats-server (right) differ"
    );
    insta::assert_snapshot!(outcomes[0].join("\n"));
}

/// Connect times from `from` to `to` seconds around the current time of day in Tokyo
/// (UTC+9, no daylight saving), as `times` in `Asia/Tokyo`.
fn tokyo_times(from: i64, to: i64) -> Value {
    let hms = |offset: i64| {
        let t = (now() + 9 * 3600 + offset).rem_euclid(86_400);
        format!("{:02}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60)
    };
    json!({"times": [{"start": hms(from), "end": hms(to)}], "times_location": "Asia/Tokyo"})
}

fn clone_user(u: &User) -> User {
    User {
        key: nkeys::KeyPair::from_seed(&u.key.seed().expect("seed")).expect("key"),
        jwt: u.jwt.clone(),
    }
}

#[tokio::test]
async fn user_jwt_expiring_on_a_live_connection_ends_it() {
    for kind in KINDS {
        let setup = Setup::new(json!({}));
        let server = TestServer::with_config(kind, &setup.config()).await;
        let user = setup.app.user("short", json!({"exp": now() + 2}));
        let mut conn = hold(&server, &user).await;
        let got = conn
            .read_until_contains(b"User Authentication Expired", Duration::from_secs(6))
            .await;
        assert!(
            String::from_utf8_lossy(&got).contains("-ERR 'User Authentication Expired'"),
            "{kind:?}: {got:?}"
        );
        assert!(conn.is_closed_within(WAIT).await, "{kind:?}");
    }
}
