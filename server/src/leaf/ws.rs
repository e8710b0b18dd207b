//! Leaf links over WebSocket, in both roles, as nats-server 2.15 does them.
//!
//! - **Leaf**: a remote whose URLs are `ws://` or `wss://` dials the hub's WebSocket
//!   port: TCP, then TLS for `wss://` (or when the remote has a `tls {}` block), then an
//!   HTTP upgrade to the URL's path followed by `/leafnode` (`ws://hub:8080/edge` asks
//!   for `/edge/leafnode`), which tells the hub this is a leaf and not a client.
//!   `ws_compression: true` offers permessage-deflate. Frames are always masked
//!   (`ws_no_masking` is accepted: nats-server's hub would have to agree to it, and
//!   masked frames are always accepted).
//! - **Hub**: a server with `websocket {}` and a `leafnodes { port }` takes upgrade
//!   requests whose path ends in `/leafnode` as leaf connections, authorised by
//!   `leafnodes { authorization }` like any leaf; without a leaf port they are refused
//!   (`Not configured to accept leaf node connections`), as nats-server.
//!
//! After the upgrade the leaf protocol runs inside binary messages exactly as over TCP
//! (the hub's INFO first, CONNECT, `LS+`, `LMSG`, …), through the same
//! [`crate::websocket`] byte streams as WebSocket clients use.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tracing::error;

use super::LeafNodes;
use super::conn::{Dialled, tls_error};
use crate::config::LeafUrl;
use crate::shared::{BoxFuture, WsSocket};
use crate::websocket::{LEAF_PATH, WsReader, WsWriter, link_options};

/// How long the hub has to answer the upgrade request.
const UPGRADE_TIMEOUT: Duration = Duration::from_secs(5);

/// The leaf's side: TLS when asked for, the upgrade, then the leaf handshake and the
/// link until it closes. The hub's id when a link ran.
pub(super) async fn solicit(
    leafs: &Arc<LeafNodes>,
    to: Dialled<'_>,
    stream: TcpStream,
) -> Result<String, String> {
    let _ = stream.set_nodelay(true);
    let addr = crate::bind::peer(stream.peer_addr().map_err(|e| e.to_string())?);
    let max_payload = leafs
        .state()
        .map_or(1024 * 1024, |s| s.config().max_payload);
    let options = link_options(to.remote.ws_compression, max_payload);
    let url = request_url(to.url)?;
    let host = to.url.host.clone();
    match to.tls {
        Some(tls) => {
            let stream = tls.connect(&host, stream).await.map_err(tls_error)?;
            let halves = upgrade(url, stream, options).await?;
            super::conn::solicit_websocket(leafs, to, (addr, halves)).await
        }
        None => {
            let halves = upgrade(url, stream, options).await?;
            super::conn::solicit_websocket(leafs, to, (addr, halves)).await
        }
    }
}

/// The URL the upgrade request goes to: the remote's host and port, its path followed
/// by `/leafnode`.
fn request_url(url: &LeafUrl) -> Result<url::Url, String> {
    let scheme = if url.scheme == "wss" { "wss" } else { "ws" };
    let path = if url.path.is_empty() {
        LEAF_PATH.to_string()
    } else {
        format!("/{}{LEAF_PATH}", url.path)
    };
    let text = format!("{scheme}://{}{path}", url.addr());
    url::Url::parse(&text).map_err(|e| format!("websocket URL {text:?}: {e}"))
}

/// The HTTP upgrade on `stream`, as the two byte streams the leaf code reads and writes.
async fn upgrade<S>(
    url: url::Url,
    stream: S,
    options: yawc::Options,
) -> Result<(WsReader<S>, WsWriter<S>), String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let upgrading = yawc::WebSocket::handshake(url, stream, options);
    let socket = tokio::time::timeout(UPGRADE_TIMEOUT, upgrading)
        .await
        .map_err(|_| "websocket upgrade: timeout".to_string())?
        .map_err(|e| format!("websocket upgrade: {e}"))?;
    let (sink, frames) = socket.split();
    Ok((WsReader::new(frames), WsWriter::new(sink)))
}

/// The hub's side of an upgraded connection the WebSocket listener hands over.
pub(super) fn accept(
    leafs: Arc<LeafNodes>,
    socket: WsSocket,
    addr: SocketAddr,
) -> BoxFuture<'static, ()> {
    Box::pin(async move {
        if leafs.listen_addr().is_none() {
            error!("{addr} - Not configured to accept leaf node connections");
            return;
        }
        let (sink, frames) = socket.split();
        let halves = (WsReader::new(frames), WsWriter::new(sink));
        super::conn::accept_websocket(leafs, halves, addr).await;
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upgrade_path_is_the_url_path_then_leafnode() {
        let url = |text| request_url(&LeafUrl::parse(text).expect("url")).expect("request url");
        assert_eq!(url("ws://h:1").as_str(), "ws://h:1/leafnode");
        assert_eq!(
            url("ws://u:p@h:1/edge/a/").as_str(),
            "ws://h:1/edge/a/leafnode"
        );
        assert_eq!(url("wss://h").as_str(), "wss://h/leafnode");
    }
}
