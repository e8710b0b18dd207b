//! The delivery pump: picks a target (a waiting pull request or the push subject),
//! the next message (a due redelivery first, then `last_per_subject` starts, then the
//! cursor), and sends it with its `$JS.ACK` reply subject, honouring `max_ack_pending`,
//! `max_bytes`, pause, rate limit, flow control and `replay_policy: original`.
//!
//! Owns nothing beyond the actor's state it is called with.

use bytes::Bytes;
use rill_protocol::HeaderMap;
use rill_protocol::jsapi::ReplayPolicy;
use tokio::time::Instant;
use tracing::warn;

use super::ack::ack_subject;
use super::actor::{Actor, status_msg};
use super::outbox::OutMsg;
use super::parked;
use super::pull::PullRequest;
use super::source::{ReadRange, Source, read_more};
use super::status;
use crate::jetstream::store::StoredMsg;

/// Messages read from the stream per hop.
const READ_BATCH: usize = 256;

/// Where a message to deliver came from (to put it back there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Redelivery,
    LastPerSubject,
    Cursor,
}

enum Target {
    Pull(PullRequest),
    Push,
}

impl<S: Source> Actor<S> {
    /// Delivers as much as the targets, limits and stream allow right now.
    pub(super) async fn pump(&mut self) {
        let now = Instant::now();
        let gathering = self.priority.gathering(now);
        while !self.is_paused()
            && !gathering
            && let Some(target) = self.next_target(now)
        {
            let Some((msg, origin)) = self.next_msg().await else {
                self.put_back_target(target, false);
                break;
            };
            if origin != Origin::Redelivery && self.replay_gate(&msg, now) {
                self.unread(msg, origin);
                self.put_back_target(target, false);
                break;
            }
            self.send(target, msg, origin, now);
        }
        for (reply, st) in self.waiting.finish_no_wait() {
            self.out.deliver(&reply, &status_msg(&reply, st, None));
        }
        self.sync_shared();
    }

    fn next_target(&mut self, now: Instant) -> Option<Target> {
        if let Some(p) = &self.push {
            let ok = p.may_send(now) && self.out.has_interest(&p.subject);
            return ok.then_some(Target::Push);
        }
        let (pending, ack_pending) = (self.num_pending(), self.tracker.num_ack_pending() as u64);
        let priority = &self.priority;
        let serve = |r: &PullRequest| priority.may_serve(r, pending, ack_pending);
        while let Some(req) = self.waiting.take(priority.by_priority(), serve) {
            if self.out.has_interest(&req.reply) {
                return Some(Target::Pull(req));
            }
        }
        None
    }

    fn put_back_target(&mut self, target: Target, served: bool) {
        if let Target::Pull(req) = target {
            self.waiting.requeue(req, served);
        }
    }

    /// `replay_policy: original`: true when `msg` is not due yet (sets the wake-up).
    fn replay_gate(&mut self, msg: &StoredMsg, now: Instant) -> bool {
        if self.cfg.replay_policy != ReplayPolicy::Original {
            return false;
        }
        let (ts0, at0) = *self.replay_anchor.get_or_insert((msg.ts, now));
        let offset = u64::try_from(msg.ts.saturating_sub(ts0)).unwrap_or(0);
        let due = at0 + std::time::Duration::from_nanos(offset);
        if due > now {
            self.replay_wake = Some(due);
            return true;
        }
        false
    }

    fn unread(&mut self, msg: StoredMsg, origin: Origin) {
        match origin {
            Origin::Redelivery => self.tracker.requeue(msg.seq),
            Origin::LastPerSubject => self.lps.push_front(msg.seq),
            Origin::Cursor => self.buf.push_front(msg),
        }
    }

    /// The next message: a due redelivery, a `last_per_subject` start, or the cursor's next.
    async fn next_msg(&mut self) -> Option<(StoredMsg, Origin)> {
        while let Some(seq) = self.tracker.pop_redelivery() {
            match self.src.read(move |s| s.load(seq).ok()).await {
                Ok(Some(m)) => return Some((m, Origin::Redelivery)),
                _ => {
                    if let Err(e) = self.tracker.forget(seq) {
                        warn!(error = %e, "consumer state update failed");
                    }
                }
            }
        }
        if !self.tracker.can_deliver() {
            return None;
        }
        while let Some(seq) = self.lps.pop_front() {
            if let Ok(Some(m)) = self.src.read(move |s| s.load(seq).ok()).await {
                return Some((m, Origin::LastPerSubject));
            }
        }
        if self.buf.is_empty() {
            self.refill().await;
        }
        self.buf.pop_front().map(|m| (m, Origin::Cursor))
    }

