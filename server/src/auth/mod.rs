//! Client authentication: who a connection is, which account it belongs to and what it
//! may do.
//!
//! An [`Authenticator`] is built once from the [`Config`] (and again on reload) and shared
//! read-only. It owns the user table (single user, token, `users: [...]`, account users,
//! nkey users), checks a CONNECT against it and answers with an [`Identity`]. It does not
//! own connections: the client task calls [`Authenticator::authenticate`] once, when
//! CONNECT arrives, and reports a failure as nats-server does
//! (`-ERR 'Authorization Violation'` and close), never saying which check failed.
//!
//! Checks, in nats-server's order: a TLS client certificate mapped to a user
//! (`verify_and_map`), an nkey with its signature over the INFO nonce, a token, a user and
//! password; a client that sends no credentials at all becomes `no_auth_user` when that is
//! set. Passwords and tokens starting with `$2` are bcrypt hashes. With an auth callout
//! ([`callout`]) the client's task then asks the callout service, whose answer replaces
//! the outcome ([`Authenticator::callout_plan`] says when). A leaf-node link keeps to its
//! leaf user's permissions through [`leaf::LinkPermissions`].

pub mod callout;
pub mod cert;
pub mod jwt;
pub mod leaf;
pub mod offload;
pub mod permissions;

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand::RngExt;
use rill_protocol::Connect;

use crate::config::{self, Config, UserConfig};
use crate::shared::GLOBAL_ACCOUNT;

pub use cert::CertIdentity;
pub use leaf::LinkPermissions;
pub use permissions::Permissions;

/// Why a CONNECT was refused. Deliberately coarse: the client only ever learns
/// "Authorization Violation".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No configured user matches the credentials.
    #[error("no user matches the credentials")]
    NoMatch,
    /// The user exists but the secret or signature is wrong.
    #[error("bad credentials for user \"{0}\"")]
    BadCredentials(String),
    /// A certificate was required for `verify_and_map` but none mapped to a user.
    #[error("client certificate does not map to a user")]
    CertNotMapped,
    /// A user JWT was refused (operator mode); the text says why.
    #[error("{0}")]
    Jwt(String),
    /// The auth callout service refused the client or did not answer; the text says why.
    #[error("{0}")]
    Callout(String),
}

/// The outcome of a successful authentication.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    /// The user name (or nkey, or mapped certificate name); `None` without auth.
    pub user: Option<String>,
    /// The account the connection joins.
    pub account: String,
    /// Compiled permissions, `None` when the user may do anything.
    pub permissions: Option<Arc<Permissions>>,
    /// The JWT user (operator mode): limits, expiry, revocation data.
    pub jwt: Option<Arc<jwt::JwtUser>>,
}

impl Identity {
    fn anonymous() -> Self {
        Self {
            user: None,
            account: GLOBAL_ACCOUNT.to_string(),
            permissions: None,
            jwt: None,
        }
    }

    fn from_jwt(user: jwt::JwtUser) -> Self {
        Self {
            user: Some(user.key.clone()),
            account: user.account.clone(),
            permissions: user
                .permissions
                .as_ref()
                .map(|p| Arc::new(Permissions::compile(p))),
            jwt: Some(Arc::new(user)),
        }
    }
}

/// A stored secret: plain text or a bcrypt hash.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Secret {
    Plain(String),
    Bcrypt(String),
}

impl Secret {
    fn new(s: &str) -> Self {
        if s.starts_with("$2") {
            Self::Bcrypt(s.to_string())
        } else {
            Self::Plain(s.to_string())
        }
    }

    fn check(&self, given: &str) -> bool {
        match self {
            Self::Plain(p) => constant_time_eq(p.as_bytes(), given.as_bytes()),
            Self::Bcrypt(h) => bcrypt::verify(given, h).unwrap_or(false),
        }
    }
}

