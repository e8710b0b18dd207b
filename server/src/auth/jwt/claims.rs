//! Typed claims of the nats-io/jwt v2 format (operator, account, user, activation), as
//! serde structs, with the v1 layout read too.
//!
//! Why our own types rather than a crate: the Rust JWT crates for NATS generate tokens
//! (nats-jwt: account and user only, no decoding; nats-io-jwt: a generated 0.x builder API
//! that rejects fields it does not know; nats-jwt-rs: 0.1, anyhow in the API), while a
//! server must *read* every claim a real `nsc` or Go program writes, tolerate fields it
//! does not use, and apply the v1 defaults. Every field here carries nats-io/jwt's JSON
//! name; unknown fields are ignored, as Go's decoder does.
//!
//! Numbers follow the Go library: `-1` is "no limit", and a field missing from a v2 token
//! is zero (nsc always writes `-1` explicitly). A v1 token's missing user limits are
//! "no limit" ([`UserClaims::nats`] applies that when decoding).

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

/// The "no limit" value of every numeric limit.
pub const NO_LIMIT: i64 = -1;

/// The registered claims every token carries, plus the v1 fields that moved under `nats`
/// in v2.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClaimsData {
    /// Audience.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub aud: String,
    /// Expiry, unix seconds; 0 never expires.
    #[serde(skip_serializing_if = "is_zero")]
    pub exp: i64,
    /// Token id (a hash of the claims).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub jti: String,
    /// Issued at, unix seconds.
    #[serde(skip_serializing_if = "is_zero")]
    pub iat: i64,
    /// The public key that signed the token.
    pub iss: String,
    /// Human name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Not valid before, unix seconds.
    #[serde(skip_serializing_if = "is_zero")]
    pub nbf: i64,
    /// The public key the token describes.
    pub sub: String,
    /// v1 only: the claim type at the top level (v2 has `nats.type`).
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub v1_type: Option<String>,
    /// v1 only: a user's issuing account at the top level.
    #[serde(rename = "issuer_account", skip_serializing_if = "Option::is_none")]
    pub v1_issuer_account: Option<String>,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

impl ClaimsData {
    /// True when the token has expired at `now` (unix seconds).
    pub fn expired(&self, now: i64) -> bool {
        self.exp > 0 && self.exp <= now
    }

    /// True when the token is not valid yet at `now`.
    pub fn not_yet_valid(&self, now: i64) -> bool {
        self.nbf > 0 && self.nbf > now
    }
}

/// `nats.type`, `nats.version` and tags (v2).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GenericFields {
    /// Tags.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Claim type (`operator`, `account`, `user`, `activation`, ...).
    #[serde(rename = "type", skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// Format version (2).
    #[serde(skip_serializing_if = "is_zero")]
    pub version: i64,
}

/// A whole token's claims: the registered part and the type-specific `nats` part.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de> + Default"))]
pub struct Claims<T> {
    /// Registered claims.
    #[serde(flatten)]
    pub data: ClaimsData,
    /// The type-specific claims.
    #[serde(default)]
    pub nats: T,
}

/// Operator claims (`nats` of an operator JWT).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Operator {
    /// Keys that may sign accounts besides the operator's own.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub signing_keys: Vec<String>,
    /// The account server (resolver) URL.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub account_server_url: String,
    /// Server URLs of this operator's deployment.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub operator_service_urls: Vec<String>,
    /// The system account's public key.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub system_account: String,
    /// Minimum server version.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub assert_server_version: String,
    /// Accounts must be signed by a signing key, never the operator key itself.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub strict_signing_key_usage: bool,
    /// Type, version, tags.
    #[serde(flatten)]
    pub generic: GenericFields,
}

/// Subject allow/deny lists.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Permission {
    /// Allowed subjects.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<String>,
    /// Denied subjects.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<String>,
}

impl Permission {
    /// True when neither list has an entry.
    pub fn is_empty(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty()
    }
}

