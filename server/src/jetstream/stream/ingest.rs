//! Publishing into a stream: the `Nats-*` publish headers, the duplicate window,
//! roll-ups, interest retention on store, and the PubAck.
//!
//! Checks run in nats-server's order: sealed → header size (at most 65535 bytes,
//! `10097`) → duplicate `Nats-Msg-Id` → `Nats-Incr` (see `counter`) →
//! `Nats-Expected-Stream` → `Nats-Expected-Last-Sequence` →
//! `Nats-Expected-Last-Msg-Id` → `Nats-Expected-Last-Subject-Sequence` →
//! schedule headers (see `schedule`; a schedule is stored with `Nats-Rollup: sub`) →
//! `Nats-Rollup` permission/value → `Nats-TTL` (raised to the subject delete
//! marker TTL, see `markers`) → store (size, discard-new limits).

use bytes::Bytes;
use rill_protocol::headers::find;
use rill_protocol::jsapi::RetentionPolicy;
use rill_protocol::jsapi::{ApiError, ErrorCode, PubAck, PubAckResponse};

use super::core::StreamCore;
use super::counter;
use super::dedupe::MSG_ID;
use super::markers;
use super::schedule;
use super::ttl::{self, TTL_HEADER};
use crate::jetstream::error::publish_error;
use crate::jetstream::republish::Stored;
use crate::jetstream::store::{PurgeRequest, StoreError, now_ns};

const EXPECTED_STREAM: &str = "Nats-Expected-Stream";
pub(super) const EXPECTED_LAST_SEQ: &str = "Nats-Expected-Last-Sequence";
const EXPECTED_LAST_MSG_ID: &str = "Nats-Expected-Last-Msg-Id";
pub(super) const EXPECTED_LAST_SUBJ_SEQ: &str = "Nats-Expected-Last-Subject-Sequence";
const EXPECTED_LAST_SUBJ_SEQ_SUBJ: &str = "Nats-Expected-Last-Subject-Sequence-Subject";
const ROLLUP: &str = "Nats-Rollup";
/// nats-server's limit on a stored message's header block (`math.MaxUint16`).
pub(crate) const MAX_HEADER_LEN: usize = u16::MAX as usize;

fn text(v: &[u8]) -> &str {
    std::str::from_utf8(v).unwrap_or_default()
}

pub(super) enum Rollup {
    Subject,
    All,
}

/// What the header checks decided.
#[derive(Default)]
struct Checked {
    rollup: Option<Rollup>,
    /// The message's TTL (ns).
    ttl: Option<i64>,
    /// The header block to store instead of the published one.
    headers: Option<Bytes>,
    /// When the schedule the message holds fires first.
    schedule: Option<i64>,
}

/// Who a message to store comes from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Origin {
    Client,
    /// A firing of one of the stream's schedules, which alone may carry
    /// `Nats-Scheduler`.
    Scheduler,
}

impl StreamCore {
    /// Handles one message published on the stream's subjects; queues or sends the ack.
    /// Returns why it was refused, if it was (for a message trace's `js` event).
    pub(super) fn publish(
        &mut self,
        subject: &Bytes,
        reply: Option<Bytes>,
        headers: Option<&Bytes>,
        payload: &Bytes,
    ) -> Option<String> {
        if let Some(reply) = reply.as_ref().filter(|r| super::fast::is_fast(r)) {
            self.fast_publish(reply, subject, headers, payload);
            return None;
        }
        let result = match (super::batch::batch_id(headers), headers) {
            (Some(id), Some(h)) => match self.stage(id, subject, h, payload) {
                Ok(None) => {
                    self.answer_staged(reply);
                    return None;
                }
                Ok(Some(ack)) => Ok(ack),
                Err(e) => Err(e),
            },
            _ => self.ingest(subject, headers.map(|h| &h[..]), payload),
        };
        let refused = result.as_ref().err().map(|e| e.description.clone());
        if let Some(reply) = reply.filter(|r| !r.is_empty() && !self.cfg.no_ack) {
            self.answer(&reply, result);
        }
        refused
    }

    /// Sends a publish's PubAck or error to `reply`, after the batch's sync when the
    /// stream syncs every write.
    pub(super) fn answer(&mut self, reply: &Bytes, result: Result<PubAck, ApiError>) {
        let ack = match result {
            Ok(ack) => PubAckResponse { error: None, ack },
            Err(e) => PubAckResponse::err(self.name.clone(), e),
        };
        if self.dirty && self.sync == crate::jetstream::store::SyncPolicy::Always {
            self.pending.push((reply.clone(), ack));
        } else {
            let body = serde_json::to_vec(&ack).unwrap_or_default();
            self.send(reply, None, &Bytes::from(body));
        }
    }

    /// A staged batch message gets an empty reply.
    fn answer_staged(&self, reply: Option<Bytes>) {
        if let Some(reply) = reply.filter(|r| !r.is_empty() && !self.cfg.no_ack) {
            self.send(&reply, None, &Bytes::new());
        }
    }

