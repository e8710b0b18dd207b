//! Checking a CONNECT's user JWT, in nats-server's order: the token verifies and is
//! current; its account is known and current; the issuer is the account or one of its
//! signing keys (a scoped key replaces the user's permissions and limits with its
//! template); bearer tokens are allowed by the account; the connection type is allowed;
//! the nonce signature verifies (unless bearer); the user is not revoked; the source
//! address and time of day are allowed.
//!
//! Every refusal is an "Authorization Violation" to the client; the reason is only logged.

use std::net::IpAddr;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rill_protocol::Connect;

use super::JwtAuth;
use super::claims::{
    NO_LIMIT, Permission, Permissions, SigningKey, User, UserClaims, UserPermissionLimits,
};
use super::resolver::ResolvedAccount;
use super::token::{self, Kind};
use crate::config;

/// Connection types nats-server knows (`allowed_connection_types`).
const KNOWN_CONN_TYPES: &[&str] = &[
    "STANDARD",
    "WEBSOCKET",
    "LEAFNODE",
    "LEAFNODE_WS",
    "MQTT",
    "MQTT_WS",
    "IN_PROCESS",
];

/// Default lifetime of a response permission without a `ttl` (nats-server's).
const DEFAULT_RESPONSE_TTL: Duration = Duration::from_secs(120);

/// What the server knows about the connection being authenticated.
#[derive(Debug, Clone, Copy)]
pub struct UserCheck<'a> {
    /// The CONNECT.
    pub connect: &'a Connect,
    /// The nonce sent in INFO.
    pub nonce: Option<&'a str>,
    /// The client's address.
    pub ip: Option<IpAddr>,
    /// `STANDARD`, `WEBSOCKET`, `MQTT`, ...
    pub conn_type: &'a str,
}

/// An authenticated JWT user.
#[derive(Debug, Clone, PartialEq)]
pub struct JwtUser {
    /// The user's public key.
    pub key: String,
    /// The user's name (claim `name`).
    pub name: String,
    /// The account's public key.
    pub account: String,
    /// When the JWT was issued (for revocations).
    pub issued_at: i64,
    /// When the connection must end (JWT expiry or end of its time window), unix seconds.
    pub expires: Option<i64>,
    /// Most subscriptions (`-1` unlimited), user and account limits combined.
    pub subs: i64,
    /// Largest payload (`-1` unlimited), user and account limits combined.
    pub payload: i64,
    /// Permissions; `None` when the user may do anything.
    pub permissions: Option<config::Permissions>,
    /// The JWT is a bearer token (`bearer_token`).
    pub bearer: bool,
    /// The account signing key that issued the JWT as it was then (`None`: the
    /// account's identity key); the connection ends when the account drops or changes it.
    pub signer: Option<SigningKey>,
}

/// Why a user JWT was refused (logged, never told to the client).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Denied(pub String);

fn deny(why: impl Into<String>) -> Denied {
    Denied(why.into())
}

impl JwtAuth {
    /// Authenticates a CONNECT that carries a user JWT.
    ///
    /// # Errors
    /// [`Denied`] with the reason, for the log.
    pub fn authenticate(&self, check: &UserCheck<'_>) -> Result<JwtUser, Denied> {
        let jwt = check
            .connect
            .jwt
            .as_deref()
            .ok_or_else(|| deny("Authentication requires a user JWT"))?;
        let mut user = token::decode::<User>(jwt, Kind::User)
            .map_err(|e| deny(format!("User JWT not valid: {e}")))?;
        if user.version <= 1 {
            user.claims.apply_v1_defaults();
        }
        let mut uc = user.claims;
        let now = token::now();
        if uc.data.expired(now) || uc.data.not_yet_valid(now) {
            return Err(deny(
                "User JWT no longer valid: claim is expired or not yet valid",
            ));
        }
        let account = self.resolver.lookup(uc.account()).ok_or_else(|| {
            deny(format!(
                "Account JWT lookup error: {} not found",
                uc.account()
            ))
        })?;
        apply_issuer(&mut uc, &account, self.trust.strict())?;
        let ac = &account.claims;
        if ac.data.expired(now) {
            return Err(deny("Account JWT has expired"));
        }
        if let Err(e) = super::imports::validate(ac, now) {
            return Err(deny(format!(
                "Account JWT lookup error: account validation failed: {e}"
            )));
        }
        let limits = &uc.nats.limits;
        if limits.bearer_token && ac.nats.limits.disallow_bearer {
            return Err(deny("Account does not allow bearer tokens"));
        }
        check_conn_type(&limits.allowed_connection_types, check.conn_type)?;
        if !limits.bearer_token {
            verify_nonce(&uc.data.sub, check)?;
        }
        if ac.revoked(&uc.data.sub, uc.data.iat) {
            return Err(deny("User authentication revoked"));
        }
        if !src_allowed(&limits.limits.src, check.ip) {
            return Err(deny(format!("Bad src Ip {:?}", check.ip)));
        }
        let window_end = time_window(limits)?;
        Ok(build_user(&uc, &account, now, window_end))
    }

