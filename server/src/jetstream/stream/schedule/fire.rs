//! Where schedules meet the stream: the publish checks of a message that holds a schedule,
//! firing the due ones from the stream's timer, and rebuilding the index when the stream
//! opens. Split from the module root so that the stream core can hold [`super::Schedules`]
//! without the two importing each other.

use std::collections::HashMap;

use bytes::Bytes;
use rill_protocol::headers::{HeaderMap, find};
use rill_protocol::jsapi::{ApiError, ErrorCode};
use rill_protocol::subject::{has_wildcard, matches};

use super::spec::{self, SpecError};
use super::{
    FIRE_BATCH, NEXT, PURGE, ROLLUP, SCHEDULE_ROLLUP, SCHEDULE_TTL, SCHEDULER, SOURCE, Schedule,
    TARGET, TIME_ZONE, header, pattern,
};
use crate::jetstream::store::{StoreError, StoredMsg, StreamStore};
use crate::jetstream::stream::core::StreamCore;
use crate::jetstream::stream::ttl::{self, TTL_HEADER};

impl StreamCore {
    /// The schedule checks of a client's publish stored at `now` (see the module doc);
    /// the schedule's first due time when the message holds one, counted from `now`:
    /// a replica applying the publish later than its leader stored it schedules it
    /// for the same time (the leader's timer rounds then fire it on every replica).
    ///
    /// # Errors
    /// nats-server's `MESSAGE_SCHEDULES_*` errors.
    pub(in crate::jetstream::stream) fn check_schedule(
        &self,
        h: &[u8],
        subject: &str,
        now: i64,
    ) -> Result<Option<i64>, ApiError> {
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
        Ok(schedule.spec.next(now))
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
    pub(in crate::jetstream::stream) fn fire_schedules(&mut self, now: i64) {
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
        if let Err(e) = self.ingest_scheduled(schedule.target, &hdrs, &body, now) {
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
    pub(in crate::jetstream::stream) fn rebuild_schedules(&mut self) -> Result<(), StoreError> {
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
