//! What the listener knows about a connection before its client task starts (client id,
//! INFO nonce, TLS client certificate, the WebSocket session it came through), and the
//! INFO line built from it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use rill_protocol::{Connect, encode};

use super::registry::Admission;
use crate::auth::{Authenticator, CertIdentity};
use crate::config::Config;
use crate::server::ServerState;
use crate::websocket::handshake::Session;

/// How a connection was reached, as the listener knows it before the client task starts.
#[derive(Debug)]
pub struct Peer {
    /// Peer address.
    pub addr: SocketAddr,
    /// Client id, allocated by whoever sends INFO.
    pub cid: u64,
    /// The nonce sent in INFO (nkey users).
    pub nonce: Option<String>,
    /// INFO was already sent (TLS upgrade after INFO).
    pub info_sent: bool,
    /// The client certificate's identities, for `verify_and_map`.
    pub cert: Option<CertIdentity>,
    /// The WebSocket session, for a client that came through the WebSocket listener.
    pub websocket: Option<Arc<Session>>,
    /// Its place under `max_connections` until the connection is registered.
    pub admission: Option<Admission>,
}

impl Peer {
    /// A plain connection whose INFO is still to be sent.
    pub fn new(state: &ServerState, addr: SocketAddr) -> Self {
        Self {
            addr,
            cid: state.clients.next_cid(),
            nonce: state.authenticator().nonce(),
            info_sent: false,
            cert: None,
            websocket: None,
            admission: None,
        }
    }

    /// The rules this client authenticates against: the WebSocket block's own when it
    /// overrides the server's, the server's otherwise.
    pub fn authenticator(&self, state: &ServerState) -> Arc<Authenticator> {
        match self.websocket.as_ref().and_then(|ws| ws.auth.clone()) {
            Some(auth) => auth,
            None => state.authenticator(),
        }
    }

    /// How long this client has to authenticate.
    pub fn auth_timeout(&self, config: &Config) -> Duration {
        let own = self.websocket.as_ref().and_then(|ws| ws.auth_timeout);
        own.or(config.authorization.timeout)
            .unwrap_or(config.auth_timeout)
    }

    /// The connection type a user JWT's `allowed_connection_types` names this client
    /// by, as nats-server: `WEBSOCKET` on the WebSocket port, else `STANDARD`.
    pub fn conn_type(&self) -> &'static str {
        match self.websocket {
            Some(_) => "WEBSOCKET",
            None => "STANDARD",
        }
    }

    /// Fills the credentials CONNECT left empty from the WebSocket request's cookies.
    pub fn complete_connect(&self, connect: &mut Connect) {
        if let Some(ws) = &self.websocket {
            ws.cookies.complete(connect);
        }
    }
}

/// The INFO line for a client.
pub fn info_line(state: &ServerState, peer: &Peer) -> BytesMut {
    let mut info = state.client_info(peer.websocket.is_some());
    if let Some(ws) = &peer.websocket {
        info.port = ws.port;
        info.auth_required = peer.authenticator(state).required();
    }
    info.client_id = Some(peer.cid);
    info.client_ip = Some(peer.addr.ip().to_string());
    info.nonce = peer.nonce.clone();
    let mut buf = BytesMut::with_capacity(512);
    encode::info(&mut buf, &info);
    buf
}