    /// Re-checks a connected JWT user against its account's current claims (after a claim
    /// update), as nats-server 2.15.1 does: `Err` says why it must go.
    ///
    /// # Errors
    /// [`Revocation`]: the account deleted or expired, a bearer JWT the account now
    /// refuses, the user revoked, or its signing key removed or its scope changed.
    pub fn recheck(&self, user: &JwtUser) -> Result<(), Revocation> {
        let Some(account) = self.resolver.lookup(&user.account) else {
            return Err(Revocation::AccountExpired);
        };
        let ac = &account.claims;
        if ac.data.expired(super::token::now()) {
            return Err(Revocation::AccountExpired);
        }
        if user.bearer && ac.nats.limits.disallow_bearer {
            return Err(Revocation::Bearer);
        }
        if ac.revoked(&user.key, user.issued_at) {
            return Err(Revocation::Revoked);
        }
        if let Some(signer) = &user.signer
            && ac.signing_key(signer.key()) != Some(signer)
        {
            return Err(Revocation::SignerChanged);
        }
        Ok(())
    }
}

/// Checks a user JWT an auth callout service issued (its signature, subject and response
/// already checked) as nats-server does: current, connect times, connection type; in
/// operator mode `account` is the target account, whose identity key or one of whose
/// signing keys must have issued it (a scoped key's template replaces its permissions).
/// The user gets the target account's limits and, when the JWT sets no permissions, the
/// account's default ones (`defaults` in server config mode).
///
/// # Errors
/// [`Denied`] with nats-server's reason, for the log.
pub fn callout_user(
    mut uc: UserClaims,
    account: Option<&ResolvedAccount>,
    account_name: &str,
    defaults: Option<&config::Permissions>,
    conn_type: &str,
) -> Result<JwtUser, Denied> {
    let now = token::now();
    if uc.data.expired(now) || uc.data.not_yet_valid(now) {
        return Err(deny(
            "Error validating user JWT: claim is expired or not yet valid",
        ));
    }
    let window_end = time_window(&uc.nats.limits).map_err(|_| {
        deny(format!(
            "Authorized user on account {account_name:?} outside of valid connect times"
        ))
    })?;
    check_conn_type(&uc.nats.limits.allowed_connection_types, conn_type).map_err(|_| {
        deny(format!(
            "Authorized user on account {account_name:?} using invalid connection type"
        ))
    })?;
    if let Some(account) = account {
        apply_issuer(&mut uc, account, false)
            .map_err(|_| deny(format!("User JWT issuer {:?} is not known", uc.data.iss)))?;
    }
    let mut user = match account {
        Some(account) => build_user(&uc, account, now, window_end),
        None => JwtUser {
            key: uc.data.sub.clone(),
            name: uc.data.name.clone(),
            account: account_name.to_string(),
            issued_at: uc.data.iat,
            expires: [(uc.data.exp > 0).then_some(uc.data.exp), window_end]
                .into_iter()
                .flatten()
                .min(),
            subs: NO_LIMIT,
            payload: NO_LIMIT,
            permissions: convert(&uc.nats.limits.permissions).or_else(|| defaults.cloned()),
            bearer: uc.nats.limits.bearer_token,
            signer: None,
        },
    };
    if let Some(account) = account {
        // nats-server registers a callout user with its account's limits only.
        let al = &account.claims.nats.limits;
        (user.subs, user.payload) = (al.subs, al.payload);
    }
    Ok(user)
}

