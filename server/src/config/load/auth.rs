//! `authorization {}`, users and permissions (also used by `accounts`), plus the
//! top-level `no_auth_user` key.

use std::time::Duration;

use super::super::conf::{ConfMap, ConfValue, Pos, ValueKind};
use super::super::error::{ConfigError, Warning};
use super::super::{
    AuthCallout, Authorization, PermissionRules, Permissions, ResponsePermission, UserConfig,
};
use super::Draft;
use super::value::{self, boolean, count, map, string, strings, timeout};
use crate::shared::GLOBAL_ACCOUNT;

/// Responses allowed per request when `allow_responses: true` (nats-server's default).
const DEFAULT_RESPONSE_MAX: usize = 1;
/// How long a response permission lasts when `allow_responses: true`.
const DEFAULT_RESPONSE_EXPIRES: Duration = Duration::from_secs(2 * 60);

impl Draft {
    /// Applies an authentication key; false when `lower` is not one.
    pub(super) fn auth_key(&mut self, lower: &str, v: &ConfValue) -> Result<bool, ConfigError> {
        match lower {
            "authorization" => {
                self.config.authorization = authorization(map(v, lower)?, &mut self.warnings)?
            }
            "no_auth_user" => self.config.no_auth_user = Some(string(v, lower)?),
            _ => return Ok(false),
        }
        Ok(true)
    }
}

fn authorization(m: &ConfMap, warnings: &mut Vec<Warning>) -> Result<Authorization, ConfigError> {
    let mut auth = Authorization::default();
    let mut users_pos = None;
    for e in m.entries() {
        let key = e.key.to_ascii_lowercase();
        let v = &e.value;
        match key.as_str() {
            "user" | "username" => auth.user = Some(string(v, &key)?),
            "pass" | "password" => auth.password = Some(string(v, &key)?),
            "token" => auth.token = Some(string(v, &key)?),
            "timeout" => auth.timeout = Some(timeout(v, &key)?),
            "users" => {
                users_pos = Some(e.key_pos.clone());
                auth.users = users(v, None, warnings)?;
            }
            "default_permission" | "default_permissions" | "permissions" => {
                auth.default_permissions = Some(permissions(v, &key)?);
            }
            "auth_callout" | "auth_hook" => auth.auth_callout = Some(auth_callout(v)?),
            "proxy_required" => warnings.push(unsupported(&e.key_pos, &key)),
            _ => value::unknown(e)?,
        }
    }
    if let Some(pos) = users_pos {
        if auth.user.is_some() || auth.password.is_some() {
            return Err(ConfigError::at(
                &pos,
                "Can not have a single user/pass and a users array",
            ));
        }
        if auth.token.is_some() {
            return Err(ConfigError::at(
                &pos,
                "Can not have a token and a users array",
            ));
        }
    }
    Ok(auth)
}

/// `auth_callout { issuer, auth_users, account, xkey, allowed_accounts }`, checked as
/// nats-server checks it.
fn auth_callout(v: &ConfValue) -> Result<AuthCallout, ConfigError> {
    let mut ac = AuthCallout::default();
    for e in map(v, "auth_callout")?.entries() {
        let key = e.key.to_ascii_lowercase();
        let v = &e.value;
        match key.as_str() {
            "issuer" => {
                ac.issuer = string(v, &key)?;
                if !ac.issuer.starts_with('A')
                    || nkeys::KeyPair::from_public_key(&ac.issuer).is_err()
                {
                    let msg = format!(
                        "Expected callout user to be a valid public account nkey, got {:?}",
                        ac.issuer
                    );
                    return Err(ConfigError::at(&v.pos, msg));
                }
            }
            "account" | "acc" => ac.account = string(v, &key)?,
            "auth_users" | "users" => ac.auth_users = strings(v, &key)?,
            "xkey" | "key" => {
                let xkey = string(v, &key)?;
                if !xkey.starts_with('X') || nkeys::XKey::from_public_key(&xkey).is_err() {
                    let msg =
                        format!("Expected callout xkey to be a valid public xkey, got {xkey:?}");
                    return Err(ConfigError::at(&v.pos, msg));
                }
                ac.xkey = Some(xkey);
            }
            "allowed_accounts" => ac.allowed_accounts = strings(v, &key)?,
            _ => value::unknown(e)?,
        }
    }
    if ac.account.is_empty() {
        ac.account = GLOBAL_ACCOUNT.to_string();
    }
    if ac.issuer.is_empty() {
        return Err(ConfigError::at(
            &v.pos,
            "Authorization callouts require an issuer to be specified",
        ));
    }
    if ac.auth_users.is_empty() {
        return Err(ConfigError::at(
            &v.pos,
            "Authorization callouts require authorized users to be specified",
        ));
    }
    Ok(ac)
}

