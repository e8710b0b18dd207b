//! The `leafnodes {}` block (alias `leaf`), with nats-server's keys.

use super::super::conf::{ConfValue, ValueKind};
use super::super::error::{ConfigError, Warning};
use super::super::leaf::{LeafAuth, LeafConfig, LeafUrl, LeafUser, RemoteLeaf};
use super::server::host_port;
use super::value::{self, boolean, duration, int, map, path, string, strings, timeout};

/// Keys nats-server knows in `leafnodes {}` that rill accepts and ignores.
const IGNORED: &[&str] = &["min_version", "isolate_leafnode_interest", "write_deadline"];

/// Keys of a remote nats-server knows that rill accepts and ignores.
const REMOTE_IGNORED: &[&str] = &[
    "hub",
    "first_info_timeout",
    "disabled",
    "no_randomize",
    "dont_randomize",
    "local_isolation",
    "request_isolation",
];

/// Parses `leafnodes { … }`.
///
/// # Errors
/// Unknown keys, wrong types, bad ports and URLs, and settings rill cannot honour yet
/// (TLS, WebSocket remotes): refusing to start beats running a link other than the one
/// configured.
pub(super) fn parse(v: &ConfValue, warnings: &mut Vec<Warning>) -> Result<LeafConfig, ConfigError> {
    let m = map(v, "leafnodes")?;
    let mut c = LeafConfig::default();
    for e in m.entries() {
        let k = e.key.to_ascii_lowercase();
        let v = &e.value;
        match k.as_str() {
            "listen" => {
                let (host, p) = host_port(v, &k)?;
                if let Some(host) = host {
                    c.host = host;
                }
                c.port = Some(port(p, v, &k)?);
            }
            "port" => c.port = Some(port(int(v, &k)?, v, &k)?),
            "host" | "net" => c.host = string(v, &k)?,
            "advertise" => c.advertise = Some(string(v, &k)?),
            "no_advertise" => c.no_advertise = boolean(v, &k)?,
            "authorization" => c.authorization = Some(authorization(v)?),
            "remotes" => c.remotes = remotes(v)?,
            "reconnect" | "reconnect_delay" | "reconnect_interval" => {
                c.reconnect = duration(v, &k, warnings)?
            }
            "compression" => c.compression = Some(string(v, &k).unwrap_or_else(|_| "off".into())),
            "tls" => return Err(unsupported(v, "leafnode TLS (leafnodes { tls {} })")),
            k if IGNORED.contains(&k) => warnings.push(Warning::at(
                &e.key_pos,
                format!("leafnodes setting \"{k}\" is not supported by rill yet and is ignored"),
            )),
            _ => value::unknown(e)?,
        }
    }
    Ok(c)
}

fn unsupported(v: &ConfValue, what: &str) -> ConfigError {
    ConfigError::at(
        &v.pos,
        format!("{what} is not supported by rill yet; refusing to start without it"),
    )
}

/// A port: `-1` picks a free one (0).
fn port(n: i64, v: &ConfValue, key: &str) -> Result<u16, ConfigError> {
    if n == -1 {
        return Ok(0);
    }
    u16::try_from(n)
        .map_err(|_| ConfigError::at(&v.pos, format!("'{key}' is not a valid port: {n}")))
}

/// `authorization { user, password, account, timeout, users: [ {user, password, account} ] }`.
fn authorization(v: &ConfValue) -> Result<LeafAuth, ConfigError> {
    let m = map(v, "authorization")?;
    let mut auth = LeafAuth::default();
    let mut single = LeafUser {
        user: String::new(),
        password: String::new(),
        account: None,
    };
    let mut users = Vec::new();
    for e in m.entries() {
        let k = e.key.to_ascii_lowercase();
        let v = &e.value;
        match k.as_str() {
            "user" | "username" => single.user = string(v, &k)?,
            "password" | "pass" => single.password = string(v, &k)?,
            "account" => single.account = Some(string(v, &k)?),
            "timeout" => auth.timeout = Some(timeout(v, &k)?),
            "users" => {
                for u in value::array(v, &k)? {
                    users.push(user(u)?);
                }
            }
            _ => value::unknown(e)?,
        }
    }
    if !single.user.is_empty() {
        auth.users.push(single);
    }
    auth.users.extend(users);
    Ok(auth)
}

