//! Server-wide counters, updated with relaxed atomics by their producers and read by monitoring.

use std::sync::atomic::{AtomicU64, Ordering};

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
