//! Pull consumers: the queue of waiting `CONSUMER.MSG.NEXT` requests with their batch,
//! byte budget, expiry, `no_wait` and idle heartbeats, the `400` checks of the request
//! itself and the `409` checks against the consumer's `max_waiting` / `max_batch` /
//! `max_expires` / `max_bytes`.
//!
//! Owns the waiting requests. Requests are served round-robin, one message at a
//! time, so several workers share a busy consumer fairly.
//!
//! As nats-server 2.15.1 (each checked over the wire): a body that is not valid JSON, or
//! a number that does not fit (`batch` = 2^64), gets `400 Bad Request - <why>` instead
//! of being read as batch 1; an idle heartbeat above half the expiry (or without one)
//! gets `400 Bad Request - heartbeat value too large` at once; the priority-group fields
//! are checked by `priority` (the actor asks both). `no_wait` with `expires` waits for the first message
//! until it expires (then `408`), and ends with `404` once nothing more is pending.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use rill_protocol::jsapi::{ConsumerConfig, NextRequest};
use tokio::time::Instant;

use super::status;

/// One waiting pull request.
#[derive(Debug, Clone)]
pub(crate) struct PullRequest {
    /// Inbox the messages go to.
    pub reply: Bytes,
    /// Messages still wanted.
    pub batch: i64,
    /// Bytes still allowed (`None` = no byte limit).
    pub bytes: Option<i64>,
    /// When it expires.
    pub expires: Option<Instant>,
    /// Answer `404` instead of waiting.
    pub no_wait: bool,
    /// Heartbeat interval.
    pub heartbeat: Option<Duration>,
    /// Next heartbeat due.
    pub next_hb: Option<Instant>,
    /// `no_wait` with `expires`: waits for a first message (until it expires) before
    /// `no_wait` applies.
    pub waits_for_first: bool,
    /// Priority group (`group`).
    pub group: String,
    /// `pinned_client`: the pin id it carries (set once it is pinned).
    pub pin_id: String,
    /// `overflow`: served only with this many messages pending (0 = always).
    pub min_pending: u64,
    /// `overflow`: served only with this many messages awaiting ack (0 = always).
    pub min_ack_pending: u64,
    /// `prioritized`: 0 (first) to 9.
    pub priority: i64,
}

impl PullRequest {
    /// Builds a request from its parsed body, received at `now`.
    pub(crate) fn new(reply: Bytes, req: &NextRequest, now: Instant) -> Self {
        let heartbeat = req.idle_heartbeat.to_duration().filter(|d| !d.is_zero());
        Self {
            reply,
            batch: req.batch.max(1),
            bytes: (req.max_bytes > 0).then_some(req.max_bytes),
            expires: req
                .expires
                .to_duration()
                .filter(|d| !d.is_zero())
                .map(|d| now + d),
            no_wait: req.no_wait,
            heartbeat,
            next_hb: heartbeat.map(|h| now + h),
            waits_for_first: req.no_wait && !req.expires.is_zero(),
            group: req.group.clone(),
            pin_id: req.id.clone(),
            min_pending: u64::try_from(req.min_pending).unwrap_or(0),
            min_ack_pending: u64::try_from(req.min_ack_pending).unwrap_or(0),
            priority: req.priority,
        }
    }

    /// Counts a message of `size` bytes sent to it at `now`; true while it wants more.
    pub(crate) fn delivered(&mut self, size: usize, now: Instant) -> bool {
        self.batch -= 1;
        if let Some(b) = self.bytes.as_mut() {
            *b -= i64::try_from(size).unwrap_or(i64::MAX);
        }
        if let (Some(h), Some(_)) = (self.heartbeat, self.next_hb) {
            self.next_hb = Some(now + h);
        }
        self.waits_for_first = false;
        self.batch > 0 && self.bytes.is_none_or(|b| b > 0)
    }

    /// The `Nats-Pending-Bytes` figure.
    pub(crate) fn bytes_left(&self) -> i64 {
        self.bytes.unwrap_or(0)
    }
}

/// Checks a request against the consumer's limits; `Err` is the `400` or `409` to answer.
pub(crate) fn check(cfg: &ConsumerConfig, req: &NextRequest) -> Result<(), Bytes> {
    if cfg.is_push() {
        return Err(status::conflict("Consumer is push based"));
    }
    let hb = req.idle_heartbeat.0;
    if hb > 0 && (req.expires.0 <= 0 || hb > req.expires.0 / 2) {
        return Err(status::bad_request("heartbeat value too large"));
    }
    if cfg.max_batch > 0 && req.batch > cfg.max_batch {
        let text = format!("Exceeded MaxRequestBatch of {}", cfg.max_batch);
        return Err(status::conflict(&text));
    }
    if !cfg.max_expires.is_zero() && req.expires > cfg.max_expires {
        let text = format!("Exceeded MaxRequestExpires of {}", cfg.max_expires);
        return Err(status::conflict(&text));
    }
    if cfg.max_bytes > 0 && req.max_bytes > cfg.max_bytes {
        let text = format!("Exceeded MaxRequestMaxBytes of {}", cfg.max_bytes);
        return Err(status::conflict(&text));
    }
    Ok(())
}

