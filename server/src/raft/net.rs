//! openraft's network for rill's groups: each RPC is one request/reply over a
//! [`Transport`] (in the server: route connections, see `jetstream::cluster`; in
//! tests: direct calls), its body the RPC's JSON; [`serve`] is the receiving end.
//!
//! A call that fails or times out is `Unreachable` to openraft, which backs off and
//! retries; the remote node's own refusal travels back as its `RaftError`.

use std::collections::HashMap;
use std::fmt::Debug;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::BoxFuture;
use openraft::BasicNode;
use openraft::error::{InstallSnapshotError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Command, Raft, TypeConfig};

/// The RPCs a group's members send each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rpc {
    /// openraft AppendEntries (also the heartbeat).
    Append,
    /// openraft RequestVote.
    Vote,
    /// openraft InstallSnapshot (one chunk).
    Snapshot,
    /// "Start an election now, until you lead" (at most [`HOLD`]): with [`Rpc::Hold`]
    /// on the other members, how leadership is handed to a chosen member (stepdown);
    /// openraft 0.9 has no leadership transfer of its own.
    Elect,
    /// "Send no heartbeats and start no elections for [`HOLD`]": the leader's
    /// followers then grant a vote once its lease ran out, and only the member told to
    /// [`Rpc::Elect`] asks for one.
    Hold,
    /// A command proposed on a member that is not the leader, forwarded to the leader
    /// ([`propose`]); the answer is the leader's [`Machine`](super::Machine) response.
    Propose,
    /// "Is your member of this group initialized?" ([`initialized_elsewhere`]); a
    /// server without the group answers `false`.
    Probe,
}

impl Rpc {
    /// The RPC's token on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Rpc::Append => "AE",
            Rpc::Vote => "VOTE",
            Rpc::Snapshot => "SNAP",
            Rpc::Elect => "ELECT",
            Rpc::Hold => "HOLD",
            Rpc::Propose => "PROP",
            Rpc::Probe => "PROBE",
        }
    }

    /// The RPC named by a wire token.
    pub fn parse(token: &str) -> Option<Rpc> {
        Some(match token {
            "AE" => Rpc::Append,
            "VOTE" => Rpc::Vote,
            "SNAP" => Rpc::Snapshot,
            "ELECT" => Rpc::Elect,
            "HOLD" => Rpc::Hold,
            "PROP" => Rpc::Propose,
            "PROBE" => Rpc::Probe,
            _ => return None,
        })
    }
}

/// Carries a group's RPCs to another server and brings back its answer.
pub trait Transport: Send + Sync + Debug + 'static {
    /// Sends `body` to the `rpc` handler of `group` on the server named `to` and waits
    /// at most `timeout` for the reply.
    ///
    /// # Errors
    /// No route to `to`, no answer in time.
    fn call(
        &self,
        to: &str,
        group: &str,
        rpc: Rpc,
        body: Bytes,
        timeout: Duration,
    ) -> BoxFuture<'static, io::Result<Bytes>>;
}

/// openraft's network factory for one group.
#[derive(Debug, Clone)]
pub struct Network {
    group: Arc<str>,
    transport: Arc<dyn Transport>,
    /// When each member (by server name) last answered one of this member's RPCs.
    heard: Arc<Mutex<HashMap<String, Instant>>>,
}

impl Network {
    /// The network of `group` over `transport`.
    pub fn new(group: &str, transport: Arc<dyn Transport>) -> Network {
        Network {
            group: group.into(),
            transport,
            heard: Arc::default(),
        }
    }

    /// How long ago the member named `to` was last heard from ([`Network::heard_from`]:
    /// a leader's heartbeats reach every member each interval, and a follower hears
    /// them): nats-server's `active` of a replica. `None` when it never was.
    pub fn last_heard(&self, to: &str) -> Option<Duration> {
        let heard = self.heard.lock().unwrap_or_else(PoisonError::into_inner);
        heard.get(to).map(Instant::elapsed)
    }

    /// Notes that the member named `by` was heard from now: it answered an RPC of this
    /// member, or (on a follower) its leader's AppendEntries arrived.
    pub fn heard_from(&self, by: &str) {
        let mut heard = self.heard.lock().unwrap_or_else(PoisonError::into_inner);
        heard.insert(by.to_string(), Instant::now());
    }
}

