//! The stream core's side of fast batches: `StreamCore` takes a batch message, answers
//! its flow, gap and error replies, and releases acks held for the group commit (the
//! rules are the parent module's).

use bytes::Bytes;
use rill_protocol::jsapi::{ApiError, ErrorCode, PubAck};

use super::{Flow, Op, Order, Reply, gap, order, parse};
use crate::jetstream::store::{SyncPolicy, now_ns};
use crate::jetstream::stream::core::StreamCore;
impl StreamCore {
    /// Handles a message whose reply subject makes it part of a fast batch.
    pub(in crate::jetstream::stream) fn fast_publish(
        &mut self,
        reply: &Bytes,
        subject: &Bytes,
        headers: Option<&Bytes>,
        payload: &Bytes,
    ) {
        if !self.cfg.allow_batched {
            return self.answer(reply, Err(ErrorCode::BATCH_PUBLISH_DISABLED.error()));
        }
        let r = match parse(reply) {
            Ok(r) => r,
            Err(e) => return self.answer(reply, Err(e)),
        };
        match self.fast.open(&r, now_ns()) {
            Ok(Some(start)) => self.flow(reply, start),
            Ok(None) => {}
            Err(e) => return self.answer(reply, Err(e)),
        }
        if r.op == Op::Ping {
            return self.fast_ping(reply, &r);
        }
        let Some(b) = self.fast.open.get(r.id) else {
            return;
        };
        let (expected, gap_fail) = (b.last + 1, b.gap_fail);
        match order(r.seq, expected) {
            Order::Next => {}
            Order::Ahead(last_seq) if !gap_fail => self.flow(reply, gap(last_seq, r.seq)),
            Order::Ahead(last_seq) | Order::Behind(last_seq) => {
                self.flow(reply, gap(last_seq, r.seq));
                return self.fast_end(reply, r.id, expected - 1);
            }
        }
        if r.op == Op::CommitEob {
            return self.fast_end(reply, r.id, r.seq - 1);
        }
        let stored = self.ingest(subject, headers.map(|h| &h[..]), payload);
        if let Some(b) = self.fast.open.get_mut(r.id) {
            b.last = r.seq;
            if let Ok(ack) = stored.as_ref()
                && !ack.duplicate
            {
                b.stored = Some(ack.seq);
            }
        }
        let refused = stored
            .err()
            .filter(|e| self.fast_refused(reply, &r, gap_fail, e));
        if refused.is_some() && gap_fail {
            return;
        }
        if r.op == Op::Commit {
            let count = if refused.is_some() { r.seq - 1 } else { r.seq };
            return self.fast_end(reply, r.id, count);
        }
        let due = self.fast.flow_ack(r.id, r.seq);
        if let Some(ack) = due {
            self.flow(reply, ack);
        }
    }

    /// Answers a message the stream refused; true when the batch counts it as refused
    /// (a failed `Nats-Expected-Last-Msg-Id` gets the plain error and does not).
    /// In `fail` mode the batch ends.
    fn fast_refused(&mut self, reply: &Bytes, r: &Reply<'_>, gap_fail: bool, e: &ApiError) -> bool {
        if e.err_code == ErrorCode::STREAM_WRONG_LAST_MSG_ID.err_code {
            self.answer(reply, Err(e.clone()));
            return false;
        }
        if gap_fail && r.seq == 1 {
            self.fast.remove(r.id);
            self.answer(reply, Err(e.clone()));
            return true;
        }
        let error = e.clone();
        self.flow(reply, Flow::Err { seq: r.seq, error });
        if gap_fail {
            self.fast_end(reply, r.id, r.seq - 1);
        }
        true
    }

    /// A ping: the last flow ack again, after the gap up to the publisher's sequence
    /// when it is ahead (which ends a `fail` batch instead).
    fn fast_ping(&mut self, reply: &Bytes, r: &Reply<'_>) {
        let Some(b) = self.fast.open.get_mut(r.id) else {
            return;
        };
        let mut ack = Flow::Ack {
            seq: b.acked,
            msgs: b.flow,
        };
        if r.seq > b.last {
            let (expected, gap_fail) = (b.last + 1, b.gap_fail);
            b.last = r.seq;
            if let Some(due) = self.fast.flow_ack(r.id, r.seq) {
                ack = due;
            }
            self.flow(reply, gap(expected, r.seq + 1));
            if gap_fail {
                return self.fast_end(reply, r.id, expected - 1);
            }
        }
        self.flow(reply, ack);
    }

    /// Ends batch `id` with its PubAck counting `count` batch messages.
    fn fast_end(&mut self, reply: &Bytes, id: &str, count: u64) {
        let Some(b) = self.fast.remove(id) else {
            return;
        };
        let seq = b.stored.unwrap_or_else(|| self.store.state().last_seq);
        let ack = PubAck {
            stream: self.name.as_str().to_owned(),
            seq,
            domain: self.domain.clone(),
            batch: id.to_owned(),
            count,
            ..PubAck::default()
        };
        self.answer(reply, Ok(ack));
    }

    /// Sends a reply between PubAcks, or keeps it for after the sync when the stream
    /// syncs always and holds unsynced messages (or replies kept before it).
    fn flow(&mut self, reply: &Bytes, flow: Flow) {
        let waits = self.dirty && self.sync == SyncPolicy::Always;
        if waits || !self.fast.unsynced.is_empty() {
            self.fast.unsynced.push((reply.clone(), flow));
        } else {
            self.send_flow(reply, &flow);
        }
    }

    /// Sends the replies that waited for the sync (after it, before the PubAcks).
    pub(in crate::jetstream::stream) fn release_flows(&mut self) {
        for (reply, flow) in std::mem::take(&mut self.fast.unsynced) {
            self.send_flow(&reply, &flow);
        }
    }

    fn send_flow(&self, reply: &Bytes, flow: &Flow) {
        let body = serde_json::to_vec(flow).unwrap_or_default();
        self.send(reply, None, &Bytes::from(body));
    }
}
