//! Consumers: one actor (a tokio task) per consumer owning its delivery cursor,
//! filters, pending acks, redelivery timers, pull waiting queue / push state and its
//! [`ConsumerStore`](crate::jetstream::store::ConsumerStore).
//!
//! ```text
//!  $JS.API.CONSUMER.MSG.NEXT.<s>.<c> ─┐  internal subs → bounded channel
//!  $JS.ACK.<s>.<c>.>                 ─┤                                   ┌─ router (deliveries,
//!  $JS.FC.<s>.<c>.>                  ─┘                                   │  statuses, advisories)
//!  API handlers ── Command (mpsc) ──────────► actor task ─────────────────┤
//!  stream last_seq watch ───────────────────►   │  Source::read (one hop ├─ Source::remove_acked
//!                                               ▼  per batch)            │  (interest / work queue)
//!                                          Tracker ── ConsumerStore      └─ Registry (self-removal)
//! ```
//!
//! Owns: everything about delivery and acks. Does not own: the stream's messages (read
//! through a [`Source`]), config validation (`jetstream::validate`), API replies
//! (`jetstream::api::consumer`).
//!
//! Modules: [`ack`] (subjects and payloads), `tracker` (pending/redelivery state),
//! `pull` (waiting requests), `priority` (priority groups: overflow, pinned client,
//! prioritized), `push` (heartbeats, flow control, rate limit), [`status`]
//! (status-message texts), `outbox` (routing), `source` (reads and pending counts),
//! `start` (creation and restore of one actor), `actor` (the loop, acks, timers),
//! `admin` (info/update/pause/reset/unpin/stop), `deliver` (the delivery pump), [`events`]
//! (advisories and dead letters; see `DEAD_LETTERS.md`), `service` (the bridge to the
//! JetStream service and `StreamHandle`).
//!
//! Durability: deliveries and plain acks are synced within a short window (100 ms with
//! `sync: always`, else the configured interval), so a crash can only cause redelivery;
//! an ack sent as a request is synced before it is answered; shutdown syncs everything.

pub mod ack;
mod actor;
mod admin;
mod deliver;
pub mod events;
mod outbox;
mod parked;
mod priority;
mod pull;
mod push;
pub(crate) mod service;
mod source;
mod start;
pub mod status;
#[cfg(test)]
mod store_source;
mod tracker;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use rill_protocol::jsapi::{
    ApiError, ConsumerConfig, ConsumerInfo, ConsumerName, ConsumerPauseResponse,
    ConsumerResetResponse, ConsumerUnpinResponse, ErrorCode, StreamName, Timestamp,
};
use tokio::sync::{mpsc, oneshot};

pub use self::events::DEAD_LETTER_KEY;
pub use self::outbox::Outbox;
pub use self::source::Source;
pub use self::start::{StartSpec, StoredConsumer, start};
#[cfg(test)]
pub use self::store_source::StoreSource;
use crate::jetstream::store::SharedVfs;

/// Where durable consumers keep their config and state.
#[derive(Debug, Clone)]
pub struct Persist {
    /// File system.
    pub vfs: SharedVfs,
    /// The JetStream store root (the `meta` layout's `<root>`).
    pub root: PathBuf,
}

/// A request to a consumer actor.
#[derive(Debug)]
pub(crate) enum Command {
    Info(oneshot::Sender<ConsumerInfo>),
    Update(
        Box<ConsumerConfig>,
        oneshot::Sender<Result<ConsumerInfo, ApiError>>,
    ),
    Pause(Option<Timestamp>, oneshot::Sender<ConsumerPauseResponse>),
    Reset(
        u64,
        oneshot::Sender<Result<ConsumerResetResponse, ApiError>>,
    ),
    Unpin(
        String,
        oneshot::Sender<Result<ConsumerUnpinResponse, ApiError>>,
    ),
    /// Stop; `true` also deletes the state and answers waiting pulls `409 Consumer Deleted`.
    Stop(bool, oneshot::Sender<()>),
    /// The server is stopping: waiting pulls get `409 Server Shutdown` now, while their
    /// clients are still connected.
    Release(oneshot::Sender<()>),
}

/// The part of a consumer others may read without asking the actor.
#[derive(Debug)]
pub struct Shared {
    /// Stream name.
    pub stream: StreamName,
    /// Consumer name.
    pub name: ConsumerName,
    /// A mirror's or source's internal consumer (`direct`): left out of CONSUMER.NAMES,
    /// CONSUMER.LIST and the stream's `consumer_count`, as nats-server does.
    pub direct: bool,
    /// Filters (empty = all); replaced when an update changes them.
    filters: Mutex<Vec<String>>,
    /// Next stream sequence not yet read, for interest retention.
    next_unread: AtomicU64,
    /// Pending stream sequences, tracked only for interest retention.
    pending: Mutex<std::collections::BTreeSet<u64>>,
    stopped: AtomicBool,
    stop: tokio::sync::Notify,
    id: u64,
}

