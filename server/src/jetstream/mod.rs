//! JetStream: persistent streams behind the `$JS.API`.
//!
//! [`JetStream`] is the service of one account; [`JetStreams`] starts one per
//! JetStream-enabled account (see `accounts`) when `Server::start` finds JetStream
//! enabled. A [`JetStream`] owns its account's stream registry (name → [`StreamHandle`] plus the cached
//! config and router subscriptions), restores every stored stream on start, and
//! closes every store on shutdown. Task/thread shape:
//!
//! ```text
//! router ── $JS.API.{INFO,STREAM.>,CONSUMER.>} ── api dispatchers (writes, reads; a task per request)
//!        ── stream subjects, DIRECT.GET ─────────── stream actor (one per stream, owns its store;
//!                                                  runs on the shared stream pool)
//! ```
//!
//! The registry is a `std` `RwLock` held only for short, await-free sections.
//! Creates, updates and deletes of streams hold the API's admin lock (`api::ApiLocks`),
//! so they never race; consumer changes hold their stream's lock.
//!
//! Deleting is all or nothing: the stream's (or consumer's) directory is first renamed
//! into the trash, durably; only when that worked does the stream stop and leave the
//! registry, and the client hear of success. A failed rename leaves everything running
//! and answers the error. Files left in the trash are removed on the next start.

mod accounts;
pub mod api;
pub mod cluster;
pub mod consumer;
pub mod error;
mod registry;
mod report;
pub(crate) mod republish;
pub mod store;
pub mod stream;
pub mod validate;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};

use rill_protocol::jsapi::{ApiError, ErrorCode, StorageType, StreamConfig};
use tracing::{info, warn};

use self::registry::{Entry, Registry};
use self::store::{StdFs, SyncPolicy, meta};
use self::stream::{AccountUsage, Budget, Spawn, StreamHandle, StreamSubs};
use crate::account::Account;
use crate::config::{AccountJetStreamLimits, JetStreamConfig, SyncInterval};
use crate::fault;
use crate::router::Subscription;
use crate::server::ServerState;

pub use accounts::JetStreams;

/// What every account's JetStream shares: the server's byte budgets
/// (`max_file_store`, `max_memory_store`) and the services whose reservations count
/// against them.
#[derive(Debug)]
pub(crate) struct ServerShare {
    file: Arc<Budget>,
    mem: Arc<Budget>,
    services: Mutex<Vec<Weak<JetStream>>>,
    /// The cluster's meta group, once this server joined it (issue 20).
    meta: std::sync::OnceLock<Arc<cluster::MetaGroup>>,
    /// The server is configured for a JetStream cluster (`cluster {}` and
    /// `server_name`): streams with replicas are opened by the meta group's
    /// assignments, not restored at start.
    clustered: bool,
    /// Open atomic batches on every stream (nats-server's limit is per server).
    batches: Arc<stream::ServerBatches>,
}

impl ServerShare {
    pub(crate) fn new(config: &JetStreamConfig, clustered: bool) -> Arc<Self> {
        Arc::new(Self {
            file: Budget::new(u64::try_from(config.max_file_store).ok()),
            mem: Budget::new(u64::try_from(config.max_memory_store).ok()),
            services: Mutex::new(Vec::new()),
            meta: std::sync::OnceLock::new(),
            clustered,
            batches: Arc::default(),
        })
    }

    /// Records this server's member of the meta group.
    pub(crate) fn set_meta(&self, meta: Arc<cluster::MetaGroup>) {
        let _ = self.meta.set(meta);
    }

    /// This server's member of the meta group, when it is in a JetStream cluster.
    pub(crate) fn meta(&self) -> Option<&Arc<cluster::MetaGroup>> {
        self.meta.get()
    }

    /// Records the running services (start and reload).
    pub(crate) fn set_services(&self, all: &[Arc<JetStream>]) {
        *self.services.lock().unwrap_or_else(PoisonError::into_inner) =
            all.iter().map(Arc::downgrade).collect();
    }

