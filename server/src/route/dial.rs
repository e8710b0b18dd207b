//! Dialling routes: the dialling side's handshake, seed routes kept up for the server's
//! lifetime, and routes learned by gossip tried a few times.
//!
//! A seed (configured) route is redialled whenever no route to the server behind it is
//! up: after a failure a second later (nats-server's route reconnect delay), and after a
//! route closes at once. With `cluster { tls {} }` the TLS handshake comes first, before
//! the peer's INFO (as nats-server), verifying the peer for the route URL's host. Once a seed's server id is known, its dialler sleeps while any
//! route to that server is up (even one the peer dialled) and wakes when it goes away.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use rill_protocol::RouteConnect;
use rill_protocol::route_info::encode_connect as encode_route_connect;
use tokio::io::{AsyncRead, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tracing::{debug, error, info};

use super::conn::{Ended, Route, handshake};
use super::{Cluster, encode_route_info};
use crate::client::ClientWriter;
use crate::config::RouteUrl;
use crate::link::handshake::HandshakeError;
use crate::locks;
use crate::server::ServerState;

/// Wait between attempts to dial a route.
const RECONNECT: Duration = Duration::from_secs(1);

/// How long dialling and the handshake may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Attempts for a route learned by gossip when `connect_retries` is not set.
const IMPLICIT_ATTEMPTS: u32 = 3;

/// How a dial ended.
#[derive(Debug)]
enum Dialed {
    /// A route ran (or lost to a duplicate) with this server id.
    Peer(String),
    /// The URL leads back to this server.
    ToSelf,
}

/// Keeps the seed route `url` up until the server stops.
pub(super) async fn keep_dialing(cluster: Arc<Cluster>, url: RouteUrl) {
    let _done = cluster.done.hold();
    let mut stop = cluster.stop.clone();
    let mut known: Option<String> = None;
    let mut attempt: u32 = 0;
    loop {
        if cluster.stopping() {
            return;
        }
        if let Some(id) = &known {
            let gone = cluster.peers.gone();
            if cluster.peers.get(id).is_some() {
                tokio::select! {
                    () = gone => {}
                    _ = stop.changed() => return,
                }
                continue;
            }
        }
        attempt += 1;
        match dial(&cluster, &url, true).await {
            Ok(Dialed::ToSelf) => {
                debug!("Detected route to self, ignoring {url}");
                return;
            }
            Ok(Dialed::Peer(id)) => {
                known = Some(id);
                attempt = 0;
                debug!("Attempting reconnect for solicited route \"{url}\"");
                continue;
            }
            Err(e) => {
                // Every failure at debug level, the first and then every 60th as errors
                // (a peer that is down for long does not flood the log).
                if attempt == 1 || attempt.is_multiple_of(60) {
                    error!("Error trying to connect to route (attempt {attempt}): {e}");
                } else {
                    debug!("Error trying to connect to route (attempt {attempt}): {e}");
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(RECONNECT) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Tries a route learned by gossip a few times; never redials it after it closes (the
/// peer, once back, dials its seeds and gossip brings the mesh together again).
pub(super) async fn dial_implicit(cluster: Arc<Cluster>, url: RouteUrl) {
    let _done = cluster.done.hold();
    let attempts = match cluster.config.connect_retries {
        0 => IMPLICIT_ATTEMPTS,
        n => n + 1,
    };
    for attempt in 1..=attempts {
        if cluster.stopping() {
            break;
        }
        match dial(&cluster, &url, false).await {
            Ok(_) => break,
            Err(e) => {
                debug!("Error trying to connect to route (attempt {attempt}): {e}");
                tokio::time::sleep(RECONNECT).await;
            }
        }
    }
    locks::lock(&cluster.dialing).remove(&url.addr());
}

/// Dials `url`, handshakes, and runs the route until it closes.
async fn dial(
    cluster: &Arc<Cluster>,
    url: &RouteUrl,
    configured: bool,
) -> Result<Dialed, HandshakeError> {
    let Some(state) = cluster.state() else {
        return Err(HandshakeError::Closed);
    };
    let addr = url.addr();
    debug!("Trying to connect to route on {url} ({addr})");
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&addr)).await {
        Ok(stream) => stream?,
        Err(_) => return Err(HandshakeError::Timeout),
    };
    let _ = stream.set_nodelay(true);
    let addrs = (stream.peer_addr()?, stream.local_addr()?);
    let to = Target {
        url,
        configured,
        addrs,
    };
    match &cluster.tls {
        None => {
            let (reader, writer) = stream.into_split();
            dial_on(cluster, &state, to, reader, writer).await
        }
        Some(tls) => {
            debug!("Starting TLS route client handshake with {url}");
            let stream = tls.connect(&url.host, stream).await.map_err(|e| {
                HandshakeError::Unexpected(format!("TLS route handshake error: {e}"))
            })?;
            let (reader, writer) = tokio::io::split(stream);
            dial_on(cluster, &state, to, reader, writer).await
        }
    }
}

/// Where a dialled connection goes.
struct Target<'a> {
    url: &'a RouteUrl,
    configured: bool,
    /// Peer address, our address.
    addrs: (SocketAddr, SocketAddr),
}

/// The dialling side's handshake on a connected (and, with TLS, secured) stream, then
/// the route until it closes.
async fn dial_on<R, W>(
    cluster: &Arc<Cluster>,
    state: &Arc<ServerState>,
    to: Target<'_>,
    mut reader: R,
    mut writer: W,
) -> Result<Dialed, HandshakeError>
where
    R: AsyncRead + Unpin + Send,
    W: ClientWriter,
{
    let Target {
        url,
        configured,
        addrs: (peer_addr, local),
    } = to;
    let mut hs = handshake(state);
    let info: rill_protocol::RouteInfo = hs
        .info(&mut reader, Instant::now() + CONNECT_TIMEOUT)
        .await?;
    if info.server_id == cluster.server_id {
        return Ok(Dialed::ToSelf);
    }
    let ours = cluster.name();
    let theirs = info.cluster.clone().unwrap_or_default();
    if !cluster.dynamic && !theirs.is_empty() && theirs != ours {
        error!("Rejecting connection, cluster name {theirs:?} does not match {ours:?}");
        return Err(HandshakeError::Unexpected("Cluster Name Conflict".into()));
    }
    let rid = state.clients.next_cid();
    let prefix = format!("{peer_addr} - rid:{rid}");
    let mut frame = BytesMut::new();
    encode_route_connect(&mut frame, &connect_for(cluster, url, &ours));
    encode_route_info(&mut frame, &cluster.own_info(Some(local)));
    writer.write_all(&frame).await?;
    debug!("{prefix} - Route connect msg sent");
    info!("{prefix} - Route connection created");
    let ended = Route {
        cluster,
        state,
        rid,
        addrs: (peer_addr, local),
        solicited: true,
        configured,
    }
    .run(reader, writer, hs, info)
    .await;
    Ok(match ended {
        Ended::Closed(id) | Ended::Duplicate(id) => Dialed::Peer(id),
    })
}

/// The CONNECT this server sends: credentials from the URL, else the cluster's own.
fn connect_for(cluster: &Cluster, url: &RouteUrl, name: &str) -> RouteConnect {
    let auth = cluster.config.authorization.as_ref();
    RouteConnect {
        echo: true,
        verbose: false,
        pedantic: false,
        tls_required: cluster.config.tls.is_some(),
        headers: true,
        name: cluster.server_id.clone(),
        cluster: name.to_string(),
        user: url.user.clone().or_else(|| auth.map(|a| a.user.clone())),
        pass: url
            .pass
            .clone()
            .or_else(|| auth.map(|a| a.password.clone())),
    }
}
