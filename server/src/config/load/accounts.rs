//! `accounts { NAME { users, exports, imports, jetstream, default_permissions } }`.

use super::super::conf::{ConfMap, ConfValue, ValueKind};
use super::super::error::{ConfigError, Warning};
use super::super::{
    AccountConfig, AccountJetStreamLimits, ExportConfig, ExportKind, ImportConfig, MsgTraceConfig,
};
use super::auth::{permissions, users};
use super::value::{self, map, size, string, strings};

/// Parses the `accounts` block.
pub(super) fn parse(
    v: &ConfValue,
    warnings: &mut Vec<Warning>,
) -> Result<Vec<AccountConfig>, ConfigError> {
    if let ValueKind::Array(names) = &v.kind {
        // The old list form, `accounts: [A, B]`: names only.
        return names
            .iter()
            .map(|n| {
                let name = string(n, "accounts")?;
                Ok(AccountConfig {
                    name,
                    ..AccountConfig::default()
                })
            })
            .collect();
    }
    let mut out = Vec::new();
    for e in map(v, "accounts")?.entries() {
        out.push(account(&e.key, &e.value, warnings)?);
    }
    Ok(out)
}

fn account(
    name: &str,
    v: &ConfValue,
    warnings: &mut Vec<Warning>,
) -> Result<AccountConfig, ConfigError> {
    let mut acc = AccountConfig {
        name: name.to_string(),
        ..AccountConfig::default()
    };
    let m = match &v.kind {
        ValueKind::Map(m) => m,
        // nats-server accepts `accounts { A: {} }` only; an empty value is an empty map.
        _ => {
            return Err(ConfigError::at(
                &v.pos,
                format!("account \"{name}\" must be a map {{ … }}"),
            ));
        }
    };
    for e in m.entries() {
        let key = e.key.to_ascii_lowercase();
        let v = &e.value;
        match key.as_str() {
            "users" => acc.users = users(v, Some(name), warnings)?,
            "exports" => {
                acc.exports = value::array(v, &key)?
                    .iter()
                    .map(export)
                    .collect::<Result<_, _>>()?
            }
            "imports" => {
                acc.imports = value::array(v, &key)?
                    .iter()
                    .map(import)
                    .collect::<Result<_, _>>()?
            }
            "jetstream" => (acc.jetstream, acc.jetstream_limits) = account_jetstream(v)?,
            "default_permissions" => acc.default_permissions = Some(permissions(v, &key)?),
            "mappings" | "maps" => acc.mappings = super::mappings::parse(v, &key)?,
            "msg_trace" => acc.msg_trace = Some(msg_trace(v)?),
            "nkey" | "limits" => warnings.push(Warning::at(
                &e.key_pos,
                format!("account setting \"{key}\" is not supported by rill yet and is ignored"),
            )),
            _ => value::unknown(e)?,
        }
    }
    Ok(acc)
}

/// `{ stream: subj, accounts: [...] }` or `{ service: subj, ... }`.
fn export(v: &ConfValue) -> Result<ExportConfig, ConfigError> {
    let m = map(v, "exports")?;
    let mut kind_subject = None;
    let mut accounts = Vec::new();
    let mut allow_trace = false;
    for e in m.entries() {
        let key = e.key.to_ascii_lowercase();
        match key.as_str() {
            "stream" => kind_subject = Some((ExportKind::Stream, string(&e.value, &key)?)),
            "service" => kind_subject = Some((ExportKind::Service, string(&e.value, &key)?)),
            "accounts" => accounts = strings(&e.value, &key)?,
            // Response types, thresholds, latency tracing: accepted, rill uses the defaults.
            "response"
            | "response_type"
            | "threshold"
            | "response_threshold"
            | "response_max_time"
            | "response_time"
            | "latency"
            | "account_token_position" => {}
            "allow_trace" => allow_trace = value::boolean(&e.value, &key)?,
            _ => value::unknown(e)?,
        }
    }
    let (kind, subject) = kind_subject.ok_or_else(|| {
        ConfigError::at(&v.pos, "export needs a \"stream\" or a \"service\" subject")
    })?;
    Ok(ExportConfig {
        kind,
        subject,
        accounts,
        allow_trace,
    })
}

/// `{ stream: { account, subject }, prefix }` or `{ service: { account, subject }, to }`.
fn import(v: &ConfValue) -> Result<ImportConfig, ConfigError> {
    let m = map(v, "imports")?;
    let mut source = None;
    let mut to = None;
    let mut prefix = None;
    let mut allow_trace = false;
    let mut share = false;
    for e in m.entries() {
        let key = e.key.to_ascii_lowercase();
        match key.as_str() {
            "stream" => source = Some((ExportKind::Stream, import_source(&e.value, &key)?)),
            "service" => source = Some((ExportKind::Service, import_source(&e.value, &key)?)),
            "to" => to = Some(string(&e.value, &key)?),
            "prefix" => prefix = Some(string(&e.value, &key)?),
            "share" => share = value::boolean(&e.value, &key)?,
            "allow_trace" => allow_trace = value::boolean(&e.value, &key)?,
            _ => value::unknown(e)?,
        }
    }
    let (kind, (account, subject)) = source.ok_or_else(|| {
        ConfigError::at(&v.pos, "import needs a \"stream\" or a \"service\" source")
    })?;
    Ok(ImportConfig {
        kind,
        account,
        subject,
        to,
        prefix,
        allow_trace,
        share,
    })
}

