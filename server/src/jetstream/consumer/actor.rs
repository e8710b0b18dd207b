//! The consumer actor: start-up (new or restored), the event loop, commands, acks and
//! timers. Delivery itself is in `deliver`.
//!
//! Owns one consumer's mutable state; nobody else touches it. Everything arrives over
//! bounded channels: commands from the API, and (through internal subscriptions) pull
//! requests, acks and flow-control answers.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rill_protocol::jsapi::{ConsumerConfig, ConsumerName, NextRequest, StreamName, Timestamp};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, warn};

use super::ack::{AckKind, parse_ack_subject};
use super::events::PinEvent;
use super::outbox::{Inbound, InternalSub, Outbox};
use super::priority::{self, Priority};
use super::pull::{PullRequest, WaitQueue, check};
use super::push::Push;
use super::source::Source;
use super::tracker::{Dropped, Tracker};
use super::{Command, Persist, Registry, Shared, events, status};
use crate::jetstream::store::{StoreError, StoredMsg, meta, now_ns};

/// Inbound messages handled before the next delivery round.
const INBOUND_BATCH: usize = 1024;

/// The actor.
#[derive(Debug)]
pub(super) struct Actor<S: Source> {
    pub(super) stream: StreamName,
    pub(super) name: ConsumerName,
    pub(super) cfg: ConsumerConfig,
    pub(super) created: Timestamp,
    pub(super) src: S,
    pub(super) out: Outbox,
    pub(super) tracker: Tracker,
    pub(super) filters: Vec<String>,
    /// Next stream sequence to read into `buf`.
    pub(super) read_pos: u64,
    /// Prefetched messages not yet delivered.
    pub(super) buf: VecDeque<StoredMsg>,
    /// Matching messages after `read_pos`, as of the last read.
    pub(super) count: Option<super::source::PendingCount>,
    /// The next cursor read, parked at the stream while everything was read.
    pub(super) parked: super::parked::Parked,
    /// `last_per_subject` start sequences still to deliver.
    pub(super) lps: VecDeque<u64>,
    pub(super) waiting: WaitQueue,
    /// Priority groups: which waiting request may be served, and the pin.
    pub(super) priority: Priority,
    pub(super) push: Option<Push>,
    pub(super) paused_until: Option<Timestamp>,
    pub(super) last_seq: watch::Receiver<u64>,
    pub(super) last_activity: Instant,
    pub(super) shared: Arc<Shared>,
    pub(super) registry: Registry,
    pub(super) persist: Option<Persist>,
    pub(super) interest: bool,
    pub(super) remove_acked: bool,
    pub(super) to_remove: Vec<u64>,
    pub(super) sync_interval: Duration,
    /// When unsynced state must be synced.
    pub(super) next_sync: Option<Instant>,
    /// The state log's fsync running on the blocking pool, so that deliveries and
    /// acks go on meanwhile (at most one at a time).
    pub(super) syncing: Option<JoinHandle<std::io::Result<()>>>,
    /// `replay_policy: original`: (first delivered message's ts, when it was sent).
    pub(super) replay_anchor: Option<(i64, Instant)>,
    pub(super) replay_wake: Option<Instant>,
    /// Messages given up on by acks, handled (advisory, dead letter) after the batch.
    pub(super) dropped_later: Vec<Dropped>,
    pub(super) _subs: Vec<InternalSub>,
}

/// Waits for the background fsync, if one runs (never resolves otherwise).
async fn background_sync(
    syncing: &mut Option<JoinHandle<std::io::Result<()>>>,
) -> Result<std::io::Result<()>, tokio::task::JoinError> {
    match syncing {
        Some(h) => h.await,
        None => std::future::pending().await,
    }
}

pub(super) fn tracker_pending(t: &Tracker) -> std::collections::BTreeSet<u64> {
    t.state().pending.keys().copied().collect()
}

pub(super) fn ts(ns: i64) -> Option<Timestamp> {
    (ns > 0).then(|| Timestamp::from_unix_nanos(i128::from(ns)).ok())?
}

pub(super) enum Flow {
    Continue,
    Stop,
}

