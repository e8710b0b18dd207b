//! Streams in a JetStream cluster (issue 20): one Raft group per stream, whose log
//! entries are the stream's messages. Every stream of a clustered server is assigned
//! through the meta group, one replica too (a group of one, kept on the server that
//! took its create, with no group name or election shown, as nats-server shows its
//! R1 streams), so its name is taken cluster-wide and every member's clients reach it.
//!
//! # From assignment to replicas
//! `STREAM.CREATE` with R3 on any server ([`create`]): the server checks the config,
//! picks the replicas' servers among the meta group's live members ([`MetaGroup::place`]),
//! names a new Raft group (`S-R3F-<8 characters>`, as nats-server) and commits the
//! assignment through the meta leader ([`MetaGroup::propose`]). Every server applies the
//! committed assignments ([`reconcile`], on every change of the meta machine): a server
//! named in one opens its replica (an ordinary stream store, whose subjects it does not
//! subscribe, `JetStream::open_replica`) and its member of the stream's group (log
//! under `<store_dir>/$SYS/_js_/<group>`); the first server named initializes the
//! group. A removed assignment stops the member and deletes the replica and its log.
//!
//! # A publish, from client to quorum to ack
//! ```text
//! client ─PUB orders.1 (reply)─► any server ──route (interest of the leader)──┐
//!                                                                              ▼
//!  group leader's server: leader subscription on the stream's subjects (`Lead`)
//!     └► ingest task: entry = (leader time ts, subject, headers, payload)
//!          ts strictly after every earlier entry of the group
//!        └► openraft client_write ──AppendEntries──► followers: log append + fsync
//!                 (group commit, raft::log)            (answer after their fsync)
//!        quorum has it on disk → committed → every member applies it, in log order:
//!          StreamMachine::apply ─► stream actor: StreamCore::apply_replicated
//!            (dedupe, Nats-Expected-*, roll-ups, TTLs, limits, at time ts: every
//!             replica takes the same decision from the same state)
//!        leader's apply answer (the PubAck, or the publish error) ─► reply subject
//! ```
//! Only the leader subscribes the stream's subjects (the subscription travels to the
//! other servers as route interest, so a publish anywhere reaches it); it installs them
//! once it has applied every entry of earlier terms (`ensure_linearizable`) and drops
//! them when it loses the leadership. A publish the leader could not commit (it lost
//! the leadership, or no quorum answered within [`COMMIT_WAIT`]) gets no reply: the
//! client times out and may retry (with `Nats-Msg-Id` the duplicate window makes that
//! safe), as with nats-server.
//!
//! # Requests, stepdowns, quorum loss
//! `$JS.API` requests about the stream are answered by the leader wherever they arrive
//! ([`super::forward`]). `STREAM.LEADER.STEPDOWN` ([`step_down`]) is answered at once;
//! the leader then stops taking publishes and hands the leadership to the chosen
//! member ([`super::hand_over`]); until it is done, requests get no answer (as from
//! nats-server during the election). A leader checks every [`QUORUM_CHECK`] that a
//! quorum still hears it; after [`QUORUM_LOST`] without one it drops its subscriptions,
//! so publishes get no responders (nats-server's leader gives up after about 20 s,
//! publishes timing out until then), and takes them again once a quorum answers.
//!
//! # Purges and message deletes
//! `STREAM.PURGE` and `STREAM.MSG.DELETE` reach the leader (forwarded), which queues
//! them behind the publishes it already took ([`propose_op`]); the entry
//! (a [`StreamOp`]) gets the leader's next time like a message, and every member
//! applies it at the same place in the log, so the replicas stay identical; the
//! leader's result is the API's answer.
//!
//! # Expiry, TTLs, delete markers, schedules
//! A replica's stream never acts on its own timers. The leader looks every 250 ms
//! whether one is due and proposes a [`StreamOp::Timers`] entry; every member applies
//! it at the entry's time (`StreamCore::run_timers_at`), so messages expire, markers
//! and scheduled messages are stored once, at the same sequences, on every replica.
//!
//! # Restarts, snapshots, catch-up
//! A restarted member's machine is applied the log again from its last snapshot: an
//! entry at or before the stream's last stored time is already in the store and
//! skipped (`StreamCore::apply_replicated`), which the leaders' strictly increasing
//! times make exact. Every [`catchup::SNAPSHOT_EVERY`] entries a member snapshots its
//! group (the stream's synced position) and purges the log behind it; a member that
//! needs purged entries (down meanwhile, or wiped) installs the leader's snapshot by
//! copying the messages it lacks in bounded chunks ([`catchup`]).
//!
//! # Damage
//! A replica whose store found damage at open (a record that fails its checksum, a
//! block cut short) keeps its Raft log and vote but not its messages: a store with
//! damage is emptied (`JetStream::open_replica`), and a store behind the group's own
//! snapshot (emptied, or its tail cut) is refilled from the other members up to the
//! snapshot before any entry is applied ([`machine`]); the log then brings the rest.
//! So a repaired replica holds what the others hold, never a hole they do not have.
//!
//! # Scaling and peer removal
//! `STREAM.UPDATE` with another `num_replicas` (R1 → R3 → R1; more than the live
//! servers: 10005) and `STREAM.PEER.REMOVE` change the assignment's peers; the group's
//! leader then changes the Raft membership to match and retires the servers dropped
//! ([`members`]).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use openraft::{BasicNode, ServerState as RaftState};
use rill_protocol::jsapi::{ApiError, ClusterInfo, ErrorCode, StreamConfig, Timestamp};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::group::{Local, Place, group_info};
use super::meta::StreamAssignment;
use super::{MetaGroup, lock};
use crate::account::Account;
use crate::jetstream::JetStreams;
use crate::jetstream::consumer::events;
use crate::jetstream::store::{StdFs, now_ns};
use crate::jetstream::stream::{StreamCore, StreamHandle, timestamp};
use crate::raft::{self, Command, LogStore, MachineStore, Network, Raft, node_id};
use crate::router::ByteString;
use crate::router::{Delivery, Msg, Subscriber, Subscription};