/// `msg_trace { dest, sampling }`: `sampling` 1 to 100, as a number or `"N%"`.
fn msg_trace(v: &ConfValue) -> Result<MsgTraceConfig, ConfigError> {
    let mut dest = None;
    let mut sampling = 100;
    for e in map(v, "msg_trace")?.entries() {
        let key = e.key.to_ascii_lowercase();
        match key.as_str() {
            "dest" => dest = Some(string(&e.value, &key)?),
            "sampling" => sampling = percent(&e.value)?,
            _ => value::unknown(e)?,
        }
    }
    let dest = dest.ok_or_else(|| ConfigError::at(&v.pos, "msg_trace needs a \"dest\" subject"))?;
    if rill_protocol::subject::validate_publish(&dest).is_err() {
        return Err(ConfigError::at(
            &v.pos,
            format!("trace destination {dest:?} is not valid"),
        ));
    }
    Ok(MsgTraceConfig { dest, sampling })
}

/// A sampling percentage: `50` or `"50%"`, from 1 to 100.
fn percent(v: &ConfValue) -> Result<u8, ConfigError> {
    let n = match &v.kind {
        ValueKind::String(s) => s.trim().trim_end_matches('%').trim().parse::<i64>().ok(),
        _ => Some(value::int(v, "sampling")?),
    };
    match n {
        Some(n @ 1..=100) => Ok(u8::try_from(n).unwrap_or(100)),
        _ => Err(ConfigError::at(
            &v.pos,
            "trace sampling value must be between 1 and 100",
        )),
    }
}

fn import_source(v: &ConfValue, key: &str) -> Result<(String, String), ConfigError> {
    let m: &ConfMap = map(v, key)?;
    let mut account = None;
    let mut subject = None;
    for e in m.entries() {
        let k = e.key.to_ascii_lowercase();
        match k.as_str() {
            "account" => account = Some(string(&e.value, &k)?),
            "subject" => subject = Some(string(&e.value, &k)?),
            _ => value::unknown(e)?,
        }
    }
    match (account, subject) {
        (Some(a), Some(s)) => Ok((a, s)),
        _ => Err(ConfigError::at(
            &v.pos,
            format!("import {key} needs both \"account\" and \"subject\""),
        )),
    }
}

/// `jetstream: enabled|disabled|true|false` or `{ max_mem, max_file, max_streams, … }`.
fn account_jetstream(v: &ConfValue) -> Result<(bool, Option<AccountJetStreamLimits>), ConfigError> {
    match &v.kind {
        ValueKind::Bool(b) => Ok((*b, None)),
        ValueKind::String(s) => match s.to_ascii_lowercase().as_str() {
            "enabled" | "enable" => Ok((true, None)),
            "disabled" | "disable" => Ok((false, None)),
            _ => Err(ConfigError::at(
                &v.pos,
                format!("expected 'enabled' or 'disabled' for string value, got {s:?}"),
            )),
        },
        ValueKind::Map(m) => Ok((true, Some(account_js_limits(m)?))),
        _ => Err(ConfigError::at(
            &v.pos,
            "account 'jetstream' must be a boolean, 'enabled'/'disabled' or a map",
        )),
    }
}

fn account_js_limits(m: &ConfMap) -> Result<AccountJetStreamLimits, ConfigError> {
    let mut l = AccountJetStreamLimits::default();
    for e in m.entries() {
        let key = e.key.to_ascii_lowercase();
        let v = &e.value;
        match key.as_str() {
            "max_memory" | "max_mem" | "mem" | "memory" => l.max_memory = size(v, &key, true)?,
            "max_store" | "max_file" | "max_disk" | "store" | "disk" => {
                l.max_store = size(v, &key, true)?
            }
            "max_streams" | "streams" => l.max_streams = value::int(v, &key)?,
            "max_consumers" | "consumers" => l.max_consumers = value::int(v, &key)?,
            "max_ack_pending" => l.max_ack_pending = value::int(v, &key)?,
            "max_bytes_required" | "max_stream_bytes" | "max_bytes" => {
                l.max_bytes_required = value::boolean(v, &key)?
            }
            "mem_max_stream_bytes" | "memory_max_stream_bytes" => {
                l.memory_max_stream_bytes = size(v, &key, true)?
            }
            "disk_max_stream_bytes" | "store_max_stream_bytes" => {
                l.store_max_stream_bytes = size(v, &key, true)?
            }
            "cluster_traffic" => {}
            _ => value::unknown(e)?,
        }
    }
    Ok(l)
}