impl Shared {
    /// The filters (empty = the whole stream).
    pub fn filters(&self) -> Vec<String> {
        self.filters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn set_filters(&self, filters: Vec<String>) {
        *self.filters.lock().unwrap_or_else(PoisonError::into_inner) = filters;
    }

    /// True while `seq` is not yet delivered or not yet acked.
    pub fn needs(&self, seq: u64) -> bool {
        seq >= self.next_unread.load(Ordering::Acquire)
            || self
                .pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .contains(&seq)
    }

    /// Asks the actor to stop (the stream is going away).
    pub fn request_stop(&self) {
        self.stopped.store(true, Ordering::Release);
        self.stop.notify_one();
    }
}

/// A cloneable handle to a running consumer.
#[derive(Debug, Clone)]
pub struct ConsumerHandle {
    tx: mpsc::Sender<Command>,
    shared: Arc<Shared>,
}

fn gone() -> ApiError {
    ErrorCode::CONSUMER_NOT_FOUND.error()
}

impl ConsumerHandle {
    /// The shared, lock-light part (name, filters, interest answers).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    async fn ask<R>(
        &self,
        make: impl FnOnce(oneshot::Sender<R>) -> Command,
    ) -> Result<R, ApiError> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(make(tx)).await.map_err(|_| gone())?;
        rx.await.map_err(|_| gone())
    }

    /// ConsumerInfo now.
    ///
    /// # Errors
    /// `CONSUMER_NOT_FOUND` when the actor is gone.
    pub async fn info(&self) -> Result<ConsumerInfo, ApiError> {
        self.ask(Command::Info).await
    }

    /// Applies an updated (validated) config.
    ///
    /// # Errors
    /// `CONSUMER_NOT_FOUND`, store errors.
    pub async fn update(&self, cfg: ConsumerConfig) -> Result<ConsumerInfo, ApiError> {
        self.ask(|tx| Command::Update(Box::new(cfg), tx)).await?
    }

    /// Pauses until `until` (a past or absent time resumes).
    ///
    /// # Errors
    /// `CONSUMER_NOT_FOUND`.
    pub async fn pause(&self, until: Option<Timestamp>) -> Result<ConsumerPauseResponse, ApiError> {
        self.ask(|tx| Command::Pause(until, tx)).await
    }

    /// Rewinds to the ack floor (`seq` = 0) or to stream sequence `seq`.
    ///
    /// # Errors
    /// `CONSUMER_NOT_FOUND`, `CONSUMER_INVALID_RESET`.
    pub async fn reset(&self, seq: u64) -> Result<ConsumerResetResponse, ApiError> {
        self.ask(|tx| Command::Reset(seq, tx)).await?
    }

    /// `CONSUMER.UNPIN`: the group's pinned client, if any, loses its pin.
    ///
    /// # Errors
    /// `CONSUMER_NOT_FOUND`, `CONSUMER_INVALID_PRIORITY_GROUP`.
    pub async fn unpin(&self, group: String) -> Result<ConsumerUnpinResponse, ApiError> {
        self.ask(|tx| Command::Unpin(group, tx)).await?
    }

    /// Stops the actor; with `delete` its state is removed too.
    pub async fn stop(&self, delete: bool) {
        let _ = self.ask(|tx| Command::Stop(delete, tx)).await;
    }

    /// Answers the waiting pull requests `409 Server Shutdown` (server shutdown).
    pub async fn release_waiting(&self) {
        let _ = self.ask(Command::Release).await;
    }

    /// True once the actor has exited.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

/// Consumers by stream, then by name.
type ByStream = BTreeMap<StreamName, BTreeMap<ConsumerName, ConsumerHandle>>;

/// The running consumers by stream and name. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    inner: Arc<Mutex<ByStream>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ByStream> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The consumer `name` of `stream`.
    pub fn get(&self, stream: &str, name: &str) -> Option<ConsumerHandle> {
        self.lock().get(stream)?.get(name).cloned()
    }

    /// Every consumer of `stream`, by name.
    pub fn list(&self, stream: &str) -> Vec<(ConsumerName, ConsumerHandle)> {
        self.lock()
            .get(stream)
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }

    /// The consumers of `stream` that CONSUMER.NAMES and CONSUMER.LIST show: all but
    /// mirrors' and sources' internal (`direct`) ones.
    pub fn listed(&self, stream: &str) -> Vec<(ConsumerName, ConsumerHandle)> {
        let mut all = self.list(stream);
        all.retain(|(_, h)| !h.shared.direct);
        all
    }

    /// Adds (or replaces) a consumer.
    pub fn insert(&self, handle: ConsumerHandle) {
        let s = &handle.shared;
        self.lock()
            .entry(s.stream.clone())
            .or_default()
            .insert(s.name.clone(), handle.clone());
    }

    /// Removes a consumer (only the instance with this id, so a replacement survives).
    pub(crate) fn remove_if(&self, stream: &str, name: &str, id: u64) {
        let mut map = self.lock();
        if let Some(m) = map.get_mut(stream) {
            if m.get(name).is_some_and(|h| h.shared.id == id) {
                m.remove(name);
            }
            if m.is_empty() {
                map.remove(stream);
            }
        }
    }

    /// Removes every consumer of `stream` from the registry, returning them.
    pub fn take_stream(&self, stream: &str) -> Vec<ConsumerHandle> {
        self.lock()
            .remove(stream)
            .map(|m| m.into_values().collect())
            .unwrap_or_default()
    }

    /// Every consumer of every stream.
    pub fn all(&self) -> Vec<ConsumerHandle> {
        self.lock()
            .values()
            .flat_map(|m| m.values().cloned())
            .collect()
    }
}

/// A unique id per actor instance.
fn next_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
