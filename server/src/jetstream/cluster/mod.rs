//! JetStream clustering (issue 20): the meta group, the stream groups and the consumer
//! groups, all on the [`crate::raft`] engine (openraft), their Raft traffic carried
//! over the route connections ([`transport`], nats-server's `$NRG.>`).
//!
//! # The meta group
//! A server with a `cluster {}` block, JetStream and a `server_name` (required, as
//! nats-server requires it: the name is the server's stable Raft identity) joins the
//! cluster's **meta group** (`_meta_`, log under `<store_dir>/$SYS/_js_/_meta_`):
//! - every half second each server announces itself on `$NRG.HELLO` (name, and whether
//!   it is already a member of a formed group);
//! - **forming**: a server that is not a member, has heard no member, and has heard at
//!   least one peer (or has no configured routes and waited two seconds) initializes the
//!   group with every server it has heard, but only if its name is the smallest of them;
//!   the others wait to be added. A restarted member finds its membership in its log;
//! - **growing**: the leader adds every announced server that is not yet a voter
//!   (learner first, then voter), one per tick;
//! - `/jsz` shows the group as nats-server's `meta_cluster` ([`report`]); `/healthz` says whether this server is current in it and in each stream and
//!   consumer group it holds a member of ([`health`]); `$JS.API.META.LEADER.STEPDOWN` from the system account hands the leadership
//!   to another member ([`MetaGroup::step_down`], `api::meta`).
//!
//! Its machine ([`meta::MetaMachine`]) holds the **assignments**: every stream of the
//! cluster (its config, its Raft group's name, the servers holding a replica) and every
//! replicated consumer. `STREAM.CREATE`, `UPDATE` (scaling too), `DELETE` and
//! `PEER.REMOVE` on any server place the replicas ([`MetaGroup::place`],
//! [`MetaGroup::spare`]) and commit the new assignment through the meta leader
//! ([`MetaGroup::propose`]; a member that is not the leader forwards the proposal,
//! [`raft::Rpc::Propose`]).
//!
//! # Stream groups ([`replica`])
//! Every server applies the committed assignments: one named in a stream's opens its
//! replica and its member of the stream's own group (`S-R3F-…`), whose log entries are
//! the stream's messages. The group's leader subscribes the stream's subjects, proposes
//! each publish and answers the PubAck once a quorum has the entry on disk; every
//! replica applies the entries in log order through the stream's ordinary ingest, so
//! dedupe, expected-sequence checks, limits, purges, deletes and timers give the same
//! result everywhere ([`replica`] follows a publish from client to quorum to ack).
//! Snapshots bound the log; a replica that was down or wiped catches up from its peers
//! (`replica::catchup`); a membership change follows a changed assignment.
//!
//! # Consumer groups ([`consumer`])
//! A durable consumer of a replicated stream has its own group (`C-R3F-…`) holding its
//! delivered and acked state, so it continues on another server after a failover.
//!
//! # Requests ([`forward`])
//! `$JS.API` requests about a replicated stream or consumer are answered by its
//! group's leader wherever they arrive, as in a nats-server cluster.

pub mod consumer;
pub mod forward;
mod group;
pub mod health;
pub mod meta;
mod moving;
pub mod placement;
pub mod replica;
pub mod report;
mod transport;
pub mod usage;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use openraft::{BasicNode, ServerState as RaftState};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use self::meta::MetaMachine;
use self::transport::{HELLO, Hello, RouteTransport};
use rill_protocol::jsapi::{ApiError, Placement};

use crate::jetstream::store::StdFs;
use crate::raft::{self, LogStore, MachineStore, Network, Raft, node_id};
use crate::server::ServerState;

/// The meta group's name on the wire and on disk.
const GROUP: &str = "_meta_";
/// How often a server announces itself (and the leader adds joiners).
const TICK: Duration = Duration::from_millis(500);
/// Ticks a server without configured routes waits before forming a group alone.
const SETTLE_TICKS: u32 = 4;
/// A peer not heard from for this long is not counted when forming the group.
const PEER_GONE: Duration = Duration::from_secs(5);
/// Snapshot the meta group every this many entries.
const SNAPSHOT_EVERY: u64 = 1024;

/// How long the leader waits for a joining server to catch up before it looks again
/// at the next tick.
const JOIN_WAIT: Duration = Duration::from_secs(5);

/// How long a forwarded meta proposal may take.
const PROPOSE_WAIT: Duration = Duration::from_secs(5);