/// How a re-check ends a connection (client or leaf), as nats-server 2.15.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    /// `-ERR 'User Authentication Revoked'`, closed as "Credentials Revoked".
    Revoked,
    /// The account now disallows bearer tokens: `-ERR 'Authorization Violation'`,
    /// logged `Bearer User JWT not allowed` and `authentication error - JWT User
    /// "<key>"`, closed as "Authentication Failure".
    Bearer,
    /// The signing key that issued the JWT is gone or its scope changed: closed as
    /// "Authentication Failure" without a word.
    SignerChanged,
    /// `-ERR 'Account Authentication Expired'`: the account JWT was deleted
    /// (`$SYS.REQ.CLAIMS.DELETE`) or has expired.
    AccountExpired,
}

/// The issuer must be the account or one of its signing keys (only a signing key under
/// `strict` signing key usage); a scoped key replaces the user's permissions and limits
/// with its template.
fn apply_issuer(
    uc: &mut UserClaims,
    account: &ResolvedAccount,
    strict: bool,
) -> Result<(), Denied> {
    let ac = &account.claims;
    if uc.data.iss == ac.data.sub {
        if strict {
            return Err(deny(
                "User JWT signed by the account's identity key (strict signing key usage)",
            ));
        }
        return Ok(());
    }
    match ac.signing_key(&uc.data.iss) {
        None => Err(deny("User JWT issuer is not known")),
        Some(SigningKey::Plain(_)) => Ok(()),
        Some(SigningKey::Scoped(scope)) => {
            if !uc.nats.limits.is_empty() {
                return Err(deny(
                    "User JWT is not valid: scoped users require no permissions or limits set",
                ));
            }
            uc.nats.limits = expand_template(&scope.template, uc, &account.claims);
            Ok(())
        }
    }
}

/// Fills a scoped key's template: `{{name()}}`, `{{subject()}}`, `{{account-name()}}`,
/// `{{account-subject()}}`, `{{tag(x)}}` and `{{account-tag(x)}}` in subjects (a tag
/// with several values gives one subject per value).
fn expand_template(
    template: &UserPermissionLimits,
    uc: &UserClaims,
    ac: &super::AccountClaims,
) -> UserPermissionLimits {
    let fill = |list: &[String]| -> Vec<String> {
        list.iter().flat_map(|s| fill_one(s, uc, ac)).collect()
    };
    let perm = |p: &Permission| Permission {
        allow: fill(&p.allow),
        deny: fill(&p.deny),
    };
    let mut out = template.clone();
    out.permissions = Permissions {
        publish: perm(&template.permissions.publish),
        subscribe: perm(&template.permissions.subscribe),
        resp: template.permissions.resp.clone(),
    };
    out
}

fn fill_one(s: &str, uc: &UserClaims, ac: &super::AccountClaims) -> Vec<String> {
    let mut out = vec![
        s.replace("{{name()}}", &uc.data.name)
            .replace("{{subject()}}", &uc.data.sub)
            .replace("{{account-name()}}", &ac.data.name)
            .replace("{{account-subject()}}", &ac.data.sub),
    ];
    for (marker, tags) in [
        ("{{tag(", &uc.nats.generic.tags),
        ("{{account-tag(", &ac.nats.generic.tags),
    ] {
        while let Some(start) = out[0].find(marker) {
            let Some(end) = out[0][start..].find(")}}").map(|e| start + e) else {
                break;
            };
            let name = out[0][start + marker.len()..end].to_ascii_lowercase();
            let whole = out[0][start..end + 3].to_string();
            let values: Vec<&str> = tags
                .iter()
                .filter_map(|t| t.split_once(':'))
                .filter(|(k, _)| k.eq_ignore_ascii_case(&name))
                .map(|(_, v)| v)
                .collect();
            out = out
                .iter()
                .flat_map(|s| {
                    values
                        .iter()
                        .map(|v| s.replace(&whole, v))
                        .collect::<Vec<_>>()
                })
                .collect();
            if out.is_empty() {
                return out;
            }
        }
    }
    out
}

