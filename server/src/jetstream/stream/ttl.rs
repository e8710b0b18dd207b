//! Per-message TTL (`allow_msg_ttl` streams, `Nats-TTL` header): deadlines of the
//! messages that carry one, removed by the stream's actor's timer.
//!
//! The schedule lives in memory; on open it is rebuilt from the stored messages'
//! headers (only for streams with `allow_msg_ttl`). Subject delete markers placed
//! when a TTL removes a subject's last message live in `markers`.

use std::collections::BTreeMap;

use rill_protocol::headers::find;

use crate::jetstream::store::{StoreError, StreamStore};

/// The publish header carrying a message's TTL.
pub(crate) const TTL_HEADER: &str = "Nats-TTL";

const SECOND: i64 = 1_000_000_000;

/// Parses a `Nats-TTL` value: whole seconds, a Go duration (`1m30s`, `1500ms`) or
/// `never`. Returns nanoseconds, `None` for "never expires". Like nats-server, a
/// TTL under one second is invalid.
///
/// # Errors
/// `Err(())` for anything else (nats-server answers `invalid per-message TTL`).
pub(crate) fn parse(value: &str) -> Result<Option<i64>, ()> {
    let v = value.trim();
    if v == "never" || v == "-1" {
        return Ok(None);
    }
    if let Ok(secs) = v.parse::<i64>() {
        return if secs > 0 {
            Ok(Some(secs.saturating_mul(1_000_000_000)))
        } else {
            Err(())
        };
    }
    let mut total: i64 = 0;
    let mut rest = v;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or(())?;
        let n: f64 = rest[..digits].parse().map_err(|_| ())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(()),
        };
        total = total.saturating_add((n * scale) as i64);
        rest = &rest[unit_len..];
    }
    if total >= SECOND {
        Ok(Some(total))
    } else {
        Err(())
    }
}

/// Deadlines (ns since the epoch) → sequences.
#[derive(Debug, Default)]
pub(crate) struct TtlSchedule {
    due: BTreeMap<i64, Vec<u64>>,
}

impl TtlSchedule {
    /// Schedules `seq` (stored at `ts`) to expire `ttl_ns` later.
    pub(crate) fn add(&mut self, seq: u64, ts: i64, ttl_ns: i64) {
        self.due
            .entry(ts.saturating_add(ttl_ns))
            .or_default()
            .push(seq);
    }

    /// The earliest deadline.
    pub(crate) fn next(&self) -> Option<i64> {
        self.due.keys().next().copied()
    }

    /// Removes and returns every sequence due at `now`.
    pub(crate) fn take_due(&mut self, now: i64) -> Vec<u64> {
        let later = self.due.split_off(&now.saturating_add(1));
        std::mem::replace(&mut self.due, later)
            .into_values()
            .flatten()
            .collect()
    }

    /// Rebuilds the schedule from every stored message's `Nats-TTL` header.
    ///
    /// # Errors
    /// Store read errors.
    pub(crate) fn rebuild(&mut self, store: &dyn StreamStore) -> Result<(), StoreError> {
        let mut seq = store.state().first_seq;
        loop {
            let m = match store.load_next(seq, ">") {
                Ok(m) => m,
                Err(StoreError::NotFound) => return Ok(()),
                Err(e) => return Err(e),
            };
            let ttl = m.headers.as_deref().and_then(|h| find(h, TTL_HEADER));
            if let Some(Ok(Some(ns))) =
                ttl.map(|v| parse(std::str::from_utf8(v).unwrap_or_default()))
            {
                self.add(m.seq, m.ts, ns);
            }
            seq = m.seq + 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_seconds_durations_and_never() {
        assert_eq!(parse("5"), Ok(Some(5_000_000_000)));
        assert_eq!(parse("1m30s"), Ok(Some(90_000_000_000)));
        assert_eq!(parse("1500ms"), Ok(Some(1_500_000_000)));
        assert_eq!(parse("500ms"), Err(()));
        assert_eq!(parse("never"), Ok(None));
        assert_eq!(parse("0"), Err(()));
        assert_eq!(parse("soon"), Err(()));
    }

    #[test]
    fn takes_only_due_entries() {
        let mut s = TtlSchedule::default();
        s.add(1, 10, 5);
        s.add(2, 10, 50);
        assert_eq!(s.next(), Some(15));
        assert_eq!(s.take_due(20), [1]);
        assert_eq!(s.next(), Some(60));
    }
}
