//! `mappings {}` (alias `maps`), at the top level (the default account) and in accounts:
//! `src: dest`, `src: {destination, weight, cluster}` or `src: [ {…}, … ]`.
//!
//! Errors are nats-server's (`Error adding mapping for "foo.*" to "bar.$2" : invalid
//! mapping destination: wildcard index out of range in $2: [2]`, `Missing weight for
//! mapping destination "a"`, `Subject "a..b" is not a valid subject`). Weights are
//! `50%`, `"50"` or `50`.

use rill_protocol::mapping::Mapping;
use rill_protocol::subject;

use super::super::conf::{ConfValue, ValueKind};
use super::super::error::ConfigError;
use super::value::{self, map};

/// Parses a `mappings` block into validated mappings, in the order written.
pub(super) fn parse(v: &ConfValue, key: &str) -> Result<Vec<Mapping>, ConfigError> {
    let mut out = Vec::new();
    for e in map(v, key)?.entries() {
        if subject::validate_filter(&e.key).is_err() {
            return Err(ConfigError::at(
                &e.key_pos,
                format!("Subject \"{}\" is not a valid subject", e.key),
            ));
        }
        let dests = destinations(&e.value)?;
        let mapping = Mapping::new(&e.key, &dests)
            .map_err(|err| ConfigError::at(&e.key_pos, err.to_string()))?;
        out.push(mapping);
    }
    Ok(out)
}

type Dest = (String, u8, Option<String>);

fn destinations(v: &ConfValue) -> Result<Vec<Dest>, ConfigError> {
    match &v.kind {
        ValueKind::String(dest) => Ok(vec![(dest.clone(), 100, None)]),
        ValueKind::Map(_) => Ok(vec![destination(v)?]),
        ValueKind::Array(items) => items.iter().map(destination).collect(),
        _ => Err(ConfigError::at(
            &v.pos,
            format!(
                "Expected mapping destination to be a string, map or array, got {}",
                v.kind.type_name()
            ),
        )),
    }
}

fn destination(v: &ConfValue) -> Result<Dest, ConfigError> {
    let mut dest = None;
    let mut weight = None;
    let mut cluster = None;
    for e in map(v, "mappings")?.entries() {
        match e.key.to_ascii_lowercase().as_str() {
            "dest" | "destination" => dest = Some(value::string(&e.value, &e.key)?),
            "weight" => weight = Some(percent(&e.value)?),
            "cluster" => cluster = Some(value::string(&e.value, &e.key)?),
            _ => value::unknown(e)?,
        }
    }
    let dest = dest.ok_or_else(|| ConfigError::at(&v.pos, "Missing mapping destination"))?;
    let weight = weight.ok_or_else(|| {
        ConfigError::at(
            &v.pos,
            format!("Missing weight for mapping destination \"{dest}\""),
        )
    })?;
    Ok((dest, weight, cluster))
}

/// `50%`, `"50"` or `50`, within 0–100.
fn percent(v: &ConfValue) -> Result<u8, ConfigError> {
    let n = match &v.kind {
        ValueKind::Int(n) => Some(*n),
        ValueKind::String(s) => s.trim().trim_end_matches('%').trim().parse::<i64>().ok(),
        _ => None,
    };
    n.and_then(|n| u8::try_from(n).ok())
        .filter(|n| *n <= 100)
        .ok_or_else(|| {
            ConfigError::at(
                &v.pos,
                "Invalid weight for mapping destination, must be between 0 and 100",
            )
        })
}
