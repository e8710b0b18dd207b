//! The `leafnodes {}` block (alias `leaf`), with nats-server's keys.

use super::super::conf::{ConfValue, ValueKind};
use super::super::error::{ConfigError, Warning};
use super::super::leaf::{LeafAuth, LeafConfig, LeafUrl, RemoteLeaf};
use super::link;
use super::value::{self, boolean, duration, map, path, string, strings};

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
/// Unknown keys, wrong types, bad ports and URLs, a remote mixing WebSocket and plain
/// URLs, a `wss://` remote without a `tls {}` block to verify the hub with.
pub(super) fn parse(v: &ConfValue, warnings: &mut Vec<Warning>) -> Result<LeafConfig, ConfigError> {
    let m = map(v, "leafnodes")?;
    let mut c = LeafConfig::default();
    for e in m.entries() {
        let k = e.key.to_ascii_lowercase();
        let v = &e.value;
        match k.as_str() {
            "listen" => {
                let (host, port) = link::listen(v, &k)?;
                if let Some(host) = host {
                    c.host = host;
                }
                c.port = Some(port);
            }
            "port" => c.port = Some(link::port(v, &k)?),
            "host" | "net" => c.host = string(v, &k)?,
            "advertise" => c.advertise = Some(string(v, &k)?),
            "no_advertise" => c.no_advertise = boolean(v, &k)?,
            "authorization" => c.authorization = Some(authorization(v)?),
            "remotes" => c.remotes = remotes(v)?,
            "reconnect" | "reconnect_delay" | "reconnect_interval" => {
                c.reconnect = duration(v, &k, warnings)?
            }
            "compression" => c.compression = Some(link::compression(v)),
            "tls" => c.tls = Some(super::tls::parse(v)?),
            k if IGNORED.contains(&k) => warnings.push(Warning::at(
                &e.key_pos,
                format!("leafnodes setting \"{k}\" is not supported by rill yet and is ignored"),
            )),
            _ => value::unknown(e)?,
        }
    }
    Ok(c)
}

/// `authorization { user, password, account, timeout, users: [...] }`.
fn authorization(v: &ConfValue) -> Result<LeafAuth, ConfigError> {
    let parsed = link::authorization(v, true)?;
    let mut users: Vec<_> = parsed.single.into_iter().collect();
    users.extend(parsed.users);
    Ok(LeafAuth {
        users,
        timeout: parsed.timeout,
    })
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
                    r.urls
                        .push(LeafUrl::parse(&url).map_err(|e| ConfigError::at(&v.pos, e))?);
                }
            }
            "account" | "local" => r.account = Some(string(v, &k)?),
            "credentials" | "creds" => r.credentials = Some(path(v, &k)?),
            "deny_imports" | "deny_import" => r.deny_imports = strings(v, &k)?,
            "deny_exports" | "deny_export" => r.deny_exports = strings(v, &k)?,
            "tls" => r.tls = Some(super::tls::parse_dialling(v)?),
            "ws_compression" => r.ws_compression = boolean(v, &k)?,
            "ws_no_masking" => r.ws_no_masking = boolean(v, &k)?,
            "compression" => {}
            k if REMOTE_IGNORED.contains(&k) => {}
            _ => value::unknown(e)?,
        }
    }
    if r.urls.is_empty() {
        return Err(ConfigError::at(&v.pos, "a leafnode remote needs a url"));
    }
    if r.urls.iter().any(|u| u.is_websocket() != r.is_websocket()) {
        return Err(ConfigError::at(
            &v.pos,
            "remote leaf node configuration cannot have a mix of websocket and non-websocket urls",
        ));
    }
    if r.tls.is_none() && r.urls.iter().any(|u| u.scheme == "wss") {
        return Err(ConfigError::at(
            &v.pos,
            "a wss:// leafnode remote needs a tls {} block with the ca_file to verify the hub",
        ));
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
    fn tls_blocks_parse_and_websocket_remotes_are_checked() {
        assert!(parsed("leafnodes { port: 1, tls { cert_file: x } }").is_err());
        let c = parsed(
            "leafnodes { port: 1, tls { cert_file: c, key_file: k, handshake_first: true }, \
             remotes: [ { url: \"nats://h:1\", tls { ca_file: ca } } ] }",
        )
        .expect("config");
        assert!(c.tls.expect("hub tls").handshake_first);
        let remote = c.remotes[0].tls.as_ref().expect("remote tls");
        assert!(remote.cert_file.as_os_str().is_empty());
        let c = parsed("leafnodes { remotes: [ { url: \"ws://h:1/p\", ws_compression: true } ] }")
            .expect("ws remote");
        assert!(c.remotes[0].is_websocket() && c.remotes[0].ws_compression);
        assert!(
            parsed("leafnodes { remotes: [ { urls: [\"ws://h:1\", \"nats://h:2\"] } ] }").is_err()
        );
        assert!(parsed("leafnodes { remotes: [ { url: \"wss://h:1\" } ] }").is_err());
        assert!(parsed("leafnodes { remotes: [ { account: A } ] }").is_err());
    }
}
