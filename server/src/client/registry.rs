//! The live-client table: client id allocation and every connected client's
//! [`ClientLink`], for monitoring (`/connz`), reload, lame duck and shutdown.
//!
//! Connection kinds and this table: a *client* is a connection that speaks the NATS
//! client protocol and is listed in `/connz` — over plain TCP, TLS or (being added)
//! WebSocket, which differ only in the byte stream handed to
//! [`crate::client::serve_peer`]. Routes and leaf-node links are not clients: they keep
//! their own tables in their own modules (`/routez`, `/leafz`), but take their ids from
//! the same [`Clients::next_cid`] counter, as nats-server numbers all connections in one
//! sequence.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use super::link::ClientLink;
use crate::locks;

/// Live clients by client id.
#[derive(Debug)]
pub struct Clients {
    by_cid: Mutex<HashMap<u64, Arc<ClientLink>>>,
    next_cid: AtomicU64,
    /// Connections admitted but not registered yet (in the TLS handshake, the WebSocket
    /// upgrade, or an MQTT device's CONNECT): they count towards `max_connections`, as
    /// nats-server counts a client from accept on.
    pending: Arc<AtomicUsize>,
}

impl Default for Clients {
    fn default() -> Self {
        Self {
            by_cid: Mutex::new(HashMap::new()),
            next_cid: AtomicU64::new(1),
            pending: Arc::new(AtomicUsize::new(0)),
        }
    }
}

/// One admitted connection not registered yet; dropping it (once the connection is
/// registered, or gone) gives its place back.
#[derive(Debug)]
pub struct Admission(Arc<AtomicUsize>);

impl Drop for Admission {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Clients {
    /// Admits one more connection unless `max` connections (registered or still being
    /// set up) are there already.
    pub fn admit(&self, max: usize) -> Option<Admission> {
        let pending = self.pending.fetch_add(1, Ordering::AcqRel) + 1;
        let admission = Admission(Arc::clone(&self.pending));
        (self.len() + pending <= max).then_some(admission)
    }

    /// Connections admitted and not registered yet.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::Acquire)
    }

    /// Allocates the next connection id (clients, and any other connection kind).
    pub fn next_cid(&self) -> u64 {
        self.next_cid.fetch_add(1, Ordering::Relaxed)
    }

    /// Registers a live client.
    pub fn register(&self, link: Arc<ClientLink>) {
        locks::lock(&self.by_cid).insert(link.cid, link);
    }

    /// Forgets a closed client.
    pub fn unregister(&self, cid: u64) {
        locks::lock(&self.by_cid).remove(&cid);
    }

    /// Snapshot of the live clients, ordered by cid.
    pub fn all(&self) -> Vec<Arc<ClientLink>> {
        let mut v: Vec<_> = locks::lock(&self.by_cid).values().cloned().collect();
        v.sort_by_key(|c| c.cid);
        v
    }

    /// The live client `cid`, if connected.
    pub fn get(&self, cid: u64) -> Option<Arc<ClientLink>> {
        locks::lock(&self.by_cid).get(&cid).cloned()
    }

    /// Number of live clients.
    pub fn len(&self) -> usize {
        locks::lock(&self.by_cid).len()
    }

    /// True when no client is connected.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Tells every client that users, accounts or permissions were reloaded; each checks
    /// itself against the new rules in its own task.
    pub fn notify_auth_reload(&self) {
        for client in self.all() {
            client.auth_reloaded();
        }
    }
}
