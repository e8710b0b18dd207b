//! Which accounts get JetStream, and the set of per-account services.
//!
//! As nats-server 2.15.1 decides it when JetStream is enabled for the server:
//! - no `accounts {}` configured: the global account `$G` has JetStream;
//! - accounts configured: each account with `jetstream: enabled` (or a `jetstream {}` map
//!   of limits) has its own JetStream — its own streams and consumers, invisible to other
//!   accounts, stored under `<store_dir>/jetstream/<account>/streams/…` — and no other
//!   account has it, not even `$G`. Those answer every API request with
//!   `503 / 10039 "JetStream not enabled for account"` (see `api::disabled`).
//!
//! [`JetStreams`] owns one [`JetStream`] per account (enabled or not) and is what
//! monitoring reads: totals over the enabled accounts and one `account_details` entry
//! each. Accounts added by a later reload get no JetStream until restart (JetStream's
//! settings are not reloadable).

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Value, json};
use tracing::{debug, info};

use super::JetStream;
use super::report::MetricRows;
use crate::monitoring::{BoxFuture, JsReport};
use crate::server::ServerState;

/// The JetStream services of a server, one per account.
#[derive(Debug)]
pub struct JetStreams {
    /// Every account's service, enabled ones first, each group by account name.
    all: Vec<Arc<JetStream>>,
}

impl JetStreams {
    /// Starts JetStream for the accounts that have it and the "not enabled" API for the
    /// others. `None` when the server runs without JetStream.
    pub async fn start(state: &Arc<ServerState>) -> Option<Arc<JetStreams>> {
        let config = state.config();
        let js_config = config.jetstream.clone()?;
        info!("Starting JetStream");
        info!("    Store Directory: \"{}\"", js_config.store_dir.display());
        let mut all = Vec::new();
        let mut disabled = Vec::new();
        if config.accounts.is_empty() {
            let global = Arc::clone(&state.global);
            all.push(JetStream::start_account(state, js_config, global, None).await);
            return Some(Arc::new(JetStreams { all }));
        }
        let mut accounts: Vec<_> = config.accounts.iter().collect();
        accounts.sort_by(|a, b| a.name.cmp(&b.name));
        for acc in accounts {
            let account = state.account(&acc.name);
            if acc.jetstream {
                debug!("Enabled JetStream for account \"{}\"", acc.name);
                let limits = acc.jetstream_limits.clone();
                let js = JetStream::start_account(state, js_config.clone(), account, limits);
                all.push(js.await);
            } else {
                disabled.push(account);
            }
        }
        disabled.push(Arc::clone(&state.global));
        for account in disabled {
            all.push(JetStream::start_disabled(state, js_config.clone(), account));
        }
        Some(Arc::new(JetStreams { all }))
    }

    /// The service of account `name`, if that account has JetStream.
    pub fn account(&self, name: &str) -> Option<&Arc<JetStream>> {
        self.enabled().find(|js| js.account_name() == name)
    }

    /// The services of the accounts that have JetStream.
    pub fn enabled(&self) -> impl Iterator<Item = &Arc<JetStream>> {
        self.all.iter().filter(|js| js.is_enabled())
    }

    /// Stops every account's API, then flushes and closes every stream.
    pub async fn shutdown(&self) {
        for js in &self.all {
            js.shutdown().await;
        }
        info!("JetStream stopped");
    }

    async fn jsz_doc(&self, q: &HashMap<String, String>) -> Value {
        let mut docs = Vec::new();
        for js in self.enabled() {
            docs.push(js.jsz_doc(q).await);
        }
        if let [only] = docs.as_slice()
            && self.all.len() == 1
        {
            // The `$G`-only server: the document as it always was.
            return only.clone();
        }
        merge(docs)
    }

    async fn metrics_text(&self) -> String {
        let mut rows = MetricRows::default();
        let mut accounts = 0;
        for js in self.enabled() {
            rows.extend(js.metric_rows().await);
            accounts += 1;
        }
        rows.text(accounts > 1 || self.all.len() > 1)
    }
}

/// Sums the per-account documents and lists each account's details.
fn merge(docs: Vec<Value>) -> Value {
    let sum = |key: &str| -> u64 { docs.iter().filter_map(|d| d[key].as_u64()).sum() };
    let api_sum = |key: &str| -> u64 { docs.iter().filter_map(|d| d["api"][key].as_u64()).sum() };
    let mut doc = json!({
        "memory": sum("memory"),
        "storage": sum("storage"),
        "reserved_memory": 0,
        "reserved_storage": 0,
        "accounts": docs.len(),
        "ha_assets": 0,
        "api": { "level": docs.first().map_or(json!(0), |d| d["api"]["level"].clone()),
                 "total": api_sum("total"), "errors": api_sum("errors") },
        "streams": sum("streams"),
        "consumers": sum("consumers"),
        "messages": sum("messages"),
        "bytes": sum("bytes"),
        "total": docs.len(),
    });
    let details: Vec<Value> = docs
        .iter()
        .filter_map(|d| d["account_details"].as_array())
        .flatten()
        .cloned()
        .collect();
    if docs.iter().any(|d| d.get("account_details").is_some()) {
        doc["account_details"] = Value::Array(details);
    }
    doc
}

impl JsReport for JetStreams {
    fn jsz<'a>(&'a self, query: &'a HashMap<String, String>) -> BoxFuture<'a, Value> {
        Box::pin(self.jsz_doc(query))
    }

    fn metrics(&self) -> BoxFuture<'_, String> {
        Box::pin(self.metrics_text())
    }
}
