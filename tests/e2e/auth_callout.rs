//! Auth callout (nats-server 2.10, ADR-26), every scenario against rill and nats-server
//! 2.15.1 side by side, with a small callout service written here on async-nats.
//!
//! The service connects as an `auth_users` user, takes `$SYS.REQ.USER.AUTH` requests (a
//! JWT signed by the server; sealed to the service's xkey when one is configured), and
//! answers with a response JWT signed by the issuer account carrying a user JWT for the
//! request's `user_nkey` (or an error). What it does depends on the CONNECT's user name:
//! `alice` is placed in APP with permissions, `bob` gets an error, `slow` no answer,
//! `thief` a JWT for another user key, `brief` a JWT expiring in 2 s.
//!
//! Observed on nats-server and required of rill: placed clients get the JWT's account and
//! permissions; every refusal (error, timeout, wrong user, wrong issuer) is `-ERR
//! 'Authorization Violation'`; a JWT expiring on a live connection ends it with `-ERR
//! 'User Authentication Expired'`; the request's claims carry the same fields.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::StreamExt;
use nkeys::{KeyPair, XKey};
use rill_tests::jwt::{Account, Operator, merge, now, sign};
use rill_tests::raw::Conn;
use rill_tests::{ServerKind, TestServer};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(5);
const KINDS: [ServerKind; 2] = [ServerKind::Rill, ServerKind::Nats];
const XKEY_HEADER: &str = "Nats-Server-Xkey";

/// The callout service's keys and what it saw.
#[derive(Clone)]
pub(crate) struct Service {
    /// Signs responses and user JWTs (the configured `issuer`).
    issuer: Arc<KeyPair>,
    /// Opens sealed requests when set.
    xkey: Option<Arc<XKey>>,
    /// The account placed users go to: a name (config mode) or a key (operator mode).
    target: String,
    /// Operator mode: the target account's key, which signs user JWTs (the envelope
    /// stays signed by `issuer`).
    user_signer: Option<Arc<KeyPair>>,
    /// The decoded request claims, in arrival order.
    pub(crate) seen: Arc<Mutex<Vec<Value>>>,
}

impl Service {
    pub(crate) fn new(issuer: KeyPair, xkey: Option<XKey>, target: &str) -> Self {
        Self {
            issuer: Arc::new(issuer),
            xkey: xkey.map(Arc::new),
            target: target.to_string(),
            user_signer: None,
            seen: Arc::default(),
        }
    }

    /// Serves requests on `client` until the test ends.
    pub(crate) async fn start(self, client: async_nats::Client) {
        let mut requests = client
            .subscribe("$SYS.REQ.USER.AUTH")
            .await
            .expect("subscribe to auth requests");
        client.flush().await.expect("flush");
        tokio::spawn(async move {
            while let Some(msg) = requests.next().await {
                let server_xkey = msg
                    .headers
                    .as_ref()
                    .and_then(|h| h.get(XKEY_HEADER))
                    .map(|v| v.as_str().to_string());
                if let Some(answer) = self.answer(&msg.payload, server_xkey.as_deref())
                    && let Some(reply) = msg.reply
                {
                    let _ = client.publish(reply, answer.into()).await;
                }
            }
        });
    }

