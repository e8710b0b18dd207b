//! The locks that keep concurrent `$JS.API` changes from interleaving.
//!
//! Requests run concurrently (see the module above), so two changes that check and then
//! act must not overlap where one could invalidate the other's check:
//! * stream create, update and delete take the account-wide admin lock (subject overlap,
//!   stream limits and reservations are checked against every stream), then the
//!   stream's own lock;
//! * consumer create, delete, pause and reset take only the stream's lock, so a slow
//!   change on one stream never holds up another stream.
//!
//! Reads, purges and message deletes take no lock: each is one step of a stream or
//! consumer actor, which orders its own work. Locks are
//! taken in that one order (admin, then stream), so they cannot deadlock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use tokio::sync::{Mutex as AsyncMutex, MutexGuard, OwnedMutexGuard};

/// The admin lock and one lock per stream name (created on demand, forgotten when unused).
#[derive(Debug, Default)]
pub(crate) struct ApiLocks {
    admin: AsyncMutex<()>,
    streams: Mutex<StreamLocks>,
}

#[derive(Debug, Default)]
struct StreamLocks {
    by_name: HashMap<String, Weak<AsyncMutex<()>>>,
    /// Entries after the last prune; the map is pruned when it doubles.
    pruned_at: usize,
}

/// Held while a stream is created, updated or deleted.
#[derive(Debug)]
pub(crate) struct AdminGuard<'a> {
    _admin: MutexGuard<'a, ()>,
    _stream: OwnedMutexGuard<()>,
}

impl ApiLocks {
    /// Waits for the admin lock, then for `stream`'s.
    pub(crate) async fn admin(&self, stream: &str) -> AdminGuard<'_> {
        let admin = self.admin.lock().await;
        let stream = self.stream(stream).await;
        AdminGuard {
            _admin: admin,
            _stream: stream,
        }
    }

    /// Waits for `stream`'s lock.
    pub(crate) async fn stream(&self, stream: &str) -> OwnedMutexGuard<()> {
        let lock = self.lock_of(stream);
        lock.lock_owned().await
    }

    fn lock_of(&self, stream: &str) -> Arc<AsyncMutex<()>> {
        let mut locks = self.streams.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(lock) = locks.by_name.get(stream).and_then(Weak::upgrade) {
            return lock;
        }
        let lock = Arc::new(AsyncMutex::new(()));
        locks
            .by_name
            .insert(stream.to_owned(), Arc::downgrade(&lock));
        if locks.by_name.len() > 2 * locks.pruned_at.max(32) {
            locks.by_name.retain(|_, w| w.strong_count() > 0);
            locks.pruned_at = locks.by_name.len();
        }
        lock
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn streams_lock_apart_and_admin_waits_for_the_stream() {
        let locks = ApiLocks::default();
        let a = locks.stream("A").await;
        // Another stream is free.
        let b = tokio::time::timeout(Duration::from_secs(1), locks.stream("B")).await;
        assert!(b.is_ok());
        // Admin on A waits for A.
        let waiting = tokio::time::timeout(Duration::from_millis(50), locks.admin("A")).await;
        assert!(waiting.is_err());
        drop(a);
        let admin = tokio::time::timeout(Duration::from_secs(1), locks.admin("A")).await;
        assert!(admin.is_ok());
    }

    #[tokio::test]
    async fn unused_locks_are_forgotten() {
        let locks = ApiLocks::default();
        for i in 0..1000 {
            drop(locks.stream(&format!("S{i}")).await);
        }
        let len = locks.streams.lock().expect("lock").by_name.len();
        assert!(len <= 128, "{len} entries kept");
    }
}
