//! Starting a consumer: its store (memory, or files for durables of file streams), the
//! deliver-policy start position for a new one, its subscriptions, and the actor task.
//!
//! Owns the `meta.cfg` document of a durable consumer ([`StoredConsumer`]).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rill_protocol::jsapi::{
    ApiError, ApiSubject, ConsumerConfig, ConsumerInfo, ConsumerName, ErrorCode, StreamName,
    Timestamp,
};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::ack::ACK_PREFIX;
use super::actor::{Actor, tracker_pending};
use super::outbox::{Inbound, InternalSub, Outbox};
use super::priority::Priority;
use super::pull::WaitQueue;
use super::push::Push;
use super::source::{Source, start_position};
use super::tracker::Tracker;
use super::{ConsumerHandle, Persist, Registry, Shared, next_id};
use crate::jetstream::store::{
    ConsumerState, ConsumerStore, FileConsumerStore, MemConsumerStore, SequencePair, StoreError,
    meta,
};

/// Commands queued per consumer.
const COMMAND_QUEUE: usize = 64;
/// Inbound messages (acks, pulls, flow control) queued per consumer.
const INBOUND_QUEUE: usize = 8192;

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
    pub stream: StreamName,
    /// Consumer name: it names the consumer's directory and subjects.
    pub name: ConsumerName,
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
    /// How long deliveries and plain acks may stay unsynced; acks sent as requests
    /// are always synced before the reply.
    pub sync_interval: Duration,
    /// Restoring an existing consumer (state and config already stored).
    pub restored: bool,
    /// The consumer's state store when someone else keeps it (a replicated consumer's
    /// group, `cluster::consumer`); `None`: memory or files, by `persist`.
    pub store: Option<Box<dyn ConsumerStore + Sync>>,
}

pub(super) fn store_err(e: StoreError) -> ApiError {
    ErrorCode::CONSUMER_STORE_FAILED.err(e)
}

fn open_store(spec: &mut StartSpec<impl Source>) -> Result<Box<dyn ConsumerStore>, ApiError> {
    if let Some(store) = spec.store.take() {
        let store: Box<dyn ConsumerStore> = store;
        return Ok(store);
    }
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

/// A new consumer: its start position (stored as delivered = ack floor = start - 1, where
/// the start of `last_per_subject` is its lowest sequence, as nats-server reports it), the
/// `last_per_subject` sequences to deliver first, and the cursor's first sequence after them.
async fn initial_state<S: Source>(
    spec: &StartSpec<S>,
    tracker: &mut Tracker,
    now: Instant,
) -> Result<(VecDeque<u64>, u64), ApiError> {
    let cfg = spec.config.clone();
    let pos = spec
        .source
        .read(move |s| start_position(s, &cfg))
        .await?
        .map_err(store_err)?;
    let start = pos.last_per_subject.first().copied().unwrap_or(pos.next);
    let floor = SequencePair {
        consumer: 0,
        stream: start.saturating_sub(1),
    };
    let st = ConsumerState {
        delivered: floor,
        ack_floor: floor,
        ..ConsumerState::default()
    };
    tracker.set_state(st, now).map_err(store_err)?;
    tracker.sync().map_err(store_err)?;
    Ok((pos.last_per_subject.into(), pos.next))
}

/// The actor's internal subscriptions: acks, pull requests, flow-control answers.
fn subscribe<S: Source>(
    spec: &StartSpec<S>,
    push: Option<&Push>,
    tx: &mpsc::Sender<Inbound>,
) -> Vec<InternalSub> {
    let mut subs = vec![
        spec.outbox.subscribe(
            &format!("{ACK_PREFIX}.{}.{}.>", spec.stream, spec.name),
            tx.clone(),
        ),
        spec.outbox.subscribe(
            &ApiSubject::ConsumerNext {
                stream: &spec.stream,
                consumer: &spec.name,
            }
            .to_string(),
            tx.clone(),
        ),
    ];
    if let Some(p) = push.filter(|p| p.flow_control()) {
        subs.push(spec.outbox.subscribe(&p.fc_filter(), tx.clone()));
    }
    subs
}

/// Starts a consumer actor (creating its stored state unless `restored`) and returns its
/// handle with its info as it stood before the first delivery: the create reply reports
/// that state, as nats-server's does (delivered `{0, start - 1}`, everything pending).
/// Taken later, a push consumer may already have sent its first message, and a client
/// whose reply travels a slower path (a service import) sees a delivered count ahead of
/// the message it gets next, which an ordered consumer takes for a gap and resets.
///
/// # Errors
/// `CONSUMER_STORE_FAILED` when its files cannot be written; stream read errors.
pub async fn start<S: Source>(
    mut spec: StartSpec<S>,
) -> Result<(ConsumerHandle, ConsumerInfo), ApiError> {
    let now = Instant::now();
    let store = open_store(&mut spec)?;
    let file_backed = spec.persist.is_some() && !spec.config.mem_storage;
    let mut tracker = Tracker::new(&spec.config, store, file_backed, now);
    let (lps, read_pos) = if spec.restored {
        (VecDeque::new(), tracker.state().delivered.stream + 1)
    } else {
        initial_state(&spec, &mut tracker, now).await?
    };
    let filters: Vec<String> = spec
        .config
        .filters()
        .into_iter()
        .map(str::to_owned)
        .collect();
    let shared = Arc::new(Shared {
        stream: spec.stream.clone(),
        name: spec.name.clone(),
        direct: spec.config.direct,
        filters: Mutex::new(filters.clone()),
        next_unread: AtomicU64::new(lps.front().copied().unwrap_or(read_pos)),
        pending: Mutex::new(tracker_pending(&tracker)),
        stopped: AtomicBool::new(false),
        stop: tokio::sync::Notify::new(),
        id: next_id(),
    });
    let (cmd_tx, cmd_rx) = mpsc::channel(COMMAND_QUEUE);
    let (in_tx, in_rx) = mpsc::channel(INBOUND_QUEUE);
    let push = spec
        .config
        .is_push()
        .then(|| Push::new(&spec.config, &spec.stream, &spec.name, now));
    let subs = subscribe(&spec, push.as_ref(), &in_tx);
    let mut actor = Actor {
        stream: spec.stream,
        name: spec.name,
        created: spec.created,
        waiting: WaitQueue::new(spec.config.max_waiting),
        priority: Priority::new(&spec.config),
        paused_until: spec.config.pause_until,
        cfg: spec.config,
        last_seq: spec.source.last_seq_watch(),
        src: spec.source,
        out: spec.outbox,
        tracker,
        filters,
        read_pos,
        buf: VecDeque::new(),
        count: None,
        parked: super::parked::Parked::default(),
        lps,
        push,
        last_activity: now,
        shared: Arc::clone(&shared),
        registry: spec.registry.clone(),
        persist: spec.persist,
        interest: spec.interest,
        remove_acked: spec.remove_acked,
        to_remove: Vec::new(),
        sync_interval: spec.sync_interval,
        next_sync: None,
        syncing: None,
        replay_anchor: None,
        replay_wake: None,
        dropped_later: Vec::new(),
        _subs: subs,
    };
    let info = actor.info().await;
    let handle = ConsumerHandle { tx: cmd_tx, shared };
    spec.registry.insert(handle.clone());
    actor.src.register(Arc::clone(&handle.shared));
    tokio::spawn(actor.run(cmd_rx, in_rx));
    Ok((handle, info))
}