mod assign;
pub(super) mod catchup;
mod entry;
mod machine;
mod members;

pub use assign::{create, delete, info, remove_peer, update};
pub use entry::{OpAnswer, StreamOp};
use entry::{encode, encode_op};
use machine::StreamMachine;

/// How long the leader waits for a publish to be committed before giving up on it
/// (the client then times out).
pub const COMMIT_WAIT: Duration = Duration::from_secs(10);
/// Publishes queued for the leader's ingest task.
const INGEST_QUEUE: usize = 8192;
/// How often the leader checks that a quorum still hears it.
const QUORUM_CHECK: Duration = Duration::from_secs(1);
/// A leader that has not heard from a quorum for this long stops taking publishes.
const QUORUM_LOST: Duration = Duration::from_secs(3);
/// How long an API request waits for this server to apply its committed assignment.
const APPLY_WAIT: Duration = Duration::from_secs(10);

/// How long a first member without a log waits for the others to say whether the
/// group already runs.
const PROBE_WAIT: Duration = Duration::from_secs(1);

/// The network of `group` over this server's route transport.
fn net_of(meta: &MetaGroup, group: &str) -> Network {
    let transport: Arc<dyn raft::Transport> = meta.transport.clone();
    Network::new(group, transport)
}

/// This server's replicas, by assignment key.
#[derive(Default)]
pub struct Replicas {
    map: tokio::sync::Mutex<BTreeMap<String, Arc<Replica>>>,
    pub(super) jetstreams: Mutex<Weak<JetStreams>>,
}

impl std::fmt::Debug for Replicas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replicas").finish_non_exhaustive()
    }
}

/// This server's replica of one replicated stream and its member of the stream's group.
struct Replica {
    assignment: Arc<Mutex<StreamAssignment>>,
    raft: Raft,
    /// The group's machine (whether it installs a snapshot: `/healthz`).
    sm: MachineStore<StreamMachine>,
    /// When its Raft was opened (`/healthz`).
    opened: tokio::time::Instant,
    /// The group's network as this member's Raft uses it (when each member last answered).
    net: Network,
    handle: StreamHandle,
    account: Arc<Account>,
    lead: Arc<Lead>,
    tasks: Vec<JoinHandle<()>>,
}

