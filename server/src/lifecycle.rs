//! The server's lifecycle: [`Server::start`] binds the listeners and starts the services,
//! [`Server::shutdown`] stops them (at once, or spread over the lame-duck period).
//!
//! Task ownership:
//!
//! ```text
//! Server::start ──┬── listener::accept_loop ── one task per connection ── its writer task
//!                 ├── monitoring::start (when `-m` or `https_port`): HTTP(S) accept loop, one task per request
//!                 ├── route::Cluster (when `cluster {}`): route accept loop, seed dialers,
//!                 │   one task per route ── its writer task
//!                 ├── leaf::LeafNodes (when `leafnodes {}`): leaf accept loop, one dialer
//!                 │   per remote, one task per leaf link ── its writer task
//!                 └── JetStream (when enabled): one API task per account, one thread per stream
//! ```
//!
//! A new listener (routes, leaf nodes, WebSocket, MQTT) is bound in [`Server::start`]
//! next to the client listener, shares the `stop_accepting` signal and hands its
//! connection tasks a clone of `done_tx`, so [`Server::shutdown`] waits for them too.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use crate::client::CloseReason;
use crate::config::{self, Config};
use crate::server::ServerState;
use crate::shared::{JsReport, VERSION};
use crate::{auth, jetstream, listener, monitoring, route, system, tls, websocket};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The pid or ports file could not be written.
    #[error("Could not write {what}: open {path}: {}", config::go_error(.source))]
    File {
        /// Which file.
        what: &'static str,
        /// Where.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The client listener could not be bound.
    #[error("Error listening on port: {addr}, \"{}\"", listen_error(.addr, .source))]
    Listen {
        /// The address asked for.
        addr: String,
        /// The bind error.
        source: std::io::Error,
    },
    /// The TLS certificate, key or CA could not be loaded.
    #[error("{0}")]
    Tls(#[from] tls::TlsError),
    /// The JetStream store directory cannot be created or written.
    #[error("Can't start JetStream: {0}")]
    JetStream(String),
    /// The operator or a preloaded account JWT is invalid.
    #[error("{0}")]
    Operator(String),
    /// The WebSocket listener could not start.
    #[error("{0}")]
    Websocket(#[from] crate::websocket::WsStartError),
    /// The route listener could not be bound.
    #[error("Error listening on router port: {addr}, \"{}\"", listen_error(.addr, .source))]
    Routes {
        /// The address asked for.
        addr: String,
        /// The bind error.
        source: std::io::Error,
    },
    /// The leaf-node listener could not be bound.
    #[error("Error listening on leafnode port: {addr}, \"{}\"", listen_error(.addr, .source))]
    Leafnodes {
        /// The address asked for.
        addr: String,
        /// The bind error.
        source: std::io::Error,
    },
    /// Both `http_port` and `https_port` are set.
    #[error("Can't start monitoring: can't specify both HTTP ({http}) and HTTPs ({https}) ports")]
    MonitorPorts {
        /// The HTTP port.
        http: u16,
        /// The HTTPS port.
        https: u16,
    },
    /// The HTTP monitoring listener could not be bound.
    #[error("Can't start monitoring: can't listen to the monitor port: {}", listen_error(.addr, .source))]
    Monitor {
        /// The address asked for.
        addr: String,
        /// The bind error.
        source: std::io::Error,
    },
}

/// Starts HTTP or HTTPS monitoring when either is configured (not both, as nats-server).
async fn start_monitoring(
    state: &Arc<ServerState>,
    config: &Config,
    stop: watch::Receiver<bool>,
) -> Result<(), StartError> {
    let (listen, https) = match (&config.http, &config.https) {
        (Some(http), Some(https)) => {
            return Err(StartError::MonitorPorts {
                http: http.port,
                https: https.port,
            });
        }
        (Some(http), None) => (http, false),
        (None, Some(https)) => (https, true),
        (None, None) => return Ok(()),
    };
    let host = if listen.host.is_empty() {
        &config.host
    } else {
        &listen.host
    };
    let addr = monitoring::start(Arc::clone(state), host, listen.port, https, stop)
        .await
        .map_err(|source| StartError::Monitor {
            addr: format!("{host}:{}", listen.port),
            source,
        })?;
    state.set_monitor_addr(addr);
    Ok(())
}

/// A listen error worded as nats-server's (Go's) are, which harnesses match on:
/// `listen tcp 127.0.0.1:4222: bind: address already in use`.
fn listen_error(addr: &str, e: &std::io::Error) -> String {
    if e.to_string().starts_with("failed to lookup address") {
        let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
        return format!("listen tcp: lookup {host}: no such host");
    }
    format!("listen tcp {addr}: bind: {}", config::go_error(e))
}

/// What stops a running server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Close clients now (flushing what is queued) and exit.
    Graceful,
    /// Lame-duck mode: stop accepting, announce `ldm`, close clients over time, exit.
    LameDuck,
}

/// A started server.
#[derive(Debug)]
pub struct Server {
    state: Arc<ServerState>,
    stop_accepting: watch::Sender<bool>,
    done_tx: mpsc::Sender<()>,
    done_rx: mpsc::Receiver<()>,
    addr: SocketAddr,
    jetstream: Option<Arc<jetstream::JetStreams>>,
    mqtt: Option<Arc<crate::mqtt::MqttService>>,
    /// The system account task (ends when accepting stops).
    system_task: Option<tokio::task::JoinHandle<()>>,
    cluster: Option<Arc<route::Cluster>>,
    leafs: Option<Arc<crate::leaf::LeafNodes>>,
}

impl Server {
    /// Binds the listener and starts accepting clients.
    ///
    /// # Errors
    /// [`StartError`] when the listener cannot be bound.
    pub async fn start(config: Config) -> Result<Self, StartError> {
        let config = Arc::new(config);
        let jwt = match &config.operator {
            Some(op) => Some(
                auth::jwt::JwtAuth::new(op, config.system_account.as_deref())
                    .map_err(StartError::Operator)?,
            ),
            None => None,
        };
        let state = ServerState::with_jwt(Arc::clone(&config), jwt);
        log_banner(&state);
        if let Some(tls) = &config.tls {
            state.set_tls_acceptor(Some(tls::acceptor(tls)?));
        }
        state.accounts.wire(&config);
        let (stop_accepting, stop_rx) = watch::channel(false);
        start_monitoring(&state, &config, stop_rx.clone()).await?;
        let crate::bind::Bound { listener, addr } = crate::bind::listen(&config.host, config.port)
            .await
            .map_err(|source| StartError::Listen {
                addr: format!("{}:{}", config.host, config.port),
                source,
            })?;
        state
            .client_port
            .store(u64::from(addr.port()), Ordering::Relaxed);
        if config.port == 0 {
            // As nats-server: a port picked at start (-1) is the running config's from now
            // on, so a reload naming another port is reported against it.
            let mut running = (*config).clone();
            running.port = addr.port();
            state.set_config(Arc::new(running));
        }
        if let Some(js) = &config.jetstream {
            let vfs = jetstream::store::StdFs;
            jetstream::store::meta::check_store_dir(&vfs, &js.store_dir)
                .map_err(StartError::JetStream)?;
        }
        let jetstream = jetstream::JetStreams::start(&state).await;
        if let Some(js) = &jetstream {
            state.set_js_report(Arc::clone(js) as Arc<dyn JsReport>);
        }
        let (done_tx, done_rx) = mpsc::channel(1);
        let mqtt = crate::mqtt::MqttService::start(&state, stop_rx.clone(), done_tx.clone())
            .await?
            .map(|(service, addr)| {
                state.set_mqtt_addr(addr);
                service
            });
        if let Some(ws) = &config.websocket {
            let ws_addr = websocket::start(&state, ws, stop_rx.clone(), done_tx.clone()).await?;
            state.set_websocket_addr(ws_addr);
        }
        let route_tls = config
            .cluster
            .as_ref()
            .and_then(|c| c.tls.as_ref())
            .map(route::RouteTls::new)
            .transpose()?;
        let cluster = route::Cluster::start(&state, route_tls, stop_rx.clone(), done_tx.clone())
            .await
            .map_err(|source| {
                let c = config.cluster.as_ref();
                StartError::Routes {
                    addr: c
                        .map(|c| format!("{}:{}", c.host, c.port.unwrap_or_default()))
                        .unwrap_or_default(),
                    source,
                }
            })?;
        let leafs = crate::leaf::LeafNodes::start(&state, stop_rx.clone(), done_tx.clone())
            .await
            .map_err(|source| {
                let l = config.leafnodes.as_ref();
                StartError::Leafnodes {
                    addr: l
                        .map(|l| format!("{}:{}", l.host, l.port.unwrap_or_default()))
                        .unwrap_or_default(),
                    source,
                }
            })?;
        // After the routes are linked: subscriptions made before are not announced to
        // other servers, and every server of a cluster answers the system requests.
        let system_task = system::System::start(&state, stop_rx.clone()).map(|(sys, task)| {
            state.set_event_sink(sys);
            task
        });
        system::expiry::start(&state, stop_rx.clone(), done_tx.clone());
        // After the routes and the system account: the meta group's Raft traffic
        // travels on `$NRG` subjects over the routes.
        if let Some(js) = &jetstream
            && let Some(meta) = jetstream::cluster::MetaGroup::start(&state, stop_rx.clone()).await
        {
            js.set_meta(meta);
        }
        info!("Listening for client connections on {addr}");
        tokio::spawn(listener::accept_loop(
            Arc::clone(&state),
            listener,
            stop_rx,
            done_tx.clone(),
        ));
        info!("Server is ready");
        Ok(Self {
            state,
            stop_accepting,
            done_tx,
            done_rx,
            addr,
            jetstream,
            mqtt,
            system_task,
            cluster,
            leafs,
        })
    }

    /// The leaf-node links, when this server has a `leafnodes` block.
    pub fn leafs(&self) -> Option<&Arc<crate::leaf::LeafNodes>> {
        self.leafs.as_ref()
    }

    /// The cluster membership, when this server has a `cluster` block.
    pub fn cluster(&self) -> Option<&Arc<route::Cluster>> {
        self.cluster.as_ref()
    }

    /// The bound client address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bound monitoring address, when monitoring is on.
    pub fn monitor_addr(&self) -> Option<SocketAddr> {
        self.state.monitor_addr()
    }

    /// The JetStream services (one per account), when JetStream is enabled.
    pub fn jetstream(&self) -> Option<&Arc<jetstream::JetStreams>> {
        self.jetstream.as_ref()
    }

    /// The shared state.
    pub fn state(&self) -> &Arc<ServerState> {
        &self.state
    }

    /// Stops the server and waits for every connection to finish.
    pub async fn shutdown(self, how: Stop) {
        let _ = self.stop_accepting.send(true);
        if how == Stop::LameDuck {
            self.lame_duck().await;
        }
        info!("Initiating Shutdown...");
        if let Some(mqtt) = &self.mqtt {
            mqtt.shutdown();
        }
        if let Some(cluster) = &self.cluster {
            cluster.shutdown();
        }
        if let Some(leafs) = &self.leafs {
            leafs.shutdown();
        }
        if let Some(js) = &self.jetstream {
            js.release_pull_requests().await;
        }
        for client in self.state.clients.all() {
            client.outbound.close_with(CloseReason::ServerShutdown);
        }
        let Self {
            mut done_rx,
            done_tx,
            jetstream,
            system_task,
            ..
        } = self;
        if let Some(task) = system_task {
            let _ = tokio::time::timeout(Duration::from_secs(1), task).await;
        }
        drop(done_tx);
        let wait = self_wait(&mut done_rx);
        if tokio::time::timeout(Duration::from_secs(5), wait)
            .await
            .is_err()
        {
            warn!("Some connections did not close in time");
        }
        if let Some(js) = jetstream {
            js.shutdown().await;
        }
        info!("Server Exiting..");
    }

    /// Lame-duck mode: announce it, wait the grace period, then close clients
    /// spread evenly over the lame-duck duration.
    async fn lame_duck(&self) {
        let config = self.state.config();
        info!("Entering lame duck mode, stop accepting new clients");
        self.state.set_lame_duck();
        if let Some(cluster) = &self.cluster {
            cluster.lame_duck();
        }
        let clients = self.state.clients.all();
        let mut info = self.state.info_template();
        info.ldm = true;
        let mut buf = bytes::BytesMut::new();
        rill_protocol::encode::info(&mut buf, &info);
        // MQTT devices have no INFO: they hear nothing until their connection closes.
        for client in clients.iter().filter(|c| !c.is_mqtt()) {
            client.outbound.push_raw(&buf);
        }
        tokio::time::sleep(config.lame_duck_grace_period).await;
        if clients.is_empty() {
            return;
        }
        let spread = config
            .lame_duck_duration
            .saturating_sub(config.lame_duck_grace_period);
        let step = spread / u32::try_from(clients.len()).unwrap_or(u32::MAX);
        for client in clients {
            client.outbound.close_with(CloseReason::ServerShutdown);
            tokio::time::sleep(step.min(Duration::from_secs(1))).await;
        }
    }
}

async fn self_wait(rx: &mut mpsc::Receiver<()>) {
    while rx.recv().await.is_some() {}
}

fn log_banner(state: &ServerState) {
    info!("Starting rill-server");
    info!("  Version:  {VERSION}");
    info!(
        "  Implements nats-server {} (JetStream API level {})",
        rill_protocol::compat::NATS_VERSION,
        rill_protocol::compat::API_LEVEL
    );
    info!("  Name:     {}", state.server_name);
    info!("  ID:       {}", state.server_id);
    if let Some(file) = &state.config().config_file {
        info!("Using configuration file: {}", file.display());
    }
}
