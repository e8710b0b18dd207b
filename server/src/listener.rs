//! The client listener: accepts connections, enforces `max_connections`, runs the TLS
//! handshake, and spawns one task per connection. Each task holds a clone of `done` so
//! that shutdown can wait for every connection to finish (the mini-redis pattern).
//!
//! TLS follows nats-server: INFO (with `tls_required`) goes out in plain text and the
//! client then starts the handshake; with `handshake_first` the handshake comes first and
//! INFO is the first thing sent over TLS (with a fallback delay, a client that stays
//! silent gets INFO first after all). With `allow_non_tls` (INFO says `tls_available`),
//! a client whose first bytes are not a TLS handshake is served in plain text. A failed or timed-out handshake — a plain-text
//! client, a missing or untrusted client certificate — closes that connection alone,
//! with an error log line.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tracing::{error, warn};

use crate::auth::CertIdentity;
use crate::client::registry::Admission;
use crate::client::{self, Peer};
use crate::config::TlsConfig;
use crate::server::ServerState;

/// Accepts clients until `stop` turns true.
pub async fn accept_loop(
    state: Arc<ServerState>,
    listener: TcpListener,
    stop: watch::Receiver<bool>,
    done: mpsc::Sender<()>,
) {
    accept_each(listener, stop, done, "client", |stream, addr, done| {
        on_accept(&state, stream, addr, done);
    })
    .await;
}

/// The accept loop every client-facing listener shares (NATS clients, MQTT devices):
/// hands each accepted connection to `on_accept` with a clone of `done` (so shutdown
/// waits for it) until `stop` turns true. An accept error (out of file descriptors and
/// the like) is logged as `Error accepting <what> connection` and the loop backs off
/// briefly and keeps serving.
pub(crate) async fn accept_each<F>(
    listener: TcpListener,
    mut stop: watch::Receiver<bool>,
    done: mpsc::Sender<()>,
    what: &str,
    mut on_accept: F,
) where
    F: FnMut(TcpStream, SocketAddr, mpsc::Sender<()>),
{
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, addr)) => on_accept(stream, crate::bind::peer(addr), done.clone()),
                Err(e) => {
                    error!("Error accepting {what} connection: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            },
            _ = stop.changed() => return,
        }
    }
}

/// A place under `max_connections` for a connection from `addr`, or `None` (after a
/// warning) when the server is full: clients, and connections still in their TLS
/// handshake, WebSocket upgrade or MQTT CONNECT, count.
pub(crate) fn admit(state: &ServerState, addr: SocketAddr) -> Option<Admission> {
    let max = state.config().max_connections;
    let admission = state.clients.admit(max);
    if admission.is_none() {
        warn!("{addr} - maximum connections exceeded ({max})");
    }
    admission
}

fn on_accept(
    state: &Arc<ServerState>,
    mut stream: TcpStream,
    addr: SocketAddr,
    done: mpsc::Sender<()>,
) {
    let Some(admission) = admit(state, addr) else {
        tokio::spawn(async move {
            let _ = stream
                .write_all(b"-ERR 'maximum connections exceeded'\r\n")
                .await;
            let _ = stream.shutdown().await;
            drop(done);
        });
        return;
    };
    let _ = stream.set_nodelay(true);
    let mut peer = Peer::new(state, addr);
    peer.admission = Some(admission);
    let state = Arc::clone(state);
    tokio::spawn(async move {
        let config = state.config();
        match (state.tls_acceptor(), &config.tls) {
            (Some(acceptor), Some(tls)) => serve_tls(state, acceptor, tls, stream, peer).await,
            _ => {
                let (reader, writer) = stream.into_split();
                client::serve_peer(state, reader, writer, peer).await;
            }
        }
        drop(done);
    });
}

/// Handshakes (before or after INFO) and serves a TLS client.
async fn serve_tls(
    state: Arc<ServerState>,
    acceptor: TlsAcceptor,
    tls: &TlsConfig,
    mut stream: TcpStream,
    mut peer: Peer,
) {
    let addr = peer.addr;
    let prefix = format!("{addr} - cid:{}", peer.cid);
    let info_first = match (tls.handshake_first, tls.handshake_first_fallback) {
        (false, _) => true,
        (true, None) => false,
        (true, Some(wait)) => client_silent(&stream, wait).await,
    };
    if info_first {
        if let Err(e) = stream.write_all(&client::info_line(&state, &peer)).await {
            tracing::debug!("{prefix} - write error: {e}");
            return;
        }
        peer.info_sent = true;
        if state.config().allow_non_tls && !starts_tls(&stream, tls.timeout).await {
            let (reader, writer) = stream.into_split();
            client::serve_peer(state, reader, writer, peer).await;
            return;
        }
    }
    let tls_stream = match tokio::time::timeout(tls.timeout, acceptor.accept(stream)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            error!("{prefix} - TLS handshake error: {e}");
            return;
        }
        Err(_) => {
            error!("{prefix} - TLS handshake timeout");
            return;
        }
    };
    peer.cert = tls_stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .and_then(|c| CertIdentity::from_der(c));
    let (reader, writer) = tokio::io::split(tls_stream);
    client::serve_peer(state, reader, writer, peer).await;
}

/// `allow_non_tls`: true when the client's first byte opens a TLS handshake (a record
/// of type 22); a plain client sends `CONNECT`, a silent one is left to the plain path's
/// authentication timeout.
async fn starts_tls(stream: &TcpStream, wait: std::time::Duration) -> bool {
    let mut byte = [0u8; 1];
    matches!(
        tokio::time::timeout(wait, stream.peek(&mut byte)).await,
        Ok(Ok(1)) if byte[0] == 0x16
    )
}

/// True when the client sends nothing within `wait` (`handshake_first` fallback).
async fn client_silent(stream: &TcpStream, wait: std::time::Duration) -> bool {
    let mut byte = [0u8; 1];
    tokio::time::timeout(wait, stream.peek(&mut byte))
        .await
        .is_err()
}