    fn services(&self) -> Vec<Arc<JetStream>> {
        self.services
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter_map(Weak::upgrade)
            .collect()
    }
}

/// The JetStream service of one account.
#[derive(Debug)]
pub struct JetStream {
    config: JetStreamConfig,
    /// The account's own limits (`accounts { A { jetstream { … } } }`); unlimited when
    /// the account sets none. Replaced on reload.
    limits: RwLock<AccountJetStreamLimits>,
    /// False for an account without JetStream: its API answers every request with
    /// "JetStream not enabled for account" and it has no store.
    enabled: bool,
    account: Arc<Account>,
    server_id: String,
    root: PathBuf,
    streams: RwLock<Registry>,
    file_usage: AccountUsage,
    mem_usage: AccountUsage,
    share: Arc<ServerShare>,
    api_subs: Mutex<Vec<Arc<Subscription>>>,
    /// `$JS.API` requests answered.
    api_total: AtomicU64,
    /// `$JS.API` requests answered with an error.
    api_errors: AtomicU64,
    /// Running consumers (see `consumer`).
    consumers: consumer::Registry,
    /// What keeps concurrent API changes apart.
    api_locks: api::ApiLocks,
}

impl JetStream {
    /// Starts JetStream for `account` under `<store_dir>/jetstream/<account>`: restores
    /// its stored streams and subscribes its API.
    async fn start_account(
        state: &ServerState,
        (config, share): (JetStreamConfig, &Arc<ServerShare>),
        account: Arc<Account>,
        limits: Option<AccountJetStreamLimits>,
    ) -> Arc<JetStream> {
        let js = Arc::new(Self::new(state, (config, share), account, limits, true));
        // Durable once here (the directory and every one above it), so that a stream or
        // consumer create syncs only the directories it adds.
        if let Err(e) = meta::create_root(StdFs::shared().as_ref(), &js.config.store_dir, &js.root)
        {
            warn!(
                "Could not create JetStream store directory {}: {e}",
                js.root.display()
            );
        }
        js.restore().await;
        js.subscribe_api();
        js
    }

    /// The API of an account without JetStream: every request gets
    /// "JetStream not enabled for account".
    fn start_disabled(
        state: &ServerState,
        (config, share): (JetStreamConfig, &Arc<ServerShare>),
        account: Arc<Account>,
    ) -> Arc<JetStream> {
        let js = Arc::new(Self::new(state, (config, share), account, None, false));
        js.subscribe_api();
        js
    }

    fn new(
        state: &ServerState,
        (config, share): (JetStreamConfig, &Arc<ServerShare>),
        account: Arc<Account>,
        limits: Option<AccountJetStreamLimits>,
        enabled: bool,
    ) -> Self {
        let limits = limits.unwrap_or_default();
        let (file, mem) = byte_limits(&limits);
        JetStream {
            file_usage: AccountUsage {
                account: Budget::new(file),
                server: Arc::clone(&share.file),
            },
            mem_usage: AccountUsage {
                account: Budget::new(mem),
                server: Arc::clone(&share.mem),
            },
            share: Arc::clone(share),
            root: config.store_dir.join("jetstream").join(&account.name),
            config,
            limits: RwLock::new(limits),
            enabled,
            account,
            server_id: state.server_id.clone(),
            streams: RwLock::new(Registry::default()),
            api_subs: Mutex::new(Vec::new()),
            api_total: AtomicU64::new(0),
            api_errors: AtomicU64::new(0),
            consumers: consumer::Registry::new(),
            api_locks: api::ApiLocks::default(),
        }
    }

    fn subscribe_api(self: &Arc<Self>) {
        let subs = api::start(self);
        *self.api_subs.lock().unwrap_or_else(PoisonError::into_inner) = subs;
    }

    /// The account this service belongs to.
    pub fn account_name(&self) -> &str {
        &self.account.name
    }

