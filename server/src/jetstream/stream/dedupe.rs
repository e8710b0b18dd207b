//! The `Nats-Msg-Id` duplicate window of one stream.
//!
//! Owned by the stream's actor. Ids map to the sequence that stored them; entries
//! older than `duplicate_window` are dropped in insertion (= time) order. After
//! open the window is rebuilt from the stored messages' headers, so a publisher
//! that retries across a restart still gets `duplicate: true`. The rebuild reads
//! every message inside the window, so it is deferred until the first publish
//! that carries a `Nats-Msg-Id` (the only thing that needs it): a stream answers
//! right after a restart however many recent messages it holds, and a stream
//! whose publishers never set ids never pays for the scan. The scan covers the
//! messages stored at open that are still there when it runs.

use std::collections::{HashMap, VecDeque};

use rill_protocol::headers;
use tracing::warn;

use crate::jetstream::store::{StoreError, StreamStore};

/// Header carrying the publisher's message id.
pub(crate) const MSG_ID: &str = "Nats-Msg-Id";

/// The `Nats-Msg-Id` of the last message (`Nats-Expected-Last-Msg-Id` compares with it).
/// After an open it is the id of the message stored last then, read when first asked:
/// an open does not load the last block for a header few publishers send.
#[derive(Debug, Default)]
pub(crate) struct LastMsgId {
    /// The sequence whose id is the answer until one is set.
    at: u64,
    id: std::cell::OnceCell<String>,
}

impl LastMsgId {
    /// The id of the message at `seq`, read when first asked.
    pub(crate) fn of_seq(seq: u64) -> Self {
        Self {
            at: seq,
            id: std::cell::OnceCell::new(),
        }
    }

    /// The id of the message just stored (`""`: none).
    pub(crate) fn set(&mut self, id: &str) {
        self.id = std::cell::OnceCell::from(id.to_owned());
    }

    /// The id (`""` when the message had none or is gone).
    pub(crate) fn get(&self, store: &dyn StreamStore) -> &str {
        self.id.get_or_init(|| {
            store
                .load(self.at)
                .ok()
                .and_then(|m| m.headers)
                .and_then(|h| {
                    headers::find(&h, MSG_ID)
                        .and_then(|v| std::str::from_utf8(v).ok().map(str::to_owned))
                })
                .unwrap_or_default()
        })
    }
}

/// The window: id → (seq, ts), plus the ids in arrival order for expiry.
#[derive(Debug, Default)]
pub(crate) struct Dedupe {
    window_ns: i64,
    ids: HashMap<String, (u64, i64)>,
    order: VecDeque<(i64, String)>,
    /// The last sequence stored at open, while the messages up to it are not
    /// scanned yet.
    unscanned: Option<u64>,
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

    /// Defers the rebuild from `store` (opened with messages up to `last_seq`)
    /// to the first [`Dedupe::check`].
    pub(crate) fn rebuild_later(&mut self, last_seq: u64) {
        self.unscanned = (last_seq > 0).then_some(last_seq);
    }

    /// The sequence that stored `id`, if it is still inside the window at `now`;
    /// the first call after open rebuilds the window from `store`.
    pub(crate) fn check(&mut self, id: &str, now: i64, store: &dyn StreamStore) -> Option<u64> {
        if let Some(last) = self.unscanned.take() {
            self.rebuild(store, last, now);
        }
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

    /// Rebuilds the window from the stored messages up to `last` younger than
    /// the window, newest first, before any id stored since open. A message
    /// that cannot be read (damaged, reported by the store) carries no id.
    fn rebuild(&mut self, store: &dyn StreamStore, last: u64, now: i64) {
        if self.window_ns <= 0 {
            return;
        }
        let first = store.state().first_seq;
        let horizon = now.saturating_sub(self.window_ns);
        let mut found = Vec::new();
        let mut seq = last;
        while seq >= first && seq > 0 {
            match store.load(seq) {
                Ok(m) if m.ts < horizon => break,
                Ok(m) => {
                    let id = m.headers.as_deref().and_then(|h| headers::find(h, MSG_ID));
                    if let Some(id) = id.and_then(|v| std::str::from_utf8(v).ok()) {
                        found.push((m.ts, id.to_owned(), m.seq));
                    }
                }
                Err(StoreError::NotFound | StoreError::Deleted) => {}
                Err(e) => {
                    warn!(seq, error = %e, "message unreadable while rebuilding the duplicate window")
                }
            }
            seq -= 1;
        }
        for (ts, id, seq) in found {
            self.order.push_front((ts, id.clone()));
            self.ids.entry(id).or_insert((seq, ts));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jetstream::store::{MemStore, StoreConfig, now_ns};

    #[test]
    fn window_expires_in_order() {
        let store = MemStore::new(StoreConfig::default());
        let mut d = Dedupe::new(100);
        d.insert("a".into(), 1, 10);
        d.insert("b".into(), 2, 50);
        assert_eq!(d.check("a", 100, &store), Some(1));
        assert_eq!(d.check("a", 111, &store), None);
        assert_eq!(d.check("b", 111, &store), Some(2));
        assert_eq!(d.check("b", 151, &store), None);
    }

    #[test]
    fn zero_window_never_dedupes() {
        let store = MemStore::new(StoreConfig::default());
        let mut d = Dedupe::new(0);
        d.insert("a".into(), 1, 10);
        assert_eq!(d.check("a", 10, &store), None);
    }

    /// The deferred rebuild finds the newest sequence of every id stored
    /// inside the window, and only on the first check.
    #[test]
    fn the_window_is_rebuilt_at_the_first_check() {
        let mut store = MemStore::new(StoreConfig::default());
        for (i, id) in ["a", "b", "a", ""].iter().enumerate() {
            let hdr = format!("NATS/1.0\r\nNats-Msg-Id: {id}\r\n\r\n");
            let hdr = (!id.is_empty()).then_some(hdr.as_bytes());
            assert_eq!(
                store.append("s", hdr, b"x").expect("append").0,
                i as u64 + 1
            );
        }
        let mut d = Dedupe::new(60_000_000_000);
        d.rebuild_later(store.state().last_seq);
        let now = now_ns();
        assert_eq!(d.check("a", now, &store), Some(3));
        assert_eq!(d.check("b", now, &store), Some(2));
        assert_eq!(d.check("c", now, &store), None);
        // Expiry still works on the rebuilt entries.
        assert_eq!(d.check("a", now + 61_000_000_000, &store), None);
    }
}
