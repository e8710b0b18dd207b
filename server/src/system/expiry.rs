//! Claims that expire while the server runs (operator mode): when the JWT of an account
//! in use, or an activation token of one of its imports, expires, the server reacts as to
//! a claim update ([`super::claims::changed`]): the import stops, or every connection of
//! the expired account is re-checked and closed, as nats-server 2.15.1 (measured): `-ERR
//! 'Account Authentication Expired'`, closed as `Authentication Expired`, within about a
//! second of the expiry second; its users are refused afterwards. An update that moves
//! the account's `exp` before it passes keeps its connections.
//!
//! Its own task, with or without a system account (nats.js's `auth - account expired`
//! runs an operator without one).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::auth::jwt::JwtAuth;
use crate::server::ServerState;

/// Starts the task that watches the expiries, in operator mode, until `stop` turns true;
/// it holds a clone of `done` so that shutdown waits for it.
pub fn start(state: &Arc<ServerState>, stop: watch::Receiver<bool>, done: mpsc::Sender<()>) {
    let Some(jwt) = state.jwt().cloned() else {
        return;
    };
    tokio::spawn(watch(Arc::clone(state), jwt, stop, done));
}

async fn watch(
    state: Arc<ServerState>,
    jwt: Arc<JwtAuth>,
    mut stop: watch::Receiver<bool>,
    _done: mpsc::Sender<()>,
) {
    loop {
        tokio::select! {
            () = next_expiry(&jwt) => super::claims::changed(&state, &jwt, &[]).await,
            // A sooner expiry was wired: wait for that one instead.
            () = jwt.wiring.sooner.notified() => {}
            _ = stop.changed() => return,
        }
    }
}

/// Sleeps until the first expiry of a wired account's JWT or of an activation of its
/// imports; forever when none expires.
async fn next_expiry(jwt: &JwtAuth) {
    let Some(at) = jwt.wiring.next_expiry() else {
        return std::future::pending().await;
    };
    let wait = u64::try_from(at - crate::auth::jwt::token::now()).unwrap_or(0);
    // Past the second the claim expires in, so it counts as expired when rechecked.
    tokio::time::sleep(Duration::from_secs(wait) + Duration::from_millis(50)).await;
}