    /// The account's JetStream limits (unlimited when it sets none).
    pub fn limits(&self) -> AccountJetStreamLimits {
        self.limits
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Applies reloaded limits: to new streams and consumers, and to what running
    /// streams may still store. Streams and consumers already over them stay.
    pub fn set_limits(&self, limits: Option<AccountJetStreamLimits>) {
        let limits = limits.unwrap_or_default();
        let (file, mem) = byte_limits(&limits);
        self.file_usage.account.set_limit(file);
        self.mem_usage.account.set_limit(mem);
        *self.limits.write().unwrap_or_else(PoisonError::into_inner) = limits;
    }

    /// False for an account without JetStream (its API only says so).
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Answers waiting pull requests `409 Server Shutdown`, as nats-server does when it
    /// stops (call before client connections close).
    pub async fn release_pull_requests(&self) {
        consumer::service::release_waiting(self).await;
    }

    /// Stops the API, then flushes and closes every stream.
    pub async fn shutdown(&self) {
        for s in self
            .api_subs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
        {
            self.account.router.unsubscribe(&s);
        }
        consumer::service::shutdown(self).await;
        let entries: Vec<Entry> = {
            let mut map = self.streams.write().unwrap_or_else(PoisonError::into_inner);
            map.take_all()
        };
        for mut e in entries {
            e.subs.remove(&self.account);
            close(&e.handle, false).await;
        }
    }

    async fn restore(&self) {
        let listed = match meta::list_streams(StdFs::shared().as_ref(), &self.root) {
            Ok(l) => l,
            Err(e) => {
                warn!("Could not list streams: {e}");
                return;
            }
        };
        for (name, cfg) in listed {
            let doc = match cfg
                .map_err(|e| e.to_string())
                .and_then(|b| stream::decode_stored(&b).map_err(|e| e.to_string()))
            {
                Ok(d) => d,
                Err(e) => {
                    stream::log_restore_error(&name, &e);
                    continue;
                }
            };
            let cfg = Arc::new(doc.config);
            if self.share.clustered {
                // Every stream of a clustered server is opened when the meta group's
                // assignments name this server.
                continue;
            }
            match stream::spawn(self.spawn_params((*cfg).clone(), doc.created, false)).await {
                Ok((handle, subs)) => {
                    info!("  Restored stream \"{name}\"");
                    self.insert(Entry {
                        handle,
                        cfg,
                        subs,
                        replicated: false,
                    });
                }
                Err(e) => stream::log_restore_error(&name, &e),
            }
        }
        consumer::service::restore(self).await;
    }

    fn sync_policy(&self) -> SyncPolicy {
        match self.config.sync {
            SyncInterval::Always => SyncPolicy::Always,
            SyncInterval::Every(d) => SyncPolicy::Interval(d),
        }
    }

    fn spawn_params(
        &self,
        cfg: StreamConfig,
        created: rill_protocol::jsapi::Timestamp,
        create: bool,
    ) -> Spawn {
        let usage = match cfg.storage {
            StorageType::File => self.file_usage.clone(),
            StorageType::Memory => self.mem_usage.clone(),
        };
        Spawn {
            usage,
            cfg,
            created,
            root: Some(self.root.clone()),
            create,
            account: Arc::clone(&self.account),
            domain: self.domain().to_owned(),
            server_id: self.server_id.clone(),
            sync: self.sync_policy(),
            index_cache: self.config.index_cache,
            replicated: false,
            batches: Arc::clone(&self.share.batches),
        }
    }

    fn insert(&self, entry: Entry) {
        let mut map = self.streams.write().unwrap_or_else(PoisonError::into_inner);
        map.insert(entry);
    }

    /// The JetStream domain, `""` when none.
    pub fn domain(&self) -> &str {
        self.config.domain.as_deref().unwrap_or_default()
    }

    /// The handle of stream `name`.
    pub fn stream(&self, name: &str) -> Option<StreamHandle> {
        let map = self.streams.read().unwrap_or_else(PoisonError::into_inner);
        map.get(name).map(|e| e.handle.clone())
    }

    /// Every stream's cached config, sorted by name (shared, not copied).
    pub fn stream_configs(&self) -> Vec<Arc<StreamConfig>> {
        let map = self.streams.read().unwrap_or_else(PoisonError::into_inner);
        map.entries().map(|e| Arc::clone(&e.cfg)).collect()
    }

    /// Stream `name`'s cached config.
    pub fn stream_config(&self, name: &str) -> Option<Arc<StreamConfig>> {
        let map = self.streams.read().unwrap_or_else(PoisonError::into_inner);
        map.get(name).map(|e| Arc::clone(&e.cfg))
    }

    /// Adds the streams' usage, reservations and consumer counts to `usage`.
    pub(crate) fn add_usage(&self, usage: &mut rill_protocol::jsapi::AccountTier) {
        let map = self.streams.read().unwrap_or_else(PoisonError::into_inner);
        map.add_usage(usage);
    }

    /// Every stream's handle, sorted by name.
    pub fn streams(&self) -> Vec<StreamHandle> {
        let map = self.streams.read().unwrap_or_else(PoisonError::into_inner);
        map.entries().map(|e| e.handle.clone()).collect()
    }

    /// `subjects overlap with an existing stream`: one of `cfg`'s subjects overlaps a
    /// subject of another stream of the account.
    ///
    /// # Errors
    /// `STREAM_SUBJECT_OVERLAP`.
    fn check_overlap(&self, cfg: &StreamConfig) -> Result<(), ApiError> {
        let map = self.streams.read().unwrap_or_else(PoisonError::into_inner);
        validate::subjects_overlap(cfg, map.subjects())
    }

    /// The server's JetStream settings.
    pub fn config(&self) -> &JetStreamConfig {
        &self.config
    }

    /// Creates a stream with a validated, stamped config.
    async fn create_stream(&self, cfg: StreamConfig) -> Result<StreamHandle, ApiError> {
        let created = stream::timestamp(store::now_ns());
        let (handle, subs) = stream::spawn(self.spawn_params(cfg.clone(), created, true)).await?;
        self.insert(Entry {
            handle: handle.clone(),
            cfg: Arc::new(cfg),
            subs,
            replicated: false,
        });
        Ok(handle)
    }

    /// This server's replica of a replicated stream (`cluster::replica`): the running
    /// one, or the stored one opened, or a new one created. Its subjects are left to
    /// its group's leader.
    ///
    /// # Errors
    /// The store could not be opened or created.
    pub(crate) async fn open_replica(
        &self,
        cfg: StreamConfig,
        created: rill_protocol::jsapi::Timestamp,
    ) -> Result<StreamHandle, ApiError> {
        if let Some(handle) = self.stream(&cfg.name) {
            return Ok(handle);
        }
        let stored =
            cfg.storage == StorageType::File && meta::stream_dir(&self.root, &cfg.name).exists();
        let spawn = |create| {
            let mut params = self.spawn_params(cfg.clone(), created, create);
            params.replicated = true;
            stream::spawn(params)
        };
        let (mut handle, mut subs) = spawn(!stored).await?;
        // A store that found damage at open would serve holes its group's other
        // replicas do not have: it is emptied, and its group refills it
        // (`cluster::replica::catchup`).
        if let Some(lost) = handle.state().await?.lost {
            warn!(
                stream = %cfg.name,
                lost = lost.count,
                "stream replica's store is damaged: emptied, to be refilled from its group"
            );
            subs.remove(&self.account);
            close(&handle, false).await;
            self.file_usage.adjust(handle.usage_bytes(), 0);
            let trash = {
                let (root, name) = (self.root.clone(), cfg.name.clone());
                blocking(move || meta::trash_messages(StdFs::shared().as_ref(), &root, &name))
                    .await?
            };
            self.remove_trash(trash).await;
            (handle, subs) = spawn(false).await?;
        }
        self.insert(Entry {
            handle: handle.clone(),
            cfg: Arc::new(cfg),
            subs,
            replicated: true,
        });
        Ok(handle)
    }

    /// Re-subscribes a stream after an update changed its subjects or direct setting.
    fn replace_config(&self, cfg: StreamConfig) {
        let mut map = self.streams.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(mut e) = map.remove(&cfg.name) {
            e.subs.remove(&self.account);
            e.subs = StreamSubs::install(&self.account, &cfg, &e.handle.sender(), !e.replicated);
            e.cfg = Arc::new(cfg);
            map.insert(e);
        }
    }

    /// Deletes a stream: moves its files into the trash (the commit point: on failure
    /// nothing changed), then stops its consumers and the stream, then removes the files.
    async fn delete_stream(&self, name: &str) -> Result<(), ApiError> {
        let storage = {
            let map = self.streams.read().unwrap_or_else(PoisonError::into_inner);
            map.get(name).map(|e| e.cfg.storage)
        };
        let Some(storage) = storage else {
            return Err(ErrorCode::STREAM_NOT_FOUND.error());
        };
        let trash = match storage {
            StorageType::File => Some(self.trash_stream(name).await?),
            StorageType::Memory => None,
        };
        let entry = {
            let mut map = self.streams.write().unwrap_or_else(PoisonError::into_inner);
            map.remove(name)
        };
        if let Some(mut entry) = entry {
            entry.subs.remove(&self.account);
            for c in entry.handle.consumers() {
                c.stop();
            }
            close(&entry.handle, trash.is_some()).await;
            let usage = match storage {
                StorageType::File => &self.file_usage,
                StorageType::Memory => &self.mem_usage,
            };
            usage.adjust(entry.handle.usage_bytes(), 0);
        }
        if let Some(trash) = trash {
            self.remove_trash(trash).await;
        }
        Ok(())
    }

    async fn trash_stream(&self, name: &str) -> Result<meta::Trash, ApiError> {
        let (root, name) = (self.root.clone(), name.to_owned());
        blocking(move || {
            fault::io_if_armed("stream.delete", &name)?;
            meta::trash_stream(StdFs::shared().as_ref(), &root, &name)
        })
        .await
    }

    /// Moves a durable consumer's files into the trash; `None` when it has none
    /// (memory stream, ephemeral consumer).
    async fn trash_consumer(
        &self,
        stream: &str,
        name: &str,
    ) -> Result<Option<meta::Trash>, ApiError> {
        let (root, stream, name) = (self.root.clone(), stream.to_owned(), name.to_owned());
        let r = blocking(move || {
            fault::io_if_armed("consumer.delete", &name)?;
            match meta::trash_consumer(StdFs::shared().as_ref(), &root, &stream, &name) {
                Ok(t) => Ok(Some(t)),
                Err(store::StoreError::NotFound) => Ok(None),
                Err(e) => Err(e),
            }
        });
        r.await
    }

    /// Removes trashed files; a failure only leaves them for the next start to remove.
    async fn remove_trash(&self, trash: meta::Trash) {
        if let Err(e) = blocking(move || trash.remove(StdFs::shared().as_ref())).await {
            warn!("Could not remove deleted files (removed at the next start): {e}");
        }
    }

    /// nats-server's create-time checks, in its order: a tier for the stream's replicas
    /// (tiered limits), `max_bytes_required`, then the reserved bytes (`max_bytes`) of
    /// the kind plus this stream's must fit the account's limit (its own streams) and the
    /// server's (every account's streams), then the largest stream of the kind.
    fn check_resources(&self, cfg: &StreamConfig) -> Result<(), ApiError> {
        let limits = self.limits();
        let tier = format!("R{}", cfg.num_replicas.max(1));
        if !limits.tiers.is_empty() && !limits.tiers.contains_key(&tier) {
            return Err(ErrorCode::NO_LIMITS.error());
        }
        if limits.max_bytes_required && cfg.max_bytes <= 0 {
            return Err(ErrorCode::STREAM_MAX_BYTES_REQUIRED.error());
        }
        self.check_reserved(cfg)?;
        self.check_stream_max_bytes(cfg)
    }

    /// The account's largest stream of `cfg`'s storage kind (`memory_max_stream_bytes`
    /// / `store_max_stream_bytes`). An update checks it before the reserved bytes, a
    /// create after them, as nats-server 2.15.1 answers.
    pub(crate) fn check_stream_max_bytes(&self, cfg: &StreamConfig) -> Result<(), ApiError> {
        let limits = self.limits();
        let max = match cfg.storage {
            StorageType::File => limits.store_max_stream_bytes,
            StorageType::Memory => limits.memory_max_stream_bytes,
        };
        if max > 0 && cfg.max_bytes > max {
            return Err(ErrorCode::STREAM_MAX_STREAM_BYTES_EXCEEDED.error());
        }
        Ok(())
    }

    /// The reserved bytes of `cfg`'s storage kind with its `max_bytes` against the
    /// account's and the server's limits.
    fn check_reserved(&self, cfg: &StreamConfig) -> Result<(), ApiError> {
        let Ok(want) = u64::try_from(cfg.max_bytes) else {
            return Ok(());
        };
        let (usage, err) = match cfg.storage {
            StorageType::File => (&self.file_usage, ErrorCode::STORAGE_RESOURCES_EXCEEDED),
            StorageType::Memory => (&self.mem_usage, ErrorCode::MEMORY_RESOURCES_EXCEEDED),
        };
        let own = self.reserved(cfg.storage, Some(&cfg.name));
        if usage.account.limit().is_some_and(|l| own + want > l) {
            return Err(err.error());
        }
        if let Some(limit) = usage.server.limit() {
            let others: u64 = self
                .share
                .services()
                .iter()
                .filter(|js| !std::ptr::eq(js.as_ref(), self))
                .map(|js| js.reserved(cfg.storage, None))
                .sum();
            if own + others + want > limit {
                return Err(err.error());
            }
        }
        Ok(())
    }

    /// The `max_bytes` reserved by this account's streams of `storage`, but `except`.
    fn reserved(&self, storage: StorageType, except: Option<&str>) -> u64 {
        let map = self.streams.read().unwrap_or_else(PoisonError::into_inner);
        map.reserved(storage, except)
    }

    /// The account's `max_streams` (0 or -1: none), checked before a new stream is made.
    fn check_stream_limit(&self) -> Result<(), ApiError> {
        let count = self
            .streams
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        match reached(self.limits().max_streams, count) {
            true => Err(ErrorCode::MAXIMUM_STREAMS_LIMIT.error()),
            false => Ok(()),
        }
    }

    /// The account's `max_consumers` over all its streams, checked before a new consumer.
    fn check_consumer_limit(&self) -> Result<(), ApiError> {
        let count = self
            .streams()
            .iter()
            .map(StreamHandle::consumer_count)
            .sum();
        match reached(self.limits().max_consumers, count) {
            true => Err(ErrorCode::MAXIMUM_CONSUMERS_LIMIT.error()),
            false => Ok(()),
        }
    }

    fn count(&self, error: bool) {
        self.api_total.fetch_add(1, Ordering::Relaxed);
        if error {
            self.api_errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// True when a positive `limit` leaves no room next to `count`.
fn reached(limit: i64, count: usize) -> bool {
    limit > 0 && i64::try_from(count).unwrap_or(i64::MAX) >= limit
}

/// The account's own file and memory byte limits (`None`: unlimited; the server's
/// budget applies on top).
fn byte_limits(limits: &AccountJetStreamLimits) -> (Option<u64>, Option<u64>) {
    (
        u64::try_from(limits.max_store).ok(),
        u64::try_from(limits.max_memory).ok(),
    )
}

/// Stops a stream; `deleted`: its files are already in the trash, so the store is
/// dropped without its closing checkpoint.
async fn close(handle: &StreamHandle, deleted: bool) {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let cmd = stream::Command::Close {
        done: tx,
        discard: deleted,
    };
    if handle.send(cmd).await.is_ok() {
        let _ = rx.await;
    }
}

/// Runs store I/O on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, store::StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(|e| error::general(&e)),
        Err(e) => Err(ErrorCode::STREAM_GENERAL.err(e)),
    }
}
