//! A hub's leaf links after an account JWT update (operator mode), as nats-server
//! 2.15.1 treats them (measured): a leaf whose user is revoked gets `-ERR 'User
//! Authentication Revoked'` and closes as "Credentials Revoked"; a bearer user the
//! account now refuses gets `-ERR 'Authorization Violation'` ("Authentication
//! Failure"); a user whose signing key was removed closes without a word
//! ("Authentication Failure"). The checks are the client's
//! ([`crate::auth::jwt::JwtAuth::recheck`]); the account's `conn` limit, which counts
//! leafs and clients together on an update, is applied by
//! [`crate::client::jwt::close_over_limit`] through [`LeafNodes::account_links`].

use tracing::error;

use super::LeafNodes;
use crate::auth::jwt::JwtAuth;
use crate::client::CloseReason;
use crate::link::Link;

/// Re-checks the JWT user of every accepted leaf link and closes those that no longer
/// pass.
pub(super) fn recheck(leafs: &LeafNodes, auth: &JwtAuth) {
    for link in leafs.links() {
        let Some(user) = &link.user else {
            continue;
        };
        let Err(why) = auth.recheck(user) else {
            continue;
        };
        let (err, reason) = crate::client::jwt::revoked(&link.log_prefix(), user, why);
        if let Some(err) = err {
            link.send(err);
        }
        link.outbound.close_with(reason);
    }
}

/// The ids of the accepted leaf links bound to `account`.
pub(super) fn account_links(leafs: &LeafNodes, account: &str) -> Vec<u64> {
    let links = leafs.links();
    let bound = links
        .iter()
        .filter(|l| !l.solicited && !l.is_closed() && l.account == account);
    bound.map(|l| l.lid).collect()
}

/// Closes leaf link `lid` for its account's connection limit.
pub(super) fn close_over_limit(leafs: &LeafNodes, lid: u64) {
    let Some(link) = leafs.links().into_iter().find(|l| l.lid == lid) else {
        return;
    };
    error!(
        "{} - maximum account active connections exceeded - Account:{}",
        link.log_prefix(),
        link.account
    );
    link.send(b"-ERR 'maximum account active connections exceeded'\r\n");
    link.outbound
        .close_with(CloseReason::MaxAccountConnectionsExceeded);
}