/// How long a stepdown waits for the chosen member to start its election.
const STEPDOWN_WAIT: Duration = Duration::from_secs(2);

/// Why a meta leader stepdown did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stepdown {
    /// No leader is known.
    NoLeader,
    /// The preferred server is not a member of the group.
    Unknown(String),
    /// The chosen member did not answer.
    Failed,
}

/// A server heard on `$NRG.HELLO`.
struct Heard {
    /// A member of a formed meta group.
    member: bool,
    /// When it was last heard.
    at: Instant,
    /// Its `server_tags`, normalized (placement).
    tags: Vec<String>,
    /// Its share of each account's usage (`$JS.API.INFO`).
    usage: BTreeMap<String, usage::Usage>,
}

/// This server's member of the cluster's meta group.
pub struct MetaGroup {
    raft: Raft,
    me: String,
    cluster: String,
    system_account: String,
    seeded: bool,
    sm: MachineStore<MetaMachine>,
    transport: Arc<RouteTransport>,
    /// Servers heard on `$NRG.HELLO`, by name.
    peers: Mutex<BTreeMap<String, Heard>>,
    /// This server's `server_tags` (for placement).
    tags: Vec<String>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Where this server's Raft groups keep their logs (`<store_dir>/$SYS/_js_`).
    raft_root: std::path::PathBuf,
    /// Stops with the server.
    stop: watch::Receiver<bool>,
    /// This server's replicas of replicated streams ([`replica`]).
    replicas: replica::Replicas,
    /// This server's members of replicated consumers' groups ([`consumer`]).
    consumers: consumer::Members,
    /// Answers `$JS.API` requests forwarded to this server's stream leaders
    /// ([`forward`]).
    api: std::sync::OnceLock<forward::ApiServer>,
    /// When the group's Raft was opened ([`health`]).
    opened: tokio::time::Instant,
    /// The group's network (when each member last answered: [`report`]).
    net: Network,
    /// The group's log (the entries since the last snapshot: [`report`]).
    log: LogStore,
}

impl std::fmt::Debug for MetaGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetaGroup")
            .field("me", &self.me)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// nats-server's short peer id: 8 characters from the node id.
pub(crate) fn peer_id(name: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut n = node_id(name);
    (0..8)
        .map(|_| {
            let c = ALPHABET[(n % 62) as usize];
            n /= 62;
            char::from(c)
        })
        .collect()
}

impl MetaGroup {
    /// Joins the meta group when this server is a clustered JetStream server with a
    /// `server_name`; `None` otherwise (or when its Raft state cannot be opened, logged).
    pub async fn start(state: &Arc<ServerState>, stop: watch::Receiver<bool>) -> Option<Arc<Self>> {
        let config = state.config();
        let (Some(cluster), Some(js)) = (&config.cluster, &config.jetstream) else {
            return None;
        };
        let Some(me) = config.server_name.clone() else {
            warn!(
                "JetStream clustering needs server_name; this server stays out of the meta group"
            );
            return None;
        };
        let account_name = state.system_account().unwrap_or_else(|| "$SYS".to_string());
        let account = state.accounts.get(&account_name);
        let account_name = account.name.clone();
        let (transport, hellos, serve_task) = RouteTransport::start(account, &me, stop.clone());
        let raft_root = js.store_dir.join("$SYS").join("_js_");
        let dir = raft_root.join(GROUP);
        let cluster_name = cluster.name.clone().unwrap_or_default();
        let opened = open_raft(&dir, &me, &cluster_name, &transport).await;
        let (raft, sm, net, log) = match opened {
            Ok(v) => v,
            Err(e) => {
                warn!(error = %e, "could not open the JetStream meta group");
                serve_task.abort();
                return None;
            }
        };
        transport.serve_group(GROUP, raft.clone(), net.clone());
        let group = Arc::new(MetaGroup {
            raft,
            me,
            cluster: cluster_name,
            system_account: account_name,
            seeded: !cluster.routes.is_empty(),
            sm,
            transport,
            peers: Mutex::new(BTreeMap::new()),
            tags: config.server_tags.clone(),
            tasks: Mutex::new(vec![serve_task]),
            raft_root,
            stop: stop.clone(),
            replicas: replica::Replicas::default(),
            consumers: consumer::Members::default(),
            api: std::sync::OnceLock::new(),
            opened: tokio::time::Instant::now(),
            net,
            log,
        });
        let weak = Arc::downgrade(&group);
        group.transport.serve_api(Arc::new(move |name, body| {
            let meta = weak.upgrade();
            Box::pin(async move {
                match meta {
                    Some(meta) => forward::serve(meta, name, body).await,
                    None => Bytes::new(),
                }
            })
        }));
        let weak = Arc::downgrade(&group);
        group.transport.serve_catchup(Arc::new(move |name, body| {
            let meta = weak.upgrade();
            Box::pin(async move {
                match meta {
                    Some(meta) => replica::catchup::serve(meta, name, body).await,
                    None => Bytes::new(),
                }
            })
        }));
        let task = tokio::spawn(membership(Arc::clone(&group), hellos, stop));
        lock(&group.tasks).push(task);
        Some(group)
    }

