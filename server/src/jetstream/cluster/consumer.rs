//! Replicated consumers (issue 20): a durable consumer of a replicated stream keeps its
//! state in its own Raft group, as on nats-server, so it continues on another server
//! when its leader dies, without redelivering what was acked.
//!
//! # Why a group per consumer (and not entries in the stream's group)
//! nats-server gives every replicated consumer its own group (`C-R3F-<8 characters>`),
//! and so does rill: a consumer's leader can then live on another server than its
//! stream's leader (stepping one down leaves the other); acks, which come at the rate
//! of deliveries, do not lengthen the stream's log, which keeps holding messages only
//! (its restart skip-by-timestamp and its coming snapshots stay about messages); and a
//! consumer's small state is compacted by ordinary snapshots of its own machine
//! (every [`SNAPSHOT_EVERY`] entries) whatever the stream's log does. The cost, one more
//! group (log, heartbeats) per durable, is what nats-server pays too.
//!
//! # Which consumers
//! As nats-server 2.15.1 decides ([`replicas`], [`replicated`]), for a stream of more
//! than one replica: a durable with `num_replicas` 0 (the stream's count) or more than
//! 1; an ephemeral with `num_replicas` more than 1; on an interest or work-queue stream
//! every consumer, with the stream's count (another count is refused, 10134: each
//! replica must know every consumer to remove what all acked). At most the stream's
//! count (10126). Other consumers (R1) live on their stream leader's server as before
//! (an ordered consumer's client makes a new one after a failover).
//!
//! # From create to a running consumer
//! `CONSUMER.CREATE` reaches the stream's leader (`api::forward`), which checks the
//! config as for any consumer and commits a [`ConsumerAssignment`] through the meta
//! group ([`assign::create`]): the config, the group's name, its peers (the stream's
//! replicas' servers, or as many of them as asked). Every server applies the committed
//! assignments ([`reconcile`]): a named server opens its member of the group (log
//! under `<store_dir>/$SYS/_js_/<group>`); the first named forms the group. The
//! member that leads runs the consumer's ordinary actor against its own replica of the
//! stream, with a [`state::ReplicatedStore`] instead of files: every delivery and ack
//! the actor records is committed through the group, and every member applies it to
//! its [`state::ConsumerMachine`]. When another member takes over (the leader died or
//! stepped down), it starts the actor from the committed state: acked messages stay
//! acked, messages delivered but not acked are redelivered after `ack_wait`, as on
//! nats-server; the member that lost the leadership stops its actor.
//!
//! Requests about the consumer (INFO, DELETE, PAUSE, RESET, UNPIN, LEADER.STEPDOWN)
//! are answered by its leader wherever they arrive ([`super::forward`]); pulls and acks
//! reach the actor on its own subscriptions, which routes carry. CONSUMER.NAMES and
//! LIST, answered by the stream's leader, add the replicated consumers led elsewhere
//! (their info asked of their leaders).
//!
//! Each new leader publishes nats-server's
//! `$JS.EVENT.ADVISORY.CONSUMER.LEADER_ELECTED.<stream>.<consumer>` once it runs the
//! consumer.
//!
//! # On every replica of the stream
//! Each server holding a replica of the stream registers the consumer with it
//! ([`link`]), so every replica counts it and knows what it still needs; every member
//! hands what each committed entry acked to its replica, so an interest or work-queue
//! stream removes acked messages on every replica, and a new stream leader does not
//! hold them ([`state`]).
//!
//! # Deletion by inactivity
//! `inactive_threshold` is watched by the running actor, on the leader; when it
//! deletes itself, its member proposes the removal to the meta group, so every server
//! removes its member and no later leader brings the consumer back.

