//! The `Nats-Msg-Id` duplicate window of one stream.
//!
//! Owned by the stream thread. Ids map to the sequence that stored them; entries
//! older than `duplicate_window` are dropped in insertion (= time) order. On open
//! the window is rebuilt from the stored messages' headers, so a publisher that
//! retries across a restart still gets `duplicate: true`.

use std::collections::{HashMap, VecDeque};

use rill_protocol::headers;

use crate::jetstream::store::{StoreError, StreamStore};

/// Header carrying the publisher's message id.
pub(crate) const MSG_ID: &str = "Nats-Msg-Id";

/// The window: id → (seq, ts), plus the ids in arrival order for expiry.
#[derive(Debug, Default)]
pub(crate) struct Dedupe {
    window_ns: i64,
    ids: HashMap<String, (u64, i64)>,
    order: VecDeque<(i64, String)>,
}

impl Dedupe {
    /// An empty window of `window_ns` nanoseconds (0 disables dedupe).
    pub(crate) fn new(window_ns: i64) -> Self {
        Self {
            window_ns,
            ..Self::default()
        }
    }

    /// Changes the window length (stream update).
    pub(crate) fn set_window(&mut self, window_ns: i64) {
        self.window_ns = window_ns;
    }

    /// The sequence that stored `id`, if it is still inside the window at `now`.
    pub(crate) fn check(&mut self, id: &str, now: i64) -> Option<u64> {
        self.expire(now);
        self.ids.get(id).map(|&(seq, _)| seq)
    }

    /// Remembers `id` as stored at `seq`, time `ts`.
    pub(crate) fn insert(&mut self, id: String, seq: u64, ts: i64) {
        if self.window_ns <= 0 {
            return;
        }
        self.order.push_back((ts, id.clone()));
        self.ids.insert(id, (seq, ts));
    }

    /// Forgets ids older than the window at `now`.
    fn expire(&mut self, now: i64) {
        let horizon = now.saturating_sub(self.window_ns);
        while let Some((ts, _)) = self.order.front() {
            if *ts >= horizon {
                break;
            }
            if let Some((_, id)) = self.order.pop_front()
                && self.ids.get(&id).is_some_and(|&(_, t)| t < horizon)
            {
                self.ids.remove(&id);
            }
        }
    }

    /// Rebuilds the window from the newest stored messages younger than the window.
    ///
    /// # Errors
    /// Store read errors other than deleted/missing sequences.
    pub(crate) fn rebuild(&mut self, store: &dyn StreamStore, now: i64) -> Result<(), StoreError> {
        if self.window_ns <= 0 {
            return Ok(());
        }
        let state = store.state();
        let horizon = now.saturating_sub(self.window_ns);
        let mut found = Vec::new();
        let mut seq = state.last_seq;
        while seq >= state.first_seq && seq > 0 {
            match store.load(seq) {
                Ok(m) if m.ts < horizon => break,
                Ok(m) => {
                    let id = m.headers.as_deref().and_then(|h| headers::find(h, MSG_ID));
                    if let Some(id) = id.and_then(|v| std::str::from_utf8(v).ok()) {
                        found.push((id.to_owned(), m.seq, m.ts));
                    }
                }
                Err(StoreError::NotFound | StoreError::Deleted) => {}
                Err(e) => return Err(e),
            }
            seq -= 1;
        }
        for (id, seq, ts) in found.into_iter().rev() {
            self.insert(id, seq, ts);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_expires_in_order() {
        let mut d = Dedupe::new(100);
        d.insert("a".into(), 1, 10);
        d.insert("b".into(), 2, 50);
        assert_eq!(d.check("a", 100), Some(1));
        assert_eq!(d.check("a", 111), None);
        assert_eq!(d.check("b", 111), Some(2));
        assert_eq!(d.check("b", 151), None);
    }

    #[test]
    fn zero_window_never_dedupes() {
        let mut d = Dedupe::new(0);
        d.insert("a".into(), 1, 10);
        assert_eq!(d.check("a", 10), None);
    }
}
