//! The state every connection and service shares: configuration, identity, the
//! authenticator, the account table ([`Accounts`]), the live-client table ([`Clients`])
//! and the counters.
//!
//! It sits in the middle of the house: it holds the registries (which import nothing
//! from here) and is used by the connection tasks, JetStream, monitoring and the
//! server's lifecycle above it. It never imports any of those.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock, Weak};
use std::time::SystemTime;

use rill_protocol::Info;
use rill_protocol::compat::{NATS_VERSION, info_api_level};

use crate::account::{Accounts, Requesters};
use crate::auth::Authenticator;
use crate::auth::jwt::JwtAuth;
use crate::client::events::{EventSink, NoEvents};
use crate::client::registry::Clients;
use crate::config::Config;
use crate::locks;
use crate::shared::{ClusterReport, JsReport, LeafReport};
use crate::stats::Stats;

pub use crate::shared::{DEFAULT_SYSTEM_ACCOUNT, GLOBAL_ACCOUNT, VERSION};

/// Shared server state. Cheap to reach through an `Arc` from any task.
#[derive(Debug)]
pub struct ServerState {
    config: RwLock<Arc<Config>>,
    auth: RwLock<Arc<Authenticator>>,
    tls: RwLock<Option<Arc<rustls::ServerConfig>>>,
    /// The server's unique id (an nkey-style public key).
    pub server_id: String,
    /// The key pair behind `server_id`: signs auth callout requests.
    pub server_key: nkeys::KeyPair,
    /// The server's curve key pair: encrypts auth callout requests to a service's xkey.
    pub xkey: nkeys::XKey,
    /// The server's name (the id unless configured).
    pub server_name: String,
    /// Every account, `$G` among them.
    pub accounts: Accounts,
    /// Every connected client.
    pub clients: Clients,
    /// Server-wide counters (shared with each client's [`crate::client::ClientLink`]).
    pub stats: Arc<Stats>,
    /// When the server started.
    pub started: SystemTime,
    lame_duck: AtomicBool,
    /// The port actually bound for clients (after `-p -1`).
    pub client_port: AtomicU64,
    monitor_addr: OnceLock<SocketAddr>,
    websocket_addr: OnceLock<SocketAddr>,
    mqtt_addr: OnceLock<SocketAddr>,
    js_report: OnceLock<Arc<dyn JsReport>>,
    /// Operator mode (kept across reloads: it holds the resolved account JWTs).
    jwt: Option<Arc<JwtAuth>>,
    event_sink: OnceLock<Arc<dyn EventSink>>,
    cluster: OnceLock<Arc<dyn ClusterReport>>,
    /// Rung by `$SYS.REQ.SERVER.<id>.RELOAD`; the signal loop reloads as on SIGHUP.
    reload: tokio::sync::Notify,
    leafs: OnceLock<Arc<dyn LeafReport>>,
}

impl ServerState {
    /// Fresh state for `config`.
    pub fn new(config: Arc<Config>) -> Arc<Self> {
        Self::with_jwt(config, None)
    }

    /// Fresh state for `config`, with operator mode when `jwt` is given.
    pub fn with_jwt(config: Arc<Config>, jwt: Option<Arc<JwtAuth>>) -> Arc<Self> {
        let server_key = nkeys::KeyPair::new_server();
        let server_id = server_key.public_key();
        let server_name = config
            .server_name
            .clone()
            .unwrap_or_else(|| server_id.clone());
        let state = Arc::new(Self {
            client_port: AtomicU64::new(u64::from(config.port)),
            auth: RwLock::new(Arc::new(Authenticator::new(&config).with_jwt(jwt.clone()))),
            tls: RwLock::new(None),
            config: RwLock::new(config),
            server_id,
            server_key,
            xkey: nkeys::XKey::new(),
            server_name,
            accounts: Accounts::default(),
            clients: Clients::default(),
            stats: Arc::default(),
            started: SystemTime::now(),
            lame_duck: AtomicBool::new(false),
            monitor_addr: OnceLock::new(),
            websocket_addr: OnceLock::new(),
            mqtt_addr: OnceLock::new(),
            js_report: OnceLock::new(),
            jwt,
            event_sink: OnceLock::new(),
            cluster: OnceLock::new(),
            reload: tokio::sync::Notify::new(),
            leafs: OnceLock::new(),
        });
        let requesters = ClientRequesters(Arc::downgrade(&state));
        state.accounts.set_requesters(Arc::new(requesters));
        state
    }

    /// Operator mode, when configured.
    pub fn jwt(&self) -> Option<&Arc<JwtAuth>> {
        self.jwt.as_ref()
    }

    /// Registers who is told of client connects, disconnects and refusals (the system
    /// account, once, at start).
    pub fn set_event_sink(&self, sink: Arc<dyn EventSink>) {
        let _ = self.event_sink.set(sink);
    }

    /// Who is told of client events: the system account, or no one without one.
    pub fn events(&self) -> &dyn EventSink {
        self.event_sink.get().map_or(&NoEvents, |s| s.as_ref())
    }

    /// Asks for a configuration reload (as SIGHUP).
    pub fn request_reload(&self) {
        self.reload.notify_one();
    }

    /// Waits until a reload is asked for.
    pub async fn reload_requested(&self) {
        self.reload.notified().await;
    }

    /// The system account's name: `system_account` (a public key in operator mode), else
    /// the operator JWT's, else (outside operator mode) `$SYS`, as nats-server;
    /// `None` with `no_system_account` or in operator mode without one.
    pub fn system_account(&self) -> Option<String> {
        let config = self.config();
        if config.no_system_account {
            return None;
        }
        if let Some(name) = &config.system_account {
            return Some(name.clone());
        }
        match self.jwt() {
            Some(jwt) => jwt.system_account().map(str::to_string),
            None => Some(DEFAULT_SYSTEM_ACCOUNT.to_string()),
        }
    }

