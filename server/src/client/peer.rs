//! What the listener knows about a connection before its client task starts (client id,
//! INFO nonce, TLS client certificate), and the INFO line built from it.

use std::net::SocketAddr;

use bytes::BytesMut;
use rill_protocol::encode;

use crate::auth::CertIdentity;
use crate::server::ServerState;

/// How a connection was reached, as the listener knows it before the client task starts.
#[derive(Debug, Clone)]
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
        }
    }
}

/// The INFO line for a client.
pub fn info_line(state: &ServerState, peer: &Peer) -> BytesMut {
    let mut info = state.info_template();
    info.client_id = Some(peer.cid);
    info.client_ip = Some(peer.addr.ip().to_string());
    info.nonce = peer.nonce.clone();
    let mut buf = BytesMut::with_capacity(512);
    encode::info(&mut buf, &info);
    buf
}
