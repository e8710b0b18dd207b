//! Leaf-node connections to a hub in operator mode, as nats-server 2.15.1 takes them
//! (learned by running it): the leaf's `CONNECT` carries a user JWT and the signature of
//! the hub's nonce (a remote's `credentials`), checked as a client's is with the
//! connection type `LEAFNODE` (`LEAFNODE_WS` over WebSocket); the link is bound to the
//! user's account and keeps to its permissions. An account JWT's `limits.leaf` caps its
//! leaf connections on the hub: one more is refused with
//! `-ERR 'maximum account active connections exceeded'`.

use std::net::IpAddr;

use rill_protocol::Connect;

use super::claims::NO_LIMIT;
use super::user::{Denied, UserCheck};
use super::{JwtAuth, JwtUser};

/// A leaf's credentials as its `CONNECT` and connection show them.
#[derive(Debug, Clone, Copy)]
pub struct LeafCredentials<'a> {
    /// The user JWT.
    pub jwt: Option<&'a str>,
    /// The nonce's signature.
    pub sig: Option<&'a str>,
    /// The nonce the hub sent.
    pub nonce: Option<&'a str>,
    /// The leaf's address.
    pub ip: Option<IpAddr>,
    /// It came in on the WebSocket port.
    pub websocket: bool,
}

/// Why a leaf was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeafRefusal {
    /// Its user JWT did not pass (the reason, for the log).
    Denied(Denied),
    /// Its account has all the leaf connections its JWT allows.
    TooMany,
}

impl JwtAuth {
    /// Admits a leaf connection: its user JWT passes and its account has room for one
    /// more leaf, given how many leaf links `on_account` says an account has.
    ///
    /// # Errors
    /// [`LeafRefusal`]: the leaf gets `-ERR 'Authorization Violation'`, or
    /// `-ERR 'maximum account active connections exceeded'`.
    pub fn admit_leaf(
        &self,
        creds: &LeafCredentials<'_>,
        on_account: impl Fn(&str) -> usize,
    ) -> Result<JwtUser, LeafRefusal> {
        let user = self.authenticate_leaf(creds).map_err(LeafRefusal::Denied)?;
        if self
            .leaf_limit(&user.account)
            .is_some_and(|max| on_account(&user.account) >= max)
        {
            return Err(LeafRefusal::TooMany);
        }
        Ok(user)
    }

    /// Authenticates a leaf connection's user JWT.
    fn authenticate_leaf(&self, creds: &LeafCredentials<'_>) -> Result<JwtUser, Denied> {
        let connect = Connect {
            jwt: creds.jwt.map(str::to_string),
            sig: creds.sig.map(str::to_string),
            ..Connect::default()
        };
        let conn_type = match creds.websocket {
            true => "LEAFNODE_WS",
            false => "LEAFNODE",
        };
        self.authenticate(&UserCheck {
            connect: &connect,
            nonce: creds.nonce,
            ip: creds.ip,
            conn_type,
        })
    }

    /// The most leaf connections `account`'s JWT allows; `None` when unlimited.
    fn leaf_limit(&self, account: &str) -> Option<usize> {
        let limit = self
            .resolver
            .lookup(account)
            .map_or(NO_LIMIT, |a| a.claims.nats.limits.leaf);
        usize::try_from(limit).ok()
    }
}
