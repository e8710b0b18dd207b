//! The WebSocket listener (`websocket {}`): browsers and other WebSocket clients speak
//! the NATS protocol in binary messages, and become ordinary client connections — the
//! same accounts, permissions, limits, monitoring and close handling as TCP clients.
//!
//! Per connection, in one task: TLS (`wss://`, when configured), the HTTP upgrade
//! checked as nats-server checks it ([`handshake`]), then [`crate::client::serve_peer`]
//! over the byte streams of [`stream`]. The handshake (TLS included) must finish within
//! `handshake_timeout`. The client's INFO reports the WebSocket port, and `/connz`
//! marks the connection `"type": "websocket"`.
//!
//! # Why yawc
//! RFC 6455 framing comes from a crate, and permessage-deflate (RFC 7692) is required
//! (nats-server offers it with `compression: true`, and browsers always ask for it). Of
//! the tokio WebSocket crates, tungstenite 0.30, fastwebsockets 0.10 and
//! tokio-websockets 0.13 have no permessage-deflate and reject frames with the RSV1
//! bit, so no extension can be added on top; soketto's deflate inflates without a size
//! limit and drops the compression context between messages, which breaks browsers
//! that keep it; ratchet has not been released since 2024 and needs C zlib. yawc 0.5
//! (a maintained descendant of fastwebsockets, Autobahn-tested) does RFC 7692 with
//! both context-takeover modes, bounds inflated sizes, answers pings and reassembles
//! fragments, in pure Rust (flate2 on miniz_oxide) with default features off. Its
//! licence is MPL-2.0, file-level copyleft that asks nothing of rill as long as yawc's
//! own files are used unmodified.
//!
//! Compression is negotiated as nats-server does: offered only with `compression:
//! true` and only to a client that asks, with `server_no_context_takeover;
//! client_no_context_takeover`, so every message inflates on its own.

pub mod handshake;
mod stream;

pub(crate) use stream::{WsReader, WsWriter};

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_rustls::TlsAcceptor;
use tracing::{debug, error, info, warn};
use yawc::{DeflateOptions, Options, WebSocket};

pub use handshake::{Cookies, Session};

use crate::auth::{Authenticator, CertIdentity};
use crate::client::{self, Peer};
use crate::config::{Config, WebsocketConfig};
use crate::locks;
use crate::server::ServerState;
use crate::tls;

/// Why the WebSocket listener could not start.
#[derive(Debug, thiserror::Error)]
pub enum WsStartError {
    /// The port could not be bound.
    #[error("Error listening on websocket port: {addr}, \"{source}\"")]
    Listen {
        /// The address asked for.
        addr: String,
        /// The bind error.
        source: std::io::Error,
    },
    /// The certificate or key could not be loaded.
    #[error("{0}")]
    Tls(#[from] tls::TlsError),
}

/// The listener's shared parts.
#[derive(Debug)]
struct Listener {
    state: Arc<ServerState>,
    port: u16,
    tls: Option<Arc<rustls::ServerConfig>>,
    /// The override authenticator, built for one configuration (rebuilt after a reload).
    auth: Mutex<Option<(Arc<Config>, Arc<Authenticator>)>>,
}

/// Binds the WebSocket port and starts accepting; returns the bound address.
///
/// # Errors
/// [`WsStartError`] when the port cannot be bound or the TLS files cannot be loaded.
pub async fn start(
    state: &Arc<ServerState>,
    ws: &WebsocketConfig,
    stop: watch::Receiver<bool>,
    done: mpsc::Sender<()>,
) -> Result<SocketAddr, WsStartError> {
    let tls = ws.tls.as_ref().map(tls::acceptor).transpose()?;
    let crate::bind::Bound { listener, addr } = crate::bind::listen(&ws.host, ws.port)
        .await
        .map_err(|source| WsStartError::Listen {
            addr: format!("{}:{}", ws.host, ws.port),
            source,
        })?;
    let scheme = if tls.is_some() { "wss" } else { "ws" };
    info!(
        "Listening for websocket clients on {scheme}://{}:{}",
        ws.host,
        addr.port()
    );
    if tls.is_none() {
        warn!("Websocket not configured with TLS. DO NOT USE IN PRODUCTION!");
    }
    let ctx = Arc::new(Listener {
        state: Arc::clone(state),
        port: addr.port(),
        tls,
        auth: Mutex::new(None),
    });
    tokio::spawn(accept_loop(ctx, listener, stop, done));
    Ok(addr)
}

async fn accept_loop(
    ctx: Arc<Listener>,
    listener: TcpListener,
    mut stop: watch::Receiver<bool>,
    done: mpsc::Sender<()>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, addr)) => {
                    let _ = stream.set_nodelay(true);
                    let (ctx, done) = (Arc::clone(&ctx), done.clone());
                    tokio::spawn(async move {
                        ctx.serve(stream, crate::bind::peer(addr)).await;
                        drop(done);
                    });
                }
                Err(e) => {
                    error!("Error accepting websocket connection: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            _ = stop.changed() => return,
        }
    }
}

