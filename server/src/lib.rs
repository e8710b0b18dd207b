//! rill-server: a NATS-compatible event bus with JetStream-style persistence.
//!
//! [`run`] starts a server from a [`config::Config`] and serves until a signal
//! (or the given shutdown future) stops it. Task ownership:
//!
//! ```text
//! run ──┬── accept_loop ── one task per connection ── its writer task
//!       ├── JetStream (when enabled): API task, one thread per stream
//!       └── signal loop (SIGINT/SIGTERM stop, SIGUSR2 lame duck, SIGHUP reload,
//!                        SIGUSR1 log file re-open)
//! ```

pub mod account;
pub mod auth;
pub mod client;
pub mod config;
mod files;
pub mod jetstream;
pub mod listener;
pub mod logging;
pub mod monitoring;
pub mod router;
pub mod server;
pub mod stats;
pub mod tls;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use crate::client::CloseReason;
use crate::config::Config;
use crate::server::{ServerState, VERSION};

/// A boxed `Send` future, for async methods of object-safe traits.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

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
    /// The HTTP monitoring listener could not be bound.
    #[error("Can't start monitoring: can't listen to the monitor port: {}", listen_error(.addr, .source))]
    Monitor {
        /// The address asked for.
        addr: String,
        /// The bind error.
        source: std::io::Error,
    },
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
}

impl Server {
    /// Binds the listener and starts accepting clients.
    ///
    /// # Errors
    /// [`StartError`] when the listener cannot be bound.
    pub async fn start(config: Config) -> Result<Self, StartError> {
        let config = Arc::new(config);
        let state = ServerState::new(Arc::clone(&config));
        log_banner(&state);
        if let Some(tls) = &config.tls {
            state.set_tls_acceptor(Some(tls::acceptor(tls)?));
        }
        account::wire(&state, &config);
        let (stop_accepting, stop_rx) = watch::channel(false);
        if let Some(http) = &config.http {
            let host = if http.host.is_empty() {
                &config.host
            } else {
                &http.host
            };
            let addr = monitoring::start(Arc::clone(&state), host, http.port, stop_rx.clone())
                .await
                .map_err(|source| StartError::Monitor {
                    addr: format!("{host}:{}", http.port),
                    source,
                })?;
            state.set_monitor_addr(addr);
        }
        let listener = bind_clients(&config.host, config.port)
            .await
            .map_err(|source| StartError::Listen {
                addr: format!("{}:{}", config.host, config.port),
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| StartError::Listen {
            addr: config.host.clone(),
            source,
        })?;
        state
            .client_port
            .store(u64::from(addr.port()), Ordering::Relaxed);
        let jetstream = jetstream::JetStreams::start(&state).await;
        if let Some(js) = &jetstream {
            state.set_js_report(Arc::clone(js) as Arc<dyn monitoring::JsReport>);
        }
        info!("Listening for client connections on {addr}");
        let (done_tx, done_rx) = mpsc::channel(1);
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
        })
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
        for client in self.state.clients() {
            client.outbound.close_with(CloseReason::ServerShutdown);
        }
        let Self {
            mut done_rx,
            done_tx,
            jetstream,
            ..
        } = self;
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
        let clients = self.state.clients();
        let mut info = self.state.info_template();
        info.ldm = true;
        let mut buf = bytes::BytesMut::new();
        rill_protocol::encode::info(&mut buf, &info);
        for client in &clients {
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

/// Binds the client listener with a deep accept backlog: std's default of 128
/// drops SYNs when hundreds of clients connect at once (nats-server, through Go,
/// gets the kernel's `somaxconn`).
async fn bind_clients(host: &str, port: u16) -> std::io::Result<TcpListener> {
    let mut last = None;
    for addr in tokio::net::lookup_host((host, port)).await? {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        match socket.bind(addr) {
            Ok(()) => return socket.listen(4096),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "no address to listen on")
    }))
}

async fn self_wait(rx: &mut mpsc::Receiver<()>) {
    while rx.recv().await.is_some() {}
}

fn log_banner(state: &ServerState) {
    info!("Starting rill-server");
    info!("  Version:  {VERSION}");
    info!("  Name:     {}", state.server_name);
    info!("  ID:       {}", state.server_id);
    if let Some(file) = &state.config().config_file {
        info!("Using configuration file: {}", file.display());
    }
}

/// Re-reads the configuration on SIGHUP: given the config file, returns the new config.
pub trait Reload: Send + 'static {
    /// Builds the configuration again from `path` (and the original flags).
    ///
    /// # Errors
    /// The configuration error, which the server logs and survives.
    fn reload(
        &self,
        path: Option<&Path>,
    ) -> Result<(Config, Vec<config::Warning>), config::ConfigError>;
}

