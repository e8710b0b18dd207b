//! The state every connection and service shares: configuration, identity,
//! accounts and their routers, the live-client registry and the counters.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::SystemTime;

use rill_protocol::Info;

use crate::account::Account;
use crate::auth::Authenticator;
use crate::client::ClientLink;
use crate::config::Config;
use crate::monitoring::JsReport;
use crate::stats::Stats;

/// The name of the default account, as nats-server calls it.
pub const GLOBAL_ACCOUNT: &str = "$G";

/// rill's version, reported where nats-server reports its own.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Shared server state. Cheap to reach through an `Arc` from any task.
#[derive(Debug)]
pub struct ServerState {
    config: RwLock<Arc<Config>>,
    auth: RwLock<Arc<Authenticator>>,
    tls: RwLock<Option<Arc<rustls::ServerConfig>>>,
    /// The server's unique id (an nkey-style public key).
    pub server_id: String,
    /// The server's name (the id unless configured).
    pub server_name: String,
    /// The default account.
    pub global: Arc<Account>,
    accounts: RwLock<HashMap<String, Arc<Account>>>,
    clients: Mutex<HashMap<u64, Arc<ClientLink>>>,
    /// Server-wide counters.
    pub stats: Stats,
    /// When the server started.
    pub started: SystemTime,
    next_cid: AtomicU64,
    lame_duck: AtomicBool,
    /// The port actually bound for clients (after `-p -1`).
    pub client_port: AtomicU64,
    monitor_addr: OnceLock<SocketAddr>,
    js_report: OnceLock<Arc<dyn JsReport>>,
}

impl ServerState {
    /// Fresh state for `config`.
    pub fn new(config: Arc<Config>) -> Arc<Self> {
        let server_id = nkeys::KeyPair::new_server().public_key();
        let server_name = config
            .server_name
            .clone()
            .unwrap_or_else(|| server_id.clone());
        let global = Arc::new(Account::new(GLOBAL_ACCOUNT));
        let accounts = HashMap::from([(GLOBAL_ACCOUNT.to_string(), Arc::clone(&global))]);
        Arc::new(Self {
            client_port: AtomicU64::new(u64::from(config.port)),
            auth: RwLock::new(Arc::new(Authenticator::new(&config))),
            tls: RwLock::new(None),
            config: RwLock::new(config),
            server_id,
            server_name,
            global,
            accounts: RwLock::new(accounts),
            clients: Mutex::new(HashMap::new()),
            stats: Stats::default(),
            started: SystemTime::now(),
            next_cid: AtomicU64::new(1),
            lame_duck: AtomicBool::new(false),
            monitor_addr: OnceLock::new(),
            js_report: OnceLock::new(),
        })
    }

    /// The configuration in force (replaced on reload).
    pub fn config(&self) -> Arc<Config> {
        self.config
            .read()
            .map(|c| Arc::clone(&c))
            .unwrap_or_default()
    }

    /// Replaces the configuration (reload) and the authenticator built from it.
    pub fn set_config(&self, config: Arc<Config>) {
        if let Ok(mut a) = self.auth.write() {
            *a = Arc::new(Authenticator::new(&config));
        }
        if let Ok(mut c) = self.config.write() {
            *c = config;
        }
    }

    /// Tells every connection that users, accounts or permissions were reloaded; each
    /// checks itself against the new rules in its own task.
    pub fn notify_auth_reload(&self) {
        for client in self.clients() {
            client.auth_reloaded();
        }
    }

    /// The authenticator of the configuration in force.
    pub fn authenticator(&self) -> Arc<Authenticator> {
        self.auth.read().map(|a| Arc::clone(&a)).unwrap_or_default()
    }

    /// The TLS acceptor for client connections, when TLS is configured.
    pub fn tls_acceptor(&self) -> Option<tokio_rustls::TlsAcceptor> {
        self.tls
            .read()
            .ok()
            .and_then(|t| t.clone())
            .map(tokio_rustls::TlsAcceptor::from)
    }

