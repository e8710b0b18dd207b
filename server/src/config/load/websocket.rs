//! The `websocket {}` block (alias `ws`), with nats-server's keys and checks.

use super::super::conf::{ConfValue, Entry};
use super::super::error::ConfigError;
use super::super::{Config, WebsocketConfig};
use super::server::host_port;
use super::tls;
use super::value::{self, boolean, int, map, string, strings, timeout};

/// Parses `websocket { … }`. `None` when no port is set (or it is 0): nats-server starts
/// the listener only once a port is given, `-1` picking a free one.
///
/// # Errors
/// Unknown keys, wrong types, a port out of range, and a listener without TLS that does
/// not say `no_tls: true` ("websocket requires TLS configuration").
pub(super) fn parse(v: &ConfValue) -> Result<Option<WebsocketConfig>, ConfigError> {
    let m = map(v, "websocket")?;
    let mut ws = WebsocketConfig {
        host: "0.0.0.0".into(),
        ..WebsocketConfig::default()
    };
    let mut port = None;
    for e in m.entries() {
        let k = e.key.to_ascii_lowercase();
        let v = &e.value;
        match k.as_str() {
            "listen" => {
                let (host, p) = host_port(v, &k)?;
                if let Some(host) = host {
                    ws.host = host;
                }
                port = Some((p, v));
            }
            "port" => port = Some((int(v, &k)?, v)),
            "host" | "net" => ws.host = string(v, &k)?,
            "advertise" => ws.advertise = Some(string(v, &k)?),
            "tls" => ws.tls = Some(tls::parse(v)?),
            "no_tls" => ws.no_tls = boolean(v, &k)?,
            "same_origin" => ws.same_origin = boolean(v, &k)?,
            "allowed_origins" | "allowed_origin" | "allow_origins" | "allow_origin" | "origins"
            | "origin" => ws.allowed_origins = strings(v, &k)?,
            "compression" => ws.compression = boolean(v, &k)?,
            "handshake_timeout" => ws.handshake_timeout = timeout(v, &k)?,
            "jwt_cookie" => ws.jwt_cookie = Some(string(v, &k)?),
            "user_cookie" => ws.user_cookie = Some(string(v, &k)?),
            "pass_cookie" => ws.pass_cookie = Some(string(v, &k)?),
            "token_cookie" => ws.token_cookie = Some(string(v, &k)?),
            "no_auth_user" => ws.no_auth_user = Some(string(v, &k)?),
            "authorization" | "authentication" => authorization(&mut ws, v)?,
            "headers" => ws.headers = headers(v)?,
            _ => value::unknown(e)?,
        }
    }
    let Some((port, at)) = port else {
        return Ok(None);
    };
    ws.port = match port {
        -1 => 0,
        0 => return Ok(None),
        p => u16::try_from(p)
            .map_err(|_| ConfigError::at(&at.pos, format!("websocket port {p} is out of range")))?,
    };
    if ws.tls.is_none() && !ws.no_tls {
        return Err(ConfigError::at(
            &v.pos,
            "websocket requires TLS configuration",
        ));
    }
    Ok(Some(ws))
}

/// `authorization { username, password, token, timeout }` inside the block.
fn authorization(ws: &mut WebsocketConfig, v: &ConfValue) -> Result<(), ConfigError> {
    for e in map(v, "authorization")?.entries() {
        let k = e.key.to_ascii_lowercase();
        auth_key(ws, &k, e)?;
    }
    Ok(())
}

fn auth_key(ws: &mut WebsocketConfig, k: &str, e: &Entry) -> Result<(), ConfigError> {
    let v = &e.value;
    match k {
        "username" | "user" => ws.username = Some(string(v, k)?),
        "password" | "pass" => ws.password = Some(string(v, k)?),
        "token" => ws.token = Some(string(v, k)?),
        "timeout" => ws.auth_timeout = Some(timeout(v, k)?),
        _ => value::unknown(e)?,
    }
    Ok(())
}