mod assign;
pub mod link;
pub mod report;
pub mod state;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use openraft::{BasicNode, ServerState as RaftState};
use rill_protocol::jsapi::{
    ApiError, ClusterInfo, ConsumerConfig, ErrorCode, RetentionPolicy, StreamConfig, Timestamp,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use self::link::GroupLink;
use self::state::{Committed, ConsumerMachine, ReplicatedStore};
use super::group::{Local, Place, elected, group_info};
pub use super::meta::{ConsumerAssignment, consumer_key as key};
use super::meta::{MetaAnswer, MetaOp};
use super::replica::Standing;
use super::{MetaGroup, lock};
use crate::jetstream::JetStreams;
use crate::jetstream::consumer::{self, ConsumerHandle, events, service};
use crate::jetstream::store::{StdFs, now_ns};
use crate::jetstream::stream::{StreamHandle, timestamp};
use crate::raft::{self, LogStore, MachineStore, Network, Raft, node_id};

pub use assign::{create, delete, leader_info, step_down};

/// Snapshot a consumer's group every this many entries.
const SNAPSHOT_EVERY: u64 = 1024;
/// The longest a replicated consumer's deliveries and plain acks wait before they are
/// proposed to its group.
const REPLICATE_EVERY: Duration = Duration::from_millis(100);
/// How often a member checks whether it should run or stop the consumer.
const LEAD_CHECK: Duration = Duration::from_millis(250);
/// How often the assignments are applied again without a change (a stream replica
/// opened since is then given its consumers' links).
const RELINK_EVERY: Duration = Duration::from_secs(1);

/// How many replicas a consumer with `cfg` on a stream with `stream` has: its
/// `num_replicas`, else the stream's for a durable or any consumer of an interest or
/// work-queue stream, and one for an ephemeral of a limits stream (as nats-server).
pub fn replicas(cfg: &ConsumerConfig, stream: &StreamConfig) -> usize {
    let n = match cfg.num_replicas {
        n if n > 0 => n,
        _ if cfg.is_durable() || stream.retention != RetentionPolicy::Limits => stream.num_replicas,
        _ => 1,
    };
    usize::try_from(n).unwrap_or(1).max(1)
}

/// Whether a consumer with `cfg` on `stream` is replicated (see the module doc). A
/// mirror's or source's consumer never is.
///
/// # Errors
/// An interest or work-queue stream's consumer asking for another count of replicas
/// than the stream's (400/10134, as nats-server).
pub fn replicated(cfg: &ConsumerConfig, stream: &StreamConfig) -> Result<bool, ApiError> {
    if cfg.direct || stream.num_replicas <= 1 {
        return Ok(false);
    }
    if stream.retention != RetentionPolicy::Limits
        && cfg.num_replicas > 0
        && cfg.num_replicas != stream.num_replicas
    {
        return Err(ErrorCode::CONSUMER_REPLICAS_SHOULD_MATCH_STREAM.error());
    }
    Ok(replicas(cfg, stream) > 1)
}

/// This server's members of replicated consumers' groups, by assignment key.
#[derive(Default)]
pub struct Members {
    map: tokio::sync::Mutex<BTreeMap<String, Arc<Member>>>,
    /// The consumers linked to a replica here without a member here, by key.
    others: Mutex<BTreeMap<String, ConsumerAssignment>>,
    jetstreams: Mutex<Weak<JetStreams>>,
}

impl std::fmt::Debug for Members {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Members").finish_non_exhaustive()
    }
}

/// This server's member of one consumer's group.
struct Member {
    assignment: Mutex<ConsumerAssignment>,
    raft: Raft,
    /// The group's network (when each member last answered: `active`).
    net: Network,
    sm: MachineStore<ConsumerMachine>,
    /// When its Raft was opened (`/healthz`).
    opened: tokio::time::Instant,
    /// The committed state (the group link's view).
    committed: Committed,
    /// The group link is registered with the stream's replica here.
    linked: AtomicBool,
    /// The consumer deleted itself (inactivity): its removal is being proposed.
    ended: AtomicBool,
    /// The consumer's actor while this member leads.
    running: Mutex<Option<ConsumerHandle>>,
    /// When this member started leading.
    since: Mutex<Option<Timestamp>>,
    /// A stepdown is handing the leadership over.
    stepping: AtomicBool,
    /// The leading loop and the remover of acked messages.
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// This server's name.
    me: String,
}

/// Starts applying the meta group's consumer assignments on this server: now, and
/// after every change, until the server stops.
pub fn reconcile(meta: Arc<MetaGroup>, jetstreams: Weak<JetStreams>) {
    *lock(&meta.consumers.jetstreams) = jetstreams;
    let task = tokio::spawn({
        let meta = Arc::clone(&meta);
        async move {
            let mut changes = meta.changes().await;
            let mut stop = meta.stop.clone();
            let mut relink = tokio::time::interval(RELINK_EVERY);
            relink.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                apply_assignments(&meta).await;
                tokio::select! {
                    changed = changes.changed() => if changed.is_err() { break },
                    _ = relink.tick() => {}
                    _ = stop.changed() => break,
                }
            }
            let all = std::mem::take(&mut *meta.consumers.map.lock().await);
            for (_, m) in all {
                m.stop(&meta, false).await;
            }
        }
    });
    lock(&meta.tasks).push(task);
}