    /// The group's Raft handle.
    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    /// The committed stream assignments (for reports and tests).
    pub async fn assignments(&self) -> BTreeMap<String, meta::StreamAssignment> {
        self.sm.with(|m| m.streams.clone()).await
    }

    /// A receiver that sees every applied change of the assignments.
    pub async fn changes(&self) -> watch::Receiver<u64> {
        self.sm.with(|m| m.changes()).await
    }

    /// The committed assignment of `stream` in `account`.
    pub async fn assignment(&self, account: &str, stream: &str) -> Option<meta::StreamAssignment> {
        let key = meta::key(account, stream);
        self.sm.with(|m| m.streams.get(&key).cloned()).await
    }

    /// Waits (at most `timeout`) until this server applied assignments for which
    /// `done` holds; whether it did.
    pub async fn wait_applied(
        &self,
        timeout: Duration,
        done: impl Fn(&BTreeMap<String, meta::StreamAssignment>) -> bool,
    ) -> bool {
        let mut changes = self.changes().await;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if done(&self.assignments().await) {
                return true;
            }
            let changed = tokio::time::timeout_at(deadline, changes.changed()).await;
            if !matches!(changed, Ok(Ok(()))) {
                return false;
            }
        }
    }

    /// Commits `op` through the meta group's leader (forwarded when this server does
    /// not lead) and returns the machine's answer.
    ///
    /// # Errors
    /// No leader, the leader did not answer, the group stopped.
    pub async fn propose(&self, op: &meta::MetaOp) -> Result<meta::MetaAnswer, raft::ProposeError> {
        let cmd = serde_json::to_vec(op).unwrap_or_default();
        let transport: Arc<dyn raft::Transport> = self.transport.clone();
        let net = Network::new(GROUP, transport);
        let answer = raft::propose(&self.raft, &net, cmd.into(), PROPOSE_WAIT).await?;
        Ok(serde_json::from_slice(&answer).unwrap_or(meta::MetaAnswer::Bad))
    }

    /// The servers a new stream of `replicas` copies goes on, among this one and the
    /// JetStream servers heard from recently, as its `placement` asks (see `placement`).
    ///
    /// # Errors
    /// 400/10005 `no suitable peers for placement` (with the tags when some were asked).
    pub fn place(
        &self,
        replicas: usize,
        placement: Option<&Placement>,
    ) -> Result<Vec<String>, ApiError> {
        placement::place(&self.candidates(), replicas, &self.cluster, placement)
    }

    /// A JetStream server heard from recently (or this one) that is not in `taken` and
    /// fits `placement`, at random: where a replica goes when a stream grows or loses a
    /// peer. `None` when there is none.
    pub fn spare(&self, taken: &[String], placement: Option<&Placement>) -> Option<String> {
        let mut free = self.candidates();
        free.retain(|c| !taken.contains(&c.name));
        placement::spare(&free, placement)
    }

    /// Whether every server of `peers` fits `placement` (see `placement`).
    pub fn fits(&self, peers: &[String], placement: Option<&Placement>) -> bool {
        placement::fits(&self.candidates(), peers, placement)
    }

    /// This server, then the servers heard from recently, with their tags.
    fn candidates(&self) -> Vec<placement::Candidate> {
        let me = placement::Candidate {
            name: self.me.clone(),
            tags: self.tags.clone(),
        };
        let now_live = lock(&self.peers)
            .iter()
            .filter(|(_, h)| h.at.elapsed() < PEER_GONE)
            .map(|(name, h)| placement::Candidate {
                name: name.clone(),
                tags: h.tags.clone(),
            })
            .collect::<Vec<_>>();
        std::iter::once(me).chain(now_live).collect()
    }

    /// Whether the meta group has a leader this server knows of.
    pub fn has_leader(&self) -> bool {
        self.raft.metrics().borrow().current_leader.is_some()
    }

    /// This server's `server_name`.
    pub fn me(&self) -> &str {
        &self.me
    }

    /// The cluster's name.
    pub fn cluster_name(&self) -> &str {
        &self.cluster
    }

    /// The account whose `$JS.API.META.*` requests this group serves (the system
    /// account, whose routes also carry the group's traffic).
    pub fn system_account(&self) -> &str {
        &self.system_account
    }

    /// Hands the meta leadership to another member: `preferred` when given, else the
    /// member the leader knows to be furthest along. The other members pause their
    /// heartbeats and elections ([`raft::Rpc::Hold`]), and the chosen member starts
    /// elections ([`raft::Rpc::Elect`]) until it wins, once the old leader's lease ran
    /// out (about two seconds); the old leader follows when it sees the higher term.
    ///
    /// # Errors
    /// - [`Stepdown::NoLeader`]: no leader known (an election is running): nats-server
    ///   leaves the request unanswered then;
    /// - [`Stepdown::Unknown`]: `preferred` is not a member;
    /// - [`Stepdown::Failed`]: the chosen member did not answer.
    pub async fn step_down(&self, preferred: Option<&str>) -> Result<String, Stepdown> {
        let (target, name) = successor(&self.raft, preferred)?;
        let transport: Arc<dyn raft::Transport> = self.transport.clone();
        hand_over(&self.raft, &Network::new(GROUP, transport), target, &name).await?;
        info!(to = %name, "JetStream meta leader stepdown requested");
        Ok(name)
    }

    fn heard(&self, hello: Hello) {
        let heard = Heard {
            member: hello.member,
            at: Instant::now(),
            tags: placement::normalize(&hello.tags),
            usage: hello.usage,
        };
        lock(&self.peers).insert(hello.name, heard);
    }

    /// Servers heard recently: name → member.
    fn live_peers(&self) -> BTreeMap<String, bool> {
        lock(&self.peers)
            .iter()
            .filter(|(_, h)| h.at.elapsed() < PEER_GONE)
            .map(|(name, h)| (name.clone(), h.member))
            .collect()
    }

    async fn tick(&self, ticks: u32) {
        let metrics = self.raft.metrics().borrow().clone();
        let voters: BTreeSet<u64> = metrics.membership_config.membership().voter_ids().collect();
        let member = !voters.is_empty();
        let hello = Hello {
            name: self.me.clone(),
            member,
            tags: self.tags.clone(),
            usage: usage::local(self).await,
        };
        if let Ok(body) = serde_json::to_vec(&hello) {
            self.transport.publish(HELLO, None, Bytes::from(body));
        }
        if !member {
            self.maybe_form(ticks).await;
        } else if metrics.state == RaftState::Leader {
            self.add_joiner(&voters).await;
        }
    }

    /// Forms the group when this server is the one to (see the module doc).
    async fn maybe_form(&self, ticks: u32) {
        let peers = self.live_peers();
        if peers.values().any(|member| *member) || ticks < SETTLE_TICKS {
            return;
        }
        if (self.seeded && peers.is_empty()) || peers.keys().any(|p| *p < self.me) {
            return;
        }
        let members: BTreeMap<u64, BasicNode> = peers
            .keys()
            .chain(std::iter::once(&self.me))
            .map(|n| (node_id(n), BasicNode { addr: n.clone() }))
            .collect();
        info!(members = members.len(), "forming the JetStream meta group");
        if let Err(e) = self.raft.initialize(members).await {
            warn!(error = %e, "could not form the JetStream meta group");
        }
    }

    /// Leader: adds one announced server that is not a voter yet.
    async fn add_joiner(&self, voters: &BTreeSet<u64>) {
        let Some(name) = self
            .live_peers()
            .into_keys()
            .find(|n| !voters.contains(&node_id(n)))
        else {
            return;
        };
        let id = node_id(&name);
        let node = BasicNode { addr: name.clone() };
        let added = tokio::time::timeout(JOIN_WAIT, self.raft.add_learner(id, node, true)).await;
        match added {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                warn!(peer = %name, error = %e, "could not add a server to the JetStream meta group");
                return;
            }
            Err(_) => {
                warn!(peer = %name, "a server joining the JetStream meta group has not caught up yet");
                return;
            }
        }
        let mut all = voters.clone();
        all.insert(id);
        match self.raft.change_membership(all, false).await {
            Ok(_) => info!(peer = %name, "server joined the JetStream meta group"),
            Err(e) => warn!(peer = %name, error = %e, "could not make a server a meta group voter"),
        }
    }
}