/// What the leader runs: its subscriptions on the stream's subjects and when it began.
struct Lead {
    subs: Mutex<Vec<Arc<Subscription>>>,
    since: Mutex<Option<Timestamp>>,
    owner: Arc<dyn Subscriber>,
    /// A stepdown is handing the leadership over: take no publishes, answer nothing.
    stepping: AtomicBool,
    /// The ingest task's queue, for purges and deletes proposed by the API.
    ops: mpsc::Sender<Inbound>,
}

/// Where this server stands in a stream's group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// Its replica leads (and is not handing over).
    Leader,
    /// Its replica leads and is handing the leadership over (a stepdown).
    Stepping,
    /// Its replica follows the named leader (`None`: no leader known).
    Follower(Option<String>),
    /// It holds no replica (or has not opened it yet).
    Absent,
}

/// Where this server stands in the group of the stream `key` (`<account>/<stream>`).
pub(super) async fn standing(meta: &MetaGroup, key: &str) -> Standing {
    let replica = meta.replicas.map.lock().await.get(key).cloned();
    replica.map_or(Standing::Absent, |r| r.standing())
}

/// The leader of the stream `key`'s group as this server knows it (`None` when it
/// holds no replica or knows no leader).
pub(super) async fn leader_of(meta: &MetaGroup, key: &str) -> Option<String> {
    match standing(meta, key).await {
        Standing::Leader | Standing::Stepping => Some(meta.me().to_string()),
        Standing::Follower(leader) => leader,
        Standing::Absent => None,
    }
}

/// Where this server stands in `group`.
pub(super) async fn standing_in_group(meta: &MetaGroup, group: &str) -> Standing {
    let map = meta.replicas.map.lock().await;
    let replica = map.values().find(|r| r.group() == group).cloned();
    drop(map);
    replica.map_or(Standing::Absent, |r| r.standing())
}

/// The `cluster` block of this server's replica of the stream `key` as this member
/// sees it (`/jsz`: the other members, the leader among them on a follower); `None`
/// when it holds no replica.
pub(super) async fn member_info(meta: &MetaGroup, key: &str) -> Option<ClusterInfo> {
    let replica = meta.replicas.map.lock().await.get(key).cloned()?;
    Some(replica.cluster_info(meta, meta.me()))
}

/// This server's members of stream groups, for `/healthz`.
pub(super) async fn locals(meta: &MetaGroup) -> Vec<Local> {
    let map = meta.replicas.map.lock().await;
    map.iter()
        .map(|(key, r)| {
            let a = lock(&r.assignment);
            Local {
                key: key.clone(),
                name: format!("stream '{} > {}'", a.account, a.config.name),
                raft: r.raft.clone(),
                installing: r.sm.installing(),
                opened: r.opened,
            }
        })
        .collect()
}

/// Starts applying the meta group's assignments on this server: now, and after every
/// change, until the server stops.
pub fn reconcile(meta: Arc<MetaGroup>, jetstreams: Weak<JetStreams>) {
    *lock(&meta.replicas.jetstreams) = jetstreams;
    let task = tokio::spawn({
        let meta = Arc::clone(&meta);
        async move {
            let mut changes = meta.changes().await;
            let mut stop = meta.stop.clone();
            loop {
                apply_assignments(&meta).await;
                tokio::select! {
                    changed = changes.changed() => if changed.is_err() { break },
                    _ = stop.changed() => break,
                }
            }
            let all = std::mem::take(&mut *meta.replicas.map.lock().await);
            for (_, r) in all {
                r.stop(&meta).await;
            }
        }
    });
    lock(&meta.tasks).push(task);
}

