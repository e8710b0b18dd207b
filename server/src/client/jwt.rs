//! A JWT user's connection (operator mode): the user's subscription and payload limits,
//! the timer that ends the connection when the JWT expires (or its connect-time window
//! closes), and the re-check after an account JWT update (revocations, bearer rules).
//!
//! As nats-server 2.15.1: an expired user gets `-ERR 'User Authentication Expired'`, a
//! revoked one `-ERR 'User Authentication Revoked'`, and both are closed.

use std::sync::Arc;
use std::time::Duration;

use rill_protocol::{ProtocolError, Publish};
use tracing::{debug, error};

use super::{ClientLink, CloseReason, Connection};
use crate::auth::jwt::claims::NO_LIMIT;
use crate::auth::jwt::{JwtAuth, JwtUser, user::Revocation};
use crate::locks;
use crate::server::ServerState;

/// What a connection over its account's `conn` limit is sent.
const TOO_MANY: &[u8] = b"-ERR 'maximum account active connections exceeded'\r\n";

/// The JWT side of a connection.
#[derive(Debug)]
pub(super) struct JwtSession {
    user: Arc<JwtUser>,
    /// Ends the connection at expiry; aborted with the session.
    expiry: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for JwtSession {
    fn drop(&mut self) {
        if let Some(task) = self.expiry.take() {
            task.abort();
        }
    }
}

impl Connection {
    /// Starts the JWT session of a user that just authenticated.
    ///
    /// # Errors
    /// When the account JWT's `conn` limit is reached (as nats-server: `-ERR 'maximum
    /// account active connections exceeded'` and the connection closes).
    pub(super) fn start_jwt(&mut self, user: Option<Arc<JwtUser>>) -> Result<(), CloseReason> {
        if let Some(user) = &user
            && self.account_full(&user.account)
        {
            debug!(
                "{} - maximum account active connections exceeded",
                self.link.log_prefix()
            );
            self.link.outbound.push_raw(TOO_MANY);
            return Err(CloseReason::MaxAccountConnectionsExceeded);
        }
        if let (Some(user), Some(jwt)) = (&user, self.state.jwt()) {
            jwt.ensure_wired(&self.state.accounts, &user.account);
        }
        {
            let mut info = locks::write(&self.link.info);
            info.expires = user.as_ref().and_then(|u| u.expires);
            info.user_name = user
                .as_ref()
                .map(|u| u.name.clone())
                .filter(|n| !n.is_empty());
        }
        self.jwt = user.map(|user| {
            let expiry = user.expires.map(|at| self.expiry_timer(at));
            JwtSession { user, expiry }
        });
        Ok(())
    }

    /// True when `account`'s JWT limits its connections and other clients of this server
    /// already use them all.
    fn account_full(&self, account: &str) -> bool {
        account_full(&self.state, account, self.link.cid)
    }

    fn expiry_timer(&self, at: i64) -> tokio::task::JoinHandle<()> {
        let left = u64::try_from(at - crate::auth::jwt::token::now()).unwrap_or(0);
        let link = Arc::clone(&self.link);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(left)).await;
            debug!("{} - User Authentication Expired", link.log_prefix());
            link.outbound
                .push_raw(b"-ERR 'User Authentication Expired'\r\n");
            link.outbound.close_with(CloseReason::AuthenticationExpired);
        })
    }

    /// True when one more subscription would pass the user's limit (or the server's
    /// `max_subscriptions`, 0 being unlimited).
    pub(super) fn subs_at_limit(&self, server_max: usize, current: usize) -> bool {
        if server_max > 0 && current >= server_max {
            return true;
        }
        self.jwt.as_ref().is_some_and(|s| {
            s.user.subs != NO_LIMIT && i64::try_from(current).unwrap_or(i64::MAX) >= s.user.subs
        })
    }

    /// Refuses a publish over the user's payload limit, as nats-server does (the
    /// connection is closed).
    pub(super) fn check_jwt_payload(&self, publish: &Publish) -> Result<(), CloseReason> {
        let Some(s) = &self.jwt else {
            return Ok(());
        };
        let size = publish.payload().len() + publish.headers().map_or(0, <[u8]>::len);
        if s.user.payload != NO_LIMIT && i64::try_from(size).unwrap_or(i64::MAX) > s.user.payload {
            self.fail(&ProtocolError::MaxPayload);
            return Err(CloseReason::MaxPayloadExceeded);
        }
        Ok(())
    }

    /// Re-checks a JWT user after its account's claims changed.
    ///
    /// # Errors
    /// The close reason when the user was revoked or no longer passes.
    pub(super) fn recheck_jwt(&mut self) -> Result<(), CloseReason> {
        let (Some(session), Some(auth)) = (&self.jwt, self.state.jwt()) else {
            return Ok(());
        };
        let Err(why) = auth.recheck(&session.user) else {
            return Ok(());
        };
        let (err, reason) = revoked(&self.link.log_prefix(), &session.user, why);
        if let Some(err) = err {
            self.link.outbound.push_raw(err);
        }
        Err(reason)
    }
}

