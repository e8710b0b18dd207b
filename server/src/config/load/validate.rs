//! The last step of loading: ports and hosts resolved, everything checked up front so the
//! server never starts half-configured.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use super::super::conf::Pos;
use super::super::error::{ConfigError, Warning};
use super::super::{Config, HttpListen};
use super::Draft;

/// nats-server's client port when none (or 0) is given.
const DEFAULT_PORT: u16 = 4222;
/// Payloads above this are allowed but discouraged (nats-server warns too).
const LARGE_PAYLOAD: usize = 8 * 1024 * 1024;

/// Where settings came from: an error about one points at the file when it was written
/// there, and is a plain message when it came from a flag.
struct Origins(BTreeMap<&'static str, Pos>);

impl Origins {
    fn error(&self, setting: &str, message: String) -> ConfigError {
        match self.0.get(setting) {
            Some(pos) => ConfigError::at(pos, message),
            None => ConfigError::Validation(message),
        }
    }
}

/// Resolves and validates a draft.
pub(super) fn finish(draft: Draft) -> Result<(Config, Vec<Warning>), ConfigError> {
    let Draft {
        mut config,
        mut warnings,
        port,
        http,
        https,
        origins,
        ..
    } = draft;
    let o = Origins(origins);
    config.port = client_port(port).map_err(|m| o.error("port", m))?;
    check_host(&config.host, "client listen host").map_err(|m| o.error("host", m))?;
    config.http = monitor(http, &config.host, "http").map_err(|m| o.error("http", m))?;
    config.https = monitor(https, &config.host, "https").map_err(|m| o.error("https", m))?;
    if config.https.is_some() && config.tls.is_none() {
        return Err(o.error(
            "https",
            "https monitoring requires a tls {} configuration".into(),
        ));
    }
    check_server_name(&config).map_err(|m| o.error("server_name", m))?;
    check_limits(&config, &mut warnings).map_err(|m| o.error("max_payload", m))?;
    check_lame_duck(&config).map_err(|m| o.error("lame_duck", m))?;
    check_tls(&config).map_err(|m| o.error("tls", m))?;
    check_no_auth_user(&config).map_err(|m| o.error("no_auth_user", m))?;
    check_mqtt(&config).map_err(|m| o.error("mqtt", m))?;
    super::websocket::check(&config).map_err(|m| o.error("websocket", m))?;
    check_duplicate_users(&config)?;
    check_auth_callout(&config).map_err(ConfigError::Validation)?;
    Ok((config, warnings))
}

/// `-1` is a random free port (0 in `Config`), `0` or absent the default 4222.
fn client_port(port: Option<i64>) -> Result<u16, String> {
    match port {
        None | Some(0) => Ok(DEFAULT_PORT),
        Some(-1) => Ok(0),
        Some(p) => u16::try_from(p).map_err(|_| format!("invalid client port {p}")),
    }
}

/// Monitoring port: `-1` random, `0` disabled (as in nats-server).
fn monitor(
    spec: Option<(Option<String>, i64)>,
    client_host: &str,
    what: &str,
) -> Result<Option<HttpListen>, String> {
    let Some((host, port)) = spec else {
        return Ok(None);
    };
    let port = match port {
        0 => return Ok(None),
        -1 => 0,
        p => u16::try_from(p).map_err(|_| format!("invalid {what} monitoring port {p}"))?,
    };
    let host = host.unwrap_or_else(|| client_host.to_string());
    check_host(&host, &format!("{what} monitoring host"))?;
    Ok(Some(HttpListen { host, port }))
}

/// A host must be an IP address or a syntactically valid host name. Names are resolved
/// when the listener binds; an all-numeric dotted name that is not an IPv4 address (like
/// `1.2.3.999`) is refused here.
pub(crate) fn check_host(host: &str, what: &str) -> Result<(), String> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    let numeric = bare.chars().all(|c| c.is_ascii_digit() || c == '.');
    let name_ok = !bare.is_empty()
        && bare.len() <= 253
        && !numeric
        && !bare.contains(':')
        && bare.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        });
    if name_ok {
        Ok(())
    } else {
        Err(format!("invalid {what} {host:?}"))
    }
}

/// A server name without spaces; and one at all for a clustered JetStream server, which
/// the meta group knows its members by (nats-server refuses to start without it).
fn check_server_name(config: &Config) -> Result<(), String> {
    match &config.server_name {
        Some(name) if name.contains(' ') => Err("server name cannot contain spaces".into()),
        None if config.jetstream.is_some() && config.cluster.is_some() => {
            Err("jetstream cluster requires `server_name` to be set".into())
        }
        _ => Ok(()),
    }
}

fn check_limits(config: &Config, warnings: &mut Vec<Warning>) -> Result<(), String> {
    if config.max_payload > config.max_pending {
        return Err(format!(
            "max_payload ({}) cannot be higher than max_pending ({})",
            config.max_payload, config.max_pending
        ));
    }
    if config.max_payload > LARGE_PAYLOAD {
        warnings.push(Warning::flag(format!(
            "max_payload of {} bytes is over 8MB, which is generally discouraged",
            config.max_payload
        )));
    }
    Ok(())
}