impl Listener {
    /// One connection: TLS, upgrade, then the client protocol until it closes.
    async fn serve(&self, stream: TcpStream, addr: SocketAddr) {
        let config = self.state.config();
        let Some(ws) = config.websocket.clone() else {
            return;
        };
        let Some(admission) = crate::listener::admit(&self.state, addr) else {
            return;
        };
        let mut peer = Peer::new(&self.state, addr);
        peer.admission = Some(admission);
        let upgrade = tokio::time::timeout(ws.handshake_timeout, self.upgrade(stream, addr, &ws));
        let (socket, cookies, cert) = match upgrade.await {
            Ok(Ok((socket, Kind::Leaf, _))) => return self.hand_to_leafs(socket, addr).await,
            Ok(Ok((socket, Kind::Client(cookies), cert))) => (socket, cookies, cert),
            Ok(Err(e)) => {
                error!("{addr} - websocket handshake error: {e}");
                return;
            }
            Err(_) => {
                error!("{addr} - websocket handshake error: timeout");
                return;
            }
        };
        peer.cert = cert;
        peer.websocket = Some(Arc::new(Session {
            port: self.port,
            auth: self.override_auth(&config, &ws),
            auth_timeout: ws.auth_timeout,
            cookies,
        }));
        let (sink, frames) = socket.split();
        let reader = stream::WsReader::new(frames);
        let writer = stream::WsWriter::new(sink);
        client::serve_peer(Arc::clone(&self.state), reader, writer, peer).await;
    }

    /// A leaf node connected to the WebSocket port: the leaf layer serves it.
    async fn hand_to_leafs(&self, socket: WebSocket<yawc::HttpStream>, addr: SocketAddr) {
        match self.state.leafs() {
            Some(leafs) => Arc::clone(leafs).accept_websocket(socket, addr).await,
            None => error!("{addr} - Not configured to accept leaf node connections"),
        }
    }

    /// TLS (when configured) and the HTTP upgrade.
    async fn upgrade(
        &self,
        stream: TcpStream,
        addr: SocketAddr,
        ws: &WebsocketConfig,
    ) -> Result<Upgraded, UpgradeError> {
        let Some(tls) = &self.tls else {
            let (socket, kind) = http_upgrade(stream, ws, false, &self.state).await?;
            return Ok((socket, kind, None));
        };
        let acceptor = TlsAcceptor::from(Arc::clone(tls));
        let tls_stream = acceptor.accept(stream).await.map_err(UpgradeError::Tls)?;
        let cert = tls_stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .and_then(|c| CertIdentity::from_der(c));
        debug!("{addr} - websocket TLS handshake complete");
        let (socket, kind) = http_upgrade(tls_stream, ws, true, &self.state).await?;
        Ok((socket, kind, cert))
    }

    /// The WebSocket-only authenticator when the block overrides the server's users,
    /// built once per configuration.
    fn override_auth(
        &self,
        config: &Arc<Config>,
        ws: &WebsocketConfig,
    ) -> Option<Arc<Authenticator>> {
        if !ws.overrides_auth() {
            return None;
        }
        let mut cached = locks::lock(&self.auth);
        if let Some((for_config, auth)) = cached.as_ref()
            && Arc::ptr_eq(for_config, config)
        {
            return Some(Arc::clone(auth));
        }
        let auth = Arc::new(Authenticator::new(&override_config(config, ws)));
        *cached = Some((Arc::clone(config), Arc::clone(&auth)));
        Some(auth)
    }
}

/// The configuration WebSocket clients authenticate against when the block sets its
/// own user, token or `no_auth_user`: those replace the server's.
fn override_config(config: &Config, ws: &WebsocketConfig) -> Config {
    let mut c = config.clone();
    let a = &mut c.authorization;
    if ws.username.is_some() || ws.token.is_some() {
        a.user.clone_from(&ws.username);
        a.password.clone_from(&ws.password);
        a.token.clone_from(&ws.token);
    }
    if ws.no_auth_user.is_some() {
        c.no_auth_user.clone_from(&ws.no_auth_user);
    }
    c
}

