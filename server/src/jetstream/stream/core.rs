//! [`StreamCore`]: everything one stream owns, driven by its thread.
//!
//! Owns the store, the effective config, the duplicate window, the pending
//! PubAcks of the current batch and the last-sequence watch. Admin and read
//! requests (info, purge, message get/delete, update, consumer reads) are
//! methods here, run on the stream's actor through `StreamHandle::call`.
//! Publishing lives in `ingest`, direct gets in `direct`.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use rill_protocol::jsapi::{
    ApiError, ClusterInfo, ErrorCode, LostStreamData, MsgGetRequest, Paged, PubAckResponse,
    RetentionPolicy, STREAM_INFO_SUBJECTS_LIMIT, StreamConfig, StreamInfo, StreamName,
    StreamPurgeRequest, StreamState, Timestamp,
};
use rill_protocol::subject::matches;
use tokio::sync::watch;
use tracing::error;

use super::dedupe::Dedupe;
use super::link::{Batch, Consumers};
use super::{StoredStream, store_config};
use crate::account::Account;
use crate::jetstream::error;
use crate::jetstream::republish::Rewrites;
use crate::jetstream::store::{
    PurgeRequest, StdFs, StoreError, StoredMsg, StreamStore, SyncPolicy, meta, now_ns, timestamp,
};
use crate::locks;
use crate::router::Msg;

/// A byte count and its limit, shared by the streams it covers; a reload may change
/// the limit while they run.
#[derive(Debug)]
pub(crate) struct Budget {
    bytes: AtomicU64,
    /// `u64::MAX` when unlimited.
    limit: AtomicU64,
}

impl Budget {
    /// A zero count under `limit` (`None`: unlimited).
    pub(crate) fn new(limit: Option<u64>) -> Arc<Self> {
        Arc::new(Self {
            bytes: AtomicU64::new(0),
            limit: AtomicU64::new(limit.unwrap_or(u64::MAX)),
        })
    }

    /// The limit, `None` when unlimited.
    pub(crate) fn limit(&self) -> Option<u64> {
        Some(self.limit.load(Ordering::Relaxed)).filter(|&l| l != u64::MAX)
    }

