//! The consumer actor: start-up (new or restored), the event loop, commands, acks and
//! timers. Delivery itself is in `deliver`.
//!
//! Owns one consumer's mutable state; nobody else touches it. Everything arrives over
//! bounded channels: commands from the API, and (through internal subscriptions) pull
//! requests, acks and flow-control answers.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use rill_protocol::jsapi::{
    ApiError, ConsumerConfig, ConsumerInfo, ConsumerPauseResponse, ConsumerResetResponse,
    ErrorCode, Nanos, NextRequest, SequenceInfo, Timestamp,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::{debug, warn};

use super::ack::{ACK_PREFIX, AckKind, parse_ack_subject};
use super::outbox::{Inbound, InternalSub, Outbox};
use super::pull::{PullRequest, WaitQueue, check};
use super::push::Push;
use super::source::{Source, count_pending, start_position};
use super::tracker::{Dropped, Tracker};
use super::{Command, ConsumerHandle, Persist, Registry, Shared, events, next_id, status};
use crate::jetstream::store::{
    ConsumerState, ConsumerStore, FileConsumerStore, MemConsumerStore, SequencePair, StoreError,
    StoredMsg, meta, now_ns,
};

/// Commands queued per consumer.
const COMMAND_QUEUE: usize = 64;
/// Inbound messages (acks, pulls, flow control) queued per consumer.
const INBOUND_QUEUE: usize = 8192;
/// Inbound messages handled before the next delivery round.
const INBOUND_BATCH: usize = 1024;

/// What a durable consumer's `meta.cfg` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredConsumer {
    /// The effective config.
    pub config: ConsumerConfig,
    /// Creation time.
    pub created: Timestamp,
}

/// Everything needed to start a consumer actor.
#[derive(Debug)]
pub struct StartSpec<S> {
    /// Stream name.
    pub stream: String,
    /// Consumer name.
    pub name: String,
    /// Validated, defaulted config.
    pub config: ConsumerConfig,
    /// Creation time (kept across restarts).
    pub created: Timestamp,
    /// Where messages come from.
    pub source: S,
    /// Where deliveries go.
    pub outbox: Outbox,
    /// Durable storage (`None`: memory only).
    pub persist: Option<Persist>,
    /// The registry the actor removes itself from when it expires.
    pub registry: Registry,
    /// The stream uses interest retention: track what is still needed.
    pub interest: bool,
    /// The stream removes acked messages (interest or work queue).
    pub remove_acked: bool,
    /// Sync state after every batch of acks (rill's durable default).
    pub sync_always: bool,
    /// Restoring an existing consumer (state and config already stored).
    pub restored: bool,
}

/// The actor.
#[derive(Debug)]
pub(super) struct Actor<S: Source> {
    pub(super) stream: String,
    pub(super) name: String,
    pub(super) cfg: ConsumerConfig,
    created: Timestamp,
    pub(super) src: S,
    pub(super) out: Outbox,
    pub(super) tracker: Tracker,
    pub(super) filters: Vec<String>,
    /// Next stream sequence to read into `buf`.
    pub(super) read_pos: u64,
    /// Prefetched messages not yet delivered.
    pub(super) buf: VecDeque<StoredMsg>,
    /// Matching messages after `read_pos`, as of the last read.
    pub(super) pending_after: u64,
    /// `last_per_subject` start sequences still to deliver.
    pub(super) lps: VecDeque<u64>,
    pub(super) waiting: WaitQueue,
    pub(super) push: Option<Push>,
    paused_until: Option<Timestamp>,
    pub(super) last_seq: watch::Receiver<u64>,
    last_activity: Instant,
    pub(super) shared: Arc<Shared>,
    registry: Registry,
    persist: Option<Persist>,
    pub(super) interest: bool,
    pub(super) remove_acked: bool,
    pub(super) to_remove: Vec<u64>,
    sync_always: bool,
    /// `replay_policy: original`: (first delivered message's ts, when it was sent).
    pub(super) replay_anchor: Option<(i64, Instant)>,
    pub(super) replay_wake: Option<Instant>,
    /// Messages given up on by acks, handled (advisory, dead letter) after the batch.
    dropped_later: Vec<Dropped>,
    _subs: Vec<InternalSub>,
}