fn check_conn_type(allowed: &[String], conn_type: &str) -> Result<(), Denied> {
    if allowed.is_empty() {
        return Ok(());
    }
    let known: Vec<&String> = allowed
        .iter()
        .filter(|t| KNOWN_CONN_TYPES.contains(&t.to_ascii_uppercase().as_str()))
        .collect();
    if known.is_empty() || !known.iter().any(|t| t.eq_ignore_ascii_case(conn_type)) {
        return Err(deny("Connection type not allowed"));
    }
    Ok(())
}

fn verify_nonce(user_key: &str, check: &UserCheck<'_>) -> Result<(), Denied> {
    let sig = check
        .connect
        .sig
        .as_deref()
        .ok_or_else(|| deny("Signature missing"))?;
    let sig = URL_SAFE_NO_PAD
        .decode(sig)
        .or_else(|_| STANDARD.decode(sig))
        .map_err(|_| deny("Signature not valid base64"))?;
    let key = nkeys::KeyPair::from_public_key(user_key)
        .map_err(|e| deny(format!("User nkey not valid: {e}")))?;
    let nonce = check.nonce.unwrap_or_default();
    key.verify(nonce.as_bytes(), &sig)
        .map_err(|_| deny("Signature not verified"))
}

/// Is `ip` inside one of the CIDRs (`src`)? No list allows everyone; an unparsable
/// entry allows no one, as in nats-server.
fn src_allowed(src: &[String], ip: Option<IpAddr>) -> bool {
    if src.is_empty() {
        return true;
    }
    let Some(ip) = ip else {
        return false;
    };
    src.iter()
        .any(|cidr| cidr_contains(cidr, ip).unwrap_or(false))
}

fn cidr_contains(cidr: &str, ip: IpAddr) -> Option<bool> {
    let (net, bits) = cidr.trim().split_once('/')?;
    let net: IpAddr = net.parse().ok()?;
    let bits: u32 = bits.parse().ok()?;
    let ip = match (net, ip) {
        (IpAddr::V6(_), IpAddr::V4(v4)) => IpAddr::V6(v4.to_ipv6_mapped()),
        (IpAddr::V4(_), IpAddr::V6(v6)) => IpAddr::V4(v6.to_ipv4_mapped()?),
        _ => ip,
    };
    let (a, b, width) = match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => (u128::from(u32::from(n)), u128::from(u32::from(i)), 32),
        (IpAddr::V6(n), IpAddr::V6(i)) => (u128::from(n), u128::from(i), 128),
        _ => return None,
    };
    if bits > width {
        return None;
    }
    let shift = width - bits;
    Some(bits == 0 || (a >> shift) == (b >> shift))
}

/// Checks the time-of-day windows, in the user's `times_location` (an IANA zone; UTC when
/// not set); an unknown zone refuses the user, as nats-server. Returns when the current
/// window ends.
fn time_window(limits: &UserPermissionLimits) -> Result<Option<i64>, Denied> {
    let l = &limits.limits;
    if l.times.is_empty() {
        return Ok(None);
    }
    let zone = match l.locale.as_str() {
        "" => chrono_tz::Tz::UTC,
        name => name.parse::<chrono_tz::Tz>().map_err(|_| {
            deny(format!(
                "time zone \"{name}\" of the user's connect times is unknown"
            ))
        })?,
    };
    let now = token::now();
    let sod = local_seconds_of_day(now, zone);
    for range in &l.times {
        let (Some(s), Some(e)) = (seconds_of_day(&range.start), seconds_of_day(&range.end)) else {
            return Err(deny("User JWT time range is invalid"));
        };
        let left = match (s <= e, sod >= s, sod < e) {
            (true, true, true) => Some(e - sod),
            (false, true, _) => Some(86_400 - sod + e),
            (false, false, true) => Some(e - sod),
            _ => None,
        };
        if let Some(left) = left {
            return Ok(Some(now + left));
        }
    }
    Err(deny("Outside connect times"))
}

/// Seconds since midnight at unix time `now` in `zone`.
fn local_seconds_of_day(now: i64, zone: chrono_tz::Tz) -> i64 {
    use chrono::{TimeZone, Timelike};
    zone.timestamp_opt(now, 0)
        .single()
        .map_or(now.rem_euclid(86_400), |t| {
            i64::from(t.num_seconds_from_midnight())
        })
}

