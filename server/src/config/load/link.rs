//! Settings the `cluster {}` and `leafnodes {}` blocks share: the listen address and
//! port, `authorization` (one user, or for leaf nodes a list bound to accounts), and
//! `compression`.

use std::time::Duration;

use super::super::conf::{ConfValue, ValueKind};
use super::super::error::ConfigError;
use super::super::leaf::LeafUser;
use super::value::{self, int, map, string, timeout};

/// `listen: host:port` or a port; port `-1` picks a free one (0).
pub(super) fn listen(v: &ConfValue, key: &str) -> Result<(Option<String>, u16), ConfigError> {
    if let ValueKind::Int(_) = v.kind {
        return Ok((None, port(v, key)?));
    }
    let text = string(v, key)?;
    split_host_port(&text).ok_or_else(|| {
        ConfigError::at(
            &v.pos,
            format!("could not parse address string {text:?} for '{key}'"),
        )
    })
}

/// A port: `-1` picks a free one (0).
pub(super) fn port(v: &ConfValue, key: &str) -> Result<u16, ConfigError> {
    let n = int(v, key)?;
    if n == -1 {
        return Ok(0);
    }
    u16::try_from(n)
        .map_err(|_| ConfigError::at(&v.pos, format!("'{key}' is not a valid port: {n}")))
}

/// `host:port` (host optional, `[v6]` allowed, a scheme and credentials skipped); port
/// `-1` is 0.
pub(super) fn split_host_port(text: &str) -> Option<(Option<String>, u16)> {
    let text = text.split_once("://").map_or(text, |(_, rest)| rest);
    let text = text.rsplit_once('@').map_or(text, |(_, rest)| rest);
    let text = text.trim_end_matches('/');
    let (host, port) = text.rsplit_once(':')?;
    let port = match port {
        "-1" => 0,
        p => p.parse().ok()?,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some(((!host.is_empty()).then(|| host.to_string()), port))
}

/// An `authorization {}` block of a link listener.
#[derive(Debug, Default)]
pub(super) struct LinkAuthorization {
    /// The single `user`/`password` (and `account`) of the block itself.
    pub(super) single: Option<LeafUser>,
    /// `users: [...]` (leaf nodes only).
    pub(super) users: Vec<LeafUser>,
    /// How long the other side has to send CONNECT.
    pub(super) timeout: Option<Duration>,
}

/// Parses `authorization { user, password, timeout }`; with `accounts` (leaf nodes) also
/// `account` and `users: [ {user, password, account} ]`.
pub(super) fn authorization(
    v: &ConfValue,
    accounts: bool,
) -> Result<LinkAuthorization, ConfigError> {
    let m = map(v, "authorization")?;
    let mut auth = LinkAuthorization::default();
    let mut single = LeafUser::default();
    for e in m.entries() {
        let k = e.key.to_ascii_lowercase();
        match k.as_str() {
            "timeout" => auth.timeout = Some(timeout(&e.value, &k)?),
            "users" if accounts => {
                for u in value::array(&e.value, &k)? {
                    auth.users.push(user(u)?);
                }
            }
            _ if credential(&mut single, &k, &e.value, accounts)? => {}
            _ => value::unknown(e)?,
        }
    }
    if !single.user.is_empty() {
        auth.single = Some(single);
    }
    Ok(auth)
}

/// Reads `key` into `u` when it is a credential key (`user`, `password`, with
/// `accounts` also `account`); false for any other key.
fn credential(
    u: &mut LeafUser,
    key: &str,
    v: &ConfValue,
    accounts: bool,
) -> Result<bool, ConfigError> {
    match key {
        "user" | "username" => u.user = string(v, key)?,
        "password" | "pass" => u.password = string(v, key)?,
        "account" if accounts => u.account = Some(string(v, key)?),
        _ => return Ok(false),
    }
    Ok(true)
}

fn user(v: &ConfValue) -> Result<LeafUser, ConfigError> {
    let m = map(v, "users")?;
    let mut u = LeafUser::default();
    for e in m.entries() {
        let k = e.key.to_ascii_lowercase();
        if !credential(&mut u, &k, &e.value, true)? {
            value::unknown(e)?;
        }
    }
    Ok(u)
}

/// `compression: off | accept | s2_fast | …` or a boolean, kept as written.
pub(super) fn compression(v: &ConfValue) -> String {
    match &v.kind {
        ValueKind::Bool(true) => "s2_fast".into(),
        ValueKind::Bool(false) => "off".into(),
        ValueKind::String(s) => s.clone(),
        ValueKind::Map(_) => "accept".into(),
        _ => "off".into(),
    }
}