/// Response permission: replies allowed per received request, and for how long.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponsePermission {
    /// Responses allowed per request.
    #[serde(rename = "max", default)]
    pub max: i64,
    /// How long, in nanoseconds.
    #[serde(rename = "ttl", default)]
    pub ttl: i64,
}

/// Publish, subscribe and response permissions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Permissions {
    /// Publish.
    #[serde(rename = "pub", skip_serializing_if = "Permission::is_empty")]
    pub publish: Permission,
    /// Subscribe.
    #[serde(rename = "sub", skip_serializing_if = "Permission::is_empty")]
    pub subscribe: Permission,
    /// Responses.
    #[serde(rename = "resp", skip_serializing_if = "Option::is_none")]
    pub resp: Option<ResponsePermission>,
}

impl Permissions {
    /// True when nothing is allowed or denied explicitly.
    pub fn is_empty(&self) -> bool {
        self.publish.is_empty() && self.subscribe.is_empty() && self.resp.is_none()
    }
}

/// A time-of-day window (`HH:MM:SS`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TimeRange {
    /// Start, `HH:MM:SS`.
    pub start: String,
    /// End, `HH:MM:SS`.
    pub end: String,
}

/// A user's limits and restrictions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UserLimits {
    /// Source networks (CIDRs) the user may connect from; a JSON array or a
    /// comma-separated string.
    #[serde(
        deserialize_with = "string_or_list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub src: Vec<String>,
    /// Times of day the user may connect.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub times: Vec<TimeRange>,
    /// Time zone of `times` (IANA name; empty is UTC... or the server's local zone).
    #[serde(rename = "times_location", skip_serializing_if = "String::is_empty")]
    pub locale: String,
    /// Most subscriptions; `None` when the token leaves it out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subs: Option<i64>,
    /// Most bytes (not enforced by nats-server for clients).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<i64>,
    /// Largest payload.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<i64>,
}

/// The permissions and limits of a user, also the template of a scoped signing key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UserPermissionLimits {
    /// Permissions.
    #[serde(flatten)]
    pub permissions: Permissions,
    /// Limits.
    #[serde(flatten)]
    pub limits: UserLimits,
    /// No nonce signature needed: the JWT alone authenticates.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub bearer_token: bool,
    /// Only through a trusted proxy.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub proxy_required: bool,
    /// Connection types allowed (`STANDARD`, `WEBSOCKET`, `MQTT`, `LEAFNODE`, ...);
    /// empty allows all.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_connection_types: Vec<String>,
}

impl UserPermissionLimits {
    /// True when the token sets no permission, limit or option at all (required of users
    /// signed by a scoped key; a `-1` limit counts as set, as in nats-io/jwt).
    pub fn is_empty(&self) -> bool {
        let mut plain = self.clone();
        for v in [
            &mut plain.limits.subs,
            &mut plain.limits.data,
            &mut plain.limits.payload,
        ] {
            if *v == Some(0) {
                *v = None;
            }
        }
        plain == Self::default()
    }
}

/// User claims (`nats` of a user JWT).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct User {
    /// Permissions and limits.
    #[serde(flatten)]
    pub limits: UserPermissionLimits,
    /// The account, when a signing key issued the token.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub issuer_account: String,
    /// Type, version, tags.
    #[serde(flatten)]
    pub generic: GenericFields,
}

/// A user JWT's claims.
pub type UserClaims = Claims<User>;

impl UserClaims {
    /// The account the user belongs to: `issuer_account` when a signing key issued the
    /// token, else the issuer.
    pub fn account(&self) -> &str {
        let v1 = self.data.v1_issuer_account.as_deref().unwrap_or_default();
        match (&self.nats.issuer_account, v1) {
            (a, _) if !a.is_empty() => a,
            (_, a) if !a.is_empty() => a,
            _ => &self.data.iss,
        }
    }

    /// Applies the v1 defaults: limits a v1 token leaves out are "no limit".
    pub(super) fn apply_v1_defaults(&mut self) {
        let l = &mut self.nats.limits.limits;
        for v in [&mut l.subs, &mut l.data, &mut l.payload] {
            v.get_or_insert(NO_LIMIT);
        }
    }
}