/// Brings this server's replicas in line with the committed assignments.
async fn apply_assignments(meta: &Arc<MetaGroup>) {
    let Some(jetstreams) = lock(&meta.replicas.jetstreams).upgrade() else {
        return;
    };
    let all = meta.assignments().await;
    let mut map = meta.replicas.map.lock().await;
    // A retiring server keeps the replica it runs until the group no longer needs it.
    let me = meta.me();
    let wanted: BTreeMap<String, StreamAssignment> = all
        .into_iter()
        .filter(|(k, a)| {
            a.peers.iter().any(|p| p == me)
                || (a.retiring.iter().any(|p| p == me) && map.contains_key(k))
        })
        .collect();
    let gone: Vec<String> = map
        .iter()
        .filter(|(k, r)| wanted.get(*k).is_none_or(|a| a.group != r.group()))
        .map(|(k, _)| k.clone())
        .collect();
    for key in gone {
        if let Some(r) = map.remove(&key) {
            r.stop(meta).await;
            r.remove(meta, &jetstreams).await;
        }
    }
    for (key, a) in wanted {
        match map.get(&key) {
            Some(r) => r.update(a, &jetstreams).await,
            None => match Replica::open(meta, &jetstreams, a).await {
                Ok(r) => {
                    map.insert(key, r);
                }
                Err(e) => warn!(stream = %key, error = %e, "could not open a stream replica"),
            },
        }
    }
}

impl Replica {
    fn group(&self) -> String {
        lock(&self.assignment).group.clone()
    }

    fn standing(&self) -> Standing {
        let m = self.raft.metrics().borrow().clone();
        if m.state == RaftState::Leader {
            return if self.lead.stepping.load(Ordering::SeqCst) {
                Standing::Stepping
            } else {
                Standing::Leader
            };
        }
        let membership = m.membership_config.membership();
        Standing::Follower(
            m.current_leader
                .and_then(|id| membership.get_node(&id))
                .map(|n| n.addr.clone()),
        )
    }

    async fn open(
        meta: &Arc<MetaGroup>,
        jetstreams: &JetStreams,
        a: StreamAssignment,
    ) -> Result<Arc<Replica>, String> {
        let js = jetstreams
            .account(&a.account)
            .ok_or_else(|| format!("no JetStream for account {}", a.account))?;
        let handle = js
            .open_replica(a.config.clone(), a.created)
            .await
            .map_err(|e| e.description)?;
        let dir = meta.raft_root.join(&a.group);
        let vfs = StdFs::shared();
        let log = LogStore::open(vfs.clone(), &dir.join("log")).map_err(|e| e.to_string())?;
        let source = catchup::Source::default();
        let machine = StreamMachine {
            handle: handle.clone(),
            source: source.clone(),
            pending: None,
        };
        let sm = MachineStore::open(vfs, &dir.join("sm"), machine)
            .await
            .map_err(|e| e.to_string())?;
        let cfg = Arc::new(raft::config(meta.cluster_name(), catchup::SNAPSHOT_EVERY)?);
        let others: Vec<String> = a
            .peers
            .iter()
            .chain(&a.retiring)
            .filter(|p| *p != meta.me())
            .cloned()
            .collect();
        let net = net_of(meta, &a.group);
        let raft = Raft::new(node_id(meta.me()), cfg, net.clone(), log, sm.clone())
            .await
            .map_err(|e| e.to_string())?;
        let opened = tokio::time::Instant::now();
        source.set(raft.clone(), meta.transport.clone(), &a.group, meta.me());
        meta.transport
            .serve_group(&a.group, raft.clone(), net.clone());
        // Only the first server of a group that never changed its members forms it: a
        // server that joins later (scaling, a replaced peer) is added by the leader.
        if a.peers.first().map(String::as_str) == Some(meta.me())
            && a.retiring.is_empty()
            && !raft.is_initialized().await.unwrap_or(true)
            && !raft::net::initialized_elsewhere(&net_of(meta, &a.group), &others, PROBE_WAIT).await
        {
            let members: BTreeMap<u64, BasicNode> = a
                .peers
                .iter()
                .map(|p| (node_id(p), BasicNode { addr: p.clone() }))
                .collect();
            if let Err(e) = raft.initialize(members).await {
                warn!(group = %a.group, error = %e, "could not form a stream group");
            }
        }
        let (tx, rx) = mpsc::channel(INGEST_QUEUE);
        let lead = Arc::new(Lead {
            subs: Mutex::new(Vec::new()),
            since: Mutex::new(None),
            owner: Arc::new(LeaderIngest { tx: tx.clone() }),
            stepping: AtomicBool::new(false),
            ops: tx,
        });
        let account = Arc::clone(&js.account);
        let last_ts = Arc::new(AtomicI64::new(0));
        let assignment = Arc::new(Mutex::new(a.clone()));
        let ingest = Ingest {
            raft: raft.clone(),
            account: Arc::clone(&account),
            no_ack: a.config.no_ack,
            last_ts: Arc::clone(&last_ts),
        };
        let tasks = vec![
            tokio::spawn(resume(sm.clone(), a.config.name.clone())),
            tokio::spawn(ingest.run(rx)),
            tokio::spawn(timers_while_leader(handle.clone(), Arc::clone(&lead))),
            tokio::spawn(lead_while_leader(
                raft.clone(),
                handle.clone(),
                Arc::clone(&lead),
                Arc::clone(&account),
                a.config.clone(),
                last_ts,
            )),
            tokio::spawn(members::members_while_leader(
                raft.clone(),
                Arc::clone(&lead),
                Arc::clone(&assignment),
                Arc::downgrade(meta),
            )),
        ];
        info!(stream = %a.config.name, group = %a.group, "stream replica opened");
        Ok(Arc::new(Replica {
            assignment,
            raft,
            sm,
            opened,
            net,
            handle,
            account,
            lead,
            tasks,
        }))
    }