fn check_lame_duck(config: &Config) -> Result<(), String> {
    let (duration, grace) = (config.lame_duck_duration, config.lame_duck_grace_period);
    if !duration.is_zero() && grace >= duration {
        return Err(format!(
            "lame duck grace period ({grace:?}) should be strictly lower than lame duck duration ({duration:?})"
        ));
    }
    Ok(())
}

fn check_tls(config: &Config) -> Result<(), String> {
    match &config.tls {
        Some(tls) => check_tls_files(tls),
        None => Ok(()),
    }
}

fn check_tls_files(tls: &super::super::TlsConfig) -> Result<(), String> {
    for (what, file) in [
        ("certificate", Some(&tls.cert_file)),
        ("key", Some(&tls.key_file)),
        ("CA", tls.ca_file.as_ref()),
    ] {
        if let Some(file) = file {
            check_readable(file, what)?;
        }
    }
    Ok(())
}

/// Worded as nats-server's: `error parsing X509 certificate/key pair: open c.pem: no such
/// file or directory` for the pair, `open ca.pem: …` for the CA.
fn check_readable(file: &Path, what: &str) -> Result<(), String> {
    std::fs::File::open(file).map(drop).map_err(|e| {
        let open = format!("open {}: {}", file.display(), super::super::go_error(&e));
        if what == "CA" {
            open
        } else {
            format!("error parsing X509 certificate/key pair: {open}")
        }
    })
}

/// JetStream's store directory is created when missing, and must not be (under) a file.
/// Checked when the server starts rather than when the file is read, so that it fails as
/// nats-server does: logged with `[FTL]` (and `-t` passes).
pub(crate) fn check_store_dir(config: &Config) -> Result<(), String> {
    let Some(js) = &config.jetstream else {
        return Ok(());
    };
    let not_a_dir = || "Can't start JetStream: storage directory is not a directory".to_string();
    if js.store_dir.is_dir() {
        return Ok(());
    }
    if js.store_dir.exists() {
        return Err(not_a_dir());
    }
    std::fs::create_dir_all(&js.store_dir).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotADirectory {
            not_a_dir()
        } else {
            format!(
                "Can't start JetStream: could not create storage directory - mkdir {}: {}",
                js.store_dir.display(),
                super::super::go_error(&e)
            )
        }
    })
}

/// A user name or nkey may appear once across `authorization` and all accounts.
fn check_duplicate_users(config: &Config) -> Result<(), ConfigError> {
    let mut seen = std::collections::HashSet::new();
    let all = config
        .authorization
        .users
        .iter()
        .chain(config.accounts.iter().flat_map(|a| a.users.iter()));
    for u in all {
        let id = u.user.as_deref().or(u.nkey.as_deref()).unwrap_or_default();
        if !seen.insert(id) {
            return Err(ConfigError::Validation(format!(
                "Duplicate user {id:?} detected"
            )));
        }
    }
    Ok(())
}

/// `no_auth_user` must name a configured user.
/// nats-server's checks of the `mqtt {}` block: JetStream on, a known `no_auth_user`,
/// TLS files present, a valid host, no MQTT-only user beside configured users.
fn check_mqtt(config: &Config) -> Result<(), String> {
    let Some(mqtt) = &config.mqtt else {
        return Ok(());
    };
    if config.jetstream.is_none() {
        return Err("mqtt requires JetStream to be enabled if running in standalone mode".into());
    }
    check_host(&mqtt.host, "mqtt listen host")?;
    if let Some(tls) = &mqtt.tls {
        check_tls_files(tls)?;
    }
    if let Some(name) = &mqtt.no_auth_user {
        known_user(config, name).map_err(|e| format!("mqtt {e}"))?;
    }
    let users = &config.authorization.users;
    if mqtt.authorization.user.is_some() && !users.is_empty() {
        return Err(
            "mqtt authentication username not compatible with presence of users/nkeys".into(),
        );
    }
    Ok(())
}

fn check_no_auth_user(config: &Config) -> Result<(), String> {
    match &config.no_auth_user {
        Some(name) => known_user(config, name),
        None => Ok(()),
    }
}

/// `name` is a configured user or nkey (as `no_auth_user` must be).
fn known_user(config: &Config, name: &str) -> Result<(), String> {
    let known = config
        .authorization
        .users
        .iter()
        .chain(config.accounts.iter().flat_map(|a| a.users.iter()))
        .any(|u| u.user.as_deref() == Some(name) || u.nkey.as_deref() == Some(name));
    if known {
        Ok(())
    } else {
        Err(format!(
            "no_auth_user: \"{name}\" not present as user or nkey in authorization block or account configuration"
        ))
    }
}

/// An auth callout's `allowed_accounts` must be configured accounts (nats-server's check).
fn check_auth_callout(config: &Config) -> Result<(), String> {
    let Some(ac) = &config.authorization.auth_callout else {
        return Ok(());
    };
    match ac
        .allowed_accounts
        .iter()
        .find(|a| !config.accounts.iter().any(|c| &c.name == *a))
    {
        Some(a) => Err(format!(
            "auth_callout allowed account {a:?} not found in configured accounts"
        )),
        None => Ok(()),
    }
}