/// Limits of an account: core, account-wide and JetStream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OperatorLimits {
    /// Most subscriptions per... account.
    pub subs: i64,
    /// Most data.
    pub data: i64,
    /// Largest payload.
    pub payload: i64,
    /// Most imports.
    pub imports: i64,
    /// Most exports.
    pub exports: i64,
    /// Wildcard exports allowed.
    #[serde(rename = "wildcards")]
    pub wildcard_exports: bool,
    /// User JWTs of this account may not be bearer tokens.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub disallow_bearer: bool,
    /// Most client connections.
    pub conn: i64,
    /// Most leaf node connections.
    pub leaf: i64,
    /// JetStream limits (no tiers).
    #[serde(flatten)]
    pub jetstream: JetStreamLimits,
    /// JetStream limits per tier (`R1`, `R3`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tiered_limits: BTreeMap<String, JetStreamLimits>,
}

/// JetStream limits of an account (or of one tier).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct JetStreamLimits {
    /// Memory storage bytes; 0 disables memory storage.
    #[serde(skip_serializing_if = "is_zero")]
    pub mem_storage: i64,
    /// File storage bytes; 0 disables file storage.
    #[serde(skip_serializing_if = "is_zero")]
    pub disk_storage: i64,
    /// Most streams.
    #[serde(skip_serializing_if = "is_zero")]
    pub streams: i64,
    /// Most consumers.
    #[serde(skip_serializing_if = "is_zero")]
    pub consumer: i64,
    /// Most ack pending per consumer.
    #[serde(skip_serializing_if = "is_zero")]
    pub max_ack_pending: i64,
    /// Largest memory stream.
    #[serde(skip_serializing_if = "is_zero")]
    pub mem_max_stream_bytes: i64,
    /// Largest file stream.
    #[serde(skip_serializing_if = "is_zero")]
    pub disk_max_stream_bytes: i64,
    /// Streams must set `max_bytes`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub max_bytes_required: bool,
}

impl JetStreamLimits {
    /// True when JetStream is enabled by these limits (some storage allowed).
    pub fn enabled(&self) -> bool {
        self.mem_storage != 0 || self.disk_storage != 0
    }
}

/// `stream` or `service`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportType {
    /// A stream of messages.
    #[default]
    Stream,
    /// A request/reply service.
    Service,
    /// Anything else.
    #[serde(other)]
    Unknown,
}

/// An account's export.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Export {
    /// Name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Exported subject (may have wildcards).
    pub subject: String,
    /// Stream or service.
    #[serde(rename = "type")]
    pub kind: ExportType,
    /// Importers need an activation token.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub token_req: bool,
    /// Revoked activations: importing account (or `*`) → issued-before time.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub revocations: BTreeMap<String, i64>,
    /// Service response type (`Singleton`, `Stream`, `Chunked`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub response_type: String,
    /// Service response threshold, nanoseconds.
    #[serde(skip_serializing_if = "is_zero")]
    pub response_threshold: i64,
    /// Token position of the importing account in the subject (1-based).
    #[serde(skip_serializing_if = "is_zero_u")]
    pub account_token_position: u32,
    /// Advertised.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub advertise: bool,
    /// Description.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
}

fn is_zero_u(n: &u32) -> bool {
    *n == 0
}

/// An account's import.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Import {
    /// Name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// The exporter's subject.
    pub subject: String,
    /// The exporting account's public key.
    pub account: String,
    /// An activation token (JWT) from the exporter.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub token: String,
    /// Deprecated remap (`to`).
    #[serde(rename = "to", skip_serializing_if = "String::is_empty")]
    pub to: String,
    /// Local subject.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub local_subject: String,
    /// Stream or service.
    #[serde(rename = "type")]
    pub kind: ExportType,
    /// Share latency information.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub share: bool,
}