fn store_err(e: StoreError) -> ApiError {
    ErrorCode::CONSUMER_STORE_FAILED.err(e)
}

fn open_store(spec: &StartSpec<impl Source>) -> Result<Box<dyn ConsumerStore>, ApiError> {
    let Some(p) = spec.persist.as_ref().filter(|_| !spec.config.mem_storage) else {
        return Ok(Box::new(MemConsumerStore::new()));
    };
    let stored = StoredConsumer {
        config: spec.config.clone(),
        created: spec.created,
    };
    let json =
        serde_json::to_vec(&stored).map_err(|e| store_err(StoreError::Corrupt(e.to_string())))?;
    let dir = meta::consumer_dir(&p.root, &spec.stream, &spec.name);
    if !spec.restored {
        if p.vfs.exists(&dir.join(meta::META_NAME)) {
            meta::delete_consumer(p.vfs.as_ref(), &p.root, &spec.stream, &spec.name)
                .map_err(store_err)?;
        }
        meta::create_consumer(p.vfs.as_ref(), &p.root, &spec.stream, &spec.name, &json)
            .map_err(store_err)?;
    }
    let store = FileConsumerStore::open(&dir, Arc::clone(&p.vfs)).map_err(store_err)?;
    Ok(Box::new(store))
}

/// Starts a consumer actor (creating its stored state unless `restored`) and returns its handle.
///
/// # Errors
/// `CONSUMER_STORE_FAILED` when its files cannot be written; stream read errors.
pub async fn start<S: Source>(spec: StartSpec<S>) -> Result<ConsumerHandle, ApiError> {
    let now = Instant::now();
    let store = open_store(&spec)?;
    let mut tracker = Tracker::new(&spec.config, store, now);
    let mut lps = VecDeque::new();
    if !spec.restored {
        let cfg = spec.config.clone();
        let pos = spec
            .source
            .read(move |s| start_position(s, &cfg))
            .await?
            .map_err(store_err)?;
        let floor = SequencePair {
            consumer: 0,
            stream: pos.next.saturating_sub(1),
        };
        let st = ConsumerState {
            delivered: floor,
            ack_floor: floor,
            ..ConsumerState::default()
        };
        tracker.set_state(st, now).map_err(store_err)?;
        tracker.sync().map_err(store_err)?;
        lps = pos.last_per_subject.into();
    }
    let filters: Vec<String> = spec
        .config
        .filters()
        .into_iter()
        .map(str::to_owned)
        .collect();
    let read_pos = tracker.state().delivered.stream + 1;
    let shared = Arc::new(Shared {
        stream: spec.stream.clone(),
        name: spec.name.clone(),
        filters: filters.clone(),
        next_unread: AtomicU64::new(lps.front().copied().unwrap_or(read_pos)),
        pending: Mutex::new(tracker_pending(&tracker)),
        stopped: AtomicBool::new(false),
        stop: tokio::sync::Notify::new(),
        id: next_id(),
    });
    let (cmd_tx, cmd_rx) = mpsc::channel(COMMAND_QUEUE);
    let (in_tx, in_rx) = mpsc::channel(INBOUND_QUEUE);
    let mut subs = vec![
        spec.outbox.subscribe(
            &format!("{ACK_PREFIX}.{}.{}.>", spec.stream, spec.name),
            in_tx.clone(),
        ),
        spec.outbox.subscribe(
            &format!("$JS.API.CONSUMER.MSG.NEXT.{}.{}", spec.stream, spec.name),
            in_tx.clone(),
        ),
    ];
    let push = spec
        .config
        .is_push()
        .then(|| Push::new(&spec.config, &spec.stream, &spec.name, now));
    if let Some(p) = push.as_ref().filter(|p| p.flow_control()) {
        subs.push(spec.outbox.subscribe(&p.fc_filter(), in_tx.clone()));
    }
    let actor = Actor {
        stream: spec.stream,
        name: spec.name,
        created: spec.created,
        waiting: WaitQueue::new(spec.config.max_waiting),
        paused_until: spec.config.pause_until,
        cfg: spec.config,
        last_seq: spec.source.last_seq_watch(),
        src: spec.source,
        out: spec.outbox,
        tracker,
        filters,
        read_pos,
        buf: VecDeque::new(),
        pending_after: 0,
        lps,
        push,
        last_activity: now,
        shared: Arc::clone(&shared),
        registry: spec.registry.clone(),
        persist: spec.persist,
        interest: spec.interest,
        remove_acked: spec.remove_acked,
        to_remove: Vec::new(),
        sync_always: spec.sync_always,
        replay_anchor: None,
        replay_wake: None,
        dropped_later: Vec::new(),
        _subs: subs,
    };
    let handle = ConsumerHandle { tx: cmd_tx, shared };
    spec.registry.insert(handle.clone());
    actor.src.register(Arc::clone(&handle.shared));
    tokio::spawn(actor.run(cmd_rx, in_rx));
    Ok(handle)
}

