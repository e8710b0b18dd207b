//! The stream actor: each stream's [`StreamCore`] owns its store and is run by the
//! stream pool, a fixed set of OS threads shared by all streams (`pool`, `actor`), so
//! thousands of streams cost no thread each.
//!
//! Inbound is one bounded channel of [`Command`]s: publishes (from the stream's
//! subscriptions on its subjects, see `subs`), direct gets, and closures sent by
//! [`StreamHandle`] for everything else. A run drains what is queued, applies
//! it in order, then makes the batch durable with one `sync()` (group commit,
//! `SyncPolicy::Always`) before sending the batch's PubAcks. Any non-publish
//! command first flushes the batch so reads only see durable messages.
//!
//! Lazy mode (`sync_interval`) acks at once and syncs on a timer. Message expiry
//! (`max_age`) and TTLs run on the same actor, on timers the pool keeps.

mod actor;
mod batch;
mod catchup;
mod core;
mod counter;
mod dedupe;
mod direct;
mod fast;
mod handle;
mod ingest;
mod link;
mod markers;
mod parked;
mod pool;
mod queue;
mod schedule;
mod source;
mod subs;
mod traced;
mod ttl;

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use rill_protocol::jsapi::{
    ApiError, DiscardPolicy, StorageType, StreamConfig, StreamName, Timestamp,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{oneshot, watch};
use tracing::error;

use self::actor::Actor;
pub(crate) use self::batch::ServerBatches;

pub use self::catchup::Position;
pub use self::core::StreamCore;
pub(crate) use self::core::{AccountUsage, Budget, Persist};
use self::dedupe::{Dedupe, LastMsgId};
pub use self::handle::StreamHandle;
pub use self::link::{Batch, ConsumerLink};
pub(crate) use self::source::{STREAM_IDENTITY, stream_identity};
pub(crate) use self::subs::StreamSubs;
use crate::account::Account;
use crate::jetstream::error;
use crate::jetstream::republish::Rewrites;
pub(crate) use crate::jetstream::store::timestamp;
use crate::jetstream::store::{
    Discard, FileStore, MemStore, StdFs, StorageKind, StoreConfig, StreamStore, SyncPolicy, meta,
    now_ns,
};
use crate::trace::record::Trace;

/// Commands queued to a stream.
pub(crate) enum Command {
    /// A message published on one of the stream's subjects.
    Publish {
        subject: Bytes,
        reply: Option<Bytes>,
        headers: Option<Bytes>,
        payload: Bytes,
        /// The record of a traced message (see `traced`).
        trace: Option<Arc<Trace>>,
    },
    /// A `$JS.API.DIRECT.GET.<stream>[.<subject>]` request.
    Direct {
        subject: Bytes,
        reply: Option<Bytes>,
        payload: Bytes,
    },
    /// Work for the stream (see `StreamHandle::call`).
    Call(Box<dyn FnOnce(&mut StreamCore) + Send>),
    /// Flush, close the store and stop taking commands. With `discard` (the stream was
    /// deleted) the store is dropped without its closing checkpoint.
    Close {
        done: oneshot::Sender<()>,
        discard: bool,
    },
}

/// Queue depth of a stream's command channel.
const QUEUE: usize = 8192;
/// Most commands applied before one group commit.
pub(crate) const MAX_BATCH: usize = 4096;

/// What a file stream persists in its `meta.cfg`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoredStream {
    pub(crate) config: StreamConfig,
    pub(crate) created: Timestamp,
}

/// The store's view of a stream config.
pub(crate) fn store_config(cfg: &StreamConfig, sync: SyncPolicy) -> StoreConfig {
    StoreConfig {
        max_msgs: cfg.max_msgs,
        max_bytes: cfg.max_bytes,
        max_age: cfg.max_age.to_duration().unwrap_or(Duration::ZERO),
        max_msgs_per_subject: cfg.max_msgs_per_subject,
        max_msg_size: cfg.max_msg_size,
        discard: match cfg.discard {
            DiscardPolicy::Old => Discard::Old,
            DiscardPolicy::New => Discard::New,
        },
        discard_new_per_subject: cfg.discard_new_per_subject,
        storage: match cfg.storage {
            StorageType::File => StorageKind::File,
            StorageType::Memory => StorageKind::Memory,
        },
        sync,
        ..StoreConfig::default()
    }
}

/// Everything needed to start a stream.
#[derive(Debug)]
pub(crate) struct Spawn {
    pub(crate) cfg: StreamConfig,
    pub(crate) created: Timestamp,
    /// The account's JetStream root; `None` for memory streams.
    pub(crate) root: Option<PathBuf>,
    /// Create the directory and config (new stream) rather than open them.
    pub(crate) create: bool,
    pub(crate) account: Arc<Account>,
    /// The account's usage of this stream's storage kind.
    pub(crate) usage: AccountUsage,
    pub(crate) domain: String,
    pub(crate) server_id: String,
    pub(crate) sync: SyncPolicy,
    /// `jetstream { index_cache }`: the file store's index cache bound, `None` for its default.
    pub(crate) index_cache: Option<usize>,
    /// A replica of a replicated stream: its subjects are not subscribed here (see
    /// `StreamSubs::install`).
    pub(crate) replicated: bool,
    /// The server's open atomic batches (see `batch`).
    pub(crate) batches: Arc<ServerBatches>,
}

impl Spawn {
    /// The store's config at open: the stream's limits and the server's store settings.
    pub(crate) fn store_config(&self) -> StoreConfig {
        let mut cfg = store_config(&self.cfg, self.sync);
        if let Some(bytes) = self.index_cache {
            cfg.index_cache = bytes;
        }
        cfg
    }
}