impl Import {
    /// The local subject: `local_subject`, else the deprecated `to`, else none.
    pub fn local(&self) -> Option<&str> {
        [&self.local_subject, &self.to]
            .into_iter()
            .find(|s| !s.is_empty())
            .map(String::as_str)
    }
}

/// A signing key of an account: plain, or scoped with a user template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SigningKey {
    /// A plain signing key: users it signs carry their own permissions.
    Plain(String),
    /// A scoped signing key: users it signs get the template's permissions and limits.
    Scoped(Box<UserScope>),
}

impl SigningKey {
    /// The public key.
    pub fn key(&self) -> &str {
        match self {
            Self::Plain(k) => k,
            Self::Scoped(s) => &s.key,
        }
    }
}

/// A scoped signing key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UserScope {
    /// `user_scope`.
    pub kind: String,
    /// The public key.
    pub key: String,
    /// Role name.
    pub role: String,
    /// Permissions and limits given to the users this key signs.
    pub template: UserPermissionLimits,
    /// Description.
    pub description: String,
}

/// External authorization (auth callout) of an account.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExternalAuthorization {
    /// Users (public keys) the callout service connects as; they skip the callout.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub auth_users: Vec<String>,
    /// Accounts the service may place users in (`*` for any).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_accounts: Vec<String>,
    /// Curve key to encrypt requests with.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub xkey: String,
}

/// Account claims (`nats` of an account JWT).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Account {
    /// Imports.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub imports: Vec<Import>,
    /// Exports.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exports: Vec<Export>,
    /// Limits.
    pub limits: OperatorLimits,
    /// Signing keys.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub signing_keys: Vec<SigningKey>,
    /// Revoked users: user public key (or `*`) → tokens issued at or before this time
    /// are revoked.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub revocations: BTreeMap<String, i64>,
    /// Permissions of users whose JWT sets none.
    #[serde(skip_serializing_if = "Permissions::is_empty")]
    pub default_permissions: Permissions,
    /// Auth callout.
    #[serde(skip_serializing_if = "is_default_external")]
    pub authorization: ExternalAuthorization,
    /// Description.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Type, version, tags.
    #[serde(flatten)]
    pub generic: GenericFields,
}

fn is_default_external(e: &ExternalAuthorization) -> bool {
    *e == ExternalAuthorization::default()
}

/// An account JWT's claims.
pub type AccountClaims = Claims<Account>;

impl AccountClaims {
    /// The signing key `key`, when the account has it.
    pub fn signing_key(&self, key: &str) -> Option<&SigningKey> {
        self.nats.signing_keys.iter().find(|k| k.key() == key)
    }

    /// True when the user `user` with a token issued at `iat` is revoked.
    pub fn revoked(&self, user: &str, iat: i64) -> bool {
        let r = &self.nats.revocations;
        [user, "*"]
            .iter()
            .any(|k| r.get(*k).is_some_and(|&at| iat <= at))
    }

    /// The JetStream limits in force: the untiered ones, or the `R1` tier.
    pub fn jetstream_limits(&self) -> Option<&JetStreamLimits> {
        let l = &self.nats.limits;
        if l.tiered_limits.is_empty() {
            return l.jetstream.enabled().then_some(&l.jetstream);
        }
        l.tiered_limits.get("R1").filter(|t| t.enabled())
    }
}

/// Activation claims: an exporter's permission for one account to import a subject.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Activation {
    /// The subject the importer may import.
    pub subject: String,
    /// Stream or service.
    #[serde(rename = "kind")]
    pub kind: ExportType,
    /// The exporting account, when a signing key issued the token.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub issuer_account: String,
    /// Type, version, tags.
    #[serde(flatten)]
    pub generic: GenericFields,
}

/// An activation JWT's claims.
pub type ActivationClaims = Claims<Activation>;

/// Reads a list given as a JSON array or a comma-separated string.
fn string_or_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<Either>::deserialize(d)? {
        None => Vec::new(),
        Some(Either::One(s)) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        Some(Either::Many(v)) => v,
    })
}