/// The block's own credentials, checked as nats-server checks them at start-up: a
/// user name or token only where the server has no users, and a `no_auth_user` that
/// names a configured user.
pub(super) fn check(config: &Config) -> Result<(), String> {
    let Some(ws) = &config.websocket else {
        return Ok(());
    };
    let mut users = config
        .authorization
        .users
        .iter()
        .chain(config.accounts.iter().flat_map(|a| a.users.iter()));
    let has_users = users.clone().next().is_some();
    for (what, set) in [
        ("username", ws.username.is_some()),
        ("token", ws.token.is_some()),
    ] {
        if set && has_users {
            return Err(format!(
                "websocket authentication {what} not compatible with presence of users/nkeys"
            ));
        }
    }
    let Some(name) = &ws.no_auth_user else {
        return Ok(());
    };
    if users.any(|u| u.user.as_deref() == Some(name) || u.nkey.as_deref() == Some(name)) {
        Ok(())
    } else {
        Err(format!(
            "no_auth_user: \"{name}\" present, but users/nkeys are not defined"
        ))
    }
}

/// `headers { "Name": "value", … }`: extra headers of the upgrade answer, checked here
/// so a bad name or value stops the server at start.
fn headers(v: &ConfValue) -> Result<Vec<(String, String)>, ConfigError> {
    let m = map(v, "headers")?;
    let mut out = Vec::new();
    for e in m.entries() {
        let value = string(&e.value, &e.key)?;
        let valid = hyper::header::HeaderName::from_bytes(e.key.as_bytes()).is_ok()
            && hyper::header::HeaderValue::from_str(&value).is_ok();
        if !valid {
            return Err(ConfigError::at(
                &e.key_pos,
                format!("invalid websocket header {:?}: {value:?}", e.key),
            ));
        }
        out.push((e.key.clone(), value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::super::conf::parse_str;
    use super::super::Draft;
    use super::*;

    fn load(text: &str) -> Result<Config, String> {
        let map = parse_str(text).map_err(|e| e.to_string())?;
        let draft = Draft::from_map(&map).map_err(|e| e.to_string())?;
        draft.finish().map(|(c, _)| c).map_err(|e| e.to_string())
    }

    #[test]
    fn the_block_reads_nats_servers_keys() {
        let c = load(
            "websocket {\n listen: \"127.0.0.1:-1\"\n no_tls: true\n compression: true\n \
             same_origin: true\n allowed_origins: [\"http://a.example\"]\n handshake_timeout: \"5s\"\n \
             jwt_cookie: jwt\n token_cookie: tok\n authorization { token: s3cret, timeout: 3 }\n}",
        )
        .expect("valid");
        let ws = c.websocket.expect("websocket on");
        assert_eq!((ws.host.as_str(), ws.port), ("127.0.0.1", 0));
        assert!(ws.no_tls && ws.compression && ws.same_origin);
        assert_eq!(ws.allowed_origins, vec!["http://a.example".to_string()]);
        assert_eq!(ws.handshake_timeout, Duration::from_secs(5));
        assert_eq!(ws.jwt_cookie.as_deref(), Some("jwt"));
        assert_eq!(ws.token.as_deref(), Some("s3cret"));
        assert_eq!(ws.auth_timeout, Some(Duration::from_secs(3)));
        assert!(ws.overrides_auth());
    }

    #[test]
    fn no_port_means_no_listener_and_tls_is_required() {
        assert_eq!(load("ws { no_tls: true }").expect("valid").websocket, None);
        let zero = load("websocket { port: 0, no_tls: true }").expect("valid");
        assert_eq!(zero.websocket, None);
        let errors = [
            (
                "websocket { port: 8080 }",
                "websocket requires TLS configuration",
            ),
            (
                "websocket { port: 8080, no_tls: true, bogus: 1 }",
                "unknown field \"bogus\"",
            ),
            (
                "authorization { users: [{user: a, password: b}] }\n\
                 websocket { port: 8080, no_tls: true, authorization { username: u, password: p } }",
                "websocket authentication username not compatible with presence of users/nkeys",
            ),
            (
                "websocket { port: 8080, no_tls: true, no_auth_user: bob }",
                "no_auth_user: \"bob\" present, but users/nkeys are not defined",
            ),
        ];
        for (text, want) in errors {
            let e = load(text).expect_err(text);
            assert!(e.contains(want), "{text}: {e}");
        }
    }
}
