//! Gives the parsed config tree its meaning: `ConfMap` → [`Draft`] → `Config`.
//!
//! Keys follow nats-server (case-insensitive, with its aliases). A key nats-server knows
//! for a feature rill does not have yet becomes a [`Warning`]; a key nats-server does not
//! know at all is an error, as in nats-server 2.15 (`unknown field "x"`), unless it was
//! only used as a `$variable`. Authentication that rill cannot enforce (a resolver over TLS,
//! pinned accounts) is an error: rill never falls back to no authentication.
//!
//! The command line is applied to the [`Draft`] between reading the file and
//! [`Draft::finish`], which resolves defaults that depend on other settings and
//! validates the result.

mod accounts;
mod auth;
pub(crate) mod cluster;
mod leaf;
mod link;
mod mappings;
mod mqtt;
mod operator;
mod server;
mod tls;
pub(crate) mod validate;
mod value;
mod websocket;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::conf::{ConfMap, ConfValue, Pos, parse_file};
use super::error::{ConfigError, Warning};
use super::{Config, JetStreamConfig};

/// A configuration being assembled: the file's settings, then the flags on top.
#[derive(Debug, Clone, Default)]
pub struct Draft {
    /// The settings known so far.
    pub config: Config,
    /// What was accepted but ignored.
    pub warnings: Vec<Warning>,
    /// Client port as written (`-1` random, `0` default); resolved by `finish`.
    pub port: Option<i64>,
    /// HTTP monitoring `(host, port)`; the host defaults to the client host.
    pub http: Option<(Option<String>, i64)>,
    /// HTTPS monitoring `(host, port)`.
    pub https: Option<(Option<String>, i64)>,
    /// JetStream switched on (`jetstream: true`, a `jetstream {}` block, or `-js`).
    pub jetstream: Option<bool>,
    /// `store_dir` given at the top level, in the block or by `-sd`.
    pub store_dir: Option<PathBuf>,
    /// `resolver`, attached to the operator settings by `finish`.
    pub resolver: Option<super::ResolverConfig>,
    /// `resolver_preload`, attached to the operator settings by `finish`.
    pub preload: BTreeMap<String, String>,
    /// Where settings checked by `finish` were written in the file, so its errors can
    /// point there; a flag that overrides a setting removes its entry.
    pub origins: BTreeMap<&'static str, Pos>,
}

impl Draft {
    /// Reads a config file into a draft.
    ///
    /// # Errors
    /// Syntax errors, wrong types, unknown keys and unsupported authentication modes.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let map = parse_file(path)?;
        let mut draft = Self::from_map(&map)?;
        draft.config.config_file = Some(path.to_path_buf());
        Ok(draft)
    }

    /// Reads a parsed config tree into a draft.
    ///
    /// # Errors
    /// As [`Draft::from_file`].
    pub fn from_map(map: &ConfMap) -> Result<Self, ConfigError> {
        let mut draft = Self::default();
        for e in map.entries() {
            draft.top_level(&e.key, &e.key_pos, &e.value, e.used_as_variable)?;
        }
        Ok(draft)
    }

    fn top_level(
        &mut self,
        key: &str,
        key_pos: &Pos,
        v: &ConfValue,
        variable: bool,
    ) -> Result<(), ConfigError> {
        let lower = key.to_ascii_lowercase();
        for setting in origin_settings(&lower) {
            // nats-server reports a bad setting at its key.
            self.origins.insert(setting, key_pos.clone());
        }
        if self.server_key(&lower, v)?
            || self.auth_key(&lower, v)?
            || self.operator_key(&lower, v)?
        {
            return Ok(());
        }
        match lower.as_str() {
            "tls" => self.config.tls = Some(tls::parse(v)?),
            "allow_non_tls" => self.config.allow_non_tls = value::boolean(v, key)?,
            "accounts" => self.config.accounts = accounts::parse(v, &mut self.warnings)?,
            "mappings" | "maps" => self.config.mappings = mappings::parse(v, key)?,
            "jetstream" => self.jetstream_key(v)?,
            "mqtt" => self.config.mqtt = Some(mqtt::parse(v, &mut self.warnings)?),
            "websocket" | "ws" => self.config.websocket = websocket::parse(v)?,
            "cluster" => self.cluster_key(v)?,
            "leafnodes" | "leaf" => {
                self.config.leafnodes = Some(leaf::parse(v, &mut self.warnings)?)
            }
            "store_dir" | "storedir" => self.store_dir = Some(value::path(v, key)?),
            k if REFUSED.contains(&k) => return Err(refused(key, key_pos)),
            k if UNSUPPORTED.contains(&k) => self.warnings.push(Warning::at(
                key_pos,
                format!("config key \"{key}\" is not supported by rill yet and is ignored"),
            )),
            _ if variable => {}
            _ => return Err(value::unknown_at(key_pos, key)),
        }
        Ok(())
    }

    fn jetstream_key(&mut self, v: &ConfValue) -> Result<(), ConfigError> {
        let (enabled, js, store_dir) = server::jetstream(v, &mut self.warnings)?;
        self.jetstream = Some(enabled);
        if let Some(js) = js {
            self.config.jetstream = Some(js);
        }
        if store_dir.is_some() {
            self.store_dir = store_dir;
        }
        Ok(())
    }

    /// Resolves defaults that depend on other settings and validates everything.
    ///
    /// # Errors
    /// Invalid ports or host, missing TLS files, a store directory that is a file, and
    /// inconsistent settings.
    pub fn finish(mut self) -> Result<(Config, Vec<Warning>), ConfigError> {
        self.resolve_jetstream();
        self.finish_operator()?;
        validate::finish(self)
    }

    fn resolve_jetstream(&mut self) {
        if self.jetstream == Some(true) {
            let js = self
                .config
                .jetstream
                .get_or_insert_with(JetStreamConfig::default);
            if let Some(dir) = self.store_dir.take() {
                js.store_dir = dir;
            }
        } else {
            self.config.jetstream = None;
        }
    }
}