    fn ack(&self, seq: u64, duplicate: bool) -> PubAck {
        PubAck {
            stream: self.name.as_str().to_owned(),
            seq,
            domain: self.domain.clone(),
            duplicate,
            ..PubAck::default()
        }
    }

    /// Checks and stores one published message.
    pub(super) fn ingest(
        &mut self,
        subject: &[u8],
        hdrs: Option<&[u8]>,
        payload: &[u8],
    ) -> Result<PubAck, ApiError> {
        self.ingest_from(Origin::Client, subject, hdrs, payload, now_ns())
    }

    /// Checks and stores the message a schedule fires at `now`.
    pub(super) fn ingest_scheduled(
        &mut self,
        subject: &str,
        hdrs: &[u8],
        payload: &[u8],
        now: i64,
    ) -> Result<PubAck, ApiError> {
        self.ingest_from(
            Origin::Scheduler,
            subject.as_bytes(),
            Some(hdrs),
            payload,
            now,
        )
    }

    /// A replicated stream's committed message (issue 20, see
    /// `jetstream::cluster::replica`): checked and stored as a publish, at the time its
    /// group's leader gave it (strictly later than every earlier entry of the group).
    /// One at or before the stream's last time was stored before a restart and is
    /// skipped (`None`).
    pub fn apply_replicated(
        &mut self,
        subject: &[u8],
        hdrs: Option<&[u8]>,
        payload: &[u8],
        ts: i64,
    ) -> Option<PubAckResponse> {
        if ts <= self.store.state().last_ts {
            return None;
        }
        Some(
            match self.ingest_from(Origin::Client, subject, hdrs, payload, ts) {
                Ok(ack) => PubAckResponse { error: None, ack },
                Err(e) => PubAckResponse::err(self.name.clone(), e),
            },
        )
    }

    fn ingest_from(
        &mut self,
        from: Origin,
        subject: &[u8],
        hdrs: Option<&[u8]>,
        payload: &[u8],
        now: i64,
    ) -> Result<PubAck, ApiError> {
        if self.cfg.sealed {
            return Err(ErrorCode::STREAM_SEALED.error());
        }
        if hdrs.is_some_and(|h| h.len() > MAX_HEADER_LEN) {
            return Err(ErrorCode::STREAM_HEADER_EXCEEDS_MAXIMUM.error());
        }
        let subject =
            std::str::from_utf8(subject).map_err(|_| publish_error(&StoreError::InvalidSubject))?;
        let stored_subject = self.rewrites.stored_subject(subject);
        let subject = stored_subject.as_ref();
        let msg_id = hdrs
            .and_then(|h| find(h, MSG_ID))
            .map(text)
            .filter(|s| !s.is_empty());
        if let Some(seq) = msg_id.and_then(|id| self.dedupe.check(id, now, self.store.as_ref())) {
            return Ok(self.ack(seq, true));
        }
        let counter = self.counter_value(subject, hdrs, payload)?;
        let counted = counter.as_ref().map(|c| counter::body(&c.value));
        let payload = counted.as_deref().unwrap_or(payload);
        let checked = self.check_headers(hdrs, subject, from, now)?;
        let hdrs = checked.headers.as_deref().or(hdrs);
        let carried = counter.as_ref().and_then(|c| c.headers(hdrs));
        let hdrs = carried.as_deref().or(hdrs);
        if self.account.exhausted() {
            return Err(ErrorCode::INSUFFICIENT_RESOURCES.error());
        }
        let (seq, ts) = self
            .append_stored(subject, hdrs, payload, now)
            .map_err(|e| publish_error(&e))?;
        self.last_msg_id.set(msg_id.unwrap_or_default());
        if let Some(id) = msg_id {
            self.dedupe.insert(id.to_owned(), seq, ts);
        }
        if let Some(ns) = checked.ttl {
            self.ttls.add(seq, ts, ns);
        }
        if let Some(at) = checked.schedule {
            self.schedules.add(seq, at);
        }
        self.apply_rollup(checked.rollup, subject);
        if self.cfg.retention == RetentionPolicy::Interest && !self.has_interest_in(subject) {
            let _ = self.store.remove(seq);
        }
        let mut ack = self.ack(seq, false);
        ack.val = counter.map(|c| c.value.to_string()).unwrap_or_default();
        Ok(ack)
    }

