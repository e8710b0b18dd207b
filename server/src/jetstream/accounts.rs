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
//! each. On reload, accounts gain or lose JetStream as nats-server 2.15.1 does; the
//! server-wide JetStream settings need a restart, an account's limits do not.
//!
//! In operator mode the account JWTs decide instead (their `jetstream` limits, or the
//! `R1` tier): the plan is made again when a claim update arrives
//! ([`JsReport::accounts_changed`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use serde_json::{Value, json};
use tracing::{debug, info};

use super::report::MetricRows;
use super::{JetStream, ServerShare};
use crate::auth::jwt::JwtAuth;
use crate::config::{AccountJetStreamLimits, Config, JetStreamConfig};
use crate::server::ServerState;
use crate::shared::{BoxFuture, BrowsePage, BrowseRequest, GLOBAL_ACCOUNT, JsReport};

/// What one account is to have: JetStream with these limits, or the "not enabled" API.
type Want = Option<Option<AccountJetStreamLimits>>;

/// Which accounts have JetStream under `config`, by account name (see the module doc).
/// In operator mode, the account JWTs decide (`$G` has none).
fn plan(config: &Config, jwt: Option<&JwtAuth>) -> Vec<(String, Want)> {
    if let Some(jwt) = jwt {
        let mut plan = vec![(GLOBAL_ACCOUNT.to_string(), None)];
        plan.extend(
            jwt.jetstream_accounts()
                .into_iter()
                .map(|(k, l)| (k, l.map(Some))),
        );
        return plan;
    }
    if config.accounts.is_empty() {
        return vec![(GLOBAL_ACCOUNT.to_string(), Some(None))];
    }
    let mut plan: Vec<(String, Want)> = config
        .accounts
        .iter()
        .map(|a| {
            let want = a.jetstream.then(|| a.jetstream_limits.clone());
            (a.name.clone(), want)
        })
        .collect();
    if !plan.iter().any(|(name, _)| name == GLOBAL_ACCOUNT) {
        plan.push((GLOBAL_ACCOUNT.to_string(), None));
    }
    plan.sort_by(|a, b| a.0.cmp(&b.0));
    plan
}

/// The JetStream services of a server, one per account.
#[derive(Debug)]
pub struct JetStreams {
    /// The server's JetStream settings (fixed until restart).
    config: JetStreamConfig,
    /// The server-wide byte budgets every account counts against.
    share: Arc<ServerShare>,
    /// Every account's service, by account name. Replaced whole on reload; the lock is
    /// held only to read or swap the list, never across an `.await`.
    all: Mutex<Vec<Arc<JetStream>>>,
    /// The server (weak: the state holds this as its [`JsReport`]), to re-plan when
    /// account JWTs change.
    state: Weak<ServerState>,
}

impl JetStreams {
    /// Records this server's member of the meta group (shown in `/jsz`) and starts
    /// carrying out its stream assignments here (`cluster::replica`) and answering
    /// the API requests other servers forward to its stream leaders (`api::forward`).
    pub fn set_meta(self: &Arc<Self>, meta: Arc<super::cluster::MetaGroup>) {
        self.share.set_meta(Arc::clone(&meta));
        let weak = Arc::downgrade(self);
        meta.serve_api(Arc::new(move |req| {
            let js = weak.upgrade().and_then(|all| all.account(&req.account));
            Box::pin(async move { super::api::forward::answer(js?, req).await })
        }));
        super::cluster::replica::reconcile(Arc::clone(&meta), Arc::downgrade(self));
        super::cluster::consumer::reconcile(meta, Arc::downgrade(self));
    }

    /// Starts JetStream for the accounts that have it and the "not enabled" API for the
    /// others. `None` when the server runs without JetStream.
    pub async fn start(state: &Arc<ServerState>) -> Option<Arc<JetStreams>> {
        let config = state.config();
        let js_config = config.jetstream.clone()?;
        info!("Starting JetStream");
        info!("    Store Directory: \"{}\"", js_config.store_dir.display());
        let me = JetStreams {
            share: ServerShare::new(
                &js_config,
                config.cluster.is_some() && config.server_name.is_some(),
            ),
            config: js_config,
            all: Mutex::new(Vec::new()),
            state: Arc::downgrade(state),
        };
        let mut all = Vec::new();
        for (name, want) in plan(&config, state.jwt().map(AsRef::as_ref)) {
            all.push(me.start_one(state, &name, want).await);
        }
        me.set(all);
        Some(Arc::new(me))
    }

    async fn start_one(&self, state: &ServerState, name: &str, want: Want) -> Arc<JetStream> {
        let account = state.accounts.get(name);
        let setup = (self.config.clone(), &self.share);
        match want {
            Some(limits) => {
                debug!("Enabled JetStream for account \"{name}\"");
                JetStream::start_account(state, setup, account, limits).await
            }
            None => JetStream::start_disabled(state, setup, account),
        }
    }