/// The client side towards one member.
#[derive(Debug)]
pub struct Peer {
    target: u64,
    to: String,
    net: Network,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> Peer {
        Peer {
            target,
            to: node.addr.clone(),
            net: self.clone(),
        }
    }
}

type Rpcs<E> = RPCError<u64, BasicNode, RaftError<u64, E>>;

impl Peer {
    async fn send<Req, Resp, E>(&self, rpc: Rpc, req: &Req, ttl: Duration) -> Result<Resp, Rpcs<E>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let unreachable = |e: io::Error| RPCError::Unreachable(Unreachable::new(&e));
        let body = serde_json::to_vec(req).map_err(|e| unreachable(io::Error::other(e)))?;
        let reply = self
            .net
            .transport
            .call(&self.to, &self.net.group, rpc, body.into(), ttl)
            .await
            .map_err(unreachable)?;
        self.net.heard_from(&self.to);
        let answer: Result<Resp, RaftError<u64, E>> =
            serde_json::from_slice(&reply).map_err(|e| unreachable(io::Error::other(e)))?;
        answer.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for Peer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, Rpcs<openraft::error::Infallible>> {
        self.send(Rpc::Append, &rpc, option.hard_ttl()).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<u64>, Rpcs<InstallSnapshotError>> {
        self.send(Rpc::Snapshot, &rpc, option.hard_ttl()).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, Rpcs<openraft::error::Infallible>> {
        self.send(Rpc::Vote, &rpc, option.hard_ttl()).await
    }
}

/// How long a leadership handover may take: [`Rpc::Hold`] lasts this long, and
/// [`Rpc::Elect`] tries this long.
pub const HOLD: Duration = Duration::from_secs(5);

/// Pauses heartbeats and elections of this member for [`HOLD`].
fn hold(raft: &Raft) {
    raft.runtime_config().heartbeat(false);
    raft.runtime_config().elect(false);
    let raft = raft.clone();
    tokio::spawn(async move {
        tokio::time::sleep(HOLD).await;
        raft.runtime_config().heartbeat(true);
        raft.runtime_config().elect(true);
    });
}

/// Starts elections until this member leads (the others' leader lease must run out
/// first), for at most [`HOLD`].
async fn elect_until_leader(raft: &Raft) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + HOLD;
    let mut metrics = raft.metrics();
    loop {
        raft.trigger().elect().await.map_err(|e| e.to_string())?;
        let lead = metrics.wait_for(|m| m.state == openraft::ServerState::Leader);
        if tokio::time::timeout(Duration::from_millis(300), lead)
            .await
            .is_ok()
        {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            return Err("no election won".into());
        }
    }
}

/// Asks the member named `to` to hold its heartbeats and elections (see [`Rpc::Hold`]).
///
/// # Errors
/// No answer from `to`.
pub async fn hold_member(net: &Network, to: &str, timeout: Duration) -> io::Result<()> {
    net.transport
        .call(to, &net.group, Rpc::Hold, Bytes::new(), timeout)
        .await
        .map(|_| ())
}

/// Asks the member named `to` to start elections until it leads (see [`Rpc::Elect`]).
///
/// # Errors
/// No answer from `to`.
pub async fn elect(net: &Network, to: &str, timeout: Duration) -> io::Result<()> {
    let reply = net
        .transport
        .call(to, &net.group, Rpc::Elect, Bytes::new(), timeout)
        .await?;
    let won: Result<(), String> = serde_json::from_slice(&reply).map_err(io::Error::other)?;
    won.map_err(io::Error::other)
}

fn answer<T: Serialize>(value: &T) -> Bytes {
    serde_json::to_vec(value).unwrap_or_default().into()
}

/// Handles one RPC for the local member of a group; the reply is the JSON of openraft's
/// `Result`. A body that does not parse gets an empty reply (the caller sees it as
/// unreachable and retries).
pub async fn serve(raft: &Raft, rpc: Rpc, body: &[u8]) -> Bytes {
    match rpc {
        Rpc::Append => match serde_json::from_slice(body) {
            Ok(req) => answer(&raft.append_entries(req).await),
            Err(_) => Bytes::new(),
        },
        Rpc::Vote => match serde_json::from_slice(body) {
            Ok(req) => answer(&raft.vote(req).await),
            Err(_) => Bytes::new(),
        },
        Rpc::Snapshot => match serde_json::from_slice(body) {
            Ok(req) => answer(&raft.install_snapshot(req).await),
            Err(_) => Bytes::new(),
        },
        Rpc::Elect => answer(&elect_until_leader(raft).await),
        Rpc::Hold => {
            hold(raft);
            answer(&Ok::<(), String>(()))
        }
        Rpc::Propose => answer(&write(raft, Bytes::copy_from_slice(body)).await),
        Rpc::Probe => answer(&raft.is_initialized().await.unwrap_or(false)),
    }
}

/// The answer to a [`Rpc::Probe`] for a group this server does not run.
pub fn not_initialized() -> Bytes {
    answer(&false)
}

/// Whether any of the members named in `peers` runs an initialized member of the
/// group (asked at once, each for at most `timeout`). A member that restarts without
/// its log (its store was wiped) asks before it initializes a group it was the first
/// member of: initializing it again would start a second history beside the group's,
/// and its elections would disturb the group's leader.
pub async fn initialized_elsewhere(net: &Network, peers: &[String], timeout: Duration) -> bool {
    let asks = peers.iter().map(|to| {
        net.transport
            .call(to, &net.group, Rpc::Probe, Bytes::new(), timeout)
    });
    futures::future::join_all(asks)
        .await
        .into_iter()
        .flatten()
        .any(|reply| serde_json::from_slice::<bool>(&reply).unwrap_or(false))
}

/// Why a proposal was not committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, thiserror::Error)]
pub enum ProposeError {
    /// The group has no leader this member knows of (an election is running, or no
    /// quorum is reachable).
    #[error("raft group has no leader")]
    NoLeader,
    /// The member named here is the leader, but it did not answer in time.
    #[error("raft leader {0} did not answer")]
    Unreachable(String),
    /// The group stopped (shutdown or a storage failure).
    #[error("raft group stopped: {0}")]
    Stopped(String),
}

/// A local proposal's outcome: the leader's answer, or why not and where the leader is.
type Written = Result<Command, (ProposeError, Option<String>)>;

/// Proposes `cmd` on the local member; the leader's answer, or where the leader is.
async fn write(raft: &Raft, cmd: Bytes) -> Written {
    use openraft::error::{ClientWriteError, RaftError as Re};
    match raft.client_write(Command(cmd)).await {
        Ok(resp) => Ok(resp.data),
        Err(Re::APIError(ClientWriteError::ForwardToLeader(f))) => {
            Err((ProposeError::NoLeader, f.leader_node.map(|n| n.addr)))
        }
        Err(Re::APIError(ClientWriteError::ChangeMembershipError(e))) => {
            Err((ProposeError::Stopped(e.to_string()), None))
        }
        Err(Re::Fatal(f)) => Err((ProposeError::Stopped(f.to_string()), None)),
    }
}

/// Proposes `cmd` to the group and returns the leader's [`Machine`](super::Machine)
/// answer once the entry is committed (on disk on a quorum) and applied on the leader.
/// A member that is not the leader forwards the command to the leader once
/// ([`Rpc::Propose`]).
///
/// # Errors
/// No leader known, the leader did not answer within `timeout`, the group stopped.
pub async fn propose(
    raft: &Raft,
    net: &Network,
    cmd: Bytes,
    timeout: Duration,
) -> Result<Bytes, ProposeError> {
    let local = tokio::time::timeout(timeout, write(raft, cmd.clone())).await;
    let leader = match local {
        Ok(Ok(answer)) => return Ok(answer.0),
        Ok(Err((_, Some(leader)))) => leader,
        Ok(Err((e, None))) => return Err(e),
        Err(_) => return Err(ProposeError::Unreachable("self".into())),
    };
    let reply = net
        .transport
        .call(&leader, &net.group, Rpc::Propose, cmd, timeout)
        .await
        .map_err(|_| ProposeError::Unreachable(leader.clone()))?;
    let answer: Written =
        serde_json::from_slice(&reply).map_err(|_| ProposeError::Unreachable(leader.clone()))?;
    answer.map(|c| c.0).map_err(|(e, _)| e)
}