/// Brings this server's members and links in line with the committed consumer
/// assignments.
async fn apply_assignments(meta: &Arc<MetaGroup>) {
    let me = meta.me().to_string();
    let (wanted, others): (BTreeMap<_, _>, BTreeMap<_, _>) = meta
        .sm
        .with(|m| m.consumers.clone())
        .await
        .into_iter()
        .partition(|(_, a)| a.peers.contains(&me));
    link_others(meta, others).await;
    let mut map = meta.consumers.map.lock().await;
    let gone: Vec<String> = map
        .iter()
        .filter(|(k, m)| wanted.get(*k).is_none_or(|a| a.group != m.group()))
        .map(|(k, _)| k.clone())
        .collect();
    for key in gone {
        if let Some(m) = map.remove(&key) {
            m.stop(meta, true).await;
            m.remove(meta).await;
        }
    }
    for (key, a) in wanted {
        match map.get(&key) {
            Some(m) => {
                m.update(a).await;
                let jetstreams = lock(&meta.consumers.jetstreams).clone();
                m.link(&jetstreams);
            }
            None => match Member::open(meta, a).await {
                Ok(m) => {
                    map.insert(key, m);
                }
                Err(e) => warn!(consumer = %key, error = %e, "could not open a consumer's group"),
            },
        }
    }
}

/// Links the consumers of the streams replicated here that have no member here (see
/// [`link`]), and unlinks those removed since.
async fn link_others(meta: &MetaGroup, others: BTreeMap<String, ConsumerAssignment>) {
    let js = lock(&meta.consumers.jetstreams).clone();
    let before = std::mem::replace(&mut *lock(&meta.consumers.others), others.clone());
    for (key, a) in &before {
        if !others.contains_key(key)
            && let Some(stream) = stream_here(&js, a)
        {
            let _ = stream.unregister_consumer(&a.config.name).await;
        }
    }
    for a in others.values() {
        if let Some(stream) = stream_here(&js, a)
            && !stream.consumers().iter().any(|c| c.name() == a.config.name)
        {
            GroupLink::register(&stream, &a.config.name, filters(&a.config), None);
        }
    }
}

/// The replica of `a`'s stream on this server, if open.
fn stream_here(jetstreams: &Weak<JetStreams>, a: &ConsumerAssignment) -> Option<StreamHandle> {
    jetstreams.upgrade()?.account(&a.account)?.stream(&a.stream)
}

fn filters(cfg: &ConsumerConfig) -> Vec<String> {
    cfg.filters().into_iter().map(str::to_string).collect()
}

/// Hands the stream sequences each committed entry acked to this server's replica of
/// the stream, which removes them under interest or work-queue retention (a limits
/// stream ignores them).
async fn remove_acked(
    mut acked: mpsc::UnboundedReceiver<Vec<u64>>,
    jetstreams: Weak<JetStreams>,
    a: ConsumerAssignment,
) {
    while let Some(mut seqs) = acked.recv().await {
        while let Ok(more) = acked.try_recv() {
            seqs.extend(more);
        }
        if let Some(stream) = stream_here(&jetstreams, &a) {
            let _ = stream.remove_acked(seqs).await;
        }
    }
}

impl Member {
    fn group(&self) -> String {
        lock(&self.assignment).group.clone()
    }

    fn running(&self) -> Option<ConsumerHandle> {
        let mut running = lock(&self.running);
        if running.as_ref().is_some_and(ConsumerHandle::is_closed) {
            *running = None;
        }
        running.clone()
    }

    fn standing(&self) -> Standing {
        let m = self.raft.metrics().borrow().clone();
        if m.state == RaftState::Leader {
            return if self.running().is_some() && !self.stepping.load(Ordering::SeqCst) {
                Standing::Leader
            } else {
                Standing::Stepping
            };
        }
        let membership = m.membership_config.membership();
        Standing::Follower(
            m.current_leader
                .and_then(|id| membership.get_node(&id))
                .map(|n| n.addr.clone()),
        )
    }