/// The settings `finish` validates that a top-level key sets.
fn origin_settings(lower: &str) -> &'static [&'static str] {
    match lower {
        "listen" => &["host", "port"],
        "host" | "net" => &["host"],
        "port" => &["port"],
        "server_name" => &["server_name"],
        "http" | "http_port" | "monitor_port" => &["http"],
        "https" | "https_port" => &["https"],
        "tls" => &["tls"],
        "jetstream" | "store_dir" | "storedir" => &["store_dir"],
        "websocket" | "ws" => &["websocket"],
        "max_payload" | "max_pending" => &["max_payload"],
        "no_auth_user" => &["no_auth_user"],
        "mqtt" => &["mqtt"],
        "lame_duck_duration" | "lame_duck_grace_period" => &["lame_duck"],
        _ => &[],
    }
}

/// nats-server's TLS handshake timeout, used when flags switch TLS on.
pub(crate) fn tls_default_timeout() -> std::time::Duration {
    tls::DEFAULT_TLS_TIMEOUT
}

/// Top-level keys that configure authentication rill cannot enforce: refusing to start is
/// the only safe answer.
const REFUSED: &[&str] = &[
    "resolver_tls",
    "resolver_pinned_accounts",
    "default_sentinel",
];

/// Top-level keys nats-server knows for features rill does not have yet: warned about
/// and ignored.
const UNSUPPORTED: &[&str] = &[
    "gateway",
    "server_metadata",
    "syslog",
    "remote_syslog",
    "prof_port",
    "prof_block_rate",
    "ocsp",
    "ocsp_cache",
    "proxies",
    "proxy_protocol",
    "http_base_path",
    "logtime_utc",
    "logfile_size_limit",
    "log_size_limit",
    "logfile_max_num",
    "log_max_num",
    "max_traced_msg_len",
    "disable_sublist_cache",
    "no_sublist_cache",
    "max_sub_tokens",
    "max_subscription_tokens",
    "no_header_support",
    "connect_error_reports",
    "reconnect_error_reports",
    "feature_flags",
    "default_js_domain",
    "no_fast_producer_stall",
    "max_closed_clients",
    "write_timeout",
    "mode",
    "urls",
    "url",
];

fn refused(key: &str, pos: &Pos) -> ConfigError {
    ConfigError::at(
        pos,
        format!(
            "\"{key}\" configures authentication rill does not support yet; \
             refusing to start rather than run without it"
        ),
    )
}

#[cfg(test)]
mod tests;