fn user(v: &ConfValue) -> Result<LeafUser, ConfigError> {
    let m = map(v, "users")?;
    let mut u = LeafUser {
        user: String::new(),
        password: String::new(),
        account: None,
    };
    for e in m.entries() {
        let k = e.key.to_ascii_lowercase();
        match k.as_str() {
            "user" | "username" => u.user = string(&e.value, &k)?,
            "password" | "pass" => u.password = string(&e.value, &k)?,
            "account" => u.account = Some(string(&e.value, &k)?),
            _ => value::unknown(e)?,
        }
    }
    Ok(u)
}

fn remotes(v: &ConfValue) -> Result<Vec<RemoteLeaf>, ConfigError> {
    value::array(v, "remotes")?.iter().map(remote).collect()
}

fn remote(v: &ConfValue) -> Result<RemoteLeaf, ConfigError> {
    let m = map(v, "remotes")?;
    let mut r = RemoteLeaf::default();
    for e in m.entries() {
        let k = e.key.to_ascii_lowercase();
        let v = &e.value;
        match k.as_str() {
            "url" | "urls" => {
                let list = match &v.kind {
                    ValueKind::String(s) => vec![s.clone()],
                    _ => strings(v, &k)?,
                };
                for url in list {
                    if url.starts_with("ws://") || url.starts_with("wss://") {
                        return Err(unsupported(v, "a WebSocket leafnode remote"));
                    }
                    r.urls
                        .push(LeafUrl::parse(&url).map_err(|e| ConfigError::at(&v.pos, e))?);
                }
            }
            "account" | "local" => r.account = Some(string(v, &k)?),
            "credentials" | "creds" => r.credentials = Some(path(v, &k)?),
            "deny_imports" | "deny_import" => r.deny_imports = strings(v, &k)?,
            "deny_exports" | "deny_export" => r.deny_exports = strings(v, &k)?,
            "tls" => return Err(unsupported(v, "leafnode TLS (remotes [{ tls {} }])")),
            "ws_compression" | "ws_no_masking" | "compression" => {}
            k if REMOTE_IGNORED.contains(&k) => {}
            _ => value::unknown(e)?,
        }
    }
    if r.urls.is_empty() {
        return Err(ConfigError::at(&v.pos, "a leafnode remote needs a url"));
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::super::super::conf::parse_str;
    use super::*;

    fn parsed(text: &str) -> Result<LeafConfig, ConfigError> {
        let map = parse_str(text).expect("syntax");
        let e = map.entries().first().expect("one key");
        parse(&e.value, &mut Vec::new())
    }

    #[test]
    fn hub_and_leaf_settings_parse() {
        let c = parsed(
            "leafnodes { listen: \"127.0.0.1:-1\", authorization { users: [ \
             {user: a, password: b, account: A} ] }, remotes: [ { url: \"nats-leaf://u:p@h:7000\", \
             account: B, deny_imports: [\"x.>\"] } ] }",
        )
        .expect("config");
        assert_eq!((c.host.as_str(), c.port), ("127.0.0.1", Some(0)));
        let auth = c.authorization.expect("auth");
        assert_eq!(auth.users[0].account.as_deref(), Some("A"));
        assert_eq!(c.remotes[0].urls[0].port, 7000);
        assert_eq!(c.remotes[0].deny_imports, vec!["x.>".to_string()]);
    }

    #[test]
    fn tls_and_websocket_remotes_are_refused_not_ignored() {
        assert!(parsed("leafnodes { port: 1, tls { cert_file: x } }").is_err());
        assert!(parsed("leafnodes { remotes: [ { url: \"ws://h:1\" } ] }").is_err());
        assert!(parsed("leafnodes { remotes: [ { account: A } ] }").is_err());
    }
}