    /// The configuration in force (replaced on reload).
    pub fn config(&self) -> Arc<Config> {
        Arc::clone(&locks::read(&self.config))
    }

    /// Replaces the configuration (reload) and the authenticator built from it.
    pub fn set_config(&self, config: Arc<Config>) {
        *locks::write(&self.auth) =
            Arc::new(Authenticator::new(&config).with_jwt(self.jwt.clone()));
        *locks::write(&self.config) = config;
    }

    /// The authenticator of the configuration in force. Never a default: a poisoned lock
    /// still holds the configured authenticator (see [`crate::locks`]), and a fallback
    /// that asks for no credentials would admit anyone.
    pub fn authenticator(&self) -> Arc<Authenticator> {
        Arc::clone(&locks::read(&self.auth))
    }

    /// The TLS acceptor for client connections, when TLS is configured.
    pub fn tls_acceptor(&self) -> Option<tokio_rustls::TlsAcceptor> {
        locks::read(&self.tls)
            .clone()
            .map(tokio_rustls::TlsAcceptor::from)
    }

    /// Installs the TLS acceptor (at start and on reload).
    pub fn set_tls_acceptor(&self, acceptor: Option<Arc<rustls::ServerConfig>>) {
        *locks::write(&self.tls) = acceptor;
    }

    /// Records where monitoring listens.
    pub fn set_monitor_addr(&self, addr: SocketAddr) {
        let _ = self.monitor_addr.set(addr);
    }

    /// Where monitoring listens, when it is on.
    pub fn monitor_addr(&self) -> Option<SocketAddr> {
        self.monitor_addr.get().copied()
    }

    /// Records where the WebSocket listener listens.
    pub fn set_websocket_addr(&self, addr: SocketAddr) {
        let _ = self.websocket_addr.set(addr);
    }

    /// Where the WebSocket listener listens, when it is on.
    pub fn websocket_addr(&self) -> Option<SocketAddr> {
        self.websocket_addr.get().copied()
    }

    /// Records where the MQTT listener listens.
    pub fn set_mqtt_addr(&self, addr: SocketAddr) {
        let _ = self.mqtt_addr.set(addr);
    }

    /// Where the MQTT listener listens, when it is on.
    pub fn mqtt_addr(&self) -> Option<SocketAddr> {
        self.mqtt_addr.get().copied()
    }

    /// Registers JetStream's monitoring report (once, when JetStream starts).
    pub fn set_js_report(&self, report: Arc<dyn JsReport>) {
        let _ = self.js_report.set(report);
    }

    /// JetStream's monitoring report, when JetStream runs.
    pub fn js_report(&self) -> Option<&Arc<dyn JsReport>> {
        self.js_report.get()
    }

    /// Registers the cluster's report (once, when the routes start).
    pub fn set_cluster(&self, cluster: Arc<dyn ClusterReport>) {
        let _ = self.cluster.set(cluster);
    }

    /// The cluster's report, when this server is a cluster member.
    pub fn cluster(&self) -> Option<&Arc<dyn ClusterReport>> {
        self.cluster.get()
    }

    /// Registers the leaf nodes' report (once, when they start).
    pub fn set_leafs(&self, leafs: Arc<dyn LeafReport>) {
        let _ = self.leafs.set(leafs);
    }

    /// The leaf nodes' report, when this server has a `leafnodes` block.
    pub fn leafs(&self) -> Option<&Arc<dyn LeafReport>> {
        self.leafs.get()
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
            version: NATS_VERSION.to_string(),
            rill_version: Some(VERSION.to_string()),
            api_lvl: info_api_level()
                .filter(|_| config.jetstream.is_some())
                .map(i64::from),
            proto: 1,
            go: Some(format!("rill {VERSION}")),
            host: config.host.clone(),
            port: u16::try_from(self.client_port.load(Ordering::Relaxed)).unwrap_or_default(),
            headers: true,
            max_payload: i64::try_from(config.max_payload).unwrap_or(i64::MAX),
            jetstream: config.jetstream.is_some(),
            auth_required: self.authenticator().required(),
            tls_required: tls.is_some() && !config.allow_non_tls,
            tls_available: tls.is_some() && config.allow_non_tls,
            tls_verify: tls.is_some_and(|t| t.verify || t.verify_and_map),
            domain: config.jetstream.as_ref().and_then(|j| j.domain.clone()),
            ldm: self.is_lame_duck(),
            cluster: self.cluster().map(|c| c.name()),
            connect_urls: self.cluster().map(|c| c.connect_urls()).unwrap_or_default(),
            ..Info::default()
        }
    }

    /// [`Self::info_template`] for a plain or a WebSocket client: a WebSocket client is
    /// told the WebSocket port, no TLS of the client port, and the cluster's WebSocket
    /// URLs as its `connect_urls` (as nats-server).
    pub fn client_info(&self, websocket: bool) -> Info {
        let mut info = self.info_template();
        if websocket {
            if let Some(addr) = self.websocket_addr() {
                info.port = addr.port();
            }
            info.tls_required = false;
            info.tls_available = false;
            info.tls_verify = false;
            info.connect_urls = self
                .cluster()
                .map(|c| c.ws_connect_urls())
                .unwrap_or_default();
        }
        info
    }
}

/// The client table, telling service imports who sent a request (`Nats-Request-Info`).
#[derive(Debug)]
struct ClientRequesters(Weak<ServerState>);

impl Requesters for ClientRequesters {
    fn request_info(&self, publisher: u64, share: bool) -> Option<String> {
        let state = self.0.upgrade()?;
        let client = state.clients.get(publisher)?;
        Some(client.request_info(&state.server_name, share))
    }
}