    /// Installs the TLS acceptor (at start and on reload).
    pub fn set_tls_acceptor(&self, acceptor: Option<Arc<rustls::ServerConfig>>) {
        if let Ok(mut t) = self.tls.write() {
            *t = acceptor;
        }
    }

    /// The account called `name`, created on first use.
    pub fn account(&self, name: &str) -> Arc<Account> {
        if let Ok(accounts) = self.accounts.read()
            && let Some(acc) = accounts.get(name)
        {
            return Arc::clone(acc);
        }
        let Ok(mut accounts) = self.accounts.write() else {
            return Arc::clone(&self.global);
        };
        Arc::clone(
            accounts
                .entry(name.to_string())
                .or_insert_with(|| Arc::new(Account::new(name))),
        )
    }

    /// Every account.
    pub fn accounts(&self) -> Vec<Arc<Account>> {
        self.accounts
            .read()
            .map(|a| a.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Allocates the next client id.
    pub fn next_cid(&self) -> u64 {
        self.next_cid.fetch_add(1, Ordering::Relaxed)
    }

    /// Registers a live client.
    pub fn register(&self, link: Arc<ClientLink>) {
        if let Ok(mut clients) = self.clients.lock() {
            clients.insert(link.cid, link);
        }
    }

    /// Forgets a closed client.
    pub fn unregister(&self, cid: u64) {
        if let Ok(mut clients) = self.clients.lock() {
            clients.remove(&cid);
        }
    }

    /// Snapshot of the live clients, ordered by cid.
    pub fn clients(&self) -> Vec<Arc<ClientLink>> {
        let mut v: Vec<_> = self
            .clients
            .lock()
            .map(|c| c.values().cloned().collect())
            .unwrap_or_default();
        v.sort_by_key(|c| c.cid);
        v
    }

    /// Number of live clients.
    pub fn num_clients(&self) -> usize {
        self.clients.lock().map(|c| c.len()).unwrap_or_default()
    }

    /// Records where monitoring listens.
    pub fn set_monitor_addr(&self, addr: SocketAddr) {
        let _ = self.monitor_addr.set(addr);
    }

    /// Where monitoring listens, when it is on.
    pub fn monitor_addr(&self) -> Option<SocketAddr> {
        self.monitor_addr.get().copied()
    }

    /// Registers JetStream's monitoring report (once, when JetStream starts).
    pub fn set_js_report(&self, report: Arc<dyn JsReport>) {
        let _ = self.js_report.set(report);
    }

    /// JetStream's monitoring report, when JetStream runs.
    pub fn js_report(&self) -> Option<&Arc<dyn JsReport>> {
        self.js_report.get()
    }

    /// Enters lame-duck mode.
    pub fn set_lame_duck(&self) {
        self.lame_duck.store(true, Ordering::Release);
    }

    /// True in lame-duck mode.
    pub fn is_lame_duck(&self) -> bool {
        self.lame_duck.load(Ordering::Acquire)
    }

    /// The INFO sent to a new client, before the per-client fields are filled in.
    pub fn info_template(&self) -> Info {
        let config = self.config();
        let tls = config.tls.as_ref();
        Info {
            server_id: self.server_id.clone(),
            server_name: self.server_name.clone(),
            version: VERSION.to_string(),
            proto: 1,
            go: Some(format!("rill {VERSION}")),
            host: config.host.clone(),
            port: u16::try_from(self.client_port.load(Ordering::Relaxed)).unwrap_or_default(),
            headers: true,
            max_payload: i64::try_from(config.max_payload).unwrap_or(i64::MAX),
            jetstream: config.jetstream.is_some(),
            auth_required: self.authenticator().required(),
            tls_required: tls.is_some(),
            tls_verify: tls.is_some_and(|t| t.verify || t.verify_and_map),
            domain: config.jetstream.as_ref().and_then(|j| j.domain.clone()),
            ldm: self.is_lame_duck(),
            ..Info::default()
        }
    }
}