    /// Applies a reloaded configuration, as nats-server does: an account that gains
    /// JetStream starts it (restoring what its directory holds), one that loses it stops
    /// it (its files stay), new accounts get their API, and an account that keeps it
    /// gets its new limits.
    pub async fn reload(&self, state: &ServerState, config: &Config) {
        let current = self.all();
        let plan = plan(config, state.jwt().map(AsRef::as_ref));
        for js in &current {
            if !plan.iter().any(|(name, _)| name == js.account_name()) {
                stop(js).await;
            }
        }
        let mut next = Vec::new();
        for (name, want) in plan {
            let running = current.iter().find(|js| js.account_name() == name);
            if let Some(js) = running {
                if js.is_enabled() == want.is_some() {
                    if let Some(limits) = want {
                        js.set_limits(limits);
                    }
                    next.push(Arc::clone(js));
                    continue;
                }
                // Stopped first, so the old and the new never both answer the API.
                stop(js).await;
            }
            next.push(self.start_one(state, &name, want).await);
        }
        self.set(next);
    }

    fn set(&self, all: Vec<Arc<JetStream>>) {
        self.share.set_services(&all);
        *self.all.lock().unwrap_or_else(PoisonError::into_inner) = all;
    }

    fn all(&self) -> Vec<Arc<JetStream>> {
        self.all
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The service of account `name`, if that account has JetStream.
    pub fn account(&self, name: &str) -> Option<Arc<JetStream>> {
        self.enabled()
            .into_iter()
            .find(|js| js.account_name() == name)
    }

    /// The services of the accounts that have JetStream, by account name.
    pub fn enabled(&self) -> Vec<Arc<JetStream>> {
        let mut all = self.all();
        all.retain(|js| js.is_enabled());
        all
    }

    /// Every account's waiting pull requests get `409 Server Shutdown`.
    pub async fn release_pull_requests(&self) {
        for js in self.all() {
            js.release_pull_requests().await;
        }
    }

    /// Stops every account's API, then flushes and closes every stream.
    pub async fn shutdown(&self) {
        for js in self.all() {
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
            && self.all().len() == 1
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
        rows.text(accounts > 1 || self.all().len() > 1)
    }
}

async fn stop(js: &JetStream) {
    if js.is_enabled() {
        info!("Disabled JetStream for account \"{}\"", js.account_name());
    }
    js.shutdown().await;
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
        Box::pin(async move {
            let mut doc = self.jsz_doc(query).await;
            if let Some(meta) = self.share.meta() {
                super::cluster::report::jsz(meta, &mut doc).await;
            }
            doc
        })
    }

    fn metrics(&self) -> BoxFuture<'_, String> {
        Box::pin(self.metrics_text())
    }

    fn health(&self) -> BoxFuture<'_, Result<(), String>> {
        use super::cluster::health;
        Box::pin(async move {
            match self.share.meta() {
                Some(meta) => health::check(meta).await,
                // A clustered server between its JetStream's start and its meta group's.
                None if self
                    .state
                    .upgrade()
                    .is_some_and(|s| health::clustered(&s.config())) =>
                {
                    Err(health::RECOVERING.into())
                }
                None => Ok(()),
            }
        })
    }

    fn browse(&self, req: BrowseRequest) -> BoxFuture<'_, Result<BrowsePage, String>> {
        Box::pin(async move {
            let mut enabled = self.enabled();
            let js = if req.account.is_empty() && enabled.len() == 1 {
                enabled.pop()
            } else {
                self.account(&req.account)
            };
            let js = js.ok_or_else(|| format!("no JetStream for account {:?}", req.account))?;
            js.browse(req).await
        })
    }

    fn accounts_changed(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if let Some(state) = self.state.upgrade() {
                self.reload(&state, &state.config()).await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AccountConfig;

    fn account(name: &str, jetstream: bool) -> AccountConfig {
        AccountConfig {
            name: name.into(),
            users: Vec::new(),
            exports: Vec::new(),
            imports: Vec::new(),
            jetstream,
            ..AccountConfig::default()
        }
    }

    #[test]
    fn global_account_has_jetstream_only_without_accounts() {
        let mut config = Config::default();
        assert_eq!(
            plan(&config, None),
            vec![(GLOBAL_ACCOUNT.to_string(), Some(None))]
        );
        config.accounts = vec![account("B", false), account("A", true)];
        let plan = plan(&config, None);
        let names: Vec<_> = plan
            .iter()
            .map(|(n, w)| (n.as_str(), w.is_some()))
            .collect();
        assert_eq!(names, [("$G", false), ("A", true), ("B", false)]);
    }
}
