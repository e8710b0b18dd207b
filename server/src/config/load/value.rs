//! Typed reads of `ConfValue`s: each one either returns the Rust value or a
//! `ConfigError` that names the key and points at the value.

use std::path::PathBuf;
use std::time::Duration;

use super::super::conf::{ConfMap, ConfValue, Entry, Pos, ValueKind, parse_size_str};
use super::super::error::{ConfigError, Warning};
use super::super::units::{parse_duration, seconds};

fn wrong(v: &ConfValue, key: &str, want: &str) -> ConfigError {
    ConfigError::at(
        &v.pos,
        format!(
            "'{key}' must be {want}, got {} {}",
            v.kind.type_name(),
            show(v)
        ),
    )
}

fn show(v: &ConfValue) -> String {
    match &v.kind {
        ValueKind::String(s) => format!("{s:?}"),
        ValueKind::Int(n) => n.to_string(),
        ValueKind::Float(f) => f.to_string(),
        ValueKind::Bool(b) => b.to_string(),
        ValueKind::Datetime(d) => d.clone(),
        ValueKind::Array(_) => "[…]".into(),
        ValueKind::Map(_) => "{…}".into(),
    }
}

/// A string.
pub(super) fn string(v: &ConfValue, key: &str) -> Result<String, ConfigError> {
    match &v.kind {
        ValueKind::String(s) => Ok(s.clone()),
        _ => Err(wrong(v, key, "a string")),
    }
}

/// A file system path.
pub(super) fn path(v: &ConfValue, key: &str) -> Result<PathBuf, ConfigError> {
    string(v, key).map(PathBuf::from)
}

/// An integer.
pub(super) fn int(v: &ConfValue, key: &str) -> Result<i64, ConfigError> {
    match v.kind {
        ValueKind::Int(n) => Ok(n),
        _ => Err(wrong(v, key, "an integer")),
    }
}

/// A non-negative integer that fits `usize`.
pub(super) fn count(v: &ConfValue, key: &str) -> Result<usize, ConfigError> {
    let n = int(v, key)?;
    usize::try_from(n)
        .map_err(|_| ConfigError::at(&v.pos, format!("'{key}' must not be negative, got {n}")))
}

/// A boolean (`true`/`yes`/`on`, `false`/`no`/`off`).
pub(super) fn boolean(v: &ConfValue, key: &str) -> Result<bool, ConfigError> {
    match v.kind {
        ValueKind::Bool(b) => Ok(b),
        _ => Err(wrong(v, key, "a boolean (true/false)")),
    }
}

/// A byte size: an integer (suffixes already applied), or, when `strings` is set, a
/// string such as `"1G"` (nats-server accepts those for JetStream limits).
pub(super) fn size(v: &ConfValue, key: &str, strings: bool) -> Result<i64, ConfigError> {
    match &v.kind {
        ValueKind::Int(n) => Ok(*n),
        ValueKind::String(s) if strings => parse_size_str(s)
            .ok_or_else(|| ConfigError::at(&v.pos, format!("'{key}' is not a valid size: {s:?}"))),
        _ => Err(wrong(v, key, "a size such as 1048576, 64KB or 1GiB")),
    }
}

/// A duration string (`"2s"`, `300ms`). A bare number is taken as seconds with a
/// warning, as nats-server does for `ping_interval` and `write_deadline`.
pub(super) fn duration(
    v: &ConfValue,
    key: &str,
    warnings: &mut Vec<Warning>,
) -> Result<Duration, ConfigError> {
    match &v.kind {
        ValueKind::String(s) => parse_duration(s)
            .map_err(|e| ConfigError::at(&v.pos, format!("error parsing {key}: {e}"))),
        ValueKind::Int(_) | ValueKind::Float(_) => {
            warnings.push(Warning::at(
                &v.pos,
                format!("invalid use of field \"{key}\": {key} should be converted to a duration (read as seconds)"),
            ));
            secs(v, key)
        }
        _ => Err(wrong(v, key, "a duration such as \"2s\" or \"300ms\"")),
    }
}

/// A number of seconds (int or float) or a duration string, as `timeout` keys take.
pub(super) fn timeout(v: &ConfValue, key: &str) -> Result<Duration, ConfigError> {
    match &v.kind {
        ValueKind::String(s) => parse_duration(s)
            .map_err(|e| ConfigError::at(&v.pos, format!("error parsing {key}: {e}"))),
        _ => secs(v, key),
    }
}

fn secs(v: &ConfValue, key: &str) -> Result<Duration, ConfigError> {
    let n = match v.kind {
        ValueKind::Int(n) => n as f64,
        ValueKind::Float(f) => f,
        _ => return Err(wrong(v, key, "a number of seconds")),
    };
    seconds(n).map_err(|e| ConfigError::at(&v.pos, format!("'{key}': {e}")))
}

/// A map.
pub(super) fn map<'a>(v: &'a ConfValue, key: &str) -> Result<&'a ConfMap, ConfigError> {
    match &v.kind {
        ValueKind::Map(m) => Ok(m),
        _ => Err(wrong(v, key, "a map { … }")),
    }
}

/// An array.
pub(super) fn array<'a>(v: &'a ConfValue, key: &str) -> Result<&'a [ConfValue], ConfigError> {
    match &v.kind {
        ValueKind::Array(items) => Ok(items),
        _ => Err(wrong(v, key, "an array [ … ]")),
    }
}

/// One string or an array of strings.
pub(super) fn strings(v: &ConfValue, key: &str) -> Result<Vec<String>, ConfigError> {
    match &v.kind {
        ValueKind::String(s) => Ok(vec![s.clone()]),
        ValueKind::Array(items) => items.iter().map(|i| string(i, key)).collect(),
        _ => Err(wrong(v, key, "a string or an array of strings")),
    }
}

/// A key nats-server does not know in this block: an error, unless the key only defines
/// a `$variable` used elsewhere (nats-server skips those too).
pub(super) fn unknown(e: &Entry) -> Result<(), ConfigError> {
    if e.used_as_variable {
        Ok(())
    } else {
        Err(unknown_at(&e.key_pos, &e.key))
    }
}

/// The error for an unknown key at `pos`.
pub(super) fn unknown_at(pos: &Pos, key: &str) -> ConfigError {
    ConfigError::at(pos, format!("unknown field \"{key}\""))
}