impl<S: Source> Actor<S> {
    pub(super) async fn run(
        mut self,
        mut cmds: mpsc::Receiver<Command>,
        mut inbound: mpsc::Receiver<Inbound>,
    ) {
        let shared = Arc::clone(&self.shared);
        let account = Arc::clone(self.out.account());
        loop {
            self.pump().await;
            self.flush().await;
            // Created before the interest check, so a subscription made in between counts.
            let subscribed = account.router.subscribed();
            let awaiting = self.interest_poll().is_some();
            let wake = self.next_wake();
            tokio::select! {
                biased;
                () = shared.stop.notified() => break,
                c = cmds.recv() => match c {
                    Some(c) => if let Flow::Stop = self.command(c).await { return },
                    None => break,
                },
                m = inbound.recv() => match m {
                    Some(m) => self.inbound_batch(m, &mut inbound),
                    None => break,
                },
                a = self.parked.answer() => self.parked_read(a),
                r = self.last_seq.changed() => if r.is_err() { break },
                r = background_sync(&mut self.syncing) => self.synced(r),
                () = subscribed, if awaiting => {},
                () = tokio::time::sleep_until(wake) => self.tick().await,
            }
        }
        if self
            .shared
            .stopped
            .load(std::sync::atomic::Ordering::Acquire)
        {
            let st = status::conflict("Consumer Deleted");
            for (reply, st) in self.waiting.drain(&st) {
                self.out.deliver(&reply, &status_msg(&reply, st, None));
            }
        }
        if let Err(e) = self.tracker.sync() {
            self.sync_failed(&e);
        }
        self.registry
            .remove_if(&self.stream, &self.name, self.shared.id);
    }

    /// Syncs state and removes acked messages from interest / work-queue streams.
    pub(super) async fn flush(&mut self) {
        for d in std::mem::take(&mut self.dropped_later) {
            self.on_dropped(d).await;
        }
        if self.tracker.is_dirty() && self.next_sync.is_none() {
            self.next_sync = Some(Instant::now() + self.sync_interval);
        }
        if self.syncing.is_none() && self.next_sync.is_some_and(|t| t <= Instant::now()) {
            self.sync_in_background();
        }
        if !self.to_remove.is_empty() {
            let seqs = std::mem::take(&mut self.to_remove);
            if self.remove_acked
                && let Err(e) = self.src.remove_acked(seqs).await
            {
                debug!(error = %e.description, "remove_acked failed");
            }
        }
    }

    /// Makes the consumer state durable now.
    pub(super) fn sync_state(&mut self) {
        self.next_sync = None;
        if let Err(e) = self.tracker.sync() {
            self.sync_failed(&e);
        }
    }

    /// Writes the state log and starts its fsync on the blocking pool: deliveries
    /// made meanwhile are at worst redelivered after a crash, the same window as
    /// before the fsync started. (Acks sent as requests use [`Actor::sync_state`],
    /// which waits.)
    fn sync_in_background(&mut self) {
        self.next_sync = None;
        match self.tracker.write_out() {
            Ok(Some(file)) => {
                self.syncing = Some(tokio::task::spawn_blocking(move || file.sync()));
            }
            Ok(None) => {}
            Err(e) => {
                self.sync_failed(&e);
            }
        }
    }

    /// A background fsync ended.
    fn synced(&mut self, r: Result<std::io::Result<()>, tokio::task::JoinError>) {
        self.syncing = None;
        let err = match r {
            Ok(Ok(())) => return,
            Ok(Err(e)) => e.to_string(),
            Err(e) => e.to_string(),
        };
        self.sync_failed(&err);
        // Nothing is lost: the next sync covers the same writes again.
        self.tracker.mark_dirty();
    }

    /// Logs a failed sync of the consumer's state (the one place that says so).
    fn sync_failed(&self, error: &dyn std::fmt::Display) {
        warn!(stream = %self.stream, consumer = %self.name, error = %error, "consumer state sync failed");
    }