/// True when `account`'s JWT limits its connections and clients of this server other
/// than `cid` (NATS and MQTT alike) already use them all.
pub(crate) fn account_full(state: &ServerState, account: &str, cid: u64) -> bool {
    let limit = state
        .jwt()
        .and_then(|j| j.resolver.lookup(account))
        .map_or(NO_LIMIT, |a| a.claims.nats.limits.conn);
    let Ok(limit) = usize::try_from(limit) else {
        return false;
    };
    let clients = state.clients.all();
    let others = clients
        .iter()
        .filter(|c| c.cid != cid && in_account(c, account));
    others.count() >= limit
}

/// True when `client` is a live connection of `account` (one that is closing, whose
/// cleanup may take a moment, no longer counts).
fn in_account(client: &ClientLink, account: &str) -> bool {
    !client.outbound.is_closed() && locks::read(&client.info).account == account
}

/// When the connection of `user` must end (its JWT's expiry or the end of its
/// connect-time window), on tokio's clock.
pub(crate) fn expiry(user: &JwtUser) -> Option<tokio::time::Instant> {
    let at = user.expires?;
    let left = u64::try_from(at - crate::auth::jwt::token::now()).unwrap_or(0);
    Some(tokio::time::Instant::now() + Duration::from_secs(left))
}

/// Re-checks the JWT user of a connection that is sent no `-ERR` (an MQTT device) after
/// an account JWT update, logged as a client's re-check.
///
/// # Errors
/// The close reason when the user was revoked or no longer passes.
pub(crate) fn recheck_quietly(
    state: &ServerState,
    prefix: &str,
    user: &JwtUser,
) -> Result<(), CloseReason> {
    let Some(auth) = state.jwt() else {
        return Ok(());
    };
    auth.recheck(user)
        .map_err(|why| revoked(prefix, user, why).1)
}

/// Logs why a connection (a client, or a leaf on its hub) whose `user` failed its
/// re-check after an account JWT update must go, as nats-server 2.15.1 logs it, and
/// returns the `-ERR` to send (none: it closes without a word) and the close reason.
pub(crate) fn revoked(
    prefix: &str,
    user: &JwtUser,
    why: Revocation,
) -> (Option<&'static [u8]>, CloseReason) {
    let account = &user.account;
    match why {
        Revocation::Revoked => {
            let key = &user.key;
            debug!("{prefix} - User Authentication Revoked - Account:{account} - jwt:{key}");
            let err = b"-ERR 'User Authentication Revoked'\r\n";
            (Some(err), CloseReason::Revocation)
        }
        Revocation::Bearer => {
            debug!("{prefix} - Bearer User JWT not allowed");
            error!("{prefix} - authentication error - JWT User {:?}", user.key);
            let err = b"-ERR 'Authorization Violation'\r\n";
            (Some(err), CloseReason::AuthenticationViolation)
        }
        Revocation::SignerChanged => (None, CloseReason::AuthenticationViolation),
        Revocation::AccountExpired => {
            debug!("{prefix} - Account Authentication Expired");
            let err = b"-ERR 'Account Authentication Expired'\r\n";
            (Some(err), CloseReason::AuthenticationExpired)
        }
    }
}

/// Applies `account`'s JWT `conn` limit after the JWT changed, as nats-server 2.15.1
/// (measured): the account's clients and accepted leafs on this server count together
/// (at connect time leafs do not count), the oldest keep their place and the rest are
/// sent `-ERR 'maximum account active connections exceeded'` (MQTT devices none) and
/// closed. With a limit of 1 over a leaf then two clients, the leaf stays; with 2, the
/// second client goes.
pub(crate) fn close_over_limit(state: &ServerState, auth: &JwtAuth, account: &str) {
    let limit = auth
        .resolver
        .lookup(account)
        .map_or(NO_LIMIT, |a| a.claims.nats.limits.conn);
    let Ok(limit) = usize::try_from(limit) else {
        return;
    };
    let clients: Vec<_> = state
        .clients
        .all()
        .into_iter()
        .filter(|c| in_account(c, account))
        .collect();
    let leafs = state.leafs();
    let lids = leafs.map(|l| l.account_links(account)).unwrap_or_default();
    let mut ids: Vec<u64> = clients.iter().map(|c| c.cid).chain(lids).collect();
    ids.sort_unstable();
    for id in ids.into_iter().skip(limit) {
        match clients.iter().find(|c| c.cid == id) {
            Some(client) => {
                error!(
                    "{} - maximum account active connections exceeded - Account:{account}",
                    client.log_prefix()
                );
                if !client.is_mqtt() {
                    client.outbound.push_raw(TOO_MANY);
                }
                client
                    .outbound
                    .close_with(CloseReason::MaxAccountConnectionsExceeded);
            }
            None => {
                if let Some(leafs) = leafs {
                    leafs.close_over_limit(id);
                }
            }
        }
    }
}