/// The member of `raft`'s group to hand the leadership to: `preferred` when given,
/// else the voter the leader knows to be furthest along; `(node id, server name)`.
///
/// # Errors
/// No leader known, `preferred` not a member, no other voter.
pub(crate) fn successor(raft: &Raft, preferred: Option<&str>) -> Result<(u64, String), Stepdown> {
    let m = raft.metrics().borrow().clone();
    let membership = m.membership_config.membership().clone();
    let leader = m.current_leader.ok_or(Stepdown::NoLeader)?;
    let name_of = |id: u64| membership.get_node(&id).map(|n| n.addr.clone());
    let target = match preferred {
        Some(p) => membership
            .voter_ids()
            .find(|id| name_of(*id).as_deref() == Some(p))
            .ok_or_else(|| Stepdown::Unknown(p.to_string()))?,
        None => {
            let matched = |id: &u64| {
                m.replication
                    .as_ref()
                    .and_then(|r| r.get(id).copied().flatten())
                    .map_or(0, |l| l.index)
            };
            membership
                .voter_ids()
                .filter(|id| *id != leader)
                .max_by_key(matched)
                .ok_or(Stepdown::Failed)?
        }
    };
    Ok((target, name_of(target).ok_or(Stepdown::Failed)?))
}

/// Hands the leadership of `raft`'s group to the member `target` (named `name`): the
/// other members pause their heartbeats and elections ([`raft::Rpc::Hold`]), and the
/// chosen member starts elections ([`raft::Rpc::Elect`]) until it wins, once the old
/// leader's lease ran out (about two seconds); the old leader follows when it sees the
/// higher term.
///
/// # Errors
/// The chosen member did not answer or did not win.
pub(crate) async fn hand_over(
    raft: &Raft,
    net: &Network,
    target: u64,
    name: &str,
) -> Result<(), Stepdown> {
    let m = raft.metrics().borrow().clone();
    let membership = m.membership_config.membership().clone();
    for other in membership.voter_ids().filter(|id| *id != target) {
        if let Some(other) = membership.get_node(&other) {
            // A member that does not answer is down: it neither leads nor votes.
            let _ = raft::net::hold_member(net, &other.addr, STEPDOWN_WAIT).await;
        }
    }
    raft::net::elect(net, name, raft::net::HOLD + STEPDOWN_WAIT)
        .await
        .map_err(|_| Stepdown::Failed)
}