impl<F> Reload for F
where
    F: Fn(Option<&Path>) -> Result<(Config, Vec<config::Warning>), config::ConfigError>
        + Send
        + 'static,
{
    fn reload(
        &self,
        path: Option<&Path>,
    ) -> Result<(Config, Vec<config::Warning>), config::ConfigError> {
        self(path)
    }
}

/// Runs a server until SIGINT/SIGTERM (graceful) or SIGUSR2 (lame duck); SIGHUP reloads,
/// SIGUSR1 re-opens the log file.
///
/// # Errors
/// [`StartError`] when the server cannot start.
pub async fn run(config: Config, reload: impl Reload) -> Result<(), StartError> {
    // Before the listener, as nats-server does: a harness that sees `Server is ready`
    // finds the pid file already there.
    if let Some(path) = &config.pid_file {
        files::write_pid(path)?;
    }
    let server = Server::start(config).await?;
    files::write_ports(&server)?;
    let how = signals(&server, &reload).await;
    let config = server.state().config();
    server.shutdown(how).await;
    files::remove_ports(&config);
    Ok(())
}

/// Applies what can change at run time and logs each change as nats-server does
/// (`Reloaded: debug = true`); settings that need a restart keep their running value
/// and are logged as not reloadable, while the rest still applies.
async fn apply_reload(server: &Server, reload: &impl Reload) {
    let current = server.state().config();
    let Some(file) = current.config_file.as_deref() else {
        tracing::error!(
            "Failed to reload server configuration: can only reload config when a file is provided using -c or --config"
        );
        return;
    };
    let (mut new, warnings) = match reload.reload(Some(file)) {
        Ok(loaded) => loaded,
        Err(e) => {
            tracing::error!("Failed to reload server configuration: {e}");
            return;
        }
    };
    for w in warnings {
        warn!("{w}");
    }
    let diff = config::diff(&current, &new);
    for line in &diff.not_reloadable {
        warn!("{line} (keeping the running value until restart)");
    }
    config::keep_fixed(&current, &mut new);
    let acceptor = match new.tls.as_ref().map(tls::acceptor).transpose() {
        Ok(acceptor) => acceptor,
        Err(e) => {
            tracing::error!("Failed to reload server configuration: {e}");
            return;
        }
    };
    for line in &diff.changed {
        info!("Reloaded: {line}");
    }
    if let Err(e) = logging::apply(&new.logging) {
        tracing::error!("Failed to reload logging: {e}");
        new.logging = current.logging.clone();
    }
    let auth_changed = auth_changed(&current, &new);
    let new = Arc::new(new);
    let state = server.state();
    state.set_tls_acceptor(acceptor);
    state.set_config(Arc::clone(&new));
    if auth_changed {
        account::wire(state, &new);
        // Each connection re-checks its user, account and subscriptions in its own task.
        state.notify_auth_reload();
        if let Some(js) = server.jetstream() {
            js.reload(state, &new).await;
        }
    }
    info!("Reloaded server configuration");
}

/// True when a reload changes who may connect, to which account, or with which
/// permissions (nats-server re-checks clients only then).
fn auth_changed(old: &Config, new: &Config) -> bool {
    let map_certs = |c: &Config| c.tls.as_ref().is_some_and(|t| t.verify_and_map);
    old.authorization != new.authorization
        || old.accounts != new.accounts
        || old.no_auth_user != new.no_auth_user
        || map_certs(old) != map_certs(new)
}

/// SIGUSR1: re-open the log file (log rotation).
fn reopen_log() {
    if let Err(e) = logging::reopen() {
        tracing::error!("Failed to re-open log file: {e}");
    }
}

/// Waits for a stopping signal, reloading on SIGHUP meanwhile.
#[cfg(unix)]
async fn signals(server: &Server, reload: &impl Reload) -> Stop {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term), Ok(mut usr1), Ok(mut usr2), Ok(mut hup)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::user_defined1()),
        signal(SignalKind::user_defined2()),
        signal(SignalKind::hangup()),
    ) else {
        return std::future::pending().await;
    };
    loop {
        tokio::select! {
            _ = int.recv() => { info!("Trapped \"interrupt\" signal"); return Stop::Graceful }
            _ = term.recv() => { info!("Trapped \"terminated\" signal"); return Stop::Graceful }
            _ = usr1.recv() => { info!("Trapped \"user defined signal 1\" signal"); reopen_log() }
            _ = usr2.recv() => { info!("Trapped \"user defined signal 2\" signal"); return Stop::LameDuck }
            _ = hup.recv() => { info!("Trapped \"hangup\" signal"); apply_reload(server, reload).await }
        }
    }
}

/// Waits for Ctrl-C.
#[cfg(not(unix))]
async fn signals(_server: &Server, _reload: &impl Reload) -> Stop {
    let _ = tokio::signal::ctrl_c().await;
    Stop::Graceful
}