    async fn refill(&mut self) {
        let upto = *self.last_seq.borrow();
        if self.read_pos > upto {
            self.count = None;
            let from = parked::From {
                start: self.read_pos,
                filters: self.filters.clone(),
            };
            self.parked.park(&self.src, upto, from, READ_BATCH);
            return;
        }
        let (start, filters, prev) = (self.read_pos, self.filters.clone(), self.count);
        let read = self
            .src
            .read(move |s| {
                let range = ReadRange {
                    start,
                    upto,
                    filters: &filters,
                    max: READ_BATCH,
                    max_bytes: 0,
                };
                read_more(s, range, prev)
            })
            .await;
        if let Ok((msgs, after, count)) = read {
            self.buf.extend(msgs);
            self.read_pos = after.max(self.read_pos);
            self.count = Some(count);
        }
    }

    /// The answer of the read parked in `refill`: taken when the cursor is still where
    /// the read started and nothing else was read meanwhile.
    pub(super) fn parked_read(&mut self, answer: parked::Answer) {
        let here = parked::From {
            start: self.read_pos,
            filters: self.filters.clone(),
        };
        match answer.read {
            Ok((msgs, after, count)) if answer.from == here && self.buf.is_empty() => {
                self.buf.extend(msgs);
                self.read_pos = after.max(self.read_pos);
                self.count = Some(count);
            }
            Ok(_) => {}
            Err(_) => self.parked.failed(*self.last_seq.borrow()),
        }
    }

    fn build(&self, msg: &StoredMsg, reply: String) -> OutMsg {
        let (headers, payload) = if self.cfg.headers_only {
            let mut h = msg
                .headers
                .as_ref()
                .and_then(|b| HeaderMap::parse(b).ok())
                .unwrap_or_default();
            h.insert("Nats-Msg-Size", msg.payload.len().to_string());
            (Some(h.to_bytes()), Bytes::new())
        } else {
            (msg.headers.clone(), msg.payload.clone())
        };
        OutMsg {
            subject: msg.subject.clone(),
            reply: Some(Bytes::from(reply)),
            headers,
            payload,
        }
    }

    fn send(&mut self, target: Target, msg: StoredMsg, origin: Origin, now: Instant) {
        let meta = self.tracker.peek(msg.seq);
        let pending = self.num_pending();
        let reply = ack_subject(&self.stream, &self.name, meta, msg.ts, pending);
        let out = self.build(&msg, reply);
        let size = out.size();
        if let Target::Pull(req) = &target
            && req.bytes.is_some_and(|b| size as i64 > b)
        {
            let st = status::size_exceeds_max_bytes(req.batch, req.bytes_left());
            let inbox = req.reply.clone();
            self.out.deliver(&inbox, &status_msg(&inbox, st, None));
            self.unread(msg, origin);
            return;
        }
        if let Err(e) = self.tracker.on_deliver(msg.seq, now) {
            warn!(error = %e, "consumer state update failed");
        }
        if self.cfg.ack_policy == rill_protocol::jsapi::AckPolicy::None {
            self.note_acked(&[msg.seq]);
        }
        match target {
            Target::Pull(mut req) => {
                let (pin, event) = self.priority.serve(&mut req, now);
                if let Some(event) = event {
                    super::events::pin(&self.out, &self.stream, &self.name, &event);
                }
                let out = match pin {
                    Some(id) => with_pin_id(out, &id),
                    None => out,
                };
                self.out.deliver(&req.reply, &out);
                if req.delivered(size, now) {
                    self.waiting.requeue(req, true);
                }
            }
            Target::Push => self.send_push(&out, size, now),
        }
    }

    fn send_push(&mut self, out: &OutMsg, size: usize, now: Instant) {
        let Some(p) = self.push.as_mut() else { return };
        let subject = p.subject.clone();
        let fc = p.delivered(size, now);
        self.out.deliver(&subject, out);
        if let Some(fc) = fc {
            let m = status_msg(&subject, status::flow_control(), Some(Bytes::from(fc)));
            self.out.deliver(&subject, &m);
        }
    }
}

/// `msg` with the `Nats-Pin-Id` header of a `pinned_client` delivery.
fn with_pin_id(mut msg: OutMsg, id: &str) -> OutMsg {
    let mut h = msg
        .headers
        .as_ref()
        .and_then(|b| HeaderMap::parse(b).ok())
        .unwrap_or_default();
    h.insert("Nats-Pin-Id", id);
    msg.headers = Some(h.to_bytes());
    msg
}
