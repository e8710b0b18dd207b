//! The MQTT listener: binds `mqtt { host, port }`, logs `Listening for MQTT clients on
//! mqtt://host:port` (`tls://` with `tls {}`) as nats-server does, accepts connections (TLS first when `mqtt { tls
//! {} }` is set: MQTT has no plain-text preamble), and spawns one task per connection.
//! Each task holds a clone of `done`, so shutdown waits for every connection.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tracing::{error, info};

use super::MqttService;
use super::conn;
use crate::auth::CertIdentity;
use crate::client::Peer;
use crate::config::MqttConfig;

/// Binds the MQTT listener and starts accepting; returns the bound address.
///
/// # Errors
/// The bind error.
pub(crate) async fn start(
    service: Arc<MqttService>,
    mqtt: &MqttConfig,
    stop: watch::Receiver<bool>,
    done: mpsc::Sender<()>,
) -> std::io::Result<SocketAddr> {
    let crate::bind::Bound { listener, addr } = crate::bind::listen(&mqtt.host, mqtt.port).await?;
    let shown = match addr {
        SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
        SocketAddr::V4(a) => a.to_string(),
    };
    let scheme = if mqtt.tls.is_some() { "tls" } else { "mqtt" };
    info!("Listening for MQTT clients on {scheme}://{shown}");
    let accept = async move {
        let each = |stream, addr, done| on_accept(&service, stream, addr, done);
        crate::listener::accept_each(listener, stop, done, "MQTT client", each).await;
    };
    tokio::spawn(accept);
    Ok(addr)
}

fn on_accept(
    service: &Arc<MqttService>,
    stream: TcpStream,
    addr: SocketAddr,
    done: mpsc::Sender<()>,
) {
    let state = Arc::clone(&service.state);
    let Some(admission) = crate::listener::admit(&state, addr) else {
        return;
    };
    let _ = stream.set_nodelay(true);
    let service = Arc::clone(service);
    let mut peer = Peer::new(&state, addr);
    peer.admission = Some(admission);
    tokio::spawn(async move {
        match service.tls_acceptor() {
            Some((acceptor, timeout)) => serve_tls(service, acceptor, timeout, stream, peer).await,
            None => {
                let (reader, writer) = stream.into_split();
                conn::serve(service, reader, writer, peer).await;
            }
        }
        drop(done);
    });
}

async fn serve_tls(
    service: Arc<MqttService>,
    acceptor: tokio_rustls::TlsAcceptor,
    timeout: std::time::Duration,
    stream: TcpStream,
    mut peer: Peer,
) {
    let prefix = format!("{} - mid:{}", peer.addr, peer.cid);
    let tls = match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
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
    peer.cert = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .and_then(|c| CertIdentity::from_der(c));
    let (reader, writer) = tokio::io::split(tls);
    conn::serve(service, reader, writer, peer).await;
}