    fn answer(&self, payload: &[u8], server_xkey: Option<&str>) -> Option<Vec<u8>> {
        let plain = match (&self.xkey, server_xkey) {
            (Some(xkey), Some(from)) => {
                let from = XKey::from_public_key(from).expect("server xkey");
                xkey.open(payload, &from).expect("open sealed request")
            }
            _ => payload.to_vec(),
        };
        let token = String::from_utf8(plain).expect("request is text");
        let claims = claims_of(&token);
        self.seen.lock().expect("seen").push(claims.clone());
        let user_nkey = claims["nats"]["user_nkey"].as_str().expect("user_nkey");
        let server_id = claims["nats"]["server_id"]["id"]
            .as_str()
            .expect("server id");
        let name = claims["nats"]["connect_opts"]["user"]
            .as_str()
            .unwrap_or_default();
        let nats = match name {
            "slow" => return None,
            "bob" => json!({"error": "bob is not welcome"}),
            "thief" => {
                json!({"jwt": self.user_jwt(&KeyPair::new_user().public_key(), name, json!({}))})
            }
            "brief" => json!({"jwt": self.user_jwt(user_nkey, name, json!({"exp": now() + 2}))}),
            _ => json!({"jwt": self.user_jwt(user_nkey, name, json!({}))}),
        };
        let mut response = json!({"type": "authorization_response", "version": 2});
        merge(&mut response, nats);
        let token = sign(
            &self.issuer,
            json!({"sub": user_nkey, "aud": server_id, "nats": response}),
        );
        let server_xkey = server_xkey.and_then(|k| XKey::from_public_key(k).ok());
        Some(match (&self.xkey, server_xkey) {
            (Some(xkey), Some(to)) => xkey.seal(token.as_bytes(), &to).expect("seal"),
            _ => token.into_bytes(),
        })
    }

    /// A user JWT placing `user_nkey` in the target account (its `aud` in config mode, its
    /// signer in operator mode), allowed `app.>` and inboxes.
    fn user_jwt(&self, user_nkey: &str, name: &str, top: Value) -> String {
        let nats = json!({
            "type": "user", "version": 2, "subs": -1, "data": -1, "payload": -1,
            "pub": {"allow": ["app.>", "_INBOX.>"]}, "sub": {"allow": ["app.>", "_INBOX.>"]}
        });
        let mut claims = json!({"sub": user_nkey, "name": name, "nats": nats});
        if self.user_signer.is_none() {
            claims["aud"] = json!(self.target);
        }
        merge(&mut claims, top);
        sign(self.user_signer.as_deref().unwrap_or(&self.issuer), claims)
    }
}

/// The claims of a JWT, unverified.
fn claims_of(token: &str) -> Value {
    let body = token.split('.').nth(1).expect("three parts");
    let json = URL_SAFE_NO_PAD.decode(body).expect("base64url claims");
    serde_json::from_slice(&json).expect("claims JSON")
}

/// Server config mode: the service's user `auth` in account AUTH, clients placed in APP.
pub(crate) fn config_mode(issuer: &KeyPair, xkey: Option<&XKey>) -> String {
    let xkey = xkey.map_or(String::new(), |x| format!("xkey: {}", x.public_key()));
    format!(
        "accounts {{\n  AUTH {{ users: [ {{user: auth, password: pwd}} ] }}\n  APP {{}}\n}}\n\
         authorization {{\n  timeout: 1\n  auth_callout {{\n    issuer: {}\n    auth_users: [ auth ]\n    account: AUTH\n    {xkey}\n  }}\n}}\n",
        issuer.public_key()
    )
}

pub(crate) async fn service_client(server: &TestServer) -> async_nats::Client {
    async_nats::ConnectOptions::with_user_and_password("auth".into(), "pwd".into())
        .connect(server.url())
        .await
        .unwrap_or_else(|e| panic!("service connects: {e}\n{}", server.logs()))
}

/// CONNECT as `user` (password `pw`) on a raw connection, then `then` and PING; what came
/// back within a moment past the callout timeout, and whether the server closed.
async fn attempt(server: &TestServer, user: &str, then: &str) -> (Vec<String>, bool) {
    attempt_with(server, json!({"user": user}), then).await
}

/// [`attempt`] with more CONNECT fields (a sentinel JWT).
async fn attempt_with(server: &TestServer, extra: Value, then: &str) -> (Vec<String>, bool) {
    let mut conn = Conn::connect(server.port()).await;
    let mut connect = json!({"verbose": false, "pass": "pw", "headers": true});
    merge(&mut connect, extra);
    conn.send(format!("CONNECT {connect}\r\n{then}PING\r\n").as_bytes())
        .await;
    let got = conn.read_until(Duration::from_millis(1500)).await;
    let closed = conn.is_closed_within(Duration::from_millis(300)).await;
    let lines = String::from_utf8_lossy(&got)
        .split("\r\n")
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    (lines, closed)
}