    async fn open(meta: &Arc<MetaGroup>, a: ConsumerAssignment) -> Result<Arc<Member>, String> {
        let dir = meta.raft_root.join(&a.group);
        let vfs = StdFs::shared();
        let log = LogStore::open(vfs.clone(), &dir.join("log")).map_err(|e| e.to_string())?;
        let (acked_tx, acked) = mpsc::unbounded_channel();
        let machine = ConsumerMachine::new(acked_tx);
        let committed = Arc::clone(&machine.state);
        let sm = MachineStore::open(vfs, &dir.join("sm"), machine)
            .await
            .map_err(|e| e.to_string())?;
        let cfg = Arc::new(raft::config(meta.cluster_name(), SNAPSHOT_EVERY)?);
        let transport: Arc<dyn raft::Transport> = meta.transport.clone();
        let net = Network::new(&a.group, transport);
        let raft = Raft::new(node_id(meta.me()), cfg, net.clone(), log, sm.clone())
            .await
            .map_err(|e| e.to_string())?;
        let opened = tokio::time::Instant::now();
        meta.transport
            .serve_group(&a.group, raft.clone(), net.clone());
        if a.peers.first().map(String::as_str) == Some(meta.me())
            && !raft.is_initialized().await.unwrap_or(true)
        {
            let members: BTreeMap<u64, BasicNode> = a
                .peers
                .iter()
                .map(|p| (node_id(p), BasicNode { addr: p.clone() }))
                .collect();
            if let Err(e) = raft.initialize(members).await {
                warn!(group = %a.group, error = %e, "could not form a consumer's group");
            }
        }
        info!(consumer = %a.key(), group = %a.group, "consumer group member opened");
        let jetstreams = lock(&meta.consumers.jetstreams).clone();
        let remover = tokio::spawn(remove_acked(acked, jetstreams.clone(), a.clone()));
        let member = Arc::new(Member {
            assignment: Mutex::new(a),
            raft,
            net,
            sm,
            opened,
            committed,
            linked: AtomicBool::new(false),
            ended: AtomicBool::new(false),
            running: Mutex::new(None),
            since: Mutex::new(None),
            stepping: AtomicBool::new(false),
            tasks: Mutex::new(vec![remover]),
            me: meta.me().to_string(),
        });
        member.link(&jetstreams);
        let task = tokio::spawn(lead(Arc::clone(&member), jetstreams, Arc::downgrade(meta)));
        lock(&member.tasks).push(task);
        Ok(member)
    }

    /// Registers the group link with the stream's replica here, unless the running
    /// actor's link stands in for it or it is registered already.
    fn link(&self, jetstreams: &Weak<JetStreams>) {
        if self.running().is_some() || self.linked.load(Ordering::SeqCst) {
            return;
        }
        let a = lock(&self.assignment).clone();
        if let Some(stream) = stream_here(jetstreams, &a) {
            let state = Some(Arc::clone(&self.committed));
            GroupLink::register(&stream, &a.config.name, filters(&a.config), state);
            self.linked.store(true, Ordering::SeqCst);
        }
    }

    /// Applies a changed config of the same group (to the actor when it runs here).
    async fn update(&self, a: ConsumerAssignment) {
        let changed = lock(&self.assignment).config != a.config;
        if !changed {
            return;
        }
        let cfg = a.config.clone();
        *lock(&self.assignment) = a;
        // The filters may have changed.
        self.linked.store(false, Ordering::SeqCst);
        if let Some(h) = self.running()
            && let Err(e) = h.update(cfg).await
        {
            warn!(error = %e.description, "could not update a replicated consumer");
        }
    }

    /// Stops the member: its actor (`delete`: the consumer is gone, its waiting pulls
    /// are told so and its stream forgets it) and its Raft node.
    async fn stop(&self, meta: &MetaGroup, delete: bool) {
        for t in lock(&self.tasks).drain(..) {
            t.abort();
        }
        let running = lock(&self.running).take();
        if let Some(h) = running {
            h.stop(delete).await;
        }
        if delete {
            let a = lock(&self.assignment).clone();
            let js = lock(&meta.consumers.jetstreams).upgrade();
            let stream = js.and_then(|all| all.account(&a.account)?.stream(&a.stream));
            if let Some(stream) = stream {
                let _ = stream.unregister_consumer(&a.config.name).await;
            }
        }
        meta.transport.unserve_group(&self.group());
        let _ = self.raft.shutdown().await;
    }

    /// Deletes the group's log.
    async fn remove(&self, meta: &MetaGroup) {
        let group = self.group();
        let dir = meta.raft_root.join(&group);
        if let Err(e) = tokio::fs::remove_dir_all(&dir).await {
            warn!(dir = %dir.display(), error = %e, "could not remove a consumer group's log");
        }
        info!(group = %group, "consumer group member removed");
    }

