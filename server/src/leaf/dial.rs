//! The leaf role: one task per `remotes` entry that dials its hub, runs the link while it
//! lasts, and dials again when it goes, with back-off.
//!
//! The URLs of a remote are tried in turn. After a link that ran, the next attempt
//! waits the configured `reconnect` delay (nats-server: 1s); each failed attempt in a
//! row doubles the wait, up to 8 times the delay, so an unreachable hub is not hammered.
//! A loop detected on the link makes the remote wait 30s, as nats-server does. Interest
//! is re-sent on every new link (the hub learns it afresh from the `LS+` list).

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tracing::{debug, error, info};

use super::LeafNodes;
use super::conn::Dialled;
use crate::config::RemoteLeaf;

/// How long one dial may take.
const DIAL_TIMEOUT: Duration = Duration::from_secs(2);

/// Longest back-off, as a multiple of the reconnect delay.
const MAX_BACKOFF: u32 = 8;

/// Dials `remote` (the `index`-th) until the server stops.
pub(super) async fn keep_dialing(leafs: Arc<LeafNodes>, index: usize, remote: RemoteLeaf) {
    let _done = leafs.done.hold();
    let mut stop = leafs.stop.clone();
    let delay = leafs.config.reconnect;
    let mut failures: u32 = 0;
    let mut attempt: usize = 0;
    let tls = leafs.remote_tls.get(index).and_then(Option::as_ref);
    let to = |url| Dialled {
        remote: &remote,
        url,
        tls,
    };
    while !leafs.stopping() {
        let url = &remote.urls[attempt % remote.urls.len()];
        attempt += 1;
        debug!(
            "Trying to connect as leafnode to remote server on {:?}",
            url.addr()
        );
        let wait = match tokio::time::timeout(DIAL_TIMEOUT, TcpStream::connect(url.addr())).await {
            Ok(Ok(stream)) => match solicit(&leafs, to(url), stream).await {
                Ok(hub) => {
                    failures = 0;
                    leafs.loop_wait(&hub).map_or(delay, |until| {
                        until.saturating_duration_since(tokio::time::Instant::now())
                    })
                }
                Err(e) => {
                    error!(
                        "Error trying to connect as leafnode to remote server {:?} (remote {index}): {e}",
                        url.addr()
                    );
                    failures += 1;
                    backoff(delay, failures)
                }
            },
            Ok(Err(e)) => {
                error!(
                    "Error trying to connect as leafnode to remote server {:?} (attempt {attempt}): {e}",
                    url.addr()
                );
                failures += 1;
                backoff(delay, failures)
            }
            Err(_) => {
                error!(
                    "Error trying to connect as leafnode to remote server {:?} (attempt {attempt}): timeout",
                    url.addr()
                );
                failures += 1;
                backoff(delay, failures)
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => break,
        }
    }
    info!("Leafnode remote {index} stopped");
}

/// The leaf side of a link on a fresh connection: over WebSocket for `ws://` and
/// `wss://` remotes, else the plain (or TLS) leaf protocol.
async fn solicit(
    leafs: &Arc<LeafNodes>,
    to: Dialled<'_>,
    stream: TcpStream,
) -> Result<String, String> {
    if to.url.is_websocket() {
        super::ws::solicit(leafs, to, stream).await
    } else {
        super::conn::solicit(leafs, to, stream).await
    }
}

/// The wait after `failures` failed attempts in a row.
fn backoff(delay: Duration, failures: u32) -> Duration {
    let factor = 1u32 << failures.saturating_sub(1).min(3);
    delay * factor.min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_eight_times_the_delay() {
        let d = Duration::from_secs(1);
        let waits: Vec<u64> = (1..=6).map(|f| backoff(d, f).as_secs()).collect();
        assert_eq!(waits, vec![1, 2, 4, 8, 8, 8]);
    }
}
