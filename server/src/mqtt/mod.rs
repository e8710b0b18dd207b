//! MQTT 3.1.1 and MQTT 5 devices on the same subjects and streams as NATS clients.
//!
//! An MQTT connection is a client connection of another kind: it has a [`ClientLink`]
//! in the server's registry (so `/connz` lists it with `"type": "mqtt"` and its
//! `mqtt_client` id, `/metrics` counts it, shutdown and reload reach it), it
//! authenticates against the same users, accounts and permissions, and its
//! subscriptions are ordinary router subscriptions on the converted subjects (see
//! [`topic`] for nats-server's conversion rules). So an MQTT publish reaches NATS
//! subscribers and streams, and a NATS publish reaches MQTT subscribers.
//!
//! ```text
//! listener ── one task per connection (conn) ── read loop: decode (packet), dispatch
//!                  │                              └ writer task: the link's outbound queue
//!                  ├── MqttSub (router subscriber) ─── PUBLISH via the Outlet
//!                  └── session / QoS 1 state through the account's JetStream API
//! ```
//!
//! # Codec
//! Packets are read and written by `rumqttc`'s `mqttbytes` modules (the rumqtt
//! project, whose broker rumqttd uses the same packet code; maintained, releases in
//! 2025), with default features off: it brings no TLS stack, no openssl or aws-lc, and
//! no second runtime (it is tokio-based, and rill only uses its sans-IO packet types).
//! It reads and writes every packet of both 3.1.1 and 5, properties included, on
//! `bytes::Bytes` without copying payloads. The alternatives looked at: `mqttbytes`
//! (the same code, unmaintained since 2021), `mqtt-protocol` and `mqttrs` (3.1.1
//! only), `mqtt-format` (both versions but no release in years), `mqtt-protocol-core`
//! (both versions, but some 50 crates of proc-macro dependencies), `rmqtt-codec`
//! (needs a newer compiler and the ntex crates), `ntex-mqtt` (another runtime).

mod conn;
mod connect;
mod deliver;
mod jsa;
mod listener;
mod outlet;
mod packet;
mod props;
mod publish;
mod relay;
mod session;
mod store;
mod subscribe;
pub mod topic;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::account::Account;
use crate::auth::Authenticator;
use crate::config::{Config, MqttConfig};
use crate::locks;
use crate::server::ServerState;
use jsa::JsaError;
use outlet::Outlet;
use store::MqttStore;

/// The MQTT side of a server: its listener's TLS, and the live connections by client id.
#[derive(Debug)]
pub struct MqttService {
    state: Arc<ServerState>,
    tls: Option<(Arc<rustls::ServerConfig>, Duration)>,
    /// Live connections by (account, client id): a new connection with the same id
    /// takes the session over and the old one is closed (MQTT 3.1.4).
    live: Mutex<HashMap<(String, String), Arc<Outlet>>>,
    /// Each account's MQTT state, made on the account's first CONNECT. An async mutex:
    /// making it waits for JetStream, and connections of the account wait for that.
    stores: tokio::sync::Mutex<HashMap<String, Arc<MqttStore>>>,
}

impl MqttService {
    /// Starts the MQTT listener when `mqtt {}` is configured.
    ///
    /// # Errors
    /// [`crate::StartError`] when the TLS files cannot be loaded or the port bound.
    pub async fn start(
        state: &Arc<ServerState>,
        stop: watch::Receiver<bool>,
        done: mpsc::Sender<()>,
    ) -> Result<Option<(Arc<MqttService>, SocketAddr)>, crate::StartError> {
        let config = state.config();
        let Some(mqtt) = &config.mqtt else {
            return Ok(None);
        };
        let tls = match &mqtt.tls {
            Some(t) => Some((crate::tls::acceptor(t)?, t.timeout)),
            None => None,
        };
        let service = Arc::new(MqttService {
            state: Arc::clone(state),
            tls,
            live: Mutex::new(HashMap::new()),
            stores: tokio::sync::Mutex::new(HashMap::new()),
        });
        let addr = listener::start(Arc::clone(&service), mqtt, stop, done)
            .await
            .map_err(|source| crate::StartError::Listen {
                addr: format!("{}:{}", mqtt.host, mqtt.port),
                source,
            })?;
        Ok(Some((service, addr)))
    }

    fn tls_acceptor(&self) -> Option<(tokio_rustls::TlsAcceptor, Duration)> {
        let (config, timeout) = self.tls.as_ref()?;
        Some((
            tokio_rustls::TlsAcceptor::from(Arc::clone(config)),
            *timeout,
        ))
    }

    /// The MQTT settings in force.
    fn config(&self) -> MqttConfig {
        self.state.config().mqtt.clone().unwrap_or_default()
    }

    /// The authenticator MQTT clients meet: the server's, unless `mqtt {}` has its own
    /// credentials or `no_auth_user`, or its `tls {}` maps client certificates to users
    /// (`verify_and_map`) differently from the client port's.
    fn authenticator(&self) -> Arc<Authenticator> {
        let config = self.state.config();
        let Some(mqtt) = &config.mqtt else {
            return self.state.authenticator();
        };
        if mqtt.authorization.is_configured() {
            let own = Config {
                authorization: mqtt.authorization.clone(),
                ..Config::default()
            };
            return Arc::new(Authenticator::new(&own));
        }
        let maps =
            |tls: &Option<crate::config::TlsConfig>| tls.as_ref().is_some_and(|t| t.verify_and_map);
        if mqtt.no_auth_user.is_none() && maps(&mqtt.tls) == maps(&config.tls) {
            return self.state.authenticator();
        }
        let mut own = (*config).clone();
        if let Some(user) = &mqtt.no_auth_user {
            own.no_auth_user = Some(user.clone());
        }
        own.tls.clone_from(&mqtt.tls);
        let jwt = self.state.jwt().cloned();
        Arc::new(Authenticator::new(&own).with_jwt(jwt))
    }

    /// The MQTT state of `account`, made (streams ensured, retained messages loaded) on
    /// first use.
    ///
    /// # Errors
    /// [`JsaError`] when the account's JetStream cannot hold it.
    async fn store(&self, account: &Arc<Account>) -> Result<Arc<MqttStore>, JsaError> {
        let mut stores = self.stores.lock().await;
        if let Some(s) = stores.get(&account.name) {
            return Ok(Arc::clone(s));
        }
        let store = Arc::new(MqttStore::open(Arc::clone(account), self.config()).await?);
        stores.insert(account.name.clone(), Arc::clone(&store));
        Ok(store)
    }

    /// Registers `outlet` as the live connection of `client_id`; returns the one it
    /// takes over.
    fn claim(&self, account: &str, client_id: &str, outlet: &Arc<Outlet>) -> Option<Arc<Outlet>> {
        let mut live = locks::lock(&self.live);
        live.insert(
            (account.to_string(), client_id.to_string()),
            Arc::clone(outlet),
        )
    }

    /// Forgets the connection `cid` of `client_id` (unless another took it over).
    fn release(&self, account: &str, client_id: &str, cid: u64) {
        let mut live = locks::lock(&self.live);
        let key = (account.to_string(), client_id.to_string());
        if live.get(&key).is_some_and(|o| o.link.cid == cid) {
            live.remove(&key);
        }
    }

    /// Tells every MQTT 5 client the server is going away (DISCONNECT 0x8B), before the
    /// server closes all connections.
    pub fn shutdown(&self) {
        let live: Vec<Arc<Outlet>> = self
            .live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        for outlet in live {
            outlet.disconnect(packet::v5::DisconnectReasonCode::ServerShuttingDown);
        }
    }
}
