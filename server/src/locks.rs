//! The one rule for `std` locks and poisoning.
//!
//! A lock is poisoned when a thread panicked while holding it. rill's critical sections
//! are short and only assign, insert or remove whole values, so the data behind a
//! poisoned lock is still consistent, and the panic has already been reported where it
//! happened. So:
//!
//! - everywhere, a poisoned lock is **recovered** with [`lock`], [`read`] and [`write`]:
//!   the guard is used as if nothing happened — never silently replaced by a default,
//!   never skipped;
//! - where a lock guards a decision to **admit** (who a client is, what it may publish,
//!   receive or reply to), the check is made with [`read_checked`] and a poisoned lock
//!   **refuses** (fail closed): an error there must never widen what a client may do.
//!
//! Locks are held for a few instructions and never across an `.await` or any I/O.

use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Locks `m`, recovering it if poisoned.
pub fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Read-locks `l`, recovering it if poisoned.
pub fn read<T: ?Sized>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

/// Write-locks `l`, recovering it if poisoned.
pub fn write<T: ?Sized>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}

/// Read-locks `l` for an admission check: `None` when poisoned, and the caller refuses.
pub fn read_checked<T: ?Sized>(l: &RwLock<T>) -> Option<RwLockReadGuard<'_, T>> {
    l.read().ok()
}

/// Locks `m` for an admission check: `None` when poisoned, and the caller refuses.
pub fn lock_checked<T: ?Sized>(m: &Mutex<T>) -> Option<MutexGuard<'_, T>> {
    m.lock().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poison<T>(l: &RwLock<T>) {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _guard = l.write();
            panic!("poison");
        }));
    }

    #[test]
    fn poisoned_locks_are_recovered_but_refuse_checks() {
        let l = RwLock::new(7);
        poison(&l);
        assert!(l.is_poisoned());
        assert_eq!(*read(&l), 7);
        *write(&l) = 8;
        assert_eq!(*read(&l), 8);
        assert!(read_checked(&l).is_none());
        let m = Mutex::new(1);
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _guard = m.lock();
            panic!("poison");
        }));
        assert_eq!(*lock(&m), 1);
        assert!(lock_checked(&m).is_none());
    }
}
