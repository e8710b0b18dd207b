//! Message schedules (`allow_msg_schedules`, ADR-51): a stored message with a
//! `Nats-Schedule` header makes the stream publish its body into
//! `Nats-Schedule-Target` (a subject of the same stream) on that schedule.
//!
//! A schedule is an ordinary stored message, kept one per subject (it is stored with
//! `Nats-Rollup: sub`), so schedules survive restarts with the stream. The stream
//! keeps only a time-ordered index in memory ([`Schedules`]: one `(due, sequence)`
//! entry per schedule, no task or timer each), woken through the stream's `on_timer`.
//! A firing loads the schedule message again: one that was replaced, deleted, purged
//! or expired meanwhile is simply gone from the store and dropped from the index.
//!
//! A firing stores the schedule's body (or, with `Nats-Schedule-Source`, the last
//! message of that subject, nothing but headers when there is none) on the target
//! with every non-`Nats-` header of it, plus `Nats-Scheduler: <schedule subject>`,
//! `Nats-Schedule-Next: <next time>` (`purge` for an `@at`, whose schedule message is
//! then removed), `Nats-TTL` from `Nats-Schedule-TTL` and `Nats-Rollup: sub` from
//! `Nats-Schedule-Rollup`. After a restart the index is rebuilt from the stored
//! messages: a schedule continues at the `Nats-Schedule-Next` of its last firing, so
//! each period fires once even across a restart; periods missed while the server was
//! down fire once, at once, as nats-server does.
//!
//! Publish checks, in nats-server's order and with its errors: `Nats-Scheduler` /
//! `Nats-Schedule-Next` from a client `10212`; no `allow_msg_schedules` `10188`;
//! time zone `10223`; pattern `10189` (see `spec`); `Nats-Schedule-TTL` `10191`
//! (`10166` without `allow_msg_ttl`); target (missing, a wildcard, the schedule's own
//! subject or outside the stream) `10190`; `Nats-Schedule-Rollup` or `Nats-Rollup`
//! other than `sub` `10192`; source (a wildcard, the target, the schedule's subject or
//! outside the stream) `10203`.

mod spec;

use std::collections::{BTreeSet, HashMap};

use bytes::Bytes;
use rill_protocol::headers::{HeaderMap, find};
use rill_protocol::jsapi::{ApiError, ErrorCode};
use rill_protocol::subject::{has_wildcard, matches};

use super::core::StreamCore;
use super::ttl::{self, TTL_HEADER};
use crate::jetstream::store::{StoreError, StoredMsg, StreamStore, now_ns};
use spec::{Spec, SpecError};

/// The schedule pattern.
pub(crate) const SCHEDULE: &str = "Nats-Schedule";
const TARGET: &str = "Nats-Schedule-Target";
const SOURCE: &str = "Nats-Schedule-Source";
const SCHEDULE_TTL: &str = "Nats-Schedule-TTL";
const TIME_ZONE: &str = "Nats-Schedule-Time-Zone";
const SCHEDULE_ROLLUP: &str = "Nats-Schedule-Rollup";
/// On a firing: the subject of the schedule that made it.
pub(crate) const SCHEDULER: &str = "Nats-Scheduler";
/// On a firing: when the schedule fires next, or [`PURGE`].
pub(crate) const NEXT: &str = "Nats-Schedule-Next";
const PURGE: &str = "purge";
const ROLLUP: &str = "Nats-Rollup";

/// Most schedules fired in one timer round, so a burst that falls due together does
/// not hold the stream's other work back; the rest follow in the next round.
const FIRE_BATCH: usize = 1024;

/// Due times (ns since the epoch) of the stream's schedules, earliest first.
#[derive(Debug, Default)]
pub(crate) struct Schedules {
    due: BTreeSet<(i64, u64)>,
}

impl Schedules {
    /// Schedules message `seq` to fire at `at`.
    pub(crate) fn add(&mut self, seq: u64, at: i64) {
        self.due.insert((at, seq));
    }

    /// The earliest due time.
    pub(crate) fn next(&self) -> Option<i64> {
        self.due.first().map(|&(at, _)| at)
    }

    /// Takes up to `limit` schedules due at `now`, earliest first.
    fn take_due(&mut self, now: i64, limit: usize) -> Vec<u64> {
        let mut out = Vec::new();
        while out.len() < limit {
            match self.due.first() {
                Some(&(at, _)) if at <= now => {}
                _ => break,
            }
            if let Some((_, seq)) = self.due.pop_first() {
                out.push(seq);
            }
        }
        out
    }
}