    /// The `Nats-Expected-*`, schedule, `Nats-Rollup` and `Nats-TTL` checks of a
    /// message stored at `now`: the roll-up, the TTL, the schedule and, when the block
    /// changes (a schedule's roll-up, a TTL raised to the delete marker TTL), the
    /// headers to store.
    fn check_headers(
        &self,
        hdrs: Option<&[u8]>,
        subject: &str,
        from: Origin,
        now: i64,
    ) -> Result<Checked, ApiError> {
        let Some(h) = hdrs else {
            return Ok(Checked::default());
        };
        self.check_expected(h, subject)?;
        let schedule = match from {
            Origin::Client => self.check_schedule(h, subject, now)?,
            Origin::Scheduler => None,
        };
        let mut rollup = self.check_rollup(h)?;
        let ttl = self.check_ttl(h)?;
        let mut block = None;
        if schedule.is_some() {
            block = Some(schedule::with_subject_rollup(h));
            rollup = Some(Rollup::Subject);
        }
        let current = block.clone();
        let raised = self.marker_ttl().zip(ttl).and_then(|(min, ns)| {
            let h = current.as_deref().unwrap_or(h);
            Some((markers::raise_ttl(h, ns, min)?, min.0))
        });
        let (ttl, headers) = match raised {
            Some((raised, ns)) => (Some(ns), Some(raised)),
            None => (ttl, block),
        };
        Ok(Checked {
            rollup,
            ttl,
            headers,
            schedule,
        })
    }

    /// Appends a message stored at `ts` (published, mirrored or sourced) and queues its
    /// `republish` copy; the one place a stream's store grows.
    pub(super) fn append_stored(
        &mut self,
        subject: &str,
        hdrs: Option<&[u8]>,
        payload: &[u8],
        ts: i64,
    ) -> Result<(u64, i64), StoreError> {
        let last_seq = self
            .rewrites
            .republishes(subject)
            .then(|| self.last_subject_seq(subject));
        let (seq, ts) = self.store.append_at(subject, hdrs, payload, ts)?;
        self.dirty = true;
        if let Some(last_seq) = last_seq {
            self.rewrites.stored(&Stored {
                stream: &self.name,
                subject,
                seq,
                ts,
                last_seq,
                headers: hdrs,
                payload,
            });
        }
        Ok((seq, ts))
    }

    fn check_expected(&self, h: &[u8], subject: &str) -> Result<(), ApiError> {
        if find(h, EXPECTED_STREAM).is_some_and(|s| text(s) != self.name.as_str()) {
            return Err(ErrorCode::STREAM_NOT_MATCH.error());
        }
        let last = self.store.state().last_seq;
        if find(h, EXPECTED_LAST_SEQ).is_some_and(|v| text(v).parse::<u64>().ok() != Some(last)) {
            return Err(ErrorCode::STREAM_WRONG_LAST_SEQUENCE.with(&[("seq", &last)]));
        }
        if let Some(v) = find(h, EXPECTED_LAST_MSG_ID) {
            let id = self.last_msg_id.get(self.store.as_ref());
            if text(v) != id {
                return Err(ErrorCode::STREAM_WRONG_LAST_MSG_ID.with(&[("id", &id)]));
            }
        }
        if let Some(v) = find(h, EXPECTED_LAST_SUBJ_SEQ) {
            let subj = find(h, EXPECTED_LAST_SUBJ_SEQ_SUBJ).map_or(subject, text);
            let current = self.last_subject_seq(subj);
            if text(v).parse::<u64>().ok() != Some(current) {
                return Err(ErrorCode::STREAM_WRONG_LAST_SEQUENCE.with(&[("seq", &current)]));
            }
        }
        Ok(())
    }

    fn last_subject_seq(&self, subject: &str) -> u64 {
        if rill_protocol::subject::has_wildcard(subject) {
            return self.store.load_last(subject).map_or(0, |m| m.seq);
        }
        self.store.subject_state(subject).map_or(0, |s| s.last)
    }

    /// `Nats-TTL`: nanoseconds to live, `None` without the header or for `never`.
    pub(super) fn check_ttl(&self, h: &[u8]) -> Result<Option<i64>, ApiError> {
        let Some(v) = find(h, TTL_HEADER) else {
            return Ok(None);
        };
        if !self.cfg.allow_msg_ttl {
            return Err(ErrorCode::MESSAGE_TTL_DISABLED.error());
        }
        ttl::parse(text(v)).map_err(|()| ErrorCode::MESSAGE_TTL_INVALID.error())
    }

    pub(super) fn check_rollup(&self, h: &[u8]) -> Result<Option<Rollup>, ApiError> {
        let Some(v) = find(h, ROLLUP) else {
            return Ok(None);
        };
        if !self.cfg.allow_rollup_hdrs {
            return Err(ErrorCode::STREAM_ROLLUP_FAILED.err("rollup not permitted"));
        }
        match text(v) {
            "sub" => Ok(Some(Rollup::Subject)),
            "all" => Ok(Some(Rollup::All)),
            other => {
                Err(ErrorCode::STREAM_ROLLUP_FAILED.err(format!("rollup value invalid: {other:?}")))
            }
        }
    }

    fn apply_rollup(&mut self, rollup: Option<Rollup>, subject: &str) {
        let filter = match rollup {
            None => return,
            Some(Rollup::Subject) => Some(subject.to_owned()),
            Some(Rollup::All) => None,
        };
        let req = PurgeRequest {
            filter,
            seq: None,
            keep: Some(1),
        };
        if let Err(e) = self.store.purge(&req) {
            tracing::error!(stream = %self.name, error = %e, "rollup purge failed");
        }
    }
}
