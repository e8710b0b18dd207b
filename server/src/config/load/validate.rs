//! The last step of loading: ports and hosts resolved, everything checked up front so the
//! server never starts half-configured.

use std::net::IpAddr;
use std::path::Path;

use super::super::error::{ConfigError, Warning};
use super::super::{Config, HttpListen};
use super::Draft;

/// nats-server's client port when none (or 0) is given.
const DEFAULT_PORT: u16 = 4222;
/// Payloads above this are allowed but discouraged (nats-server warns too).
const LARGE_PAYLOAD: usize = 8 * 1024 * 1024;

/// Resolves and validates a draft.
pub(super) fn finish(draft: Draft) -> Result<(Config, Vec<Warning>), ConfigError> {
    let Draft {
        mut config,
        mut warnings,
        port,
        http,
        https,
        ..
    } = draft;
    config.port = client_port(port)?;
    check_host(&config.host, "client listen host")?;
    config.http = monitor(http, &config.host, "http")?;
    config.https = monitor(https, &config.host, "https")?;
    if config.https.is_some() && config.tls.is_none() {
        return Err(ConfigError::Validation(
            "https monitoring requires a tls {} configuration".into(),
        ));
    }
    check_server_name(&config)?;
    check_limits(&config, &mut warnings)?;
    check_tls(&config)?;
    check_store_dir(&config)?;
    check_no_auth_user(&config)?;
    Ok((config, warnings))
}

/// `-1` is a random free port (0 in `Config`), `0` or absent the default 4222.
fn client_port(port: Option<i64>) -> Result<u16, ConfigError> {
    match port {
        None | Some(0) => Ok(DEFAULT_PORT),
        Some(-1) => Ok(0),
        Some(p) => u16::try_from(p)
            .map_err(|_| ConfigError::Validation(format!("invalid client port {p}"))),
    }
}

/// Monitoring port: `-1` random, `0` disabled (as in nats-server).
fn monitor(
    spec: Option<(Option<String>, i64)>,
    client_host: &str,
    what: &str,
) -> Result<Option<HttpListen>, ConfigError> {
    let Some((host, port)) = spec else {
        return Ok(None);
    };
    let port = match port {
        0 => return Ok(None),
        -1 => 0,
        p => u16::try_from(p)
            .map_err(|_| ConfigError::Validation(format!("invalid {what} monitoring port {p}")))?,
    };
    let host = host.unwrap_or_else(|| client_host.to_string());
    check_host(&host, &format!("{what} monitoring host"))?;
    Ok(Some(HttpListen { host, port }))
}

/// A host must be an IP address or a syntactically valid host name. Names are resolved
/// when the listener binds; an all-numeric dotted name that is not an IPv4 address (like
/// `1.2.3.999`) is refused here.
pub(crate) fn check_host(host: &str, what: &str) -> Result<(), ConfigError> {
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
        Err(ConfigError::Validation(format!("invalid {what} {host:?}")))
    }
}

fn check_server_name(config: &Config) -> Result<(), ConfigError> {
    match &config.server_name {
        Some(name) if name.contains(' ') => Err(ConfigError::Validation(
            "server name cannot contain spaces".into(),
        )),
        _ => Ok(()),
    }
}

fn check_limits(config: &Config, warnings: &mut Vec<Warning>) -> Result<(), ConfigError> {
    if config.max_payload > config.max_pending {
        return Err(ConfigError::Validation(format!(
            "max_payload ({}) cannot be higher than max_pending ({})",
            config.max_payload, config.max_pending
        )));
    }
    if config.max_payload > LARGE_PAYLOAD {
        warnings.push(Warning::flag(format!(
            "max_payload of {} bytes is over 8MB, which is generally discouraged",
            config.max_payload
        )));
    }
    Ok(())
}

fn check_tls(config: &Config) -> Result<(), ConfigError> {
    let Some(tls) = &config.tls else {
        return Ok(());
    };
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

fn check_readable(file: &Path, what: &str) -> Result<(), ConfigError> {
    std::fs::File::open(file).map(drop).map_err(|e| {
        ConfigError::Validation(format!(
            "error opening TLS {what} file {}: {e}",
            file.display()
        ))
    })
}

/// JetStream's store directory may not exist yet, but must not be a file.
fn check_store_dir(config: &Config) -> Result<(), ConfigError> {
    let Some(js) = &config.jetstream else {
        return Ok(());
    };
    if js.store_dir.exists() && !js.store_dir.is_dir() {
        return Err(ConfigError::Validation(format!(
            "Can't start JetStream: storage directory {} is not a directory",
            js.store_dir.display()
        )));
    }
    Ok(())
}

/// `no_auth_user` must name a configured user.
fn check_no_auth_user(config: &Config) -> Result<(), ConfigError> {
    let Some(name) = &config.no_auth_user else {
        return Ok(());
    };
    let known = config
        .authorization
        .users
        .iter()
        .chain(config.accounts.iter().flat_map(|a| a.users.iter()))
        .any(|u| u.user.as_deref() == Some(name) || u.nkey.as_deref() == Some(name));
    if known {
        Ok(())
    } else {
        Err(ConfigError::Validation(format!(
            "no_auth_user: \"{name}\" not present as user or nkey in authorization block or account configuration"
        )))
    }
}
