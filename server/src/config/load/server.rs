//! Server-wide keys (listen address, limits, timers, logging, files, monitoring) and the
//! `jetstream` block.

use std::path::PathBuf;

use super::super::conf::{ConfValue, Entry, ValueKind};
use super::super::error::{ConfigError, Warning};
use super::super::units::parse_duration;
use super::super::{JetStreamConfig, SyncInterval};
use super::Draft;
use super::value::{self, boolean, count, duration, int, path, size, string};

impl Draft {
    /// Applies a server-wide key; false when `lower` is not one.
    pub(super) fn server_key(&mut self, lower: &str, v: &ConfValue) -> Result<bool, ConfigError> {
        let c = &mut self.config;
        let w = &mut self.warnings;
        match lower {
            "listen" => self.listen(v)?,
            "port" => self.port = Some(int(v, lower)?),
            "host" | "net" => c.host = string(v, lower)?,
            "server_name" => c.server_name = Some(string(v, lower)?),
            // One string is one tag (nats-server splits nothing); kept lower-cased.
            "server_tags" => {
                c.server_tags = value::strings(v, lower)?
                    .iter()
                    .map(|t| t.to_lowercase())
                    .collect();
            }
            "client_advertise" => c.client_advertise = Some(string(v, lower)?),
            "max_payload" => c.max_payload = int32_size(v, lower)?,
            "max_pending" => c.max_pending = positive_size(v, lower)?,
            "max_control_line" => c.max_control_line = int32_size(v, lower)?,
            "max_connections" | "max_conn" => c.max_connections = max_connections(v, lower)?,
            "max_subscriptions" | "max_subs" => c.max_subscriptions = count(v, lower)?,
            "ping_interval" => c.ping_interval = duration(v, lower, w)?,
            "ping_max" => {
                c.ping_max = u32::try_from(int(v, lower)?).map_err(|_| out_of_range(v, lower))?
            }
            "write_deadline" => c.write_deadline = duration(v, lower, w)?,
            "lame_duck_duration" => c.lame_duck_duration = duration(v, lower, w)?,
            "lame_duck_grace_period" => c.lame_duck_grace_period = duration(v, lower, w)?,
            "debug" => c.logging.debug = boolean(v, lower)?,
            "trace" | "trace_verbose" | "trace_headers" => c.logging.trace = boolean(v, lower)?,
            "logtime" => c.logging.logtime = boolean(v, lower)?,
            // rill's timestamps are always UTC, which is what this asks for.
            "logtime_utc" => drop(boolean(v, lower)?),
            "logfile" | "log_file" => c.logging.log_file = Some(path(v, lower)?),
            "pidfile" | "pid_file" => c.pid_file = Some(path(v, lower)?),
            "ports_file_dir" => c.ports_file_dir = Some(path(v, lower)?),
            "http" => self.http = Some(monitor_listen(v, lower)?),
            "https" => self.https = Some(monitor_listen(v, lower)?),
            "http_port" | "monitor_port" => self.http = Some((None, int(v, lower)?)),
            "https_port" => self.https = Some((None, int(v, lower)?)),
            "http_console" => c.http_console = boolean(v, lower)?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// `listen: host:port`, `listen: port` or `listen: "[::1]:4222"`.
    fn listen(&mut self, v: &ConfValue) -> Result<(), ConfigError> {
        let (host, port) = host_port(v, "listen")?;
        if let Some(host) = host {
            self.config.host = host;
        }
        self.port = Some(port);
        Ok(())
    }
}

/// `http: 8222`, `http: "host:port"`.
fn monitor_listen(v: &ConfValue, key: &str) -> Result<(Option<String>, i64), ConfigError> {
    host_port(v, key)
}

/// Splits `host:port` (IPv6 in brackets), or takes a bare port number.
pub(super) fn host_port(v: &ConfValue, key: &str) -> Result<(Option<String>, i64), ConfigError> {
    let text = match &v.kind {
        ValueKind::Int(n) => return Ok((None, *n)),
        ValueKind::String(s) => s,
        _ => {
            return Err(ConfigError::at(
                &v.pos,
                format!("'{key}' must be \"host:port\" or a port number"),
            ));
        }
    };
    let bad = || {
        ConfigError::at(
            &v.pos,
            format!("could not parse address string {text:?} for '{key}'"),
        )
    };
    let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
    let port: i64 = port.parse().map_err(|_| bad())?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Ok(((!host.is_empty()).then(|| host.to_string()), port))
}

/// A positive size that nats-server stores in an `int32`.
fn int32_size(v: &ConfValue, key: &str) -> Result<usize, ConfigError> {
    let n = positive_size(v, key)?;
    if n > i32::MAX as usize {
        return Err(ConfigError::at(&v.pos, format!("{key} value is too big")));
    }
    Ok(n)
}

/// `max_connections`: 0 or negative is unlimited, as in nats-server.
fn max_connections(v: &ConfValue, key: &str) -> Result<usize, ConfigError> {
    let n = int(v, key)?;
    Ok(usize::try_from(n)
        .ok()
        .filter(|n| *n > 0)
        .unwrap_or(usize::MAX))
}

fn positive_size(v: &ConfValue, key: &str) -> Result<usize, ConfigError> {
    let n = size(v, key, false)?;
    if n <= 0 {
        return Err(ConfigError::at(
            &v.pos,
            format!("'{key}' must be greater than 0, got {n}"),
        ));
    }
    usize::try_from(n).map_err(|_| out_of_range(v, key))
}

fn out_of_range(v: &ConfValue, key: &str) -> ConfigError {
    ConfigError::at(&v.pos, format!("'{key}' value is out of range"))
}

/// What a `jetstream` value says: enabled, the block's settings, a store dir.
type JetStreamSetting = (bool, Option<JetStreamConfig>, Option<PathBuf>);

/// `jetstream: true|false|enabled|disabled` or `jetstream { … }`.
pub(super) fn jetstream(
    v: &ConfValue,
    warnings: &mut Vec<Warning>,
) -> Result<JetStreamSetting, ConfigError> {
    match &v.kind {
        ValueKind::Bool(b) => Ok((*b, None, None)),
        ValueKind::String(s) => match s.to_ascii_lowercase().as_str() {
            "enabled" | "enable" => Ok((true, None, None)),
            "disabled" | "disable" => Ok((false, None, None)),
            _ => Err(ConfigError::at(
                &v.pos,
                format!("expected 'enabled' or 'disabled' for string value, got {s:?}"),
            )),
        },
        ValueKind::Map(m) => {
            let mut js = JetStreamConfig::default();
            let mut enabled = true;
            let mut store_dir = None;
            for e in m.entries() {
                let key = e.key.to_ascii_lowercase();
                let v = &e.value;
                match key.as_str() {
                    "enable" | "enabled" => enabled = boolean(v, &key)?,
                    "store" | "store_dir" | "storedir" => store_dir = Some(path(v, &key)?),
                    _ => jetstream_setting(&mut js, &key, e, warnings)?,
                }
            }
            Ok((enabled, Some(js), store_dir))
        }
        _ => Err(ConfigError::at(
            &v.pos,
            "'jetstream' must be a boolean, 'enabled'/'disabled' or a map",
        )),
    }
}

fn jetstream_setting(
    js: &mut JetStreamConfig,
    key: &str,
    e: &Entry,
    warnings: &mut Vec<Warning>,
) -> Result<(), ConfigError> {
    let (key_pos, v) = (&e.key_pos, &e.value);
    match key {
        "max_memory_store" | "max_mem_store" | "max_mem" => {
            js.max_memory_store = size(v, key, true)?
        }
        "max_file_store" | "max_file" => js.max_file_store = size(v, key, true)?,
        "sync" | "sync_interval" => js.sync = sync_interval(v, key)?,
        "domain" => js.domain = Some(string(v, key)?),
        "strict" => js.strict = boolean(v, key)?,
        "limits" => jetstream_limits(js, v, warnings)?,
        "index_cache" => js.index_cache = Some(index_cache(v, key)?),
        "key"
        | "ek"
        | "encryption_key"
        | "prev_key"
        | "prev_ek"
        | "prev_encryption_key"
        | "cipher"
        | "tpm" => {
            return Err(ConfigError::at(
                key_pos,
                format!(
                    "JetStream encryption at rest (\"{key}\") is not supported by rill yet; refusing to store data unencrypted"
                ),
            ));
        }
        "extension_hint"
        | "unique_tag"
        | "max_outstanding_catchup"
        | "max_buffered_size"
        | "max_buffered_msgs"
        | "request_queue_limit"
        | "info_queue_limit"
        | "meta_compact"
        | "meta_compact_size"
        | "meta_compact_sync"
        | "max_concurrent_io" => warnings.push(Warning::at(
            key_pos,
            format!("jetstream setting \"{key}\" is not supported by rill yet and is ignored"),
        )),
        _ => value::unknown(e)?,
    }
    Ok(())
}

fn jetstream_limits(
    js: &mut JetStreamConfig,
    v: &ConfValue,
    warnings: &mut Vec<Warning>,
) -> Result<(), ConfigError> {
    for e in value::map(v, "limits")?.entries() {
        let key = e.key.to_ascii_lowercase();
        let v = &e.value;
        match key.as_str() {
            "max_request_batch" => js.limits.max_request_batch = Some(count(v, &key)?),
            "max_ack_pending" => js.limits.max_ack_pending = Some(count(v, &key)?),
            "duplicate_window" => js.limits.duplicate_window = Some(duration(v, &key, warnings)?),
            "max_ha_assets" | "batch" => warnings.push(Warning::at(
                &e.key_pos,
                format!("jetstream limit \"{key}\" is not supported by rill yet and is ignored"),
            )),
            _ => value::unknown(e)?,
        }
    }
    Ok(())
}

/// `index_cache: 16MiB`: a size, not negative.
fn index_cache(v: &ConfValue, key: &str) -> Result<usize, ConfigError> {
    let n = size(v, key, true)?;
    usize::try_from(n)
        .map_err(|_| ConfigError::at(&v.pos, format!("'{key}' must not be negative, got {n}")))
}

/// `sync_interval: always` or a duration.
fn sync_interval(v: &ConfValue, key: &str) -> Result<SyncInterval, ConfigError> {
    let s = string(v, key)?;
    if s.eq_ignore_ascii_case("always") {
        return Ok(SyncInterval::Always);
    }
    parse_duration(&s)
        .map(SyncInterval::Every)
        .map_err(|e| ConfigError::at(&v.pos, format!("error parsing {key}: {e}")))
}
