//! [`StreamHandle`]: how everything outside the stream's actor talks to a stream.
//!
//! This is the interface between streams (this module's owner) and consumers
//! (`jetstream/consumer/`). A handle is cheap to clone and `Send + Sync`; every
//! async method sends one command to the stream's actor (run in
//! order on the stream pool, see `pool.rs`) and awaits its answer, so
//! callers never touch the store. Consumers:
//! * read with [`StreamHandle::load`], [`StreamHandle::load_next`] and
//!   [`StreamHandle::load_batch`] (one hop for many messages);
//! * wait for new messages on [`StreamHandle::last_seq_watch`];
//! * register themselves with [`StreamHandle::register_consumer`] (a
//!   [`ConsumerLink`]) so `STREAM.INFO` counts them, `STREAM.DELETE` stops them and
//!   interest retention asks them whether they still need a message;
//! * report acks on interest / work-queue streams with [`StreamHandle::remove_acked`].
//!
//! # Errors
//! Every method returns an [`ApiError`] ready for the wire: `STREAM_NOT_FOUND` once
//! the stream is gone, store failures mapped by `jetstream::error`.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::TrySendError;
use std::time::Duration;

use rill_protocol::jsapi::{ApiError, ErrorCode, StreamConfig, StreamInfo, StreamName};
use tokio::sync::{oneshot, watch};

use super::Command;
use super::core::StreamCore;
use super::link::{Batch, ConsumerLink, Consumers};
use super::queue::QueueTx;
use crate::jetstream::error;
use crate::jetstream::store::{StoreError, StoredMsg, StreamState, StreamStore};
use crate::locks;

/// A cloneable, thread-safe handle to one stream's actor.
#[derive(Clone)]
pub struct StreamHandle {
    inner: Arc<Inner>,
}

struct Inner {
    name: StreamName,
    tx: QueueTx,
    last_seq: watch::Receiver<u64>,
    consumers: Consumers,
    usage: Arc<AtomicU64>,
}

impl fmt::Debug for StreamHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamHandle")
            .field("name", &self.inner.name)
            .finish_non_exhaustive()
    }
}

fn gone() -> ApiError {
    ErrorCode::STREAM_NOT_FOUND.error()
}