fn seconds_of_day(hms: &str) -> Option<i64> {
    let mut parts = hms.split(':').map(|p| p.parse::<i64>().ok());
    let (h, m, s) = (parts.next()??, parts.next()??, parts.next()??);
    ((0..24).contains(&h) && (0..60).contains(&m) && (0..60).contains(&s))
        .then_some(h * 3600 + m * 60 + s)
}

/// The smaller of two limits, where `-1` is no limit.
fn min_limit(a: i64, b: i64) -> i64 {
    match (a, b) {
        (NO_LIMIT, x) | (x, NO_LIMIT) => x,
        (x, y) => x.min(y),
    }
}

fn build_user(
    uc: &UserClaims,
    account: &ResolvedAccount,
    now: i64,
    window_end: Option<i64>,
) -> JwtUser {
    let limits = &uc.nats.limits;
    let al = &account.claims.nats.limits;
    let expires = [(uc.data.exp > 0).then_some(uc.data.exp), window_end]
        .into_iter()
        .flatten()
        .min()
        .filter(|&t| t >= now);
    let mut permissions = convert(&limits.permissions);
    if permissions.is_none() {
        permissions = convert(&account.claims.nats.default_permissions);
    }
    JwtUser {
        key: uc.data.sub.clone(),
        name: uc.data.name.clone(),
        account: account.claims.data.sub.clone(),
        issued_at: uc.data.iat,
        expires,
        subs: min_limit(limits.limits.subs.unwrap_or(0), al.subs),
        payload: min_limit(limits.limits.payload.unwrap_or(0), al.payload),
        permissions,
        bearer: limits.bearer_token,
        signer: account.claims.signing_key(&uc.data.iss).cloned(),
    }
}

/// JWT permissions as configured permissions; `None` when the JWT sets none.
fn convert(p: &Permissions) -> Option<config::Permissions> {
    let rules = |p: &Permission| {
        (!p.is_empty()).then(|| config::PermissionRules {
            allow: p.allow.clone(),
            deny: p.deny.clone(),
        })
    };
    let out = config::Permissions {
        publish: rules(&p.publish),
        subscribe: rules(&p.subscribe),
        allow_responses: p.resp.as_ref().map(|r| config::ResponsePermission {
            max: usize::try_from(r.max).unwrap_or(0).max(1),
            expires: match u64::try_from(r.ttl) {
                Ok(ns) if ns > 0 => Duration::from_nanos(ns),
                _ => DEFAULT_RESPONSE_TTL,
            },
        }),
    };
    (out != config::Permissions::default()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs() {
        let ip = |s: &str| s.parse::<IpAddr>().ok();
        assert!(src_allowed(&[], ip("10.0.0.1")));
        assert!(src_allowed(&["127.0.0.0/8".into()], ip("127.1.2.3")));
        assert!(!src_allowed(&["192.168.0.0/16".into()], ip("127.1.2.3")));
        assert!(src_allowed(&["::1/128".into()], ip("::1")));
        assert!(src_allowed(
            &["127.0.0.1/32".into()],
            ip("::ffff:127.0.0.1")
        ));
        assert!(!src_allowed(&["garbage".into()], ip("127.0.0.1")));
    }

    #[test]
    fn limits_combine() {
        assert_eq!(min_limit(NO_LIMIT, 5), 5);
        assert_eq!(min_limit(3, NO_LIMIT), 3);
        assert_eq!(min_limit(3, 5), 3);
        assert_eq!(min_limit(NO_LIMIT, NO_LIMIT), NO_LIMIT);
        assert_eq!(min_limit(0, NO_LIMIT), 0);
    }

    #[test]
    fn seconds_of_day_in_a_zone() {
        // 2026-01-01T00:00:00Z is 09:00 in Tokyo and 19:00 the day before in New York.
        let t = 1_767_225_600;
        assert_eq!(local_seconds_of_day(t, chrono_tz::Tz::UTC), 0);
        assert_eq!(
            local_seconds_of_day(t, chrono_tz::Tz::Asia__Tokyo),
            9 * 3600
        );
        assert_eq!(
            local_seconds_of_day(t, chrono_tz::Tz::America__New_York),
            19 * 3600
        );
    }

    #[test]
    fn time_of_day() {
        assert_eq!(seconds_of_day("01:02:03"), Some(3723));
        assert_eq!(seconds_of_day("24:00:00"), None);
        assert_eq!(seconds_of_day("x"), None);
    }
}