    /// Replaces the limit (reload).
    pub(crate) fn set_limit(&self, limit: Option<u64>) {
        self.limit
            .store(limit.unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    fn adjust(&self, old: u64, new: u64) {
        if new >= old {
            self.bytes.fetch_add(new - old, Ordering::Relaxed);
        } else {
            self.bytes.fetch_sub(old - new, Ordering::Relaxed);
        }
    }

    fn over(&self) -> bool {
        self.limit()
            .is_some_and(|l| self.bytes.load(Ordering::Relaxed) > l)
    }
}

/// What one storage kind (file or memory) of a stream counts against: its account's
/// budget (the account's `max_file`/`max_mem`) and the server's, shared by every
/// account (`max_file_store` / `max_memory_store`).
#[derive(Debug, Clone)]
pub(crate) struct AccountUsage {
    pub(crate) account: Arc<Budget>,
    pub(crate) server: Arc<Budget>,
}

impl Default for AccountUsage {
    fn default() -> Self {
        Self {
            account: Budget::new(None),
            server: Budget::new(None),
        }
    }
}

impl AccountUsage {
    /// Moves this stream's share from `old` to `new` bytes, in both budgets.
    pub(crate) fn adjust(&self, old: u64, new: u64) {
        self.account.adjust(old, new);
        self.server.adjust(old, new);
    }

    /// True when the account or the server is already at or over its limit.
    pub(crate) fn exhausted(&self) -> bool {
        self.account.over() || self.server.over()
    }
}

/// Where a file stream keeps its config (memory streams have none).
#[derive(Debug, Clone)]
pub(crate) struct Persist {
    /// The account's JetStream root (`<store_dir>/jetstream/$G`).
    pub(crate) root: PathBuf,
}

/// The state of one stream, owned by its thread.
#[derive(Debug)]
pub struct StreamCore {
    pub(super) name: StreamName,
    pub(super) cfg: StreamConfig,
    pub(super) created: Timestamp,
    pub(super) store: Box<dyn StreamStore>,
    pub(super) dedupe: Dedupe,
    pub(super) last_msg_id: super::dedupe::LastMsgId,
    pub(super) ttls: super::ttl::TtlSchedule,
    pub(super) consumers: Consumers,
    pub(super) usage: Arc<AtomicU64>,
    /// Bytes used by every stream of this storage kind, and the server's limit.
    pub(super) account: AccountUsage,
    pub(super) router: Arc<Account>,
    pub(super) domain: String,
    pub(super) server_id: String,
    pub(super) sync: SyncPolicy,
    /// Appends or deletes not yet synced.
    pub(super) dirty: bool,
    /// PubAcks waiting for the batch's sync (SyncPolicy::Always).
    pub(super) pending: Vec<(Bytes, PubAckResponse)>,
    pub(super) last_seq_tx: watch::Sender<u64>,
    pub(super) persist: Option<Persist>,
    pub(super) last_sync_ns: i64,
    /// `subject_transform` and `republish` (see `jetstream::republish`).
    pub(super) rewrites: Rewrites,
    /// Mirror/source progress for `STREAM.INFO` (see `source`).
    pub(super) origins: super::source::status::Status,
    /// Due times of the stream's message schedules (see `schedule`).
    pub(super) schedules: super::schedule::Schedules,
    /// Atomic batches being staged (see `batch`).
    pub(super) batches: super::batch::Batches,
    /// Fast batches being received (see `fast`).
    pub(super) fast: super::fast::FastBatches,
    /// A replicated stream's replica: message expiry, TTLs, delete markers and
    /// schedules act only when its group's leader commits them
    /// ([`StreamCore::run_timers_at`]), never on this replica's own timer.
    pub(super) timers_by_leader: bool,
    /// Consumers' reads waiting for the next message (see `parked`).
    pub(super) parked: super::parked::ParkedReads,
}

impl StreamCore {
    /// The effective config.
    pub fn config(&self) -> &StreamConfig {
        &self.cfg
    }

    /// The store (read-only).
    pub fn store(&self) -> &dyn StreamStore {
        self.store.as_ref()
    }

    /// Publishes `body` to `subject` from the server (acks, API replies).
    pub(super) fn send(&self, subject: &Bytes, headers: Option<&Bytes>, body: &Bytes) {
        let Some(subject) = crate::router::text(subject) else {
            return;
        };
        self.router
            .router
            .publish(0, true, &Msg::new(&subject, None, headers, body));
    }

    /// Makes the batch durable (SyncPolicy::Always), announces the new last sequence,
    /// then sends the batch's PubAcks.
    ///
    /// Consumers get the batch before the acks go out (their parked reads run, then the
    /// watch wakes the others), as nats-server's have the message as its ack leaves: a
    /// mirror or source (a push consumer here) copies it while the ack travels, so a
    /// client that reads a mirror right after its PubAck finds the write there.
    /// Durability is unchanged: nothing is read, announced or acked before the sync.
    pub(super) fn flush(&mut self) {
        if self.dirty && self.sync == SyncPolicy::Always {
            self.sync_now();
        }
        let state = self.store.state();
        let old = self.usage.swap(state.bytes, Ordering::Relaxed);
        self.account.adjust(old, state.bytes);
        let last = state.last_seq;
        self.parked.run_due(self.store.as_ref(), last);
        self.last_seq_tx.send_if_modified(|v| {
            let changed = *v != last;
            *v = last;
            changed
        });
        for m in self.rewrites.take() {
            self.send(&m.subject, Some(&m.headers), &m.payload);
        }
        self.release_flows();
        for (reply, ack) in std::mem::take(&mut self.pending) {
            let body = serde_json::to_vec(&ack).unwrap_or_default();
            self.send(&reply, None, &Bytes::from(body));
        }
    }

    /// Syncs the store; on failure every pending ack becomes an error.
    pub(super) fn sync_now(&mut self) {
        self.last_sync_ns = now_ns();
        let fault = crate::fault::io_if_armed("stream.sync", &self.name).map_err(StoreError::from);
        if let Err(e) = fault.and_then(|()| self.store.sync()) {
            error!(stream = %self.name, error = %e, "sync failed");
            let err = error::publish_error(&e);
            self.fast.sync_failed(&err);
            for (_, ack) in &mut self.pending {
                *ack = PubAckResponse::err(self.name.clone(), err.clone());
            }
            return;
        }
        self.dirty = false;
    }

    /// StreamInfo with optional deleted details and per-subject counts (paged by `offset`).
    pub(crate) fn info(
        &self,
        deleted: bool,
        subjects: Option<(&str, usize)>,
    ) -> (StreamInfo, Paged) {
        let st = self.store.state();
        let mut state = StreamState {
            messages: st.msgs,
            bytes: st.bytes,
            first_seq: if st.last_seq == 0 && st.msgs == 0 {
                st.first_seq.saturating_sub(1)
            } else {
                st.first_seq
            },
            first_ts: timestamp(st.first_ts),
            last_seq: st.last_seq,
            last_ts: timestamp(st.last_ts),
            num_subjects: st.num_subjects,
            num_deleted: st.num_deleted,
            consumer_count: locks::read(&self.consumers)
                .values()
                .filter(|c| !c.internal())
                .count() as u64,
            lost: st.lost.map(|l| LostStreamData {
                msgs: l.msgs,
                bytes: l.bytes,
            }),
            ..StreamState::default()
        };
        if deleted {
            state.deleted = self.store.deleted();
        }
        let mut paged = Paged::default();
        if let Some((filter, offset)) = subjects {
            let all = self.store.subjects(filter);
            paged = Paged {
                total: all.len(),
                offset,
                limit: STREAM_INFO_SUBJECTS_LIMIT,
            };
            state.subjects = all
                .into_iter()
                .skip(offset)
                .take(STREAM_INFO_SUBJECTS_LIMIT)
                .map(|(s, ss)| (s, ss.msgs))
                .collect();
        }
        let info = StreamInfo {
            config: self.cfg.clone(),
            created: self.created,
            state,
            domain: self.domain.clone(),
            cluster: Some(ClusterInfo {
                leader: self.server_id.clone(),
                ..ClusterInfo::default()
            }),
            ts: timestamp(now_ns()),
            ..StreamInfo::default()
        };
        let (mirror, sources) = self.origins.describe(&self.cfg);
        let info = StreamInfo {
            mirror,
            sources,
            ..info
        };
        (info, paged)
    }

    /// The first message at or after `start` matching any of `filters` (empty = all).
    pub(crate) fn load_next(
        &self,
        start: u64,
        filters: &[String],
    ) -> Result<StoredMsg, StoreError> {
        if filters.is_empty() {
            return self.store.load_next(start, ">");
        }
        let refs: Vec<&str> = filters.iter().map(String::as_str).collect();
        self.store.load_next_multi(start, &refs)
    }

    /// A batch of messages for a consumer.
    pub(crate) fn load_batch(
        &self,
        start: u64,
        filters: &[String],
        max_msgs: usize,
        max_bytes: usize,
    ) -> Result<Batch, ApiError> {
        let mut batch = Batch {
            msgs: Vec::new(),
            last_seq: self.store.state().last_seq,
        };
        let mut seq = start.max(1);
        let mut bytes = 0usize;
        while batch.msgs.len() < max_msgs {
            let m = match self.load_next(seq, filters) {
                Ok(m) => m,
                Err(StoreError::NotFound) => break,
                Err(e) => return Err(error::general(&e)),
            };
            let size = m.payload.len() + m.headers.as_ref().map_or(0, Bytes::len);
            if max_bytes > 0 && !batch.msgs.is_empty() && bytes + size > max_bytes {
                break;
            }
            bytes += size;
            seq = m.seq + 1;
            batch.msgs.push(m);
        }
        Ok(batch)
    }

    fn interested(&self, seq: u64, subject: &str) -> bool {
        let map = locks::read(&self.consumers);
        map.values().any(|c| {
            let filters = c.filters();
            let hit = filters.is_empty() || filters.iter().any(|f| matches(f, subject));
            hit && c.needs_ack(seq)
        })
    }

    /// Whether any registered consumer's filter matches `subject`.
    pub(super) fn has_interest_in(&self, subject: &str) -> bool {
        let map = locks::read(&self.consumers);
        map.values().any(|c| {
            let filters = c.filters();
            filters.is_empty() || filters.iter().any(|f| matches(f, subject))
        })
    }

    /// Removes acked messages under interest / work-queue retention.
    pub(crate) fn remove_acked(&mut self, seqs: &[u64]) -> Result<u64, ApiError> {
        let mut removed = 0;
        match self.cfg.retention {
            RetentionPolicy::Limits => return Ok(0),
            RetentionPolicy::WorkQueue => {
                for &seq in seqs {
                    removed += u64::from(self.store.remove(seq).is_ok());
                }
            }
            RetentionPolicy::Interest => {
                for &seq in seqs {
                    let Ok(m) = self.store.load(seq) else {
                        continue;
                    };
                    if !self.interested(seq, m.subject_str()) {
                        removed += u64::from(self.store.remove(seq).is_ok());
                    }
                }
            }
        }
        if removed > 0 {
            self.dirty = true;
        }
        Ok(removed)
    }

    /// Interest retention: drops every message no consumer needs any more
    /// (after a consumer went away).
    pub(crate) fn check_interest(&mut self) -> Result<(), ApiError> {
        if self.cfg.retention != RetentionPolicy::Interest {
            return Ok(());
        }
        let mut seq = self.store.state().first_seq;
        let mut drop = Vec::new();
        while let Ok(m) = self.store.load_next(seq, ">") {
            if !self.interested(m.seq, m.subject_str()) {
                drop.push(m.seq);
            }
            seq = m.seq + 1;
        }
        for s in drop {
            let _ = self.store.remove(s);
            self.dirty = true;
        }
        Ok(())
    }

    /// `STREAM.PURGE`.
    pub(crate) fn purge(&mut self, req: &StreamPurgeRequest) -> Result<u64, ApiError> {
        if self.cfg.sealed {
            return Err(ErrorCode::STREAM_SEALED.error());
        }
        if self.cfg.deny_purge {
            return Err(ErrorCode::STREAM_PURGE_FAILED.err("stream purge not permitted"));
        }
        if req.seq > 0 && req.keep > 0 {
            return Err(ErrorCode::BAD_REQUEST.error());
        }
        let purge = PurgeRequest {
            filter: (!req.filter.is_empty()).then(|| req.filter.clone()),
            seq: (req.seq > 0).then_some(req.seq),
            keep: (req.keep > 0).then_some(req.keep),
        };
        let n = self
            .store
            .purge(&purge)
            .map_err(|e| ErrorCode::STREAM_PURGE_FAILED.err(e))?;
        self.dirty = true;
        Ok(n)
    }

    /// `STREAM.MSG.DELETE`.
    pub(crate) fn delete_msg(&mut self, seq: u64, no_erase: bool) -> Result<(), ApiError> {
        if self.cfg.sealed {
            return Err(ErrorCode::STREAM_SEALED.error());
        }
        if self.cfg.deny_delete {
            return Err(ErrorCode::STREAM_MSG_DELETE_FAILED.err("message delete not permitted"));
        }
        let r = if no_erase {
            self.store.remove(seq)
        } else {
            self.store.erase(seq)
        };
        r.map_err(|e| error::delete_error(&e))?;
        self.dirty = true;
        Ok(())
    }

    /// `STREAM.MSG.GET` (and the single-message direct get).
    pub(crate) fn msg_get(&self, req: &MsgGetRequest) -> Result<StoredMsg, ApiError> {
        let r = if !req.last_by_subj.is_empty() {
            self.store.load_last(&req.last_by_subj)
        } else if !req.next_by_subj.is_empty() {
            self.store.load_next(req.seq.max(1), &req.next_by_subj)
        } else if req.seq > 0 {
            self.store.load(req.seq)
        } else {
            return Err(ErrorCode::BAD_REQUEST.error());
        };
        r.map_err(|e| error::load_error(&e))
    }

    /// `STREAM.UPDATE` after validation: new limits, persisted config.
    pub(crate) fn update(&mut self, cfg: StreamConfig) -> Result<StreamInfo, ApiError> {
        let store_cfg = store_config(&cfg, self.sync);
        self.store
            .update_config(store_cfg)
            .map_err(|e| error::general(&e))?;
        self.dedupe.set_window(cfg.duplicate_window.0);
        self.rewrites = Rewrites::new(&cfg);
        self.cfg = cfg;
        self.dirty = true;
        self.write_meta()?;
        Ok(self.info(false, None).0)
    }

    /// Writes the durable config (file streams only).
    pub(super) fn write_meta(&self) -> Result<(), ApiError> {
        let Some(p) = &self.persist else {
            return Ok(());
        };
        let doc = StoredStream {
            config: self.cfg.clone(),
            created: self.created,
        };
        let bytes = serde_json::to_vec(&doc).map_err(|e| ErrorCode::STREAM_GENERAL.err(e))?;
        meta::update_stream_config(StdFs::shared().as_ref(), &p.root, &self.name, &bytes)
            .map_err(|e| error::general(&e))
    }

    /// Timers: message expiry, message schedules, atomic batch timeouts and, in lazy mode, the periodic sync. Returns the
    /// nanoseconds until the next one is due (`None`: nothing scheduled).
    pub(super) fn on_timer(&mut self) -> Option<i64> {
        let now = now_ns();
        let own = !self.timers_by_leader;
        if own {
            self.run_timers_at(now);
        }
        self.batches.expire(now);
        self.fast.expire(now);
        let deadline = [
            own.then(|| self.timers_due()).flatten(),
            self.batches.next_timeout(),
            self.fast.next_timeout(),
        ]
        .into_iter()
        .flatten()
        .min();
        let mut next = deadline.map(|t| t - now);
        if let SyncPolicy::Interval(d) = self.sync {
            let every = i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
            if self.dirty && now - self.last_sync_ns >= every {
                self.sync_now();
            }
            if self.dirty {
                let due = every - (now - self.last_sync_ns);
                next = Some(next.map_or(due, |n| n.min(due)));
            }
        }
        next.map(|n| n.max(1))
    }

    /// Message expiry (`max_age`, `Nats-TTL`), subject delete markers and message
    /// schedules as of `now`: on the stream's own timer, or, for a replica of a
    /// replicated stream, when its group's leader committed them (every replica then
    /// acts at the same place in the log and at the same time).
    pub fn run_timers_at(&mut self, now: i64) {
        let mut emptied = Vec::new();
        if self.store.next_expiry().is_some_and(|t| t <= now) {
            emptied = self.aged_subjects(now);
            match self.store.expire(now) {
                Ok(n) if n > 0 => self.dirty = true,
                Ok(_) => {}
                Err(e) => error!(stream = %self.name, error = %e, "expiry failed"),
            }
        }
        for seq in self.ttls.take_due(now) {
            emptied.extend(self.remove_expired(seq));
        }
        self.place_markers(emptied, now);
        self.fire_schedules(now);
    }

    /// When [`StreamCore::run_timers_at`] next has something to do.
    pub fn timers_due(&self) -> Option<i64> {
        [
            self.store.next_expiry(),
            self.ttls.next(),
            self.schedules.next(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Clean shutdown: sync and checkpoint. `discard`: the stream's files are already in
    /// the trash, so no checkpoint is written (the store is only dropped).
    pub(super) fn close(&mut self, discard: bool) {
        self.flush();
        if discard {
            return;
        }
        if let Err(e) = self.store.close() {
            error!(stream = %self.name, error = %e, "close failed");
        }
    }
}