impl StreamHandle {
    pub(crate) fn new(
        name: StreamName,
        tx: QueueTx,
        last_seq: watch::Receiver<u64>,
        consumers: Consumers,
        usage: Arc<AtomicU64>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                name,
                tx,
                last_seq,
                consumers,
                usage,
            }),
        }
    }

    /// Messages dropped on the way into the stream (its queue was full) since it was
    /// opened.
    pub fn dropped(&self) -> u64 {
        self.inner.tx.dropped()
    }

    /// The command queue (for the stream's router subscriptions).
    pub(crate) fn sender(&self) -> QueueTx {
        self.inner.tx.clone()
    }

    /// Bytes stored, as of the last batch (no hop to the stream's actor).
    pub fn usage_bytes(&self) -> u64 {
        self.inner.usage.load(Ordering::Relaxed)
    }

    /// The stream's name.
    pub fn name(&self) -> &StreamName {
        &self.inner.name
    }

    /// Sends a command, waiting (asynchronously) while the stream's queue is full.
    pub(crate) async fn send(&self, mut cmd: Command) -> Result<(), ApiError> {
        loop {
            match self.inner.tx.try_send(cmd) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Disconnected(_)) => return Err(gone()),
                Err(TrySendError::Full(back)) => {
                    cmd = *back;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        }
    }

    /// Runs `f` on the stream's actor (after the pending batch is durable) and returns its result.
    pub(crate) async fn call<R, F>(&self, f: F) -> Result<R, ApiError>
    where
        R: Send + 'static,
        F: FnOnce(&mut StreamCore) -> Result<R, ApiError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job = Box::new(move |core: &mut StreamCore| {
            let _ = tx.send(f(core));
        });
        self.send(Command::Call(job)).await?;
        // The stream took the command but dropped its answer: the command failed
        // (panicked) on the stream, or the stream closed before running it.
        rx.await
            .map_err(|_| ErrorCode::STREAM_GENERAL.err("stream request failed"))?
    }

    /// Current config and state, like `STREAM.INFO` without details.
    pub async fn info(&self) -> Result<StreamInfo, ApiError> {
        self.call(|core| Ok(core.info(false, None).0)).await
    }

    /// The effective config.
    pub async fn config(&self) -> Result<StreamConfig, ApiError> {
        self.call(|core| Ok(core.config().clone())).await
    }

    /// The store's state (counts, sequences, times).
    pub async fn state(&self) -> Result<StreamState, ApiError> {
        self.call(|core| Ok(core.store().state())).await
    }

    /// Loads message `seq`. `Ok(None)` when it does not exist or was deleted.
    pub async fn load(&self, seq: u64) -> Result<Option<StoredMsg>, ApiError> {
        self.call(move |core| absent_is_none(core.store().load(seq)))
            .await
    }

    /// The first message at or after `start` matching any of `filters` (empty = all).
    pub async fn load_next(
        &self,
        start: u64,
        filters: Vec<String>,
    ) -> Result<Option<StoredMsg>, ApiError> {
        self.call(move |core| absent_is_none(core.load_next(start, &filters)))
            .await
    }

    /// Up to `max_msgs` messages (and about `max_bytes` of payload+headers, at
    /// least one message; 0 = no byte limit) at or after `start` matching `filters`.
    pub async fn load_batch(
        &self,
        start: u64,
        filters: Vec<String>,
        max_msgs: usize,
        max_bytes: usize,
    ) -> Result<Batch, ApiError> {
        self.call(move |core| core.load_batch(start, &filters, max_msgs, max_bytes))
            .await
    }

    /// The last message on `subject` (a literal subject or filter).
    pub async fn load_last(&self, subject: String) -> Result<Option<StoredMsg>, ApiError> {
        self.call(move |core| absent_is_none(core.store().load_last(&subject)))
            .await
    }

    /// Runs `f` on the stream's actor once its last sequence is past `seen`: at once if
    /// it is already, else in the flush that makes a later message durable, before that
    /// batch's PubAcks (a read parked at the stream's end, see `parked`).
    pub async fn read_after<R, F>(&self, seen: u64, f: F) -> Result<R, ApiError>
    where
        R: Send + 'static,
        F: FnOnce(&dyn StreamStore) -> R + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let park = move |core: &mut StreamCore| {
            if core.store().state().last_seq > seen {
                let _ = tx.send(f(core.store()));
            } else {
                core.parked.park(seen, f, tx);
            }
        };
        self.send(Command::Call(Box::new(park))).await?;
        rx.await
            .map_err(|_| ErrorCode::STREAM_GENERAL.err("stream request failed"))
    }

    /// Watches the stream's last sequence: it changes after each durable batch.
    pub fn last_seq_watch(&self) -> watch::Receiver<u64> {
        self.inner.last_seq.clone()
    }

    /// Interest / work-queue retention: `seqs` were acked by a consumer. The stream
    /// removes each one no registered consumer still needs (work queue: at once).
    /// Returns how many were removed. Limits-retention streams ignore it.
    pub async fn remove_acked(&self, seqs: Vec<u64>) -> Result<u64, ApiError> {
        self.call(move |core| core.remove_acked(&seqs)).await
    }

    /// Adds a consumer to the stream's registry (replacing one of the same name).
    pub fn register_consumer(&self, link: Arc<dyn ConsumerLink>) {
        let mut map = locks::write(&self.inner.consumers);
        map.insert(link.name().to_owned(), link);
    }

    /// Removes a consumer from the registry. On interest streams the stream then
    /// drops messages no remaining consumer needs.
    pub async fn unregister_consumer(&self, name: &str) -> Result<(), ApiError> {
        let removed = {
            let mut map = locks::write(&self.inner.consumers);
            map.remove(name).is_some()
        };
        if removed {
            self.call(|core| core.check_interest()).await?;
        }
        Ok(())
    }

    /// The registered consumers.
    pub fn consumers(&self) -> Vec<Arc<dyn ConsumerLink>> {
        let map = locks::read(&self.inner.consumers);
        map.values().cloned().collect()
    }

    /// How many consumers are registered.
    pub fn consumer_count(&self) -> usize {
        locks::read(&self.inner.consumers).len()
    }
}

fn absent_is_none(r: Result<StoredMsg, StoreError>) -> Result<Option<StoredMsg>, ApiError> {
    match r {
        Ok(m) => Ok(Some(m)),
        Err(StoreError::NotFound | StoreError::Deleted) => Ok(None),
        Err(e) => Err(error::general(&e)),
    }
}
