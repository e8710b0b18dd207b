//! Messages lost to damage: found while opening a store or while reading it,
//! skipped by every load, taken out of the index at the next change, and
//! reported (logged once, and in [`super::StreamState::lost`]).
//!
//! Owns the bookkeeping only. Finding damage is the backend's job (record
//! checksums, per-block verification); the [`super::Store`] asks it and calls
//! [`Damage::found`] with what it learned.
//!
//! Why a `RefCell`: loads take `&self` (the stream's actor reads while it holds
//! its store immutably), and damage found by a load must be remembered so the
//! next load skips it without reading the bad bytes again. The store is owned by
//! one thread at a time (`Send`, not `Sync`), so a `RefCell` is enough.

use std::cell::RefCell;
use std::collections::BTreeMap;

use tracing::warn;

/// At most this many lost sequences are listed in [`LostData::msgs`] (the count
/// and bytes stay exact).
pub const LOST_LIST_MAX: usize = 10_000;

/// What damage cost a stream since it was opened (nats-server's `state.lost`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LostData {
    /// Lost sequences, ascending (at most [`LOST_LIST_MAX`] of them).
    pub msgs: Vec<u64>,
    /// Number of lost sequences (may exceed `msgs.len()`).
    pub count: u64,
    /// Accounted bytes of the lost messages, where they were known.
    pub bytes: u64,
}

impl LostData {
    fn add(&mut self, seq: u64, bytes: u64) {
        if self.msgs.len() < LOST_LIST_MAX {
            if let Err(at) = self.msgs.binary_search(&seq) {
                self.msgs.insert(at, seq);
            } else {
                return;
            }
        }
        self.count += 1;
        self.bytes += bytes;
    }
}

#[derive(Debug, Default)]
struct Inner {
    /// Damaged messages still in the index: seq → accounted size.
    pending: BTreeMap<u64, u64>,
    lost: LostData,
}

/// Damage bookkeeping of one store. See the module docs.
#[derive(Debug, Default)]
pub(crate) struct Damage {
    inner: RefCell<Inner>,
}

impl Damage {
    /// A message still in the index failed validation when read: skip it from
    /// now on and report it. `why` names the check that failed.
    pub(crate) fn found(&self, seq: u64, size: u64, why: &str) {
        let mut d = self.inner.borrow_mut();
        if d.pending.insert(seq, size).is_none() {
            warn!(seq, error = why, "damaged message skipped; it is lost");
            d.lost.add(seq, size);
        }
    }

    /// Sequences `first..=last` were lost before they reached the index (found
    /// by the scan at open). Logged by the scan; counted here.
    pub(crate) fn lost_range(&self, first: u64, last: u64) {
        let mut d = self.inner.borrow_mut();
        let room = (LOST_LIST_MAX - d.lost.msgs.len().min(LOST_LIST_MAX)) as u64;
        let listed = last.saturating_sub(first).saturating_add(1).min(room);
        for seq in first..first.saturating_add(listed) {
            d.lost.add(seq, 0);
        }
        d.lost.count += last.saturating_sub(first).saturating_add(1) - listed;
    }

    /// True when `seq` is known to be damaged and not yet taken out of the index.
    pub(crate) fn is_pending(&self, seq: u64) -> bool {
        self.inner.borrow().pending.contains_key(&seq)
    }

    /// Damaged messages still in the index: (count, accounted bytes).
    pub(crate) fn pending_totals(&self) -> (u64, u64) {
        let d = self.inner.borrow();
        (d.pending.len() as u64, d.pending.values().sum())
    }

    /// Takes the damaged messages that are still in the index, to remove them.
    pub(crate) fn take_pending(&self) -> Vec<u64> {
        let mut d = self.inner.borrow_mut();
        std::mem::take(&mut d.pending).into_keys().collect()
    }

    /// What damage cost since open; `None` when nothing was lost.
    pub(crate) fn lost(&self) -> Option<LostData> {
        let d = self.inner.borrow();
        (d.lost.count > 0).then(|| d.lost.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn found_is_counted_once_and_listed_in_order() {
        let d = Damage::default();
        d.found(9, 40, "crc");
        d.found(3, 20, "crc");
        d.found(9, 40, "crc");
        assert!(d.is_pending(9));
        assert_eq!(d.pending_totals(), (2, 60));
        d.lost_range(5, 6);
        let lost = d.lost().expect("lost");
        assert_eq!(
            (lost.msgs, lost.count, lost.bytes),
            (vec![3, 5, 6, 9], 4, 60)
        );
        assert_eq!(d.take_pending(), vec![3, 9]);
        assert!(!d.is_pending(9));
    }
}