/// The waiting requests of one pull consumer.
#[derive(Debug, Default)]
pub(crate) struct WaitQueue {
    reqs: VecDeque<PullRequest>,
    max_waiting: usize,
}

/// A status to send to a request's inbox.
pub(crate) type Reply = (Bytes, Bytes);

impl WaitQueue {
    /// An empty queue holding at most `max_waiting` requests.
    pub(crate) fn new(max_waiting: i64) -> Self {
        Self {
            reqs: VecDeque::new(),
            max_waiting: usize::try_from(max_waiting).unwrap_or(0).max(1),
        }
    }

    /// Changes the limit (consumer update).
    pub(crate) fn set_max_waiting(&mut self, max_waiting: i64) {
        self.max_waiting = usize::try_from(max_waiting).unwrap_or(0).max(1);
    }

    /// Waiting requests.
    pub(crate) fn len(&self) -> usize {
        self.reqs.len()
    }

    /// True when nobody waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    /// Queues a request; `Err` is the `409 Exceeded MaxWaiting` to answer.
    pub(crate) fn push(&mut self, req: PullRequest, now: Instant) -> Result<(), Reply> {
        self.reqs.retain(|r| r.expires.is_none_or(|e| e > now));
        if self.reqs.len() >= self.max_waiting {
            return Err((req.reply, status::conflict("Exceeded MaxWaiting")));
        }
        self.reqs.push_back(req);
        Ok(())
    }

    /// Takes the next request to serve: the first, in round-robin order, that `serve`
    /// accepts, or with `by_priority` the first of the lowest `priority` among those.
    /// Requests turned away keep their place. Give it back with [`Self::requeue`].
    pub(crate) fn take(
        &mut self,
        by_priority: bool,
        serve: impl Fn(&PullRequest) -> bool,
    ) -> Option<PullRequest> {
        let mut best: Option<(usize, i64)> = None;
        for (i, r) in self.reqs.iter().enumerate() {
            if !serve(r) || best.is_some_and(|(_, p)| p <= r.priority) {
                continue;
            }
            best = Some((i, r.priority));
            if !by_priority {
                break;
            }
        }
        self.reqs.remove(best?.0)
    }

    /// True when a waiting request matches.
    pub(crate) fn any(&self, pred: impl Fn(&PullRequest) -> bool) -> bool {
        self.reqs.iter().any(pred)
    }

    /// Removes the requests that match, answering each with `status(batch_left, bytes_left)`.
    pub(crate) fn remove_where(
        &mut self,
        pred: impl Fn(&PullRequest) -> bool,
        status: impl Fn(i64, i64) -> Bytes,
    ) -> Vec<Reply> {
        let mut out = Vec::new();
        self.reqs.retain(|r| {
            let gone = pred(r);
            if gone {
                out.push((r.reply.clone(), status(r.batch, r.bytes_left())));
            }
            !gone
        });
        out
    }

    /// Puts a request that still wants messages at the back (or the front, when it
    /// was not served).
    pub(crate) fn requeue(&mut self, req: PullRequest, served: bool) {
        if served {
            self.reqs.push_back(req);
        } else {
            self.reqs.push_front(req);
        }
    }

    /// Removes every request, answering each with `status` (consumer deleted).
    pub(crate) fn drain(&mut self, status: &Bytes) -> Vec<Reply> {
        self.reqs
            .drain(..)
            .map(|r| (r.reply, status.clone()))
            .collect()
    }

    /// Every request leaves with `status(batch_left, bytes_left)` (server shutdown).
    pub(crate) fn drain_pending(&mut self, status: impl Fn(i64, i64) -> Bytes) -> Vec<Reply> {
        self.reqs
            .drain(..)
            .map(|r| {
                let st = status(r.batch, r.bytes_left());
                (r.reply, st)
            })
            .collect()
    }

    /// `no_wait` requests that cannot be served now get `404 No Messages` (those with
    /// `expires` only once they had a message).
    pub(crate) fn finish_no_wait(&mut self) -> Vec<Reply> {
        let mut out = Vec::new();
        self.reqs.retain(|r| {
            let done = r.no_wait && !r.waits_for_first;
            if done {
                out.push((r.reply.clone(), status::no_messages()));
            }
            !done
        });
        out
    }

    /// Expired requests get `408 Request Timeout`; heartbeats that are due are sent
    /// (`hb` builds the heartbeat status).
    pub(crate) fn tick(&mut self, now: Instant, hb: impl Fn() -> Bytes) -> Vec<Reply> {
        let mut out = Vec::new();
        self.reqs.retain_mut(|r| {
            if r.expires.is_some_and(|e| e <= now) {
                out.push((
                    r.reply.clone(),
                    status::request_timeout(r.batch, r.bytes_left()),
                ));
                return false;
            }
            if let (Some(h), Some(due)) = (r.heartbeat, r.next_hb)
                && due <= now
            {
                out.push((r.reply.clone(), hb()));
                r.next_hb = Some(now + h);
            }
            true
        });
        out
    }

    /// The earliest expiry or heartbeat.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.reqs
            .iter()
            .flat_map(|r| [r.expires, r.next_hb])
            .flatten()
            .min()
    }
}
