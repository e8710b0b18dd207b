//! The delivery side of permissions on a connection: subscribe denies that filter
//! wildcard deliveries, and the `allow_responses` grants a delivered request creates.
//!
//! Deliveries come from other connections' tasks, so the permissions live in the shared
//! [`ClientLink`] behind an `RwLock` (written at CONNECT and on reload only). A flag says
//! whether they matter to deliveries at all, so a client without subscribe denies or reply
//! grants costs each delivery one atomic load, as before reload support.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::time::Instant;

use super::ClientLink;
use crate::auth::Permissions;
use crate::locks;
use crate::router::Msg;

impl ClientLink {
    /// Installs the permissions in force (CONNECT, reload).
    pub(super) fn set_perms(&self, perms: Option<Arc<Permissions>>) {
        let checks = perms
            .as_ref()
            .is_some_and(|p| p.filters_deliveries() || p.responses().is_some());
        *locks::write(&self.perms) = perms;
        self.delivery_perms.store(checks, Ordering::Release);
    }

    /// [`Self::permit_delivery`] with the permissions in force; true when there are none.
    /// An admission check: a poisoned lock refuses ([`locks::read_checked`]).
    pub(super) fn permits_delivery(&self, msg: &Msg<'_>) -> bool {
        let Some(perms) = locks::read_checked(&self.perms) else {
            return false;
        };
        perms.as_ref().is_none_or(|p| self.permit_delivery(p, msg))
    }

    /// Applies subscribe denies to a delivery and records an `allow_responses` grant for
    /// its reply subject. False when the message must not be delivered.
    pub(super) fn permit_delivery(&self, perms: &Permissions, msg: &Msg<'_>) -> bool {
        if perms.filters_deliveries() && perms.denies_delivery(msg.subject) {
            return false;
        }
        if let (Some(grant), Some(reply)) = (perms.responses(), msg.reply) {
            let expires = Instant::now() + grant.expires;
            locks::lock(&self.responses).grant(reply.as_bytes(), grant.max, expires);
        }
        true
    }

    /// Uses one `allow_responses` grant for `subject`; false when there is none. An
    /// admission check: a poisoned lock refuses ([`locks::lock_checked`]).
    pub(super) fn take_response(&self, subject: &[u8]) -> bool {
        locks::lock_checked(&self.responses)
            .is_some_and(|mut grants| grants.take(subject, Instant::now()))
    }
}
