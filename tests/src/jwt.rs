//! Operators, accounts and users for operator-mode tests: keys made with `nkeys`, claims
//! written as JSON in nats-io/jwt v2's layout and signed here, and `.creds` files, so the
//! tests need no `nsc`.
//!
//! Each builder fills what `nsc` fills (limits of `-1`, `nats.type` and `nats.version`);
//! a test adds or overrides fields with a JSON object merged into `nats`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use nkeys::KeyPair;
use serde_json::{Value, json};

/// Makes token ids unique within a test run.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Seconds since the unix epoch.
pub fn now() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    i64::try_from(secs).unwrap_or(i64::MAX)
}

/// Signs `claims` (whose `iss` is set to `signer`'s key) as a v2 JWT.
pub fn sign(signer: &KeyPair, mut claims: Value) -> String {
    claims["iss"] = json!(signer.public_key());
    if claims.get("iat").is_none() {
        claims["iat"] = json!(now());
    }
    if claims.get("jti").is_none() {
        let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        claims["jti"] = json!(format!("T{}X{n}", now()));
    }
    let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signed = format!("{header}.{body}");
    let sig = signer.sign(signed.as_bytes()).expect("sign with a seed");
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(sig))
}

/// Merges `extra`'s keys into `base` (objects recursively).
pub fn merge(base: &mut Value, extra: Value) {
    match (base, extra) {
        (Value::Object(b), Value::Object(e)) => {
            for (k, v) in e {
                merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, e) => *b = e,
    }
}

/// An operator with its key.
#[derive(Debug)]
pub struct Operator {
    /// The operator's identity key.
    pub key: KeyPair,
}

impl Default for Operator {
    fn default() -> Self {
        Self::new()
    }
}

impl Operator {
    /// A new operator.
    pub fn new() -> Self {
        Self {
            key: KeyPair::new_operator(),
        }
    }

    /// The self-signed operator JWT, with `nats` extras (e.g. `system_account`).
    pub fn jwt(&self, extra: Value) -> String {
        let mut nats = json!({"type": "operator", "version": 2});
        merge(&mut nats, extra);
        sign(
            &self.key,
            json!({"sub": self.key.public_key(), "name": "test-operator", "nats": nats}),
        )
    }

    /// An account JWT for `account`, signed by the operator, with `nats` extras.
    pub fn account_jwt(&self, account: &Account, extra: Value) -> String {
        self.account_jwt_signed_by(&self.key, account, extra)
    }

    /// An account JWT for `account` issued at `iat` (unix seconds), with `nats` extras:
    /// an update that must count as newer than one issued in the same second.
    pub fn account_jwt_issued(&self, account: &Account, extra: Value, iat: i64) -> String {
        let jwt = self.account_jwt(account, extra);
        let body = jwt.split('.').nth(1).expect("claims");
        let mut claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).expect("base64")).expect("json");
        claims["iat"] = json!(iat);
        claims.as_object_mut().expect("claims object").remove("jti");
        sign(&self.key, claims)
    }

    /// An account JWT signed by `signer` (the operator key or one of its signing keys).
    pub fn account_jwt_signed_by(
        &self,
        signer: &KeyPair,
        account: &Account,
        extra: Value,
    ) -> String {
        let mut nats = json!({
            "type": "account", "version": 2,
            "limits": {"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
                       "wildcards": true, "conn": -1, "leaf": -1}
        });
        merge(&mut nats, extra);
        sign(
            signer,
            json!({"sub": account.key.public_key(), "name": account.name, "nats": nats}),
        )
    }
}

/// An account with its key.
#[derive(Debug)]
pub struct Account {
    /// The account's name (claim `name`).
    pub name: String,
    /// The account's identity key.
    pub key: KeyPair,
}

impl Account {
    /// A new account.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            key: KeyPair::new_account(),
        }
    }

    /// The account's public key.
    pub fn public(&self) -> String {
        self.key.public_key()
    }

    /// A new user of this account, signed by the account key, with `nats` extras.
    pub fn user(&self, name: &str, extra: Value) -> User {
        self.user_signed_by(&self.key, name, extra)
    }

    /// A new user signed by `signer` (the account key or one of its signing keys).
    pub fn user_signed_by(&self, signer: &KeyPair, name: &str, extra: Value) -> User {
        let key = KeyPair::new_user();
        let mut nats = json!({"type": "user", "version": 2, "subs": -1, "data": -1, "payload": -1});
        if signer.public_key() != self.public() {
            nats["issuer_account"] = json!(self.public());
        }
        let mut top = json!({});
        if let Value::Object(extra) = extra {
            for (k, v) in extra {
                match k.as_str() {
                    "exp" | "iat" | "nbf" => {
                        top[k] = v;
                    }
                    _ => merge(&mut nats, json!({ k: v })),
                }
            }
        }
        let mut claims = json!({"sub": key.public_key(), "name": name, "nats": nats});
        merge(&mut claims, top);
        let jwt = sign(signer, claims);
        User { key, jwt }
    }
}

/// A user: key and JWT.
#[derive(Debug)]
pub struct User {
    /// The user's key (with seed).
    pub key: KeyPair,
    /// The user JWT.
    pub jwt: String,
}

impl User {
    /// The user's public key.
    pub fn public(&self) -> String {
        self.key.public_key()
    }

    /// The `.creds` file text (JWT and seed between nsc's armor lines).
    pub fn creds(&self) -> String {
        let seed = self.key.seed().expect("user seed");
        format!(
            "-----BEGIN NATS USER JWT-----\n{}\n------END NATS USER JWT------\n\n\
             ************************* IMPORTANT *************************\n\
             NKEY Seed printed below can be used to sign and prove identity.\n\n\
             -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n",
            self.jwt
        )
    }

    /// The CONNECT signature of `nonce` (base64url).
    pub fn sign_nonce(&self, nonce: &str) -> String {
        URL_SAFE_NO_PAD.encode(self.key.sign(nonce.as_bytes()).expect("sign nonce"))
    }
}

impl Account {
    /// An activation token: this account (the exporter) lets `importer` import
    /// `subject` of `kind` (`stream` or `service`), with top-level extras (`exp`, `iat`).
    pub fn activation(
        &self,
        importer: &Account,
        subject: &str,
        kind: &str,
        extra: Value,
    ) -> String {
        let nats = json!({"type": "activation", "version": 2, "subject": subject, "kind": kind});
        let mut claims = json!({"sub": importer.public(), "name": subject, "nats": nats});
        merge(&mut claims, extra);
        sign(&self.key, claims)
    }
}