/// A schedule as its message's headers give it.
struct Schedule<'a> {
    spec: Spec,
    target: &'a str,
    source: Option<&'a str>,
    ttl: Option<&'a str>,
    rollup: bool,
}

fn text(v: &[u8]) -> &str {
    std::str::from_utf8(v).unwrap_or_default()
}

fn header<'a>(h: &'a [u8], name: &str) -> Option<&'a str> {
    find(h, name).map(text)
}

/// A schedule's header block as stored: with `Nats-Rollup: sub`, so one schedule is
/// kept per subject.
pub(crate) fn with_subject_rollup(h: &[u8]) -> Bytes {
    if find(h, ROLLUP).is_some() {
        return Bytes::copy_from_slice(h);
    }
    let mut map = HeaderMap::parse(h).unwrap_or_default();
    map.append(ROLLUP, "sub");
    map.to_bytes()
}

/// The pattern of a message that holds a schedule (`None`: an ordinary message).
fn pattern(h: &[u8]) -> Option<&str> {
    header(h, SCHEDULE).filter(|p| !p.is_empty())
}

impl StreamCore {
    /// The schedule checks of a client's publish (see the module doc); the schedule's
    /// first due time when the message holds one.
    ///
    /// # Errors
    /// nats-server's `MESSAGE_SCHEDULES_*` errors.
    pub(super) fn check_schedule(&self, h: &[u8], subject: &str) -> Result<Option<i64>, ApiError> {
        if find(h, SCHEDULER).is_some() || find(h, NEXT).is_some() {
            return Err(ErrorCode::MESSAGE_SCHEDULES_SCHEDULER_INVALID.error());
        }
        if pattern(h).is_none() {
            return Ok(None);
        }
        if !self.cfg.allow_msg_schedules {
            return Err(ErrorCode::MESSAGE_SCHEDULES_DISABLED.error());
        }
        let schedule = self.read_schedule(h, subject)?;
        Ok(schedule.spec.next(now_ns()))
    }