    pub(super) fn next_wake(&self) -> Instant {
        let far = Instant::now() + Duration::from_secs(3600);
        [
            self.tracker.next_deadline(),
            self.waiting.next_deadline(),
            self.priority.deadline(),
            self.push.as_ref().and_then(Push::next_deadline),
            self.replay_wake,
            self.inactive_deadline(),
            self.pause_deadline(),
            self.interest_poll(),
            self.next_sync.filter(|_| self.syncing.is_none()),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(far)
    }

    /// A push consumer without a subscriber looks again soon (the router's
    /// `subscribed` wakes it at once for subscriptions in its own account; the poll
    /// covers the rest).
    pub(super) fn interest_poll(&self) -> Option<Instant> {
        let p = self.push.as_ref()?;
        (!self.out.has_interest(&p.subject)).then(|| Instant::now() + Duration::from_millis(100))
    }

    pub(super) fn inactive_threshold(&self) -> Option<Duration> {
        self.cfg
            .inactive_threshold
            .to_duration()
            .filter(|d| !d.is_zero())
    }

    pub(super) fn inactive_deadline(&self) -> Option<Instant> {
        let t = self.inactive_threshold()?;
        (self.push.is_some() || self.waiting.is_empty()).then_some(self.last_activity + t)
    }

    pub(super) fn pause_deadline(&self) -> Option<Instant> {
        let until = self.paused_until?;
        let left = until.unix_nanos() - i128::from(now_ns());
        let left = u64::try_from(left.max(0)).unwrap_or(u64::MAX);
        Some(Instant::now() + Duration::from_nanos(left))
    }

    pub(super) fn is_paused(&self) -> bool {
        self.paused_until
            .is_some_and(|u| u.unix_nanos() > i128::from(now_ns()))
    }

    pub(super) async fn tick(&mut self) {
        let now = Instant::now();
        self.replay_wake = None;
        if self.paused_until.is_some() && !self.is_paused() {
            self.paused_until = None;
        }
        match self.tracker.expire(now) {
            Ok(dropped) => {
                for d in dropped {
                    self.on_dropped(d).await;
                }
            }
            Err(e) => warn!(error = %e, "consumer state update failed"),
        }
        let (dseq, sseq) = self.last_pair();
        for (reply, st) in self
            .waiting
            .tick(now, || status::idle_heartbeat(dseq, sseq, None))
        {
            self.out.deliver(&reply, &status_msg(&reply, st, None));
        }
        self.push_heartbeat(now);
        self.expire_pin(now);
        self.check_inactive(now).await;
    }

    /// `pinned_client`: a pinned client that stopped pulling loses its pin.
    fn expire_pin(&mut self, now: Instant) {
        let waiting = &self.waiting;
        let expired = self
            .priority
            .expire(now, |id| waiting.any(|r| r.pin_id == id));
        if let Some((old, event)) = expired {
            self.unpinned(&old, &event);
        }
    }

    /// After an unpin: requests still carrying `old` get `423 Nats-Wrong-Pin-Id`, and the
    /// advisory goes out.
    pub(super) fn unpinned(&mut self, old: &str, event: &PinEvent) {
        let gone = self
            .waiting
            .remove_where(|r| r.pin_id == old, status::wrong_pin_id);
        for (reply, st) in gone {
            self.out.deliver(&reply, &status_msg(&reply, st, None));
        }
        events::pin(&self.out, &self.stream, &self.name, event);
    }

    pub(super) fn push_heartbeat(&mut self, now: Instant) {
        let (dseq, sseq) = self.last_pair();
        let Some(p) = self.push.as_mut() else { return };
        if p.heartbeat_due(now) {
            let st = status::idle_heartbeat(dseq, sseq, p.stalled_on());
            let subj = p.subject.clone();
            self.out.deliver(&subj, &status_msg(&subj, st, None));
        }
    }

    pub(super) async fn check_inactive(&mut self, now: Instant) {
        let Some(t) = self.inactive_threshold() else {
            return;
        };
        if let Some(p) = &self.push
            && self.out.has_interest(&p.subject)
        {
            self.last_activity = now;
            return;
        }
        if !self.waiting.is_empty() || now < self.last_activity + t {
            return;
        }
        debug!(stream = %self.stream, consumer = %self.name, "consumer inactive, deleting");
        self.delete_self().await;
    }

    pub(super) async fn delete_self(&mut self) {
        self.registry
            .remove_if(&self.stream, &self.name, self.shared.id);
        self.src.unregister(self.name.as_str().to_owned()).await;
        self.remove_files();
        self.shared.request_stop();
    }

    /// Removes the consumer's files. An API delete has moved them into the trash
    /// already (then there is nothing here); an ephemeral consumer that expired removes
    /// its own, and a failure is logged (the files would bring it back after a restart).
    pub(super) fn remove_files(&self) {
        let Some(p) = self.persist.as_ref().filter(|_| !self.cfg.mem_storage) else {
            return;
        };
        match meta::delete_consumer(p.vfs.as_ref(), &p.root, &self.stream, &self.name) {
            Ok(()) | Err(StoreError::NotFound) => {}
            Err(e) => warn!(
                stream = %self.stream, consumer = %self.name, error = %e,
                "consumer files not removed"
            ),
        }
    }

    pub(super) fn last_pair(&self) -> (u64, u64) {
        let d = self.tracker.state().delivered;
        (d.consumer, d.stream)
    }

    /// Handles `first` and whatever else is already queued (up to a batch), then syncs
    /// and answers acks sent as requests.
    pub(super) fn inbound_batch(&mut self, first: Inbound, rx: &mut mpsc::Receiver<Inbound>) {
        let mut replies = Vec::new();
        let mut next = Some(first);
        let mut n = 0;
        while let Some(m) = next {
            self.inbound(m, &mut replies);
            n += 1;
            next = if n < INBOUND_BATCH {
                rx.try_recv().ok()
            } else {
                None
            };
        }
        if replies.is_empty() {
            return;
        }
        // A replicated consumer answers once its group has the acks (nats-server 2.11+).
        let committed = self.tracker.commit_wait();
        self.sync_state();
        match committed {
            None => {
                for r in replies {
                    self.out.reply(&r);
                }
            }
            Some(done) => {
                let out = self.out.clone();
                tokio::spawn(async move {
                    if done.await.is_ok() {
                        for r in replies {
                            out.reply(&r);
                        }
                    }
                });
            }
        }
    }

    pub(super) fn inbound(&mut self, m: Inbound, replies: &mut Vec<Bytes>) {
        let now = Instant::now();
        self.last_activity = now;
        if m.subject.starts_with(b"$JS.ACK.") {
            self.on_ack(m, now, replies);
        } else if m.subject.starts_with(b"$JS.FC.") {
            if let Some(p) = self.push.as_mut() {
                p.fc_answered(&m.subject);
            }
        } else if let Some(reply) = m.reply {
            self.on_pull(reply, &m.payload, now);
        }
    }

    pub(super) fn on_pull(&mut self, reply: Bytes, body: &[u8], now: Instant) {
        let req = match NextRequest::parse(body) {
            Ok(r) => r,
            Err(e) => {
                let st = super::status::bad_request(&e.to_string());
                self.out.deliver(&reply, &status_msg(&reply, st, None));
                return;
            }
        };
        if let Err(st) = check(&self.cfg, &req).and_then(|()| priority::check(&self.cfg, &req)) {
            self.out.deliver(&reply, &status_msg(&reply, st, None));
            return;
        }
        let req = PullRequest::new(reply, &req, now);
        if let Err(st) = self.priority.admit(&req, now) {
            self.out
                .deliver(&req.reply, &status_msg(&req.reply, st, None));
            return;
        }
        match self.waiting.push(req, now) {
            Ok(()) => self.priority.queued(now),
            Err((reply, st)) => {
                self.out.deliver(&reply, &status_msg(&reply, st, None));
            }
        }
    }

    pub(super) fn on_ack(&mut self, m: Inbound, now: Instant, replies: &mut Vec<Bytes>) {
        let Some(meta) = parse_ack_subject(&m.subject) else {
            return;
        };
        let kind = AckKind::parse(&m.payload);
        let fx = match self.tracker.on_ack(kind, meta, now) {
            Ok(fx) => fx,
            Err(e) => {
                warn!(error = %e, "consumer state update failed");
                return;
            }
        };
        self.note_acked(&fx.acked);
        if let Some(n) = fx.naked {
            events::naked(&self.out, &self.stream, &self.name, n);
        }
        if let Some(d) = fx.dropped {
            self.dropped_later.push(d);
        }
        match (fx.next, m.reply) {
            (Some(body), Some(reply)) => self.on_pull(reply, &body, now),
            (None, Some(reply)) => replies.push(reply),
            _ => {}
        }
    }

    pub(super) fn note_acked(&mut self, seqs: &[u64]) {
        if seqs.is_empty() {
            return;
        }
        if self.interest {
            let mut p = self
                .shared
                .pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for s in seqs {
                p.remove(s);
            }
        }
        self.to_remove.extend_from_slice(seqs);
    }

    /// Advisory, dead letter, and removal for a message given up on.
    pub(super) async fn on_dropped(&mut self, d: Dropped) {
        events::dropped(&self.out, &self.stream, &self.name, &d);
        if let Some(subject) = self.cfg.metadata.get(events::DEAD_LETTER_KEY).cloned() {
            let seq = d.sseq;
            if let Ok(Some(msg)) = self.src.read(move |s| s.load(seq).ok()).await {
                events::dead_letter(&self.out, &subject, &self.stream, &self.name, &d, &msg);
            }
        }
        self.note_acked(&[d.sseq]);
    }
}

/// A header-only status message routed to (and shown as) `subject`.
pub(super) fn status_msg(
    subject: &Bytes,
    headers: Bytes,
    reply: Option<Bytes>,
) -> super::outbox::OutMsg {
    super::outbox::OutMsg {
        subject: subject.clone(),
        reply,
        headers: Some(headers),
        payload: Bytes::new(),
    }
}