/// An upgraded connection, what it is and its client certificate.
type Upgraded = (WebSocket<yawc::HttpStream>, Kind, Option<CertIdentity>);

/// The path suffix that marks an upgrade request as a leaf-node connection (nats-server's
/// leafs ask for `<url path>/leafnode`).
pub(crate) const LEAF_PATH: &str = "/leafnode";

/// What an upgrade request asked to become.
#[derive(Debug)]
enum Kind {
    /// A client, with the cookies of its request.
    Client(Cookies),
    /// A leaf node (the path ends in [`LEAF_PATH`]).
    Leaf,
}

impl Kind {
    fn of<B>(req: &Request<B>, ws: &WebsocketConfig) -> Self {
        if req.uri().path().ends_with(LEAF_PATH) {
            Self::Leaf
        } else {
            Self::Client(Cookies::from_request(req, ws))
        }
    }
}

/// Why an upgrade failed.
#[derive(Debug, thiserror::Error)]
enum UpgradeError {
    #[error("{0}")]
    Tls(std::io::Error),
    #[error("{0}")]
    Refused(#[from] handshake::Refused),
    #[error("{0}")]
    Http(#[from] hyper::Error),
    #[error("{0}")]
    WebSocket(#[from] yawc::WebSocketError),
    #[error("connection closed during the upgrade")]
    Closed,
}

/// Serves the HTTP request on `io` and, when it is a valid upgrade, switches to WebSocket.
async fn http_upgrade<IO>(
    io: IO,
    ws: &WebsocketConfig,
    tls: bool,
    state: &ServerState,
) -> Result<(WebSocket<yawc::HttpStream>, Kind), UpgradeError>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let options = options(ws, &state.config());
    let (tx, rx) = oneshot::channel();
    let tx = Mutex::new(Some(tx));
    let service = hyper::service::service_fn(|mut req: Request<Incoming>| {
        let answer = answer(&mut req, ws, tls, options.clone());
        let response = match answer {
            Ok((response, upgrade)) => {
                if let Some(tx) = locks::lock(&tx).take() {
                    let _ = tx.send(upgrade);
                }
                response
            }
            Err(refused) => {
                if let Some(tx) = locks::lock(&tx).take() {
                    let _ = tx.send(Err(refused.clone()));
                }
                refused.response()
            }
        };
        std::future::ready(Ok::<_, std::convert::Infallible>(response))
    });
    hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades()
        .await?;
    let (upgrade, kind) = rx.await.map_err(|_| UpgradeError::Closed)??;
    Ok((upgrade.await?, kind))
}

/// A pending upgrade and what it asked to become, or why the request was refused.
type Answer = Result<(yawc::UpgradeFut, Kind), handshake::Refused>;

/// Checks the request and builds the `101` answer.
fn answer(
    req: &mut Request<Incoming>,
    ws: &WebsocketConfig,
    tls: bool,
    options: Options,
) -> Result<(Response<http_body_util::Empty<bytes::Bytes>>, Answer), handshake::Refused> {
    handshake::check(req, ws, tls)?;
    let kind = Kind::of(req, ws);
    let (mut response, upgrade) =
        WebSocket::upgrade_with_options(&mut *req, options).map_err(|_| handshake::Refused::Key)?;
    // `headers {}`: checked when the configuration was loaded.
    for (name, value) in &ws.headers {
        if let (Ok(name), Ok(value)) = (
            hyper::header::HeaderName::from_bytes(name.as_bytes()),
            hyper::header::HeaderValue::from_str(value),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
    Ok((response, Ok((upgrade, kind))))
}

/// yawc's settings for this listener: nats-server's compression offer, and a message
/// size bound that fits a full `max_payload` publish with room for batched protocol.
fn options(ws: &WebsocketConfig, config: &Config) -> Options {
    link_options(ws.compression, config.max_payload)
}

/// yawc's settings for one connection, either side: permessage-deflate offered or
/// accepted as nats-server does it when `compression`, and a message size bound that
/// fits a full `max_payload` publish with room for batched protocol.
pub(crate) fn link_options(compression: bool, max_payload: usize) -> Options {
    let max_message = (2 * max_payload + 64 * 1024).max(8 * 1024 * 1024);
    let options = Options::default().with_limits(max_message, 2 * max_message);
    if !compression {
        return options;
    }
    Options {
        compression: Some(DeflateOptions {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            ..DeflateOptions::default()
        }),
        ..options
    }
}