    /// Parses and checks the schedule a message's headers hold.
    fn read_schedule<'a>(&self, h: &'a [u8], subject: &str) -> Result<Schedule<'a>, ApiError> {
        let spec = spec::parse(pattern(h).unwrap_or_default(), header(h, TIME_ZONE)).map_err(
            |e| match e {
                SpecError::Pattern => ErrorCode::MESSAGE_SCHEDULES_PATTERN_INVALID.error(),
                SpecError::TimeZone => ErrorCode::MESSAGE_SCHEDULES_TIME_ZONE_INVALID.error(),
            },
        )?;
        let ttl = header(h, SCHEDULE_TTL);
        if let Some(t) = ttl {
            ttl::parse(t).map_err(|()| ErrorCode::MESSAGE_SCHEDULES_TTL_INVALID.error())?;
            if !self.cfg.allow_msg_ttl {
                return Err(ErrorCode::MESSAGE_TTL_DISABLED.error());
            }
        }
        let target = header(h, TARGET).unwrap_or_default();
        if !self.schedulable(target) || target == subject {
            return Err(ErrorCode::MESSAGE_SCHEDULES_TARGET_INVALID.error());
        }
        let rollup = header(h, SCHEDULE_ROLLUP);
        if [rollup, header(h, ROLLUP)]
            .iter()
            .any(|r| r.is_some_and(|r| r != "sub"))
        {
            return Err(ErrorCode::MESSAGE_SCHEDULES_ROLLUP_INVALID.error());
        }
        let source = header(h, SOURCE);
        if source.is_some_and(|s| !self.schedulable(s) || s == target || s == subject) {
            return Err(ErrorCode::MESSAGE_SCHEDULES_SOURCE_INVALID.error());
        }
        Ok(Schedule {
            spec,
            target,
            source,
            ttl,
            rollup: rollup.is_some(),
        })
    }

    /// A literal subject of this stream.
    fn schedulable(&self, subject: &str) -> bool {
        !subject.is_empty()
            && !has_wildcard(subject)
            && self.cfg.subjects.iter().any(|f| matches(f, subject))
    }

    /// Fires the schedules due at `now` (at most [`FIRE_BATCH`] of them).
    pub(super) fn fire_schedules(&mut self, now: i64) {
        for seq in self.schedules.take_due(now, FIRE_BATCH) {
            self.fire(seq, now);
        }
    }

    fn fire(&mut self, seq: u64, now: i64) {
        let Ok(m) = self.store.load(seq) else {
            return; // replaced, deleted, purged or expired
        };
        let Some(h) = m.headers.clone() else {
            return;
        };
        let schedule = match self.read_schedule(&h, m.subject_str()) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(stream = %self.name, seq, error = %e, "schedule no longer valid; dropped");
                return;
            }
        };
        let next = (!schedule.spec.once())
            .then(|| schedule.spec.next(now))
            .flatten();
        let (hdrs, body) = self.firing(&m, &schedule, next);
        if let Err(e) = self.ingest_scheduled(schedule.target, &hdrs, &body) {
            tracing::warn!(stream = %self.name, seq, error = %e, "scheduled message refused");
        }
        match next {
            Some(at) => self.schedules.add(seq, at),
            None => self.remove_schedule(seq),
        }
    }

    /// The headers and body a firing of `m` stores (see the module doc).
    fn firing(&self, m: &StoredMsg, s: &Schedule<'_>, next: Option<i64>) -> (Bytes, Bytes) {
        let (base, body) = match s.source {
            Some(source) => match self.store.load_last(source) {
                Ok(src) => (src.headers, src.payload),
                Err(_) => (None, Bytes::new()),
            },
            None => (m.headers.clone(), m.payload.clone()),
        };
        let mut out = HeaderMap::new();
        let kept = base.as_deref().and_then(|h| HeaderMap::parse(h).ok());
        for (k, v) in kept.iter().flat_map(HeaderMap::iter) {
            if !k.starts_with("Nats-") {
                out.append(k, v);
            }
        }
        out.append(SCHEDULER, m.subject_str());
        let next = next.map_or_else(|| PURGE.to_owned(), |at| s.spec.format_next(at));
        out.append(NEXT, next);
        if let Some(ttl) = s.ttl {
            out.append(TTL_HEADER, ttl);
        }
        if s.rollup {
            out.append(ROLLUP, "sub");
        }
        (out.to_bytes(), body)
    }

    /// A fired `@at` is done: its schedule message goes.
    fn remove_schedule(&mut self, seq: u64) {
        if self.store.remove(seq).is_ok() {
            self.dirty = true;
        }
    }

    /// Rebuilds the index from the stored messages (see the module doc).
    ///
    /// # Errors
    /// Store read errors.
    pub(super) fn rebuild_schedules(&mut self) -> Result<(), StoreError> {
        let (held, fired) = scan(self.store.as_ref())?;
        for (subject, (seq, ts)) in held {
            let Ok(m) = self.store.load(seq) else {
                continue;
            };
            let h = m.headers.clone().unwrap_or_default();
            let Ok(schedule) = self.read_schedule(&h, &subject) else {
                continue;
            };
            let resumed = fired.get(&subject).filter(|(firing, _)| *firing > seq);
            let due = match resumed.map(|(_, next)| next.as_str()) {
                Some(PURGE) => {
                    self.remove_schedule(seq); // fired, stopped before it was removed
                    continue;
                }
                Some(next) => spec::parse_next(next).or_else(|| schedule.spec.next(ts)),
                None => schedule.spec.next(ts),
            };
            if let Some(at) = due {
                self.schedules.add(seq, at);
            }
        }
        Ok(())
    }
}

/// What one pass over the store finds: the schedule held on each subject (sequence,
/// stored time) and each schedule's last firing (sequence, `Nats-Schedule-Next`).
type Scan = (HashMap<String, (u64, i64)>, HashMap<String, (u64, String)>);

fn scan(store: &dyn StreamStore) -> Result<Scan, StoreError> {
    let (mut held, mut fired) = (HashMap::new(), HashMap::new());
    let mut seq = store.state().first_seq;
    loop {
        let m = match store.load_next(seq, ">") {
            Ok(m) => m,
            Err(StoreError::NotFound) => return Ok((held, fired)),
            Err(e) => return Err(e),
        };
        seq = m.seq + 1;
        let Some(h) = m.headers.as_deref() else {
            continue;
        };
        if pattern(h).is_some() {
            held.insert(m.subject_str().to_owned(), (m.seq, m.ts));
        } else if let Some(by) = header(h, SCHEDULER) {
            let next = header(h, NEXT).unwrap_or_default().to_owned();
            fired.insert(by.to_owned(), (m.seq, next));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_due_schedules_in_time_order_up_to_the_limit() {
        let mut s = Schedules::default();
        s.add(7, 30);
        s.add(3, 10);
        s.add(5, 10);
        s.add(9, 99);
        assert_eq!(s.next(), Some(10));
        assert_eq!(s.take_due(30, 2), [3, 5]);
        assert_eq!(s.take_due(30, 10), [7]);
        assert_eq!(s.next(), Some(99));
        assert!(s.take_due(50, 10).is_empty());
    }
}
