//! Where atomic batches meet the stream: staging a batch's messages, the checks made on
//! the batch as a whole, and storing it. Split from the module root so that the stream
//! core can hold [`super::Batches`] without the two importing each other.

use std::collections::HashSet;

use bytes::Bytes;
use rill_protocol::headers::{HeaderMap, find};
use rill_protocol::jsapi::{ApiError, ErrorCode, PubAck};

use super::{
    BATCH_COMMIT, BATCH_SEQ, Commit, EXPECTED_LAST_MSG_ID, MAX_ID_LEN, MAX_SIZE, Staged, commit_of,
    incomplete, text,
};
use crate::jetstream::error::publish_error;
use crate::jetstream::store::now_ns;
use crate::jetstream::stream::core::StreamCore;
use crate::jetstream::stream::dedupe::MSG_ID;
use crate::jetstream::stream::ingest::{EXPECTED_LAST_SEQ, EXPECTED_LAST_SUBJ_SEQ};

impl StreamCore {
    /// Takes one message of batch `id`: `Ok(None)` while staged, the batch's PubAck
    /// once committed. Any error drops the batch.
    pub(in crate::jetstream::stream) fn stage(
        &mut self,
        id: String,
        subject: &Bytes,
        headers: &Bytes,
        payload: &Bytes,
    ) -> Result<Option<PubAck>, ApiError> {
        // nats-server refuses an oversized message before looking at its batch.
        if u64::try_from(self.cfg.max_msg_size)
            .is_ok_and(|max| (headers.len() + payload.len()) as u64 > max)
        {
            return Err(ErrorCode::STREAM_MESSAGE_EXCEEDS_MAXIMUM.error());
        }
        if !self.cfg.allow_atomic {
            return Err(ErrorCode::ATOMIC_PUBLISH_DISABLED.error());
        }
        if id.len() > MAX_ID_LEN {
            return Err(ErrorCode::ATOMIC_PUBLISH_INVALID_BATCH_ID.error());
        }
        let result = self.stage_checked(&id, subject, headers, payload);
        if !matches!(result, Ok(None)) {
            self.batches.remove(&id);
        }
        result
    }

    fn stage_checked(
        &mut self,
        id: &str,
        subject: &Bytes,
        headers: &Bytes,
        payload: &Bytes,
    ) -> Result<Option<PubAck>, ApiError> {
        let seq = find(headers, BATCH_SEQ)
            .and_then(|v| text(v).trim().parse::<u64>().ok())
            .ok_or_else(|| ErrorCode::ATOMIC_PUBLISH_MISSING_SEQ.error())?;
        if seq > MAX_SIZE {
            let size = MAX_SIZE;
            return Err(ErrorCode::ATOMIC_PUBLISH_TOO_LARGE_BATCH.with(&[("size", &size)]));
        }
        let commit = commit_of(headers)?;
        let now = now_ns();
        if seq == 1 && !self.batches.open.contains_key(id) {
            self.batches.insert(id, now)?;
        }
        let batch = self.batches.open.get_mut(id).ok_or_else(incomplete)?;
        if seq != batch.msgs.len() as u64 + 1 {
            return Err(incomplete());
        }
        if find(headers, EXPECTED_LAST_MSG_ID).is_some() {
            let header = EXPECTED_LAST_MSG_ID;
            return Err(
                ErrorCode::ATOMIC_PUBLISH_UNSUPPORTED_HEADER_BATCH.with(&[("header", &header)])
            );
        }
        batch.touched = now;
        if commit != Commit::EndOfBatch {
            batch.msgs.push(Staged {
                subject: subject.clone(),
                headers: headers.clone(),
                payload: payload.clone(),
            });
        }
        if commit == Commit::No {
            return Ok(None);
        }
        let mut msgs = self.batches.remove(id).map(|b| b.msgs).unwrap_or_default();
        let last = msgs.last_mut().ok_or_else(incomplete)?;
        if commit == Commit::EndOfBatch {
            let mut h = HeaderMap::parse(&last.headers).unwrap_or_default();
            h.append(BATCH_COMMIT, "1");
            last.headers = h.to_bytes();
        }
        self.commit_batch(id, &msgs).map(Some)
    }

    /// Stores a committed batch, all of it or none.
    fn commit_batch(&mut self, id: &str, msgs: &[Staged]) -> Result<PubAck, ApiError> {
        self.check_batch(msgs)?;
        let mut stored = Vec::with_capacity(msgs.len());
        let mut last = None;
        for m in msgs {
            match self.ingest(&m.subject, Some(&m.headers), &m.payload) {
                Ok(ack) => {
                    stored.push(ack.seq);
                    last = Some(ack);
                }
                Err(e) => {
                    // A check that depends on the batch's earlier messages failed: take
                    // them back.
                    for seq in stored {
                        let _ = self.store.remove(seq);
                    }
                    return Err(e);
                }
            }
        }
        let mut ack = last.ok_or_else(incomplete)?;
        ack.batch = id.to_owned();
        ack.count = msgs.len() as u64;
        Ok(ack)
    }

    /// The checks made on the batch as a whole before anything is stored (those that
    /// depend on the batch's earlier messages as if they were stored, and the plain
    /// header checks), so that a refused batch costs no sequence numbers.
    fn check_batch(&mut self, msgs: &[Staged]) -> Result<(), ApiError> {
        let mut ids = HashSet::new();
        let mut subjects = HashSet::new();
        let now = now_ns();
        let last = self.store.state().last_seq;
        for (i, m) in (0u64..).zip(msgs) {
            self.check_rollup(&m.headers)?;
            self.check_ttl(&m.headers)?;
            self.counter_value(text(&m.subject), Some(&m.headers), &m.payload)?;
            let before = last + i;
            if find(&m.headers, EXPECTED_LAST_SEQ)
                .is_some_and(|v| text(v).parse::<u64>().ok() != Some(before))
            {
                return Err(ErrorCode::STREAM_WRONG_LAST_SEQUENCE.with(&[("seq", &before)]));
            }
            if let Some(msg_id) = find(&m.headers, MSG_ID).map(text).filter(|s| !s.is_empty()) {
                let seen = self
                    .dedupe
                    .check(msg_id, now, self.store.as_ref())
                    .is_some();
                if seen || !ids.insert(msg_id.to_owned()) {
                    return Err(ErrorCode::ATOMIC_PUBLISH_CONTAINS_DUPLICATE_MESSAGE.error());
                }
            }
            let subject = m.subject.clone();
            if find(&m.headers, EXPECTED_LAST_SUBJ_SEQ).is_some() && subjects.contains(&subject) {
                return Err(ErrorCode::STREAM_WRONG_LAST_SEQUENCE_CONSTANT.error());
            }
            subjects.insert(subject);
        }
        let appends: Vec<(&str, usize, usize)> = msgs
            .iter()
            .map(|m| (text(&m.subject), m.headers.len(), m.payload.len()))
            .collect();
        self.store
            .check_appends(&appends)
            .map_err(|e| publish_error(&e))
    }
}