    /// Starts the consumer's actor here from the committed state (the member leads
    /// and has applied every earlier entry). Logged and retried by [`lead`] when the
    /// stream's replica is not open yet.
    async fn take_over(&self, jetstreams: &Weak<JetStreams>) -> Result<(), String> {
        let ready = tokio::time::timeout(LEAD_CHECK * 4, self.raft.ensure_linearizable()).await;
        if !matches!(ready, Ok(Ok(_))) {
            return Err("no quorum yet".into());
        }
        let a = lock(&self.assignment).clone();
        let js = jetstreams
            .upgrade()
            .and_then(|all| all.account(&a.account))
            .ok_or("no JetStream for the account")?;
        let stream = js
            .stream(&a.stream)
            .ok_or("the stream's replica is not open")?;
        let scfg = stream.config().await.map_err(|e| e.description)?;
        let (state, started) = self.sm.with(|m| (m.state(), m.started)).await;
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(state::propose(self.raft.clone(), rx));
        let mut spec = service::spec(&js, stream, &scfg, a.config.clone(), a.created, started)
            .map_err(|e| e.description)?;
        spec.persist = None;
        spec.store = Some(Box::new(ReplicatedStore::new(state, tx)));
        // A sync here is a proposal, not an fsync: keep the window short whatever the
        // server's `sync_interval`, so a failover redelivers little.
        spec.sync_interval = spec.sync_interval.min(REPLICATE_EVERY);
        let (handle, _) = consumer::start(spec).await.map_err(|e| e.description)?;
        *lock(&self.running) = Some(handle);
        self.linked.store(false, Ordering::SeqCst);
        *lock(&self.since) = Some(timestamp(now_ns()));
        let (leader, members) = elected(&self.raft, &self.me);
        let name = Some(a.config.name.as_str());
        events::leader_elected(&js.account, &a.stream, name, &leader, &members);
        info!(consumer = %a.key(), "consumer group leader: running the consumer");
        Ok(())
    }

    /// Stops the actor of a member that no longer leads (its state stays in the group);
    /// the group link takes the actor's place in the stream's registry.
    async fn hand_back(&self, jetstreams: &Weak<JetStreams>) {
        let running = lock(&self.running).take();
        *lock(&self.since) = None;
        if let Some(h) = running {
            h.stop(false).await;
            info!(consumer = %lock(&self.assignment).key(), "consumer group member stopped leading");
        }
        self.link(jetstreams);
    }

    /// Whether the actor running here has deleted itself (inactivity, or its stream
    /// went away): it stopped while this member led, and left the registry.
    fn deleted_itself(&self, jetstreams: &Weak<JetStreams>) -> bool {
        let closed = lock(&self.running)
            .as_ref()
            .is_some_and(ConsumerHandle::is_closed);
        if !closed || self.stepping.load(Ordering::SeqCst) {
            return false;
        }
        let a = lock(&self.assignment).clone();
        let js = jetstreams.upgrade().and_then(|all| all.account(&a.account));
        js.is_some_and(|js| js.consumers.get(&a.stream, &a.config.name).is_none())
    }

    /// Proposes the removal of a consumer that deleted itself; whether the meta group
    /// committed it (then every member stops; else [`lead`] tries again).
    async fn propose_removal(&self, meta: &Weak<MetaGroup>) -> bool {
        let Some(meta) = meta.upgrade() else {
            return true;
        };
        let key = lock(&self.assignment).key();
        let op = MetaOp::RemoveConsumer { key: key.clone() };
        let done = matches!(
            meta.propose(&op).await,
            Ok(MetaAnswer::Done | MetaAnswer::NotFound)
        );
        if done {
            info!(consumer = %key, "a replicated consumer deleted itself: removed everywhere");
        }
        done
    }

    /// The committed state.
    fn committed_state(&self) -> crate::jetstream::store::ConsumerState {
        crate::locks::read(&self.committed).clone()
    }

    /// nats-server's `cluster` block of CONSUMER.INFO as this member sees it.
    fn cluster_info(&self, meta: &MetaGroup) -> ClusterInfo {
        let since = *lock(&self.since);
        group_info(
            &self.raft,
            Some(&self.net),
            Place::of(meta),
            meta.me(),
            &self.group(),
            since,
        )
    }
}

