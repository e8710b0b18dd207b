//! Subject delete markers (`subject_delete_marker_ttl`, ADR-43): when `max_age` or a
//! message's own `Nats-TTL` removes the last message of a subject, the stream stores
//! an empty marker on that subject so watchers (KV) see the removal.
//!
//! As nats-server 2.15 does: the marker carries `Nats-Marker-Reason: MaxAge`,
//! `Nats-TTL: <marker ttl>` and `Nats-Rollup: sub`, and expires after its TTL. No
//! marker is placed when the removed message is itself a marker or a KV delete/purge
//! (`KV-Operation`), nor for purges, message deletes or other limits. A `Nats-TTL`
//! shorter than the marker TTL is raised to it (the header is rewritten to whole
//! seconds), so the marker never outlives nothing.

use bytes::Bytes;
use rill_protocol::headers::{HeaderMap, find};
use rill_protocol::jsapi::Nanos;

use super::core::StreamCore;
use super::ttl::TTL_HEADER;

/// The header naming why a marker was placed.
pub(crate) const MARKER_REASON: &str = "Nats-Marker-Reason";
const KV_OPERATION: &str = "KV-Operation";

/// True when a stored message with these headers is a delete marker of some kind
/// (a subject delete marker, or a KV `DEL` / `PURGE`): its removal places no marker.
pub(crate) fn is_marker(hdrs: Option<&[u8]>) -> bool {
    hdrs.is_some_and(|h| find(h, MARKER_REASON).is_some() || find(h, KV_OPERATION).is_some())
}

/// The header block of a `MaxAge` marker that lives `ttl`.
pub(crate) fn marker_headers(ttl: Nanos) -> Bytes {
    let mut h = HeaderMap::new();
    h.append(MARKER_REASON, "MaxAge");
    h.append(TTL_HEADER, ttl.to_string());
    h.append("Nats-Rollup", "sub");
    h.to_bytes()
}

/// `hdrs` with `Nats-TTL` raised to `min` (whole seconds), when the header asks for
/// less (`ttl_ns`); `None` when it needs no change.
pub(crate) fn raise_ttl(hdrs: &[u8], ttl_ns: i64, min: Nanos) -> Option<Bytes> {
    if min.is_zero() || ttl_ns >= min.0 {
        return None;
    }
    let mut map = HeaderMap::parse(hdrs).ok()?;
    map.insert(TTL_HEADER, (min.0 / 1_000_000_000).to_string());
    Some(map.to_bytes())
}

impl StreamCore {
    /// The marker TTL, `None` when the stream places no markers.
    pub(super) fn marker_ttl(&self) -> Option<Nanos> {
        Some(self.cfg.subject_delete_marker_ttl).filter(|t| t.0 > 0)
    }

    /// Subjects of the messages `max_age` removes at `now` that may need a marker
    /// (read before the store expires them).
    pub(super) fn aged_subjects(&self, now: i64) -> Vec<String> {
        let max_age = self.cfg.max_age.0;
        if self.marker_ttl().is_none() || max_age <= 0 {
            return Vec::new();
        }
        let mut out = Vec::new();
        let mut seq = self.store.state().first_seq;
        while let Ok(m) = self.store.load_next(seq, ">") {
            if m.ts.saturating_add(max_age) > now {
                break;
            }
            if !is_marker(m.headers.as_deref()) {
                out.push(m.subject_str().to_owned());
            }
            seq = m.seq + 1;
        }
        out
    }

    /// Removes `seq` because its `Nats-TTL` ran out; returns its subject when a marker
    /// may be needed.
    pub(super) fn remove_expired(&mut self, seq: u64) -> Option<String> {
        let subject = self
            .marker_ttl()
            .and_then(|_| self.store.load(seq).ok())
            .filter(|m| !is_marker(m.headers.as_deref()))
            .map(|m| m.subject_str().to_owned());
        if self.store.remove(seq).is_err() {
            return None;
        }
        self.dirty = true;
        subject
    }

    /// Stores a marker on each of `subjects` that no longer holds a message, at `now`.
    pub(super) fn place_markers(&mut self, subjects: Vec<String>, now: i64) {
        let Some(ttl) = self.marker_ttl() else {
            return;
        };
        let hdrs = marker_headers(ttl);
        for subject in subjects {
            if self.store.subject_state(&subject).is_some() {
                continue;
            }
            match self.append_stored(&subject, Some(&hdrs), &[], now) {
                Ok((seq, ts)) => self.ttls.add(seq, ts, ttl.0),
                Err(e) => {
                    tracing::error!(stream = %self.name, error = %e, "delete marker failed");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_headers_as_nats_server() {
        let h = marker_headers(Nanos::from_secs(2));
        assert_eq!(
            &h[..],
            b"NATS/1.0\r\nNats-Marker-Reason: MaxAge\r\nNats-TTL: 2s\r\nNats-Rollup: sub\r\n\r\n"
        );
        assert!(is_marker(Some(&h)));
        assert!(is_marker(Some(b"NATS/1.0\r\nKV-Operation: PURGE\r\n\r\n")));
        assert!(!is_marker(Some(b"NATS/1.0\r\nNats-TTL: 1s\r\n\r\n")));
        assert!(!is_marker(None));
    }

    #[test]
    fn short_ttls_are_raised_to_the_marker_ttl() {
        let h = b"NATS/1.0\r\nNats-TTL: 1s\r\nNats-Rollup: sub\r\n\r\n";
        let raised = raise_ttl(h, 1_000_000_000, Nanos::from_secs(3));
        assert_eq!(
            raised.as_deref(),
            Some(&b"NATS/1.0\r\nNats-Rollup: sub\r\nNats-TTL: 3\r\n\r\n"[..])
        );
        assert_eq!(raise_ttl(h, 5_000_000_000, Nanos::from_secs(3)), None);
        assert_eq!(raise_ttl(h, 1_000_000_000, Nanos(0)), None);
    }
}