/// `users: [ {user, password, permissions}, {nkey, permissions} ]`.
pub(super) fn users(
    v: &ConfValue,
    account: Option<&str>,
    warnings: &mut Vec<Warning>,
) -> Result<Vec<UserConfig>, ConfigError> {
    value::array(v, "users")?
        .iter()
        .map(|u| {
            let mut user = user(u, warnings)?;
            user.account = account.map(str::to_string);
            Ok(user)
        })
        .collect()
}

fn user(v: &ConfValue, warnings: &mut Vec<Warning>) -> Result<UserConfig, ConfigError> {
    let mut u = UserConfig::default();
    for e in map(v, "users")?.entries() {
        let key = e.key.to_ascii_lowercase();
        let v = &e.value;
        match key.as_str() {
            "user" | "username" => u.user = Some(string(v, &key)?),
            "pass" | "password" => u.password = Some(string(v, &key)?),
            "nkey" => u.nkey = Some(user_nkey(v)?),
            "permission" | "permissions" | "authorization" => {
                u.permissions = Some(permissions(v, &key)?)
            }
            "allowed_connection_types" | "connection_types" | "clients" | "proxy_required" => {
                warnings.push(unsupported(&e.key_pos, &key));
            }
            _ => value::unknown(e)?,
        }
    }
    if u.user.is_none() && u.nkey.is_none() {
        return Err(ConfigError::at(
            &v.pos,
            "user entry requires a user or an nkey",
        ));
    }
    Ok(u)
}

fn user_nkey(v: &ConfValue) -> Result<String, ConfigError> {
    let key = string(v, "nkey")?;
    if !key.starts_with('U') || nkeys::KeyPair::from_public_key(&key).is_err() {
        return Err(ConfigError::at(
            &v.pos,
            format!("not a valid public user nkey: {key:?}"),
        ));
    }
    Ok(key)
}

/// `permissions { publish, subscribe, allow_responses }`; publish/subscribe take a subject,
/// a list (allow) or `{ allow, deny }`.
pub(super) fn permissions(v: &ConfValue, key: &str) -> Result<Permissions, ConfigError> {
    let mut p = Permissions::default();
    for e in map(v, key)?.entries() {
        let key = e.key.to_ascii_lowercase();
        let v = &e.value;
        match key.as_str() {
            "pub" | "publish" | "import" => p.publish = Some(rules(v, &key)?),
            "sub" | "subscribe" | "export" => p.subscribe = Some(rules(v, &key)?),
            "publish_allow_responses" | "allow_responses" => {
                p.allow_responses = allow_responses(v, &key)?
            }
            _ => value::unknown(e)?,
        }
    }
    Ok(p)
}

fn rules(v: &ConfValue, key: &str) -> Result<PermissionRules, ConfigError> {
    let mut r = PermissionRules::default();
    match &v.kind {
        ValueKind::Map(m) => {
            for e in m.entries() {
                let k = e.key.to_ascii_lowercase();
                match k.as_str() {
                    "allow" => r.allow = strings(&e.value, &k)?,
                    "deny" => r.deny = strings(&e.value, &k)?,
                    _ => value::unknown(e)?,
                }
            }
        }
        _ => r.allow = strings(v, key)?,
    }
    Ok(r)
}

fn allow_responses(v: &ConfValue, key: &str) -> Result<Option<ResponsePermission>, ConfigError> {
    let mut rp = ResponsePermission {
        max: DEFAULT_RESPONSE_MAX,
        expires: DEFAULT_RESPONSE_EXPIRES,
    };
    match &v.kind {
        ValueKind::Bool(_) => return Ok(boolean(v, key)?.then_some(rp)),
        ValueKind::Map(m) => {
            for e in m.entries() {
                let k = e.key.to_ascii_lowercase();
                match k.as_str() {
                    "max" | "max_msgs" | "max_messages" | "max_responses" => {
                        rp.max = count(&e.value, &k)?
                    }
                    "expires" | "expiration" | "ttl" => rp.expires = timeout(&e.value, &k)?,
                    _ => value::unknown(e)?,
                }
            }
        }
        _ => {
            return Err(ConfigError::at(
                &v.pos,
                format!("'{key}' must be a boolean or {{ max, expires }}"),
            ));
        }
    }
    Ok(Some(rp))
}

fn unsupported(pos: &Pos, key: &str) -> Warning {
    Warning::at(
        pos,
        format!("\"{key}\" is not supported by rill yet and is ignored"),
    )
}
