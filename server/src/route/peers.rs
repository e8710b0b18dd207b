//! The peers table: the one live route to each other server, by server id.
//!
//! Why a `std` `RwLock`: announcing interest reads it on every subscription change and
//! routes come and go rarely; it is never held across an `.await`.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use tokio::sync::Notify;
use tokio::sync::futures::Notified;

use super::link::RouteLink;
use crate::locks;

/// Live routes by the peer's server id.
#[derive(Debug, Default)]
pub(crate) struct Peers {
    links: RwLock<HashMap<String, Arc<RouteLink>>>,
    /// Woken when a route goes away (dialers of seed routes wait on it).
    gone: Notify,
}

impl Peers {
    /// Calls `f` for each live route (under the read lock: `f` must not block).
    pub(crate) fn for_each(&self, mut f: impl FnMut(&Arc<RouteLink>)) {
        for link in locks::read(&self.links).values() {
            f(link);
        }
    }

    /// Every live route.
    pub(crate) fn all(&self) -> Vec<Arc<RouteLink>> {
        locks::read(&self.links).values().cloned().collect()
    }

    /// The route to `server_id`.
    pub(crate) fn get(&self, server_id: &str) -> Option<Arc<RouteLink>> {
        locks::read(&self.links).get(server_id).cloned()
    }

    /// Number of live routes.
    pub(crate) fn len(&self) -> usize {
        locks::read(&self.links).len()
    }

    /// Puts `link` in as the route to `server_id` unless `keep` says the route already
    /// there wins. Returns the route that lost (the old one, or `link` itself), if any.
    pub(crate) fn insert(
        &self,
        server_id: &str,
        link: &Arc<RouteLink>,
        keep: impl FnOnce(&RouteLink) -> bool,
    ) -> Option<Arc<RouteLink>> {
        let mut links = locks::write(&self.links);
        match links.get(server_id) {
            Some(old) if keep(old) => Some(Arc::clone(link)),
            _ => {
                link.set_registered();
                links.insert(server_id.to_string(), Arc::clone(link))
            }
        }
    }

    /// Takes `link` out, if it is the route to `server_id`. True when it was.
    pub(crate) fn remove(&self, server_id: &str, link: &Arc<RouteLink>) -> bool {
        let mut links = locks::write(&self.links);
        let found = links.get(server_id).is_some_and(|l| Arc::ptr_eq(l, link));
        if found {
            links.remove(server_id);
        }
        drop(links);
        if found {
            self.gone.notify_waiters();
        }
        found
    }

    /// Resolves when a route goes away after this call (create it before checking).
    pub(crate) fn gone(&self) -> Notified<'_> {
        self.gone.notified()
    }
}