async fn alice(server: &TestServer) -> async_nats::Client {
    async_nats::ConnectOptions::with_user_and_password("alice".into(), "pw".into())
        .connect(server.url())
        .await
        .unwrap_or_else(|e| panic!("alice connects: {e}\n{}", server.logs()))
}

/// The request claims with the values that differ per run or per server replaced by
/// their kind, for the side-by-side snapshot.
pub(crate) fn shape(claims: &Value) -> Value {
    fn walk(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                Value::Object(m.iter().map(|(k, v)| (k.clone(), walk(v))).collect())
            }
            Value::String(_) => json!("<string>"),
            Value::Number(_) => json!("<number>"),
            other => other.clone(),
        }
    }
    let mut out = walk(claims);
    for keep in [
        "aud",
        "nats.type",
        "nats.version",
        "nats.client_info.kind",
        "nats.client_info.type",
        "nats.connect_opts.user",
        "nats.connect_opts.pass",
        "nats.connect_opts.lang",
    ] {
        let mut src = claims;
        let mut dst = &mut out;
        for part in keep.split('.') {
            src = &src[part];
            dst = &mut dst[part];
        }
        *dst = src.clone();
    }
    out
}

#[tokio::test]
async fn config_mode_callout_places_refuses_and_expires_as_nats_server() {
    let mut shapes = Vec::new();
    for kind in KINDS {
        let issuer = KeyPair::new_account();
        let server = TestServer::with_config(kind, &config_mode(&issuer, None)).await;
        let service = Service::new(
            KeyPair::from_seed(&issuer.seed().expect("seed")).expect("key"),
            None,
            "APP",
        );
        let seen = Arc::clone(&service.seen);
        service.start(service_client(&server).await).await;

        // Placed in APP with the JWT's permissions.
        let client = alice(&server).await;
        let mut sub = client.subscribe("app.greet").await.expect("subscribe");
        client
            .publish("app.greet", "hi".into())
            .await
            .expect("publish");
        let msg = tokio::time::timeout(WAIT, sub.next())
            .await
            .expect("message");
        assert_eq!(msg.map(|m| m.payload), Some("hi".into()), "{kind:?}");
        let (lines, closed) = attempt(&server, "alice", "PUB other 1\r\nx\r\n").await;
        assert_eq!(
            (lines, closed),
            (
                vec![
                    "-ERR 'Permissions Violation for Publish to \"other\"'".to_string(),
                    "PONG".into()
                ],
                false
            ),
            "{kind:?}"
        );
        // The service in AUTH does not see APP's traffic (accounts apart).
        let service_side = service_client(&server).await;
        let mut other = service_side
            .subscribe("app.greet")
            .await
            .expect("subscribe");
        service_side.flush().await.expect("flush");
        client
            .publish("app.greet", "again".into())
            .await
            .expect("publish");
        client.flush().await.expect("flush");
        assert!(
            tokio::time::timeout(Duration::from_millis(300), other.next())
                .await
                .is_err(),
            "{kind:?}: APP's message reached AUTH"
        );

        let violation = (vec!["-ERR 'Authorization Violation'".to_string()], true);
        for refused in ["bob", "slow", "thief"] {
            assert_eq!(
                attempt(&server, refused, "").await,
                violation,
                "{kind:?} {refused}"
            );
        }

        // A user JWT that expires on a live connection ends it.
        let mut conn = Conn::connect(server.port()).await;
        let connect = json!({"verbose": false, "user": "brief", "pass": "pw"});
        conn.send(format!("CONNECT {connect}\r\nPING\r\n").as_bytes())
            .await;
        let got = conn.read_until_contains(b"PONG", WAIT).await;
        assert!(
            String::from_utf8_lossy(&got).contains("PONG"),
            "{kind:?}: brief connects"
        );
        let got = conn.read_until_contains(b"Expired", WAIT).await;
        assert!(
            String::from_utf8_lossy(&got).contains("-ERR 'User Authentication Expired'"),
            "{kind:?}: {}",
            String::from_utf8_lossy(&got)
        );

        let first = seen.lock().expect("seen")[0].clone();
        assert_eq!(
            first["iss"].as_str().map(|s| &s[..1]),
            Some("N"),
            "{kind:?}: signed by the server"
        );
        assert_eq!(first["sub"], json!(issuer.public_key()), "{kind:?}");
        shapes.push(shape(&first));
    }
    assert_eq!(
        shapes[0], shapes[1],
        "request claims differ from nats-server's"
    );
    insta::assert_json_snapshot!("auth_callout_request_claims", shapes[0]);
}

