//! The client listener: accepts connections, enforces `max_connections`, and
//! spawns one task per connection. Each task holds a clone of `done` so that
//! shutdown can wait for every connection to finish (the mini-redis pattern).

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tracing::{error, warn};

use crate::client;
use crate::server::ServerState;

/// Accepts clients until `stop` turns true.
pub async fn accept_loop(
    state: Arc<ServerState>,
    listener: TcpListener,
    mut stop: watch::Receiver<bool>,
    done: mpsc::Sender<()>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, addr)) => on_accept(&state, stream, addr, done.clone()),
                Err(e) => {
                    // Out of file descriptors and the like: back off briefly, keep serving.
                    error!("Error accepting client connection: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            },
            _ = stop.changed() => return,
        }
    }
}

fn on_accept(
    state: &Arc<ServerState>,
    mut stream: TcpStream,
    addr: SocketAddr,
    done: mpsc::Sender<()>,
) {
    let config = state.config();
    if state.num_clients() >= config.max_connections {
        warn!(
            "{addr} - maximum connections exceeded ({})",
            config.max_connections
        );
        tokio::spawn(async move {
            let _ = stream
                .write_all(b"-ERR 'maximum connections exceeded'\r\n")
                .await;
            let _ = stream.shutdown().await;
            drop(done);
        });
        return;
    }
    let _ = stream.set_nodelay(true);
    let state = Arc::clone(state);
    tokio::spawn(async move {
        let (reader, writer) = stream.into_split();
        client::serve(state, reader, writer, addr).await;
        drop(done);
    });
}
