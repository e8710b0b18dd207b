//! The `tls {}` block for client connections.

use std::time::Duration;

use super::super::TlsConfig;
use super::super::conf::{ConfValue, ValueKind};
use super::super::error::ConfigError;
use super::super::units::parse_duration;
use super::value::{self, boolean, map, path, string, timeout};

/// nats-server's TLS handshake timeout default.
pub(crate) const DEFAULT_TLS_TIMEOUT: Duration = Duration::from_secs(2);
/// Fallback delay for `handshake_first: auto` (nats-server's default).
const DEFAULT_HANDSHAKE_FIRST_FALLBACK: Duration = Duration::from_millis(50);

/// Parses `tls { cert_file, key_file, ca_file, verify, verify_and_map, timeout,
/// handshake_first, min_version }`. File existence is checked in `validate`.
pub(super) fn parse(v: &ConfValue) -> Result<TlsConfig, ConfigError> {
    parse_block(v, true)
}

/// Parses the `tls {}` block of a connection this server dials (a leaf remote): the
/// certificate is optional (presented when the other side asks for one).
pub(super) fn parse_dialling(v: &ConfValue) -> Result<TlsConfig, ConfigError> {
    parse_block(v, false)
}

fn parse_block(v: &ConfValue, need_cert: bool) -> Result<TlsConfig, ConfigError> {
    let m = map(v, "tls")?;
    let mut cert = None;
    let mut key = None;
    let mut tls = TlsConfig {
        cert_file: Default::default(),
        key_file: Default::default(),
        ca_file: None,
        verify: false,
        verify_and_map: false,
        timeout: DEFAULT_TLS_TIMEOUT,
        handshake_first: false,
        handshake_first_fallback: None,
        min_version: None,
        pinned_certs: Vec::new(),
    };
    for e in m.entries() {
        let k = e.key.to_ascii_lowercase();
        let v = &e.value;
        match k.as_str() {
            "cert_file" => cert = Some(path(v, &k)?),
            "key_file" => key = Some(path(v, &k)?),
            "ca_file" => tls.ca_file = Some(path(v, &k)?),
            "verify" => tls.verify = boolean(v, &k)?,
            "verify_and_map" => {
                tls.verify_and_map = boolean(v, &k)?;
                tls.verify |= tls.verify_and_map;
            }
            "timeout" => tls.timeout = timeout(v, &k)?,
            "handshake_first" | "first" | "immediate" => {
                (tls.handshake_first, tls.handshake_first_fallback) = handshake_first(v, &k)?;
            }
            "min_version" => tls.min_version = Some(min_version(v)?),
            "pinned_certs" => tls.pinned_certs = pins(v)?,
            "insecure"
            | "verify_cert_and_check_known_urls"
            | "allow_insecure_cipher_suites"
            | "cipher_suites"
            | "curve_preferences"
            | "connection_rate_limit"
            | "cert_store"
            | "cert_match_by"
            | "cert_match"
            | "ca_certs_match"
            | "cert_match_skip_invalid"
            | "ocsp_peer"
            | "certs"
            | "certificates" => {
                return Err(ConfigError::at(
                    &e.key_pos,
                    format!(
                        "tls setting \"{k}\" is not supported by rill yet; refusing to start rather than ignore it"
                    ),
                ));
            }
            _ => value::unknown(e)?,
        }
    }
    let missing =
        |what: &str| ConfigError::at(&v.pos, format!("missing '{what}' in TLS configuration"));
    if need_cert || cert.is_some() || key.is_some() {
        tls.cert_file = cert.ok_or_else(|| missing("cert_file"))?;
        tls.key_file = key.ok_or_else(|| missing("key_file"))?;
    }
    if !tls.pinned_certs.is_empty() && !tls.verify {
        return Err(ConfigError::at(
            &v.pos,
            "pinned_certs needs verify: true (client certificates are only asked for with verify)",
        ));
    }
    Ok(tls)
}

/// `true`/`false`, `"auto"` (fall back to plain INFO after 50ms) or a fallback duration:
/// (TLS first, fallback delay).
fn handshake_first(v: &ConfValue, key: &str) -> Result<(bool, Option<Duration>), ConfigError> {
    match &v.kind {
        ValueKind::Bool(b) => Ok((*b, None)),
        ValueKind::String(s) => match s.to_ascii_lowercase().as_str() {
            "true" | "on" => Ok((true, None)),
            "false" | "off" => Ok((false, None)),
            "auto" | "auto_fallback" => Ok((true, Some(DEFAULT_HANDSHAKE_FIRST_FALLBACK))),
            _ => parse_duration(s)
                .map(|d| (true, Some(d)))
                .map_err(|e| ConfigError::at(&v.pos, format!("error parsing {key}: {e}"))),
        },
        _ => Err(ConfigError::at(
            &v.pos,
            format!("'{key}' must be a boolean, \"auto\" or a duration"),
        )),
    }
}

/// A list of hex SHA-256 fingerprints (64 hex digits each; stored lowercase).
fn pins(v: &ConfValue) -> Result<Vec<String>, ConfigError> {
    let ValueKind::Array(items) = &v.kind else {
        return Err(ConfigError::at(&v.pos, "pinned_certs must be a list"));
    };
    items
        .iter()
        .map(|item| {
            let pin = string(item, "pinned_certs")?.to_ascii_lowercase();
            match pin.len() == 64 && pin.bytes().all(|b| b.is_ascii_hexdigit()) {
                true => Ok(pin),
                false => Err(ConfigError::at(
                    &item.pos,
                    format!("pinned_certs entry {pin:?} is not a hex SHA-256 (64 digits)"),
                )),
            }
        })
        .collect()
}

fn min_version(v: &ConfValue) -> Result<String, ConfigError> {
    let s = string(v, "min_version")?;
    match s.as_str() {
        "1.2" | "1.3" => Ok(s),
        _ => Err(ConfigError::at(
            &v.pos,
            format!("unsupported TLS min_version {s:?}: use \"1.2\" or \"1.3\""),
        )),
    }
}