/// The meta group's Raft, its machine, network and log.
type Opened = (Raft, MachineStore<MetaMachine>, Network, LogStore);

async fn open_raft(
    dir: &std::path::Path,
    me: &str,
    cluster: &str,
    transport: &Arc<RouteTransport>,
) -> Result<Opened, String> {
    let vfs = StdFs::shared();
    let log = LogStore::open(vfs.clone(), &dir.join("log")).map_err(|e| e.to_string())?;
    let sm = MachineStore::open(vfs, &dir.join("sm"), MetaMachine::default())
        .await
        .map_err(|e| e.to_string())?;
    let cfg = Arc::new(raft::config(cluster, SNAPSHOT_EVERY)?);
    let transport: Arc<dyn raft::Transport> = transport.clone();
    let net = Network::new(GROUP, transport);
    let raft = Raft::new(node_id(me), cfg, net.clone(), log.clone(), sm.clone())
        .await
        .map_err(|e| e.to_string())?;
    Ok((raft, sm, net, log))
}

/// Announces this server, forms or grows the group, until `stop`; then stops Raft.
async fn membership(
    group: Arc<MetaGroup>,
    mut hellos: mpsc::Receiver<Hello>,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ticks = 0u32;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                ticks = ticks.saturating_add(1);
                // A tick may wait (a joiner catching up as a learner): hellos are still
                // heard meanwhile, else every peer looks gone after PEER_GONE and
                // placement answers 'no suitable peers' until the tick ends.
                let work = group.tick(ticks);
                tokio::pin!(work);
                loop {
                    tokio::select! {
                        () = &mut work => break,
                        Some(hello) = hellos.recv() => group.heard(hello),
                    }
                }
            }
            Some(hello) = hellos.recv() => group.heard(hello),
            _ = stop.changed() => break,
        }
    }
    let _ = group.raft.shutdown().await;
}