/// Runs the consumer while this member leads its group, stops it otherwise; once the
/// consumer deleted itself, proposes its removal instead.
async fn lead(member: Arc<Member>, jetstreams: Weak<JetStreams>, meta: Weak<MetaGroup>) {
    let mut metrics = member.raft.metrics();
    let mut tick = tokio::time::interval(LEAD_CHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut told = false;
    loop {
        if member.deleted_itself(&jetstreams) {
            member.ended.store(true, Ordering::SeqCst);
        }
        if member.ended.load(Ordering::SeqCst) {
            if member.propose_removal(&meta).await {
                break;
            }
            tokio::select! {
                changed = metrics.changed() => if changed.is_err() { break },
                _ = tick.tick() => {}
            }
            continue;
        }
        let leading = metrics.borrow_and_update().state == RaftState::Leader
            && !member.stepping.load(Ordering::SeqCst);
        match (leading, member.running().is_some()) {
            (true, false) => match member.take_over(&jetstreams).await {
                Ok(()) => told = false,
                Err(e) if !told => {
                    told = true;
                    info!(error = %e, "consumer group leader: not running the consumer yet");
                }
                Err(_) => {}
            },
            (false, true) => member.hand_back(&jetstreams).await,
            _ => {}
        }
        tokio::select! {
            changed = metrics.changed() => if changed.is_err() { break },
            _ = tick.tick() => {}
        }
    }
}

/// The committed assignment of consumer `consumer` of `stream` in `account`.
pub async fn assignment(
    meta: &MetaGroup,
    account: &str,
    stream: &str,
    consumer: &str,
) -> Option<ConsumerAssignment> {
    let key = key(account, stream, consumer);
    meta.sm.with(|m| m.consumers.get(&key).cloned()).await
}

/// The replicated consumers of `stream` in `account`: name → assignment.
pub async fn of_stream(
    meta: &MetaGroup,
    account: &str,
    stream: &str,
) -> BTreeMap<String, ConsumerAssignment> {
    let prefix = format!("{}/", super::meta::key(account, stream));
    meta.sm
        .with(|m| {
            m.consumers
                .range(prefix.clone()..)
                .take_while(|(k, _)| k.starts_with(&prefix))
                .map(|(_, a)| (a.config.name.clone(), a.clone()))
                .collect()
        })
        .await
}

/// This server's members of consumer groups, for `/healthz`.
pub(super) async fn locals(meta: &MetaGroup) -> Vec<Local> {
    let map = meta.consumers.map.lock().await;
    map.iter()
        .map(|(key, m)| {
            let a = lock(&m.assignment);
            Local {
                key: key.clone(),
                name: format!(
                    "consumer '{} > {} > {}'",
                    a.account, a.stream, a.config.name
                ),
                raft: m.raft.clone(),
                installing: m.sm.installing(),
                opened: m.opened,
            }
        })
        .collect()
}

/// Where this server stands in the group of the consumer `key`.
pub(super) async fn standing(meta: &MetaGroup, key: &str) -> Standing {
    let member = meta.consumers.map.lock().await.get(key).cloned();
    member.map_or(Standing::Absent, |m| m.standing())
}

/// Whether this server's member of `group` leads it and runs its consumer (a
/// forwarded request about it is answered here).
pub(super) async fn leads_group(meta: &MetaGroup, group: &str) -> bool {
    let map = meta.consumers.map.lock().await;
    let member = map.values().find(|m| m.group() == group).cloned();
    drop(map);
    member.is_some_and(|m| m.standing() == Standing::Leader)
}

/// The `cluster` block of CONSUMER.INFO for a consumer of `account` answered here:
/// the group's view for a replicated one; the cluster and this server as its leader
/// for one that lives on this server alone (nats-server's R1 consumers).
pub async fn cluster_info(
    meta: &MetaGroup,
    account: &str,
    stream: &str,
    consumer: &str,
) -> ClusterInfo {
    let member = meta
        .consumers
        .map
        .lock()
        .await
        .get(&key(account, stream, consumer))
        .cloned();
    match member {
        Some(m) => m.cluster_info(meta),
        None => ClusterInfo {
            name: meta.cluster_name().to_string(),
            leader: meta.me().to_string(),
            ..ClusterInfo::default()
        },
    }
}

fn unavailable() -> ApiError {
    ErrorCode::CLUSTER_NOT_AVAIL.error()
}