#[tokio::test]
async fn config_mode_callout_with_xkey_seals_both_ways_as_nats_server() {
    for kind in KINDS {
        let issuer = KeyPair::new_account();
        let xkey = XKey::new();
        let config = config_mode(&issuer, Some(&xkey));
        let server = TestServer::with_config(kind, &config).await;
        let service = Service::new(
            KeyPair::from_seed(&issuer.seed().expect("seed")).expect("key"),
            Some(XKey::from_seed(&xkey.seed().expect("seed")).expect("xkey")),
            "APP",
        );
        let seen = Arc::clone(&service.seen);
        service.start(service_client(&server).await).await;
        let client = alice(&server).await;
        let mut sub = client.subscribe("app.x").await.expect("subscribe");
        client
            .publish("app.x", "sealed".into())
            .await
            .expect("publish");
        let msg = tokio::time::timeout(WAIT, sub.next())
            .await
            .expect("message");
        assert_eq!(msg.map(|m| m.payload), Some("sealed".into()), "{kind:?}");
        let first = seen.lock().expect("seen")[0].clone();
        assert_eq!(
            first["nats"]["server_id"]["xkey"].as_str().map(|s| &s[..1]),
            Some("X"),
            "{kind:?}: the request names the server's xkey"
        );
        // A service that does not hold the xkey cannot answer.
        let violation = (vec!["-ERR 'Authorization Violation'".to_string()], true);
        assert_eq!(attempt(&server, "bob", "").await, violation, "{kind:?}");
    }
}

#[tokio::test]
async fn config_mode_callout_settings_are_checked_at_start() {
    let issuer = KeyPair::new_account().public_key();
    for (config, why) in [
        (
            "authorization { users: [{user: a}], auth_callout { auth_users: [a] } }".to_string(),
            "issuer",
        ),
        (
            format!(
                "authorization {{ users: [{{user: a}}], auth_callout {{ issuer: {issuer} }} }}"
            ),
            "authorized users",
        ),
        (
            format!(
                "authorization {{ users: [{{user: a}}], auth_callout {{ issuer: {}, auth_users: [a] }} }}",
                KeyPair::new_user().public_key()
            ),
            "account nkey",
        ),
        (
            format!(
                "authorization {{ users: [{{user: a}}], auth_callout {{ issuer: {issuer}, auth_users: [a], xkey: nope }} }}"
            ),
            "xkey",
        ),
        (
            format!(
                "authorization {{ users: [{{user: a}}], auth_callout {{ issuer: {issuer}, auth_users: [a], allowed_accounts: [NOPE] }} }}"
            ),
            "NOPE",
        ),
    ] {
        for kind in KINDS {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("c.conf");
            std::fs::write(&path, &config).expect("write config");
            let out = std::process::Command::new(kind.bin())
                .args(["-t", "-c"])
                .arg(&path)
                .output()
                .expect("run server -t");
            let text = String::from_utf8_lossy(&out.stderr).to_string()
                + &String::from_utf8_lossy(&out.stdout);
            assert!(!out.status.success(), "{kind:?} accepted {config}");
            assert!(text.contains(why), "{kind:?} on {config}: {text}");
        }
    }
}