/// Opens a stream and starts it on the stream pool; resolves once the store is open.
///
/// # Errors
/// `STREAM_CREATE` / `STREAM_GENERAL` with the store error.
pub(crate) async fn spawn(p: Spawn) -> Result<(StreamHandle, StreamSubs), ApiError> {
    // Validated by the API; checked again here because the name will name the stream's
    // directory (a stored config read back from disk comes this way too).
    let name = StreamName::new(p.cfg.name.clone())
        .map_err(|e| rill_protocol::jsapi::ErrorCode::STREAM_CREATE.err(e))?;
    // Tests shrink one stream's queue to make it overflow (`stream.queue` fault).
    let depth = match crate::fault::armed("stream.queue", &p.cfg.name) {
        true => 4,
        false => QUEUE,
    };
    let mut actor = None;
    let tx = queue::queue(depth, |rx| {
        let a = Arc::new(Actor::new(rx));
        actor = Some(Arc::clone(&a));
        a
    });
    let ingest = !p.replicated;
    let (seq_tx, seq_rx) = watch::channel(0);
    let consumers = Arc::new(RwLock::new(Default::default()));
    let usage = Arc::new(AtomicU64::new(0));
    let handle = StreamHandle::new(
        name.clone(),
        tx.clone(),
        seq_rx,
        Arc::clone(&consumers),
        Arc::clone(&usage),
    );
    let account = Arc::clone(&p.account);
    // Opening reads the store: blocking work, off the async threads.
    let core = tokio::task::spawn_blocking(move || open(p, name, consumers, usage, seq_tx))
        .await
        .map_err(|_| rill_protocol::jsapi::ErrorCode::STREAM_CREATE.err("stream open failed"))??;
    if let Some(actor) = actor {
        actor.start(core);
    }
    let cfg = handle.config().await?;
    let subs = StreamSubs::install(&account, &cfg, &tx, ingest);
    Ok((handle, subs))
}

fn open(
    p: Spawn,
    name: StreamName,
    consumers: link::Consumers,
    usage: Arc<AtomicU64>,
    last_seq_tx: watch::Sender<u64>,
) -> Result<StreamCore, ApiError> {
    let store_cfg = p.store_config();
    let mut store: Box<dyn StreamStore> = match (&p.root, p.cfg.storage) {
        (Some(root), StorageType::File) => {
            let vfs = StdFs::shared();
            if p.create {
                let doc = StoredStream {
                    config: p.cfg.clone(),
                    created: p.created,
                };
                let bytes = serde_json::to_vec(&doc)
                    .map_err(|e| rill_protocol::jsapi::ErrorCode::STREAM_CREATE.err(e))?;
                meta::create_stream(vfs.as_ref(), root, &name, &bytes)
                    .map_err(|e| error::create_error(&e))?;
            }
            let dir = meta::stream_msgs_dir(root, &name);
            Box::new(FileStore::open(&dir, store_cfg, vfs).map_err(|e| error::create_error(&e))?)
        }
        _ => Box::new(MemStore::new(store_cfg)),
    };
    if p.create && p.cfg.first_seq > 1 {
        store
            .compact(p.cfg.first_seq)
            .map_err(|e| error::create_error(&e))?;
        store.sync().map_err(|e| error::create_error(&e))?;
    }
    let now = now_ns();
    let mut dedupe = Dedupe::new(p.cfg.duplicate_window.0);
    dedupe.rebuild_later(store.state().last_seq);
    let last_msg_id = LastMsgId::of_seq(store.state().last_seq);
    let mut ttls = ttl::TtlSchedule::default();
    if p.cfg.allow_msg_ttl {
        ttls.rebuild(store.as_ref())
            .map_err(|e| error::create_error(&e))?;
    }
    let _ = last_seq_tx.send(store.state().last_seq);
    let persist = match (p.root, p.cfg.storage) {
        (Some(root), StorageType::File) => Some(Persist { root }),
        _ => None,
    };
    let rewrites = Rewrites::new(&p.cfg);
    let mut core = StreamCore {
        name,
        cfg: p.cfg,
        created: p.created,
        store,
        dedupe,
        last_msg_id,
        ttls,
        consumers,
        usage,
        account: p.usage,
        router: p.account,
        domain: p.domain,
        server_id: p.server_id,
        sync: p.sync,
        dirty: false,
        pending: Vec::new(),
        last_seq_tx,
        persist,
        last_sync_ns: now,
        rewrites,
        origins: source::status::Status::default(),
        schedules: schedule::Schedules::default(),
        batches: batch::Batches::new(p.batches),
        fast: fast::FastBatches::default(),
        timers_by_leader: p.replicated,
        parked: parked::ParkedReads::default(),
    };
    if batch::repair_torn(core.store.as_mut()).map_err(|e| error::create_error(&e))? > 0 {
        core.dirty = true;
    }
    if core.cfg.allow_msg_schedules {
        core.rebuild_schedules()
            .map_err(|e| error::create_error(&e))?;
    }
    Ok(core)
}

/// Reads a stored stream's config document.
pub(crate) fn decode_stored(bytes: &[u8]) -> Result<StoredStream, serde_json::Error> {
    serde_json::from_slice(bytes)
}

/// Logs a failure to restore a stream.
pub(crate) fn log_restore_error(name: &str, e: &dyn std::fmt::Display) {
    error!(stream = %name, error = %e, "could not restore stream");
}

#[cfg(test)]
mod tests;
