//! openraft's network for rill's groups: each RPC is one request/reply over a
//! [`Transport`] (in the server: route connections, see `jetstream::cluster`; in
//! tests: direct calls), its body the RPC's JSON; [`serve`] is the receiving end.
//!
//! A call that fails or times out is `Unreachable` to openraft, which backs off and
//! retries; the remote node's own refusal travels back as its `RaftError`.

use std::fmt::Debug;
use std::io;
use std::sync::Arc;
use std::time::Duration;

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

use super::{Raft, TypeConfig};

/// The RPCs a group's members send each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rpc {
    /// openraft AppendEntries (also the heartbeat).
    Append,
    /// openraft RequestVote.
    Vote,
    /// openraft InstallSnapshot (one chunk).
    Snapshot,
    /// "Start an election now": how a leader hands leadership to an up-to-date follower
    /// (stepdown); openraft 0.9 has no leadership transfer of its own.
    Elect,
}

impl Rpc {
    /// The RPC's token on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Rpc::Append => "AE",
            Rpc::Vote => "VOTE",
            Rpc::Snapshot => "SNAP",
            Rpc::Elect => "ELECT",
        }
    }

    /// The RPC named by a wire token.
    pub fn parse(token: &str) -> Option<Rpc> {
        Some(match token {
            "AE" => Rpc::Append,
            "VOTE" => Rpc::Vote,
            "SNAP" => Rpc::Snapshot,
            "ELECT" => Rpc::Elect,
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
}

impl Network {
    /// The network of `group` over `transport`.
    pub fn new(group: &str, transport: Arc<dyn Transport>) -> Network {
        Network {
            group: group.into(),
            transport,
        }
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

/// Asks the member named `to` to start an election (see [`Rpc::Elect`]).
///
/// # Errors
/// No answer from `to`.
pub async fn elect(net: &Network, to: &str, timeout: Duration) -> io::Result<()> {
    net.transport
        .call(to, &net.group, Rpc::Elect, Bytes::new(), timeout)
        .await
        .map(|_| ())
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
        Rpc::Elect => {
            let res = raft.trigger().elect().await;
            answer(&res.map_err(|e| e.to_string()))
        }
    }
}