    /// Applies a changed assignment of the same group: its config, and its peers
    /// (which the leader's [`members::members_while_leader`] follows).
    async fn update(&self, a: StreamAssignment, jetstreams: &JetStreams) {
        let old = lock(&self.assignment).config.clone();
        if old == a.config {
            *lock(&self.assignment) = a;
            return;
        }
        let cfg = a.config.clone();
        let new = cfg.clone();
        if let Err(e) = self.handle.call(move |core| core.update(new)).await {
            warn!(stream = %cfg.name, error = %e.description, "could not update a stream replica");
            return;
        }
        if let Some(js) = jetstreams.account(&a.account) {
            js.replace_config(cfg.clone());
        }
        if !lock(&self.lead.subs).is_empty() {
            self.lead.unsubscribe(&self.account);
            self.lead.subscribe(&self.account, &cfg);
        }
        *lock(&self.assignment) = a;
    }

    /// Stops the member (the replica's store stays).
    async fn stop(&self, meta: &MetaGroup) {
        self.lead.unsubscribe(&self.account);
        for t in &self.tasks {
            t.abort();
        }
        meta.transport.unserve_group(&self.group());
        let _ = self.raft.shutdown().await;
    }

    /// Deletes the replica and the group's log.
    async fn remove(&self, meta: &MetaGroup, jetstreams: &JetStreams) {
        let a = lock(&self.assignment).clone();
        if let Some(js) = jetstreams.account(&a.account)
            && let Err(e) = js.delete_stream(&a.config.name).await
        {
            warn!(stream = %a.config.name, error = %e.description, "could not delete a stream replica");
        }
        let dir = meta.raft_root.join(&a.group);
        if let Err(e) = tokio::fs::remove_dir_all(&dir).await {
            warn!(dir = %dir.display(), error = %e, "could not remove a stream group's log");
        }
        info!(stream = %a.config.name, group = %a.group, "stream replica removed");
    }

    /// nats-server's `cluster` block of STREAM.INFO: the group's block with the other
    /// members as `seen_by` sees them ([`group_info`]: the leader for STREAM.INFO, this
    /// server in `/jsz`); a stream of one replica shows no group, no leader_since and no
    /// traffic account, as on nats-server (where it has none).
    fn cluster_info(&self, meta: &MetaGroup, seen_by: &str) -> ClusterInfo {
        let since = *lock(&self.lead.since);
        let mut info = group_info(
            &self.raft,
            Some(&self.net),
            Place::of(meta),
            seen_by,
            &self.group(),
            since,
        );
        let single = super::group::member_count(&self.raft) == 1;
        if single {
            info.raft_group.clear();
            info.leader_since = None;
            info.system_account = false;
            info.traffic_account.clear();
        }
        info
    }
}

impl Lead {
    fn subscribe(&self, account: &Account, cfg: &StreamConfig) {
        let mut subs = lock(&self.subs);
        for (i, subject) in cfg.subjects.iter().enumerate() {
            let sub = Subscription::new(
                Bytes::from(format!("lead{i}")),
                Bytes::from(subject.clone()),
                None,
                Arc::clone(&self.owner),
            );
            account.router.subscribe(&sub);
            subs.push(sub);
        }
    }

