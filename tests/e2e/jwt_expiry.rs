//! An account JWT that expires while its users are connected, side by side with
//! nats-server 2.15.1.
//!
//! Measured on 2.15.1 first: when the account JWT's `exp` passes, every connection of
//! the account is sent `-ERR 'Account Authentication Expired'` and closed (logged at debug level
//! as `Client connection closed: Authentication Expired`), within about a second of the
//! expiry second; other accounts' connections stay; the account's users are then refused
//! with `-ERR 'Authorization Violation'`. An update that moves `exp` later, pushed before
//! it passes, keeps the connections past the old expiry.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rill_tests::jwt::{Account, Operator, now, sign};
use rill_tests::raw::Conn;
use rill_tests::{ServerKind, ServerOpts, TestServer, check_for};
use serde_json::{Value, json};

use crate::jwt_auth::{Setup, attempt, hold};

const KINDS: [ServerKind; 2] = [ServerKind::Rill, ServerKind::Nats];

/// `account`'s JWT with `nats` extras that expires at `exp` (unix seconds).
fn expiring_jwt(operator: &Operator, account: &Account, extra: Value, exp: i64) -> String {
    let jwt = operator.account_jwt(account, extra);
    let body = jwt.split('.').nth(1).expect("claims");
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).expect("base64")).expect("json");
    claims["exp"] = json!(exp);
    sign(&operator.key, claims)
}

/// Milliseconds since the unix epoch.
fn now_ms() -> i64 {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    i64::try_from(ms).unwrap_or(i64::MAX)
}

/// A MEMORY-resolver config with APP (expiring at `exp`) and OTHER preloaded, and no
/// system account (as nats.js's `auth - account expired` runs it).
fn config(setup: &Setup, other: &Account, exp: i64) -> String {
    let op = setup.operator.jwt(json!({}));
    let app = expiring_jwt(&setup.operator, &setup.app, json!({}), exp);
    let oth = setup.operator.account_jwt(other, json!({}));
    format!(
        "operator: {op}\nresolver: MEMORY\nresolver_preload: {{\n  {}: {app}\n  {}: {oth}\n}}\n",
        setup.app.public(),
        other.public(),
    )
}

/// What an account's expiry did on one server.
#[derive(Debug, PartialEq)]
struct Expired {
    /// The `-ERR` the account's client got.
    err: String,
    /// Whether it was then closed.
    closed: bool,
    /// The closed reasons logged (but the harness's `Client Closed` probe).
    reasons: Vec<String>,
    /// Whether another account's client still answers PING.
    other_stays: bool,
    /// What a new connection of the account's user got.
    refused: (Vec<String>, bool),
}

async fn expire_under(kind: ServerKind) -> (Expired, i64) {
    let setup = Setup::new(json!({}));
    let other = Account::new("OTHER");
    let exp = now() + 3;
    let server = TestServer::start_with(ServerOpts {
        kind,
        jetstream: false,
        args: vec!["-D".into()],
        config: Some(config(&setup, &other, exp)),
        ..ServerOpts::default()
    })
    .await;
    let user = setup.app.user("dev", json!({}));
    let mut conn = hold(&server, &user).await;
    let mut bystander = hold(&server, &other.user("b", json!({}))).await;
    let got = conn
        .read_until_contains(b"Expired'\r\n", Duration::from_secs(10))
        .await;
    let after_exp = now_ms() - exp * 1000;
    let text = String::from_utf8_lossy(&got);
    let err = text
        .lines()
        .find(|l| l.starts_with("-ERR"))
        .unwrap_or_default()
        .to_string();
    let closed = conn.is_closed_within(Duration::from_secs(5)).await;
    let reasons = || closed_reasons(&server.logs());
    check_for(Duration::from_secs(5), || {
        std::future::ready(!reasons().is_empty())
    })
    .await;
    let reasons = reasons();
    let other_stays = answers_ping(&mut bystander).await;
    let refused = attempt(&server, &user, true, "").await;
    let seen = Expired {
        err,
        closed,
        reasons,
        other_stays,
        refused,
    };
    (seen, after_exp)
}