fn tracker_pending(t: &Tracker) -> std::collections::BTreeSet<u64> {
    t.state().pending.keys().copied().collect()
}

fn ts(ns: i64) -> Option<Timestamp> {
    (ns > 0).then(|| Timestamp::from_unix_nanos(i128::from(ns)).ok())?
}

enum Flow {
    Continue,
    Stop,
}

impl<S: Source> Actor<S> {
    async fn run(
        mut self,
        mut cmds: mpsc::Receiver<Command>,
        mut inbound: mpsc::Receiver<Inbound>,
    ) {
        let shared = Arc::clone(&self.shared);
        loop {
            self.pump().await;
            self.flush().await;
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
                r = self.last_seq.changed() => if r.is_err() { break },
                () = tokio::time::sleep_until(wake) => self.tick().await,
            }
        }
        if let Err(e) = self.tracker.sync() {
            warn!(stream = %self.stream, consumer = %self.name, error = %e, "consumer state sync failed");
        }
    }

    /// Syncs state and removes acked messages from interest / work-queue streams.
    async fn flush(&mut self) {
        for d in std::mem::take(&mut self.dropped_later) {
            self.on_dropped(d).await;
        }
        if self.sync_always
            && let Err(e) = self.tracker.sync()
        {
            warn!(stream = %self.stream, consumer = %self.name, error = %e, "consumer state sync failed");
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

    fn next_wake(&self) -> Instant {
        let far = Instant::now() + Duration::from_secs(3600);
        [
            self.tracker.next_deadline(),
            self.waiting.next_deadline(),
            self.push.as_ref().and_then(Push::next_deadline),
            self.replay_wake,
            self.inactive_deadline(),
            self.pause_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(far)
    }

    fn inactive_threshold(&self) -> Option<Duration> {
        self.cfg
            .inactive_threshold
            .to_duration()
            .filter(|d| !d.is_zero())
    }

    fn inactive_deadline(&self) -> Option<Instant> {
        let t = self.inactive_threshold()?;
        (self.push.is_some() || self.waiting.is_empty()).then_some(self.last_activity + t)
    }

    fn pause_deadline(&self) -> Option<Instant> {
        let until = self.paused_until?;
        let left = until.unix_nanos() - i128::from(now_ns());
        let left = u64::try_from(left.max(0)).unwrap_or(u64::MAX);
        Some(Instant::now() + Duration::from_nanos(left))
    }

    pub(super) fn is_paused(&self) -> bool {
        self.paused_until
            .is_some_and(|u| u.unix_nanos() > i128::from(now_ns()))
    }

    async fn tick(&mut self) {
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
        self.check_inactive(now).await;
    }

    fn push_heartbeat(&mut self, now: Instant) {
        let (dseq, sseq) = self.last_pair();
        let Some(p) = self.push.as_mut() else { return };
        if p.heartbeat_due(now) {
            let st = status::idle_heartbeat(dseq, sseq, p.stalled_on());
            let subj = p.subject.clone();
            self.out.deliver(&subj, &status_msg(&subj, st, None));
        }
    }

    async fn check_inactive(&mut self, now: Instant) {
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

    async fn delete_self(&mut self) {
        self.registry
            .remove_if(&self.stream, &self.name, self.shared.id);
        self.src.unregister(self.name.clone()).await;
        self.remove_files();
        self.shared.request_stop();
    }

    fn remove_files(&self) {
        if let Some(p) = self.persist.as_ref().filter(|_| !self.cfg.mem_storage)
            && let Err(e) = meta::delete_consumer(p.vfs.as_ref(), &p.root, &self.stream, &self.name)
        {
            debug!(error = %e, "consumer files not removed");
        }
    }

    pub(super) fn last_pair(&self) -> (u64, u64) {
        let d = self.tracker.state().delivered;
        (d.consumer, d.stream)
    }

    /// Handles `first` and whatever else is already queued (up to a batch), then syncs
    /// and answers acks sent as requests.
    fn inbound_batch(&mut self, first: Inbound, rx: &mut mpsc::Receiver<Inbound>) {
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
        if !replies.is_empty() {
            if let Err(e) = self.tracker.sync() {
                warn!(error = %e, "consumer state sync failed");
            }
            for r in replies {
                self.out.reply(&r);
            }
        }
    }

    fn inbound(&mut self, m: Inbound, replies: &mut Vec<Bytes>) {
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

    fn on_pull(&mut self, reply: Bytes, body: &[u8], now: Instant) {
        let req = match NextRequest::parse(body) {
            Ok(r) => r,
            Err(_) => NextRequest {
                batch: 1,
                ..NextRequest::default()
            },
        };
        if let Err(st) = check(&self.cfg, &req) {
            self.out.deliver(&reply, &status_msg(&reply, st, None));
            return;
        }
        if let Err((reply, st)) = self.waiting.push(PullRequest::new(reply, &req, now), now) {
            self.out.deliver(&reply, &status_msg(&reply, st, None));
        }
    }

    fn on_ack(&mut self, m: Inbound, now: Instant, replies: &mut Vec<Bytes>) {
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

impl<S: Source> Actor<S> {
    async fn command(&mut self, c: Command) -> Flow {
        match c {
            Command::Info(tx) => {
                let info = self.info().await;
                let _ = tx.send(info);
            }
            Command::Update(cfg, tx) => {
                let _ = tx.send(self.update(*cfg).await);
            }
            Command::Pause(until, tx) => {
                let _ = tx.send(self.pause(until));
            }
            Command::Reset(seq, tx) => {
                let _ = tx.send(self.reset(seq).await);
            }
            Command::Stop(delete, tx) => {
                self.stop(delete);
                let _ = tx.send(());
                return Flow::Stop;
            }
        }
        Flow::Continue
    }

    fn stop(&mut self, delete: bool) {
        if delete {
            let st = status::conflict("Consumer Deleted");
            for (reply, st) in self.waiting.drain(&st) {
                self.out.deliver(&reply, &status_msg(&reply, st, None));
            }
            self.registry
                .remove_if(&self.stream, &self.name, self.shared.id);
            self.remove_files();
        } else if let Err(e) = self.tracker.sync() {
            warn!(error = %e, "consumer state sync failed");
        }
    }

    /// Recounts the pending messages (one read).
    async fn refresh_pending(&mut self) {
        let (start, filters) = (self.read_pos, self.filters.clone());
        if let Ok(n) = self
            .src
            .read(move |s| count_pending(s, start, &filters))
            .await
        {
            self.pending_after = n;
        }
    }

    pub(super) fn num_pending(&self) -> u64 {
        self.buf.len() as u64 + self.pending_after + self.lps.len() as u64
    }

    async fn info(&mut self) -> ConsumerInfo {
        self.refresh_pending().await;
        let st = self.tracker.state();
        let now = now_ns();
        let remaining = self.paused_until.map_or(0, |u| {
            i64::try_from(u.unix_nanos() - i128::from(now)).unwrap_or(0)
        });
        let mut cfg = self.cfg.clone();
        cfg.pause_until = self.paused_until;
        ConsumerInfo {
            stream_name: self.stream.clone(),
            name: self.name.clone(),
            created: self.created,
            config: cfg,
            delivered: SequenceInfo {
                consumer_seq: st.delivered.consumer,
                stream_seq: st.delivered.stream,
                last_active: ts(self.tracker.last_delivered_ns),
            },
            ack_floor: SequenceInfo {
                consumer_seq: st.ack_floor.consumer,
                stream_seq: st.ack_floor.stream,
                last_active: ts(self.tracker.last_ack_ns),
            },
            num_ack_pending: self.tracker.num_ack_pending() as u64,
            num_redelivered: self.tracker.num_redelivered() as u64,
            num_waiting: self.waiting.len() as u64,
            num_pending: self.num_pending(),
            push_bound: self
                .push
                .as_ref()
                .is_some_and(|p| self.out.has_interest(&p.subject)),
            paused: remaining > 0,
            pause_remaining: Nanos(remaining.max(0)),
            ts: ts(now).unwrap_or_default(),
            ..ConsumerInfo::default()
        }
    }

    fn write_config(&self) {
        let Some(p) = self.persist.as_ref().filter(|_| !self.cfg.mem_storage) else {
            return;
        };
        let mut cfg = self.cfg.clone();
        cfg.pause_until = self.paused_until;
        let stored = StoredConsumer {
            config: cfg,
            created: self.created,
        };
        let Ok(json) = serde_json::to_vec(&stored) else {
            return;
        };
        if let Err(e) =
            meta::update_consumer_config(p.vfs.as_ref(), &p.root, &self.stream, &self.name, &json)
        {
            warn!(error = %e, "consumer config not saved");
        }
    }

    async fn update(&mut self, cfg: ConsumerConfig) -> Result<ConsumerInfo, ApiError> {
        self.tracker.reconfigure(&cfg);
        self.waiting.set_max_waiting(cfg.max_waiting);
        let now = Instant::now();
        if cfg.deliver_subject != self.cfg.deliver_subject
            || cfg.flow_control != self.cfg.flow_control
        {
            self.push = cfg
                .is_push()
                .then(|| Push::new(&cfg, &self.stream, &self.name, now));
        }
        self.paused_until = cfg.pause_until;
        self.cfg = cfg;
        self.write_config();
        Ok(self.info().await)
    }

    fn pause(&mut self, until: Option<Timestamp>) -> ConsumerPauseResponse {
        let now = i128::from(now_ns());
        self.paused_until = until.filter(|u| u.unix_nanos() > now);
        self.write_config();
        let remaining = self
            .paused_until
            .map_or(0, |u| i64::try_from(u.unix_nanos() - now).unwrap_or(0));
        ConsumerPauseResponse {
            paused: self.paused_until.is_some(),
            pause_until: self.paused_until.unwrap_or_default(),
            pause_remaining: Nanos(remaining),
        }
    }

    async fn reset(&mut self, seq: u64) -> Result<ConsumerResetResponse, ApiError> {
        let last = *self.last_seq.borrow();
        if seq > last + 1 {
            return Err(ErrorCode::CONSUMER_INVALID_RESET
                .err("sequence exceeds the stream's last sequence"));
        }
        let next = if seq == 0 {
            self.tracker.state().ack_floor.stream + 1
        } else {
            seq
        };
        let now = Instant::now();
        self.tracker.reset_to(next - 1, now).map_err(store_err)?;
        self.tracker.sync().map_err(store_err)?;
        self.buf.clear();
        self.lps.clear();
        self.read_pos = next;
        self.replay_anchor = None;
        self.sync_shared();
        Ok(ConsumerResetResponse {
            info: self.info().await,
            reset_seq: next,
        })
    }

    /// Publishes the interest view (next unread sequence, pending set).
    pub(super) fn sync_shared(&self) {
        let next = self
            .lps
            .front()
            .copied()
            .or_else(|| self.buf.front().map(|m| m.seq))
            .unwrap_or(self.read_pos);
        self.shared
            .next_unread
            .store(next, std::sync::atomic::Ordering::Release);
        if self.interest {
            *self
                .shared
                .pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) =
                tracker_pending(&self.tracker);
        }
    }
}