    fn unsubscribe(&self, account: &Account) {
        for s in lock(&self.subs).drain(..) {
            account.router.unsubscribe(&s);
        }
        *lock(&self.since) = None;
    }
}

/// Subscribes the stream's subjects while this member leads the group (after it
/// applied every earlier entry) and hears from a quorum; drops them when it stops
/// leading, starts handing over (a stepdown) or has not heard from a quorum for
/// [`QUORUM_LOST`] (publishes then get no responders, as from nats-server once its
/// leader gave up; they come back when a quorum answers again).
async fn lead_while_leader(
    raft: Raft,
    handle: StreamHandle,
    lead: Arc<Lead>,
    account: Arc<Account>,
    cfg: StreamConfig,
    last_ts: Arc<AtomicI64>,
) {
    let mut metrics = raft.metrics();
    let mut tick = tokio::time::interval(QUORUM_CHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut heard = tokio::time::Instant::now();
    // Quorum checks run when the member becomes leader and then once per tick, never
    // per metrics change: a check's own heartbeats change the metrics, and checking
    // on every change sent thousands of RPCs a second, filling the route transport's
    // queues so that a catching-up replica's reads and forwarded requests were lost.
    let (mut ticked, mut was_leading) = (true, false);
    loop {
        let leading = metrics.borrow_and_update().state == RaftState::Leader;
        let became = leading && !was_leading;
        was_leading = leading;
        let subscribed = !lock(&lead.subs).is_empty();
        let stepping = lead.stepping.load(Ordering::SeqCst);
        if (!leading || stepping) && subscribed {
            lead.unsubscribe(&account);
        } else if leading && !stepping && !subscribed && (became || ticked) {
            let ready = tokio::time::timeout(QUORUM_CHECK, raft.ensure_linearizable()).await;
            if matches!(ready, Ok(Ok(_))) {
                if let Ok(state) = handle.state().await {
                    last_ts.fetch_max(state.last_ts, Ordering::SeqCst);
                }
                let cfg = handle.config().await.unwrap_or_else(|_| cfg.clone());
                lead.subscribe(&account, &cfg);
                *lock(&lead.since) = Some(timestamp(now_ns()));
                // nats-server's R1 streams have no group and send none.
                let (leader, members) = super::group::elected(&raft, "");
                if members.len() > 1 {
                    events::leader_elected(&account, &cfg.name, None, &leader, &members);
                }
                heard = tokio::time::Instant::now();
                info!(stream = %cfg.name, "stream group leader: taking publishes");
            }
        } else if leading && subscribed && ticked {
            let quorum = tokio::time::timeout(QUORUM_CHECK, raft.ensure_linearizable()).await;
            if matches!(quorum, Ok(Ok(_))) {
                heard = tokio::time::Instant::now();
            } else if heard.elapsed() >= QUORUM_LOST {
                warn!(stream = %cfg.name, "stream group leader lost its quorum: no publishes taken");
                lead.unsubscribe(&account);
            }
        }
        ticked = false;
        tokio::select! {
            changed = metrics.changed() => if changed.is_err() { break },
            _ = tick.tick() => ticked = true,
        }
    }
}

/// Refills a replica's store that is behind the group's own snapshot (emptied for
/// damage) as soon as the group runs, whether or not an entry comes.
async fn resume(sm: MachineStore<StreamMachine>, stream: String) {
    if let Err(e) = sm.resume().await {
        warn!(%stream, error = %e, "stream replica could not be refilled from its group");
    }
}

/// How often the leader looks whether the stream's timers are due.
const TIMERS_CHECK: Duration = Duration::from_millis(250);

/// While this member leads and takes publishes: proposes [`StreamOp::Timers`] whenever
/// the stream's next expiry, TTL or schedule is due, and waits for it to be applied
/// before looking again. Replicas never act on their own timers (`timers_by_leader`
/// of the stream), so a message expires once, at one place in the log, on every
/// replica; a new leader takes over the timers where the old one stopped. A round that
/// changed the stream may have left more due (it fires at most 1,024 schedules): the
/// next is proposed at once, not a tick later; one that changed nothing waits the tick.
async fn timers_while_leader(handle: StreamHandle, lead: Arc<Lead>) {
    let mut tick = tokio::time::interval(TIMERS_CHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut moved = false;
    loop {
        if !moved {
            tick.tick().await;
        }
        moved = false;
        if lock(&lead.subs).is_empty() {
            continue;
        }
        let due = handle
            .call(|core| Ok((core.timers_due(), shape(core))))
            .await;
        let Ok((Some(at), before)) = due else {
            continue;
        };
        if at > now_ns() {
            continue;
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        if lead
            .ops
            .send(Inbound::Op(StreamOp::Timers, tx))
            .await
            .is_err()
        {
            return;
        }
        let _ = tokio::time::timeout(COMMIT_WAIT, rx).await;
        moved = handle
            .call(|core| Ok(shape(core)))
            .await
            .is_ok_and(|after| after != before);
    }
}

/// What a timer round changes: the stream's last sequence and message count.
fn shape(core: &StreamCore) -> (u64, u64) {
    let state = core.store().state();
    (state.last_seq, state.msgs)
}

/// `STREAM.LEADER.STEPDOWN` on the leader's server: hands the leadership of the
/// stream's group to `preferred` (or the member furthest along) and answers at once,
/// as nats-server does; until the handover ends this member takes no publishes and
/// answers no forwarded request (nats-server answers nothing during the election).
/// `None`: no answer (this member does not lead, or is handing over already).
pub async fn step_down(
    meta: &Arc<MetaGroup>,
    key: &str,
    preferred: Option<&str>,
) -> Option<Result<(), ApiError>> {
    let replica = meta.replicas.map.lock().await.get(key).cloned()?;
    if replica.standing() != Standing::Leader {
        return None;
    }
    let (target, name) = match super::successor(&replica.raft, preferred) {
        Ok(t) => t,
        Err(super::Stepdown::NoLeader) => return None,
        Err(super::Stepdown::Unknown(p)) => {
            return Some(Err(
                ErrorCode::CLUSTER_NO_PEERS.err(format!("preferred server {p:?} not known"))
            ));
        }
        Err(super::Stepdown::Failed) => return Some(Err(unavailable())),
    };
    if name == meta.me() {
        return Some(Err(
            ErrorCode::CLUSTER_NO_PEERS.err(format!("preferred server {name:?} is already leader"))
        ));
    }
    if replica.lead.stepping.swap(true, Ordering::SeqCst) {
        return None;
    }
    replica.lead.unsubscribe(&replica.account);
    let net = net_of(meta, &replica.group());
    tokio::spawn(async move {
        let done = super::hand_over(&replica.raft, &net, target, &name).await;
        match done {
            Ok(()) => info!(group = %replica.group(), to = %name, "stream leader stepped down"),
            Err(_) => warn!(group = %replica.group(), to = %name, "stream leader stepdown failed"),
        }
        replica.lead.stepping.store(false, Ordering::SeqCst);
    });
    Some(Ok(()))
}

/// What the leader's ingest task proposes, in arrival order.
#[derive(Debug)]
enum Inbound {
    /// A publish on the stream's subjects.
    Publish {
        subject: Bytes,
        reply: Option<ByteString>,
        headers: Option<Bytes>,
        payload: Bytes,
    },
    /// A purge or message delete from the API; its answer once applied here.
    Op(StreamOp, tokio::sync::oneshot::Sender<Bytes>),
}

/// The leader's subscriber on the stream's subjects.
#[derive(Debug)]
struct LeaderIngest {
    tx: mpsc::Sender<Inbound>,
}

impl Subscriber for LeaderIngest {
    fn owner_id(&self) -> u64 {
        0
    }

    fn deliver(&self, _sub: &Subscription, msg: &Msg<'_>) -> Delivery {
        let inbound = Inbound::Publish {
            subject: msg.subject_bytes(),
            reply: msg.reply_text(),
            headers: msg.headers_bytes(),
            payload: msg.payload_bytes(),
        };
        match self.tx.try_send(inbound) {
            Ok(()) => Delivery::Queued,
            Err(_) => Delivery::Dropped,
        }
    }
}

/// Where a committed entry's answer goes.
enum AnswerTo {
    /// A publisher's reply subject (the PubAck).
    Reply(ByteString),
    /// The API request that proposed a purge or delete.
    Api(tokio::sync::oneshot::Sender<Bytes>),
}

/// Proposes the leader's publishes in arrival order and sends each committed one's
/// answer to its reply subject.
struct Ingest {
    raft: Raft,
    account: Arc<Account>,
    no_ack: bool,
    last_ts: Arc<AtomicI64>,
}

impl Ingest {
    async fn run(self, mut rx: mpsc::Receiver<Inbound>) {
        while let Some(m) = rx.recv().await {
            let ts = self.next_ts();
            let (entry, answer_to) = match m {
                Inbound::Publish {
                    subject,
                    reply,
                    headers,
                    payload,
                } => {
                    let reply = reply.filter(|r| !r.is_empty() && !self.no_ack);
                    let entry = encode(ts, &subject, headers.as_deref(), &payload);
                    (entry, reply.map(AnswerTo::Reply))
                }
                Inbound::Op(op, tx) => (encode_op(ts, &op), Some(AnswerTo::Api(tx))),
            };
            let Ok(answer) = self.raft.client_write_ff(Command(entry)).await else {
                break;
            };
            let account = Arc::clone(&self.account);
            tokio::spawn(async move {
                let Ok(Ok(Ok(done))) = tokio::time::timeout(COMMIT_WAIT, answer).await else {
                    return;
                };
                match answer_to {
                    Some(AnswerTo::Reply(reply)) if !done.data.0.is_empty() => {
                        let msg = Msg::new(&reply, None, None, &done.data.0);
                        account.router.publish(0, true, &msg);
                    }
                    Some(AnswerTo::Api(tx)) => {
                        let _ = tx.send(done.data.0);
                    }
                    _ => {}
                }
            });
        }
    }

    /// The leader's time for the next entry: now, but strictly after every earlier one.
    fn next_ts(&self) -> i64 {
        let now = now_ns();
        let prev = self
            .last_ts
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| {
                Some(now.max(last + 1))
            })
            .unwrap_or(now);
        now.max(prev + 1)
    }
}

/// nats-server 2.15.1 in a cluster refuses deleting a sequence that is already gone
/// with `400 / 10043 sequence <n> not found` (a standalone server: `500 / 10057 no
/// message found`); past the last sequence both say `stream store EOF`.
pub(super) fn clustered_delete_error(e: ApiError, seq: u64) -> ApiError {
    if e.err_code == ErrorCode::STREAM_MSG_DELETE_FAILED.err_code
        && e.description == "no message found"
    {
        ErrorCode::SEQUENCE_NOT_FOUND.with(&[("seq", &seq)])
    } else {
        e
    }
}

/// Proposes `op` on this server's replica of the stream `key`, which must lead its
/// group (requests are forwarded to the leader, see `super::forward`), and returns
/// what applying it gave.
///
/// # Errors
/// No leading replica here, or the entry was not committed in time (503/10008).
pub async fn propose_op(meta: &MetaGroup, key: &str, op: StreamOp) -> Result<OpAnswer, ApiError> {
    let replica = meta.replicas.map.lock().await.get(key).cloned();
    let replica = replica
        .filter(|r| r.standing() == Standing::Leader)
        .ok_or_else(unavailable)?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    replica
        .lead
        .ops
        .send(Inbound::Op(op, tx))
        .await
        .map_err(|_| unavailable())?;
    let raw = tokio::time::timeout(COMMIT_WAIT, rx)
        .await
        .map_err(|_| unavailable())?
        .map_err(|_| unavailable())?;
    serde_json::from_slice(&raw).map_err(|_| unavailable())
}

fn unavailable() -> ApiError {
    ErrorCode::CLUSTER_NOT_AVAIL.error()
}

#[cfg(test)]
mod tests {
    use super::assign::group_name;
    use super::*;

    #[test]
    fn group_names_follow_nats_server() {
        let cfg = StreamConfig {
            name: "S".into(),
            num_replicas: 3,
            ..StreamConfig::default()
        };
        let name = group_name(&cfg);
        assert!(name.starts_with("S-R3F-"), "{name}");
        assert_eq!(name.len(), 14);
    }
}
