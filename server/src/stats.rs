//! Server-wide counters, updated with relaxed atomics by their producers and read by monitoring.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::locks;

/// Message, byte and connection counters (nats-server's `/varz` figures).
#[derive(Debug, Default)]
pub struct Stats {
    /// Messages received from clients.
    pub in_msgs: AtomicU64,
    /// Payload bytes received from clients.
    pub in_bytes: AtomicU64,
    /// Messages delivered to subscribers.
    pub out_msgs: AtomicU64,
    /// Payload bytes delivered to subscribers.
    pub out_bytes: AtomicU64,
    /// Clients disconnected as slow consumers.
    pub slow_consumers: AtomicU64,
    /// Connections closed for not answering PINGs.
    pub stale_connections: AtomicU64,
    /// Connections accepted since start.
    pub total_connections: AtomicU64,
    /// Requests served per monitoring path.
    pub http_requests: HttpReqStats,
}

/// Requests per monitoring path, counted as each is served (nats-server's
/// `http_req_stats` in `/varz`: only paths asked for at least once appear).
#[derive(Debug, Default)]
pub struct HttpReqStats(Mutex<BTreeMap<&'static str, u64>>);

impl HttpReqStats {
    /// Counts one request for `path`.
    pub fn count(&self, path: &'static str) {
        *locks::lock(&self.0).entry(path).or_default() += 1;
    }

    /// The counts so far, by path.
    pub fn snapshot(&self) -> BTreeMap<&'static str, u64> {
        locks::lock(&self.0).clone()
    }
}

impl Stats {
    /// Adds to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