#[tokio::test]
async fn operator_mode_callout_places_users_in_allowed_accounts_as_nats_server() {
    for kind in KINDS {
        let operator = Operator::new();
        let sys = Account::new("SYS");
        let auth = Account::new("AUTH");
        let app = Account::new("APP");
        let service_user = auth.user("auth-service", json!({}));
        // The sentinel: a bearer user of AUTH every client connects with.
        let sentinel = auth.user("sentinel", json!({"bearer_token": true}));
        let auth_jwt = operator.account_jwt(
            &auth,
            json!({"authorization": {"auth_users": [service_user.public()], "allowed_accounts": [app.public()]}}),
        );
        let config = format!(
            "operator: {}\nsystem_account: {}\nresolver: MEMORY\nauthorization {{ timeout: 1 }}\nresolver_preload: {{\n  {}: {}\n  {}: {auth_jwt}\n  {}: {}\n}}\n",
            operator.jwt(json!({"system_account": sys.public()})),
            sys.public(),
            sys.public(),
            operator.account_jwt(&sys, json!({})),
            auth.public(),
            app.public(),
            operator.account_jwt(&app, json!({})),
        );
        let server = TestServer::with_config(kind, &config).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let creds = dir.path().join("service.creds");
        std::fs::write(&creds, service_user.creds()).expect("write creds");
        let service_conn = async_nats::ConnectOptions::with_credentials_file(&creds)
            .await
            .expect("creds")
            .connect(server.url())
            .await
            .unwrap_or_else(|e| panic!("{kind:?}: service connects: {e}\n{}", server.logs()));
        let mut service = Service::new(
            KeyPair::from_seed(&auth.key.seed().expect("seed")).expect("key"),
            None,
            &app.public(),
        );
        service.user_signer = Some(Arc::new(
            KeyPair::from_seed(&app.key.seed().expect("seed")).expect("key"),
        ));
        service.start(service_conn).await;

        let sentinel_creds = dir.path().join("sentinel.creds");
        std::fs::write(&sentinel_creds, sentinel.creds()).expect("write creds");
        let client = async_nats::ConnectOptions::with_credentials_file(&sentinel_creds)
            .await
            .expect("creds")
            .user_and_password("alice".into(), "pw".into())
            .connect(server.url())
            .await
            .unwrap_or_else(|e| panic!("{kind:?}: alice connects: {e}\n{}", server.logs()));
        let mut sub = client.subscribe("app.op").await.expect("subscribe");
        client
            .publish("app.op", "placed".into())
            .await
            .expect("publish");
        let msg = tokio::time::timeout(WAIT, sub.next())
            .await
            .expect("message");
        assert_eq!(msg.map(|m| m.payload), Some("placed".into()), "{kind:?}");
        // A user of APP that connects directly sees alice's traffic: she is in APP.
        let direct = app.user("direct", json!({}));
        let mut conn = Conn::connect(server.port()).await;
        let nonce = conn.info()["nonce"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let connect =
            json!({"verbose": false, "jwt": direct.jwt, "sig": direct.sign_nonce(&nonce)});
        conn.send(format!("CONNECT {connect}\r\nSUB app.op 1\r\nPING\r\n").as_bytes())
            .await;
        let got = conn.read_until_contains(b"PONG", WAIT).await;
        assert!(
            String::from_utf8_lossy(&got).ends_with("PONG\r\n"),
            "{kind:?}: {got:?}"
        );
        client
            .publish("app.op", "seen".into())
            .await
            .expect("publish");
        client.flush().await.expect("flush");
        let got = conn.read_until_contains(b"seen", WAIT).await;
        assert_eq!(
            String::from_utf8_lossy(&got),
            "MSG app.op 1 4\r\nseen\r\n",
            "{kind:?}"
        );

        // Refusals: the service's error, no answer.
        let violation = (vec!["-ERR 'Authorization Violation'".to_string()], true);
        for who in ["bob", "slow", "thief"] {
            let connect = json!({"user": who, "jwt": sentinel.jwt});
            assert_eq!(
                attempt_with(&server, connect, "").await,
                violation,
                "{kind:?} {who}"
            );
        }
    }
}