/// True when `given` matches the configured `stored` secret (plain, or a bcrypt hash
/// starting with `$2`), as user passwords are checked; route authorization uses it.
pub fn check_secret(stored: &str, given: &str) -> bool {
    Secret::new(stored).check(given)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// One configured user.
#[derive(Debug, Clone)]
struct User {
    name: String,
    secret: Option<Secret>,
    account: String,
    permissions: Option<Arc<Permissions>>,
}

impl User {
    fn identity(&self) -> Identity {
        Identity {
            user: Some(self.name.clone()),
            account: self.account.clone(),
            permissions: self.permissions.clone(),
            jwt: None,
        }
    }
}

/// The authentication rules of one configuration.
#[derive(Debug, Default)]
pub struct Authenticator {
    users: HashMap<String, User>,
    nkeys: HashMap<String, User>,
    token: Option<(Secret, Option<Arc<Permissions>>)>,
    no_auth_user: Option<String>,
    verify_and_map: bool,
    /// Operator mode: users are JWTs checked against resolved accounts.
    jwt: Option<Arc<jwt::JwtAuth>>,
    /// Server config mode auth callout: who is handed to the service.
    callout: Option<config::AuthCallout>,
}

impl Authenticator {
    /// Builds the user table from `config`.
    pub fn new(config: &Config) -> Self {
        let auth = &config.authorization;
        let default_perms = auth.default_permissions.as_ref();
        let mut me = Self {
            no_auth_user: config.no_auth_user.clone(),
            verify_and_map: config.tls.as_ref().is_some_and(|t| t.verify_and_map),
            callout: auth.auth_callout.clone(),
            ..Self::default()
        };
        if let Some(token) = &auth.token {
            me.token = Some((Secret::new(token), compile(default_perms)));
        }
        if let Some(user) = &auth.user {
            let single = UserConfig {
                user: Some(user.clone()),
                password: auth.password.clone(),
                ..UserConfig::default()
            };
            me.add(&single, GLOBAL_ACCOUNT, default_perms);
        }
        for u in &auth.users {
            let account = u.account.as_deref().unwrap_or(GLOBAL_ACCOUNT);
            let defaults = account_defaults(config, account).or(default_perms);
            me.add(u, account, defaults);
        }
        for acc in &config.accounts {
            for u in &acc.users {
                let defaults = acc.default_permissions.as_ref().or(default_perms);
                me.add(u, &acc.name, defaults);
            }
        }
        me
    }

    fn add(&mut self, u: &UserConfig, account: &str, defaults: Option<&config::Permissions>) {
        let permissions = compile(u.permissions.as_ref().or(defaults));
        if let Some(nkey) = &u.nkey {
            let user = User {
                name: nkey.clone(),
                secret: None,
                account: account.to_string(),
                permissions,
            };
            self.nkeys.insert(nkey.clone(), user);
        } else if let Some(name) = &u.user {
            let user = User {
                name: name.clone(),
                secret: u.password.as_deref().map(Secret::new),
                account: account.to_string(),
                permissions,
            };
            self.users.insert(name.clone(), user);
        }
    }

    /// Switches to operator mode (the configured users are then empty, as nats-server
    /// requires).
    #[must_use]
    pub fn with_jwt(mut self, jwt: Option<Arc<jwt::JwtAuth>>) -> Self {
        self.jwt = jwt;
        self
    }

    /// Operator mode, when configured.
    pub fn jwt(&self) -> Option<&Arc<jwt::JwtAuth>> {
        self.jwt.as_ref()
    }

    /// True when clients must authenticate (INFO `auth_required`).
    pub fn required(&self) -> bool {
        !self.users.is_empty()
            || !self.nkeys.is_empty()
            || self.token.is_some()
            || self.jwt.is_some()
    }

    /// True when checking `connect` takes a bcrypt verification (slow on purpose): the
    /// caller runs it off the async workers ([`offload::authenticate_client`]).
    pub fn is_costly(&self, connect: &Connect) -> bool {
        if self.jwt.is_some() || self.verify_and_map || connect.nkey.is_some() {
            return false;
        }
        let bcrypt = |s: Option<&Secret>| matches!(s, Some(Secret::Bcrypt(_)));
        if connect.auth_token.is_some() && self.token.is_some() {
            return bcrypt(self.token.as_ref().map(|(s, _)| s));
        }
        connect
            .user
            .as_ref()
            .is_some_and(|name| bcrypt(self.users.get(name).and_then(|u| u.secret.as_ref())))
    }

    /// The account of the configured user (or nkey) `name`; `None` when there is no such
    /// user. A reload closes connections whose user this no longer finds in their account.
    pub fn account_of(&self, name: &str) -> Option<&str> {
        self.users
            .get(name)
            .or_else(|| self.nkeys.get(name))
            .map(|u| u.account.as_str())
    }

    /// A fresh nonce for INFO when nkey users exist; `None` otherwise.
    pub fn nonce(&self) -> Option<String> {
        if self.nkeys.is_empty() && self.jwt.is_none() {
            return None;
        }
        let mut bytes = [0u8; 16];
        rand::rng().fill(&mut bytes);
        Some(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Checks a client's CONNECT: by its user JWT in operator mode (`conn_type`,
    /// `STANDARD` or `WEBSOCKET`, checked against the JWT's allowed connection types),
    /// else as [`Authenticator::authenticate`] does.
    ///
    /// # Errors
    /// [`AuthError`] when the credentials are refused.
    pub fn authenticate_client(
        &self,
        connect: &Connect,
        nonce: Option<&str>,
        cert: Option<&CertIdentity>,
        (ip, conn_type): (Option<std::net::IpAddr>, &str),
    ) -> Result<Identity, AuthError> {
        let Some(jwt) = &self.jwt else {
            return self.authenticate(connect, nonce, cert);
        };
        let check = jwt::UserCheck {
            connect,
            nonce,
            ip,
            conn_type,
        };
        jwt.authenticate(&check)
            .map(Identity::from_jwt)
            .map_err(|e| AuthError::Jwt(e.0))
    }

    /// Checks a CONNECT (with the nonce sent in INFO and the client certificate, if any).
    ///
    /// # Errors
    /// [`AuthError`] when the credentials match no user; the caller answers
    /// `-ERR 'Authorization Violation'` and closes.
    pub fn authenticate(
        &self,
        connect: &Connect,
        nonce: Option<&str>,
        cert: Option<&CertIdentity>,
    ) -> Result<Identity, AuthError> {
        if self.verify_and_map {
            return self.by_certificate(cert);
        }
        if !self.required() {
            return Ok(Identity::anonymous());
        }
        if let Some(nkey) = &connect.nkey {
            return self.by_nkey(nkey, connect.sig.as_deref(), nonce);
        }
        if let Some(token) = &connect.auth_token
            && let Some((secret, perms)) = &self.token
        {
            return match secret.check(token) {
                true => Ok(Identity {
                    permissions: perms.clone(),
                    ..Identity::anonymous()
                }),
                false => Err(AuthError::BadCredentials("token".into())),
            };
        }
        if let Some(name) = &connect.user {
            return self.by_password(name, connect.pass.as_deref().unwrap_or_default());
        }
        let no_creds = connect.auth_token.is_none() && connect.jwt.is_none();
        match (&self.no_auth_user, no_creds) {
            (Some(name), true) => self
                .users
                .get(name)
                .or_else(|| self.nkeys.get(name))
                .map(User::identity)
                .ok_or(AuthError::NoMatch),
            _ => Err(AuthError::NoMatch),
        }
    }

    fn by_password(&self, name: &str, pass: &str) -> Result<Identity, AuthError> {
        let user = self.users.get(name).ok_or(AuthError::NoMatch)?;
        match &user.secret {
            Some(secret) if secret.check(pass) => Ok(user.identity()),
            None if pass.is_empty() => Ok(user.identity()),
            _ => Err(AuthError::BadCredentials(name.to_string())),
        }
    }

    fn by_nkey(
        &self,
        nkey: &str,
        sig: Option<&str>,
        nonce: Option<&str>,
    ) -> Result<Identity, AuthError> {
        let user = self.nkeys.get(nkey).ok_or(AuthError::NoMatch)?;
        let bad = || AuthError::BadCredentials(nkey.to_string());
        let (sig, nonce) = sig.zip(nonce).ok_or_else(bad)?;
        let sig = URL_SAFE_NO_PAD
            .decode(sig)
            .or_else(|_| STANDARD.decode(sig))
            .map_err(|_| bad())?;
        let key = nkeys::KeyPair::from_public_key(nkey).map_err(|_| bad())?;
        key.verify(nonce.as_bytes(), &sig).map_err(|_| bad())?;
        Ok(user.identity())
    }

    fn by_certificate(&self, cert: Option<&CertIdentity>) -> Result<Identity, AuthError> {
        let cert = cert.ok_or(AuthError::CertNotMapped)?;
        if let Some(user) = cert.candidates().find_map(|name| self.users.get(name)) {
            return Ok(user.identity());
        }
        // nats-server also accepts the subject's RDNs in any order.
        let subject = cert::rdn_set(&cert.subject);
        self.users
            .values()
            .find(|u| u.name.contains('=') && cert::rdn_set(&u.name) == subject)
            .map(User::identity)
            .ok_or(AuthError::CertNotMapped)
    }
}

fn account_defaults<'a>(config: &'a Config, account: &str) -> Option<&'a config::Permissions> {
    config
        .accounts
        .iter()
        .find(|a| a.name == account)
        .and_then(|a| a.default_permissions.as_ref())
}

fn compile(p: Option<&config::Permissions>) -> Option<Arc<Permissions>> {
    p.map(|p| Arc::new(Permissions::compile(p)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connect(user: &str, pass: &str) -> Connect {
        Connect {
            user: Some(user.into()),
            pass: Some(pass.into()),
            ..Connect::default()
        }
    }

    #[test]
    fn plain_and_bcrypt_passwords() {
        let hash = bcrypt::hash("s3cret", 4).expect("hash");
        let mut config = Config::default();
        config.authorization.users = vec![
            UserConfig {
                user: Some("alice".into()),
                password: Some("pw".into()),
                ..UserConfig::default()
            },
            UserConfig {
                user: Some("bob".into()),
                password: Some(hash),
                ..UserConfig::default()
            },
        ];
        let auth = Authenticator::new(&config);
        assert!(auth.required());
        assert!(
            auth.authenticate(&connect("alice", "pw"), None, None)
                .is_ok()
        );
        assert!(
            auth.authenticate(&connect("bob", "s3cret"), None, None)
                .is_ok()
        );
        assert!(
            auth.authenticate(&connect("bob", "pw"), None, None)
                .is_err()
        );
        assert!(
            auth.authenticate(&connect("eve", "pw"), None, None)
                .is_err()
        );
        assert!(auth.authenticate(&Connect::default(), None, None).is_err());
    }

    #[test]
    fn nkey_signature_over_nonce() {
        let kp = nkeys::KeyPair::new_user();
        let mut config = Config::default();
        config.authorization.users = vec![UserConfig {
            nkey: Some(kp.public_key()),
            ..UserConfig::default()
        }];
        let auth = Authenticator::new(&config);
        let nonce = auth.nonce().expect("nonce with nkey users");
        let sig = URL_SAFE_NO_PAD.encode(kp.sign(nonce.as_bytes()).expect("sign"));
        let mut c = Connect {
            nkey: Some(kp.public_key()),
            sig: Some(sig),
            ..Connect::default()
        };
        assert!(auth.authenticate(&c, Some(&nonce), None).is_ok());
        assert!(auth.authenticate(&c, Some("other"), None).is_err());
        c.sig = None;
        assert!(auth.authenticate(&c, Some(&nonce), None).is_err());
    }
}