/// The reasons of the client connections closed, as logged at debug level (`-D`),
/// but `Client Closed`.
fn closed_reasons(logs: &str) -> Vec<String> {
    logs.lines()
        .filter_map(|l| l.split_once(" - Client connection closed: "))
        .map(|(_, reason)| reason.to_string())
        .filter(|r| r != "Client Closed")
        .collect()
}

/// True when `conn` answers a PING with a PONG.
async fn answers_ping(conn: &mut Conn) -> bool {
    conn.send(b"PING\r\n").await;
    let (got, _) = conn
        .read_until_contains_or_close(b"PONG\r\n", Duration::from_secs(5))
        .await;
    String::from_utf8_lossy(&got).contains("PONG")
}

/// An account JWT whose `exp` passes ends its users' connections as nats-server 2.15.1,
/// also without a system account (rill's first version watched expiries on the system
/// account's task, so nats.js's test waited forever):
/// `-ERR 'Account Authentication Expired'`, closed as `Authentication Expired`, within
/// a few seconds of the expiry (the bound is loose: a loaded machine); another account's
/// client stays; the account's users are refused afterwards.
#[tokio::test]
async fn an_expiring_account_jwt_closes_its_connections_as_nats_server() {
    let mut seen = Vec::new();
    for kind in KINDS {
        let (expired, after_exp) = expire_under(kind).await;
        eprintln!("{kind:?}: {expired:?}, -ERR {after_exp} ms after exp");
        assert!(
            (-1500..4000).contains(&after_exp),
            "{kind:?}: -ERR {after_exp} ms after the expiry second"
        );
        seen.push(expired);
    }
    assert_eq!(
        seen[0], seen[1],
        "rill (left) and nats-server (right) differ"
    );
    assert_eq!(seen[1].err, "-ERR 'Account Authentication Expired'");
    assert_eq!(seen[1].reasons, ["Authentication Expired"]);
}

/// An account JWT update pushed before the account expires moves the expiry: its
/// connection stays past the old `exp` (a full resolver takes the update over
/// `$SYS.REQ.CLAIMS.UPDATE`), then ends at the new one as nats-server 2.15.1.
#[tokio::test]
async fn an_update_before_the_expiry_moves_it_as_nats_server() {
    for kind in KINDS {
        let setup = Setup::new(json!({}));
        let dir = tempfile::tempdir().expect("tempdir");
        let exp = now() + 2;
        let first = expiring_jwt(&setup.operator, &setup.app, json!({}), exp);
        std::fs::write(
            dir.path().join(format!("{}.jwt", setup.app.public())),
            first,
        )
        .expect("account file");
        let server = TestServer::with_config(
            kind,
            &crate::jwt_resolver::full_config(&setup, dir.path(), ""),
        )
        .await;
        let mut conn = hold(&server, &setup.app.user("dev", json!({}))).await;
        let sys = crate::jwt_resolver::connect_user(server.url(), &setup.sys.user("s", json!({})))
            .await
            .expect("sys connects");
        let later = exp + 3;
        let update = expiring_jwt(&setup.operator, &setup.app, json!({}), later);
        let reply = sys
            .request("$SYS.REQ.CLAIMS.UPDATE", update.into())
            .await
            .expect("update answered");
        let reply = String::from_utf8_lossy(&reply.payload).into_owned();
        assert!(reply.contains("\"code\":200"), "{kind:?}: {reply}");
        // Past the first expiry (and its second) the connection still answers.
        while now_ms() < (exp + 1) * 1000 + 500 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            answers_ping(&mut conn).await,
            "{kind:?}: closed at the old exp"
        );
        let got = conn
            .read_until_contains(b"Expired'\r\n", Duration::from_secs(8))
            .await;
        let after = now_ms() - later * 1000;
        assert!(
            String::from_utf8_lossy(&got).contains("-ERR 'Account Authentication Expired'"),
            "{kind:?}: {got:?}"
        );
        assert!(
            (-1500..4000).contains(&after),
            "{kind:?}: {after} ms after the new exp"
        );
        assert!(
            conn.is_closed_within(Duration::from_secs(5)).await,
            "{kind:?}"
        );
    }
}
