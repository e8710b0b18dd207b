//! What a configuration reload that changes users, accounts or permissions does to a
//! connection that is already past CONNECT.
//!
//! The connection's own task does the work when the reload wakes it
//! ([`super::Clients::notify_auth_reload`]), so its private state (the CONNECT
//! credentials, the publish-permission cache) stays owned by one task.
//!
//! Behaviour, as observed on nats-server 2.15.1 (config file rewritten + SIGHUP):
//! - the user was removed, or moved to another account (also when all authorization was
//!   removed): the connection is closed without a word, logged at debug as
//!   `Client connection closed: Client Closed`;
//! - the credentials no longer pass (password or token changed, or authorization turned on
//!   for an anonymous client): `-ERR 'Authorization Violation'` and close, logged as
//!   `[ERR] <addr> - cid:N - "<acc>/user:<name>" - authentication error - User "<name>"`
//!   (`"$G/token" - authentication error - Token "[REDACTED]"` for a token; closed reason
//!   `Authentication Failure`);
//! - permissions changed: the new ones apply to the next PUB and SUB; each existing
//!   subscription the new subscribe rules refuse is removed, with
//!   `-ERR 'Permissions Violation for Subscription to "a.b" (sid "2")'` (`... to "jobs.1"
//!   using queue "workers" (sid "1")` for a queue subscription) and the notice
//!   `Removed sub "a.b" (sid "2") for User "x" - not authorized`; the connection stays.
//!   A wildcard subscription that is still allowed stays, and new subscribe denies filter
//!   what it delivers.

use std::sync::Arc;

use bytes::BytesMut;
use rill_protocol::encode;
use tracing::{error, info};

use super::{CloseReason, Connection};
use crate::auth::Permissions;
use crate::locks;
use crate::router::Subscription;

impl Connection {
    /// Re-checks this connection against the reloaded users and accounts.
    ///
    /// # Errors
    /// The reason to close the connection with, when it may no longer stay.
    pub(super) fn on_reload(&mut self) -> Result<(), CloseReason> {
        if !self.connected {
            // CONNECT has not come yet; it will meet the new rules.
            return Ok(());
        }
        if self.jwt.is_some() {
            // Operator mode: the account's claims changed, not the config's users.
            return self.recheck_jwt();
        }
        let auth = self.peer.authenticator(&self.state);
        let user = locks::read(&self.link.info).user.clone();
        if let Some(name) = &user
            && auth.account_of(name) != Some(self.account.name.as_str())
        {
            return Err(CloseReason::ClientClosed);
        }
        let identity = match auth.authenticate_client(
            &self.connect,
            self.peer.nonce.as_deref(),
            self.peer.cert.as_ref(),
            (Some(self.peer.addr.ip()), self.peer.conn_type()),
        ) {
            Ok(identity) => identity,
            Err(_) => {
                self.reload_auth_error(user.as_deref());
                return Err(CloseReason::AuthenticationViolation);
            }
        };
        if identity.account != self.account.name {
            return Err(CloseReason::ClientClosed);
        }
        self.apply_permissions(identity.permissions);
        Ok(())
    }

    /// Logs the failed re-check as nats-server does and sends the `-ERR`.
    fn reload_auth_error(&self, user: Option<&str>) {
        let prefix = self.link.log_prefix();
        match (user, &self.connect.auth_token) {
            (Some(name), _) => error!(
                "{prefix} - {} - authentication error - User \"{name}\"",
                self.who()
            ),
            (None, Some(_)) => error!(
                "{prefix} - \"{}/token\" - authentication error - Token \"[REDACTED]\"",
                self.account.name
            ),
            (None, None) => error!("{prefix} - authentication error"),
        }
        self.send_err("Authorization Violation");
    }

    /// Installs reloaded permissions and drops the subscriptions they no longer allow.
    fn apply_permissions(&mut self, perms: Option<Arc<Permissions>>) {
        self.pub_cache.clear();
        self.link.set_perms(perms.clone());
        self.perms = perms;
        if let Some(perms) = self.perms.clone() {
            self.remove_refused_subs(&perms);
        }
    }

    fn remove_refused_subs(&mut self, perms: &Permissions) {
        let mut refused: Vec<Arc<Subscription>> = {
            let mut subs = locks::lock(&self.link.subs);
            let ids: Vec<_> = subs
                .iter()
                .filter(|(_, sub)| !allowed(perms, sub))
                .map(|(sid, _)| sid.clone())
                .collect();
            ids.iter().filter_map(|sid| subs.remove(sid)).collect()
        };
        // Numeric sids in numeric order, as a client would list them.
        refused.sort_by(|a, b| (a.sid.len(), &a.sid).cmp(&(b.sid.len(), &b.sid)));
        let user = self.link.user_name();
        for sub in refused {
            self.account.router.unsubscribe(&sub);
            let what = describe(&sub);
            self.send_err(&format!("Permissions Violation for Subscription to {what}"));
            info!("Removed sub {what} for User \"{user}\" - not authorized");
        }
    }

    /// Queues `-ERR '<text>'`.
    fn send_err(&self, text: &str) {
        let mut buf = BytesMut::with_capacity(text.len() + 10);
        encode::err(&mut buf, text);
        self.link.outbound.push_raw(&buf);
    }
}

/// Does `perms` still allow `sub`?
fn allowed(perms: &Permissions, sub: &Subscription) -> bool {
    let queue = sub.queue.as_ref().map(|q| String::from_utf8_lossy(q));
    perms.can_subscribe(sub.subject_str(), queue.as_deref())
}

/// `"a.b" (sid "2")` or `"jobs.1" using queue "workers" (sid "1")`.
fn describe(sub: &Subscription) -> String {
    let sid = String::from_utf8_lossy(&sub.sid);
    match &sub.queue {
        Some(q) => format!(
            "\"{}\" using queue \"{}\" (sid \"{sid}\")",
            sub.subject_str(),
            String::from_utf8_lossy(q)
        ),
        None => format!("\"{}\" (sid \"{sid}\")", sub.subject_str()),
    }
}
